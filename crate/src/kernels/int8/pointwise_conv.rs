//! Pointwise (1×1, stride 1) int8 CONV_2D on i16 pairs (`i32x4.dot_i16x8_s`): the simd128 build
//! and the relaxed build where the u8 relaxed dot is not exact (no VNNI).
//!
//! A 1×1 stride-1 convolution is a matrix product of the NHWC input (`pixels × in_c`) with the
//! weights, and never reads padding. The input is widened to i16 once per call into rows of the
//! packed depth (`in_c` rounded up to even, zero past `in_c`), so the kernel's inner loop only
//! loads: per k-pair, two weight vectors of the block's eight channels and one 4-byte broadcast
//! per pixel, no widening or lane shuffles (the direct kernel widens and shuffles its inputs again
//! for every block of eight channels). A tile of [`MR`] = 4 pixels × 8 channels is summed over
//! the whole depth in eight vector registers ([`gemm_i8::simd128::sums`]) and requantized from
//! them (the sums start from the per-channel offsets), the four pixels at once
//! ([`requant::simd128::Block8::apply_many_offset`]), one 8-byte store each.
//! Blocks of eight channels are the outer loop, so a block's weights and requantization constants
//! stay hot while the pixels stream past. A last tile of a single pixel goes to the GEMV kernel
//! ([`gemm_i8::gemv_row`]) instead of being computed four times.
//!
//! The weights are [`PackedI8`] (the GEMM's "c2" panels), so this needs no packing of its own.
//! [`portable`] is the plain-loop twin; both are tested against the reference convolution.

use super::super::conv::ConvShape;
use super::super::gemm_i8::{self, gemv_row, PackedI8, Requant, MR};

/// Whether [`conv2d`] handles `s`: a 1×1 filter at stride 1 (any padding or dilation: a 1×1
/// window never leaves the image).
pub fn applies(s: &ConvShape) -> bool {
    s.kh() == 1 && s.kw() == 1 && s.win.h.stride == 1 && s.win.w.stride == 1
}

/// The convolution: `out = stage(Σ w·x + offset)` with `rq.offset[c]` holding
/// `bias + input_offset·Σ w` ([`PackedI8`] pairs of weights `[out_c][in_c]`). `wide` is scratch.
pub fn conv2d(s: &ConvShape, input: &[i8], w: &PackedI8, rq: Requant, out: &mut [i8], wide: &mut Vec<i16>) {
    assert!(applies(s) && w.k == s.in_c && w.n == s.out_c, "pointwise conv: weights do not fit the shape");
    assert!(rq.offset.len() >= w.n, "pointwise conv: offsets do not fit");
    let pixels = s.batch * s.out_h() * s.out_w();
    if pixels == 0 || w.n == 0 {
        return;
    }
    assert!(out.len() >= pixels * w.n && input.len() >= pixels * w.k, "pointwise conv: operands too short");
    widen(&input[..pixels * w.k], w.k, w.kp, wide);
    // A last tile of one pixel would compute three copies of it: that pixel goes to the GEMV
    // kernel instead (VWW's 3×3-pixel layers: 9 = 4 + 4 + 1).
    let tiled = if pixels % MR == 1 { pixels - 1 } else { pixels };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    simd::conv2d(tiled, wide, w, rq, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    portable(tiled, wide, w, rq, out);
    if tiled < pixels {
        let (p, n) = (tiled, w.n);
        let row = &wide[p * w.kp..(p + 1) * w.kp];
        gemv_row(n, row, |b| w.panel(b), rq, &mut out[p * n..(p + 1) * n], gemm_i8::best());
    }
}

/// Rows of `k` int8 values widened to i16 rows of stride `kp` (`k` or `k + 1`, zero past `k`).
pub(crate) fn widen(input: &[i8], k: usize, kp: usize, wide: &mut Vec<i16>) {
    wide.clear();
    if kp == k {
        wide.extend(input.iter().map(|&v| v as i16));
        return;
    }
    for row in input.chunks_exact(k.max(1)) {
        wide.extend(row.iter().map(|&v| v as i16));
        wide.resize(wide.len() + kp - k, 0);
    }
}

/// The plain-loop twin: the same blocks, pairs and sums, then the scalar or vector output stage
/// per pixel. (Compiled into wasm builds only for the tests.)
#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
pub fn portable(pixels: usize, wide: &[i16], w: &PackedI8, rq: Requant, out: &mut [i8]) {
    use super::super::gemm_i8::NR;
    let (n, kp) = (w.n, w.kp);
    for blk in 0..n.div_ceil(NR) {
        let (c0, panel) = (blk * NR, w.panel(blk));
        let take = NR.min(n - c0);
        for (p, x) in wide.chunks_exact(kp).take(pixels).enumerate() {
            let mut acc = [0i32; NR];
            for (pair, wp) in panel.chunks_exact(2 * NR).enumerate() {
                let (x0, x1) = (x[2 * pair] as i32, x[2 * pair + 1] as i32);
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = a.wrapping_add(x0 * wp[2 * c] as i32 + x1 * wp[2 * c + 1] as i32);
                }
            }
            let dst = &mut out[p * n + c0..p * n + c0 + take];
            super::super::requant::row(&acc[..take], rq.offset, rq.stage, rq.vec, c0, dst);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod simd {
    //! The wasm kernel: tiles of four pixels × eight channels, requantized from registers.
    use super::super::super::gemm_i8::{simd128::sums, PackedI8, Requant, MR, NR};
    use super::super::super::requant;
    use super::super::super::requant::simd128::{store8, Block8};
    use core::arch::wasm32::{i32x4_splat, v128, v128_store};

    /// [`super::conv2d`] on `wide`, `pixels` rows of `w.kp` i16: requantized from registers for a
    /// fixed-point stage, through [`requant::row`] for the others (LiteRT's double rescaling).
    pub fn conv2d(pixels: usize, wide: &[i16], w: &PackedI8, rq: Requant, out: &mut [i8]) {
        let (n, kp) = (w.n, w.kp);
        assert!(wide.len() >= pixels * kp && out.len() >= pixels * n, "pointwise conv: operands too short");
        let fixed = rq.vec.filter(|v| v.is_fixed());
        for blk in 0..n.div_ceil(NR) {
            let (c0, panel) = (blk * NR, w.panel(blk));
            let take = NR.min(n - c0);
            let mut off8 = [0i32; NR];
            off8[..take].copy_from_slice(&rq.offset[c0..c0 + take]);
            let block = fixed.map(|vs| Block8::new(vs, c0, &off8));
            for t0 in (0..pixels).step_by(MR) {
                // A short last tile repeats its last pixel and drops those sums.
                let rows = MR.min(pixels - t0);
                let row = |i: usize| &wide[(t0 + i.min(rows - 1)) * kp..][..kp];
                let rows4 = [row(0), row(1), row(2), row(3)];
                let Some(block) = &block else {
                    let zero = (i32x4_splat(0), i32x4_splat(0));
                    let acc = sums(kp, rows4, panel, [zero; MR]);
                    by_row(&acc, rows, rq, (c0, take, n), &mut out[t0 * n..]);
                    continue;
                };
                // The sums start from the offsets, so requantization takes them as they are.
                let [o0, o1] = block.offsets();
                let acc = sums(kp, rows4, panel, [(o0, o1); MR]);
                for (i, v) in block.apply_many_offset(&acc).into_iter().enumerate().take(rows) {
                    // SAFETY: a whole block has c0 + 8 ≤ n, so (t0 + i)·n + c0 + 8 ≤ pixels·n ≤
                    // out.len() (asserted above); a partial one is copied with bounds checks.
                    unsafe { store8(v, out, (t0 + i) * n + c0, take) };
                }
            }
        }
    }

    /// The sums of `rows` pixels' channels `c0..c0 + take` requantized by [`requant::row`] into
    /// `out` (from the tile's first pixel, `n` channels per pixel).
    #[inline(never)]
    pub(crate) fn by_row(
        acc: &[(v128, v128); MR],
        rows: usize,
        rq: Requant,
        (c0, take, n): (usize, usize, usize),
        out: &mut [i8],
    ) {
        for (i, (lo, hi)) in acc.iter().enumerate().take(rows) {
            let mut s = [0i32; NR];
            // SAFETY: two 16-byte stores into an 8-element i32 array.
            unsafe {
                v128_store(s.as_mut_ptr() as *mut v128, *lo);
                v128_store(s.as_mut_ptr().add(4) as *mut v128, *hi);
            }
            requant::row(&s[..take], rq.offset, rq.stage, rq.vec, c0, &mut out[i * n + c0..i * n + c0 + take]);
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::Padding;
    use crate::kernels::fixedpoint::{quantize_multiplier, OutputStage, Rescale};
    use crate::kernels::int8::conv::conv2d_reference;
    use crate::kernels::requant::{reachable, VecStage};
    use crate::rng::Rng;

    /// Output stages of every kind the kernel meets: small multipliers (the window layout), with
    /// ReLU and ReLU6-type clamps at both extreme zero points, multipliers above one (left shifts:
    /// the general layout) and LiteRT's double rescaling (the portable path).
    fn stages(rng: &mut Rng, n: usize) -> Vec<OutputStage> {
        let mut fixed = |lo: f64, span: f64| -> Vec<Rescale> {
            (0..n).map(|_| Rescale::Fixed(quantize_multiplier(lo + rng.uniform() as f64 * span))).collect()
        };
        let (small, relu_lo, relu_hi, six) =
            (fixed(0.0005, 0.004), fixed(0.0005, 0.004), fixed(0.001, 0.01), fixed(0.001, 0.004));
        let big = fixed(0.5, 3.0);
        let doubles = (0..n).map(|_| Rescale::Double(0.001 + rng.uniform() as f64 * 0.004)).collect();
        vec![
            OutputStage::new(small, -3, -128, 127),
            OutputStage::new(relu_lo, -128, -128, 127),
            OutputStage::new(relu_hi, 127, 127, 127),
            OutputStage::new(six, -20, -20, 60),
            OutputStage::new(big, 5, -128, 127),
            OutputStage::new(doubles, 2, -100, 120),
        ]
    }

    /// Every edge: channels below, at and past a block of eight (and odd depths, padded to a
    /// pair), pixel counts leaving one to three pixels in the last tile, batches, both paddings,
    /// input zero points at the int8 extremes, per-channel scales, every clamp above.
    #[test]
    fn conv_equals_reference() {
        let mut rng = Rng::new(29);
        let mut cases = 0;
        for &((h, w), batch, in_c, out_c, pad, zp) in &[
            ((5, 5), 1, 8, 16, Padding::Same, -128i32),
            ((3, 5), 2, 16, 32, Padding::Valid, 127),
            ((4, 6), 1, 32, 9, Padding::Same, 0),
            ((7, 1), 1, 7, 17, Padding::Same, -1),
            ((2, 3), 1, 1, 3, Padding::Valid, 100),
            ((3, 3), 2, 128, 24, Padding::Same, -128),
            ((1, 2), 1, 13, 8, Padding::Same, 127),
            ((3, 3), 1, 64, 40, Padding::Same, -7),
        ] {
            let s = crate::kernels::conv::tests::shape(batch, (h, w), in_c, out_c, (1, 1), 1, 1, pad);
            let input: Vec<i8> = (0..s.input_len()).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
            // One channel's weights all zero (as after pruning): with reaches, a constant lane.
            let wts: Vec<i8> = (0..out_c * in_c)
                .map(|i| if i / in_c == out_c / 2 { 0 } else { (rng.below(256) as i32 - 128) as i8 })
                .collect();
            let bias: Vec<i32> = (0..out_c).map(|_| rng.below(40000) as i32 - 20000).collect();
            let packed = PackedI8::pack(&wts, out_c, in_c);
            let offset: Vec<i32> =
                (0..out_c).map(|j| bias[j].wrapping_add((-zp).wrapping_mul(packed.row_sums[j]))).collect();
            for stage in stages(&mut rng, out_c) {
                let mut want = vec![0i8; s.output_len()];
                conv2d_reference(&s, -zp, &input, &wts, Some(&bias), &stage, &mut want);
                let reach = reachable(&wts, out_c, in_c, Some(&bias), -zp);
                let vec = VecStage::new(&stage, out_c);
                for vs in [vec.clone(), VecStage::with_ranges(&stage, out_c, &reach)] {
                    let mut got = vec![0i8; s.output_len()];
                    conv2d(&s, &input, &packed, Requant::new(&offset, &stage, vs.as_ref()), &mut got, &mut Vec::new());
                    assert_eq!(got, want, "{s:?} zp={zp} {stage:?} {vs:?}");
                }
                let rq = Requant::new(&offset, &stage, vec.as_ref());
                // The plain-loop twin too (wasm builds run the vector kernel above).
                let (mut wide, mut twin) = (Vec::new(), vec![0i8; s.output_len()]);
                widen(&input, in_c, packed.kp, &mut wide);
                portable(s.batch * h * w, &wide, &packed, rq, &mut twin);
                assert_eq!(twin, want, "portable {s:?} zp={zp} {stage:?}");
                cases += 1;
            }
        }
        assert_eq!(cases, 8 * 6);
    }

    #[test]
    fn applies_to_1x1_stride_1_only() {
        let shape = |k, st| crate::kernels::conv::tests::shape(1, (6, 6), 8, 8, (k, k), st, 1, Padding::Same);
        assert!(applies(&shape(1, 1)));
        assert!(!applies(&shape(1, 2)));
        assert!(!applies(&shape(3, 1)));
    }
}
