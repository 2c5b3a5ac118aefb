//! Fixed-point arithmetic of TFLite's integer kernels, bit for bit.
//!
//! Real multipliers become a Q31 integer multiplier and a power-of-two shift once, when a kernel is
//! prepared ([`quantize_multiplier`]); running a kernel then only uses integers. Rounding follows
//! TFLite's default ("double rounding") build, which is also what TFLite Micro runs:
//! [`srdhm`] rounds the doubled high product half away from zero, then [`rdbpot`] rounds the right
//! shift to nearest with ties away from zero.
//!
//! The second half is the subset of gemmlowp's fixed-point math (exp, 1/(1+x)) that TFLite's int8
//! SOFTMAX uses. Names follow the formats: a value with `I` integer bits has `31 - I` fractional bits.

/// A real multiplier as `multiplier · 2^(shift − 31)`, `multiplier` in [2^30, 2^31).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multiplier {
    pub multiplier: i32,
    pub shift: i32,
}

/// Splits `m` into a Q31 multiplier and a shift, as TFLite's `QuantizeMultiplier` does: `frexp`,
/// round the mantissa to 31 bits (half away from zero), renormalize when it rounds up to 1.0, and
/// flush multipliers below 2^-31 to zero.
pub fn quantize_multiplier(m: f64) -> Multiplier {
    if m == 0.0 || !m.is_finite() {
        return Multiplier { multiplier: 0, shift: 0 };
    }
    let (q, mut shift) = frexp(m);
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    Multiplier { multiplier: q_fixed as i32, shift }
}

/// `frexp`: `x = q · 2^e` with `0.5 <= |q| < 1`.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale up first.
        let (q, e) = frexp(x * (1u64 << 54) as f64);
        return (q, e - 54);
    }
    let e = exp - 1022;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, e)
}

/// SaturatingRoundingDoublingHighMul: `a·b / 2^31` rounded to nearest, ties toward +infinity
/// (gemmlowp's nudge-then-truncate), saturating the single overflow case `MIN·MIN`.
#[inline]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncating toward zero, as C++ does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// RoundingDivideByPOT: `x / 2^exponent` rounded to nearest, ties away from zero.
#[inline]
pub fn rdbpot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + (x < 0) as i32;
    (x >> exponent) + (remainder > threshold) as i32
}

/// MultiplyByQuantizedMultiplier: `x · m` for a multiplier from [`quantize_multiplier`].
#[inline]
pub fn mul_by_multiplier(x: i32, m: Multiplier) -> i32 {
    let left = m.shift.max(0);
    let right = (-m.shift).max(0);
    rdbpot(srdhm(x.wrapping_mul(1 << left), m.multiplier), right)
}

/// MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0).
#[inline]
pub fn mul_by_multiplier_smaller_than_one(x: i32, m: Multiplier) -> i32 {
    rdbpot(srdhm(x, m.multiplier), -m.shift)
}

/// MultiplyByQuantizedMultiplierGreaterThanOne (shift >= 0).
#[inline]
pub fn mul_by_multiplier_greater_than_one(x: i32, m: Multiplier) -> i32 {
    srdhm(x.wrapping_mul(1 << m.shift), m.multiplier)
}

/// Multiplies by `2^exponent`: saturating left shift, or rounding right shift.
#[inline]
pub fn saturating_rounding_mul_by_pot(x: i32, exponent: i32) -> i32 {
    match exponent.cmp(&0) {
        std::cmp::Ordering::Equal => x,
        std::cmp::Ordering::Less => rdbpot(x, -exponent),
        std::cmp::Ordering::Greater => {
            let threshold = (1i32 << (31 - exponent)) - 1;
            if x > threshold {
                i32::MAX
            } else if x < -threshold {
                i32::MIN
            } else {
                x << exponent
            }
        }
    }
}

/// `(a + b) / 2` rounded half away from zero, without overflow.
#[inline]
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// Fixed-point multiply: the result has the sum of the operands' integer bits.
#[inline]
fn fmul(a: i32, b: i32) -> i32 {
    srdhm(a, b)
}

/// exp(x) for x in [-1/4, 0), Q0.31 in and out.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = fmul(x, x);
    let x3 = fmul(x2, x);
    let x4 = fmul(x2, x2);
    let x4_over_4 = saturating_rounding_mul_by_pot(x4, -2);
    let poly = saturating_rounding_mul_by_pot(fmul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    CONSTANT_TERM.wrapping_add(fmul(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// exp(x) for x <= 0, `x` with `integer_bits` integer bits, result Q0.31.
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_rounding_mul_by_pot(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) for k = -2..=4, in Q0.31.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits > exponent {
            let shift = fractional_bits + exponent;
            if remainder & (1 << shift) != 0 {
                result = fmul(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        let clamp = -(1i32 << (36 - integer_bits)); // -32.0
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// 1 / (1 + x) for x in [0, 1), Q0.31 in and out (Newton-Raphson, three steps).
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, i32::MAX);
    const C48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const CNEG32_OVER_17: i32 = -1_010_580_540; // Q2.29
    const ONE_Q2: i32 = 1 << 29;
    let mut x = C48_OVER_17.wrapping_add(fmul(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = fmul(half_denominator, x);
        let one_minus = ONE_Q2.wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(saturating_rounding_mul_by_pot(fmul(x, one_minus), 2));
    }
    // x / 2 as Q1.30 with the same raw value, then rescaled to Q0.31.
    saturating_rounding_mul_by_pot(x, 1)
}

/// The reciprocal of a positive Q(`integer_digits`) value: returns the Q0.31 mantissa of 1/x and
/// the number of bits by which x exceeds one (TFLite's `GetReciprocal`).
pub fn reciprocal(x: i32, integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = integer_digits - headroom_plus_one;
    let shifted_sum_minus_one = ((x as u32) << headroom_plus_one).wrapping_sub(1u32 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

/// The multiplier that scales an int8 input difference into Q(`integer_bits`) for SOFTMAX
/// (TFLite's `PreprocessSoftmaxScaling`).
pub fn preprocess_softmax_scaling(beta: f64, input_scale: f64, integer_bits: i32) -> Multiplier {
    let max_real = ((1i64 << 31) - 1) as f64;
    let real = (beta * input_scale * (1i64 << (31 - integer_bits)) as f64).min(max_real);
    quantize_multiplier(real)
}

/// The largest input difference that stays representable (TFLite's `CalculateInputRadius`).
pub fn calculate_input_radius(integer_bits: i32, left_shift: i32, total_signed_bits: i32) -> i32 {
    let max_input_rescaled =
        1.0 * ((1i64 << integer_bits) - 1) as f64 * (1i64 << (total_signed_bits - integer_bits)) as f64
            / (1i64 << left_shift) as f64;
    max_input_rescaled.floor() as i32
}

/// How an int32 accumulator is scaled to the output: TFLite's fixed-point multiplier, or (LiteRT's
/// reference FULLY_CONNECTED) a double-precision scale rounded half away from zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rescale {
    Fixed(Multiplier),
    Double(f64),
}

impl Rescale {
    #[inline]
    pub fn apply(self, acc: i32) -> i32 {
        match self {
            Rescale::Fixed(m) => mul_by_multiplier(acc, m),
            Rescale::Double(s) => (acc as f64 * s).round() as i32,
        }
    }
}

/// [`mul_by_multiplier`] with the shifts split out once, so the per-element work is a handful of
/// branch-free integer operations (the multiplier is never negative here, so SRDHM's single
/// overflow case cannot occur).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedRequant {
    pub multiplier: i32,
    pub left: u32,
    pub right: u32,
}

impl FixedRequant {
    pub fn new(m: Multiplier) -> FixedRequant {
        FixedRequant { multiplier: m.multiplier, left: m.shift.max(0) as u32, right: (-m.shift).max(0) as u32 }
    }

    #[inline(always)]
    pub fn apply(self, acc: i32) -> i32 {
        let x = acc.wrapping_shl(self.left);
        let ab = x as i64 * self.multiplier as i64;
        let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        let q = ((ab + nudge) / (1i64 << 31)) as i32;
        let mask = ((1i64 << self.right) - 1) as i32;
        let remainder = q & mask;
        let threshold = (mask >> 1) + (q < 0) as i32;
        (q >> self.right) + (remainder > threshold) as i32
    }
}

/// The output stage of a convolution-like int8 operator: rescale (one for all channels, or one per
/// channel), add the output zero point, clamp to the fused activation's range.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputStage {
    pub scales: Vec<Rescale>,
    pub out_zp: i32,
    pub min: i32,
    pub max: i32,
    /// The fixed-point scales, prepared (one per channel), when every scale is fixed-point.
    fixed: Vec<FixedRequant>,
}

impl OutputStage {
    pub fn new(scales: Vec<Rescale>, out_zp: i32, min: i32, max: i32) -> OutputStage {
        let fixed = scales
            .iter()
            .map(|s| match s {
                Rescale::Fixed(m) => Some(FixedRequant::new(*m)),
                Rescale::Double(_) => None,
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        OutputStage { scales, out_zp, min, max, fixed }
    }

    /// The prepared fixed-point scale of `channel`, when the stage is fixed-point.
    #[inline(always)]
    pub fn fixed(&self, channel: usize) -> Option<FixedRequant> {
        match self.fixed.len() {
            0 => None,
            1 => Some(self.fixed[0]),
            _ => Some(self.fixed[channel]),
        }
    }

    #[inline(always)]
    pub fn apply(&self, channel: usize, acc: i32) -> i8 {
        let v = match self.fixed(channel) {
            Some(f) => f.apply(acc),
            None => {
                let r = if self.scales.len() == 1 { self.scales[0] } else { self.scales[channel] };
                r.apply(acc)
            }
        };
        v.wrapping_add(self.out_zp).clamp(self.min, self.max) as i8
    }
}

/// The quantized bounds of a fused activation on an output with `scale` and `zero_point`
/// (TFLite's `CalculateActivationRangeQuantized`), within [qmin, qmax].
pub fn activation_range(
    act: crate::ir::Activation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> Option<(i32, i32)> {
    use crate::ir::Activation::*;
    let q = |f: f32| zero_point.saturating_add((f / scale).round() as i32);
    Some(match act {
        None => (qmin, qmax),
        Relu => (qmin.max(q(0.0)), qmax),
        Relu6 => (qmin.max(q(0.0)), qmax.min(q(6.0))),
        ReluN1To1 => (qmin.max(q(-1.0)), qmax.min(q(1.0))),
        Tanh | SignBit => return Option::None,
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn quantize_multiplier_matches_tflite_examples() {
        // 0.5 = 2^30 · 2^(0 − 31)
        assert_eq!(quantize_multiplier(0.5), Multiplier { multiplier: 1 << 30, shift: 0 });
        assert_eq!(quantize_multiplier(1.0), Multiplier { multiplier: 1 << 30, shift: 1 });
        assert_eq!(quantize_multiplier(0.0), Multiplier { multiplier: 0, shift: 0 });
        // Rounding up to 1.0 renormalizes.
        let m = quantize_multiplier(0.999_999_999_99);
        assert_eq!(m, Multiplier { multiplier: 1 << 30, shift: 1 });
        // Tiny multipliers flush to zero.
        assert_eq!(quantize_multiplier(1e-12).multiplier, 0);
        let m = quantize_multiplier(0.1);
        assert_eq!(m.shift, -3);
        assert!(((m.multiplier as f64) / (1u64 << 31) as f64 * 0.125 - 0.1).abs() < 1e-10);
    }

    #[test]
    fn rounding_primitives() {
        assert_eq!(rdbpot(5, 1), 3); // 2.5 -> 3
        assert_eq!(rdbpot(-5, 1), -3); // -2.5 -> -3
        assert_eq!(rdbpot(-6, 2), -2); // -1.5 -> -2
        assert_eq!(rdbpot(6, 2), 2);
        assert_eq!(rdbpot(7, 0), 7);
        assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
        assert_eq!(srdhm(3, 1 << 30), 2); // 1.5 -> 2
        assert_eq!(srdhm(-3, 1 << 30), -1); // -1.5 -> -1: ties go toward +infinity
        assert_eq!(mul_by_multiplier(100, quantize_multiplier(0.25)), 25);
        assert_eq!(mul_by_multiplier(-7, quantize_multiplier(0.5)), -3);
        assert_eq!(mul_by_multiplier(-7, quantize_multiplier(0.25)), -2); // srdhm -3.5 -> -3, then /2 -> -2
        assert_eq!(mul_by_multiplier(3, quantize_multiplier(3.0)), 9);
        assert_eq!(saturating_rounding_mul_by_pot(1 << 30, 2), i32::MAX);
    }

    #[test]
    fn prepared_requant_equals_mul_by_multiplier() {
        let mut rng = crate::rng::Rng::new(99);
        for _ in 0..20_000 {
            let m = quantize_multiplier(rng.uniform() as f64 * 4.0 + 1e-6);
            let acc = (rng.next_u64() as i32) >> rng.below(24);
            assert_eq!(FixedRequant::new(m).apply(acc), mul_by_multiplier(acc, m), "{acc} {m:?}");
        }
    }

    #[test]
    fn fixed_point_exp_and_reciprocal_are_accurate() {
        for &x in &[-0.01f64, -0.3, -1.0, -2.7, -5.5, -10.0, -20.0] {
            // Q5.26 input, as SOFTMAX uses.
            let raw = (x * (1u64 << 26) as f64).round() as i32;
            let e = exp_on_negative_values(raw, 5) as f64 / (1u64 << 31) as f64;
            assert!((e - x.exp()).abs() < 2e-6, "exp({x}) = {e}");
        }
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
        for &x in &[0.0f64, 0.25, 0.5, 0.9] {
            let raw = (x * (1u64 << 31) as f64) as i32;
            let r = one_over_one_plus_x_for_x_in_0_1(raw) as f64 / (1u64 << 31) as f64;
            assert!((r - 1.0 / (1.0 + x)).abs() < 1e-6, "1/(1+{x}) = {r}");
        }
    }

    #[test]
    fn frexp_matches_definition() {
        for &x in &[1.0f64, 0.75, 3.0, 1e-10, 123456.789, -0.3] {
            let (q, e) = frexp(x);
            assert!((0.5..1.0).contains(&q.abs()), "{x}: {q}");
            assert_eq!(q * 2f64.powi(e), x);
        }
    }
}
