//! Int8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, as TFLite's reference integer kernels
//! compute them: `acc = Σ w·(x + input_offset) + bias` over the taps inside the image, then
//! `clamp(out_zp + M_c · acc)`. The `*_reference` functions are those loops written out; the fast
//! versions reorganize the sums (im2col padded with the input zero point, the offset folded into a
//! per-channel constant) and must give identical bytes.

use super::super::conv::{pad_nhwc, tap_offsets, ConvShape};
pub use super::super::fixedpoint::OutputStage;
use super::super::gemm_dot4::{self, PackedQuad};
use super::super::gemm_i8::{self, PackedI8, Requant};
use super::super::requant::{self, VecStage};

/// Direct-loop int8 CONV_2D (TFLite's `ConvPerChannel`); weights `[oc, kh, kw, ic]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_reference(
    s: &ConvShape,
    input_offset: i32,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
) {
    let (c, kh, kw) = (s.in_c, s.kh(), s.kw());
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for oc in 0..s.out_c {
                    let mut acc = 0i32;
                    for ky in 0..kh {
                        let Some(iy) = s.win.h.tap(oy, ky) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = s.win.w.tap(ox, kx) else { continue };
                            for ic in 0..c {
                                let x = input[((b * s.in_h() + iy) * s.in_w() + ix) * c + ic] as i32;
                                let w = weights[((oc * kh + ky) * kw + kx) * c + ic] as i32;
                                acc = acc.wrapping_add(w * (x + input_offset));
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = os.apply(oc, acc);
                }
            }
        }
    }
}

/// Prepared int8 CONV_2D or FULLY_CONNECTED weights: packed, with the per-channel constant
/// `bias + input_offset · Σ w` folded in. Where the relaxed-SIMD dot product is exact
/// ([`gemm_dot4::available`]) the weights are also packed for it, and it is used.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedGemm {
    pub weights: PackedI8,
    pub offset: Vec<i32>,
    pub stage: OutputStage,
    vec: Option<VecStage>,
    /// The "c4" packing and its offsets (including the u8-input correction).
    quad: Option<(PackedQuad, Vec<i32>)>,
}

impl PreparedGemm {
    pub fn new(
        weights: &[i8],
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
    ) -> Self {
        Self::with_dot4(weights, n, k, bias, input_offset, stage, gemm_dot4::available())
    }

    /// [`PreparedGemm::new`], choosing whether the four-wide dot kernel is used (tests force it).
    pub fn with_dot4(
        weights: &[i8],
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
        dot4: bool,
    ) -> Self {
        let packed = PackedI8::pack(weights, n, k);
        let offset: Vec<i32> = (0..n)
            .map(|j| bias.map_or(0, |b| b[j]).wrapping_add(input_offset.wrapping_mul(packed.row_sums[j])))
            .collect();
        let quad = dot4.then(|| {
            let q = PackedQuad::pack(weights, n, k);
            let off = offset.iter().zip(&q.correction).map(|(a, b)| a.wrapping_add(*b)).collect();
            (q, off)
        });
        let vec = VecStage::new(&stage, n);
        PreparedGemm { weights: packed, offset, stage, vec, quad }
    }

    fn requant<'a>(&'a self, offset: &'a [i32]) -> Requant<'a> {
        Requant { offset, stage: &self.stage, vec: self.vec.as_ref() }
    }
}

/// Scratch buffers the int8 convolutions reuse from call to call.
#[derive(Default)]
pub struct Scratch {
    cols16: Vec<i16>,
    cols8: Vec<u8>,
    padded: Vec<i8>,
}

/// Output pixels per im2col block.
const BLOCK: usize = 64;

/// Fills `cols` (rows of stride `ld`) with the patches of output pixels `p0..p0 + n`, converted
/// by `conv`: straight from the input for a 1×1 stride-1 convolution, otherwise from the padded
/// input, a filter row's taps at a time where they are contiguous.
#[allow(clippy::too_many_arguments)]
fn im2col<T: Copy>(
    s: &ConvShape,
    input: &[i8],
    padded: &[i8],
    (hp, wp): (usize, usize),
    pointwise: bool,
    (p0, n): (usize, usize),
    cols: &mut [T],
    ld: usize,
    conv: impl Fn(i8) -> T,
) {
    let k = s.patch_len();
    let per_image = s.out_h() * s.out_w();
    let run = if s.win.w.dilation == 1 { s.kw() * s.in_c } else { s.in_c };
    let copy = |dst: &mut [T], src: &[i8]| dst.iter_mut().zip(src).for_each(|(d, &v)| *d = conv(v));
    for (r, p) in (p0..p0 + n).enumerate() {
        let row = &mut cols[r * ld..r * ld + k];
        if pointwise {
            copy(row, &input[p * s.in_c..(p + 1) * s.in_c]);
            continue;
        }
        let (b, rem) = (p / per_image, p % per_image);
        let (oy, ox) = (rem / s.out_w(), rem % s.out_w());
        for ky in 0..s.kh() {
            let y = b * hp + oy * s.win.h.stride + ky * s.win.h.dilation;
            for (j, dst) in row[ky * s.kw() * s.in_c..(ky + 1) * s.kw() * s.in_c].chunks_exact_mut(run).enumerate() {
                copy(dst, &padded[(y * wp + ox * s.win.w.stride + j * s.win.w.dilation) * s.in_c..][..run]);
            }
        }
    }
}

/// Fast int8 CONV_2D: im2col rows read from a copy of the input padded with its zero point (so
/// padded taps contribute nothing after the offset fold), fed to the int8 GEMM: as `x + 128` bytes
/// to the four-wide dot kernel where it is exact, as i16 to the simd128 kernel otherwise.
pub fn conv2d(s: &ConvShape, input_zp: i8, input: &[i8], g: &PreparedGemm, out: &mut [i8], scratch: &mut Scratch) {
    debug_assert_eq!(g.weights.k, s.patch_len());
    let pixels = s.batch * s.out_h() * s.out_w();
    let pointwise = s.kh() == 1 && s.kw() == 1 && s.win.h.stride == 1 && s.win.w.stride == 1;
    let geometry = if pointwise { (0, 0) } else { pad_nhwc(s, input, input_zp, 1, s.in_c, &mut scratch.padded) };
    let padded = &scratch.padded;
    match &g.quad {
        Some((q, offset)) => {
            scratch.cols8.clear();
            scratch.cols8.resize(BLOCK * q.kq, 0);
            for p0 in (0..pixels).step_by(BLOCK) {
                let n = BLOCK.min(pixels - p0);
                im2col(s, input, padded, geometry, pointwise, (p0, n), &mut scratch.cols8, q.kq, |v| (v as u8) ^ 0x80);
                let o = &mut out[p0 * s.out_c..(p0 + n) * s.out_c];
                gemm_dot4::gemm(n, &scratch.cols8, q.kq, q, g.requant(offset), o, s.out_c);
            }
        }
        None => {
            let kp = g.weights.kp;
            scratch.cols16.clear();
            scratch.cols16.resize(BLOCK * kp, 0);
            for p0 in (0..pixels).step_by(BLOCK) {
                let n = BLOCK.min(pixels - p0);
                im2col(s, input, padded, geometry, pointwise, (p0, n), &mut scratch.cols16, kp, i16::from);
                let o = &mut out[p0 * s.out_c..(p0 + n) * s.out_c];
                gemm_i8::gemm(n, &scratch.cols16, kp, &g.weights, g.requant(&g.offset), o, s.out_c);
            }
        }
    }
}

/// Fast int8 FULLY_CONNECTED over `rows` rows of `k` inputs.
pub fn fully_connected(rows: usize, input: &[i8], g: &PreparedGemm, out: &mut [i8], scratch: &mut Scratch) {
    let (k, n) = (g.weights.k, g.weights.n);
    match &g.quad {
        Some((q, offset)) => {
            scratch.cols8.clear();
            scratch.cols8.resize(rows * q.kq, 0);
            for r in 0..rows {
                for (d, &v) in scratch.cols8[r * q.kq..r * q.kq + k].iter_mut().zip(&input[r * k..(r + 1) * k]) {
                    *d = (v as u8) ^ 0x80;
                }
            }
            gemm_dot4::gemm(rows, &scratch.cols8, q.kq, q, g.requant(offset), out, n);
        }
        None => {
            let kp = g.weights.kp;
            scratch.cols16.clear();
            scratch.cols16.resize(rows * kp, 0);
            for r in 0..rows {
                for (d, &v) in scratch.cols16[r * kp..r * kp + k].iter_mut().zip(&input[r * k..(r + 1) * k]) {
                    *d = v as i16;
                }
            }
            gemm_i8::gemm(rows, &scratch.cols16, kp, &g.weights, g.requant(&g.offset), out, n);
        }
    }
}

/// Direct-loop int8 FULLY_CONNECTED (TFLite's reference `FullyConnected`/`FullyConnectedPerChannel`).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_reference(
    rows: usize,
    k: usize,
    input_offset: i32,
    input: &[i8],
    weights: &[i8],
    weights_offset: i32,
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
) {
    let n = weights.len().checked_div(k).unwrap_or(0);
    for r in 0..rows {
        for j in 0..n {
            let mut acc = 0i32;
            for kk in 0..k {
                let x = input[r * k + kk] as i32 + input_offset;
                let w = weights[j * k + kk] as i32 + weights_offset;
                acc = acc.wrapping_add(w * x);
            }
            if let Some(b) = bias {
                acc = acc.wrapping_add(b[j]);
            }
            out[r * n + j] = os.apply(j, acc);
        }
    }
}

/// Direct-loop int8 DEPTHWISE_CONV_2D (TFLite's `DepthwiseConvPerChannel`); weights `[kh, kw, oc]`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_reference(
    s: &ConvShape,
    input_offset: i32,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
) {
    let mult = s.out_c / s.in_c;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for ic in 0..s.in_c {
                    for m in 0..mult {
                        let oc = ic * mult + m;
                        let mut acc = 0i32;
                        for ky in 0..s.kh() {
                            for kx in 0..s.kw() {
                                if let (Some(iy), Some(ix)) = (s.win.h.tap(oy, ky), s.win.w.tap(ox, kx)) {
                                    let x = input[((b * s.in_h() + iy) * s.in_w() + ix) * s.in_c + ic] as i32;
                                    let w = weights[(ky * s.kw() + kx) * s.out_c + oc] as i32;
                                    acc = acc.wrapping_add(w * (x + input_offset));
                                }
                            }
                        }
                        if let Some(bias) = bias {
                            acc = acc.wrapping_add(bias[oc]);
                        }
                        out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = os.apply(oc, acc);
                    }
                }
            }
        }
    }
}

/// Prepared int8 DEPTHWISE_CONV_2D: weights `[kh·kw][cp]` widened to i16 with the channels padded
/// to `cp`, a multiple of 8, and the per-channel constant `bias + input_offset · Σ_taps w`.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedDepthwise {
    pub cp: usize,
    pub weights: Vec<i16>,
    pub offset: Vec<i32>,
    pub input_offset: i32,
    pub stage: OutputStage,
    vec: Option<VecStage>,
}

impl PreparedDepthwise {
    /// `weights` is `[kh·kw][out_c]`.
    pub fn new(weights: &[i8], out_c: usize, bias: Option<&[i32]>, input_offset: i32, stage: OutputStage) -> Self {
        let cp = out_c.div_ceil(8) * 8;
        let taps = weights.len().checked_div(out_c).unwrap_or(0);
        let mut w = vec![0i16; taps * cp];
        let mut offset = vec![0i32; cp];
        for t in 0..taps {
            for c in 0..out_c {
                let v = weights[t * out_c + c] as i32;
                w[t * cp + c] = v as i16;
                offset[c] = offset[c].wrapping_add(input_offset.wrapping_mul(v));
            }
        }
        for (c, o) in offset.iter_mut().enumerate().take(out_c) {
            *o = o.wrapping_add(bias.map_or(0, |b| b[c]));
        }
        let vec = VecStage::new(&stage, out_c);
        PreparedDepthwise { cp, weights: w, offset, input_offset, stage, vec }
    }
}

/// Fast int8 DEPTHWISE_CONV_2D over a zero-point-padded copy of the input: per output pixel and
/// block of eight channels, every tap is accumulated in registers, then requantized.
pub fn depthwise(s: &ConvShape, input: &[i8], d: &PreparedDepthwise, out: &mut [i8], scratch: &mut Scratch) {
    let padded = &mut scratch.padded;
    let (out_c, cp) = (s.out_c, d.cp);
    if s.in_c == 0 || out_c == 0 {
        return;
    }
    let zp = (-d.input_offset) as i8;
    let (hp, wp) = pad_nhwc(s, input, zp, out_c / s.in_c, cp, padded);
    let taps = tap_offsets(s, wp, cp);
    let mut acc = [0i32; 8];
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let base = ((b * hp + oy * s.win.h.stride) * wp + ox * s.win.w.stride) * cp;
                let o = &mut out[((b * s.out_h() + oy) * s.out_w() + ox) * out_c..][..out_c];
                for c0 in (0..cp).step_by(8) {
                    let take = (out_c - c0.min(out_c)).min(8);
                    if take == 0 {
                        break;
                    }
                    block8(padded, base + c0, &taps, &d.weights[c0..], cp, &mut acc);
                    requant::row(&acc[..take], &d.offset, &d.stage, d.vec.as_ref(), c0, &mut o[c0..c0 + take]);
                }
            }
        }
    }
}

/// Sums eight channels over the taps: `acc[c] = Σ_t w[t·cp + c] · x[base + taps[t] + c]`.
#[inline(always)]
fn block8(x: &[i8], base: usize, taps: &[usize], w: &[i16], cp: usize, acc: &mut [i32; 8]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd128::block8(x, base, taps, w, cp, acc);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        block8_portable(x, base, taps, w, cp, acc);
    }
}

pub fn block8_portable(x: &[i8], base: usize, taps: &[usize], w: &[i16], cp: usize, acc: &mut [i32; 8]) {
    *acc = [0; 8];
    for (t, &off) in taps.iter().enumerate() {
        let (xs, ws) = (&x[base + off..][..8], &w[t * cp..][..8]);
        for c in 0..8 {
            acc[c] = acc[c].wrapping_add(xs[c] as i32 * ws[c] as i32);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! wasm simd128 twin of the depthwise block: eight channels per tap, int8 inputs widened to
    //! i16 on load, products widened with `i32x4.extmul_*_i16x8`.
    use core::arch::wasm32::*;

    #[inline(always)]
    pub fn block8(x: &[i8], base: usize, taps: &[usize], w: &[i16], cp: usize, acc: &mut [i32; 8]) {
        let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
        for (t, &off) in taps.iter().enumerate() {
            let (xs, ws) = (&x[base + off..][..8], &w[t * cp..][..8]);
            // SAFETY: both slices hold 8 elements: 8 bytes and 16 bytes are read.
            unsafe {
                let xv = i16x8_load_extend_i8x8(xs.as_ptr());
                let wv = v128_load(ws.as_ptr() as *const v128);
                lo = i32x4_add(lo, i32x4_extmul_low_i16x8(xv, wv));
                hi = i32x4_add(hi, i32x4_extmul_high_i16x8(xv, wv));
            }
        }
        // SAFETY: acc holds 8 i32: two 16-byte stores.
        unsafe {
            v128_store(acc.as_mut_ptr() as *mut v128, lo);
            v128_store(acc.as_mut_ptr().add(4) as *mut v128, hi);
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::Padding;
    use crate::kernels::fixedpoint::{quantize_multiplier, Rescale};
    use crate::kernels::geometry::{Window, Window2D};
    use crate::rng::Rng;

    fn shape(
        hw: (usize, usize),
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        dil: usize,
        pad: Padding,
    ) -> ConvShape {
        let h = Window::new(pad, hw.0, k, stride, dil).unwrap();
        let w = Window::new(pad, hw.1, k, stride, dil).unwrap();
        ConvShape { batch: 1, in_c, out_c, win: Window2D { h, w } }
    }

    fn random_i8(rng: &mut Rng, n: usize, lo: i32) -> Vec<i8> {
        (0..n).map(|_| (rng.below((127 - lo + 1) as usize) as i32 + lo) as i8).collect()
    }

    fn stage(rng: &mut Rng, n: usize) -> OutputStage {
        let scales =
            (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.001 + rng.uniform() as f64 * 0.004))).collect();
        OutputStage::new(scales, 3, -128, 127)
    }

    #[test]
    fn conv_fast_equals_reference() {
        let mut rng = Rng::new(11);
        for mut s in [
            shape((6, 6), 3, 5, 3, 1, 1, Padding::Same),
            shape((7, 5), 8, 9, 3, 2, 1, Padding::Same),
            shape((9, 9), 4, 4, 3, 1, 2, Padding::Valid),
            shape((5, 5), 16, 8, 1, 1, 1, Padding::Same),
            shape((6, 4), 5, 12, 1, 2, 1, Padding::Same),
        ] {
            s.batch = 2;
            let input = random_i8(&mut rng, s.input_len(), -128);
            let w = random_i8(&mut rng, s.out_c * s.patch_len(), -127);
            let bias: Vec<i32> = (0..s.out_c).map(|_| rng.below(4000) as i32 - 2000).collect();
            let os = stage(&mut rng, s.out_c);
            let (zp, off) = (-7i8, 7);
            let mut want = vec![0i8; s.output_len()];
            conv2d_reference(&s, off, &input, &w, Some(&bias), &os, &mut want);
            for dot4 in [false, true] {
                let g = PreparedGemm::with_dot4(&w, s.out_c, s.patch_len(), Some(&bias), off, os.clone(), dot4);
                let mut got = vec![0i8; s.output_len()];
                conv2d(&s, zp, &input, &g, &mut got, &mut Scratch::default());
                assert_eq!(got, want, "{s:?} dot4={dot4}");
            }
        }
    }

    #[test]
    fn depthwise_and_fc_fast_equal_reference() {
        let mut rng = Rng::new(12);
        for mut s in [
            shape((6, 6), 4, 4, 3, 1, 1, Padding::Same),
            shape((7, 7), 3, 6, 3, 2, 1, Padding::Same),
            shape((8, 5), 13, 13, 3, 2, 1, Padding::Same),
            shape((9, 9), 24, 24, 3, 1, 2, Padding::Valid),
            shape((6, 7), 16, 16, 5, 1, 1, Padding::Same),
            shape((4, 4), 2, 8, 2, 2, 1, Padding::Valid),
        ] {
            s.batch = 2;
            let input = random_i8(&mut rng, s.input_len(), -128);
            let w = random_i8(&mut rng, s.kh() * s.kw() * s.out_c, -127);
            let os = stage(&mut rng, s.out_c);
            let mut want = vec![0i8; s.output_len()];
            let bias: Vec<i32> = (0..s.out_c).map(|_| rng.below(4000) as i32 - 2000).collect();
            let bias = (s.out_c % 2 == 0).then_some(&bias[..]);
            depthwise_reference(&s, 20, &input, &w, bias, &os, &mut want);
            let d = PreparedDepthwise::new(&w, s.out_c, bias, 20, os.clone());
            let mut got = vec![0i8; s.output_len()];
            depthwise(&s, &input, &d, &mut got, &mut Scratch::default());
            assert_eq!(got, want);
        }
        for &(rows, k, n) in &[(1, 10, 3), (3, 16, 17), (2, 33, 5)] {
            let input = random_i8(&mut rng, rows * k, -128);
            let w = random_i8(&mut rng, n * k, -127);
            let bias: Vec<i32> = (0..n).map(|_| rng.below(1000) as i32).collect();
            let os = OutputStage::new(vec![Rescale::Double(0.003)], -128, -128, 127);
            let mut want = vec![0i8; rows * n];
            fully_connected_reference(rows, k, 128, &input, &w, 0, Some(&bias), &os, &mut want);
            for dot4 in [false, true] {
                let g = PreparedGemm::with_dot4(&w, n, k, Some(&bias), 128, os.clone(), dot4);
                let mut got = vec![0i8; rows * n];
                fully_connected(rows, &input, &g, &mut got, &mut Scratch::default());
                assert_eq!(got, want, "rows={rows} k={k} n={n} dot4={dot4}");
            }
        }
    }
}
