//! The wasm twins of the 3×3 kernel: the layouts' rearrangements and the pixel loops,
//! requantized from registers.
//!
//! An output row of a block of eight channels goes in groups of [`GROUP`] pixels: their sums
//! first (at stride 1, neighbouring pixels read the same columns: the compiler loads each once),
//! then their requantizations together ([`Block8::apply_many`]: step by step across the group, so
//! each output constant is used [`GROUP`] times in a row).
use super::super::super::super::requant::{
    simd128::{store8, Block8},
    VecStage,
};
use super::super::f64_stage::{simd128::Consts, F64Stage};
use super::{Geometry, Packed, LANES, NB};
use core::arch::wasm32::*;

/// Output pixels computed together.
pub const GROUP: usize = 4;

/// `dst[x][c][0] = a[x·cp + c]`, `dst[x][c][1] = b[x·cp + c]` for the eight channels of every
/// column of `dst`, widened to i16 (the row pairs).
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
            let va = i16x8_load_extend_i8x8(a.add(x * cp));
            let vb = i16x8_load_extend_i8x8(b.add(x * cp));
            v128_store(d.add(x * LANES) as *mut v128, i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(va, vb));
            v128_store(d.add(x * LANES + 8) as *mut v128, i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(va, vb));
        }
    }
}

/// How a block's sums become bytes: the f64 stage where it is proven for the whole block, else the
/// fixed-point one.
enum Rq<'a> {
    Fixed(&'a Block8<'a>),
    Float(Consts),
}

/// The block's output: where its first pixel goes, and how it is requantized and stored.
struct Out<'a> {
    rq: Rq<'a>,
    /// Output index of the row's first pixel and the block's first channel.
    at: usize,
    /// Output channels (the distance between pixels).
    c: usize,
    /// Channels of the block that are stored.
    take: usize,
}

impl Out<'_> {
    /// Pixels `0..ow` of a row, `sum(ox)` giving a pixel's sums: with the fixed-point stage whole
    /// groups, then the last `ow % GROUP` pixels one by one. (Measured in Node on KWS's 5-pixel
    /// rows: a last group that overlaps the previous one, its pixels computed twice, took 1.25×
    /// the time of the 3×3 kernel without groups.)
    ///
    /// # Safety
    /// `sum` must be safe to call for `ox < ow`; `out` must hold `at + (ow - 1)·c + 8` bytes when
    /// `take` is 8.
    #[inline(always)]
    unsafe fn row(&self, ow: usize, out: &mut [i8], sum: impl Fn(usize) -> (v128, v128)) {
        let rq = match &self.rq {
            Rq::Float(k) => {
                for ox in 0..ow {
                    let (lo, hi) = sum(ox);
                    // SAFETY: the caller's contract.
                    unsafe { store8(k.apply(lo, hi), out, self.at + ox * self.c, self.take) };
                }
                return;
            }
            Rq::Fixed(rq) => rq,
        };
        let mut ox = 0;
        while ox + GROUP <= ow {
            let sums: [(v128, v128); GROUP] = core::array::from_fn(|p| sum(ox + p));
            for (p, v) in rq.apply_many(&sums).iter().enumerate() {
                // SAFETY: pixel ox + p < ow, the caller's contract.
                unsafe { store8(*v, out, self.at + (ox + p) * self.c, self.take) };
            }
            ox += GROUP;
        }
        for ox in ox..ow {
            let (lo, hi) = sum(ox);
            // SAFETY: the caller's contract.
            unsafe { store8(rq.apply(lo, hi), out, self.at + ox * self.c, self.take) };
        }
    }

    /// Two rows (this one and the next) on the f64 stage, `sum2(ox)` giving both rows' sums of a
    /// pixel column.
    ///
    /// # Safety
    /// As [`Out::row`], for both rows; `self.rq` must be [`Rq::Float`] (else nothing is written).
    #[inline(always)]
    unsafe fn row2(&self, ow: usize, out: &mut [i8], sum2: impl Fn(usize) -> [(v128, v128); 2]) {
        let Rq::Float(k) = &self.rq else { return };
        let next = self.at + ow * self.c;
        for ox in 0..ow {
            let [(a0, a1), (b0, b1)] = sum2(ox);
            // SAFETY: the caller's contract.
            unsafe {
                store8(k.apply(a0, a1), out, self.at + ox * self.c, self.take);
                store8(k.apply(b0, b1), out, next + ox * self.c, self.take);
            }
        }
    }

    fn is_float(&self) -> bool {
        matches!(self.rq, Rq::Float(_))
    }
}

/// The loops of both layouts: per block of channels `blk`, its weights `load(blk)` and output
/// constants once (the f64 stage's where `f64` has the block), then `row(&weights, &out, (b, oy,
/// n, blk), out)` for every output row `oy`, or with `pairs` on the f64 stage for rows `oy` and
/// `oy + 1` together (`n` = 2; the row's `at` set). `offset` holds whole blocks.
#[allow(clippy::too_many_arguments)]
fn blocks<W>(
    g: &Geometry,
    c: usize,
    offset: &[i32],
    vs: &VecStage,
    f64: Option<&F64Stage>,
    pairs: bool,
    out: &mut [i8],
    load: impl Fn(usize) -> W,
    row: impl Fn(&W, &Out, (usize, usize, usize, usize), &mut [i8]),
) {
    assert!(out.len() >= g.batch * g.oh * g.ow * c, "depthwise 3x3: output too short");
    assert!(offset.len() >= g.blocks * NB, "depthwise 3x3: offsets too short");
    for blk in 0..g.blocks {
        let w = load(blk);
        let fixed;
        let rq = match f64.and_then(|f| f.blocks[blk].as_ref().map(|b| Consts::new(b, f))) {
            Some(k) => Rq::Float(k),
            None => {
                fixed = Block8::new(vs, blk * NB, offset[blk * NB..][..NB].try_into().unwrap());
                Rq::Fixed(&fixed)
            }
        };
        let mut o = Out { rq, at: 0, c, take: NB.min(c - blk * NB) };
        let step = if pairs && o.is_float() { 2 } else { 1 };
        for b in 0..g.batch {
            let mut oy = 0;
            while oy < g.oh {
                let n = step.min(g.oh - oy);
                o.at = (b * g.oh + oy) * g.ow * c + blk * NB;
                row(&w, &o, (b, oy, n, blk), out);
                oy += n;
            }
        }
    }
}

/// Every block of the row pairs: its weight vectors (twelve per parity of output row) and output
/// constants loaded once, then every output row, or pairs of rows on the f64 stage: at stride 1
/// both rows read the same two pair rows (against the two parities' weights), at stride 2 they
/// share the middle one.
pub fn run(g: &Geometry, rows: &[i16], p: &Packed, vs: &VecStage, out: &mut [i8]) {
    assert!(rows.len() >= g.batch * g.np * g.blocks * g.wp * LANES, "depthwise 3x3: row pairs too short");
    assert!(p.w.len() >= g.blocks * 12 * LANES, "depthwise 3x3: weights too short");
    let load = |blk: usize| -> [[v128; 12]; 2] {
        // SAFETY: the block's 12·LANES weights are inside (asserted above).
        let at = |par: usize, i: usize| unsafe {
            v128_load(p.w.as_ptr().add((blk * 2 + par) * 6 * LANES + i * 8) as *const v128)
        };
        [core::array::from_fn(|i| at(0, i)), core::array::from_fn(|i| at(1, i))]
    };
    blocks(g, p.c, &p.offset, vs, p.f64.as_ref(), true, out, load, |w, o, (b, oy, n, blk), out| {
        let pr = |j: usize| rows[g.row(b, j, blk)..].as_ptr();
        let top = pr(g.pair_row(oy, 0));
        let bot = pr(g.pair_row(oy, 1));
        let x = |ox: usize| ox * g.sw * LANES;
        // SAFETY: columns ox·sw + kx < wp of pair rows inside the buffer (wp = (ow - 1)·sw + 3,
        // rows asserted above; the pair rows of row oy + 1 when n is 2); output pixels of these
        // rows (asserted in `blocks`). Single rows name their stride and weights as constants:
        // the fixed-point stage's groups of pixels then share column loads at stride 1 and keep
        // the weights in registers (measured: an indexed parity cost 3% more instructions).
        unsafe {
            match (n, g.sh, g.sw, g.parity(oy)) {
                (2, 1, ..) => o.row2(g.ow, out, |ox| pixel2_shared(top, bot, x(ox), w)),
                (2, ..) => {
                    let third = pr(g.pair_row(oy + 1, 1));
                    o.row2(g.ow, out, |ox| pixel2_stacked(top, bot, third, x(ox), &w[0]))
                }
                (_, _, 1, 0) => o.row(g.ow, out, |ox| pixel(top, bot, ox * LANES, &w[0])),
                (_, _, 1, _) => o.row(g.ow, out, |ox| pixel(top, bot, ox * LANES, &w[1])),
                (.., 0) => o.row(g.ow, out, |ox| pixel(top, bot, ox * 2 * LANES, &w[0])),
                _ => o.row(g.ow, out, |ox| pixel(top, bot, ox * 2 * LANES, &w[1])),
            }
        }
    });
}

/// Two vertically adjacent output pixels at stride 1 (rows `2j` and `2j + 1`): both read pair
/// rows `j` and `j + 1`, against the even and odd rows' weights.
///
/// # Safety
/// As [`pixel`].
#[inline(always)]
unsafe fn pixel2_shared(top: *const i16, bot: *const i16, x: usize, w: &[[v128; 12]; 2]) -> [(v128, v128); 2] {
    // SAFETY: the caller's contract.
    let ld = |p: *const i16, at: usize| unsafe { v128_load(p.add(at) as *const v128) };
    let z = i32x4_splat(0);
    let mut acc = [[z; 2]; 2];
    for kx in 0..3 {
        let at = x + kx * LANES;
        let (t0, t1, b0, b1) = (ld(top, at), ld(top, at + 8), ld(bot, at), ld(bot, at + 8));
        for (r, a) in acc.iter_mut().enumerate() {
            let w = &w[r][kx * 4..kx * 4 + 4];
            a[0] = i32x4_add(a[0], i32x4_add(i32x4_dot_i16x8(t0, w[0]), i32x4_dot_i16x8(b0, w[2])));
            a[1] = i32x4_add(a[1], i32x4_add(i32x4_dot_i16x8(t1, w[1]), i32x4_dot_i16x8(b1, w[3])));
        }
    }
    [(acc[0][0], acc[0][1]), (acc[1][0], acc[1][1])]
}

/// Two vertically adjacent output pixels at stride 2 (rows `oy`, `oy + 1`): pair rows `oy`,
/// `oy + 1` and `oy + 1`, `oy + 2`, the middle one loaded once.
///
/// # Safety
/// As [`pixel`], for the three pair rows.
#[inline(always)]
unsafe fn pixel2_stacked(
    p0: *const i16,
    p1: *const i16,
    p2: *const i16,
    x: usize,
    w: &[v128; 12],
) -> [(v128, v128); 2] {
    // SAFETY: the caller's contract.
    let ld = |p: *const i16, at: usize| unsafe { v128_load(p.add(at) as *const v128) };
    let z = i32x4_splat(0);
    let mut acc = [[z; 2]; 2];
    for kx in 0..3 {
        let at = x + kx * LANES;
        let w = &w[kx * 4..kx * 4 + 4];
        let m = (ld(p1, at), ld(p1, at + 8));
        let rows = [((ld(p0, at), ld(p0, at + 8)), m), (m, (ld(p2, at), ld(p2, at + 8)))];
        for (a, ((t0, t1), (b0, b1))) in acc.iter_mut().zip(rows) {
            a[0] = i32x4_add(a[0], i32x4_add(i32x4_dot_i16x8(t0, w[0]), i32x4_dot_i16x8(b0, w[2])));
            a[1] = i32x4_add(a[1], i32x4_add(i32x4_dot_i16x8(t1, w[1]), i32x4_dot_i16x8(b1, w[3])));
        }
    }
    [(acc[0][0], acc[0][1]), (acc[1][0], acc[1][1])]
}

/// The sums of one output pixel's eight channels (channels 0–3, 4–7): columns at `x`, `x +
/// LANES`, `x + 2·LANES` of the top and bottom pair rows against weights `[kx][tb][half]`.
///
/// # Safety
/// `top` and `bot` must be readable for `x + 3·LANES` i16.
#[inline(always)]
unsafe fn pixel(top: *const i16, bot: *const i16, x: usize, w: &[v128; 12]) -> (v128, v128) {
    // SAFETY: the caller's contract.
    let ld = |p: *const i16, at: usize| unsafe { v128_load(p.add(at) as *const v128) };
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

/// `dst[x][c] = [a, b, c, c][row][x·cp + c] + 128` as bytes, for the eight channels of every
/// column of `dst` (the triple rows; `dst` holds 32 bytes per column).
#[cfg(target_feature = "relaxed-simd")]
pub fn triples([a, b, c]: [&[i8]; 3], cp: usize, dst: &mut [i16]) {
    let cols = dst.len() / LANES;
    if cols == 0 {
        return;
    }
    let need = (cols - 1) * cp + NB;
    assert!(a.len() >= need && b.len() >= need && c.len() >= need, "triple rows: short input");
    let d = dst.as_mut_ptr();
    let flip = i8x16_splat(i8::MIN);
    for x in 0..cols {
        // SAFETY: 8 bytes at x·cp of each row (asserted above), 32 bytes at x·LANES i16 of `dst`.
        unsafe {
            let ld = |r: &[i8]| v128_load64_zero(r.as_ptr().add(x * cp) as *const u64);
            let (va, vb, vc) = (ld(a), ld(b), ld(c));
            let ab = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(va, vb);
            let cc = i8x16_shuffle::<0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7>(vc, vc);
            let q0 = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab, cc);
            let q1 = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab, cc);
            v128_store(d.add(x * LANES) as *mut v128, v128_xor(q0, flip));
            v128_store(d.add(x * LANES + 8) as *mut v128, v128_xor(q1, flip));
        }
    }
}

/// [`run`] over triple rows with the u8 dot product: weights `[block][kx][8 channels][4]` and
/// their offsets (`q`), six dot products per output pixel and eight channels.
#[cfg(target_feature = "relaxed-simd")]
pub fn run_quads(g: &Geometry, rows: &[i16], c: usize, q: (&[i8], &[i32]), vs: &VecStage, out: &mut [i8]) {
    let (qw, offset) = q;
    assert!(rows.len() >= g.batch * g.oh * g.blocks * g.wp * LANES, "depthwise 3x3: triple rows too short");
    assert!(qw.len() >= g.blocks * 12 * NB, "depthwise 3x3: weights too short");
    let load = |blk: usize| -> [v128; 6] {
        // SAFETY: the block's 12·NB weights are inside (asserted above).
        core::array::from_fn(|i| unsafe { v128_load(qw.as_ptr().add(blk * 12 * NB + i * 16) as *const v128) })
    };
    blocks(g, c, offset, vs, None, false, out, load, |w, o, (b, oy, _, blk), out| {
        let t = rows[g.row(b, oy, blk)..].as_ptr();
        // SAFETY: columns ox·sw + kx < wp of a triple row inside the buffer (asserted above);
        // output pixels of this row (asserted in `blocks`).
        unsafe {
            if g.sw == 1 {
                o.row(g.ow, out, |ox| pixel_quads(t, ox * LANES, w));
            } else {
                o.row(g.ow, out, |ox| pixel_quads(t, ox * 2 * LANES, w));
            }
        }
    });
}

/// The sums of one output pixel's eight channels over a triple row: columns at `x`, `x + LANES`,
/// `x + 2·LANES` (in i16 units) against weights `[kx][half]`.
///
/// # Safety
/// `t` must be readable for `x + 3·LANES` i16.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn pixel_quads(t: *const i16, x: usize, w: &[v128; 6]) -> (v128, v128) {
    // SAFETY: the caller's contract.
    let ld = |at: usize| unsafe { v128_load(t.add(at) as *const v128) };
    let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
    for kx in 0..3 {
        let at = x + kx * LANES;
        lo = i32x4_relaxed_dot_i8x16_i7x16_add(w[kx * 2], ld(at), lo);
        hi = i32x4_relaxed_dot_i8x16_i7x16_add(w[kx * 2 + 1], ld(at + 8), hi);
    }
    (lo, hi)
}
