//! Float and hybrid CONV_2D and DEPTHWISE_CONV_2D over NHWC data.
//!
//! Float convolutions run as im2col + [`gemm_f32`] in blocks of output pixels (a 1×1 stride-1 conv
//! needs no im2col at all, few input channels go to [`conv_f32_direct`], depthwise with multiplier
//! 1 to [`depthwise_f32`]); the `*_reference` functions are direct loops, kept as ground truth.
//! Hybrid versions take activations already quantized per batch (see [`super::quant`]) and int8
//! weights, accumulate `Σ w·(q − zp)` over the taps inside the image in int32, then compute
//! `acc·scale[c] + bias[c]` in float, which is exactly what LiteRT's hybrid kernels compute.

use super::f32x4::F4;
use super::gemm_f32::{self, Epilogue, PackedF32};
use super::gemm_i8::{self, PackedI8};
use super::geometry::{Window, Window2D};
use super::{conv_f32_direct, depthwise_f32};

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

/// Copies NHWC `input` into `padded`, surrounded by the padding the window needs (and extended to
/// every row and column the window reads) filled with `pad`, so that every tap is in bounds.
/// Channel `c` of a padded pixel is input channel `c / mult` (depthwise multipliers); channels
/// `in_c·mult..cp` are `pad` too. Returns the padded (height, width).
pub fn pad_nhwc<T: Copy>(
    s: &ConvShape,
    input: &[T],
    pad: T,
    mult: usize,
    cp: usize,
    padded: &mut Vec<T>,
) -> (usize, usize) {
    let (hp, wp) = padded_size(s);
    padded.clear();
    padded.resize(s.batch * hp * wp * cp, pad);
    let (ph, pw) = (s.win.h.pad_before, s.win.w.pad_before);
    if mult == 1 && cp == s.in_c {
        // Whole image rows are contiguous on both sides.
        let row = s.in_w() * s.in_c;
        for b in 0..s.batch {
            for y in 0..s.in_h() {
                let src = &input[(b * s.in_h() + y) * row..][..row];
                padded[((b * hp + y + ph) * wp + pw) * cp..][..row].copy_from_slice(src);
            }
        }
        return (hp, wp);
    }
    for b in 0..s.batch {
        for y in 0..s.in_h() {
            for x in 0..s.in_w() {
                let src = &input[((b * s.in_h() + y) * s.in_w() + x) * s.in_c..][..s.in_c];
                let dst = &mut padded[((b * hp + y + ph) * wp + x + pw) * cp..][..s.in_c * mult];
                if mult == 1 {
                    dst.copy_from_slice(src);
                } else {
                    for (c, d) in dst.iter_mut().enumerate() {
                        *d = src[c / mult];
                    }
                }
            }
        }
    }
    (hp, wp)
}

/// The (height, width) [`pad_nhwc`] pads `s`'s input to.
fn padded_size(s: &ConvShape) -> (usize, usize) {
    let span = |w: &Window| (w.output.max(1) - 1) * w.stride + (w.filter - 1) * w.dilation + 1;
    let hp = span(&s.win.h).max(s.win.h.pad_before + s.in_h());
    let wp = span(&s.win.w).max(s.win.w.pad_before + s.in_w());
    (hp, wp)
}

/// [`pad_nhwc`] of int8 values widened to i16 (multiplier 1, `in_c` channels) in one pass: every
/// element of `padded` is written once, in order (the padding rows, a row's left padding, its
/// widened pixels, its right padding), where widening first and padding the widened copy wrote
/// and read the image twice and filled the whole buffer before copying the image over it.
pub fn pad_nhwc_i16(s: &ConvShape, input: &[i8], pad: i8, padded: &mut Vec<i16>) -> (usize, usize) {
    let (hp, wp) = padded_size(s);
    let (c, in_h, ph, pw) = (s.in_c, s.in_h(), s.win.h.pad_before, s.win.w.pad_before);
    let (row, line) = (s.in_w() * c, wp * c);
    let fill = |v: &mut Vec<i16>, n: usize| v.extend(core::iter::repeat_n(pad as i16, n));
    padded.clear();
    padded.reserve(s.batch * hp * line);
    for b in 0..s.batch {
        fill(padded, ph * line);
        for y in 0..in_h {
            let src = &input[(b * in_h + y) * row..][..row];
            fill(padded, pw * c);
            padded.extend(src.iter().map(|&v| v as i16));
            fill(padded, line - (pw * c + row));
        }
        fill(padded, (hp - ph - in_h) * line);
    }
    (hp, wp)
}

/// Output pixels `(batch, oy, ox)` in NHWC order from flat pixel `p0` on: one division at the
/// start, then counters (integer division costs tens of cycles in wasm, per pixel adds up).
pub fn pixels_from(s: &ConvShape, p0: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let (oh, ow) = (s.out_h(), s.out_w().max(1));
    let per_image = (oh * ow).max(1);
    let rem = p0 % per_image;
    let mut at = (p0 / per_image, rem / ow, rem % ow);
    std::iter::repeat_with(move || {
        let here = at;
        at.2 += 1;
        if at.2 == ow {
            at = if at.1 + 1 == oh { (at.0 + 1, 0, 0) } else { (at.0, at.1 + 1, 0) };
        }
        here
    })
}

/// Offsets, in a padded input from [`pad_nhwc`] of width `wp` and `cp` channels, of each filter
/// tap relative to the window's top-left corner, in `[kh][kw]` order.
pub fn tap_offsets(s: &ConvShape, wp: usize, cp: usize) -> Vec<usize> {
    (0..s.kh())
        .flat_map(|ky| (0..s.kw()).map(move |kx| (ky * s.win.h.dilation * wp + kx * s.win.w.dilation) * cp))
        .collect()
}

/// Float CONV_2D: `weights` packed from `[out_c, kh, kw, in_c]`. A 1×1 stride-1 convolution is a
/// GEMM over the input itself; any other window is read straight from the padded input, one filter
/// row at a time ([`conv_f32_direct`]: no im2col copies, which cost ResNet-8's 3×3 layers a fifth of
/// their time in the simd128 build).
pub fn conv2d_f32(
    s: &ConvShape,
    input: &[f32],
    weights: &PackedF32,
    ep: Epilogue,
    out: &mut [f32],
    padded: &mut Vec<f32>,
) {
    assert_eq!(weights.n, s.out_c);
    assert_eq!(weights.k, s.patch_len());
    if s.is_pointwise() {
        let pixels = s.batch * s.out_h() * s.out_w();
        gemm_f32::gemm(pixels, input, s.in_c, weights, ep, out, s.out_c);
        return;
    }
    conv_f32_direct::conv2d(s, input, weights, ep, out, padded, &mut Vec::new());
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

/// Float DEPTHWISE_CONV_2D: weights `[kh, kw, out_c]`, `out_c = in_c · multiplier`. Multiplier 1
/// goes to [`depthwise_f32`]; others run over a zero-padded copy of the input, per output pixel
/// blocks of up to eight channels summed over all taps, then the bias added and the clamp applied.
pub fn depthwise_f32(
    s: &ConvShape,
    input: &[f32],
    weights: &[f32],
    ep: Epilogue,
    out: &mut [f32],
    padded: &mut Vec<f32>,
) {
    let (in_c, out_c) = (s.in_c, s.out_c);
    assert!(in_c > 0 && out_c % in_c == 0, "depthwise channels");
    if depthwise_f32::supports(s) {
        depthwise_f32::depthwise(s, input, weights, ep, out);
        return;
    }
    let (hp, wp) = pad_nhwc(s, input, 0.0, out_c / in_c, out_c, padded);
    let taps = tap_offsets(s, wp, out_c);
    let zero = [0.0f32; 8];
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let base = ((b * hp + oy * s.win.h.stride) * wp + ox * s.win.w.stride) * out_c;
                let o = &mut out[((b * s.out_h() + oy) * s.out_w() + ox) * out_c..][..out_c];
                for c0 in (0..out_c).step_by(8) {
                    let width = (out_c - c0).min(8);
                    let bias = ep.bias.map_or(&zero[..width], |b| &b[c0..c0 + width]);
                    dw_block_f32(padded, base + c0, &taps, &weights[c0..], out_c, bias, ep, &mut o[c0..c0 + width]);
                }
            }
        }
    }
}

/// `out[c] = clamp(bias[c] + Σ_t w[t·stride + c] · x[base + taps[t] + c])` for `c < out.len() ≤ 8`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dw_block_f32(
    x: &[f32],
    base: usize,
    taps: &[usize],
    w: &[f32],
    stride: usize,
    bias: &[f32],
    ep: Epilogue,
    out: &mut [f32],
) {
    let n = out.len();
    let (lo, hi) = (F4::splat(ep.min), F4::splat(ep.max));
    for c0 in (0..n - n % 4).step_by(4) {
        let mut acc = F4::splat(0.0);
        for (t, &off) in taps.iter().enumerate() {
            acc = F4::from_slice(&x[base + off + c0..]).madd(F4::from_slice(&w[t * stride + c0..]), acc);
        }
        acc.plus(F4::from_slice(&bias[c0..])).clamp(lo, hi).write(&mut out[c0..]);
    }
    for c in n - n % 4..n {
        let mut acc = 0.0f32;
        for (t, &off) in taps.iter().enumerate() {
            acc += x[base + off + c] * w[t * stride + c];
        }
        out[c] = (acc + bias[c]).max(ep.min).min(ep.max);
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
    let (k, n) = (s.patch_len(), s.out_c);
    let packed = PackedI8::pack(weights, n, k);
    let kp = packed.kp;
    let one = ConvShape { batch: 1, ..*s };
    let (pixels, per_in) = (s.out_h() * s.out_w(), s.in_h() * s.in_w() * s.in_c);
    let (mut wide, mut padded, mut cols) = (Vec::new(), Vec::new(), vec![0i16; BLOCK * kp]);
    for b in 0..s.batch {
        let (in_scale, zp) = input.params[b];
        // Padding taps hold the zero point: `w·(zp - zp)` adds nothing, as skipping them would.
        wide.clear();
        wide.extend(input.values[b * per_in..(b + 1) * per_in].iter().map(|&v| v as i16));
        let geometry = pad_nhwc(&one, &wide, zp as i16, 1, s.in_c, &mut padded);
        let out_b = &mut out[b * pixels * n..(b + 1) * pixels * n];
        for p0 in (0..pixels).step_by(BLOCK) {
            let rows = BLOCK.min(pixels - p0);
            gather_rows(&one, &padded, geometry, (p0, rows), &mut cols, kp);
            let store = |i0: usize, tile_rows: usize, first: usize, tile: &[[i32; 8]; 4], cols: usize| {
                for (i, acc) in tile.iter().enumerate().take(tile_rows) {
                    for (c, &a) in acc.iter().enumerate().take(cols) {
                        let oc = first + c;
                        let acc = a.wrapping_sub(zp.wrapping_mul(packed.row_sums[oc]));
                        let scaled = if per_channel {
                            acc as f32 * w_scale[oc] * in_scale
                        } else {
                            acc as f32 * (in_scale * w_scale[oc])
                        };
                        let v = scaled + ep.bias.map_or(0.0, |b| b[oc]);
                        out_b[(p0 + i0 + i) * n + oc] = v.max(ep.min).min(ep.max);
                    }
                }
            };
            gemm_i8::for_each_tile(rows, n, &cols, kp, kp, |p| packed.panel(p), gemm_i8::best(), store);
        }
    }
}

/// Rows `p0..p0 + n` of the patches of a padded single image (from [`pad_nhwc`]) into `cols`
/// (row stride `ld`), a filter row's taps at a time where they are contiguous.
fn gather_rows<T: Copy>(
    s: &ConvShape,
    padded: &[T],
    (_, wp): (usize, usize),
    (p0, n): (usize, usize),
    cols: &mut [T],
    ld: usize,
) {
    let run = if s.win.w.dilation == 1 { s.kw() * s.in_c } else { s.in_c };
    for (r, p) in (p0..p0 + n).enumerate() {
        let (oy, ox) = (p / s.out_w(), p % s.out_w());
        let row = &mut cols[r * ld..r * ld + s.patch_len()];
        for ky in 0..s.kh() {
            let y = oy * s.win.h.stride + ky * s.win.h.dilation;
            for (j, dst) in row[ky * s.kw() * s.in_c..(ky + 1) * s.kw() * s.in_c].chunks_exact_mut(run).enumerate() {
                dst.copy_from_slice(&padded[(y * wp + ox * s.win.w.stride + j * s.win.w.dilation) * s.in_c..][..run]);
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
pub(crate) mod tests {
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::geometry::Window;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn shape(
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

    /// The fused pad-and-widen gives the widened input padded as [`pad_nhwc`] pads it: every
    /// padding (valid, same with odd and even totals, a window wider than the image), stride,
    /// dilation, batch, one and several channels, and empty images.
    #[test]
    fn pad_nhwc_i16_equals_padding_the_widened_input() {
        let mut rng = Rng::new(41);
        let mut cases = 0;
        for (hw, k, stride, dil, batch, c) in [
            ((96, 96), (3, 3), 2, 1, 1, 3),
            ((7, 5), (3, 3), 1, 1, 2, 8),
            ((6, 6), (3, 3), 2, 1, 1, 16),
            ((5, 9), (1, 5), 3, 1, 3, 1),
            ((4, 4), (3, 3), 1, 2, 1, 5),
            ((2, 3), (5, 5), 1, 1, 2, 2),
            ((1, 1), (3, 3), 2, 1, 1, 7),
            ((0, 4), (3, 3), 1, 1, 1, 3),
        ] {
            for pad in [Padding::Same, Padding::Valid] {
                let Some(h) = Window::new(pad, hw.0, k.0, stride, dil) else { continue };
                let Some(w) = Window::new(pad, hw.1, k.1, stride, dil) else { continue };
                let s = ConvShape { batch, in_c: c, out_c: 1, win: Window2D { h, w } };
                let input: Vec<i8> = (0..s.input_len()).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
                let zp = (rng.below(256) as i32 - 128) as i8;
                let wide: Vec<i16> = input.iter().map(|&v| v as i16).collect();
                let (mut want, mut got) = (Vec::new(), vec![1i16; 3]);
                let dims = pad_nhwc(&s, &wide, zp as i16, 1, c, &mut want);
                assert_eq!(pad_nhwc_i16(&s, &input, zp, &mut got), dims, "{s:?}");
                assert_eq!(got, want, "{s:?}");
                cases += 1;
            }
        }
        assert!(cases >= 12, "{cases} cases");
    }

    #[test]
    fn pixels_from_counts_as_division_does() {
        for (h, w, stride, batch) in [(5, 7, 1, 2), (6, 6, 2, 3), (1, 1, 1, 4), (9, 2, 3, 1)] {
            let win = |n| Window::new(Padding::Same, n, 3, stride, 1).unwrap();
            let s = ConvShape {
                batch,
                in_c: 1,
                out_c: 1,
                win: crate::kernels::geometry::Window2D { h: win(h), w: win(w) },
            };
            let (oh, ow) = (s.out_h(), s.out_w());
            let total = batch * oh * ow;
            for p0 in [0, 1, ow.saturating_sub(1), ow, oh * ow - 1, total - 1] {
                let want: Vec<_> = (p0..total).map(|p| (p / (oh * ow), p % (oh * ow) / ow, p % ow)).collect();
                let got: Vec<_> = pixels_from(&s, p0).take(total - p0).collect();
                assert_eq!(got, want, "{h}x{w} stride {stride} batch {batch} from {p0}");
            }
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
            // More channels, as ResNet-8's 3×3 layers have.
            shape(2, (7, 6), 6, 9, (3, 2), 2, 1, Padding::Same),
            shape(1, (9, 9), 5, 3, (3, 3), 1, 2, Padding::Valid),
            shape(1, (6, 5), 16, 8, (3, 3), 1, 1, Padding::Same),
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
            (shape(2, (9, 7), 20, 20, (3, 3), 2, 1, Padding::Same), 1),
            (shape(1, (6, 6), 16, 16, (5, 5), 1, 1, Padding::Same), 1),
        ] {
            let input: Vec<f32> = (0..s.input_len()).map(|_| rng.normal()).collect();
            let w: Vec<f32> = (0..s.kh() * s.kw() * s.out_c).map(|_| rng.normal()).collect();
            let bias: Vec<f32> = (0..s.out_c).map(|_| rng.normal()).collect();
            let ep = if s.out_c % 2 == 0 {
                Epilogue { bias: Some(&bias), min: -1.0, max: 2.5 }
            } else {
                Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY }
            };
            let mut want = vec![0.0; s.output_len()];
            depthwise_f32_reference(&s, &input, &w, ep, &mut want);
            let mut got = vec![0.0; s.output_len()];
            depthwise_f32(&s, &input, &w, ep, &mut got, &mut Vec::new());
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
