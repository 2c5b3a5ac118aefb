//! Float ↔ integer conversions: QUANTIZE / DEQUANTIZE of whole tensors, and the on-the-fly input
//! quantization of hybrid kernels, with LiteRT's exact formulas (its rounding is `round` half away
//! from zero, which is Rust's `f32::round`).

/// Symmetric int8 quantization of `x` into `q` in [-127, 127]; returns the scale (1.0 for all-zero
/// input, as LiteRT does).
pub fn symmetric_quantize(x: &[f32], q: &mut [i8]) -> f32 {
    let (min, max) = min_max(x);
    let range = min.abs().max(max.abs());
    if range == 0.0 {
        q.fill(0);
        return 1.0;
    }
    let scale = range / 127.0;
    let inv = 127.0 / range;
    for (q, &v) in q.iter_mut().zip(x) {
        *q = ((v * inv).round() as i32).clamp(-127, 127) as i8;
    }
    scale
}

/// Asymmetric int8 quantization of `x` into `q`, the range widened to include 0; returns
/// (scale, zero point). The zero point is derived in double precision, as LiteRT does.
pub fn asymmetric_quantize(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let (min, max) = min_max(x);
    let rmin = min.min(0.0) as f64;
    let rmax = max.max(0.0) as f64;
    if rmin == rmax {
        q.fill(0);
        return (1.0, 0);
    }
    let (qmin, qmax) = (-128.0f64, 127.0f64);
    let scale = (rmax - rmin) / (qmax - qmin);
    let zp_from_min = qmin - rmin / scale;
    let zp_from_max = qmax - rmax / scale;
    let err_min = qmin.abs() + (rmin / scale).abs();
    let err_max = qmax.abs() + (rmax / scale).abs();
    let zp = if err_min < err_max { zp_from_min } else { zp_from_max };
    let zp = if zp <= qmin {
        -128
    } else if zp >= qmax {
        127
    } else {
        zp.round() as i32
    };
    let scale = scale as f32;
    let inv = 1.0f32 / scale;
    for (q, &v) in q.iter_mut().zip(x) {
        *q = ((zp as f32 + v * inv).round() as i32).clamp(-128, 127) as i8;
    }
    (scale, zp)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    for &v in x {
        min = min.min(v);
        max = max.max(v);
    }
    if x.is_empty() {
        (0.0, 0.0)
    } else {
        (min, max)
    }
}

/// `real = scale · (q − zero_point)`, computed in double and rounded to f32 once, as TFLite's
/// DEQUANTIZE does.
#[inline]
pub fn dequantize_one(q: i32, scale: f32, zero_point: i32) -> f32 {
    (scale as f64 * (q - zero_point) as f64) as f32
}

/// [`dequantize_one`] over a slice, with one per-tensor parameter pair: the plain loop
/// [`dequantize_into`] is tested against.
pub fn dequantize<T: Copy + Into<i32>>(q: &[T], scale: f32, zero_point: i32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(q) {
        *o = dequantize_one(v.into(), scale, zero_point);
    }
}

/// Zero points within this distance of 0 keep every `q − zero_point` of an 8- or 16-bit `q` within
/// 2^24, exact in f32.
const F32_EXACT_ZP: u32 = 1 << 23;

/// [`dequantize`] computed in f32: `(q − zero_point) as f32 · scale`, the same values. The
/// difference is an integer below 2^24 in magnitude, exact in f32, and its product with a 24-bit
/// scale has at most 48 significant bits, exact in f64: the f64 product rounded to f32 once and
/// the f32 product are both the exact product correctly rounded (overflow to infinity and
/// subnormals included). With a zero point further from 0 the plain loop runs.
pub fn dequantize_into<T: QuantInt>(q: &[T], scale: f32, zero_point: i32, out: &mut [f32]) {
    if zero_point.unsigned_abs() > F32_EXACT_ZP {
        return dequantize(q, scale, zero_point, out);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (q, out) = {
        let done = T::dequantize_simd(q, scale, zero_point, out);
        (&q[done..], &mut out[done..])
    };
    for (o, &v) in out.iter_mut().zip(q) {
        *o = (v.into() - zero_point) as f32 * scale;
    }
}

/// The integer types float inputs are quantized to (and dequantized from) in whole tensors.
pub trait QuantInt: Copy + Into<i32> + 'static {
    const MIN: i32;
    const MAX: i32;
    /// `v`, already within [`Self::MIN`, `Self::MAX`].
    fn narrow(v: i32) -> Self;
    /// Quantizes the longest prefix the SIMD loop takes; returns its length.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn quantize_simd(x: &[f32], scale: f32, zero_point: i32, out: &mut [Self]) -> usize;
    /// Dequantizes the longest prefix the SIMD loop takes; returns its length.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn dequantize_simd(q: &[Self], scale: f32, zero_point: i32, out: &mut [f32]) -> usize;
}

macro_rules! quant_int {
    ($t:ty, $quantize:ident, $dequantize:ident) => {
        impl QuantInt for $t {
            const MIN: i32 = <$t>::MIN as i32;
            const MAX: i32 = <$t>::MAX as i32;
            fn narrow(v: i32) -> Self {
                v as $t
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            fn quantize_simd(x: &[f32], scale: f32, zero_point: i32, out: &mut [Self]) -> usize {
                simd128::$quantize(x, scale, zero_point, out)
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            fn dequantize_simd(q: &[Self], scale: f32, zero_point: i32, out: &mut [f32]) -> usize {
                simd128::$dequantize(q, scale, zero_point, out)
            }
        }
    };
}
quant_int!(i8, quantize_i8, dequantize_i8);
quant_int!(u8, quantize_u8, dequantize_u8);
quant_int!(i16, quantize_i16, dequantize_i16);

/// Float → `T` QUANTIZE written straight into `out`: [`quantize_f32`] clamped to `T`'s range.
pub fn quantize_into<T: QuantInt>(x: &[f32], scale: f32, zero_point: i32, out: &mut [T]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (x, out) = {
        let done = T::quantize_simd(x, scale, zero_point, out);
        (&x[done..], &mut out[done..])
    };
    quantize_into_reference(x, scale, zero_point, out);
}

/// The plain loop [`quantize_into`] is tested against: [`quantize_f32_reference`]'s arithmetic.
pub fn quantize_into_reference<T: QuantInt>(x: &[f32], scale: f32, zero_point: i32, out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let q = (v / scale).round() as i32;
        *o = T::narrow(q.saturating_add(zero_point).clamp(T::MIN, T::MAX));
    }
}

/// `x.round()` (half away from zero) without the library call it is in wasm: the truncation,
/// one step further (by `x`'s sign) where the part cut off, exact in f32, is at least a half.
/// NaN and infinities come back as they are.
#[inline]
pub fn round_half_away(x: f32) -> f32 {
    let t = x.trunc();
    if (x - t).abs() >= 0.5 {
        t + 1f32.copysign(x)
    } else {
        t
    }
}

/// The position of the first NaN or infinite value.
pub fn first_non_finite(x: &[f32]) -> Option<usize> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let start = simd128::finite_prefix(x);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let start = 0;
    first_non_finite_reference(&x[start..]).map(|p| p + start)
}

/// The plain scan [`first_non_finite`] is tested against.
pub fn first_non_finite_reference(x: &[f32]) -> Option<usize> {
    x.iter().position(|v| !v.is_finite())
}

/// Float → integer QUANTIZE as TFLite's reference kernel does it: `round(x / scale) + zero_point`,
/// clamped to the type's range.
pub fn quantize_f32(x: &[f32], scale: f32, zero_point: i32, qmin: i32, qmax: i32, out: &mut [i32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (x, out) = {
        let done = simd128::quantize(x, scale, zero_point, qmin, qmax, out);
        (&x[done..], &mut out[done..])
    };
    quantize_f32_reference(x, scale, zero_point, qmin, qmax, out);
}

/// The plain loop [`quantize_f32`] is tested against.
pub fn quantize_f32_reference(x: &[f32], scale: f32, zero_point: i32, qmin: i32, qmax: i32, out: &mut [i32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        // `as i32` saturates (and maps NaN to 0), so huge values cannot wrap.
        let q = (v / scale).round() as i32;
        *o = q.saturating_add(zero_point).clamp(qmin, qmax);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    //! [`super::quantize_f32`] and [`super::quantize_into`] four values at a time (`f32::round` is
    //! a library call in wasm), [`super::dequantize_into`] and [`super::first_non_finite`].
    use core::arch::wasm32::*;

    /// 2^23: every f32 of at least this magnitude is an integer, and a rounded value clamped to it
    /// converts exactly and lands outside any clamp range within 2^23 of the zero point.
    const LIMIT: f32 = 8_388_608.0;

    /// The constants of one quantization, splatted.
    struct Quantizer {
        scale: v128,
        zero_point: v128,
        qmin: v128,
        qmax: v128,
    }

    impl Quantizer {
        /// `None` when the clamp range reaches further than [`LIMIT`] from the zero point (the
        /// scalar loop then does it all).
        fn new(scale: f32, zp: i32, qmin: i32, qmax: i32) -> Option<Quantizer> {
            let limit = LIMIT as i64;
            if qmin as i64 - (zp as i64) < -limit || qmax as i64 - (zp as i64) > limit {
                return None;
            }
            let (scale, zero_point) = (f32x4_splat(scale), i32x4_splat(zp));
            Some(Quantizer { scale, zero_point, qmin: i32x4_splat(qmin), qmax: i32x4_splat(qmax) })
        }

        /// Four floats (read from `x`, which holds at least four) quantized to clamped i32 lanes.
        #[inline(always)]
        fn lanes(&self, x: &[f32]) -> v128 {
            assert!(x.len() >= 4);
            // SAFETY: `x` holds at least four lanes (checked above; the callers' chunks make the
            // check free).
            let q = f32x4_div(unsafe { v128_load(x.as_ptr() as *const v128) }, self.scale);
            // Half away from zero: the truncation, one step further (by q's sign) where the part cut
            // off (exact in f32) is at least a half.
            let t = f32x4_trunc(q);
            let away = f32x4_ge(f32x4_abs(f32x4_sub(q, t)), f32x4_splat(0.5));
            let r = f32x4_add(t, v128_and(away, v128_or(v128_and(q, f32x4_splat(-0.0)), f32x4_splat(1.0))));
            // NaN becomes 0, as `as` makes it. It is masked here, not left to the conversion: with
            // relaxed-simd on, LLVM may lower a conversion of a clamped value to a relaxed one,
            // which gives i32::MIN for NaN on x86.
            let r = v128_and(r, f32x4_eq(r, r));
            let i = i32x4_trunc_sat_f32x4(f32x4_pmin(f32x4_pmax(r, f32x4_splat(-LIMIT)), f32x4_splat(LIMIT)));
            i32x4_min(i32x4_max(i32x4_add(i, self.zero_point), self.qmin), self.qmax)
        }
    }

    /// Stores a vector into the first 16 bytes of `out`.
    #[inline(always)]
    fn store<T>(out: &mut [T], v: v128) {
        assert!(core::mem::size_of_val(out) >= 16);
        // SAFETY: `out` holds at least 16 bytes (checked above).
        unsafe { v128_store(out.as_mut_ptr() as *mut v128, v) };
    }

    /// Loads the first 16 bytes of `x`.
    #[inline(always)]
    fn load<T>(x: &[T]) -> v128 {
        assert!(core::mem::size_of_val(x) >= 16);
        // SAFETY: `x` holds at least 16 bytes (checked above).
        unsafe { v128_load(x.as_ptr() as *const v128) }
    }

    /// Quantizes the longest prefix of whole vectors to i32; returns its length.
    pub fn quantize(x: &[f32], scale: f32, zp: i32, qmin: i32, qmax: i32, out: &mut [i32]) -> usize {
        let Some(k) = Quantizer::new(scale, zp, qmin, qmax) else { return 0 };
        let n = x.len().min(out.len()) / 4 * 4;
        for (o, v) in out[..n].chunks_exact_mut(4).zip(x[..n].chunks_exact(4)) {
            store(o, k.lanes(v));
        }
        n
    }

    /// Eight floats quantized and narrowed to i16 lanes (exact: the lanes are clamped to the
    /// type's range, which the saturating narrows keep).
    #[inline(always)]
    fn lanes16(k: &Quantizer, x: &[f32]) -> v128 {
        i16x8_narrow_i32x4(k.lanes(&x[..4]), k.lanes(&x[4..8]))
    }

    /// Quantizes the longest prefix of 16-value blocks to i8; returns its length.
    pub fn quantize_i8(x: &[f32], scale: f32, zp: i32, out: &mut [i8]) -> usize {
        let Some(k) = Quantizer::new(scale, zp, -128, 127) else { return 0 };
        let n = x.len().min(out.len()) / 16 * 16;
        for (o, v) in out[..n].chunks_exact_mut(16).zip(x[..n].chunks_exact(16)) {
            store(o, i8x16_narrow_i16x8(lanes16(&k, &v[..8]), lanes16(&k, &v[8..])));
        }
        n
    }

    /// Quantizes the longest prefix of 16-value blocks to u8; returns its length.
    pub fn quantize_u8(x: &[f32], scale: f32, zp: i32, out: &mut [u8]) -> usize {
        let Some(k) = Quantizer::new(scale, zp, 0, 255) else { return 0 };
        let n = x.len().min(out.len()) / 16 * 16;
        for (o, v) in out[..n].chunks_exact_mut(16).zip(x[..n].chunks_exact(16)) {
            store(o, u8x16_narrow_i16x8(lanes16(&k, &v[..8]), lanes16(&k, &v[8..])));
        }
        n
    }

    /// Quantizes the longest prefix of 8-value blocks to i16; returns its length.
    pub fn quantize_i16(x: &[f32], scale: f32, zp: i32, out: &mut [i16]) -> usize {
        let Some(k) = Quantizer::new(scale, zp, -32768, 32767) else { return 0 };
        let n = x.len().min(out.len()) / 8 * 8;
        for (o, v) in out[..n].chunks_exact_mut(8).zip(x[..n].chunks_exact(8)) {
            store(o, lanes16(&k, v));
        }
        n
    }

    /// `(q − zp) · scale` of four i32 lanes, stored into the first four values of `out`.
    #[inline(always)]
    fn dequantize4(q: v128, zp: v128, scale: v128, out: &mut [f32]) {
        store(out, f32x4_mul(f32x4_convert_i32x4(i32x4_sub(q, zp)), scale));
    }

    /// Dequantizes the longest prefix of 16-value blocks of i8; returns its length.
    pub fn dequantize_i8(q: &[i8], scale: f32, zp: i32, out: &mut [f32]) -> usize {
        let (s, z) = (f32x4_splat(scale), i32x4_splat(zp));
        let n = q.len().min(out.len()) / 16 * 16;
        for (o, v) in out[..n].chunks_exact_mut(16).zip(q[..n].chunks_exact(16)) {
            let v = load(v);
            let (lo, hi) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
            dequantize4(i32x4_extend_low_i16x8(lo), z, s, &mut o[..4]);
            dequantize4(i32x4_extend_high_i16x8(lo), z, s, &mut o[4..8]);
            dequantize4(i32x4_extend_low_i16x8(hi), z, s, &mut o[8..12]);
            dequantize4(i32x4_extend_high_i16x8(hi), z, s, &mut o[12..]);
        }
        n
    }

    /// Dequantizes the longest prefix of 16-value blocks of u8; returns its length.
    pub fn dequantize_u8(q: &[u8], scale: f32, zp: i32, out: &mut [f32]) -> usize {
        let (s, z) = (f32x4_splat(scale), i32x4_splat(zp));
        let n = q.len().min(out.len()) / 16 * 16;
        for (o, v) in out[..n].chunks_exact_mut(16).zip(q[..n].chunks_exact(16)) {
            let v = load(v);
            let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
            dequantize4(u32x4_extend_low_u16x8(lo), z, s, &mut o[..4]);
            dequantize4(u32x4_extend_high_u16x8(lo), z, s, &mut o[4..8]);
            dequantize4(u32x4_extend_low_u16x8(hi), z, s, &mut o[8..12]);
            dequantize4(u32x4_extend_high_u16x8(hi), z, s, &mut o[12..]);
        }
        n
    }

    /// Dequantizes the longest prefix of 8-value blocks of i16; returns its length.
    pub fn dequantize_i16(q: &[i16], scale: f32, zp: i32, out: &mut [f32]) -> usize {
        let (s, z) = (f32x4_splat(scale), i32x4_splat(zp));
        let n = q.len().min(out.len()) / 8 * 8;
        for (o, v) in out[..n].chunks_exact_mut(8).zip(q[..n].chunks_exact(8)) {
            let v = load(v);
            dequantize4(i32x4_extend_low_i16x8(v), z, s, &mut o[..4]);
            dequantize4(i32x4_extend_high_i16x8(v), z, s, &mut o[4..]);
        }
        n
    }

    /// The length of the longest prefix of 16-value blocks that holds only finite values.
    pub fn finite_prefix(x: &[f32]) -> usize {
        let inf = f32x4_splat(f32::INFINITY);
        let finite = |v: &[f32]| f32x4_lt(f32x4_abs(load(v)), inf);
        let mut n = 0;
        for v in x.chunks_exact(16) {
            let all =
                v128_and(v128_and(finite(&v[..4]), finite(&v[4..8])), v128_and(finite(&v[8..12]), finite(&v[12..])));
            if !i32x4_all_true(all) {
                break;
            }
            n += 16;
        }
        n
    }
}

/// Asymmetric int8 parameters for a real range, computed in float32 exactly as the TFLite converter
/// does (`GetAsymmetricQuantizationParams`): the range is widened to contain 0, `scale = (hi − lo) /
/// 255`, and the zero point is taken from whichever end gives the smaller error, rounded and clamped
/// to [−128, 127]. Matching the converter bit for bit keeps our min/max recipe identical to it.
pub fn int8_params(lo: f32, hi: f32) -> (f32, i64) {
    let (qmin, qmax) = (-128.0f32, 127.0f32);
    let (rmin, rmax) = (lo.min(0.0), hi.max(0.0));
    if rmin == rmax || !(rmax - rmin).is_finite() {
        // A constant-zero tensor: any positive scale represents it exactly.
        return (1e-8, 0);
    }
    let scale = (rmax - rmin) / (qmax - qmin);
    let zp_from_min = qmin - rmin / scale;
    let zp_from_max = qmax - rmax / scale;
    let err_min = qmin.abs() + (rmin / scale).abs();
    let err_max = qmax.abs() + (rmax / scale).abs();
    let zp = if err_min < err_max { zp_from_min } else { zp_from_max };
    let zp = if zp <= qmin {
        -128
    } else if zp >= qmax {
        127
    } else {
        zp.round() as i64
    };
    (scale, zp)
}

/// `out = (clamp(round(x / scale) + zp, -128, 127) − zp) · scale`: the values an int8 tensor with
/// these parameters holds for `x` (quantization-aware training's forward).
pub fn fake_quantize(x: &[f32], scale: f32, zp: i32, out: &mut [f32]) {
    let mut q = vec![0i32; x.len()];
    quantize_f32(x, scale, zp, -128, 127, &mut q);
    for (o, &v) in out.iter_mut().zip(&q) {
        *o = dequantize_one(v, scale, zp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn symmetric_uses_full_range() {
        let mut q = [0i8; 4];
        let s = symmetric_quantize(&[-2.0, 1.0, 0.0, 0.5], &mut q);
        assert_eq!(s, 2.0 / 127.0);
        assert_eq!(q, [-127, 64, 0, 32]);
        assert_eq!(symmetric_quantize(&[0.0, 0.0], &mut q[..2]), 1.0);
    }

    #[test]
    fn asymmetric_zero_is_exact() {
        let mut q = [0i8; 3];
        let (s, zp) = asymmetric_quantize(&[0.0, 1.0, 3.0], &mut q);
        // Range [0, 3]: zero maps to the minimum.
        assert_eq!(zp, -128);
        assert!((s - 3.0 / 255.0).abs() < 1e-9);
        assert_eq!(q[0], -128);
        assert_eq!(q[2], 127);
        let (_, zp) = asymmetric_quantize(&[-1.0, 1.0, 0.0], &mut q);
        assert_eq!(q[2] as i32, zp);
    }

    #[test]
    fn quantize_matches_its_plain_loop_on_halves_extremes_and_every_range() {
        let mut rng = crate::rng::Rng::new(11);
        for &(scale, zp, lo, hi) in &[
            (0.5f32, 1, -128, 127),
            (0.0137, -128, -128, 127),
            (0.2, 0, 0, 255),
            (3e-4, -7, -32768, 32767),
            (1.0, 0, i32::MIN, i32::MAX),
        ] {
            let mut x: Vec<f32> = (-300..300).map(|k| (k as f32 + 0.5) * scale).collect();
            x.extend((0..500).map(|_| (rng.uniform() - 0.5) * 400.0 * scale));
            x.extend([
                0.0,
                -0.0,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                1e30,
                -1e30,
                8_388_607.5,
                -8_388_608.0,
                0.49999997,
            ]);
            x.extend((0..7).map(|k| k as f32 * 0.25));
            let (mut got, mut want) = (vec![0i32; x.len()], vec![0i32; x.len()]);
            quantize_f32(&x, scale, zp, lo, hi, &mut got);
            quantize_f32_reference(&x, scale, zp, lo, hi, &mut want);
            assert_eq!(got, want, "scale {scale} zp {zp} range [{lo}, {hi}]");
        }
    }

    #[test]
    fn quantize_rounds_half_away_and_saturates() {
        let mut out = [0i32; 5];
        quantize_f32(&[0.25, -0.25, 100.0, f32::NAN, -1e30], 0.5, 1, -128, 127, &mut out);
        assert_eq!(out, [2, 0, 127, 1, -128]);
    }

    /// Values that probe every rounding and clamping edge at `scale`: ties at .5 around the zero
    /// point and the clamp ends, random values, huge ones, signed zeros, non-finite ones.
    fn probe_values(scale: f32, seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        let mut x: Vec<f32> = (-300..300).map(|k| (k as f32 + 0.5) * scale).collect();
        x.extend((-40_000..-32_700).chain(32_700..40_000).map(|k| (k as f32 + 0.5) * scale));
        x.extend((0..900).map(|_| (rng.uniform() - 0.5) * 600.0 * scale));
        x.extend([0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, f32::MAX, f32::MIN]);
        x.extend([8_388_607.5, -8_388_608.0, 0.49999997, -0.49999997, 0.5, -0.5, 1.5, -2.5]);
        x.extend([f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1e-40, -1e-40]);
        x
    }

    /// Today's path into the narrow type: [`quantize_f32_reference`] to i32, then narrowed.
    fn through_i32<T: QuantInt>(x: &[f32], scale: f32, zp: i32) -> Vec<T> {
        let mut wide = vec![0i32; x.len()];
        quantize_f32_reference(x, scale, zp, T::MIN, T::MAX, &mut wide);
        wide.iter().map(|&v| T::narrow(v)).collect()
    }

    fn check_quantize_into<T: QuantInt + Default + PartialEq + std::fmt::Debug>(zero_points: &[i32]) {
        for (n, &scale) in [0.5f32, 0.0137, 1.0, 3e-4, 7.25, 1e-30].iter().enumerate() {
            let x = probe_values(scale, n as u64);
            for &zp in zero_points {
                // Every length up to a few blocks (each remainder), then everything.
                for len in (0..=40).chain([x.len()]) {
                    for start in [0, 3] {
                        let x = &x[start.min(x.len())..(start + len).min(x.len())];
                        let (mut got, mut want) = (vec![T::default(); x.len()], vec![T::default(); x.len()]);
                        quantize_into(x, scale, zp, &mut got);
                        quantize_into_reference(x, scale, zp, &mut want);
                        assert_eq!(got, want, "scale {scale} zp {zp} len {len}");
                        assert_eq!(got, through_i32::<T>(x, scale, zp), "scale {scale} zp {zp} len {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn quantize_into_i8_matches_its_plain_loop_and_the_i32_path() {
        check_quantize_into::<i8>(&[0, 1, -7, -128, 127, -129, 128, 1 << 24, -(1 << 24), i32::MIN, i32::MAX]);
    }

    #[test]
    fn quantize_into_u8_matches_its_plain_loop_and_the_i32_path() {
        check_quantize_into::<u8>(&[0, 128, 255, -1, 256, 1 << 24, i32::MIN, i32::MAX]);
    }

    #[test]
    fn quantize_into_i16_matches_its_plain_loop_and_the_i32_path() {
        check_quantize_into::<i16>(&[0, -32768, 32767, 5, 1 << 23, -(1 << 23) - 1, i32::MIN, i32::MAX]);
    }

    /// Bit-equal, or both NaN (a NaN's payload is not specified across engines).
    fn same_floats(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    fn check_dequantize_into<T: QuantInt>(all: &[T], zero_points: &[i32]) {
        let scales = [0.5f32, 0.0137, -0.02, 3e-4, 1e-42, 1e-38, 3e34, f32::MAX, 0.0, -0.0, f32::INFINITY, f32::NAN];
        for &scale in &scales {
            for &zp in zero_points {
                for len in (0..=40).chain([all.len()]) {
                    for start in [0, 5] {
                        let q = &all[start.min(all.len())..(start + len).min(all.len())];
                        let (mut got, mut want) = (vec![0.0; q.len()], vec![0.0; q.len()]);
                        dequantize_into(q, scale, zp, &mut got);
                        dequantize(q, scale, zp, &mut want);
                        assert!(same_floats(&got, &want), "scale {scale} zp {zp} len {len}: {got:?} vs {want:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn dequantize_into_matches_the_double_precision_loop() {
        let i8s: Vec<i8> = (-128..=127).chain((0..200).map(|k| (k * 37 % 256 - 128) as i8)).collect();
        check_dequantize_into(&i8s, &[0, -128, 127, 1 << 23, -(1 << 23), (1 << 23) + 1, 1 << 30]);
        let u8s: Vec<u8> = (0..=255).chain((0..200).map(|k| (k * 53 % 256) as u8)).collect();
        check_dequantize_into(&u8s, &[0, 128, 255, -(1 << 23), 1 << 23, -(1 << 30)]);
        let i16s: Vec<i16> = (-32768..=32767).step_by(97).chain([i16::MIN, i16::MAX, 0, -1]).collect();
        check_dequantize_into(&i16s, &[0, -32768, 32767, 1 << 23, -(1 << 23), 1 << 29]);
    }

    #[test]
    fn first_non_finite_finds_the_first_at_every_position() {
        for len in [0, 1, 15, 16, 17, 33, 64, 100] {
            let clean: Vec<f32> = (0..len).map(|k| k as f32 - 30.5).collect();
            assert_eq!(first_non_finite(&clean), None);
            for pos in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut x = clean.clone();
                    x[pos] = bad;
                    if pos + 2 < len {
                        x[pos + 2] = f32::NAN;
                    }
                    assert_eq!(first_non_finite(&x), Some(pos), "len {len} at {pos}");
                    assert_eq!(first_non_finite(&x), first_non_finite_reference(&x));
                }
            }
        }
        assert_eq!(first_non_finite(&[f32::MAX, f32::MIN, -0.0, 1e-45]), None);
    }

    #[test]
    fn round_half_away_is_f32_round() {
        let mut rng = crate::rng::Rng::new(11);
        let special = [0.5, -0.5, 1.5, -2.5, 0.49999997, -0.49999997, 8388607.5, 8388608.0, 1e30, -0.0, 0.0];
        let special = special.into_iter().chain([f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, f32::MAX]);
        let random = (0..20_000).map(|i| (rng.uniform() - 0.5) * 10f32.powi(i % 9 - 2));
        for x in special.chain(random) {
            assert_eq!(round_half_away(x).to_bits(), x.round().to_bits(), "{x}");
        }
        assert!(round_half_away(f32::NAN).is_nan());
    }
}
