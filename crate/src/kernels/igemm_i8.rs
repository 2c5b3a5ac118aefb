//! Int8 CONV_2D on the i16-pair GEMM ([`super::gemm_i8`]) without im2col ("indirect" GEMM, as
//! XNNPACK's IGEMM): the input is widened to i16 and padded with its zero point once per call, and
//! the micro-kernel reads each output pixel's patch straight from that copy, one contiguous run
//! (a filter row's taps, or a single tap when the width is dilated) at a time, summing the runs
//! into the same accumulators. im2col instead copies and widens every input value once per tap
//! (9 times for a 3×3 filter) before the GEMM reads it.
//!
//! The packed weights pair k, k + 1: a run must not end between the two, so this applies when
//! every run has even length ([`applies`]); other shapes keep im2col.

use super::conv::{pad_nhwc, pixels_from, ConvShape};
use super::gemm_i8::{Kernels, PackedI8, Requant, MR, NR};

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
    wide: Vec<i16>,
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

fn widen(input: &[i8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(input.iter().map(|&v| v as i16));
}

/// Int8 CONV_2D of `input` (zero point `input_zp`) with weights packed as [`PackedI8`] (`[out_c]`
/// rows of the `[kh][kw][in_c]` patch), requantized by `rq` into `out` (NHWC), with kernels `k`.
/// The caller checks [`applies`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    s: &ConvShape,
    input_zp: i8,
    input: &[i8],
    w: &PackedI8,
    rq: Requant,
    out: &mut [i8],
    scratch: &mut Scratch,
    k: Kernels,
) {
    assert!(applies(s) && w.k == s.patch_len() && w.kp == w.k && w.n == s.out_c, "shape does not fit");
    let pixels = s.batch * s.out_h() * s.out_w();
    if pixels == 0 || w.n == 0 {
        return;
    }
    assert!(out.len() >= pixels * w.n, "out too short");
    let input = &input[..s.input_len()];
    let (hp, wp) = if s.kh() == 1 && s.kw() == 1 {
        // A 1×1 filter never reads padding: the widened input is the padded one.
        widen(input, &mut scratch.padded);
        (s.in_h(), s.in_w())
    } else {
        widen(input, &mut scratch.wide);
        pad_nhwc(s, &scratch.wide, input_zp as i16, 1, s.in_c, &mut scratch.padded)
    };
    run_offsets(s, wp, &mut scratch.runs);
    let (padded, runs, run) = (&scratch.padded, &scratch.runs, run_len(s));
    let origin =
        |(b, oy, ox): (usize, usize, usize)| ((b * hp + oy * s.win.h.stride) * wp + ox * s.win.w.stride) * s.in_c;
    let mut at = pixels_from(s, 0).map(origin);
    for i0 in (0..pixels).step_by(MR) {
        let rows_here = MR.min(pixels - i0);
        let mut origins = [0usize; MR];
        origins.iter_mut().take(rows_here).for_each(|o| *o = at.next().unwrap_or(0));
        for r in rows_here..MR {
            origins[r] = origins[0];
        }
        for p in 0..w.n.div_ceil(NR) {
            let panel = w.panel(p);
            let mut acc = [[0i32; NR]; MR];
            for (j, &off) in runs.iter().enumerate() {
                let rows = origins.map(|o| &padded[o + off..o + off + run]);
                (k.micro)(run, rows, &panel[j * run * NR..], &mut acc);
            }
            let (first, cols) = (p * NR, NR.min(w.n - p * NR));
            let ldo = w.n;
            rq.store(
                &acc,
                i0,
                rows_here,
                first,
                cols,
                &mut out[i0 * ldo + first..(i0 + rows_here - 1) * ldo + first + cols],
                ldo,
            );
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
    use crate::kernels::requant::VecStage;
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
                let w: Vec<i8> = (0..n * s.patch_len()).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
                let bias: Vec<i32> = (0..n).map(|_| rng.below(40000) as i32 - 20000).collect();
                let scales = (0..n)
                    .map(|_| Rescale::Fixed(quantize_multiplier(0.0005 + rng.uniform() as f64 * 0.004)))
                    .collect();
                let stage = OutputStage::new(scales, -2, -128, 127);
                let mut want = vec![0i8; s.output_len()];
                conv2d_reference(&s, -zp, &input, &w, Some(&bias), &stage, &mut want);
                let packed = PackedI8::pack(&w, n, s.patch_len());
                let offset: Vec<i32> =
                    (0..n).map(|j| bias[j].wrapping_add((-zp).wrapping_mul(packed.row_sums[j]))).collect();
                let vec = VecStage::new(&stage, n);
                for (name, k) in [("portable", PORTABLE), ("best", best())] {
                    let mut got = vec![0i8; s.output_len()];
                    let rq = Requant::new(&offset, &stage, vec.as_ref());
                    conv2d(&s, zp as i8, &input, &packed, rq, &mut got, &mut Scratch::default(), k);
                    assert_eq!(got, want, "{name} {s:?} zp={zp}");
                }
            }
        }
    }
}
