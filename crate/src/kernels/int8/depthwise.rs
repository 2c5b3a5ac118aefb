//! Int8 DEPTHWISE_CONV_2D, as TFLite's reference integer kernel computes it:
//! `acc = Σ w·(x + input_offset) + bias` over the taps inside the image, then
//! `clamp(out_zp + M_c · acc)`. [`depthwise_reference`] is that loop written out; the fast kernels
//! reorganize the sums (a copy of the input padded with its zero point, so padded taps add
//! nothing once `input_offset · Σ w` is folded into a per-channel constant) and must give
//! identical bytes.
//!
//! Two fast kernels: [`k3`] for 3×3 filters with strides 1 or 2 and multiplier 1 (MobileNet's
//! layers), and the generic one for every other shape.

use super::super::conv::{pad_nhwc, tap_offsets, ConvShape};
use super::super::fixedpoint::OutputStage;
use super::super::gemm_dot4::{self, DotKind};
use super::super::requant::{self, VecStage};

pub mod f64_stage;
pub mod k3;

/// Scratch buffers the depthwise kernels reuse from call to call.
#[derive(Default)]
pub struct Scratch {
    padded: Vec<i8>,
    rows: Vec<i16>,
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

/// Prepared int8 DEPTHWISE_CONV_2D: weights interleaved by groups of taps (pairs of taps as i16
/// for `i32x4.dot_i16x8_s`, or quads of bytes for the u8 relaxed dot where it is exact), channels
/// padded to `cp`, a multiple of 8, missing taps with weight 0; and the per-channel constant
/// `bias + input_offset · Σ_taps w` (less `128 · Σ_taps w` for the u8 inputs `x + 128` of quads).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedDepthwise {
    pub cp: usize,
    pub taps: usize,
    pub offset: Vec<i32>,
    pub input_offset: i32,
    pub stage: OutputStage,
    vec: Option<VecStage>,
    layout: DwLayout,
    /// The 3×3 kernel's packing, when [`PreparedDepthwise::for_shape`] made one.
    k3: Option<k3::Packed>,
}

#[derive(Clone, Debug, PartialEq)]
enum DwLayout {
    /// `[taps/2][cp][2]` i16.
    Pairs(Vec<i16>),
    /// `[taps/4][cp][4]` i8, for u8 inputs.
    Quads(Vec<i8>),
}

impl PreparedDepthwise {
    /// `weights` is `[kh·kw][out_c]`.
    pub fn new(weights: &[i8], out_c: usize, bias: Option<&[i32]>, input_offset: i32, stage: OutputStage) -> Self {
        Self::with_kind(weights, out_c, bias, input_offset, stage, gemm_dot4::kind())
    }

    /// [`PreparedDepthwise::new`] for the given relaxed dot product (quads only for u8).
    pub fn with_kind(
        weights: &[i8],
        out_c: usize,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
        kind: DotKind,
    ) -> Self {
        let cp = out_c.div_ceil(8) * 8;
        let taps = weights.len().checked_div(out_c).unwrap_or(0);
        let group = if kind == DotKind::U8 { 4 } else { 2 };
        let slots = taps.div_ceil(group) * group;
        // Tap t of channel c goes to group t / group, lane t % group; plain loops (this runs once
        // per layer, and iterator chains here cost kilobytes of wasm).
        let mut flat = vec![0i8; slots * cp];
        let mut offset = vec![0i32; cp];
        for c in 0..out_c {
            let mut sum = 0i32;
            for t in 0..taps {
                let v = weights[t * out_c + c];
                flat[((t / group) * cp + c) * group + t % group] = v;
                sum = sum.wrapping_add(v as i32);
            }
            let shift = if group == 4 { 128i32.wrapping_mul(sum) } else { 0 };
            offset[c] = bias.map_or(0, |b| b[c]).wrapping_add(input_offset.wrapping_mul(sum)).wrapping_sub(shift);
        }
        let layout =
            if group == 4 { DwLayout::Quads(flat) } else { DwLayout::Pairs(flat.iter().map(|&v| v as i16).collect()) };
        let vec = VecStage::new(&stage, out_c);
        PreparedDepthwise { cp, taps, offset, input_offset, stage, vec, layout, k3: None }
    }

    /// [`PreparedDepthwise::new`] for shape `s`, with the 3×3 kernel's packing where it applies.
    pub fn for_shape(
        weights: &[i8],
        s: &ConvShape,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
    ) -> Self {
        Self::new(weights, s.out_c, bias, input_offset, stage).with_k3(weights, s, bias)
    }

    /// Adds the 3×3 kernel's packing when `s` fits it.
    pub fn with_k3(mut self, weights: &[i8], s: &ConvShape, bias: Option<&[i32]>) -> Self {
        if k3::fits(s) {
            let quads = matches!(self.layout, DwLayout::Quads(_));
            self.k3 = k3::Packed::pack(weights, s.out_c, bias, self.input_offset, quads, Some(&self.stage));
        }
        self
    }

    /// Whether the 3×3 kernel will run shape `s`: only on rows of at least [`k3::MIN_WIDTH`]
    /// output pixels. (Measured in Node A/Bs on VWW's layers with 3×3 outputs: the earlier 3×3
    /// kernel took 1.16–1.27× the generic kernel's time there, and this one, without a whole
    /// group of pixels per row, 1.06–1.13× the earlier one's; on the wider layers it takes
    /// 0.84–0.96× of it.)
    pub fn uses_k3(&self, s: &ConvShape) -> bool {
        self.k3.as_ref().is_some_and(|p| p.c == s.out_c && k3::fits(s) && s.out_w() >= k3::MIN_WIDTH)
            && (cfg!(not(all(target_arch = "wasm32", target_feature = "simd128")))
                || self.vec.as_ref().is_some_and(|v| v.is_fixed()))
    }
}

/// Fast int8 DEPTHWISE_CONV_2D: the 3×3 kernel where it applies (in the SIMD builds, with a
/// fixed-point output stage), the generic kernel otherwise.
pub fn depthwise(s: &ConvShape, input: &[i8], d: &PreparedDepthwise, out: &mut [i8], scratch: &mut Scratch) {
    if s.in_c == 0 || s.out_c == 0 || s.batch == 0 || s.out_h() == 0 || s.out_w() == 0 {
        return;
    }
    if let Some(p) = d.k3.as_ref().filter(|_| d.uses_k3(s)) {
        let zp = (-d.input_offset) as i8;
        let bufs = (&mut scratch.padded, &mut scratch.rows);
        if k3::run(s, zp, input, p, &d.stage, d.vec.as_ref(), out, bufs) {
            return;
        }
    }
    generic(s, input, d, out, &mut scratch.padded);
}

/// The generic kernel, any filter, stride, dilation and multiplier, over a zero-point-padded copy
/// of the input (as `x + 128` bytes for quads): per output pixel and block of eight channels,
/// every tap is accumulated in registers, then requantized.
fn generic(s: &ConvShape, input: &[i8], d: &PreparedDepthwise, out: &mut [i8], padded: &mut Vec<i8>) {
    let (out_c, cp) = (s.out_c, d.cp);
    if s.in_c == 0 || out_c == 0 || s.batch == 0 || s.out_h() == 0 || s.out_w() == 0 {
        return;
    }
    let zp = (-d.input_offset) as i8;
    let (hp, wp) = pad_nhwc(s, input, zp, out_c / s.in_c, cp, padded);
    let quads = matches!(d.layout, DwLayout::Quads(_));
    if quads {
        padded.iter_mut().for_each(|v| *v ^= i8::MIN);
    }
    let mut taps = tap_offsets(s, wp, cp);
    taps.resize(taps.len().div_ceil(if quads { 4 } else { 2 }) * if quads { 4 } else { 2 }, 0);
    let x = &padded[..];
    let base_of = |b: usize, oy: usize, ox: usize| ((b * hp + oy * s.win.h.stride) * wp + ox * s.win.w.stride) * cp;
    let last = base_of(s.batch - 1, s.out_h().saturating_sub(1), s.out_w().saturating_sub(1));
    // Every block reads 8 bytes at base + tap + c0 for c0 < cp: the last pixel bounds them all.
    assert!(last + taps.iter().max().unwrap_or(&0) + cp <= x.len(), "padded input too short");
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if let Some(vs) = d.vec.as_ref().filter(|v| v.is_fixed()) {
        let dims = (s.batch, s.out_h(), s.out_w(), out_c);
        match &d.layout {
            DwLayout::Pairs(w) => {
                return dw_simd::blocks(dims, base_of, &d.offset, vs, out, |c0, base| {
                    simd128::pairs(x, base + c0, &taps, &w[c0 * 2..], cp)
                });
            }
            #[cfg(target_feature = "relaxed-simd")]
            DwLayout::Quads(w) if gemm_dot4::available() => {
                return dw_simd::blocks(dims, base_of, &d.offset, vs, out, |c0, base| {
                    relaxed::quads(x, base + c0, &taps, &w[c0 * 4..], cp)
                });
            }
            _ => {}
        }
    }
    let mut acc = [0i32; 8];
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let base = base_of(b, oy, ox);
                let o = &mut out[((b * s.out_h() + oy) * s.out_w() + ox) * out_c..][..out_c];
                for c0 in (0..out_c).step_by(8) {
                    let take = (out_c - c0).min(8);
                    match &d.layout {
                        DwLayout::Pairs(w) => dw_pairs(x, base + c0, &taps, &w[c0 * 2..], cp, &mut acc),
                        DwLayout::Quads(w) => dw_quads(x, base + c0, &taps, &w[c0 * 4..], cp, &mut acc),
                    }
                    requant::row(&acc[..take], &d.offset, &d.stage, d.vec.as_ref(), c0, &mut o[c0..c0 + take]);
                }
            }
        }
    }
}

/// Eight channels summed over tap pairs: `acc[c] = Σ_t w[t/2][c][t%2] · x[base + taps[t] + c]`
/// (`taps` has even length; `x` holds every byte addressed, which the caller checks once).
#[inline(always)]
fn dw_pairs(x: &[i8], base: usize, taps: &[usize], w: &[i16], cp: usize, acc: &mut [i32; 8]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd128::dw_pairs(x, base, taps, w, cp, acc);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        dw_portable(x, base, taps, acc, |g, c, j| w[(g * cp + c) * 2 + j] as i32, 2, |v| v as i32);
    }
}

/// Eight channels summed over tap quads, inputs as `x + 128` bytes (stored in `x` as i8).
#[inline(always)]
fn dw_quads(x: &[i8], base: usize, taps: &[usize], w: &[i8], cp: usize, acc: &mut [i32; 8]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    if gemm_dot4::available() {
        relaxed::dw_quads(x, base, taps, w, cp, acc);
        return;
    }
    dw_portable(x, base, taps, acc, |g, c, j| w[(g * cp + c) * 4 + j] as i32, 4, |v| v as u8 as i32);
}

/// The arithmetic of both layouts in plain loops: `weight(group, channel, j)` for tap
/// `group·per + j`, inputs read through `value`.
pub fn dw_portable(
    x: &[i8],
    base: usize,
    taps: &[usize],
    acc: &mut [i32; 8],
    weight: impl Fn(usize, usize, usize) -> i32,
    per: usize,
    value: impl Fn(i8) -> i32,
) {
    *acc = [0; 8];
    for (t, &off) in taps.iter().enumerate() {
        for (c, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(weight(t / per, c, t % per) * value(x[base + off + c]));
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! wasm simd128 twin of the depthwise pairs: two taps' bytes interleaved per channel,
    //! widened to i16 and multiplied with `i32x4.dot_i16x8_s` (sixteen multiply-adds per pair of
    //! instructions).
    use core::arch::wasm32::*;

    #[inline(always)]
    pub fn dw_pairs(x: &[i8], base: usize, taps: &[usize], w: &[i16], cp: usize, acc: &mut [i32; 8]) {
        let (lo, hi) = pairs(x, base, taps, w, cp);
        // SAFETY: acc holds 8 i32: two 16-byte stores.
        unsafe {
            v128_store(acc.as_mut_ptr() as *mut v128, lo);
            v128_store(acc.as_mut_ptr().add(4) as *mut v128, hi);
        }
    }

    /// [`dw_pairs`]' sums as two vectors of four channels.
    #[inline(always)]
    pub fn pairs(x: &[i8], base: usize, taps: &[usize], w: &[i16], cp: usize) -> (v128, v128) {
        let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
        let (x, w) = (x.as_ptr(), &w[..(taps.len() / 2 - 1) * cp * 2 + 16]);
        for (g, pair) in taps.chunks_exact(2).enumerate() {
            // SAFETY: the caller checked that base + every tap offset + 8 ≤ x.len(); `w` was
            // sliced to hold the 16 i16 read for every group.
            unsafe {
                let a = v128_load64_zero(x.add(base + pair[0]) as *const u64);
                let b = v128_load64_zero(x.add(base + pair[1]) as *const u64);
                let ab = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
                let wp = w.as_ptr().add(g * cp * 2);
                lo = i32x4_add(lo, i32x4_dot_i16x8(i16x8_extend_low_i8x16(ab), v128_load(wp as *const v128)));
                hi = i32x4_add(hi, i32x4_dot_i16x8(i16x8_extend_high_i8x16(ab), v128_load(wp.add(8) as *const v128)));
            }
        }
        (lo, hi)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod dw_simd {
    //! The depthwise loop of the SIMD builds: blocks of eight channels outer, output pixels inner,
    //! so a block's offsets and requantization constants are loaded once per layer, and each
    //! pixel's two vectors of sums go straight to the vector requantization.
    use super::super::super::requant::{
        simd128::{requant8, store8},
        VecStage,
    };
    use core::arch::wasm32::*;

    /// `out[((b·oh + oy)·ow + ox)·out_c + c0 + c] = requant(dot(c0, base(b, oy, ox))[c] + offset[c0 + c])`
    /// for every block `c0` of eight channels (`offset` padded to a multiple of eight).
    #[inline(always)]
    pub fn blocks(
        (batch, oh, ow, out_c): (usize, usize, usize, usize),
        base: impl Fn(usize, usize, usize) -> usize,
        offset: &[i32],
        vs: &VecStage,
        out: &mut [i8],
        dot: impl Fn(usize, usize) -> (v128, v128),
    ) {
        assert!(out.len() >= batch * oh * ow * out_c && offset.len() >= out_c.div_ceil(8) * 8);
        for c0 in (0..out_c).step_by(8) {
            let take = (out_c - c0).min(8);
            // SAFETY: offset holds at least c0 + 8 values (asserted above).
            let (o0, o1) = unsafe {
                let at = offset.as_ptr().add(c0);
                (v128_load(at as *const v128), v128_load(at.add(4) as *const v128))
            };
            let mut at = c0;
            for b in 0..batch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (lo, hi) = dot(c0, base(b, oy, ox));
                        let v = requant8(i32x4_add(lo, o0), i32x4_add(hi, o1), vs, c0);
                        // SAFETY: a whole block: at + 8 ≤ batch·oh·ow·out_c ≤ out.len() (asserted above).
                        unsafe { store8(v, out, at, take) };
                        at += out_c;
                    }
                }
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed {
    //! The depthwise quads on the u8 × i8 relaxed dot product (where it is exact): four taps'
    //! bytes gathered per channel with two levels of shuffles, 32 multiply-adds per two dots.
    use core::arch::wasm32::*;

    #[inline(always)]
    pub fn dw_quads(x: &[i8], base: usize, taps: &[usize], w: &[i8], cp: usize, acc: &mut [i32; 8]) {
        let (lo, hi) = quads(x, base, taps, w, cp);
        // SAFETY: acc holds 8 i32: two 16-byte stores.
        unsafe {
            v128_store(acc.as_mut_ptr() as *mut v128, lo);
            v128_store(acc.as_mut_ptr().add(4) as *mut v128, hi);
        }
    }

    /// [`dw_quads`]' sums as two vectors of four channels.
    #[inline(always)]
    pub fn quads(x: &[i8], base: usize, taps: &[usize], w: &[i8], cp: usize) -> (v128, v128) {
        let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
        let (x, w) = (x.as_ptr(), &w[..(taps.len() / 4 - 1) * cp * 4 + 32]);
        for (g, quad) in taps.chunks_exact(4).enumerate() {
            // SAFETY: as in the pairs kernel: every tap's 8 bytes are in `x` (checked by the
            // caller), and `w` holds the 32 bytes read for every group.
            unsafe {
                let ld = |t: usize| v128_load64_zero(x.add(base + quad[t]) as *const u64);
                let ab = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(ld(0), ld(1));
                let cd = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(ld(2), ld(3));
                let first = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab, cd);
                let second = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab, cd);
                let wp = w.as_ptr().add(g * cp * 4);
                lo = i32x4_relaxed_dot_i8x16_i7x16_add(v128_load(wp as *const v128), first, lo);
                hi = i32x4_relaxed_dot_i8x16_i7x16_add(v128_load(wp.add(16) as *const v128), second, hi);
            }
        }
        (lo, hi)
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
        c: usize,
        out_c: usize,
        k: usize,
        stride: (usize, usize),
        dil: usize,
        pad: Padding,
    ) -> ConvShape {
        let h = Window::new(pad, hw.0, k, stride.0, dil).unwrap();
        let w = Window::new(pad, hw.1, k, stride.1, dil).unwrap();
        ConvShape { batch: 1, in_c: c, out_c, win: Window2D { h, w } }
    }

    fn random_i8(rng: &mut Rng, n: usize, lo: i32) -> Vec<i8> {
        (0..n).map(|_| (rng.below((127 - lo + 1) as usize) as i32 + lo) as i8).collect()
    }

    /// Output stages of five kinds: small multipliers (the vector window layout), multipliers
    /// above one (left shifts), LiteRT's double rescaling, a narrow clamp (a fused RELU6-like
    /// activation), and a ReLU over the whole int8 range (zero point −128, as MobileNet's): the
    /// last two are the ones the f64 stage takes.
    fn stages(rng: &mut Rng, n: usize) -> Vec<OutputStage> {
        let mut fixed = |lo: f64, span: f64| -> Vec<Rescale> {
            (0..n).map(|_| Rescale::Fixed(quantize_multiplier(lo + rng.uniform() as f64 * span))).collect()
        };
        let (small, big, narrow, relu) =
            (fixed(0.001, 0.004), fixed(0.5, 3.0), fixed(0.002, 0.02), fixed(0.0005, 0.004));
        let doubles = (0..n).map(|_| Rescale::Double(0.001 + rng.uniform() as f64 * 0.004)).collect();
        vec![
            OutputStage::new(small, 3, -128, 127),
            OutputStage::new(big, -5, -128, 127),
            OutputStage::new(doubles, 2, -100, 120),
            OutputStage::new(narrow, -20, -20, 60),
            OutputStage::new(relu, -128, -128, 127),
        ]
    }

    /// Runs the fast kernel for every dot kind against the reference; returns how many of the
    /// runs went through the 3×3 kernel, and how many of those had blocks on the f64 stage.
    fn check(rng: &mut Rng, s: &ConvShape, zp: i32) -> (usize, usize) {
        let input = random_i8(rng, s.input_len(), -128);
        let w = random_i8(rng, s.kh() * s.kw() * s.out_c, -127);
        let bias: Vec<i32> = (0..s.out_c).map(|_| rng.below(40000) as i32 - 20000).collect();
        let bias = (rng.below(4) != 0).then_some(&bias[..]);
        let (mut k3_runs, mut f64_runs) = (0, 0);
        for os in stages(rng, s.out_c) {
            let mut want = vec![0i8; s.output_len()];
            depthwise_reference(s, -zp, &input, &w, bias, &os, &mut want);
            for kind in [DotKind::None, DotKind::U8] {
                let d = PreparedDepthwise::with_kind(&w, s.out_c, bias, -zp, os.clone(), kind).with_k3(&w, s, bias);
                assert_eq!(d.k3.is_some(), k3::fits(s), "{s:?}");
                k3_runs += d.uses_k3(s) as usize;
                f64_runs += (d.uses_k3(s) && d.k3.as_ref().is_some_and(|p| p.f64_blocks() > 0)) as usize;
                let mut got = vec![0i8; s.output_len()];
                depthwise(s, &input, &d, &mut got, &mut Scratch::default());
                assert_eq!(got, want, "{s:?} {kind:?} {os:?}");
            }
        }
        (k3_runs, f64_runs)
    }

    #[test]
    fn generic_equals_reference() {
        let mut rng = Rng::new(12);
        for (hw, c, out_c, k, stride, dil, pad) in [
            ((7, 7), 3, 6, 3, (2, 2), 1, Padding::Same),
            ((9, 9), 24, 24, 3, (1, 1), 2, Padding::Valid),
            ((6, 7), 16, 16, 5, (1, 1), 1, Padding::Same),
            ((4, 4), 2, 8, 2, (2, 2), 1, Padding::Valid),
            ((8, 8), 8, 8, 3, (3, 3), 1, Padding::Same),
        ] {
            let mut s = shape(hw, c, out_c, k, stride, dil, pad);
            s.batch = 2;
            assert!(!k3::fits(&s));
            assert_eq!(check(&mut rng, &s, 20), (0, 0));
        }
    }

    /// The 3×3 kernel (on rows wide enough for it) over every stride pair, both paddings, tiny
    /// and non-square images, channel counts around the block of eight, batches of one and two,
    /// every stage kind, zero points at both ends.
    #[test]
    fn k3_equals_reference() {
        let mut rng = Rng::new(33);
        let (mut cases, mut k3_runs, mut f64_runs, mut wide) = (0, 0, 0, 0);
        // Widths around the SIMD kernel's groups of four pixels (whole groups and remainders).
        let sizes = [(1, 1), (1, 3), (2, 2), (3, 3), (2, 5), (5, 4), (7, 9), (10, 6), (4, 17)];
        for (i, &hw) in sizes.iter().enumerate() {
            for c in [1, 3, 8, 13, 16, 24] {
                for stride in [(1, 1), (2, 2), (1, 2), (2, 1)] {
                    for pad in [Padding::Same, Padding::Valid] {
                        if pad == Padding::Valid && (hw.0 < 3 || hw.1 < 3) {
                            continue;
                        }
                        let mut s = shape(hw, c, c, 3, stride, 1, pad);
                        s.batch = 1 + (i + c) % 2;
                        // Zero points at both extremes, and random ones.
                        let zp = [-128, 127, rng.below(256) as i32 - 128][cases % 3];
                        let (k3, f64) = check(&mut rng, &s, zp);
                        (k3_runs, f64_runs) = (k3_runs + k3, f64_runs + f64);
                        cases += 1;
                        wide += (s.out_w() >= k3::MIN_WIDTH) as usize;
                    }
                }
            }
        }
        assert_eq!(cases, 6 * 4 * (9 + 5));
        // Every stage but the double one runs the 3×3 kernel in the SIMD builds; all do natively.
        let per_case = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) { 4 * 2 } else { 5 * 2 };
        assert!(wide > cases / 3);
        assert_eq!(k3_runs, wide * per_case);
        // The two ReLU-type stages take the f64 stage in nearly every case (both dot kinds).
        assert!(f64_runs * 10 >= wide * 2 * 2 * 9, "f64 stage in {f64_runs} of {wide} wide cases");
    }

    /// The plain-loop twin of the 3×3 kernel directly (the SIMD builds run the vector kernel in
    /// [`depthwise`]), on shapes with channel remainders and both strides.
    #[test]
    fn k3_portable_equals_reference() {
        let mut rng = Rng::new(34);
        for (hw, c, stride, pad) in [
            ((6, 5), 13, (1, 1), Padding::Same),
            ((7, 8), 9, (2, 2), Padding::Same),
            ((5, 5), 16, (1, 2), Padding::Valid),
        ] {
            let s = shape(hw, c, c, 3, stride, 1, pad);
            let input = random_i8(&mut rng, s.input_len(), -128);
            let w = random_i8(&mut rng, 9 * c, -128);
            let zp = rng.below(256) as i32 - 128;
            for os in stages(&mut rng, c) {
                let p = k3::Packed::pack(&w, c, None, -zp, false, Some(&os)).unwrap();
                let mut want = vec![0i8; s.output_len()];
                depthwise_reference(&s, -zp, &input, &w, None, &os, &mut want);
                let mut got = vec![0i8; s.output_len()];
                let (mut padded, mut rows) = (Vec::new(), Vec::new());
                assert!(k3::run_portable(&s, zp as i8, &input, &p, &os, &mut got, (&mut padded, &mut rows)));
                assert_eq!(got, want, "{s:?} {os:?}");
            }
        }
    }

    #[test]
    fn k3_rejects_short_weights() {
        for quads in [false, true] {
            assert!(k3::Packed::pack(&[1; 17], 2, None, 0, quads, None).is_none());
            assert!(k3::Packed::pack(&[1; 18], 2, Some(&[0]), 0, quads, None).is_none());
            assert!(k3::Packed::pack(&[1; 18], 2, None, 0, quads, None).is_some());
        }
    }
}
