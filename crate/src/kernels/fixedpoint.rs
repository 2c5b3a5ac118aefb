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
    rdbpot(srdhm(shift_left(x, left), m.multiplier), right)
}

/// `x · 2^left` as TFLite computes it (wrapping in 32 bits) for the shifts of real models (up to
/// 30); saturating beyond, where C++ would overflow the shift itself (scale ratios above 2^31 in
/// hostile files).
#[inline]
fn shift_left(x: i32, left: i32) -> i32 {
    if left < 0 {
        // Only a hostile "greater than one" multiplier has a negative shift.
        rdbpot(x, (-left).min(31))
    } else if left <= 30 {
        x.wrapping_mul(1 << left)
    } else if x == 0 {
        0
    } else if x > 0 {
        i32::MAX
    } else {
        i32::MIN
    }
}

/// MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0).
#[inline]
pub fn mul_by_multiplier_smaller_than_one(x: i32, m: Multiplier) -> i32 {
    rdbpot(srdhm(x, m.multiplier), -m.shift)
}

/// MultiplyByQuantizedMultiplierGreaterThanOne (shift >= 0).
#[inline]
pub fn mul_by_multiplier_greater_than_one(x: i32, m: Multiplier) -> i32 {
    srdhm(shift_left(x, m.shift), m.multiplier)
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
    // A zero sum (every exponential underflowed, in hostile files) has no leading one: shift it out.
    let shifted = (x as u32).checked_shl(headroom_plus_one as u32).unwrap_or(0);
    let shifted_sum_minus_one = shifted.wrapping_sub(1u32 << 31) as i32;
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
            / 2f64.powi(left_shift); // exact; a hostile scale makes the shift negative
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

/// `log2(x)` when `x` is a power of two within TFLite's tolerance (TFLite's `CheckedLog2`: the float
/// logarithm rounded half away from zero, accepted when it is within 1e-3 of an integer).
pub fn checked_log2(x: f32) -> Option<i32> {
    let log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = log2.round();
    ((log2 - rounded).abs() < 1e-3).then_some(rounded as i32)
}

/// `1/sqrt(x)` as a Q0.31 multiplier and a shift, for an integer `x >= 0` (TFLite's
/// `GetInvSqrtQuantizedMultiplierExp`: normalize into [2^27, 2^29), five Newton-Raphson steps in
/// Q3.28, times sqrt(2)/2). The shift is a right shift multiplied by `reverse_shift`.
pub fn inv_sqrt_multiplier_exp(x: i32, reverse_shift: i32) -> Multiplier {
    if x <= 1 {
        return Multiplier { multiplier: i32::MAX, shift: 0 };
    }
    let mut input = x;
    let mut shift = 11;
    while input >= 1 << 29 {
        input /= 4;
        shift += 1;
    }
    let left_shift_bit_pairs = ((input as u32).leading_zeros() as i32 - 1) / 2 - 1;
    shift -= left_shift_bit_pairs;
    input <<= 2 * left_shift_bit_pairs;
    const ONE_Q3: i32 = 1 << 28;
    const HALF_THREE_Q3: i32 = (1 << 28) + (1 << 27);
    const HALF_SQRT_2_Q0: i32 = 1_518_500_250;
    let half_input = saturating_rounding_mul_by_pot(input >> 1, -1);
    let mut est = ONE_Q3;
    for _ in 0..5 {
        let est3 = saturating_rounding_mul_by_pot(fmul(fmul(est, est), est), 6);
        est = saturating_rounding_mul_by_pot(fmul(HALF_THREE_Q3, est).wrapping_sub(fmul(half_input, est3)), 3);
    }
    let mut multiplier = fmul(est, HALF_SQRT_2_Q0);
    if shift < 0 {
        multiplier = multiplier.wrapping_shl((-shift) as u32);
        shift = 0;
    }
    Multiplier { multiplier, shift: shift * reverse_shift }
}

// ------------------------------------------------------------------------------------------------
// 16-bit fixed point: gemmlowp's `FixedPoint<int16_t, I>` (an int16 with `15 - I` fractional bits),
// as LiteRT's integer LSTM computes its sigmoid and tanh. Sums wrap like the C++ `int16_t` casts.
// ------------------------------------------------------------------------------------------------

/// SaturatingRoundingDoublingHighMul on int16: `a·b / 2^15`, nudged then truncated.
#[inline]
pub fn srdhm_i16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// RoundingDivideByPOT on int16 (`exponent` in 0..=15).
#[inline]
pub fn rdbpot_i16(x: i16, exponent: u32) -> i16 {
    let mask = ((1i32 << exponent) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1) + (x < 0) as i16;
    (x >> exponent) + (remainder > threshold) as i16
}

/// SaturatingRoundingMultiplyByPOT on int16: saturating left shift, or rounding right shift.
#[inline]
pub fn saturating_rounding_mul_by_pot_i16(x: i16, exponent: i32) -> i16 {
    match exponent.cmp(&0) {
        std::cmp::Ordering::Equal => x,
        std::cmp::Ordering::Less => rdbpot_i16(x, (-exponent) as u32),
        std::cmp::Ordering::Greater => {
            let threshold = (1i32 << (15 - exponent)) - 1;
            if x as i32 > threshold {
                i16::MAX
            } else if (x as i32) < -threshold {
                i16::MIN
            } else {
                x << exponent
            }
        }
    }
}

/// A Q0.31 constant as gemmlowp stores it in an int16 format (its `RescaleConstantInitializer`).
#[inline]
fn constant_i16(raw_q31: i32) -> i16 {
    rdbpot(raw_q31, 16) as i16
}

#[inline]
fn rounding_half_sum_i16(a: i16, b: i16) -> i16 {
    let sum = a as i32 + b as i32;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i16
}

#[inline]
fn saturating_add_i16(a: i16, b: i16) -> i16 {
    a.saturating_add(b)
}

/// exp(x) for x in [-1/4, 0), Q0.15 in and out.
fn exp_on_interval_between_negative_one_quarter_and_0_excl_i16(a: i16) -> i16 {
    let constant_term = constant_i16(1_895_147_668); // exp(-1/8)
    let one_third = constant_i16(715_827_883);
    let x = a.wrapping_add(1 << 12); // a + 1/8
    let x2 = srdhm_i16(x, x);
    let x3 = srdhm_i16(x2, x);
    let x4 = srdhm_i16(x2, x2);
    let x4_over_4 = saturating_rounding_mul_by_pot_i16(x4, -2);
    let poly =
        saturating_rounding_mul_by_pot_i16(srdhm_i16(x4_over_4.wrapping_add(x3), one_third).wrapping_add(x2), -1);
    saturating_add_i16(constant_term, srdhm_i16(constant_term, x.wrapping_add(poly)))
}

/// exp(x) for x <= 0, `x` with `integer_bits` (0..=13) integer bits, result Q0.15.
pub fn exp_on_negative_values_i16(a: i16, integer_bits: i32) -> i16 {
    let fractional_bits = 15 - integer_bits;
    let one_quarter = 1i16 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl_i16(saturating_rounding_mul_by_pot_i16(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) for k = -2..=4, as Q0.31 constants.
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
        if integer_bits > exponent && remainder & (1i16 << (fractional_bits + exponent)) != 0 {
            result = srdhm_i16(result, constant_i16(multiplier));
        }
    }
    if integer_bits > 5 && a < constant_i16(-(1 << (36 - integer_bits))) {
        result = 0; // below -32
    }
    if a == 0 {
        result = i16::MAX;
    }
    result
}

/// The Newton-Raphson loop shared by 1/(1+x) and (1-x)/(1+x): 1/(1+x) in Q2.13 for x in [0, 1).
fn reciprocal_of_one_plus_x_q2_i16(a: i16) -> i16 {
    const ONE_Q2: i16 = 1 << 13;
    let half_denominator = rounding_half_sum_i16(a, i16::MAX);
    let c48_over_17 = constant_i16(1_515_870_810);
    let cneg32_over_17 = constant_i16(-1_010_580_540);
    let mut x = c48_over_17.wrapping_add(srdhm_i16(half_denominator, cneg32_over_17));
    for _ in 0..3 {
        let one_minus_half_denominator_times_x = ONE_Q2.wrapping_sub(srdhm_i16(half_denominator, x));
        x = x.wrapping_add(saturating_rounding_mul_by_pot_i16(srdhm_i16(x, one_minus_half_denominator_times_x), 2));
    }
    x
}

/// 1/(1+x) for x in [0, 1), Q0.15 in and out.
pub fn one_over_one_plus_x_for_x_in_0_1_i16(a: i16) -> i16 {
    // x/2 read as Q1.14, then rescaled to Q0.15.
    saturating_rounding_mul_by_pot_i16(reciprocal_of_one_plus_x_q2_i16(a), 1)
}

/// (1-x)/(1+x) for x in [0, 1), Q0.15 in and out.
pub fn one_minus_x_over_one_plus_x_for_x_in_0_1_i16(a: i16) -> i16 {
    saturating_rounding_mul_by_pot_i16(reciprocal_of_one_plus_x_q2_i16(a).wrapping_sub(1 << 13), 2)
}

/// tanh of an int16 with `integer_bits` (0..=12) integer bits, Q0.15 out (gemmlowp's `tanh`).
pub fn tanh_i16(a: i16, integer_bits: i32) -> i16 {
    if a == 0 {
        return 0;
    }
    let negative_abs = if a < 0 { a } else { a.wrapping_neg() };
    // exp(-2|a|): the same raw value read with one more integer bit.
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1_i16(exp_on_negative_values_i16(negative_abs, integer_bits + 1));
    if a < 0 {
        t.wrapping_neg()
    } else {
        t
    }
}

/// The logistic function of an int16 with `integer_bits` (0..=13) integer bits, Q0.15 out
/// (gemmlowp's `logistic`).
pub fn logistic_i16(a: i16, integer_bits: i32) -> i16 {
    if a == 0 {
        return constant_i16(1 << 30); // 1/2
    }
    let abs = if a > 0 { a } else { a.wrapping_neg() };
    let positive = one_over_one_plus_x_for_x_in_0_1_i16(exp_on_negative_values_i16(abs.wrapping_neg(), integer_bits));
    if a > 0 {
        positive
    } else {
        i16::MAX.wrapping_sub(positive)
    }
}

// ------------------------------------------------------------------------------------------------
// TFLite Micro's int16 sigmoid and tanh (reference_integer_ops::Logistic / Tanh for int16): a
// 256-entry table of sigmoid(i/24) in 0.16 format, linearly interpolated.
// ------------------------------------------------------------------------------------------------

/// sigmoid(i/24) · 2^16 for i in 0..256, as TFLite's `sigmoid_table_uint16` stores it (published
/// table values; not all of them are the rounded formula, so they are data, not computed).
const SIGMOID_TABLE_U16: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
];

/// How TFLite Micro scales an int16 input before its table lookup: `multiplier` 0 means a power-of-two
/// input scale (the multiplier becomes `3 << left_shift`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LutInputScale {
    pub multiplier: i32,
    pub left_shift: i32,
}

impl LutInputScale {
    /// `(x · multiplier + rounding) >> left_shift`, after TFLite Micro's power-of-two special case.
    #[inline]
    fn apply(self, x: i16) -> i32 {
        let (multiplier, shift) =
            if self.multiplier == 0 { (3i32 << self.left_shift, 0) } else { (self.multiplier, self.left_shift) };
        let round = if shift > 0 { 1i32 << (shift - 1) } else { 0 };
        (x as i32).wrapping_mul(multiplier).wrapping_add(round) >> shift
    }
}

/// TFLite Micro's int16 logistic: Q0.15 out.
pub fn logistic_lut_i16(x: i16, scale: LutInputScale) -> i16 {
    let input = scale.apply(x);
    let abs = input.unsigned_abs();
    let uh = (abs >> 9) as usize;
    let mut result: u32 = if uh >= 255 {
        0x7FFF << 10
    } else {
        let (ua, ub) = (SIGMOID_TABLE_U16[uh] as u32, SIGMOID_TABLE_U16[uh + 1] as u32);
        (ua << 9).wrapping_add((abs & 0x1ff).wrapping_mul(ub.wrapping_sub(ua)))
    };
    result = if input >= 0 {
        result.wrapping_add(1 << 9)
    } else {
        (1u32 << 25).wrapping_sub(result).wrapping_add((1 << 9) - 1)
    };
    (result >> 10) as u16 as i16
}

/// TFLite Micro's int16 tanh: Q0.15 out.
pub fn tanh_lut_i16(x: i16, scale: LutInputScale) -> i16 {
    let input = scale.apply(x);
    let abs = input.unsigned_abs();
    let uh = (abs >> 8) as usize;
    let mut result: i32 = if uh >= 255 {
        0xFFFF << 8
    } else {
        let (ua, ub) = (SIGMOID_TABLE_U16[uh] as u32, SIGMOID_TABLE_U16[uh + 1] as u32);
        (ua << 8).wrapping_add((abs & 0xFF).wrapping_mul(ub.wrapping_sub(ua))) as i32
    };
    result = if input >= 0 { result - (1 << 23) + (1 << 7) } else { -result + (1 << 23) + (1 << 7) - 1 };
    (result >> 8) as i16
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

    /// FNV-1a (64-bit) of `f` over every int16 input, low byte first: a fingerprint of a whole table.
    fn table_hash(f: impl Fn(i16) -> i16) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for x in i16::MIN..=i16::MAX {
            for byte in f(x).to_le_bytes() {
                h = (h ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    // The expected fingerprints and values below were produced by compiling gemmlowp's
    // fixedpoint.h (commit 16e8662c) and TFLite Micro's reference_integer_ops logistic.h / tanh.h
    // (commit 90b983c2) with g++ and evaluating them on all 65,536 int16 inputs.

    #[test]
    fn int16_tanh_and_logistic_equal_gemmlowp_on_every_input() {
        let tanh = [
            0x7ba1_6fd7_4eb7_6a73u64,
            0x3674_55b5_876e_9215,
            0x8056_7d4f_0c05_d1a1,
            0x0ab2_e663_b18a_b5c1,
            0x7111_7f57_c5d5_d098,
            0xfe1a_64c4_ee25_0c04,
            0x5c6c_54cb_f960_5572,
        ];
        for (bits, want) in tanh.iter().enumerate() {
            assert_eq!(table_hash(|x| tanh_i16(x, bits as i32)), *want, "tanh with {bits} integer bits");
        }
        assert_eq!(table_hash(|x| logistic_i16(x, 3)), 0x0c53_053b_6c31_00c4, "logistic Q3.12");
        // A few values, quirks included: with no integer bits, gemmlowp's tanh(±1 raw) has the
        // wrong sign.
        for (x, t3, l3, t0) in [
            (-32768, -32767, 11, -24964),
            (-4096, -24964, 8815, -4076),
            (-1, -8, 16383, 8),
            (0, 0, 16384, 0),
            (1, 8, 16384, -8),
            (777, 6144, 17932, 780),
            (32767, 32767, 32756, 24964),
        ] {
            assert_eq!(tanh_i16(x, 3), t3, "tanh Q3.12 of {x}");
            assert_eq!(logistic_i16(x, 3), l3, "logistic Q3.12 of {x}");
            assert_eq!(tanh_i16(x, 0), t0, "tanh Q0.15 of {x}");
        }
    }

    #[test]
    fn int16_lut_sigmoid_and_tanh_equal_tflite_micro_on_every_input() {
        let cases = [
            (0, 0, 0x9106_cb5b_158b_3d55u64, 0x15d1_09ac_7595_4965u64),
            (0, 1, 0x49c7_0ed0_ac39_1151, 0x96ae_7b0d_2081_0061),
            (0, 2, 0xe6fe_a1d6_b1a2_443c, 0x5fdb_2b42_e561_9c48),
            (3, 4, 0x75aa_7fdd_35da_a198, 0x7312_c526_3ecb_cafa),
            (3, 1, 0x623b_6f3d_597b_ed19, 0x38a8_6de1_8211_e974),
        ];
        for (multiplier, left_shift, logistic, tanh) in cases {
            let scale = LutInputScale { multiplier, left_shift };
            assert_eq!(table_hash(|x| logistic_lut_i16(x, scale)), logistic, "logistic {scale:?}");
            assert_eq!(table_hash(|x| tanh_lut_i16(x, scale)), tanh, "tanh {scale:?}");
        }
        let q3 = LutInputScale { multiplier: 0, left_shift: 0 };
        assert_eq!(
            (logistic_lut_i16(-1, q3), logistic_lut_i16(0, q3), logistic_lut_i16(4096, q3)),
            (16382, 16384, 23956)
        );
        assert_eq!((tanh_lut_i16(-1, q3), tanh_lut_i16(0, q3), tanh_lut_i16(4096, q3)), (-8, 0, 24956));
    }

    #[test]
    fn int16_functions_track_their_real_counterparts() {
        for raw in (-32768i32..32768).step_by(97) {
            let x = raw as f64 / 4096.0; // Q3.12
            let tanh = tanh_i16(raw as i16, 3) as f64 / 32768.0;
            let logistic = logistic_i16(raw as i16, 3) as f64 / 32768.0;
            assert!((tanh - x.tanh()).abs() < 4e-4, "tanh({x}) = {tanh}");
            assert!((logistic - 1.0 / (1.0 + (-x).exp())).abs() < 4e-4, "logistic({x}) = {logistic}");
            let q3 = LutInputScale { multiplier: 0, left_shift: 0 };
            assert!((tanh_lut_i16(raw as i16, q3) as f64 / 32768.0 - x.tanh()).abs() < 2e-3, "lut tanh({x})");
            let l = logistic_lut_i16(raw as i16, q3) as f64 / 32768.0;
            assert!((l - 1.0 / (1.0 + (-x).exp())).abs() < 2e-3, "lut logistic({x}) = {l}");
        }
    }

    #[test]
    fn inverse_square_root_multiplier() {
        // (x, multiplier, shift) from TFLite's GetInvSqrtQuantizedMultiplierExp (see above).
        let tflite = [
            (2, 1_518_498_372, 0),
            (3, 1_239_850_284, 0),
            (7, 811_672_556, 0),
            (100, 214_748_363, 0),
            (1000, 271_637_587, -2),
            (65_536, 268_435_457, -5),
            (123_456_789, 197_912_100, -10),
            (1 << 28, 268_435_457, -11),
            ((1 << 29) + 12345, 379_620_226, -12),
            (i32::MAX, 189_812_531, -12),
        ];
        for (x, multiplier, shift) in tflite {
            let m = inv_sqrt_multiplier_exp(x, -1);
            assert_eq!(m, Multiplier { multiplier, shift }, "1/sqrt({x})");
            let got = m.multiplier as f64 / (1u64 << 31) as f64 * 2f64.powi(m.shift);
            let want = 1.0 / (x as f64).sqrt();
            assert!((got / want - 1.0).abs() < 1e-5, "1/sqrt({x}): {got} vs {want}");
        }
        assert_eq!(inv_sqrt_multiplier_exp(1, -1), Multiplier { multiplier: i32::MAX, shift: 0 });
        assert_eq!(inv_sqrt_multiplier_exp(0, -1), Multiplier { multiplier: i32::MAX, shift: 0 });
    }

    #[test]
    fn checked_log2_accepts_powers_of_two_only() {
        assert_eq!(checked_log2(2f32.powi(-11)), Some(-11));
        assert_eq!(checked_log2(1.0), Some(0));
        assert_eq!(checked_log2(3.0517578e-05), Some(-15));
        assert_eq!(checked_log2(0.001), None);
        assert_eq!(checked_log2(0.0), None);
        assert_eq!(checked_log2(f32::NAN), None);
        assert_eq!(checked_log2(-0.5), None);
    }
}
