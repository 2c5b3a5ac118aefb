//! The 3×3 depthwise kernel: strides 1 or 2 (each way), no dilation, multiplier 1, any padding and
//! channel count — MobileNet's depthwise layers.
//!
//! The zero-point-padded input is first rearranged into *row pairs* of i16: pair row `j` holds,
//! for every padded column and channel, the values of padded rows `j·sh` and `j·sh + 1` side by
//! side. Output row `oy` reads pair row `oy` (filter rows 0 and 1) and pair row `oy + 2/sh` (filter
//! row 2, beside a row that meets a zero weight). A column of the filter is then two
//! `i32x4.dot_i16x8_s` per four channels, with no shuffle in the loop: twelve dot products per
//! output pixel and eight channels, the twelve weight vectors of a block loaded once per layer,
//! and the eight sums requantized from registers ([`Block8`]).
//!
//! Channels go in blocks of eight ([`NB`]); the last block's missing channels read the zero point
//! and meet zero weights, and are not stored. [`portable`] is the plain-loop twin of the wasm
//! kernel over the same layouts; both are tested against the reference.
//!
//! [`Block8`]: super::super::super::requant::simd128::Block8

use super::super::super::conv::{pad_nhwc, ConvShape};
use super::super::super::fixedpoint::OutputStage;
use super::super::super::geometry::Window;
#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
use super::super::super::requant;
use super::super::super::requant::VecStage;

/// Channels per block.
pub const NB: usize = 8;
/// i16 per padded pixel and block in a pair row, and per filter column half in the weights:
/// eight channels × two rows.
const LANES: usize = 2 * NB;

/// Whether `s` is a shape this kernel computes.
pub fn fits(s: &ConvShape) -> bool {
    let ok = |w: &Window| w.filter == 3 && w.dilation == 1 && (w.stride == 1 || w.stride == 2);
    ok(&s.win.h) && ok(&s.win.w) && s.in_c == s.out_c
}

/// Weights `[block][kx][top, bottom][8 channels][2]` i16: top is filter rows 0 and 1, bottom is
/// row 2 and a zero; and `offset[c] = bias + input_offset · Σ w` (padded to whole blocks).
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    pub c: usize,
    w: Vec<i16>,
    offset: Vec<i32>,
}

impl Packed {
    /// `weights` is `[3·3][c]`; `None` when it is shorter than that.
    pub fn pack(weights: &[i8], c: usize, bias: Option<&[i32]>, input_offset: i32) -> Option<Packed> {
        if weights.len() < c.checked_mul(9)? || bias.is_some_and(|b| b.len() < c) {
            return None;
        }
        let blocks = c.div_ceil(NB);
        let mut w = vec![0i16; blocks * 3 * 2 * LANES];
        let mut offset = vec![0i32; blocks * NB];
        for ch in 0..c {
            let mut sum = 0i32;
            for ky in 0..3 {
                for kx in 0..3 {
                    let v = weights[(ky * 3 + kx) * c + ch];
                    let (tb, e) = if ky < 2 { (0, ky) } else { (1, 0) };
                    w[(((ch / NB) * 3 + kx) * 2 + tb) * LANES + (ch % NB) * 2 + e] = v as i16;
                    sum += v as i32;
                }
            }
            offset[ch] = bias.map_or(0, |b| b[ch]).wrapping_add(input_offset.wrapping_mul(sum));
        }
        Some(Packed { c, w, offset })
    }
}

/// Sizes of the row-pair buffer and the output, for one call.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
    /// Pair rows per image, padded columns, blocks of channels.
    np: usize,
    wp: usize,
    blocks: usize,
}

impl Geometry {
    /// Index in the row-pair buffer of pair row `j` of image `b`, block `blk`, column 0.
    #[inline(always)]
    fn row(&self, b: usize, j: usize, blk: usize) -> usize {
        ((b * self.np + j) * self.blocks + blk) * self.wp * LANES
    }

    /// Pair row of filter rows 0–1 (`tb = 0`) or 2 (`tb = 1`) for output row `oy`.
    #[inline(always)]
    fn pair_row(&self, oy: usize, tb: usize) -> usize {
        oy + tb * (2 / self.sh)
    }
}

/// `out = stage(depthwise 3×3 of input)` for `s` ([`fits`]), `zp` the input zero point. Returns
/// false (and leaves `out` alone) when the buffers' sizes overflow `usize`, or in the SIMD builds
/// when `vs` is not a fixed-point stage (the vector kernel requantizes only those; the plain loop
/// is not built there).
#[allow(clippy::too_many_arguments)]
pub fn run(
    s: &ConvShape,
    zp: i8,
    input: &[i8],
    p: &Packed,
    stage: &OutputStage,
    vs: Option<&VecStage>,
    out: &mut [i8],
    (padded, rows): (&mut Vec<i8>, &mut Vec<i16>),
) -> bool {
    assert!(fits(s) && s.out_c == p.c && out.len() >= s.output_len(), "depthwise 3x3: mismatched operands");
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let _ = stage;
        let Some(vs) = vs.filter(|v| v.is_fixed()) else { return false };
        let Some(g) = build(s, zp, input, padded, rows) else { return false };
        simd::run(&g, rows, p, vs, out);
        true
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let Some(g) = build(s, zp, input, padded, rows) else { return false };
        portable(&g, rows, p, stage, vs, out);
        true
    }
}

/// [`run`] through the plain-loop kernel in every build (for tests of the twin).
#[cfg(test)]
pub fn run_portable(
    s: &ConvShape,
    zp: i8,
    input: &[i8],
    p: &Packed,
    stage: &OutputStage,
    out: &mut [i8],
    (padded, rows): (&mut Vec<i8>, &mut Vec<i16>),
) -> bool {
    let Some(g) = build(s, zp, input, padded, rows) else { return false };
    portable(&g, rows, p, stage, None, out);
    true
}

/// Pads the input into `padded` (`cp` channels) and rearranges it into the row pairs.
fn build(s: &ConvShape, zp: i8, input: &[i8], padded: &mut Vec<i8>, rows: &mut Vec<i16>) -> Option<Geometry> {
    let (sh, sw, oh, ow) = (s.win.h.stride, s.win.w.stride, s.out_h(), s.out_w());
    let blocks = s.out_c.div_ceil(NB);
    let cp = blocks.checked_mul(NB)?;
    let np = oh.checked_add(2 / sh)?;
    let wp = ow.checked_sub(1)?.checked_mul(sw)?.checked_add(3)?;
    let len = [s.batch, np, blocks, wp, LANES].iter().try_fold(1usize, |a, &v| a.checked_mul(v))?;
    let padded_len = [s.batch, s.win.h.pad_before + s.in_h() + 3, wp + s.in_w(), cp];
    padded_len.iter().try_fold(1usize, |a, &v| a.checked_mul(v))?;
    let (hp, wpp) = pad_nhwc(s, input, zp, 1, cp, padded);
    debug_assert!(wpp >= wp && hp > (np - 1) * sh);
    if rows.len() < len {
        rows.resize(len, 0);
    }
    let g = Geometry { batch: s.batch, sh, sw, oh, ow, np, wp, blocks };
    for b in 0..s.batch {
        for j in 0..np {
            // The second row of the last pair rows may lie past the padding: it only meets zero
            // weights, so any row in bounds will do.
            let r0 = j * sh;
            let r1 = (r0 + 1).min(hp - 1);
            let (p0, p1) = (((b * hp + r0) * wpp) * cp, ((b * hp + r1) * wpp) * cp);
            for blk in 0..blocks {
                let dst = &mut rows[g.row(b, j, blk)..][..wp * LANES];
                interleave(&padded[p0 + blk * NB..], &padded[p1 + blk * NB..], cp, dst);
            }
        }
    }
    Some(g)
}

/// `dst[x][c][0] = a[x·cp + c]`, `dst[x][c][1] = b[x·cp + c]` for the eight channels `c` of every
/// column `x` of `dst` (widened to i16).
#[inline(always)]
fn interleave(a: &[i8], b: &[i8], cp: usize, dst: &mut [i16]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd::interleave(a, b, cp, dst);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    for (x, d) in dst.chunks_exact_mut(LANES).enumerate() {
        for c in 0..NB {
            d[2 * c] = a[x * cp + c] as i16;
            d[2 * c + 1] = b[x * cp + c] as i16;
        }
    }
}

/// The kernel in plain loops over the same layouts, then the scalar or vector output stage.
#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
fn portable(g: &Geometry, rows: &[i16], p: &Packed, stage: &OutputStage, vs: Option<&VecStage>, out: &mut [i8]) {
    let c = p.c;
    for blk in 0..g.blocks {
        let (c0, take) = (blk * NB, NB.min(c - blk * NB));
        let w = &p.w[blk * 3 * 2 * LANES..][..3 * 2 * LANES];
        for b in 0..g.batch {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = [0i32; NB];
                    for tb in 0..2 {
                        let r = g.row(b, g.pair_row(oy, tb), blk);
                        for kx in 0..3 {
                            let x = &rows[r + (ox * g.sw + kx) * LANES..][..LANES];
                            let wk = &w[(kx * 2 + tb) * LANES..][..LANES];
                            for (ch, a) in acc.iter_mut().enumerate() {
                                let t =
                                    x[2 * ch] as i32 * wk[2 * ch] as i32 + x[2 * ch + 1] as i32 * wk[2 * ch + 1] as i32;
                                *a = a.wrapping_add(t);
                            }
                        }
                    }
                    let at = ((b * g.oh + oy) * g.ow + ox) * c + c0;
                    requant::row(&acc[..take], &p.offset, stage, vs, c0, &mut out[at..at + take]);
                }
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    //! The wasm twins: the row-pair rearrangement (two 8-byte loads, one shuffle, two widenings
    //! per column) and the kernel (per output pixel, three columns × top/bottom × two halves of
    //! `i32x4.dot_i16x8_s`), requantized from registers.
    use super::super::super::super::requant::{
        simd128::{store8, Block8},
        VecStage,
    };
    use super::{Geometry, Packed, LANES, NB};
    use core::arch::wasm32::*;

    pub fn interleave(a: &[i8], b: &[i8], cp: usize, dst: &mut [i16]) {
        let cols = dst.len() / LANES;
        if cols == 0 {
            return;
        }
        assert!(a.len() >= (cols - 1) * cp + NB && b.len() >= (cols - 1) * cp + NB, "row pairs: short input");
        let (a, b, d) = (a.as_ptr(), b.as_ptr(), dst.as_mut_ptr());
        for x in 0..cols {
            // SAFETY: 8 bytes at x·cp of `a` and `b` (asserted above), 32 bytes at x·LANES of `dst`.
            unsafe {
                let va = v128_load64_zero(a.add(x * cp) as *const u64);
                let vb = v128_load64_zero(b.add(x * cp) as *const u64);
                let ab = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(va, vb);
                v128_store(d.add(x * LANES) as *mut v128, i16x8_extend_low_i8x16(ab));
                v128_store(d.add(x * LANES + 8) as *mut v128, i16x8_extend_high_i8x16(ab));
            }
        }
    }

    /// Every block: its twelve weight vectors and output constants loaded once, then every
    /// output pixel.
    pub fn run(g: &Geometry, rows: &[i16], p: &Packed, vs: &VecStage, out: &mut [i8]) {
        let c = p.c;
        assert!(out.len() >= g.batch * g.oh * g.ow * c, "depthwise 3x3: output too short");
        assert!(rows.len() >= g.batch * g.np * g.blocks * g.wp * LANES, "depthwise 3x3: row pairs too short");
        assert!(p.w.len() >= g.blocks * 6 * LANES && p.offset.len() >= g.blocks * NB);
        for blk in 0..g.blocks {
            let (c0, take) = (blk * NB, NB.min(c - blk * NB));
            // SAFETY: the block's 6·LANES weights and NB offsets are inside (asserted above).
            let (w, rq) = unsafe {
                let wp = p.w.as_ptr().add(blk * 6 * LANES);
                let w: [v128; 12] = core::array::from_fn(|i| v128_load(wp.add(i * 8) as *const v128));
                let off: [i32; NB] = p.offset[c0..c0 + NB].try_into().unwrap();
                (w, Block8::new(vs, c0, &off))
            };
            for b in 0..g.batch {
                for oy in 0..g.oh {
                    let top = rows[g.row(b, g.pair_row(oy, 0), blk)..].as_ptr();
                    let bot = rows[g.row(b, g.pair_row(oy, 1), blk)..].as_ptr();
                    let mut at = ((b * g.oh + oy) * g.ow) * c + c0;
                    for ox in 0..g.ow {
                        // SAFETY: columns ox·sw + kx < wp of pair rows inside the buffer
                        // (wp = (ow - 1)·sw + 3, rows asserted above).
                        let (lo, hi) = unsafe { pixel(top, bot, ox * g.sw * LANES, &w) };
                        let v = rq.apply(lo, hi);
                        // SAFETY: a whole block: at + 8 ≤ batch·oh·ow·c ≤ out.len() (asserted above).
                        unsafe { store8(v, out, at, take) };
                        at += c;
                    }
                }
            }
        }
    }

    /// The sums of one output pixel's eight channels (channels 0–3, 4–7): columns at `x`, `x +
    /// LANES`, `x + 2·LANES` of the top and bottom pair rows against weights `[kx][tb][half]`.
    ///
    /// # Safety
    /// `top` and `bot` must be readable for `x + 3·LANES` i16.
    #[inline(always)]
    unsafe fn pixel(top: *const i16, bot: *const i16, x: usize, w: &[v128; 12]) -> (v128, v128) {
        let ld = |p: *const i16, at: usize| v128_load(p.add(at) as *const v128);
        let mut lo = i32x4_dot_i16x8(ld(top, x), w[0]);
        let mut hi = i32x4_dot_i16x8(ld(top, x + 8), w[1]);
        lo = i32x4_add(lo, i32x4_dot_i16x8(ld(bot, x), w[2]));
        hi = i32x4_add(hi, i32x4_dot_i16x8(ld(bot, x + 8), w[3]));
        for kx in 1..3 {
            let at = x + kx * LANES;
            lo = i32x4_add(lo, i32x4_dot_i16x8(ld(top, at), w[kx * 4]));
            hi = i32x4_add(hi, i32x4_dot_i16x8(ld(top, at + 8), w[kx * 4 + 1]));
            lo = i32x4_add(lo, i32x4_dot_i16x8(ld(bot, at), w[kx * 4 + 2]));
            hi = i32x4_add(hi, i32x4_dot_i16x8(ld(bot, at + 8), w[kx * 4 + 3]));
        }
        (lo, hi)
    }
}
