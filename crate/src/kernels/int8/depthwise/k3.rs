//! The 3×3 depthwise kernel: strides 1 or 2 (each way), no dilation, multiplier 1, any padding and
//! channel count — MobileNet's depthwise layers.
//!
//! The zero-point-padded input is first rearranged into *row pairs* of i16: pair row `j` holds,
//! for every padded column and channel, the values of padded rows `2j` and `2j + 1` side by side.
//! At stride 2 output row `oy` reads pair row `oy` (filter rows 0 and 1) and `oy + 1` (filter row
//! 2, beside a row that meets a zero weight); at stride 1 rows `2j` and `2j + 1` both read pair rows
//! `j` and `j + 1`, with weights `(w0, w1), (w2, 0)` for the even row and `(0, w0), (w1, w2)` for
//! the odd one (each input row is widened once). A column of the filter is then two
//! `i32x4.dot_i16x8_s` per four channels, with no shuffle in the loop: twelve dot products per
//! output pixel and eight channels, the weight vectors of a block loaded once per layer, and the
//! eight sums requantized from registers: on the f64 stage ([`f64_stage`]) where it is proven
//! exact, two output rows at a time (sharing their pair rows' loads), else [`Block8`].
//!
//! Where the relaxed u8 dot product is exact (AVX-VNNI), the input goes instead into *triple
//! rows* of bytes `x + 128`: for output row `oy`, per column and channel, the three rows the
//! filter column meets (and a fourth byte against a zero weight), so a filter column is one
//! `i32x4.relaxed_dot_i8x16_i7x16_add` per four channels: six per output pixel and eight
//! channels, with no separate additions.
//!
//! The wasm loops go along an output row in groups of four pixels (`k3/simd.rs`).
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
use super::f64_stage::{self, F64Stage};

/// Channels per block.
pub const NB: usize = 8;
/// The narrowest output rows [`super::depthwise`] gives this kernel (a group of four pixels).
pub const MIN_WIDTH: usize = 4;
/// i16 per padded pixel and block in a pair row, and per filter column half in the weights:
/// eight channels × two rows.
const LANES: usize = 2 * NB;

/// Whether `s` is a shape this kernel computes.
pub fn fits(s: &ConvShape) -> bool {
    let ok = |w: &Window| w.filter == 3 && w.dilation == 1 && (w.stride == 1 || w.stride == 2);
    ok(&s.win.h) && ok(&s.win.w) && s.in_c == s.out_c
}

/// Weights `[block][parity][kx][top, bottom][8 channels][2]` i16: for even output rows (and every
/// row at stride 2) top is filter rows 0 and 1, bottom row 2 and a zero; for odd rows at stride 1
/// top is a zero and row 0, bottom rows 1 and 2; and `offset[c] = bias + input_offset · Σ w`
/// (padded to whole blocks).
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    pub c: usize,
    w: Vec<i16>,
    offset: Vec<i32>,
    /// The double-precision output stage of the blocks where it is proven exact (the pairs'
    /// sums; [`f64_stage`]).
    f64: Option<F64Stage>,
    /// The u8 relaxed dot product's packing, where [`Packed::pack`] was asked for it.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    quads: Option<Quads>,
}

/// The 3×3 filter for `i32x4.relaxed_dot_i8x16_i7x16_add` on u8 inputs `x + 128` (exact on
/// AVX-VNNI, see [`gemm_dot4::available`]): weights `[block][kx][8 channels][ky, 0]` i8 (a
/// filter column per channel, and a zero), and `offset[c] = bias + (input_offset − 128) · Σ w`.
///
/// [`gemm_dot4::available`]: super::super::super::gemm_dot4::available
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
#[derive(Clone, Debug, PartialEq)]
struct Quads {
    w: Vec<i8>,
    offset: Vec<i32>,
}

impl Packed {
    /// `weights` is `[3·3][c]`; `None` when it is shorter than that. With `quads`, also the u8
    /// dot product's packing (in the relaxed-SIMD build); with `stage`, the blocks of the f64
    /// output stage that [`f64_stage::prove`] accepts.
    pub fn pack(
        weights: &[i8],
        c: usize,
        bias: Option<&[i32]>,
        input_offset: i32,
        quads: bool,
        stage: Option<&OutputStage>,
    ) -> Option<Packed> {
        if weights.len() < c.checked_mul(9)? || bias.is_some_and(|b| b.len() < c) {
            return None;
        }
        let blocks = c.div_ceil(NB);
        let mut w = vec![0i16; blocks * 2 * 3 * 2 * LANES];
        let mut offset = vec![0i32; blocks * NB];
        for ch in 0..c {
            let mut sum = 0i32;
            for ky in 0..3 {
                for kx in 0..3 {
                    let v = weights[(ky * 3 + kx) * c + ch];
                    // (parity, top or bottom, lane) of filter row ky.
                    for (par, tb, e) in [(0, ky / 2, ky % 2), (1, ky.div_ceil(2), (ky + 1) % 2)] {
                        w[((((ch / NB) * 2 + par) * 3 + kx) * 2 + tb) * LANES + (ch % NB) * 2 + e] = v as i16;
                    }
                    sum += v as i32;
                }
            }
            offset[ch] = bias.map_or(0, |b| b[ch]).wrapping_add(input_offset.wrapping_mul(sum));
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        let quads = quads.then(|| Quads::pack(weights, c, &offset));
        #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
        let _ = quads;
        let f64 = stage.and_then(|st| {
            let ranges: Vec<_> = (0..c).map(|ch| f64_stage::sum_range((0..9).map(|t| weights[t * c + ch]))).collect();
            F64Stage::new(st, c, &offset, &ranges)
        });
        Some(Packed {
            c,
            w,
            offset,
            f64,
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            quads,
        })
    }
}

impl Packed {
    /// Blocks of channels on the f64 output stage.
    #[cfg(test)]
    pub fn f64_blocks(&self) -> usize {
        self.f64.as_ref().map_or(0, |f| f.blocks.iter().flatten().count())
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
impl Quads {
    /// From the checked `weights` and the pairs' `offset` (less `128 · Σ w` here).
    fn pack(weights: &[i8], c: usize, offset: &[i32]) -> Quads {
        let blocks = c.div_ceil(NB);
        let mut w = vec![0i8; blocks * 3 * 4 * NB];
        let mut off = offset.to_vec();
        for ch in 0..c {
            let mut sum = 0i32;
            for ky in 0..3 {
                for kx in 0..3 {
                    let v = weights[(ky * 3 + kx) * c + ch];
                    w[((ch / NB) * 3 + kx) * 4 * NB + (ch % NB) * 4 + ky] = v;
                    sum += v as i32;
                }
            }
            off[ch] = off[ch].wrapping_sub(128 * sum);
        }
        Quads { w, offset: off }
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
    /// Pair rows (or triple rows) per image, padded columns, blocks of channels.
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

    /// Pair row of the top (`tb = 0`) or bottom (`tb = 1`) weights of output row `oy`.
    #[inline(always)]
    fn pair_row(&self, oy: usize, tb: usize) -> usize {
        oy * self.sh / 2 + tb
    }

    /// Which weights output row `oy` takes: 1 for odd rows at stride 1, else 0.
    #[inline(always)]
    fn parity(&self, oy: usize) -> usize {
        oy % 2 * (2 - self.sh)
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
        #[cfg(target_feature = "relaxed-simd")]
        if let Some(q) = p.quads.as_ref().filter(|_| super::super::super::gemm_dot4::available()) {
            let Some(g) = build(s, zp, input, padded, rows, true) else { return false };
            simd::run_quads(&g, rows, p.c, (&q.w, &q.offset), vs, out);
            return true;
        }
        let Some(g) = build(s, zp, input, padded, rows, false) else { return false };
        simd::run(&g, rows, p, vs, out);
        true
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let Some(g) = build(s, zp, input, padded, rows, false) else { return false };
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
    let Some(g) = build(s, zp, input, padded, rows, false) else { return false };
    portable(&g, rows, p, stage, None, out);
    true
}

/// Pads the input into `padded` (`cp` channels) and rearranges it into the row pairs, or with
/// `triples` (the u8 dot product's layout) into triple rows: triple row `oy` holds, for every
/// padded column and channel, the bytes `x + 128` of padded rows `oy·sh`, `oy·sh + 1`, `oy·sh + 2`
/// and the last again (it meets a zero weight), in the same 32 bytes per column and block as a
/// row pair. Row pairs of channels in whole blocks skip the padded copy ([`pairs_unpadded`]).
fn build(
    s: &ConvShape,
    zp: i8,
    input: &[i8],
    padded: &mut Vec<i8>,
    rows: &mut Vec<i16>,
    triples: bool,
) -> Option<Geometry> {
    let (sh, sw, oh, ow) = (s.win.h.stride, s.win.w.stride, s.out_h(), s.out_w());
    let blocks = s.out_c.div_ceil(NB);
    let cp = blocks.checked_mul(NB)?;
    let np = if triples { oh } else { (oh - 1).checked_mul(sh)?.checked_add(4)? / 2 };
    let wp = ow.checked_sub(1)?.checked_mul(sw)?.checked_add(3)?;
    let len = [s.batch, np, blocks, wp, LANES].iter().try_fold(1usize, |a, &v| a.checked_mul(v))?;
    let padded_len = [s.batch, s.win.h.pad_before + s.in_h() + 3, wp + s.in_w(), cp];
    padded_len.iter().try_fold(1usize, |a, &v| a.checked_mul(v))?;
    if rows.len() < len {
        rows.resize(len, 0);
    }
    let g = Geometry { batch: s.batch, sh, sw, oh, ow, np, wp, blocks };
    if !triples && cp == s.in_c {
        pairs_unpadded(s, zp, input, padded, rows, &g);
        return Some(g);
    }
    let (hp, wpp) = pad_nhwc(s, input, zp, 1, cp, padded);
    debug_assert!(wpp >= wp && hp > if triples { (np - 1) * sh + 2 } else { 2 * (np - 1) });
    for b in 0..s.batch {
        for j in 0..np {
            // The second row of the last pair row may lie past the padding: it only meets zero
            // weights, so any row in bounds will do. Triple rows are inside (hp ≥ (oh - 1)·sh + 3).
            let r0 = if triples { j * sh } else { 2 * j };
            let at = |r: usize| ((b * hp + r.min(hp - 1)) * wpp) * cp;
            for blk in 0..blocks {
                let dst = &mut rows[g.row(b, j, blk)..][..wp * LANES];
                let row = |r: usize| &padded[at(r) + blk * NB..];
                #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
                if triples {
                    simd::triples([row(r0), row(r0 + 1), row(r0 + 2)], cp, dst);
                    continue;
                }
                interleave(row(r0), row(r0 + 1), cp, dst);
            }
        }
    }
    Some(g)
}

/// [`build`]'s row pairs read straight from the input when its channels are whole blocks (no
/// zero-point-padded copy first): padded row `r` is input row `r − pad_before`, or outside the
/// image a row of the zero point (`zrow`, scratch), and the columns outside the image are the zero
/// point. (The padded copy cost a fill and a copy of the whole input per call: at stride 2 four
/// input bytes per output.)
fn pairs_unpadded(s: &ConvShape, zp: i8, input: &[i8], zrow: &mut Vec<i8>, rows: &mut [i16], g: &Geometry) {
    let (c, in_h, in_w) = (s.in_c, s.in_h(), s.in_w());
    let (ph, pw, width) = (s.win.h.pad_before, s.win.w.pad_before, in_w * c);
    assert!(input.len() >= s.input_len() && c == g.blocks * NB, "depthwise 3x3: mismatched input");
    zrow.clear();
    zrow.resize(width, zp);
    // Columns lo..hi of a pair row are inside the image.
    let lo = pw.min(g.wp);
    let hi = (pw + in_w).min(g.wp).max(lo);
    for b in 0..g.batch {
        let src = |r: usize| match r.checked_sub(ph).filter(|&y| y < in_h) {
            Some(y) => &input[(b * in_h + y) * width..][..width],
            None => &zrow[..],
        };
        for j in 0..g.np {
            let (ra, rb) = (src(2 * j), src(2 * j + 1));
            for blk in 0..g.blocks {
                let dst = &mut rows[g.row(b, j, blk)..][..g.wp * LANES];
                dst[..lo * LANES].fill(zp as i16);
                dst[hi * LANES..].fill(zp as i16);
                interleave(&ra[blk * NB..], &rb[blk * NB..], c, &mut dst[lo * LANES..hi * LANES]);
            }
        }
    }
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

/// The kernel in plain loops over the same layouts, then the scalar f64 stage where it is proven,
/// else the fixed-point one (scalar or vector).
#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
fn portable(g: &Geometry, rows: &[i16], p: &Packed, stage: &OutputStage, vs: Option<&VecStage>, out: &mut [i8]) {
    let c = p.c;
    for blk in 0..g.blocks {
        let (c0, take) = (blk * NB, NB.min(c - blk * NB));
        for b in 0..g.batch {
            for oy in 0..g.oh {
                let w = &p.w[(blk * 2 + g.parity(oy)) * 3 * 2 * LANES..][..3 * 2 * LANES];
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
                    let o = &mut out[at..at + take];
                    match p.f64.as_ref().and_then(|f| f.blocks[blk].as_ref().map(|k| (f, k))) {
                        Some((f, k)) => {
                            for (ch, o) in o.iter_mut().enumerate() {
                                *o = f64_stage::apply(k.scale[ch], k.add[ch], acc[ch], f.min, f.max);
                            }
                        }
                        None => requant::row(&acc[..take], &p.offset, stage, vs, c0, o),
                    }
                }
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd;
