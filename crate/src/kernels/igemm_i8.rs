//! Int8 CONV_2D on the i16-pair GEMM ([`super::gemm_i8`]) without im2col ("indirect" GEMM, as
//! XNNPACK's IGEMM): the input is widened to i16 and padded with its zero point once per call (in
//! one pass, [`pad_nhwc_i16`]), and the micro-kernel reads each output pixel's patch straight from
//! that copy, one contiguous run (a filter row's taps, or a single tap when the width is dilated)
//! at a time, summing the runs into the same accumulators. im2col instead copies and widens every
//! input value once per tap (9 times for a 3×3 filter) before the GEMM reads it.
//!
//! The packed weights pair k, k + 1: a run must not end between the two, so this applies when
//! every run has even length ([`applies`]); other shapes keep im2col.

use super::conv::{pad_nhwc_i16, pixels_from, ConvShape};
use super::gemm_i8::{PackedI8, Requant, MR};
use super::int8::pointwise_conv::widen;

/// Length of the contiguous runs of a patch in the padded input: a whole filter row when the
/// width is not dilated, one tap otherwise.
fn run_len(s: &ConvShape) -> usize {
    if s.win.w.dilation == 1 {
        s.kw() * s.in_c
    } else {
        s.in_c
    }
}

/// Shortest run [`conv2d`] takes: each run costs a micro-kernel call (its accumulators loaded and
/// stored again), which im2col's single long row does not pay.
const MIN_RUN: usize = 8;

/// Whether [`conv2d`] handles shape `s`: every run of a patch has even length, at least
/// [`MIN_RUN`].
pub fn applies(s: &ConvShape) -> bool {
    let run = run_len(s);
    run >= MIN_RUN && run.is_multiple_of(2)
}

/// Scratch buffers reused from call to call.
#[derive(Default)]
pub struct Scratch {
    padded: Vec<i16>,
    /// Per run of a patch, its offset from the pixel's first tap in the padded input.
    runs: Vec<usize>,
}

/// The offsets of a patch's runs (in filter order, as the weights are packed) from its first tap,
/// in a padded input of width `wp`.
fn run_offsets(s: &ConvShape, wp: usize, runs: &mut Vec<usize>) {
    let (c, run) = (s.in_c, run_len(s));
    let per_row = s.kw() * c / run;
    runs.clear();
    for ky in 0..s.kh() {
        for j in 0..per_row {
            runs.push((ky * s.win.h.dilation * wp + j * s.win.w.dilation) * c);
        }
    }
}

/// Int8 CONV_2D of `input` (zero point `input_zp`) with weights packed as [`PackedI8`] (`[out_c]`
/// rows of the `[kh][kw][in_c]` patch), requantized by `rq` into `out` (NHWC), with the best
/// kernel this build has: on simd128, each 4-pixel × 8-channel tile summed over every run in
/// registers (from the offsets, for a fixed-point stage) and requantized from them
/// ([`simd::tiles`]); elsewhere run by run with the portable micro-kernel ([`by_runs`]). The
/// caller checks [`applies`].
pub fn conv2d(
    s: &ConvShape,
    input_zp: i8,
    input: &[i8],
    w: &PackedI8,
    rq: Requant,
    out: &mut [i8],
    scratch: &mut Scratch,
) {
    let (pixels, n) = check(s, w, rq, out);
    if pixels == 0 || n == 0 {
        return;
    }
    let (padded, runs, hw) = patches(s, input_zp, input, scratch);
    let patches = (padded, runs, run_len(s));
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    simd::tiles(pixels, patches, w, rq, out, tiles(s, pixels, hw));
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    by_runs(pixels, patches, w, rq, out, tiles(s, pixels, hw), super::gemm_i8::best());
}

/// [`conv2d`]'s tiles with micro-kernels `k`, called once per run of a patch (the tile's sums
/// loaded and stored again each time), then requantized from the tile. (Compiled into simd128
/// builds only for the tests.)
#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
fn by_runs(
    pixels: usize,
    (padded, runs, run): (&[i16], &[usize], usize),
    w: &PackedI8,
    rq: Requant,
    out: &mut [i8],
    tiles: impl Iterator<Item = Tile>,
    k: super::gemm_i8::Kernels,
) {
    use super::gemm_i8::NR;
    let n = w.n;
    assert!(out.len() >= pixels * n, "igemm: output too short");
    for (i0, rows_here, origins) in tiles {
        for p in 0..n.div_ceil(NR) {
            let panel = w.panel(p);
            let mut acc = [[0i32; NR]; MR];
            for (j, &off) in runs.iter().enumerate() {
                let rows = origins.map(|o| &padded[o + off..o + off + run]);
                (k.micro)(run, rows, &panel[j * run * NR..], &mut acc);
            }
            let (first, cols) = (p * NR, NR.min(n - p * NR));
            let last = (i0 + rows_here - 1) * n + first + cols;
            rq.store(&acc, rows_here, first, cols, &mut out[i0 * n + first..last], n);
        }
    }
}

/// Checks that `w`, `rq` and `out` fit shape `s`; returns its output pixels and channels.
fn check(s: &ConvShape, w: &PackedI8, rq: Requant, out: &[i8]) -> (usize, usize) {
    assert!(applies(s) && w.k == s.patch_len() && w.kp == w.k && w.n == s.out_c, "shape does not fit");
    assert!(rq.offset.len() >= w.n, "offsets do not fit");
    let pixels = s.batch * s.out_h() * s.out_w();
    assert!(out.len() >= pixels * w.n, "out too short");
    (pixels, w.n)
}

/// The input widened to i16 and padded with its zero point (in `scratch`), the offsets of a
/// patch's runs from its first tap, and the padded height and width.
type Patches<'a> = (&'a [i16], &'a [usize], (usize, usize));

fn patches<'a>(s: &ConvShape, input_zp: i8, input: &[i8], scratch: &'a mut Scratch) -> Patches<'a> {
    let input = &input[..s.input_len()];
    let (hp, wp) = if s.kh() == 1 && s.kw() == 1 {
        // A 1×1 filter never reads padding: the widened input is the padded one.
        widen(input, s.in_c, s.in_c, &mut scratch.padded);
        (s.in_h(), s.in_w())
    } else {
        pad_nhwc_i16(s, input, input_zp, &mut scratch.padded)
    };
    run_offsets(s, wp, &mut scratch.runs);
    (&scratch.padded, &scratch.runs, (hp, wp))
}

/// A group of [`MR`] output pixels: the first one, how many are real, and each one's first tap
/// in the padded input (a short group repeats its first pixel in the spare slots).
type Tile = (usize, usize, [usize; MR]);

/// The output pixels in tiles, in a padded input of `hp × wp` pixels.
fn tiles(s: &ConvShape, pixels: usize, (hp, wp): (usize, usize)) -> impl Iterator<Item = Tile> + '_ {
    let origin =
        move |(b, oy, ox): (usize, usize, usize)| ((b * hp + oy * s.win.h.stride) * wp + ox * s.win.w.stride) * s.in_c;
    let mut at = pixels_from(s, 0).map(origin);
    (0..pixels).step_by(MR).map(move |i0| {
        let rows_here = MR.min(pixels - i0);
        let mut origins = [0usize; MR];
        origins.iter_mut().take(rows_here).for_each(|o| *o = at.next().unwrap_or(0));
        for r in rows_here..MR {
            origins[r] = origins[0];
        }
        (i0, rows_here, origins)
    })
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    //! The simd128 kernel: a tile's sums in registers over every run of its patches.
    use super::super::gemm_i8::{simd128::sums, PackedI8, Requant, MR, NR};
    use super::super::int8::pointwise_conv::simd::by_row;
    use super::super::requant::simd128::{store8, Block8};
    use core::arch::wasm32::i32x4_splat;

    /// Every tile of `tiles` against every block of eight channels: the sums take each run
    /// (`runs` offsets of `run` i16 from a pixel's origin in `padded`) without leaving registers,
    /// starting from the block's offsets and requantized from registers for a fixed-point stage,
    /// through [`by_row`] for the others (LiteRT's double rescaling).
    pub fn tiles(
        pixels: usize,
        (padded, runs, run): (&[i16], &[usize], usize),
        w: &PackedI8,
        rq: Requant,
        out: &mut [i8],
        tiles: impl Iterator<Item = super::Tile>,
    ) {
        let n = w.n;
        assert!(out.len() >= pixels * n, "igemm: output too short");
        let fixed = rq.vec.filter(|v| v.is_fixed());
        let blocks: Vec<(usize, Option<Block8>)> = (0..n.div_ceil(NR))
            .map(|b| {
                let (c0, take) = (b * NR, NR.min(n - b * NR));
                let mut off8 = [0i32; NR];
                off8[..take].copy_from_slice(&rq.offset[c0..c0 + take]);
                (take, fixed.map(|vs| Block8::new(vs, c0, &off8)))
            })
            .collect();
        for (i0, rows_here, origins) in tiles {
            for (b, (take, block)) in blocks.iter().enumerate() {
                let (panel, c0) = (w.panel(b), b * NR);
                let zero = i32x4_splat(0);
                let [o0, o1] = block.as_ref().map_or([zero; 2], |b| b.offsets());
                let mut acc = [(o0, o1); MR];
                for (j, &off) in runs.iter().enumerate() {
                    let rows = origins.map(|o| &padded[o + off..o + off + run]);
                    acc = sums(run, rows, &panel[j * run * NR..], acc);
                }
                let Some(block) = block else {
                    by_row(&acc, rows_here, rq, (c0, *take, n), &mut out[i0 * n..]);
                    continue;
                };
                for (i, v) in block.apply_many_offset(&acc).into_iter().enumerate().take(rows_here) {
                    // SAFETY: a whole block has c0 + 8 ≤ n, so (i0 + i)·n + c0 + 8 ≤ pixels·n ≤
                    // out.len() (asserted above); a partial one is copied with bounds checks.
                    unsafe { store8(v, out, (i0 + i) * n + c0, *take) };
                }
            }
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
    use crate::kernels::gemm_i8::{best, PORTABLE};
    use crate::kernels::int8::conv::conv2d_reference;
    use crate::kernels::requant::{reachable, VecStage};
    use crate::rng::Rng;

    fn shape(
        hw: (usize, usize),
        c: (usize, usize),
        k: (usize, usize),
        st: usize,
        dil: usize,
        pad: Padding,
    ) -> ConvShape {
        crate::kernels::conv::tests::shape(1, hw, c.0, c.1, k, st, dil, pad)
    }

    #[test]
    fn applies_to_even_runs_only() {
        assert!(applies(&shape((8, 8), (16, 4), (3, 3), 1, 1, Padding::Same)));
        assert!(applies(&shape((8, 8), (4, 4), (2, 2), 1, 1, Padding::Same)));
        assert!(applies(&shape((8, 8), (8, 4), (2, 2), 1, 2, Padding::Same)));
        assert!(!applies(&shape((8, 8), (3, 4), (3, 3), 1, 1, Padding::Same)));
        assert!(!applies(&shape((8, 8), (3, 4), (2, 2), 1, 1, Padding::Same)));
        assert!(!applies(&shape((8, 8), (4, 4), (2, 2), 1, 2, Padding::Same)));
        assert!(!applies(&shape((8, 8), (6, 4), (1, 1), 1, 1, Padding::Same)));
    }

    /// Every kernel set against TFLite's reference loops: strides, dilations, both paddings,
    /// batches, channel counts off the tile, pixel counts leaving 1–3 rows, extreme zero points.
    #[test]
    fn conv_equals_reference() {
        let mut rng = Rng::new(17);
        let cases = [
            ((8, 8), (16, 16), (3, 3), 1, 1, Padding::Same, -128),
            ((7, 5), (4, 9), (3, 3), 2, 1, Padding::Same, 127),
            ((9, 9), (8, 17), (3, 3), 1, 2, Padding::Valid, 0),
            ((5, 6), (4, 5), (2, 2), 1, 1, Padding::Valid, -3),
            ((5, 5), (8, 8), (1, 1), 1, 1, Padding::Same, 5),
            ((7, 7), (10, 3), (1, 1), 2, 1, Padding::Same, -77),
            ((6, 7), (2, 24), (5, 5), 2, 1, Padding::Same, 90),
            ((3, 3), (32, 33), (3, 3), 1, 1, Padding::Same, -128),
        ];
        for &(hw, c, kk, stride, dil, pad, zp) in &cases {
            for batch in [1, 2] {
                let mut s = shape(hw, c, kk, stride, dil, pad);
                s.batch = batch;
                assert!(applies(&s), "{s:?}");
                let input: Vec<i8> = (0..s.input_len()).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
                let n = s.out_c;
                // One channel's weights all zero (as after pruning): with reaches, a constant lane.
                let k = s.patch_len();
                let w: Vec<i8> =
                    (0..n * k).map(|i| if i / k == n / 2 { 0 } else { (rng.below(256) as i32 - 128) as i8 }).collect();
                let bias: Vec<i32> = (0..n).map(|_| rng.below(40000) as i32 - 20000).collect();
                let scales = (0..n)
                    .map(|_| Rescale::Fixed(quantize_multiplier(0.0005 + rng.uniform() as f64 * 0.004)))
                    .collect();
                let stage = OutputStage::new(scales, -2, [-128, -2][batch - 1], 127);
                let mut want = vec![0i8; s.output_len()];
                conv2d_reference(&s, -zp, &input, &w, Some(&bias), &stage, &mut want);
                let packed = PackedI8::pack(&w, n, s.patch_len());
                let offset: Vec<i32> =
                    (0..n).map(|j| bias[j].wrapping_add((-zp).wrapping_mul(packed.row_sums[j]))).collect();
                let vec = VecStage::with_ranges(&stage, n, &reachable(&w, n, k, Some(&bias), -zp));
                let rq = Requant::new(&offset, &stage, vec.as_ref());
                for (name, k) in [("portable", PORTABLE), ("best", best())] {
                    let mut got = vec![0i8; s.output_len()];
                    let mut scratch = Scratch::default();
                    let (pixels, _) = check(&s, &packed, rq, &got);
                    let (padded, runs, hw) = patches(&s, zp as i8, &input, &mut scratch);
                    by_runs(pixels, (padded, runs, run_len(&s)), &packed, rq, &mut got, tiles(&s, pixels, hw), k);
                    assert_eq!(got, want, "{name} {s:?} zp={zp}");
                }
                // The register kernel (on simd128; run by run with the best kernels elsewhere).
                let mut got = vec![0i8; s.output_len()];
                conv2d(&s, zp as i8, &input, &packed, rq, &mut got, &mut Scratch::default());
                assert_eq!(got, want, "registers {s:?} zp={zp}");
            }
        }
    }
}
