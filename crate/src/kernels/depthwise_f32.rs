//! Float DEPTHWISE_CONV_2D with channel multiplier 1, read straight from the unpadded input.
//!
//! Output pixels whose whole 3×3 window lies inside the input (the interior) run four channels at
//! a time with the nine weight vectors and the bias held in registers: per pixel nine loads and
//! nine multiply-adds. Every other pixel (the padding border, other filter sizes or dilations,
//! channel counts that are not a multiple of four) goes through [`pixel`], which sums only the
//! taps inside the input.
//!
//! Taps are summed in TFLite's reference order, unfused in every build (a depthwise layer is
//! bound by its loads, and KWS's float depthwise layers feed hybrid ones, which quantize their
//! input again: a fused rounding there flips quantized values), and the bias comes last. [`super::conv::depthwise_f32_reference`] is the ground truth in tests.

use super::conv::ConvShape;
use super::f32x4::F4;
use super::gemm_f32::Epilogue;
use std::ops::Range;

/// Whether [`depthwise`] handles this shape (multiplier 1).
pub fn supports(s: &ConvShape) -> bool {
    s.in_c == s.out_c
}

/// `out = clamp(bias + depthwise(input, weights))`, weights `[kh, kw, c]`.
pub fn depthwise(s: &ConvShape, input: &[f32], weights: &[f32], ep: Epilogue, out: &mut [f32]) {
    assert!(supports(s), "depthwise multiplier must be 1");
    let c = s.out_c;
    assert!(input.len() >= s.input_len() && out.len() >= s.output_len(), "depthwise buffers too short");
    assert!(weights.len() >= s.kh() * s.kw() * c, "depthwise weights too short");
    if let Some(b) = ep.bias {
        assert!(b.len() >= c, "bias too short");
    }
    let is_3x3 = s.kh() == 3 && s.kw() == 3 && s.win.h.dilation == 1 && s.win.w.dilation == 1 && c.is_multiple_of(4);
    let xs = if is_3x3 { interior(&s.win.w) } else { 0..0 };
    let row_len = s.out_w() * c;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            let o = &mut out[((b * s.out_h() + oy) * s.out_w()) * c..][..row_len];
            let full_rows = s.win.h.valid_taps(oy) == (0..3);
            let xs = if full_rows { xs.clone() } else { 0..0 };
            if !xs.is_empty() {
                interior_row(s, input, weights, ep, (b, oy), xs.clone(), o);
            }
            for ox in (0..s.out_w()).filter(|ox| !xs.contains(ox)) {
                pixel(s, input, weights, ep, (b, oy, ox), &mut o[ox * c..(ox + 1) * c]);
            }
        }
    }
}

/// The outputs along `w` whose three taps are all inside the input (a contiguous range).
fn interior(w: &super::geometry::Window) -> Range<usize> {
    let full = |o: &usize| w.valid_taps(*o) == (0..3);
    let Some(first) = (0..w.output).find(full) else { return 0..0 };
    let last = (first..w.output).rev().find(full).unwrap_or(first);
    first..last + 1
}

/// Interior pixels `xs` of output row `oy` (all three input rows inside), four channels at a time.
fn interior_row(
    s: &ConvShape,
    input: &[f32],
    weights: &[f32],
    ep: Epilogue,
    (b, oy): (usize, usize),
    xs: Range<usize>,
    out_row: &mut [f32],
) {
    let c = s.out_c;
    let (sx, row) = (s.win.w.stride, s.in_w() * c);
    let iy0 = oy * s.win.h.stride - s.win.h.pad_before;
    let top = &input[(b * s.in_h() + iy0) * row..(b * s.in_h() + iy0 + 3) * row];
    let ix0 = xs.start * sx - s.win.w.pad_before;
    // The last window's right column is inside the row, as `interior` chose `xs`.
    assert!(ix0 + (xs.len() - 1) * sx + 2 < s.in_w() && out_row.len() >= xs.end * c);
    let (lo, hi) = (F4::splat(ep.min), F4::splat(ep.max));
    for c0 in (0..c).step_by(4) {
        let w: [F4; 9] = core::array::from_fn(|t| F4::from_slice(&weights[t * c + c0..]));
        let bias = ep.bias.map_or(F4::splat(0.0), |b| F4::from_slice(&b[c0..]));
        let (src, dst) = (top[c0..].as_ptr(), out_row[xs.start * c + c0..].as_mut_ptr());
        for i in 0..xs.len() {
            let at = (ix0 + i * sx) * c;
            let mut acc = F4::splat(0.0);
            // SAFETY: the window's rows are the three rows of `top`, its columns ix0 + i·sx + 0..3
            // are inside a row (asserted for the last window); lanes c0..c0 + 4 ≤ c. The store
            // writes pixel xs.start + i < xs.end of `out_row`, channels c0..c0 + 4.
            unsafe {
                for ky in 0..3 {
                    for kx in 0..3 {
                        acc = F4::load(src.add(ky * row + at + kx * c)).mul_add(w[ky * 3 + kx], acc);
                    }
                }
                acc.plus(bias).clamp(lo, hi).store(dst.add(i * c));
            }
        }
    }
}

/// One output pixel, every channel, over the taps that fall inside the input: tap by tap (in the
/// reference order), each tap's whole channel row multiplied into `out`, which holds the sums,
/// then the bias and the clamp. Each channel sees the same operations in the same order as a
/// per-channel loop, without recomputing the tap's offsets per group of four channels.
fn pixel(
    s: &ConvShape,
    input: &[f32],
    weights: &[f32],
    ep: Epilogue,
    (b, oy, ox): (usize, usize, usize),
    out: &mut [f32],
) {
    let c = s.out_c;
    let vec_c = c - c % 4;
    let out = &mut out[..c];
    out.fill(0.0);
    for ky in s.win.h.valid_taps(oy) {
        let iy = s.win.h.tap(oy, ky).unwrap_or(0);
        for kx in s.win.w.valid_taps(ox) {
            let ix = s.win.w.tap(ox, kx).unwrap_or(0);
            let x = &input[((b * s.in_h() + iy) * s.in_w() + ix) * c..][..c];
            let w = &weights[(ky * s.kw() + kx) * c..][..c];
            for c0 in (0..vec_c).step_by(4) {
                F4::from_slice(&x[c0..])
                    .mul_add(F4::from_slice(&w[c0..]), F4::from_slice(&out[c0..]))
                    .write(&mut out[c0..]);
            }
            for ch in vec_c..c {
                out[ch] += x[ch] * w[ch];
            }
        }
    }
    let (lo, hi) = (F4::splat(ep.min), F4::splat(ep.max));
    for c0 in (0..vec_c).step_by(4) {
        let bias = ep.bias.map_or(F4::splat(0.0), |b| F4::from_slice(&b[c0..]));
        F4::from_slice(&out[c0..]).plus(bias).clamp(lo, hi).write(&mut out[c0..]);
    }
    for ch in vec_c..c {
        out[ch] = (out[ch] + ep.bias.map_or(0.0, |b| b[ch])).max(ep.min).min(ep.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::conv::depthwise_f32_reference;
    use crate::kernels::geometry::{Window, Window2D};
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check(batch: usize, (h, w): (usize, usize), c: usize, k: usize, stride: usize, dil: usize, pad: Padding) {
        let (Some(wh), Some(ww)) = (Window::new(pad, h, k, stride, dil), Window::new(pad, w, k, stride, dil)) else {
            return;
        };
        let s = ConvShape { batch, in_c: c, out_c: c, win: Window2D { h: wh, w: ww } };
        let mut rng = Rng::new((batch * 1000 + h * 100 + w * 10 + c + k + stride) as u64);
        let input: Vec<f32> = (0..s.input_len()).map(|_| rng.normal()).collect();
        let weights: Vec<f32> = (0..k * k * c).map(|_| rng.normal()).collect();
        let bias: Vec<f32> = (0..c).map(|_| rng.normal()).collect();
        let ep = if c.is_multiple_of(2) {
            Epilogue { bias: Some(&bias), min: -1.0, max: 2.5 }
        } else {
            Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY }
        };
        let mut want = vec![0.0; s.output_len()];
        depthwise_f32_reference(&s, &input, &weights, ep, &mut want);
        let mut got = vec![0.0; s.output_len()];
        depthwise(&s, &input, &weights, ep, &mut got);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            let what = format!("{batch}x{h}x{w}x{c} k{k} s{stride} d{dil} {pad:?}");
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{what} at {i}: {g} vs {e}");
        }
    }

    /// 3×3 (the register path and its border) and other filters, strides 1–3, both paddings,
    /// channel counts on and off the vector width, images narrower than the window, batch 2.
    #[test]
    fn depthwise_matches_reference_on_generated_shapes() {
        for pad in [Padding::Same, Padding::Valid] {
            for (h, w) in [(1, 1), (2, 3), (5, 5), (7, 6), (9, 12)] {
                for c in [1, 3, 4, 5, 8, 12] {
                    for stride in [1, 2, 3] {
                        check(1 + (h + c) % 2, (h, w), c, 3, stride, 1, pad);
                    }
                    check(1, (h, w), c, 5, 1, 1, pad);
                    check(2, (h, w), c, 3, 1, 2, pad);
                }
            }
        }
    }
}
