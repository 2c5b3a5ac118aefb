//! Direct int8 CONV_2D: the patches are read in place from the zero-point-padded input instead of
//! being copied out (im2col), and each tile of sums is requantized from registers.
//!
//! A patch is a few contiguous runs of the padded input: one per filter row (`kw·in_c` bytes) when
//! the horizontal dilation is 1, else one per tap (`in_c` bytes). The weights are packed per run,
//! each run padded with zero weights to whole groups of the dot product (4 bytes for the u8 × i8
//! relaxed dot, 2 for `i32x4.dot_i16x8_s`), so a group that runs past its run reads a few bytes of
//! whatever follows and multiplies them by 0. That costs a few extra multiply-adds on runs whose
//! length is not a multiple of the group (27 → 36 for a 3×3 filter over 3 channels), and saves the
//! copy, which for the few-channel layers of TinyML models costs more than the arithmetic.
//!
//! Loops: blocks of [`NR`] = 8 output channels outer (their weights and requantization constants
//! stay hot), tiles of [`MR`] = 4 output pixels inner, a tile's sums requantized together from
//! registers. For pairs the padded input is widened to i16 once per call, so a pair of a pixel is
//! one 4-byte broadcast load: the inner loop is loads, dot products and additions only (widening
//! and spreading the bytes in the loop cost one more instruction per dot product, for every block
//! of channels). [`portable_block`] is the plain-loop twin of the wasm kernels; both are tested
//! against the reference convolution.

use super::super::conv::{pad_nhwc, pad_nhwc_i16, ConvShape};
use super::super::fixedpoint::OutputStage;
use super::super::requant::{self, VecStage};

/// Output channels per block.
pub const NR: usize = 8;
/// Output pixels per tile.
pub const MR: usize = 4;
/// Bytes the kernels may read past a run's last group: the padded input is extended by this much.
const SLACK: usize = 16;

/// Which dot product the packing is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Four bytes per dot, inputs as `x + 128` (u8) against i8 weights: the relaxed dot where it
    /// is an exact u8 × i8 product.
    Quads,
    /// Two values per dot, inputs widened to i16: `i32x4.dot_i16x8_s`.
    Pairs,
}

impl Group {
    fn len(self) -> usize {
        match self {
            Group::Quads => 4,
            Group::Pairs => 2,
        }
    }
}

/// Weights `[out_c][kh][kw][in_c]` packed per block of [`NR`] channels, run and group:
/// `[block][run][group][NR][len]` (i8 for quads, i16 for pairs), zero where a run or block ends.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedDirect {
    pub n: usize,
    pub group: Group,
    /// Real elements per run, that rounded up to whole groups, and runs per patch.
    run: usize,
    run_g: usize,
    runs: usize,
    quads: Vec<i8>,
    pairs: Vec<i16>,
}

/// `(elements per run, runs per patch)` of `s`'s patches.
fn run_shape(s: &ConvShape) -> (usize, usize) {
    if s.win.w.dilation == 1 {
        (s.kw() * s.in_c, s.kh())
    } else {
        (s.in_c, s.kh() * s.kw())
    }
}

impl PackedDirect {
    /// `weights` is `[out_c][kh·kw·in_c]` for shape `s`.
    pub fn pack(weights: &[i8], s: &ConvShape, group: Group) -> PackedDirect {
        let (run, runs) = run_shape(s);
        let (n, k, len) = (s.out_c, run * runs, group.len());
        assert!(weights.len() >= n * k, "weights shorter than out_c·patch");
        let run_g = run.div_ceil(len) * len;
        let blocks = n.div_ceil(NR);
        let mut flat = vec![0i8; blocks * runs * run_g * NR];
        for c in 0..n {
            for r in 0..runs {
                for j in 0..run {
                    let (g, e) = (j / len, j % len);
                    let at = ((((c / NR) * runs + r) * (run_g / len) + g) * NR + c % NR) * len + e;
                    flat[at] = weights[c * k + r * run + j];
                }
            }
        }
        let (quads, pairs) = match group {
            Group::Quads => (flat, Vec::new()),
            Group::Pairs => (Vec::new(), flat.iter().map(|&v| v as i16).collect()),
        };
        PackedDirect { n, group, run, run_g, runs, quads, pairs }
    }

    /// Whether this packing was made for `s`'s patches.
    pub fn fits(&self, s: &ConvShape) -> bool {
        run_shape(s) == (self.run, self.runs) && s.out_c == self.n
    }

    /// Elements of one block's weights.
    fn block_len(&self) -> usize {
        self.runs * self.run_g * NR
    }
}

/// Scratch the direct convolution reuses: the padded input (as bytes, or widened to i16 for the
/// pairs kernel) and the output pixels' offsets in it.
#[derive(Default)]
pub struct DirectScratch {
    padded: Vec<i8>,
    wide: Vec<i16>,
    bases: Vec<usize>,
}

/// The convolution: `out = stage(Σ w·(x + input_offset) + bias)`, with `offset[c]` holding
/// `bias + input_offset·Σ w` (and, for quads, `-128·Σ w`), at least `n` values. `vs` is the
/// stage's vector layout; the vector kernels run when it is fixed-point.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    s: &ConvShape,
    input_zp: i8,
    input: &[i8],
    w: &PackedDirect,
    offset: &[i32],
    stage: &OutputStage,
    vs: Option<&VecStage>,
    out: &mut [i8],
    scratch: &mut DirectScratch,
) {
    assert!(w.fits(s) && offset.len() >= w.n && out.len() >= s.output_len(), "direct conv: mismatched operands");
    let pixels = s.batch * s.out_h() * s.out_w();
    if pixels == 0 || w.n == 0 {
        return;
    }
    // The vector kernels run on the fixed-point vector stage only; the pairs kernel reads the
    // padded input widened to i16 (padded and widened in one pass), the others its bytes.
    let vs_fixed = vs.filter(|v| v.is_fixed() && cfg!(all(target_arch = "wasm32", target_feature = "simd128")));
    let wide_pairs = w.group == Group::Pairs && vs_fixed.is_some();
    let (hp, wp) = pad(s, input_zp, input, (w.group, wide_pairs), scratch);
    let offs = run_offsets(s, wp);
    scratch.bases.clear();
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            let row = (b * hp + oy * s.win.h.stride) * wp;
            scratch.bases.extend((0..s.out_w()).map(|ox| (row + ox * s.win.w.stride) * s.in_c));
        }
    }
    let last = scratch.bases[pixels - 1] + offs.iter().max().unwrap_or(&0) + w.run_g;
    let len = if wide_pairs { scratch.wide.len() } else { scratch.padded.len() };
    assert!(last <= len, "direct conv: padded input too short");
    let x = Input { bytes: &scratch.padded, len, bases: &scratch.bases, offs: &offs };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let wide: &[i16] = &scratch.wide;
    for blk in 0..w.n.div_ceil(NR) {
        let c0 = blk * NR;
        let take = NR.min(w.n - c0);
        let o = Output { out: &mut *out, out_c: w.n, c0, take };
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let Some(vs) = vs_fixed {
            let mut off8 = [0i32; NR];
            off8[..take].copy_from_slice(&offset[c0..c0 + take]);
            let rq = requant::simd128::Block8::new(vs, c0, &off8);
            match w.group {
                #[cfg(target_feature = "relaxed-simd")]
                Group::Quads if super::super::gemm_dot4::available() => {
                    simd::quads(&x, &w.quads[blk * w.block_len()..][..w.block_len()], w.run_g, &rq, o);
                    continue;
                }
                Group::Pairs => {
                    simd::pairs(&x, wide, &w.pairs[blk * w.block_len()..][..w.block_len()], w.run_g, &rq, o);
                    continue;
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        portable_block(&x, w, blk, offset, stage, vs, o);
    }
}

/// Pads the input with its zero point into `scratch`, followed by [`SLACK`] more values: widened
/// to i16 in the same pass into `wide` when `widened` (for the pairs kernel), else as bytes into
/// `padded` (`x + 128` for quads). Returns the padded (height, width).
fn pad(
    s: &ConvShape,
    zp: i8,
    input: &[i8],
    (group, widened): (Group, bool),
    scratch: &mut DirectScratch,
) -> (usize, usize) {
    if widened {
        let dims = pad_nhwc_i16(s, input, zp, &mut scratch.wide);
        scratch.wide.extend_from_slice(&[0; SLACK]);
        scratch.padded.clear();
        return dims;
    }
    let dims = pad_nhwc(s, input, zp, 1, s.in_c, &mut scratch.padded);
    if group == Group::Quads {
        scratch.padded.iter_mut().for_each(|v| *v ^= i8::MIN);
    }
    scratch.padded.extend_from_slice(&[0; SLACK]);
    dims
}

/// Where each run of a patch starts, relative to the patch's first byte.
fn run_offsets(s: &ConvShape, wp: usize) -> Vec<usize> {
    let (dh, dw) = (s.win.h.dilation, s.win.w.dilation);
    if dw == 1 {
        (0..s.kh()).map(|ky| ky * dh * wp * s.in_c).collect()
    } else {
        (0..s.kh()).flat_map(|ky| (0..s.kw()).map(move |kx| (ky * dh * wp + kx * dw) * s.in_c)).collect()
    }
}

/// The padded input (as stored: `x + 128` for quads; empty when the pairs kernel reads it
/// widened), every output pixel's patch start, and the runs' offsets. Every element at
/// `base + off + [0, run_g)` is below `len`, the length of the padded input the kernel reads
/// (checked once).
struct Input<'a> {
    bytes: &'a [i8],
    len: usize,
    bases: &'a [usize],
    offs: &'a [usize],
}

/// The output and the block of channels `c0..c0 + take` being written.
struct Output<'a> {
    out: &'a mut [i8],
    out_c: usize,
    c0: usize,
    take: usize,
}

/// One block in plain loops: the arithmetic of the vector kernels (u8 inputs for quads), then the
/// scalar or vector output stage per pixel.
fn portable_block(
    x: &Input,
    w: &PackedDirect,
    blk: usize,
    offset: &[i32],
    stage: &OutputStage,
    vs: Option<&VecStage>,
    o: Output,
) {
    assert!(x.bytes.len() >= x.len, "direct conv: padded input too short");
    let len = w.group.len();
    let value = |at: usize| match w.group {
        Group::Quads => x.bytes[at] as u8 as i32,
        Group::Pairs => x.bytes[at] as i32,
    };
    let weight = |at: usize| match w.group {
        Group::Quads => w.quads[at] as i32,
        Group::Pairs => w.pairs[at] as i32,
    };
    let wb = blk * w.block_len();
    for (p, &base) in x.bases.iter().enumerate() {
        let mut acc = [0i32; NR];
        for (r, &off) in x.offs.iter().enumerate() {
            for j in 0..w.run_g {
                let v = value(base + off + j);
                for (c, a) in acc.iter_mut().enumerate() {
                    let at = wb + ((r * (w.run_g / len) + j / len) * NR + c) * len + j % len;
                    *a = a.wrapping_add(v * weight(at));
                }
            }
        }
        let dst = &mut o.out[p * o.out_c + o.c0..][..o.take];
        requant::row(&acc[..o.take], offset, stage, vs, o.c0, dst);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    //! The wasm kernels: a tile of [`MR`] pixels × eight channels in eight vector registers,
    //! weights loaded once per group for the four pixels, the four requantized together from
    //! registers ([`Block8::apply_many_offset`]: the constants loaded once, the multiplies'
    //! latencies overlapped).
    use super::super::super::requant::simd128::{store8, Block8};
    use super::{Input, Output, MR, NR};
    use core::arch::wasm32::*;

    /// Runs `sums(bases, start)` on each tile of up to [`MR`] pixels (a short last tile repeats
    /// its last pixel; `start` is the block's offsets, which the sums begin from) and stores the
    /// requantized sums of the real ones.
    #[inline(always)]
    fn tiles(x: &Input, rq: &Block8, o: Output, sums: impl Fn([usize; MR], (v128, v128)) -> [(v128, v128); MR]) {
        let Output { out, out_c, c0, take } = o;
        assert!(out.len() >= x.bases.len() * out_c && c0 + take <= out_c, "direct conv: output too short");
        let [o0, o1] = rq.offsets();
        for (t, tile) in x.bases.chunks(MR).enumerate() {
            let pick = |i: usize| tile[i.min(tile.len() - 1)];
            let acc = sums([pick(0), pick(1), pick(2), pick(3)], (o0, o1));
            for (i, &v) in rq.apply_many_offset(&acc).iter().enumerate().take(tile.len()) {
                let at = (t * MR + i) * out_c + c0;
                // SAFETY: a whole block: at + 8 ≤ pixels·out_c ≤ out.len() (asserted above).
                unsafe { store8(v, out, at, take) };
            }
        }
    }

    /// Quads: per group, two weight vectors and one broadcast of four input bytes per pixel.
    #[cfg(target_feature = "relaxed-simd")]
    pub fn quads(x: &Input, w: &[i8], run_g: usize, rq: &Block8, o: Output) {
        assert!(w.len() >= x.offs.len() * run_g * NR, "direct conv: weights too short");
        assert!(x.bytes.len() >= x.len, "direct conv: padded input too short");
        let (bytes, offs) = (x.bytes.as_ptr(), x.offs);
        tiles(x, rq, o, |b, start| {
            let mut a = [start; MR];
            let mut wp = w.as_ptr();
            for &off in offs {
                for q in (0..run_g).step_by(4) {
                    // SAFETY: the caller checked that every base + off + run_g is at most
                    // x.len, which `bytes` covers (asserted above); the weights hold
                    // runs·run_g·8 bytes (asserted above) and wp advances 32 bytes per group.
                    unsafe {
                        let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(16) as *const v128));
                        wp = wp.add(4 * NR);
                        for (acc, &base) in a.iter_mut().zip(&b) {
                            let v = v128_load32_splat(bytes.add(base + off + q) as *const u32);
                            *acc = (
                                i32x4_relaxed_dot_i8x16_i7x16_add(w0, v, acc.0),
                                i32x4_relaxed_dot_i8x16_i7x16_add(w1, v, acc.1),
                            );
                        }
                    }
                }
            }
            a
        });
    }

    /// Pairs: per group, two i16 weight vectors and, per pixel, the group's two inputs as one
    /// 4-byte broadcast from `wide` (the padded input widened to i16, indexed as `x.bases` and
    /// `x.offs` say).
    pub fn pairs(x: &Input, wide: &[i16], w: &[i16], run_g: usize, rq: &Block8, o: Output) {
        assert!(w.len() >= x.offs.len() * run_g * NR, "direct conv: weights too short");
        assert!(wide.len() >= x.len, "direct conv: widened input too short");
        let (px, offs) = (wide.as_ptr(), x.offs);
        tiles(x, rq, o, |b, start| {
            let mut a = [start; MR];
            let mut wp = w.as_ptr();
            for &off in offs {
                for q in (0..run_g).step_by(2) {
                    // SAFETY: the caller checked that every base + off + run_g is at most
                    // x.len, which `wide` covers (asserted above); the weights hold
                    // runs·run_g·8 values (asserted above) and wp advances 16 per group.
                    unsafe {
                        let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(8) as *const v128));
                        wp = wp.add(2 * NR);
                        for (acc, &base) in a.iter_mut().zip(&b) {
                            let v = v128_load32_splat(px.add(base + off + q) as *const u32);
                            *acc = (i32x4_add(acc.0, i32x4_dot_i16x8(v, w0)), i32x4_add(acc.1, i32x4_dot_i16x8(v, w1)));
                        }
                    }
                }
            }
            a
        });
    }
}
