//! Int8 element-wise operators, pooling, SOFTMAX, reductions and (de)quantization, each as TFLite's
//! reference kernel computes it. Parameters are derived once from the tensors' scales (the
//! `*Params::new` constructors reproduce TFLite's Prepare arithmetic, including where it computes
//! in float and where in double) and the per-element loops only use integers.

use super::super::conv::ConvShape;
use super::super::fixedpoint::{
    calculate_input_radius, exp_on_negative_values, mul_by_multiplier, mul_by_multiplier_greater_than_one,
    mul_by_multiplier_smaller_than_one, one_over_one_plus_x_for_x_in_0_1, preprocess_softmax_scaling,
    quantize_multiplier, rdbpot, reciprocal, saturating_rounding_mul_by_pot, srdhm, Multiplier,
};

/// ADD and SUB: both inputs rescaled to a common scale with 20 bits of headroom.
#[derive(Clone, Debug, PartialEq)]
pub struct AddParams {
    pub in1_offset: i32,
    pub in2_offset: i32,
    pub out_zp: i32,
    pub left_shift: i32,
    pub m1: Multiplier,
    pub m2: Multiplier,
    pub m_out: Multiplier,
    pub min: i32,
    pub max: i32,
    pub subtract: bool,
}

impl AddParams {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        s1: f32,
        zp1: i32,
        s2: f32,
        zp2: i32,
        s_out: f32,
        zp_out: i32,
        min: i32,
        max: i32,
        subtract: bool,
    ) -> Self {
        let left_shift = 20;
        // TFLite: `2 * std::max(float, float)` in float, then widened.
        let twice_max = (2.0 * s1.max(s2)) as f64;
        let r1 = s1 as f64 / twice_max;
        let r2 = s2 as f64 / twice_max;
        let r_out = twice_max / (((1i32 << left_shift) as f32) * s_out) as f64;
        Self::from_ratios([r1, r2, r_out], left_shift, (zp1, zp2, zp_out), (min, max), subtract)
    }

    /// The parameters from the three rescaling ratios (inputs, output) and the offsets.
    fn from_ratios(
        r: [f64; 3],
        left_shift: i32,
        (zp1, zp2, zp_out): (i32, i32, i32),
        (min, max): (i32, i32),
        subtract: bool,
    ) -> Self {
        AddParams {
            in1_offset: -zp1,
            in2_offset: -zp2,
            out_zp: zp_out,
            left_shift,
            m1: quantize_multiplier(r[0]),
            m2: quantize_multiplier(r[1]),
            m_out: quantize_multiplier(r[2]),
            min,
            max,
            subtract,
        }
    }

    #[inline]
    pub fn apply(&self, x: i8, y: i8) -> i8 {
        let a = (self.in1_offset + x as i32) * (1 << self.left_shift);
        let b = (self.in2_offset + y as i32) * (1 << self.left_shift);
        let a = mul_by_multiplier_smaller_than_one(a, self.m1);
        let b = mul_by_multiplier_smaller_than_one(b, self.m2);
        let raw = if self.subtract { a.wrapping_sub(b) } else { a.wrapping_add(b) };
        let out = if self.m_out.shift > 0 {
            mul_by_multiplier_greater_than_one(raw, self.m_out)
        } else {
            mul_by_multiplier_smaller_than_one(raw, self.m_out)
        };
        out.wrapping_add(self.out_zp).clamp(self.min, self.max) as i8
    }
}

/// MUL: `zp_out + M · (x − zp1)(y − zp2)` with `M = s1·s2/s_out` computed in float.
#[derive(Clone, Debug, PartialEq)]
pub struct MulParams {
    pub in1_offset: i32,
    pub in2_offset: i32,
    pub out_zp: i32,
    pub m: Multiplier,
    pub min: i32,
    pub max: i32,
}

impl MulParams {
    #[allow(clippy::too_many_arguments)]
    pub fn new(s1: f32, zp1: i32, s2: f32, zp2: i32, s_out: f32, zp_out: i32, min: i32, max: i32) -> Self {
        let real = (s1 * s2 / s_out) as f64;
        MulParams { in1_offset: -zp1, in2_offset: -zp2, out_zp: zp_out, m: quantize_multiplier(real), min, max }
    }

    #[inline]
    pub fn apply(&self, x: i8, y: i8) -> i8 {
        let p = (self.in1_offset + x as i32) * (self.in2_offset + y as i32);
        mul_by_multiplier(p, self.m).wrapping_add(self.out_zp).clamp(self.min, self.max) as i8
    }
}

/// RELU, RELU6, RELU_N1_TO_1 on int8 (TFLite's `ReluX`): rescale to the output, then clamp.
#[derive(Clone, Debug, PartialEq)]
pub struct ReluParams {
    pub in_zp: i32,
    pub out_zp: i32,
    pub m: Multiplier,
    pub min: i32,
    pub max: i32,
}

impl ReluParams {
    /// `lo`/`hi` are the real clamp bounds (`hi` infinite for RELU).
    pub fn new(s_in: f32, zp_in: i32, s_out: f32, zp_out: i32, lo: f32, hi: f32) -> Self {
        let real = (s_in / s_out) as f64;
        let min = (-128i32).max(zp_out + (lo / s_out).round() as i32);
        let max = if hi.is_infinite() { 127 } else { 127i32.min(zp_out + (hi / s_out).round() as i32) };
        ReluParams { in_zp: zp_in, out_zp: zp_out, m: quantize_multiplier(real), min, max }
    }

    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        let v = self.out_zp + mul_by_multiplier(x as i32 - self.in_zp, self.m);
        v.clamp(self.min, self.max) as i8
    }
}

/// LEAKY_RELU on int8: one multiplier for x >= 0, one (signed) for alpha.
#[derive(Clone, Debug, PartialEq)]
pub struct LeakyReluParams {
    pub in_zp: i32,
    pub out_zp: i32,
    pub identity: Multiplier,
    pub alpha: Multiplier,
}

impl LeakyReluParams {
    pub fn new(s_in: f32, zp_in: i32, s_out: f32, zp_out: i32, alpha: f32) -> Self {
        LeakyReluParams {
            in_zp: zp_in,
            out_zp: zp_out,
            identity: quantize_multiplier((s_in / s_out) as f64),
            alpha: quantize_multiplier((s_in * alpha / s_out) as f64),
        }
    }

    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        let v = x as i32 - self.in_zp;
        let out = if v >= 0 {
            self.out_zp + mul_by_multiplier(v, self.identity)
        } else {
            let negative = self.alpha.multiplier < 0;
            let safe = Multiplier { multiplier: self.alpha.multiplier.wrapping_abs(), shift: self.alpha.shift };
            let scaled = mul_by_multiplier(v, safe);
            self.out_zp + if negative { -scaled } else { scaled }
        };
        out.clamp(-128, 127) as i8
    }
}

/// HARD_SWISH on int8 (TFLite's reference fixed-point version, in 16-bit arithmetic).
#[derive(Clone, Debug, PartialEq)]
pub struct HardSwishParams {
    pub in_zp: i16,
    pub out_zp: i16,
    pub out_mult: i16,
    pub out_exp: i32,
    pub reluish_mult: i16,
    pub reluish_exp: i32,
}

fn downscale_multiplier(m: i32) -> i16 {
    const ROUND: i32 = 1 << 15;
    if m >= i32::MAX - ROUND {
        return i16::MAX;
    }
    ((m + ROUND) >> 16) as i16
}

fn srdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

fn sdhm16_truncating(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

fn saturating_left_shift16(v: i16, amount: i32) -> i16 {
    (v as i64 * (1i64 << amount)).clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

fn rdbpot16(x: i16, exponent: i32) -> i16 {
    let mask = ((1i32 << exponent) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1) + (x < 0) as i16;
    (x >> exponent) + (remainder > threshold) as i16
}

impl HardSwishParams {
    pub fn new(s_in: f32, zp_in: i32, s_out: f32, zp_out: i32) -> Option<Self> {
        let hires_input_scale = (1.0f32 / 128.0) * s_in;
        let reluish_scale = 3.0f32 / 32768.0;
        let out = quantize_multiplier((hires_input_scale / s_out) as f64);
        let reluish = quantize_multiplier((hires_input_scale / reluish_scale) as f64);
        if out.shift > 0 {
            return None; // TFLite refuses this (output scale too small for the input).
        }
        Some(HardSwishParams {
            in_zp: zp_in as i16,
            out_zp: zp_out as i16,
            out_mult: downscale_multiplier(out.multiplier),
            out_exp: out.shift,
            reluish_mult: downscale_multiplier(reluish.multiplier),
            reluish_exp: reluish.shift,
        })
    }

    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        let input = (x as i16).wrapping_sub(self.in_zp);
        let hires = input.wrapping_mul(1 << 7);
        let preshift_out = srdhm16(hires, self.out_mult);
        let mut reluish = hires;
        if self.reluish_exp > 0 {
            reluish = saturating_left_shift16(reluish, self.reluish_exp - 1);
        }
        reluish = srdhm16(reluish, self.reluish_mult);
        if self.reluish_exp > 0 {
            reluish = saturating_left_shift16(reluish, 1);
        }
        if self.reluish_exp < 0 {
            reluish = rdbpot16(reluish, -self.reluish_exp);
        }
        reluish = ((reluish as i32 + (1 << 15)) >> 1) as i16;
        let pre = sdhm16_truncating(reluish, preshift_out);
        let out = rdbpot16(pre, -self.out_exp).wrapping_add(self.out_zp);
        out.clamp(-128, 127) as i8
    }
}

/// A 256-entry table for LOGISTIC and TANH, filled in float as TFLite's `LUTPopulate` does.
pub fn lut(s_in: f32, zp_in: i32, s_out: f32, zp_out: i32, f: impl Fn(f32) -> f32) -> [i8; 256] {
    let mut t = [0i8; 256];
    let inverse = 1.0f32 / s_out;
    for v in -128i32..=127 {
        let dequantized = s_in * (v - zp_in) as f32;
        let rescaled = (f(dequantized) * inverse).round();
        let q = (rescaled + zp_out as f32) as i32;
        t[(v as i8 as u8) as usize] = q.clamp(-128, 127) as i8;
    }
    t
}

pub fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// SOFTMAX on int8 over rows of `depth` (TFLite's reference fixed-point algorithm).
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxParams {
    pub m: Multiplier,
    pub diff_min: i32,
}

impl SoftmaxParams {
    const SCALED_DIFF_INTEGER_BITS: i32 = 5;
    const ACCUMULATION_INTEGER_BITS: i32 = 12;

    pub fn new(beta: f32, s_in: f32) -> Self {
        let m = preprocess_softmax_scaling(beta as f64, s_in as f64, Self::SCALED_DIFF_INTEGER_BITS);
        let diff_min = -calculate_input_radius(Self::SCALED_DIFF_INTEGER_BITS, m.shift, 31);
        SoftmaxParams { m, diff_min }
    }

    pub fn run(&self, input: &[i8], depth: usize, out: &mut [i8]) {
        if depth == 0 {
            return;
        }
        for (x, o) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
            let max = x.iter().copied().max().unwrap_or(i8::MIN) as i32;
            let scaled = |v: i8| mul_by_multiplier_greater_than_one(v as i32 - max, self.m);
            let mut sum = 0i32;
            for &v in x {
                if v as i32 - max >= self.diff_min {
                    let e = exp_on_negative_values(scaled(v), Self::SCALED_DIFF_INTEGER_BITS);
                    sum = sum.wrapping_add(saturating_rounding_mul_by_pot(e, -Self::ACCUMULATION_INTEGER_BITS));
                }
            }
            let (shifted_scale, bits_over_unit) = reciprocal(sum, Self::ACCUMULATION_INTEGER_BITS);
            let exponent = bits_over_unit + 31 - 8;
            for (o, &v) in o.iter_mut().zip(x) {
                *o = if v as i32 - max >= self.diff_min {
                    let e = exp_on_negative_values(scaled(v), Self::SCALED_DIFF_INTEGER_BITS);
                    let unsat = rdbpot(srdhm(shifted_scale, e), exponent.clamp(0, 31));
                    (unsat - 128).clamp(-128, 127) as i8
                } else {
                    -128
                };
            }
        }
    }
}

/// AVERAGE_POOL_2D on int8: rounded average of the taps inside the image, clamped.
pub fn average_pool(s: &ConvShape, input: &[i8], min: i32, max: i32, out: &mut [i8]) {
    super::super::pool::pool(s, input, out, |taps, c| {
        let (mut acc, mut n) = (0i32, 0i32);
        for i in taps {
            acc += input[i + c] as i32;
            n += 1;
        }
        if n == 0 {
            return 0;
        }
        let avg = if acc > 0 { (acc + n / 2) / n } else { (acc - n / 2) / n };
        avg.clamp(min, max) as i8
    });
}

/// MAX_POOL_2D on int8.
pub fn max_pool(s: &ConvShape, input: &[i8], min: i32, max: i32, out: &mut [i8]) {
    super::super::pool::pool(s, input, out, |taps, c| {
        let m = taps.map(|i| input[i + c] as i32).max().unwrap_or(-128);
        m.clamp(min, max) as i8
    });
}

/// MEAN on int8: `zp_out + M' · (Σ x − zp_in · n)` with TFLite's count-folded multiplier.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanParams {
    pub in_zp: i32,
    pub out_zp: i32,
    pub m: Multiplier,
    pub count: i64,
}

impl MeanParams {
    pub fn new(s_in: f32, zp_in: i32, s_out: f32, zp_out: i32, count: usize) -> Self {
        let base = quantize_multiplier(s_in as f64 / s_out as f64);
        let count = count as i64;
        let mut m = base;
        if count > 0 {
            let mut shift = 63 - (count as u64).leading_zeros() as i32;
            shift = shift.min(32).min(31 + base.shift);
            m.multiplier = (((base.multiplier as i64) << shift) / count) as i32;
            m.shift = base.shift - shift;
        }
        MeanParams { in_zp: zp_in, out_zp: zp_out, m, count }
    }

    pub fn run(&self, input: &[i8], map: &[usize], out: &mut [i8]) {
        let mut sums = vec![0i32; out.len()];
        for (&v, &o) in input.iter().zip(map) {
            sums[o] = sums[o].wrapping_add(v as i32);
        }
        for (o, s) in out.iter_mut().zip(sums) {
            let shifted = s.wrapping_sub((self.in_zp as i64 * self.count) as i32);
            *o = (mul_by_multiplier(shifted, self.m) + self.out_zp).clamp(-128, 127) as i8;
        }
    }
}

/// REDUCE_MAX on int8 (input and output share parameters).
pub fn reduce_max(input: &[i8], map: &[usize], out: &mut [i8]) {
    out.fill(i8::MIN);
    for (&v, &o) in input.iter().zip(map) {
        out[o] = out[o].max(v);
    }
}

/// Float → int8/uint8/int16 (`round(x / scale) + zp`, clamped), as TFLite's `AffineQuantize`.
pub fn quantize(x: &[f32], scale: f32, zp: i32, lo: i32, hi: i32, out: &mut [i32]) {
    super::super::quant::quantize_f32(x, scale, zp, lo, hi, out);
}

/// Integer → integer QUANTIZE (TFLite's `Requantize`), e.g. uint8 model inputs into int8.
pub fn requantize(x: &[i32], in_zp: i32, m: Multiplier, out_zp: i32, lo: i32, hi: i32, out: &mut [i32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (mul_by_multiplier(v - in_zp, m) + out_zp).clamp(lo, hi);
    }
}

pub use super::super::quant::dequantize_one;

// TFLite Micro's arithmetic, where it differs from LiteRT's reference kernels. Each variant below
// reproduces what TFLM's kernel (tensorflow/lite/micro/kernels) computes; the LiteRT twin above
// stays the default until the engine's `target` option picks one.

/// `(a + b) / 2` rounded half away from zero (gemmlowp's `RoundingHalfSum`).
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp's `one_minus_x_over_one_plus_x_for_x_in_0_1`: `(1 − x) / (1 + x)`, Q0.31 in and out,
/// by three Newton-Raphson steps in Q2.29.
pub fn one_minus_x_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const C48_OVER_17: i32 = 1_515_870_810;
    const CNEG32_OVER_17: i32 = -1_010_580_540;
    const ONE_Q2: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = C48_OVER_17.wrapping_add(srdhm(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let one_minus = ONE_Q2.wrapping_sub(srdhm(half_denominator, x));
        x = x.wrapping_add(saturating_rounding_mul_by_pot(srdhm(x, one_minus), 2));
    }
    saturating_rounding_mul_by_pot(x.wrapping_sub(ONE_Q2), 2)
}

/// gemmlowp's `tanh` of a Q4.27 value, result Q0.31.
pub fn gemmlowp_tanh_q4(a: i32) -> i32 {
    if a == 0 {
        return 0;
    }
    let negative_abs = if a < 0 { a } else { a.wrapping_neg() };
    // tanh(|a|) = (1 − e^(−2|a|)) / (1 + e^(−2|a|)); doubling only relabels the format (Q5.26).
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(negative_abs, 5));
    if a < 0 {
        t.wrapping_neg()
    } else {
        t
    }
}

/// gemmlowp's `logistic` of a Q4.27 value, result Q0.31.
pub fn gemmlowp_logistic_q4(a: i32) -> i32 {
    if a == 0 {
        return 1 << 30;
    }
    let abs = if a > 0 { a } else { a.wrapping_neg() };
    let positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(abs.wrapping_neg(), 4));
    if a > 0 {
        positive
    } else {
        i32::MAX.wrapping_sub(positive)
    }
}

/// Int8 TANH and LOGISTIC as TFLite Micro computes them (`reference_integer_ops::Tanh` and
/// `Logistic`): the input difference is scaled into Q4.27 by a multiplier taken from
/// `frexp(input_scale · 2^27)`, gemmlowp's fixed-point function is applied, and the Q0.31 result
/// is rounded to the fixed output format (TANH: scale 1/128, zero point 0; LOGISTIC: scale 1/256,
/// zero point −128). Inputs at or beyond the radius saturate. The output tensor's own parameters
/// are not read, as in TFLM. LiteRT's reference kernels use a float table instead ([`lut`]); the
/// two differ by one step on a few input codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SigmoidTflmParams {
    pub in_zp: i32,
    pub radius: i32,
    pub m: Multiplier,
    pub tanh: bool,
}

impl SigmoidTflmParams {
    const INPUT_INTEGER_BITS: i32 = 4;

    pub fn tanh(s_in: f32, zp_in: i32) -> Self {
        Self::new(s_in, zp_in, true)
    }

    pub fn logistic(s_in: f32, zp_in: i32) -> Self {
        Self::new(s_in, zp_in, false)
    }

    fn new(s_in: f32, zp_in: i32, tanh: bool) -> Self {
        let real = s_in as f64 * (1i64 << (31 - Self::INPUT_INTEGER_BITS)) as f64;
        let (q, shift) = super::super::fixedpoint::frexp(real);
        // TFLM rounds half away from zero and casts; a float scale's mantissa never rounds to 2^31.
        let multiplier = (q * (1i64 << 31) as f64).round() as i64 as i32;
        // CalculateInputRadius(4, shift, 31), computed without shifting by a negative amount.
        let radius = (15.0 * 2f64.powi(27) / 2f64.powi(shift)).floor().min(i32::MAX as f64) as i32;
        SigmoidTflmParams { in_zp: zp_in, radius, m: Multiplier { multiplier, shift }, tanh }
    }

    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        let input = x as i32 - self.in_zp;
        if input <= -self.radius {
            return i8::MIN;
        }
        if input >= self.radius {
            return i8::MAX;
        }
        // |input| < radius keeps the Q4.27 value in range, so the shift cannot overflow.
        let q4 = mul_by_multiplier(input, self.m);
        let out = if self.tanh {
            rdbpot(gemmlowp_tanh_q4(q4), 31 - 7)
        } else {
            rdbpot(gemmlowp_logistic_q4(q4), 31 - 8) - 128
        };
        out.clamp(-128, 127) as i8
    }

    /// The 256-entry table of [`SigmoidTflmParams::apply`], indexed by the input byte.
    pub fn table(&self) -> [i8; 256] {
        let mut t = [0i8; 256];
        for v in i8::MIN..=i8::MAX {
            t[(v as u8) as usize] = self.apply(v);
        }
        t
    }
}

impl MulParams {
    /// MUL as TFLite Micro prepares it: `M = s1·s2/s_out` in double precision (LiteRT's reference
    /// kernel, [`MulParams::new`], multiplies in float).
    #[allow(clippy::too_many_arguments)]
    pub fn new_tflm(s1: f32, zp1: i32, s2: f32, zp2: i32, s_out: f32, zp_out: i32, min: i32, max: i32) -> Self {
        let real = s1 as f64 * s2 as f64 / s_out as f64;
        MulParams { in1_offset: -zp1, in2_offset: -zp2, out_zp: zp_out, m: quantize_multiplier(real), min, max }
    }
}

impl AddParams {
    /// SUB as TFLite Micro prepares it: the three rescaling ratios are divided in float and then
    /// widened (TFLM's ADD, and LiteRT's ADD and SUB, divide in double: [`AddParams::new`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new_tflm_sub(s1: f32, zp1: i32, s2: f32, zp2: i32, s_out: f32, zp_out: i32, min: i32, max: i32) -> Self {
        let left_shift = 20;
        let twice_max = 2.0 * s1.max(s2);
        let r1 = (s1 / twice_max) as f64;
        let r2 = (s2 / twice_max) as f64;
        let r_out = (twice_max / ((1i32 << left_shift) as f32 * s_out)) as f64;
        Self::from_ratios([r1, r2, r_out], left_shift, (zp1, zp2, zp_out), (min, max), true)
    }
}

/// Int8 RELU6 as TFLite Micro computes it: a clamp to `[zp_in, q(6.0)]` in the input's own
/// quantization, without rescaling to the output's parameters (LiteRT's reference kernel rescales:
/// [`ReluParams`]). The two agree when input and output share scale and zero point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relu6TflmParams {
    pub lower: i8,
    pub upper: i8,
}

impl Relu6TflmParams {
    pub fn new(s_in: f32, zp_in: i32) -> Self {
        let six = ((6.0f32 / s_in).round() as i64 + zp_in as i64).clamp(-128, 127) as i8;
        Relu6TflmParams { lower: zp_in.clamp(-128, 127) as i8, upper: six }
    }

    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        if x > self.upper {
            self.upper
        } else if x < self.lower {
            self.lower
        } else {
            x
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn add_tracks_real_arithmetic() {
        let p = AddParams::new(0.1, 5, 0.05, -3, 0.12, 2, -128, 127, false);
        for &(x, y) in &[(10i8, 20i8), (-100, 50), (127, 127), (-128, -128)] {
            let real = 0.1 * (x as f32 - 5.0) + 0.05 * (y as f32 + 3.0);
            let want = ((real / 0.12).round() as i32 + 2).clamp(-128, 127);
            assert!((p.apply(x, y) as i32 - want).abs() <= 1, "{x}+{y}");
        }
    }

    #[test]
    fn mul_and_relu_track_real_arithmetic() {
        let p = MulParams::new(0.02, 0, 0.03, 10, 0.01, -5, -128, 127);
        let real = 0.02 * 50.0 * 0.03 * (40.0 - 10.0);
        assert!((p.apply(50, 40) as i32 - ((real / 0.01f32).round() as i32 - 5)).abs() <= 1);
        let r = ReluParams::new(0.1, 0, 0.05, -128, 0.0, 6.0);
        assert_eq!(r.apply(-20), -128);
        assert_eq!(r.apply(127), (-128 + 120) as i8); // 6.0 / 0.05 = 120 steps above zero
    }

    #[test]
    fn softmax_sums_to_about_one() {
        let p = SoftmaxParams::new(1.0, 0.1);
        let x = [10i8, 20, 30, 0, -128];
        let mut out = [0i8; 5];
        p.run(&x, 5, &mut out);
        let total: f32 = out.iter().map(|&v| (v as f32 + 128.0) / 256.0).sum();
        assert!((total - 1.0).abs() < 0.02, "{out:?}");
        assert!(out[2] > out[1] && out[1] > out[0]);
    }

    #[test]
    fn average_rounds_half_away_from_zero_and_mean_matches() {
        let m = MeanParams::new(1.0, 0, 1.0, 0, 4);
        let mut out = [0i8; 1];
        m.run(&[1, 2, 2, 2], &[0, 0, 0, 0], &mut out); // 7/4 = 1.75
        assert_eq!(out[0], 2);
        m.run(&[-1, -2, -2, -2], &[0, 0, 0, 0], &mut out);
        assert_eq!(out[0], -2);
        assert_eq!(dequantize_one(-128, 0.5, -128), 0.0);
    }

    #[test]
    fn hard_swish_tracks_float() {
        let p = HardSwishParams::new(0.05, 0, 0.03, -20).unwrap();
        for x in [-128i8, -60, -10, 0, 10, 60, 127] {
            let v = 0.05 * x as f32;
            let real = v * (v + 3.0).clamp(0.0, 6.0) / 6.0;
            let want = ((real / 0.03).round() as i32 - 20).clamp(-128, 127);
            assert!((p.apply(x) as i32 - want).abs() <= 1, "x={x}: {} vs {want}", p.apply(x));
        }
    }

    /// A small deterministic stream of positive scales spanning a few decades.
    fn scales(n: usize) -> Vec<f32> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let unit = (x >> 8) as f32 / (1u32 << 24) as f32;
                10f32.powf(-3.0 + 2.5 * unit)
            })
            .collect()
    }

    #[test]
    fn tflm_sigmoids_track_float() {
        for (k, &s_in) in scales(40).iter().enumerate() {
            let zp = (k as i32 * 37) % 256 - 128;
            let th = SigmoidTflmParams::tanh(s_in, zp);
            let lg = SigmoidTflmParams::logistic(s_in, zp);
            for v in i8::MIN..=i8::MAX {
                let x = s_in * (v as i32 - zp) as f32;
                let want_t = (x.tanh() * 128.0).round().clamp(-128.0, 127.0) as i32;
                let want_l = (logistic(x) * 256.0 - 128.0).round().clamp(-128.0, 127.0) as i32;
                assert!((th.apply(v) as i32 - want_t).abs() <= 1, "tanh s={s_in} zp={zp} x={v}");
                assert!((lg.apply(v) as i32 - want_l).abs() <= 1, "logistic s={s_in} zp={zp} x={v}");
            }
            assert_eq!(th.table()[(zp as i8 as u8) as usize], 0, "tanh(0) = 0");
            assert_eq!(lg.table()[(zp as i8 as u8) as usize], 0, "logistic(0) = 1/2, code 0");
        }
    }

    /// Input codes where TFLM's fixed-point TANH/LOGISTIC and LiteRT's float table disagree (about
    /// 4 in 2 million over random scales). The expected TFLM outputs were read from the pip
    /// `tflite-micro` runtime on one-operator models with these parameters.
    #[test]
    fn tflm_and_litert_sigmoids_differ_where_tflm_says() {
        let cases: [(bool, u32, i32, i8, i8, i8); 4] = [
            // (tanh?, input scale bits, input zero point, x, TFLM, LiteRT table)
            (true, 0x3c51_f3c3, -49, 100, 122, 123),
            (false, 0x3ba0_0568, 41, 33, -3, -2),
            (true, 0x3c86_7f03, 16, -60, -108, -109),
            (true, 0x3c86_7f03, 16, 92, 108, 109),
        ];
        for (is_tanh, bits, zp, x, tflm, litert) in cases {
            let s = f32::from_bits(bits);
            let (p, table) = if is_tanh {
                (SigmoidTflmParams::tanh(s, zp), lut(s, zp, 1.0 / 128.0, 0, f32::tanh))
            } else {
                (SigmoidTflmParams::logistic(s, zp), lut(s, zp, 1.0 / 256.0, -128, logistic))
            };
            assert_eq!(p.apply(x), tflm, "TFLM, scale {s:e}, x={x}");
            assert_eq!(table[(x as u8) as usize], litert, "LiteRT, scale {s:e}, x={x}");
        }
    }

    #[test]
    fn tflm_sigmoids_saturate_beyond_the_radius() {
        let p = SigmoidTflmParams::tanh(0.1, 3);
        assert_eq!(p.apply(127), 127);
        assert_eq!(p.apply(-128), -128);
        let l = SigmoidTflmParams::logistic(0.5, 0);
        assert_eq!(l.apply(127), 127);
        assert_eq!(l.apply(-128), -128);
        // A huge input scale leaves a radius of zero: TFLM saturates every input, even zero.
        let big = SigmoidTflmParams::tanh(64.0, 0);
        assert_eq!(big.radius, 0);
        assert_eq!(big.apply(0), -128);
        assert_eq!(big.apply(1), 127);
    }

    #[test]
    fn gemmlowp_sigmoids_match_their_definitions() {
        for i in -200..=200 {
            let x = i as f64 / 25.0; // [-8, 8]
            let raw = (x * (1u64 << 27) as f64) as i32;
            let t = gemmlowp_tanh_q4(raw) as f64 / 2f64.powi(31);
            let l = gemmlowp_logistic_q4(raw) as f64 / 2f64.powi(31);
            assert!((t - x.tanh()).abs() < 1e-6, "tanh({x}) = {t}");
            assert!((l - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6, "logistic({x}) = {l}");
        }
        let q = one_minus_x_over_one_plus_x_for_x_in_0_1(1 << 30) as f64 / 2f64.powi(31);
        assert!((q - 1.0 / 3.0).abs() < 1e-8);
    }

    #[test]
    fn tflm_mul_and_sub_prepare_in_other_precisions() {
        let s = scales(300);
        let (mut mul_differs, mut sub_differs) = (0, 0);
        for c in s.chunks_exact(3) {
            let (s1, s2, so) = (c[0], c[1], c[2] * 4.0);
            let lite = MulParams::new(s1, 1, s2, -2, so, 3, -128, 127);
            let tflm = MulParams::new_tflm(s1, 1, s2, -2, so, 3, -128, 127);
            mul_differs += (lite.m != tflm.m) as usize;
            let lite_sub = AddParams::new(s1, 1, s2, -2, so, 3, -128, 127, true);
            let tflm_sub = AddParams::new_tflm_sub(s1, 1, s2, -2, so, 3, -128, 127);
            sub_differs += (lite_sub != tflm_sub) as usize;
            for &(x, y) in &[(10i8, 20i8), (-100, 50), (127, -128), (-128, 127), (5, 5)] {
                let prod = s1 as f64 * (x as f64 - 1.0) * s2 as f64 * (y as f64 + 2.0) / so as f64 + 3.0;
                let want = prod.round().clamp(-128.0, 127.0) as i32;
                assert!((tflm.apply(x, y) as i32 - want).abs() <= 1, "mul {x}·{y}");
                let diff = (s1 as f64 * (x as f64 - 1.0) - s2 as f64 * (y as f64 + 2.0)) / so as f64 + 3.0;
                let want = diff.round().clamp(-128.0, 127.0) as i32;
                assert!((tflm_sub.apply(x, y) as i32 - want).abs() <= 1, "sub {x}-{y}");
            }
        }
        assert!(mul_differs > 0, "float and double MUL multipliers never differed");
        assert!(sub_differs > 0, "float and double SUB ratios never differed");
    }

    #[test]
    fn tflm_relu6_clamps_in_the_input_quantization() {
        let (s, zp) = (0.05f32, -10);
        let t = Relu6TflmParams::new(s, zp);
        assert_eq!((t.lower, t.upper), (-10, 110)); // 6 / 0.05 = 120 steps above the zero point
                                                    // Same input and output parameters: TFLM's clamp equals LiteRT's rescaling RELU6.
        let lite = ReluParams::new(s, zp, s, zp, 0.0, 6.0);
        for v in i8::MIN..=i8::MAX {
            assert_eq!(t.apply(v), lite.apply(v), "x={v}");
        }
        // Different output parameters: TFLM ignores them, LiteRT rescales.
        let rescaled = ReluParams::new(s, zp, 0.1, -128, 0.0, 6.0);
        assert_eq!(t.apply(100), 100);
        assert_eq!(rescaled.apply(100), -128 + 55);
    }
}
