//! Float and hybrid CONV_2D and DEPTHWISE_CONV_2D over NHWC data.
//!
//! Float convolutions run as im2col + [`gemm_f32`] in blocks of output pixels (a 1×1 stride-1 conv
//! needs no im2col at all); the `*_reference` functions are direct loops, kept as ground truth.
//! Hybrid versions take activations already quantized per batch (see [`super::quant`]) and int8
//! weights, accumulate `Σ w·(q − zp)` over the taps inside the image in int32, then compute
//! `acc·scale[c] + bias[c]` in float, which is exactly what LiteRT's hybrid kernels compute.

use super::gemm_f32::{self, Epilogue, PackedF32};
use super::geometry::Window2D;

/// Shapes of one convolution: input `[batch, h, w, in_c]`, output `[batch, out_h, out_w, out_c]`,
/// filter taps `kh × kw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub win: Window2D,
}

impl ConvShape {
    pub fn in_h(&self) -> usize {
        self.win.h.input
    }
    pub fn in_w(&self) -> usize {
        self.win.w.input
    }
    pub fn out_h(&self) -> usize {
        self.win.h.output
    }
    pub fn out_w(&self) -> usize {
        self.win.w.output
    }
    pub fn kh(&self) -> usize {
        self.win.h.filter
    }
    pub fn kw(&self) -> usize {
        self.win.w.filter
    }
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h() * self.in_w() * self.in_c
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h() * self.out_w() * self.out_c
    }
    /// Multiply-accumulates of a regular convolution with these shapes.
    pub fn conv_macs(&self) -> usize {
        self.output_len() * self.kh() * self.kw() * self.in_c
    }
    fn is_pointwise(&self) -> bool {
        self.kh() == 1
            && self.kw() == 1
            && self.win.h.stride == 1
            && self.win.w.stride == 1
            && self.win.h.pad_before == 0
            && self.win.w.pad_before == 0
            && self.out_h() == self.in_h()
            && self.out_w() == self.in_w()
    }
    /// Length of one im2col row: the filter's size `kh·kw·in_c`.
    pub fn patch_len(&self) -> usize {
        self.kh() * self.kw() * self.in_c
    }
}

/// Output pixels per im2col block: keeps the scratch small and in cache.
const BLOCK: usize = 64;

/// Copies the patch of output pixel `(b, oy, ox)` into `row` (`patch_len` values, `pad` where the
/// filter hangs over the image edge).
#[inline]
fn patch<T: Copy>(s: &ConvShape, input: &[T], b: usize, oy: usize, ox: usize, pad: T, row: &mut [T]) {
    let c = s.in_c;
    for ky in 0..s.kh() {
        let iy = s.win.h.tap(oy, ky);
        for kx in 0..s.kw() {
            let dst = &mut row[(ky * s.kw() + kx) * c..(ky * s.kw() + kx + 1) * c];
            match (iy, s.win.w.tap(ox, kx)) {
                (Some(iy), Some(ix)) => {
                    let src = ((b * s.in_h() + iy) * s.in_w() + ix) * c;
                    dst.copy_from_slice(&input[src..src + c]);
                }
                _ => dst.fill(pad),
            }
        }
    }
}

/// Float CONV_2D: `weights` packed from `[out_c, kh, kw, in_c]`.
pub fn conv2d_f32(
    s: &ConvShape,
    input: &[f32],
    weights: &PackedF32,
    ep: Epilogue,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    assert_eq!(weights.n, s.out_c);
    assert_eq!(weights.k, s.patch_len());
    let pixels = s.batch * s.out_h() * s.out_w();
    if s.is_pointwise() {
        gemm_f32::gemm(pixels, input, s.in_c, weights, ep, out, s.out_c);
        return;
    }
    let k = s.patch_len();
    scratch.resize(BLOCK * k, 0.0);
    let per_image = s.out_h() * s.out_w();
    for p0 in (0..pixels).step_by(BLOCK) {
        let n = BLOCK.min(pixels - p0);
        for (r, p) in (p0..p0 + n).enumerate() {
            let (b, rem) = (p / per_image, p % per_image);
            patch(s, input, b, rem / s.out_w(), rem % s.out_w(), 0.0, &mut scratch[r * k..(r + 1) * k]);
        }
        gemm_f32::gemm(n, scratch, k, weights, ep, &mut out[p0 * s.out_c..(p0 + n) * s.out_c], s.out_c);
    }
}

/// Direct-loop float CONV_2D over unpacked `[out_c, kh, kw, in_c]` weights.
pub fn conv2d_f32_reference(s: &ConvShape, input: &[f32], weights: &[f32], ep: Epilogue, out: &mut [f32]) {
    let (c, kh, kw) = (s.in_c, s.kh(), s.kw());
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for oc in 0..s.out_c {
                    let mut acc = 0.0f32;
                    for ky in 0..kh {
                        let Some(iy) = s.win.h.tap(oy, ky) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = s.win.w.tap(ox, kx) else { continue };
                            let inp = &input[((b * s.in_h() + iy) * s.in_w() + ix) * c..][..c];
                            let w = &weights[((oc * kh + ky) * kw + kx) * c..][..c];
                            acc += inp.iter().zip(w).map(|(x, w)| x * w).sum::<f32>();
                        }
                    }
                    let v = acc + ep.bias.map_or(0.0, |b| b[oc]);
                    out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = v.max(ep.min).min(ep.max);
                }
            }
        }
    }
}

/// Float DEPTHWISE_CONV_2D: weights `[kh, kw, out_c]`, `out_c = in_c · multiplier`.
pub fn depthwise_f32(s: &ConvShape, input: &[f32], weights: &[f32], ep: Epilogue, out: &mut [f32]) {
    let (in_c, out_c) = (s.in_c, s.out_c);
    assert!(in_c > 0 && out_c % in_c == 0, "depthwise channels");
    let mult = out_c / in_c;
    let mut acc = vec![0.0f32; out_c];
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                match ep.bias {
                    Some(bias) => acc.copy_from_slice(&bias[..out_c]),
                    None => acc.fill(0.0),
                }
                for ky in s.win.h.valid_taps(oy) {
                    let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                    for kx in s.win.w.valid_taps(ox) {
                        let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                        let inp = &input[((b * s.in_h() + iy) * s.in_w() + ix) * in_c..][..in_c];
                        let w = &weights[(ky * s.kw() + kx) * out_c..][..out_c];
                        if mult == 1 {
                            for ((a, x), w) in acc.iter_mut().zip(inp).zip(w) {
                                *a += x * w;
                            }
                        } else {
                            for (oc, (a, w)) in acc.iter_mut().zip(w).enumerate() {
                                *a += inp[oc / mult] * w;
                            }
                        }
                    }
                }
                let o = &mut out[((b * s.out_h() + oy) * s.out_w() + ox) * out_c..][..out_c];
                for (o, a) in o.iter_mut().zip(&acc) {
                    *o = a.max(ep.min).min(ep.max);
                }
            }
        }
    }
}

/// Direct-loop float DEPTHWISE_CONV_2D, tap by tap as TFLite's reference kernel walks it.
pub fn depthwise_f32_reference(s: &ConvShape, input: &[f32], weights: &[f32], ep: Epilogue, out: &mut [f32]) {
    let mult = s.out_c / s.in_c;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for ic in 0..s.in_c {
                    for m in 0..mult {
                        let oc = ic * mult + m;
                        let mut acc = 0.0f32;
                        for ky in 0..s.kh() {
                            for kx in 0..s.kw() {
                                if let (Some(iy), Some(ix)) = (s.win.h.tap(oy, ky), s.win.w.tap(ox, kx)) {
                                    acc += input[((b * s.in_h() + iy) * s.in_w() + ix) * s.in_c + ic]
                                        * weights[(ky * s.kw() + kx) * s.out_c + oc];
                                }
                            }
                        }
                        let v = acc + ep.bias.map_or(0.0, |b| b[oc]);
                        out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = v.max(ep.min).min(ep.max);
                    }
                }
            }
        }
    }
}

/// Activations quantized per batch for a hybrid kernel.
pub struct QuantizedInput<'a> {
    pub values: &'a [i8],
    /// Per batch: (scale, zero point).
    pub params: &'a [(f32, i32)],
}

/// Hybrid CONV_2D: int8 weights `[out_c, kh·kw·in_c]` with per-output-channel `w_scale`.
///
/// LiteRT has two hybrid convolutions with different float rounding: per-tensor weights scale the
/// accumulator by `input_scale · weight_scale` (one product), per-channel weights (`per_channel`,
/// which also quantize the input asymmetrically) by `(acc · weight_scale) · input_scale`.
pub fn conv2d_hybrid(
    s: &ConvShape,
    input: QuantizedInput,
    weights: &[i8],
    w_scale: &[f32],
    per_channel: bool,
    ep: Epilogue,
    out: &mut [f32],
) {
    let k = s.patch_len();
    let mut row = vec![0i8; k];
    let mut valid = vec![false; s.kh() * s.kw()];
    for b in 0..s.batch {
        let (in_scale, zp) = input.params[b];
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                patch(s, input.values, b, oy, ox, 0, &mut row);
                for ky in 0..s.kh() {
                    for kx in 0..s.kw() {
                        valid[ky * s.kw() + kx] = s.win.h.tap(oy, ky).is_some() && s.win.w.tap(ox, kx).is_some();
                    }
                }
                let o = &mut out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c..][..s.out_c];
                for (oc, o) in o.iter_mut().enumerate() {
                    let w = &weights[oc * k..(oc + 1) * k];
                    let mut acc: i32 = 0;
                    for (t, ok) in valid.iter().enumerate() {
                        if *ok {
                            let r = &row[t * s.in_c..(t + 1) * s.in_c];
                            let wt = &w[t * s.in_c..(t + 1) * s.in_c];
                            for (q, w) in r.iter().zip(wt) {
                                acc += (*w as i32) * (*q as i32 - zp);
                            }
                        }
                    }
                    let scaled = if per_channel {
                        acc as f32 * w_scale[oc] * in_scale
                    } else {
                        acc as f32 * (in_scale * w_scale[oc])
                    };
                    let v = scaled + ep.bias.map_or(0.0, |b| b[oc]);
                    *o = v.max(ep.min).min(ep.max);
                }
            }
        }
    }
}

/// Hybrid DEPTHWISE_CONV_2D: int8 weights `[kh, kw, out_c]`, per-channel `w_scale`.
pub fn depthwise_hybrid(
    s: &ConvShape,
    input: QuantizedInput,
    weights: &[i8],
    w_scale: &[f32],
    ep: Epilogue,
    out: &mut [f32],
) {
    let mult = s.out_c / s.in_c;
    for b in 0..s.batch {
        let (in_scale, zp) = input.params[b];
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for oc in 0..s.out_c {
                    let ic = oc / mult;
                    let mut acc: i32 = 0;
                    for ky in s.win.h.valid_taps(oy) {
                        let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                        for kx in s.win.w.valid_taps(ox) {
                            let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                            let q = input.values[((b * s.in_h() + iy) * s.in_w() + ix) * s.in_c + ic] as i32;
                            acc += weights[(ky * s.kw() + kx) * s.out_c + oc] as i32 * (q - zp);
                        }
                    }
                    let v = acc as f32 * (w_scale[oc] * in_scale) + ep.bias.map_or(0.0, |b| b[oc]);
                    out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = v.max(ep.min).min(ep.max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::geometry::Window;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn shape(
        batch: usize,
        hw: (usize, usize),
        in_c: usize,
        out_c: usize,
        k: (usize, usize),
        stride: usize,
        dil: usize,
        pad: Padding,
    ) -> ConvShape {
        let h = Window::new(pad, hw.0, k.0, stride, dil).unwrap();
        let w = Window::new(pad, hw.1, k.1, stride, dil).unwrap();
        ConvShape { batch, in_c, out_c, win: Window2D { h, w } }
    }

    fn close(a: &[f32], b: &[f32]) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "at {i}: {x} vs {y}");
        }
    }

    #[test]
    fn conv_matches_reference_on_varied_shapes() {
        let mut rng = Rng::new(3);
        let cases = [
            shape(1, (5, 5), 3, 4, (3, 3), 1, 1, Padding::Same),
            shape(2, (7, 6), 2, 9, (3, 2), 2, 1, Padding::Same),
            shape(1, (9, 9), 4, 3, (3, 3), 1, 2, Padding::Valid),
            shape(1, (4, 4), 8, 8, (1, 1), 1, 1, Padding::Same),
            shape(1, (12, 12), 3, 17, (5, 5), 3, 1, Padding::Same),
        ];
        for s in cases {
            let input: Vec<f32> = (0..s.input_len()).map(|_| rng.normal()).collect();
            let w: Vec<f32> = (0..s.out_c * s.patch_len()).map(|_| rng.normal()).collect();
            let bias: Vec<f32> = (0..s.out_c).map(|_| rng.normal()).collect();
            let ep = Epilogue { bias: Some(&bias), min: -2.0, max: 3.0 };
            let mut want = vec![0.0; s.output_len()];
            conv2d_f32_reference(&s, &input, &w, ep, &mut want);
            let mut got = vec![0.0; s.output_len()];
            conv2d_f32(&s, &input, &PackedF32::pack(&w, s.out_c, s.patch_len()), ep, &mut got, &mut Vec::new());
            close(&got, &want);
        }
    }

    #[test]
    fn depthwise_matches_reference_with_multiplier() {
        let mut rng = Rng::new(4);
        for (s, _mult) in [
            (shape(1, (6, 6), 4, 4, (3, 3), 1, 1, Padding::Same), 1),
            (shape(2, (7, 5), 3, 6, (3, 3), 2, 1, Padding::Same), 2),
            (shape(1, (8, 8), 5, 5, (3, 3), 1, 2, Padding::Valid), 1),
        ] {
            let input: Vec<f32> = (0..s.input_len()).map(|_| rng.normal()).collect();
            let w: Vec<f32> = (0..s.kh() * s.kw() * s.out_c).map(|_| rng.normal()).collect();
            let ep = Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY };
            let mut want = vec![0.0; s.output_len()];
            depthwise_f32_reference(&s, &input, &w, ep, &mut want);
            let mut got = vec![0.0; s.output_len()];
            depthwise_f32(&s, &input, &w, ep, &mut got);
            close(&got, &want);
        }
    }

    #[test]
    fn hybrid_conv_equals_float_conv_of_dequantized_values() {
        // With exact small integers, hybrid arithmetic equals the float convolution of
        // (q - zp)·in_scale against w·w_scale.
        let s = shape(1, (5, 5), 2, 3, (3, 3), 1, 1, Padding::Same);
        let mut rng = Rng::new(9);
        let q: Vec<i8> = (0..s.input_len()).map(|_| (rng.below(21) as i8) - 10).collect();
        let w: Vec<i8> = (0..s.out_c * s.patch_len()).map(|_| (rng.below(15) as i8) - 7).collect();
        let (in_scale, zp) = (0.5f32, 3);
        let w_scale = [0.25f32, 0.5, 1.0];
        let ep = Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY };
        let mut got = vec![0.0; s.output_len()];
        conv2d_hybrid(&s, QuantizedInput { values: &q, params: &[(in_scale, zp)] }, &w, &w_scale, true, ep, &mut got);
        // Padding must count as real zero, i.e. q == zp, so dequantize with the zero point.
        let xf: Vec<f32> = q.iter().map(|&v| (v as i32 - zp) as f32 * in_scale).collect();
        let wf: Vec<f32> = w.iter().enumerate().map(|(i, &v)| v as f32 * w_scale[i / s.patch_len()]).collect();
        let mut want = vec![0.0; s.output_len()];
        conv2d_f32_reference(&s, &xf, &wf, ep, &mut want);
        close(&got, &want);
    }
}
