//! Int8 CONV_2D and FULLY_CONNECTED, as TFLite's reference integer kernels
//! compute them: `acc = Σ w·(x + input_offset) + bias` over the taps inside the image, then
//! `clamp(out_zp + M_c · acc)`. The `*_reference` functions are those loops written out; the fast
//! versions reorganize the sums (im2col padded with the input zero point, the offset folded into a
//! per-channel constant) and must give identical bytes.

use super::super::conv::{pad_nhwc, pixels_from, ConvShape};
pub use super::super::fixedpoint::OutputStage;
use super::super::gemm_dot4::{self, DotKind, PackedQuad};
use super::super::gemm_i8::{self, PackedI8, Requant};
use super::super::gemm_sign::{self, PackedSigns};
use super::super::igemm_i8;
use super::super::requant::{reachable, VecStage};
use super::direct::{self, DirectScratch, Group, PackedDirect};
use super::gemv::{self, PreparedGemv};
use super::pointwise_conv;

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

/// Prepared int8 FULLY_CONNECTED (or im2col CONV_2D) weights, packed once for the one GEMM kernel
/// this engine runs ([`Packing`]), with the per-channel constant `bias + input_offset · Σ w`
/// folded in (and, for the u8 relaxed dot's `x + 128` inputs, `-128 · Σ w`; for the sign trick,
/// `-Σ_{w<0} w`).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedGemm {
    n: usize,
    k: usize,
    offset: Vec<i32>,
    stage: OutputStage,
    vec: Option<VecStage>,
    packing: Packing,
}

/// The packing of the GEMM kernel in use.
#[derive(Clone, Debug, PartialEq)]
enum Packing {
    /// i16 pairs for `i32x4.dot_i16x8_s` ([`gemm_i8`]).
    Pairs(PackedI8),
    /// "c4" for the u8 × i8 relaxed dot where it is exact (VNNI, [`gemm_dot4`]).
    Quads(PackedQuad),
    /// `|w|` beside the signs moved onto the inputs, for the relaxed dot as specified, exact on
    /// every engine ([`gemm_sign`]).
    Signs(PackedSigns),
}

/// `bias + input_offset · Σ_k w[j][k]` per output `j` of weights `[n][k]`, less `128 · Σ_k w[j][k]`
/// for kernels that read inputs as `x + 128` (`u8_inputs`).
pub(super) fn channel_offsets(
    weights: &[i8],
    n: usize,
    k: usize,
    bias: Option<&[i32]>,
    input_offset: i32,
    u8_inputs: bool,
) -> Vec<i32> {
    let fold = input_offset.wrapping_sub(if u8_inputs { 128 } else { 0 });
    (0..n)
        .map(|j| {
            let sum = weights[j * k..(j + 1) * k].iter().fold(0i32, |a, &v| a.wrapping_add(v as i32));
            bias.map_or(0, |b| b[j]).wrapping_add(fold.wrapping_mul(sum))
        })
        .collect()
}

/// The int8 weights `[n][k]` of a FULLY_CONNECTED (or im2col CONV_2D) layer, with the bias and
/// input offset its per-channel constants fold in: what every prepared form starts from.
#[derive(Clone, Copy, Debug)]
pub struct Dense<'a> {
    pub weights: &'a [i8],
    pub n: usize,
    pub k: usize,
    pub bias: Option<&'a [i32]>,
    pub input_offset: i32,
}

impl PreparedGemm {
    /// `d` packed for the relaxed dot `kind` ([`gemm_dot4::kind`] for this engine; tests force
    /// each one).
    pub fn new(d: Dense, stage: OutputStage, kind: DotKind) -> Self {
        let Dense { weights, n, k, bias, input_offset } = d;
        assert!(weights.len() >= n * k, "weights shorter than n·k");
        let packing = match kind {
            DotKind::U8 => Packing::Quads(PackedQuad::pack(weights, n, k)),
            DotKind::Sign => PackedSigns::pack(weights, n, k)
                .map_or_else(|| Packing::Pairs(PackedI8::pack(weights, n, k)), Packing::Signs),
            DotKind::None => Packing::Pairs(PackedI8::pack(weights, n, k)),
        };
        let u8_inputs = matches!(packing, Packing::Quads(_));
        let mut offset = channel_offsets(weights, n, k, bias, input_offset, u8_inputs);
        if let Packing::Signs(s) = &packing {
            offset.iter_mut().zip(&s.correction).for_each(|(o, c)| *o = o.wrapping_add(*c));
        }
        let vec = VecStage::with_ranges(&stage, n, &reachable(weights, n, k, bias, input_offset));
        PreparedGemm { n, k, offset, stage, vec, packing }
    }

    fn requant(&self) -> Requant<'_> {
        Requant::new(&self.offset, &self.stage, self.vec.as_ref())
    }
}

/// Whether the direct convolution beats im2col + GEMM on shape `s` with the relaxed dot `kind`,
/// by patch length `k = kh·kw·in_c` (what im2col copies per pixel and the kernels sum over).
///
/// Measured per layer in one Chromium page (Xeon 6/207, both builds interleaved; direct/GEMM
/// time; a loaded machine, where layers of the same shape scatter by ±30%). With the u8 relaxed
/// dot (VNNI) the direct kernel wins on short patches — VWW's 3×3×3 stem 0.56, its pointwise
/// 8→16, 16→32, 32→32, 32→64 0.57, 0.68, 0.79, 0.67, KWS's 10×4×1 stem 0.29, ResNet-8's 3×3×16
/// 0.7–0.9 — and loses from 64 input channels on: VWW's 64→64 and 128→256 pointwise 1.4,
/// ResNet-8's 3×3×32 and 3×3×64 1.3 and 1.6 (its stride-2 3×3×32 0.84), KWS's 64→64 pointwise
/// even. With i16 pairs (no VNNI, the simd128 build) the direct kernel then re-widened its inputs
/// for every block of eight output channels where im2col widens them once, and it won only up to
/// k = 32: VWW's stem 0.36, pointwise 8→16 and 16→32 0.51 and 0.75; KWS's stem 1.5, ResNet-8's
/// 3×3×16 about even, KWS's 64→64 pointwise 1.5. (It now widens the padded input once per call,
/// which took VWW's stem from 0.0425 to 0.031 ms; the k = 32 bound was not measured again.) The
/// sign trick has no direct kernel.
///
/// With i16 pairs a 1×1 stride-1 convolution never takes the direct kernel: it goes to
/// [`pointwise_conv`] (the input widened once, no shuffles), which in Node (its V8 lowers the
/// relaxed build to i16 pairs; loaded 2-core Xeon, both builds interleaved in one process, minimum
/// of 16 profiles per layer) ties the direct kernel on VWW's 8→16, 16→32 and 32→32 (0.91–1.06,
/// within the noise; requantization is most of their work) and runs VWW's 64→64 … 256→256 and
/// KWS's 64→64 in 0.85–0.89 of igemm's time.
pub fn direct_pays(s: &ConvShape, kind: DotKind) -> bool {
    let (k, taps) = (s.patch_len(), s.kh() * s.kw());
    match kind {
        DotKind::U8 => k <= 32 || (taps > 1 && k <= 160),
        DotKind::None => k <= 32 && !pointwise_conv::applies(s),
        DotKind::Sign => false,
    }
}

/// Prepared int8 CONV_2D: for the direct convolution or for im2col + GEMM, whichever
/// [`direct_pays`] picks for the shape; only that kernel's packing is kept.
#[derive(Clone, Debug, PartialEq)]
pub enum PreparedConv {
    Gemm(PreparedGemm),
    Direct { weights: PackedDirect, offset: Vec<i32>, stage: OutputStage, vec: Option<VecStage> },
}

impl PreparedConv {
    /// Weights `[out_c][kh][kw][in_c]` for shape `s`, packed for the kernel this build and engine
    /// run fastest on that shape.
    pub fn new(weights: &[i8], s: &ConvShape, bias: Option<&[i32]>, input_offset: i32, stage: OutputStage) -> Self {
        let kind = gemm_dot4::kind();
        let direct = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) && direct_pays(s, kind) {
            Self::direct(weights, s, bias, input_offset, &stage, kind)
        } else {
            None
        };
        direct.unwrap_or_else(|| Self::gemm(weights, s, bias, input_offset, stage, kind))
    }

    /// The im2col + GEMM form for the relaxed dot `kind`.
    pub fn gemm(
        weights: &[i8],
        s: &ConvShape,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
        kind: DotKind,
    ) -> Self {
        let d = Dense { weights, n: s.out_c, k: s.patch_len(), bias, input_offset };
        PreparedConv::Gemm(PreparedGemm::new(d, stage, kind))
    }

    /// The direct form: quads where the u8 relaxed dot is exact, i16 pairs where no relaxed dot
    /// is used; `None` for the sign trick (which keeps im2col).
    pub fn direct(
        weights: &[i8],
        s: &ConvShape,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: &OutputStage,
        kind: DotKind,
    ) -> Option<Self> {
        let group = match kind {
            DotKind::U8 => Group::Quads,
            DotKind::None => Group::Pairs,
            DotKind::Sign => return None,
        };
        let (n, k) = (s.out_c, s.patch_len());
        assert!(weights.len() >= n * k, "weights shorter than out_c·patch");
        let offset = channel_offsets(weights, n, k, bias, input_offset, group == Group::Quads);
        let vec = VecStage::with_ranges(stage, n, &reachable(weights, n, k, bias, input_offset));
        let weights = PackedDirect::pack(weights, s, group);
        Some(PreparedConv::Direct { weights, offset, stage: stage.clone(), vec })
    }
}

/// Scratch buffers the int8 convolutions reuse from call to call.
#[derive(Default)]
pub struct Scratch {
    cols16: Vec<i16>,
    cols8: Vec<u8>,
    cols_i8: Vec<i8>,
    padded: Vec<i8>,
    direct: DirectScratch,
    pairs: igemm_i8::Scratch,
}

/// Output pixels per im2col block.
const BLOCK: usize = 64;

/// Fills `cols` (rows of stride `ld`) with the patches of output pixels `p0..p0 + n`: straight
/// from the input for a 1×1 stride-1 convolution (XOR-ed with `flip`), otherwise from the padded
/// input (already flipped), a filter row's taps at a time where they are contiguous. Runs of up to
/// 16 bytes are moved 16 at a time (see [`copy_run`]): `cols` and `padded` need [`SLACK`] bytes
/// past their last row.
#[allow(clippy::too_many_arguments)]
fn im2col(
    s: &ConvShape,
    input: &[i8],
    padded: &[i8],
    (hp, wp): (usize, usize),
    pointwise: bool,
    (p0, n): (usize, usize),
    cols: &mut [i8],
    ld: usize,
    flip: i8,
) {
    if pointwise {
        for (r, p) in (p0..p0 + n).enumerate() {
            copy_run(cols, r * ld, input, p * s.in_c, s.in_c, flip);
        }
        return;
    }
    let run = if s.win.w.dilation == 1 { s.kw() * s.in_c } else { s.in_c };
    let runs = s.kw() * s.in_c / run.max(1);
    for (r, (b, oy, ox)) in pixels_from(s, p0).take(n).enumerate() {
        let mut at = r * ld;
        for ky in 0..s.kh() {
            let y = b * hp + oy * s.win.h.stride + ky * s.win.h.dilation;
            for j in 0..runs {
                copy_run(cols, at, padded, (y * wp + ox * s.win.w.stride + j * s.win.w.dilation) * s.in_c, run, 0);
                at += run;
            }
        }
    }
}

/// Bytes that may be written past a row, or read past the padded input, by [`copy_run`].
const SLACK: usize = 16;

/// `dst[at..at + run] = src[from..from + run] ^ flip`. Short runs move as one 16-byte vector,
/// which also writes up to [`SLACK`] bytes past the run: callers copy a row's runs in order (each
/// overwrites the previous one's spill), and bytes past `k` meet zero weights in every packing.
#[inline(always)]
fn copy_run(dst: &mut [i8], at: usize, src: &[i8], from: usize, run: usize, flip: i8) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if run <= 16 && at + 16 <= dst.len() && from + 16 <= src.len() {
        use core::arch::wasm32::{i8x16_splat, v128, v128_load, v128_store, v128_xor};
        // SAFETY: both 16-byte ranges were just checked to lie inside the slices.
        unsafe {
            let v = v128_xor(v128_load(src.as_ptr().add(from) as *const v128), i8x16_splat(flip));
            v128_store(dst.as_mut_ptr().add(at) as *mut v128, v);
        }
        return;
    }
    dst[at..at + run].iter_mut().zip(&src[from..from + run]).for_each(|(d, &v)| *d = v ^ flip);
}

/// Views i8 values as the u8 bytes `x + 128` they were flipped to (same bits).
fn as_u8(v: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid for both.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len()) }
}

/// Fast int8 CONV_2D with the kernel `p` was prepared for.
pub fn conv2d(s: &ConvShape, input_zp: i8, input: &[i8], p: &PreparedConv, out: &mut [i8], scratch: &mut Scratch) {
    match p {
        PreparedConv::Direct { weights, offset, stage, vec } => {
            direct::conv2d(s, input_zp, input, weights, offset, stage, vec.as_ref(), out, &mut scratch.direct)
        }
        PreparedConv::Gemm(g) => conv2d_gemm(s, input_zp, input, g, out, scratch),
    }
}

/// Int8 CONV_2D as im2col + GEMM: im2col rows read from a copy of the input padded with its zero
/// point (so padded taps contribute nothing after the offset fold), fed to the int8 GEMM: as
/// `x + 128` bytes to the u8 relaxed-dot kernel, as they are to the sign-trick kernel, or
/// widened to i16 for the simd128 kernel (which skips im2col for 1×1 stride-1 convolutions,
/// [`pointwise_conv`], and where [`igemm_i8::applies`]).
fn conv2d_gemm(s: &ConvShape, input_zp: i8, input: &[i8], g: &PreparedGemm, out: &mut [i8], scratch: &mut Scratch) {
    debug_assert_eq!(g.k, s.patch_len());
    if let Packing::Pairs(w) = &g.packing {
        if pointwise_conv::applies(s) {
            return pointwise_conv::conv2d(s, input, w, g.requant(), out, &mut scratch.cols16);
        }
        if igemm_i8::applies(s) {
            return igemm_i8::conv2d(s, input_zp, input, w, g.requant(), out, &mut scratch.pairs);
        }
    }
    let pixels = s.batch * s.out_h() * s.out_w();
    let pointwise = pointwise_conv::applies(s);
    // The u8 kernel reads `x + 128`: the padded copy is flipped once, pointwise rows on the way.
    let flip = if matches!(g.packing, Packing::Quads(_)) { i8::MIN } else { 0 };
    let geometry = if pointwise { (0, 0) } else { pad_nhwc(s, input, input_zp, 1, s.in_c, &mut scratch.padded) };
    if !pointwise {
        if flip != 0 {
            scratch.padded.iter_mut().for_each(|v| *v ^= flip);
        }
        scratch.padded.extend_from_slice(&[0; SLACK]);
    }
    let padded = &scratch.padded;
    let ld = match &g.packing {
        Packing::Quads(q) => q.kq,
        Packing::Signs(w) => w.kq,
        Packing::Pairs(w) => w.kp,
    };
    fill(&mut scratch.cols_i8, BLOCK * ld + SLACK, true, 0);
    for p0 in (0..pixels).step_by(BLOCK) {
        let n = BLOCK.min(pixels - p0);
        let o = &mut out[p0 * s.out_c..(p0 + n) * s.out_c];
        let cols = &mut scratch.cols_i8;
        im2col(s, input, padded, geometry, pointwise, (p0, n), cols, ld, flip);
        match &g.packing {
            Packing::Quads(q) => gemm_dot4::gemm(n, as_u8(cols), ld, q, g.requant(), o, s.out_c),
            Packing::Signs(w) => gemm_sign::gemm(n, cols, ld, w, g.requant(), o, s.out_c),
            Packing::Pairs(w) => {
                fill(&mut scratch.cols16, BLOCK * ld, p0 == 0, 0);
                scratch.cols16.iter_mut().zip(cols.iter()).for_each(|(d, &v)| *d = v as i16);
                gemm_i8::gemm(n, &scratch.cols16, ld, w, g.requant(), o, s.out_c);
            }
        }
    }
}

/// Sizes a scratch buffer to `len` values of `zero` when `first` (the padding columns past `k`
/// are never written after that).
fn fill<T: Copy>(v: &mut Vec<T>, len: usize, first: bool, zero: T) {
    if first {
        v.clear();
        v.resize(len, zero);
    }
}

/// Prepared int8 FULLY_CONNECTED: the GEMM's packing, or, for a single row per run where the GEMM
/// would run on i16 pairs (no exact relaxed dot), the GEMV's blocks ([`gemv`]).
#[derive(Clone, Debug, PartialEq)]
pub enum PreparedDense {
    Gemm(PreparedGemm),
    Gemv(PreparedGemv),
}

impl PreparedDense {
    /// `d` for `rows` rows per run, packed for the kernel this build and engine run.
    pub fn new(rows: usize, d: Dense, stage: OutputStage) -> Self {
        Self::with_kind(rows, d, stage, gemm_dot4::kind())
    }

    /// [`PreparedDense::new`] for the given relaxed dot product (tests force each one).
    pub fn with_kind(rows: usize, d: Dense, stage: OutputStage, kind: DotKind) -> Self {
        if rows != 1 || kind != DotKind::None {
            return PreparedDense::Gemm(PreparedGemm::new(d, stage, kind));
        }
        PreparedDense::Gemv(PreparedGemv::new(d.weights, (d.n, d.k), d.bias, d.input_offset, stage))
    }
}

/// Fast int8 FULLY_CONNECTED over `rows` rows of `k` inputs with the kernel `p` was prepared for.
pub fn fully_connected(rows: usize, input: &[i8], p: &PreparedDense, out: &mut [i8], scratch: &mut Scratch) {
    match p {
        PreparedDense::Gemm(g) => fully_connected_gemm(rows, input, g, out, scratch),
        PreparedDense::Gemv(g) => {
            let (k, n) = (g.weights.k, g.weights.n);
            for (x, o) in input.chunks_exact(k.max(1)).zip(out.chunks_exact_mut(n.max(1))).take(rows) {
                gemv::gemv(x, g, o);
            }
        }
    }
}

/// [`fully_connected`] with the GEMM (a single row runs its GEMV kernels).
fn fully_connected_gemm(rows: usize, input: &[i8], g: &PreparedGemm, out: &mut [i8], scratch: &mut Scratch) {
    let (k, n) = (g.k, g.n);
    match &g.packing {
        Packing::Quads(q) => {
            copy_rows(&mut scratch.cols8, input, rows, k, q.kq, |v| (v as u8) ^ 0x80);
            gemm_dot4::gemm(rows, &scratch.cols8, q.kq, q, g.requant(), out, n);
        }
        Packing::Signs(w) => {
            copy_rows(&mut scratch.cols_i8, input, rows, k, w.kq, |v| v);
            gemm_sign::gemm(rows, &scratch.cols_i8, w.kq, w, g.requant(), out, n);
        }
        Packing::Pairs(w) => {
            copy_rows(&mut scratch.cols16, input, rows, k, w.kp, i16::from);
            gemm_i8::gemm(rows, &scratch.cols16, w.kp, w, g.requant(), out, n);
        }
    }
}

/// Copies `rows` rows of `k` inputs into rows of stride `ld` (zero padded), converted by `conv`.
fn copy_rows<T: Copy + Default>(dst: &mut Vec<T>, input: &[i8], rows: usize, k: usize, ld: usize, conv: fn(i8) -> T) {
    dst.clear();
    dst.resize(rows * ld, conv(0));
    for (d, x) in dst.chunks_exact_mut(ld).zip(input.chunks_exact(k.max(1))).take(rows) {
        d.iter_mut().zip(x).for_each(|(d, &v)| *d = conv(v));
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
            for kind in [DotKind::None, DotKind::Sign, DotKind::U8] {
                let g = PreparedConv::gemm(&w, &s, Some(&bias), off, os.clone(), kind);
                let mut got = vec![0i8; s.output_len()];
                conv2d(&s, zp, &input, &g, &mut got, &mut Scratch::default());
                assert_eq!(got, want, "{s:?} {kind:?}");
            }
        }
    }

    /// Stages of three kinds: small multipliers (the window layout), multipliers above one (left
    /// shifts: the general vector layout) and LiteRT's double rescaling (no vector kernel); the
    /// window layout also with ReLU-type clamps (`min` at the zero point, which leaves out its
    /// sign correction) at both extreme zero points.
    fn stages(rng: &mut Rng, n: usize) -> Vec<OutputStage> {
        let big = (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.5 + rng.uniform() as f64 * 3.0))).collect();
        let doubles = (0..n).map(|_| Rescale::Double(0.001 + rng.uniform() as f64 * 0.004)).collect();
        let small = |rng: &mut Rng| stage(rng, n).scales;
        vec![
            stage(rng, n),
            OutputStage::new(big, -5, -128, 127),
            OutputStage::new(doubles, 2, -100, 120),
            OutputStage::new(small(rng), -128, -128, -128 + 100),
            OutputStage::new(small(rng), 127, 127, 127),
            OutputStage::new(small(rng), 20, 20, 127),
        ]
    }

    #[test]
    fn direct_pays_on_short_patches() {
        let pw = |in_c, out_c| shape((12, 12), in_c, out_c, 1, 1, 1, Padding::Same);
        let k3 = |in_c, out_c| shape((12, 12), in_c, out_c, 3, 1, 1, Padding::Same);
        for (s, u8_dot, pairs) in [
            (pw(8, 16), true, false),
            (pw(32, 32), true, false),
            (pw(64, 64), false, false),
            (k3(3, 8), true, true),
            (k3(16, 16), true, false),
            (k3(32, 32), false, false),
        ] {
            assert_eq!(direct_pays(&s, DotKind::U8), u8_dot, "{s:?}");
            assert_eq!(direct_pays(&s, DotKind::None), pairs, "{s:?}");
            assert!(!direct_pays(&s, DotKind::Sign));
        }
    }

    #[test]
    fn direct_conv_equals_reference() {
        let mut rng = Rng::new(13);
        let mut cases = 0;
        for &(hw, in_c, out_c, k, stride, dil, pad) in &[
            ((9, 9), 3, 8, 3, 2, 1, Padding::Same),
            ((6, 7), 1, 5, 3, 1, 1, Padding::Same),
            ((7, 6), 2, 9, 3, 2, 1, Padding::Valid),
            ((5, 5), 4, 16, 1, 1, 1, Padding::Same),
            ((6, 5), 8, 17, 1, 1, 1, Padding::Valid),
            ((4, 6), 5, 3, 1, 2, 1, Padding::Same),
            ((8, 8), 13, 12, 3, 1, 1, Padding::Same),
            ((9, 9), 6, 8, 3, 1, 2, Padding::Valid),
            ((7, 7), 16, 24, 5, 2, 1, Padding::Same),
            ((3, 5), 7, 1, 2, 1, 1, Padding::Valid),
            // VWW's stem (3×3 over 3 channels, stride 2) on 6×7 pixels: a last tile of two.
            ((11, 13), 3, 8, 3, 2, 1, Padding::Same),
            ((6, 9), 3, 11, 3, 1, 1, Padding::Valid),
            ((8, 5), 4, 8, 3, 2, 1, Padding::Valid),
        ] {
            for batch in [1, 2] {
                let mut s = shape(hw, in_c, out_c, k, stride, dil, pad);
                s.batch = batch;
                let input = random_i8(&mut rng, s.input_len(), -128);
                let w = random_i8(&mut rng, s.out_c * s.patch_len(), -128);
                let bias: Vec<i32> = (0..s.out_c).map(|_| rng.below(40000) as i32 - 20000).collect();
                let zp = rng.below(256) as i32 - 128;
                for os in stages(&mut rng, s.out_c) {
                    let mut want = vec![0i8; s.output_len()];
                    conv2d_reference(&s, -zp, &input, &w, Some(&bias), &os, &mut want);
                    for kind in [DotKind::None, DotKind::U8] {
                        let g = PreparedConv::direct(&w, &s, Some(&bias), -zp, &os, kind).unwrap();
                        let mut got = vec![0i8; s.output_len()];
                        conv2d(&s, zp as i8, &input, &g, &mut got, &mut Scratch::default());
                        assert_eq!(got, want, "{s:?} {kind:?} {os:?}");
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 13 * 2 * 6 * 2);
    }

    #[test]
    fn fc_fast_equals_reference() {
        let mut rng = Rng::new(12);
        for &(rows, k, n) in &[(1, 10, 3), (3, 16, 17), (2, 33, 5), (1, 67, 41)] {
            let input = random_i8(&mut rng, rows * k, -128);
            let w = random_i8(&mut rng, n * k, -127);
            let bias: Vec<i32> = (0..n).map(|_| rng.below(1000) as i32).collect();
            let os = OutputStage::new(vec![Rescale::Double(0.003)], -128, -128, 127);
            let mut want = vec![0i8; rows * n];
            fully_connected_reference(rows, k, 128, &input, &w, 0, Some(&bias), &os, &mut want);
            for kind in [DotKind::None, DotKind::Sign, DotKind::U8] {
                let d = Dense { weights: &w, n, k, bias: Some(&bias), input_offset: 128 };
                let g = PreparedDense::with_kind(rows, d, os.clone(), kind);
                let gemv = matches!(g, PreparedDense::Gemv(_));
                assert_eq!(gemv, rows == 1 && kind == DotKind::None, "rows={rows} {kind:?}");
                let mut got = vec![0i8; rows * n];
                fully_connected(rows, &input, &g, &mut got, &mut Scratch::default());
                assert_eq!(got, want, "rows={rows} k={k} n={n} {kind:?}");
            }
        }
    }

    /// A -128 weight is outside what the sign trick's `|w|` may hold: such a layer keeps the i16
    /// pairs, exact as ever, and the others take the sign kernel.
    #[test]
    fn minus_128_weights_keep_the_pairs() {
        let mut rng = Rng::new(14);
        let (rows, k, n) = (5, 19, 11);
        let input = random_i8(&mut rng, rows * k, -128);
        let os = OutputStage::new(vec![Rescale::Double(0.002)], 3, -128, 127);
        for lowest in [-128, -127] {
            let mut w = random_i8(&mut rng, n * k, -127);
            w[7] = lowest as i8;
            let mut want = vec![0i8; rows * n];
            fully_connected_reference(rows, k, -3, &input, &w, 0, None, &os, &mut want);
            let d = Dense { weights: &w, n, k, bias: None, input_offset: -3 };
            let PreparedDense::Gemm(g) = PreparedDense::with_kind(rows, d, os.clone(), DotKind::Sign) else {
                panic!("{rows} rows take the GEMM")
            };
            assert_eq!(matches!(g.packing, Packing::Pairs(_)), lowest == -128);
            let mut got = vec![0i8; rows * n];
            fully_connected(rows, &input, &PreparedDense::Gemm(g), &mut got, &mut Scratch::default());
            assert_eq!(got, want, "lowest weight {lowest}");
        }
    }
}
