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

/// [`dequantize_one`] over a slice, with one per-tensor parameter pair.
pub fn dequantize<T: Copy + Into<i32>>(q: &[T], scale: f32, zero_point: i32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(q) {
        *o = dequantize_one(v.into(), scale, zero_point);
    }
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
    //! [`super::quantize_f32`] four values at a time (`f32::round` is a library call in wasm).
    use core::arch::wasm32::*;

    /// 2^23: every f32 of at least this magnitude is an integer, and a rounded value clamped to it
    /// converts exactly and lands outside any clamp range within 2^23 of the zero point.
    const LIMIT: f32 = 8_388_608.0;

    /// Quantizes the longest prefix of whole vectors; returns its length (0 when the clamp range
    /// reaches further than [`LIMIT`] from the zero point: the scalar loop then does it all).
    pub fn quantize(x: &[f32], scale: f32, zp: i32, qmin: i32, qmax: i32, out: &mut [i32]) -> usize {
        let limit = LIMIT as i64;
        if qmin as i64 - (zp as i64) < -limit || qmax as i64 - (zp as i64) > limit {
            return 0;
        }
        let (s, half, one, sign) = (f32x4_splat(scale), f32x4_splat(0.5), f32x4_splat(1.0), f32x4_splat(-0.0));
        let (lo, hi) = (f32x4_splat(-LIMIT), f32x4_splat(LIMIT));
        let (z, qlo, qhi) = (i32x4_splat(zp), i32x4_splat(qmin), i32x4_splat(qmax));
        let n = x.len().min(out.len()) / 4 * 4;
        for (o, v) in out[..n].chunks_exact_mut(4).zip(x[..n].chunks_exact(4)) {
            // SAFETY: `v` and `o` hold exactly four lanes each.
            let q = f32x4_div(unsafe { v128_load(v.as_ptr() as *const v128) }, s);
            // Half away from zero: the truncation, one step further (by q's sign) where the part cut
            // off (exact in f32) is at least a half.
            let t = f32x4_trunc(q);
            let away = f32x4_ge(f32x4_abs(f32x4_sub(q, t)), half);
            let r = f32x4_add(t, v128_and(away, v128_or(v128_and(q, sign), one)));
            // NaN becomes 0, as `as` makes it. It is masked here, not left to the conversion: with
            // relaxed-simd on, LLVM may lower a conversion of a clamped value to a relaxed one,
            // which gives i32::MIN for NaN on x86.
            let r = v128_and(r, f32x4_eq(r, r));
            let i = i32x4_trunc_sat_f32x4(f32x4_pmin(f32x4_pmax(r, lo), hi));
            let i = i32x4_min(i32x4_max(i32x4_add(i, z), qlo), qhi);
            // SAFETY: as above.
            unsafe { v128_store(o.as_mut_ptr() as *mut v128, i) };
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
}
