//! Float CONV_2D without im2col: the GEMM's register tile ([`gemm_f32::tile_runs`]) reads its rows
//! straight from a zero-padded copy of the input, one filter row (`kw · in_c` consecutive values)
//! at a time, or with few input channels through a table of every tap value's offset
//! ([`gemm_f32::tile`]).
//!
//! A tile is [`MR`] neighbouring output pixels of one output row × [`NR`] output channels: the
//! pixels' windows start `stride · in_c` values apart, and tap `kk` (in the weights' `[kh][kw][in_c]`
//! order) sits at the same offset from each start. That suits a first layer (1–4 input channels,
//! where im2col rows are short and gathering them costs more than the arithmetic) as well as any
//! other window. [`super::conv::conv2d_f32_reference`] is the ground truth in tests.

use super::conv::{pad_nhwc, tap_offsets, ConvShape};
use super::gemm_f32::{self, bias_of, Epilogue, PackedF32, MR, NR};

/// Input channels up to which a window's reads go through a table of every value's offset (first
/// layers: VWW's 3-channel one ran 6% slower in runs of `kw · 3` values).
const TABLE_MAX_IN_C: usize = 4;

/// `out = clamp(bias + conv(input, weights))`; `weights` packed from `[out_c, kh, kw, in_c]`.
pub fn conv2d(
    s: &ConvShape,
    input: &[f32],
    weights: &PackedF32,
    ep: Epilogue,
    out: &mut [f32],
    padded: &mut Vec<f32>,
    starts: &mut Vec<usize>,
) {
    let (c, n, k) = (s.in_c, s.out_c, s.patch_len());
    assert!(weights.n == n && weights.k == k, "conv weights do not match the shape");
    assert!(input.len() >= s.input_len() && out.len() >= s.output_len(), "conv buffers too short");
    if let Some(b) = ep.bias {
        assert!(b.len() >= n, "bias too short");
    }
    if s.output_len() == 0 {
        return;
    }
    let (hp, wp) = pad_nhwc(s, input, 0.0, 1, c, padded);
    // The taps of a filter row are one run in the padded input unless the width is dilated. With
    // few channels those runs are short, and a table of every value's offset (runs of one, walked
    // by the GEMM's own tile) costs less than a loop per run.
    let table = c <= TABLE_MAX_IN_C;
    let taps_per_run = if s.win.w.dilation == 1 { s.kw() } else { 1 };
    let run = if table { 1 } else { taps_per_run * c };
    starts.clear();
    if table {
        starts.extend(tap_offsets(s, wp, c).into_iter().flat_map(|t| (0..c).map(move |ic| t + ic)));
    } else {
        starts.extend(tap_offsets(s, wp, c).into_iter().step_by(taps_per_run.max(1)));
    }
    let (sy, sx, ow) = (s.win.h.stride, s.win.w.stride, s.out_w());
    // Every window lies inside the padded input: the last pixel's last run ends its furthest read.
    let start = |b: usize, oy: usize, ox: usize| ((b * hp + oy * sy) * wp + ox * sx) * c;
    let last = start(s.batch - 1, s.out_h() - 1, ow - 1) + starts.iter().max().copied().unwrap_or(0) + run;
    assert!(k == 0 || last <= padded.len(), "window outside the padded input");
    assert_eq!(starts.len() * run, k, "runs do not cover the patch");
    let (starts, padded) = (&starts[..], &padded[..]);
    let walk = Walk { weights, ep, starts, run, table };
    let full = ow - ow % MR;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            let o = &mut out[((b * s.out_h() + oy) * ow) * n..][..ow * n];
            for x0 in (0..full).step_by(MR) {
                let rows: [*const f32; MR] = core::array::from_fn(|r| padded[start(b, oy, x0 + r)..].as_ptr());
                // SAFETY: every row pointer starts a window inside `padded`, whose runs end at most
                // at the furthest read asserted above.
                unsafe { walk.pixels(rows, &mut o[x0 * n..]) };
            }
            for x in full..ow {
                // SAFETY: as above, for one pixel.
                unsafe { walk.pixels([padded[start(b, oy, x)..].as_ptr()], &mut o[x * n..]) };
            }
        }
    }
}

/// How a window is read: the panels, the runs' starts (or every value's offset with `table`).
struct Walk<'a> {
    weights: &'a PackedF32,
    ep: Epilogue<'a>,
    starts: &'a [usize],
    run: usize,
    table: bool,
}

impl Walk<'_> {
    /// The outputs of the `R` pixels whose windows start at `rows`, every panel, into `o` (a
    /// pixel's outputs `n` apart).
    ///
    /// # Safety
    /// Every row plus every start plus `run` must stay readable; the runs must cover the panels'
    /// `k` values.
    #[inline(always)]
    unsafe fn pixels<const R: usize>(&self, rows: [*const f32; R], o: &mut [f32]) {
        let (w, n) = (self.weights, self.weights.n);
        for p in 0..n.div_ceil(NR) {
            // SAFETY: the caller's contract.
            let acc = unsafe {
                let panel = w.panel(p).as_ptr();
                if self.table {
                    gemm_f32::tile(w.k, rows, |kk| *self.starts.get_unchecked(kk), panel)
                } else {
                    gemm_f32::tile_runs(self.starts, self.run, rows, panel)
                }
            };
            gemm_f32::store_tile(&acc, bias_of(self.ep, p, n), self.ep, o, n, (p * NR, NR.min(n - p * NR)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::conv::conv2d_f32_reference;
    use crate::kernels::geometry::{Window, Window2D};
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[allow(clippy::too_many_arguments)]
    fn check(batch: usize, hw: usize, in_c: usize, out_c: usize, k: usize, stride: usize, dil: usize, pad: Padding) {
        let (Some(h), Some(w)) = (Window::new(pad, hw, k, stride, dil), Window::new(pad, hw + 3, k, stride, dil))
        else {
            return;
        };
        let s = ConvShape { batch, in_c, out_c, win: Window2D { h, w } };
        let mut rng = Rng::new((batch * 1000 + hw * 100 + in_c * 10 + out_c + k + stride) as u64);
        let input: Vec<f32> = (0..s.input_len()).map(|_| rng.normal()).collect();
        let weights: Vec<f32> = (0..out_c * s.patch_len()).map(|_| rng.normal()).collect();
        let bias: Vec<f32> = (0..out_c).map(|_| rng.normal()).collect();
        let ep = if out_c % 2 == 1 {
            Epilogue { bias: Some(&bias), min: -1.0, max: 2.5 }
        } else {
            Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY }
        };
        let mut want = vec![0.0; s.output_len()];
        conv2d_f32_reference(&s, &input, &weights, ep, &mut want);
        let mut got = vec![0.0; s.output_len()];
        let packed = PackedF32::pack(&weights, out_c, s.patch_len());
        conv2d(&s, &input, &packed, ep, &mut got, &mut Vec::new(), &mut Vec::new());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            let what = format!("{batch}x{hw}x{}x{in_c}->{out_c} k{k} s{stride} d{dil} {pad:?}", hw + 3);
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{what} at {i}: {g} vs {e}");
        }
    }

    /// 1–4 input channels (first layers) and more (ResNet-8's 16–64, and off the vector width),
    /// output channels on and off the panel width, 1×1 to 5×5 windows, strides 1–3, dilation 2,
    /// both paddings, batch 2.
    #[test]
    fn direct_conv_matches_reference_on_generated_shapes() {
        for pad in [Padding::Same, Padding::Valid] {
            for in_c in [1, 2, 3, 4, 7, 16, 33] {
                for out_c in [1, 5, 8, 9, 16, 17] {
                    for (hw, k, stride) in [(1, 1, 1), (5, 3, 1), (6, 3, 2), (9, 3, 2), (7, 5, 3), (4, 2, 1), (6, 1, 2)]
                    {
                        check(1, hw, in_c, out_c, k, stride, 1, pad);
                    }
                    check(2, 6, in_c, out_c, 3, 2, 1, pad);
                    check(1, 8, in_c, out_c, 3, 1, 2, pad);
                }
            }
        }
    }
}
