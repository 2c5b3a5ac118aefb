//! Requantizing rows of int32 accumulators to int8, as TFLite's output stage does:
//! `clamp(zp + MultiplyByQuantizedMultiplier(acc + offset, M_c))` per channel `c`.
//!
//! [`row_reference`] applies the scalar [`OutputStage`]; the wasm simd128 twin does four channels
//! per vector. simd128 has no per-lane shifts, so per-channel left shifts become multiplications
//! and per-channel right shifts select among the (few) distinct uniform shifts of each group of
//! four channels. Both are tested to give identical bytes.

use super::fixedpoint::{FixedRequant, OutputStage, Rescale};

/// Scalar version: `out[c] = stage(acc[c] + offset[c])` for `c` in `0..acc.len()`, channels
/// starting at `first`.
pub fn row_reference(acc: &[i32], offset: &[i32], stage: &OutputStage, first: usize, out: &mut [i8]) {
    for (c, (o, &a)) in out.iter_mut().zip(acc).enumerate() {
        *o = stage.apply(first + c, a.wrapping_add(offset[first + c]));
    }
}

/// Per-channel data of a fixed-point output stage laid out for the vector twin, in groups of
/// four channels.
///
/// TFLite's `RoundingDivideByPOT(SRDHM(x·2^left, m), right)` is folded into one 64-bit expression:
/// SRDHM is `⌊(x·m + 2^30) / 2^31⌋` (it rounds halves up), and the rounding divide adds
/// `2^(right-1)`, less one when that quotient is negative, before a floor shift. Nested floor
/// divisions by powers of two compose, so the result is
/// `⌊(x·m + 2^30 + (2^(right-1) - neg)·2^31) / 2^(31+right)⌋`. simd128 shifts all lanes alike, so
/// the group's smallest shift is done on 64-bit lanes and each lane's remainder `right - min`
/// bit by bit with selects (arithmetic shifts compose exactly).
#[derive(Clone, Debug, PartialEq)]
pub struct VecStage {
    groups: Vec<Group>,
    /// LiteRT's double-precision rescaling instead ([`Rescale::Double`] per channel, padded to
    /// whole groups of four): when set, `groups` and `windows` are empty.
    doubles: Vec<f64>,
    /// Per group of `groups`, its clamp-window layout ([`Window4`]) when its four channels allow
    /// it (the vector code uses it there, and the general layout elsewhere).
    windows: Vec<Option<Window4>>,
    zp: i32,
    min: i32,
    max: i32,
}

/// The cheaper layout of four channels, for stages without left shifts (every multiplier below
/// one, as in nearly all convolutions). The output is monotone in `x` and moves by at most one
/// step per unit of `x`, so clamping `x` to `[lo, hi]` (the inputs that give `min..=max`) gives
/// the clamped output exactly, and inside that window `x` is small enough to pre-scale in 32 bits:
///
/// `z + zp = ⌊(⌊(x·F·m + F·C + zp·2^48) / 2^32⌋ − neg·2^(16−right)) / 2^16⌋`, with
/// `F = 2^(17−right)`, `C = 2^30 + 2^(right−1)·2^31` and `neg` = SRDHM's result is negative
/// (`x < below`). SRDHM is `⌊(x·m + 2^30) / 2^31⌋` and the rounding divide adds `2^(right−1)`, less
/// one when SRDHM is negative, before its floor shift; nested floor divisions by powers of two
/// compose, so the reference is `⌊(x·m + C − neg·2^31) / 2^(31+right)⌋`, and scaling the numerator
/// by `F` makes every lane's divisor `2^48` whatever its own shift: the high halves of the 64-bit
/// sums are taken, and all lanes shift by the same constant 16 (a shift by a variable costs V8
/// three more instructions). The zero point rides in the 64-bit constant (a multiple of `2^16`
/// passes through the shift unchanged). `right ≤ 16` keeps `F` and `neg·2^(16−right)` integers;
/// inside the window `|x·F| < 2^31` (checked) and the high half is about `(z + zp)·2^16`, within
/// 32 bits for outputs in `−128..=127`.
///
/// `neg` is only needed when the window reaches below the zero point (`min < zp`). With a ReLU-type
/// clamp (`min ≥ zp`) every `x` in the window with a negative SRDHM result `s` gives exactly `zp`,
/// so `s` lies in `(−2^(right−1), 0)`, where rounding half up and half away from zero agree (both
/// give 0): `neg` can be dropped ([`Window4::signed`] false, `neg_amount` zero), which saves the
/// compare, mask and subtract per four lanes.
#[derive(Clone, Debug, PartialEq)]
struct Window4 {
    lo: [i32; 4],
    hi: [i32; 4],
    factor: [i32; 4],
    mult: [i32; 4],
    add: [i64; 4],
    below: [i32; 4],
    neg_amount: [i32; 4],
    flags: Flags,
}

/// Which steps a [`Window4`] group needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Whether `neg` can change a result (see [`Window4`]); false leaves it out of the vector code.
    pub signed: bool,
    /// Whether `x` is clamped to `[lo, hi]`: needed unless every lane's [`Reach`] keeps `x·F`
    /// within 32 bits (then the output is exact without it and only needs clamping to
    /// `min..=max`, see `clamp_out`).
    pub clamp_x: bool,
    /// Whether the outputs are clamped to `min..=max` after the shift: for lanes whose `x` is not
    /// clamped and can reach past the window, when the clamp is narrower than int8's range (the
    /// saturating narrowing to int8 clamps to `-128..=127` anyway).
    pub clamp_out: bool,
}

/// The largest right shift the window layout takes.
const MAX_WINDOW_RIGHT: u32 = 16;

/// The values `acc + offset` one output channel can reach, both ends included ([`reach`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reach {
    pub lo: i32,
    pub hi: i32,
}

/// The values `bias + Σ w·(x + input_offset)` takes over int8 inputs `x` for one channel's
/// weights `w` (every kernel's `acc + offset`, whatever it folds where), or `None` when they can
/// leave i32 (the sums then wrap, as TFLite's do, and any value can occur).
pub fn reach(weights: impl IntoIterator<Item = i8>, bias: i32, input_offset: i32) -> Option<Reach> {
    // With P the sum of the positive weights and N of the negative ones, the lowest sum takes
    // x = -128 against P and 127 against N, the highest the other way round. (The sums count
    // in i32 up to 2^23 weights; longer rows are not given a reach.)
    let (mut p, mut n, mut count) = (0i32, 0i32, 0usize);
    for w in weights {
        count += 1;
        if count > 1 << 23 {
            return None;
        }
        if w > 0 {
            p += w as i32
        } else {
            n += w as i32
        }
    }
    let (p, n) = (p as i64, n as i64);
    let base = bias as i64 + input_offset as i64 * (p + n);
    let (lo, hi) = (base - 128 * p + 127 * n, base + 127 * p - 128 * n);
    Some(Reach { lo: i32::try_from(lo).ok()?, hi: i32::try_from(hi).ok()? })
}

/// [`reach`] of every channel of weights `[n][k]`.
pub fn reachable(weights: &[i8], n: usize, k: usize, bias: Option<&[i32]>, input_offset: i32) -> Vec<Option<Reach>> {
    assert!(weights.len() >= n * k && bias.is_none_or(|b| b.len() >= n), "reachable: weights or bias too short");
    let bias = |j: usize| bias.map_or(0, |b| b[j]);
    (0..n).map(|j| reach(weights[j * k..(j + 1) * k].iter().copied(), bias(j), input_offset)).collect()
}

/// The one output (zero point added, clamped) of a channel whose every reachable `x` gives the
/// same: a zero multiplier (every product is 0, whatever `x` reaches: a channel whose weights or
/// scale quantization zeroed), a single value (all its weights zero, as after pruning), or a range
/// over which its stage is monotone (no left shift can wrap) and both ends agree.
fn constant_output(f: FixedRequant, r: Option<Reach>, zp: i32, min: i32, max: i32) -> Option<i32> {
    let out = |x: i32| f.apply(x).wrapping_add(zp).clamp(min, max);
    if f.multiplier == 0 {
        return Some(out(0));
    }
    let r = r?;
    // (A left shift of 32 or more, from a hostile scale, wraps: not monotone.)
    let monotone = f.multiplier >= 0
        && f.left < 32
        && (r.lo as i64) << f.left >= i32::MIN as i64
        && (r.hi as i64) << f.left <= i32::MAX as i64;
    (r.lo == r.hi || (monotone && out(r.lo) == out(r.hi))).then(|| out(r.lo))
}

/// The inputs `lo..=hi` of a lane's stage `g` (non-decreasing, steps of at most one) that give
/// outputs `min..=max`, when both lie inside `(−limit, limit)`.
fn clamp_window(g: impl Fn(i32) -> i32, min: i32, max: i32, limit: i64) -> Option<(i32, i32)> {
    let lo = first_at_least(&g, min)?;
    let hi = first_at_least(|x| g(x).saturating_sub(1), max)?.checked_sub(1)?;
    (lo as i64 > -limit && (hi as i64) < limit && g(lo) == min && g(hi) == max).then_some((lo, hi))
}

impl Window4 {
    /// The layout of channels `f` (clamped to `min..=max` around zero point `zp`), each with the
    /// values it can reach where known, or `None`. A lane whose reachable values all give one
    /// output becomes a constant (zero factor and multiplier, the output in `add`), whatever its
    /// shifts; the other lanes need a multiplier below one and a right shift of at most
    /// [`MAX_WINDOW_RIGHT`]. The `x` clamp is left out when no lane needs it ([`Flags`]).
    fn new(f: &[FixedRequant], reach: &[Option<Reach>], zp: i32, min: i32, max: i32) -> Option<Window4> {
        if min > max {
            return None;
        }
        let signed = min < zp;
        let mut w = Window4 {
            lo: [0; 4],
            hi: [0; 4],
            factor: [0; 4],
            mult: [0; 4],
            add: [0; 4],
            below: [i32::MIN; 4],
            neg_amount: [0; 4],
            flags: Flags { signed, clamp_x: false, clamp_out: false },
        };
        // Per lane: whether its reach spills past its window (or it has none), whether x·F can
        // leave 32 bits, whether it has no window.
        let (mut spills, mut unsafe_x, mut windowless) = ([false; 4], [false; 4], [false; 4]);
        for (l, (f, r)) in f.iter().zip(reach).enumerate() {
            if let Some(v) = constant_output(*f, *r, zp, min, max) {
                w.add[l] = (v as i64) << 48;
                continue;
            }
            if f.left != 0 || f.multiplier <= 0 || f.right > MAX_WINDOW_RIGHT {
                return None;
            }
            let up = 17 - f.right;
            let limit = (1i64 << 31) >> up;
            unsafe_x[l] = !r.is_some_and(|r| r.lo as i64 > -limit && (r.hi as i64) < limit);
            let window = clamp_window(|x| f.apply(x).wrapping_add(zp), min, max, limit);
            let (lo, hi) = match window {
                Some(lohi) => lohi,
                None if !unsafe_x[l] => (i32::MIN, i32::MAX),
                None => return None,
            };
            windowless[l] = window.is_none();
            spills[l] = window.is_none() || !r.is_some_and(|r| lo <= r.lo && r.hi <= hi);
            let round = if f.right > 0 { 1i64 << (f.right - 1) } else { 0 };
            w.lo[l] = lo;
            w.hi[l] = hi;
            w.factor[l] = 1 << up;
            w.mult[l] = f.multiplier;
            w.add[l] = (((1i64 << 30) + (round << 31)) << up) + ((zp as i64) << 48);
            // SRDHM(x, m) < 0 exactly when x·m < -2^30, i.e. x < -⌊2^30 / m⌋.
            w.below[l] = if f.right > 0 { -((1i64 << 30) / f.multiplier as i64) as i32 } else { i32::MIN };
            w.neg_amount[l] = if signed { 1 << (16 - f.right) } else { 0 };
        }
        let clamp_x = unsafe_x.contains(&true);
        // Lanes the x clamp leaves unclamped: without it every one that spills, with it the
        // windowless ones.
        let unclamped = if clamp_x { windowless } else { spills };
        w.flags.clamp_x = clamp_x;
        w.flags.clamp_out = (min > -128 || max < 127) && unclamped.contains(&true);
        Some(w)
    }
}

impl Window4 {
    /// Lane `l` of the vector code, in scalar arithmetic (the twin tests compare it with the
    /// reference stage on every kind of input the lane can receive), with the clamp bounds.
    #[cfg(test)]
    pub(crate) fn apply_lane(&self, l: usize, x: i32, (min, max): (i32, i32)) -> i32 {
        let x = if self.flags.clamp_x { x.clamp(self.lo[l], self.hi[l]) } else { x };
        let neg = if self.flags.signed && x < self.below[l] { self.neg_amount[l] } else { 0 };
        let v = x.wrapping_mul(self.factor[l]) as i64 * self.mult[l] as i64 + self.add[l];
        // The saturating narrowing to int8, then the output clamp.
        let r = (((v >> 32) as i32 - neg) >> 16).clamp(-128, 127);
        if self.flags.clamp_out {
            r.clamp(min, max)
        } else {
            r
        }
    }
}

/// The smallest `x` with `g(x) >= target` for a non-decreasing `g` (`None` when there is none).
fn first_at_least(g: impl Fn(i32) -> i32, target: i32) -> Option<i32> {
    if g(i32::MAX) < target {
        return None;
    }
    let (mut lo, mut hi) = (i32::MIN as i64, i32::MAX as i64);
    while lo < hi {
        let mid = (lo + hi).div_euclid(2);
        if g(mid as i32) >= target {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo as i32)
}

#[derive(Clone, Debug, PartialEq)]
struct Group {
    mult: [i32; 4],
    /// `2^left` per lane.
    left_factor: [i32; 4],
    any_left: bool,
    /// `2^30 + 2^(right-1)·2^31` per lane (no second term when `right` is 0).
    add: [i64; 4],
    /// `2^31` where `right > 0`: subtracted when SRDHM's result is negative.
    neg_fix: [i64; 4],
    /// `31 + min(right)`.
    base_shift: u32,
    /// For each bit of the per-lane extra shift `right - min(right)`: its value and the lanes
    /// whose extra shift has that bit set.
    extra: Vec<(u32, [i32; 4])>,
}

impl Group {
    /// The general layout of four channels' fixed-point scales.
    fn new(f: &[FixedRequant]) -> Group {
        let min_right = f.iter().map(|f| f.right).min().unwrap_or(0);
        let mut grp = Group {
            mult: [0; 4],
            left_factor: [1; 4],
            any_left: f.iter().any(|f| f.left > 0),
            add: [0; 4],
            neg_fix: [0; 4],
            base_shift: 31 + min_right,
            extra: Vec::new(),
        };
        for (l, f) in f.iter().enumerate() {
            grp.mult[l] = f.multiplier;
            grp.left_factor[l] = 1i32.wrapping_shl(f.left);
            let round = if f.right > 0 { 1i64 << (f.right - 1) } else { 0 };
            grp.add[l] = (1i64 << 30) + (round << 31);
            grp.neg_fix[l] = if f.right > 0 { 1i64 << 31 } else { 0 };
        }
        for bit in 0..5 {
            let mut lanes = [0i32; 4];
            for (l, f) in f.iter().enumerate() {
                if (f.right - min_right) >> bit & 1 == 1 {
                    lanes[l] = -1;
                }
            }
            if lanes != [0; 4] {
                grp.extra.push((1 << bit, lanes));
            }
        }
        grp
    }
}

impl VecStage {
    /// The vector layout of `stage` for `channels` channels (`None` for no channels).
    pub fn new(stage: &OutputStage, channels: usize) -> Option<VecStage> {
        Self::with_ranges(stage, channels, &[])
    }

    /// [`VecStage::new`] knowing the values `acc + offset` each channel can reach (`reach[c]`;
    /// channels past `reach.len()` or `None` can reach any): channels that give one output
    /// whatever they reach become constants, and groups whose sums cannot overflow the window
    /// layout's 32-bit step skip its input clamp ([`Window4::new`]).
    pub fn with_ranges(stage: &OutputStage, channels: usize, reach: &[Option<Reach>]) -> Option<VecStage> {
        if channels == 0 {
            return None;
        }
        // One spare group, so eight channels can always be requantized from any group. (Every
        // channel of a fixed-point stage has its scale when channel 0 has one.)
        let Some(first) = stage.fixed(0) else { return Self::double(stage, channels) };
        let lane = |g: usize, l: usize| (g * 4 + l).min(channels - 1);
        let fixed =
            |g: usize| -> [FixedRequant; 4] { core::array::from_fn(|l| stage.fixed(lane(g, l)).unwrap_or(first)) };
        let group_count = channels.div_ceil(4) + 1;
        let groups = (0..group_count).map(|g| Group::new(&fixed(g))).collect();
        let windows = (0..group_count)
            .map(|g| {
                let r: [Option<Reach>; 4] = core::array::from_fn(|l| reach.get(lane(g, l)).copied().flatten());
                Window4::new(&fixed(g), &r, stage.out_zp, stage.min, stage.max)
            })
            .collect();
        Some(VecStage { groups, windows, doubles: Vec::new(), zp: stage.out_zp, min: stage.min, max: stage.max })
    }

    /// The layout of a double-precision stage: one scale per channel, the last repeated into a
    /// spare group (as for the fixed-point groups).
    fn double(stage: &OutputStage, channels: usize) -> Option<VecStage> {
        let scale = |c: usize| match stage.scales.get(if stage.scales.len() == 1 { 0 } else { c }) {
            Some(Rescale::Double(s)) => Some(*s),
            _ => None,
        };
        let doubles =
            (0..(channels.div_ceil(4) + 1) * 4).map(|c| scale(c.min(channels - 1))).collect::<Option<Vec<_>>>()?;
        let (zp, min, max) = (stage.out_zp, stage.min, stage.max);
        Some(VecStage { groups: Vec::new(), windows: Vec::new(), doubles, zp, min, max })
    }

    /// True for the fixed-point layouts ([`simd128::requant8`] applies only to those).
    pub fn is_fixed(&self) -> bool {
        self.doubles.is_empty()
    }
}

/// `out[c] = stage(acc[c] + offset[first + c])` for channels `first..first + acc.len()`, with the
/// vector twin where this build has one. `first` must be a multiple of 4 for the vector path.
pub fn row(acc: &[i32], offset: &[i32], stage: &OutputStage, vs: Option<&VecStage>, first: usize, out: &mut [i8]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if let Some(vs) = vs {
        if !vs.is_fixed() {
            simd128::row_double(acc, offset, vs, first, out);
            return;
        }
        if first.is_multiple_of(4) {
            simd128::row(acc, offset, vs, first, out);
            return;
        }
    }
    let _ = vs;
    row_reference(acc, offset, stage, first, out);
}

/// A GEMM tile's epilogue: for rows `r < rows` and channels `c < cols` (from `first`),
/// `out[r·ldo + c] = stage(acc[r][c] + offset[first + c])`, the per-channel
/// constants of full eight-channel tiles loaded once for all rows in the vector twin.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn tile(
    acc: &[[i32; 8]; 4],
    rows: usize,
    cols: usize,
    offset: &[i32],
    stage: &OutputStage,
    vs: Option<&VecStage>,
    first: usize,
    out: &mut [i8],
    ldo: usize,
) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if let Some(vs) = vs.filter(|v| v.is_fixed() && cols == 8 && first.is_multiple_of(4)) {
        simd128::tile8(acc, rows, &offset[first..first + 8], vs, first / 4, out, ldo);
        return;
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        row(&acc[..cols], offset, stage, vs, first, &mut out[r * ldo..r * ldo + cols]);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    use super::{Flags, Group, VecStage, Window4};
    use core::arch::wasm32::*;

    /// Writes the eight int8 results in `v`'s low bytes to `out[at..at + take]` (`take` ≤ 8): one
    /// 8-byte store for a whole block of channels, a copy through a buffer for a partial last one.
    ///
    /// # Safety
    /// When `take == 8`, `at + 8 ≤ out.len()` (callers assert their output's size once, outside
    /// their pixel loops).
    #[inline(always)]
    pub unsafe fn store8(v: v128, out: &mut [i8], at: usize, take: usize) {
        if take == 8 {
            // SAFETY: the caller's contract.
            unsafe { v128_store64_lane::<0>(v, out.as_mut_ptr().add(at) as *mut u64) };
        } else {
            let mut bytes = [0i8; 16];
            // SAFETY: a 16-byte store into a 16-byte array.
            unsafe { v128_store(bytes.as_mut_ptr() as *mut v128, v) };
            out[at..at + take].copy_from_slice(&bytes[..take]);
        }
    }

    #[inline(always)]
    fn ld<T>(a: &[T; 4]) -> v128 {
        // SAFETY: reads 16 bytes from a 4-element array of 4-byte values; no alignment needed.
        unsafe { v128_load(a.as_ptr() as *const v128) }
    }

    #[inline(always)]
    fn ld64(a: &[i64; 4], half: usize) -> v128 {
        // SAFETY: reads elements 2·half and 2·half + 1 of a 4-element array.
        unsafe { v128_load(a.as_ptr().add(2 * half) as *const v128) }
    }

    /// Requantizes four lanes of `x = acc + offset` (before zero point and clamping).
    #[inline(always)]
    pub(super) fn requant4(x: v128, g: &Group) -> v128 {
        let x = if g.any_left { i32x4_mul(x, ld(&g.left_factor)) } else { x };
        let m = ld(&g.mult);
        let limit = i64x2_splat(-(1i64 << 30));
        let fold = |ab: v128, h: usize| -> v128 {
            let neg = i64x2_lt(ab, limit);
            let b = i64x2_sub(i64x2_add(ab, ld64(&g.add, h)), v128_and(neg, ld64(&g.neg_fix, h)));
            i64x2_shr(b, g.base_shift)
        };
        let lo = fold(i64x2_extmul_low_i32x4(x, m), 0);
        let hi = fold(i64x2_extmul_high_i32x4(x, m), 1);
        let mut r = i32x4_shuffle::<0, 2, 4, 6>(lo, hi);
        for (s, lanes) in &g.extra {
            r = v128_bitselect(i32x4_shr(r, *s), r, ld(lanes));
        }
        r
    }

    /// Group `g` of a fixed-point stage on four lanes of `x = acc + offset`: its window layout
    /// where it has one, else the general layout; zero point added, clamped.
    #[inline(always)]
    fn four(x: v128, vs: &VecStage, g: usize) -> v128 {
        let (min, max) = (i32x4_splat(vs.min), i32x4_splat(vs.max));
        match &vs.windows[g] {
            Some(w) => {
                let r = window_apply(x, &window_consts(w), w.flags);
                if w.flags.clamp_out {
                    i32x4_min(i32x4_max(r, min), max)
                } else {
                    r
                }
            }
            None => i32x4_min(i32x4_max(i32x4_add(requant4(x, &vs.groups[g]), i32x4_splat(vs.zp)), min), max),
        }
    }

    /// [`super::tile`] for eight channels (groups `g` and `g + 1`) of a fixed-point stage: their
    /// constants loaded once ([`Block8`]), then every row requantized from registers.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn tile8(
        acc: &[[i32; 8]; 4],
        rows: usize,
        offset: &[i32],
        vs: &VecStage,
        g: usize,
        out: &mut [i8],
        ldo: usize,
    ) {
        let rq = Block8::new(vs, 4 * g, offset[..8].try_into().expect("eight offsets"));
        let [o0, o1] = rq.offsets();
        // SAFETY: acc[r] is [i32; 8]: the 16-byte loads at 0 and 4 fit.
        let load = |a: &[i32; 8], at: usize| unsafe { v128_load(a.as_ptr().add(at) as *const v128) };
        for (r, acc) in acc.iter().enumerate().take(rows) {
            let a0 = i32x4_add(load(acc, 0), o0);
            let a1 = i32x4_add(load(acc, 4), o1);
            let o = &mut out[r * ldo..r * ldo + 8];
            // SAFETY: `o` holds 8 bytes: the 8-byte lane store fits.
            unsafe { v128_store64_lane::<0>(rq.apply_offset(a0, a1), o.as_mut_ptr() as *mut u64) };
        }
    }

    /// A window-layout group's constants as vectors, in the order [`window_apply`] reads them.
    #[inline(always)]
    fn window_consts(w: &Window4) -> [v128; 8] {
        [
            ld(&w.lo),
            ld(&w.hi),
            ld(&w.below),
            ld(&w.neg_amount),
            ld(&w.factor),
            ld(&w.mult),
            ld64(&w.add, 0),
            ld64(&w.add, 1),
        ]
    }

    /// Four lanes of `acc + offset` (`x`) requantized with a window-layout group's constants
    /// (`neg` and the `x` clamp only where `f` asks for them); the output is not clamped to the
    /// stage's range: callers do that where [`Flags::clamp_out`] says so.
    ///
    /// The multipliers `g[5]` are read with a volatile load on every call. Callers apply one set of
    /// constants to many pixels; hoisted out of their loop, the multipliers' sign extension leaves
    /// LLVM a plain `i64x2.mul` of extended lanes instead of `i64x2.extmul_*_i32x4_s`, and V8
    /// lowers that to about nine x64 instructions instead of three (seen in the built module).
    #[inline(always)]
    fn window_apply(x: v128, g: &[v128; 8], f: Flags) -> v128 {
        let x = if f.clamp_x { i32x4_min(i32x4_max(x, g[0]), g[1]) } else { x };
        let xf = i32x4_mul(x, g[4]);
        // SAFETY: a read of an initialized v128 through a reference.
        let m = unsafe { core::ptr::read_volatile(&g[5]) };
        let lo = i64x2_add(i64x2_extmul_low_i32x4(xf, m), g[6]);
        let hi = i64x2_add(i64x2_extmul_high_i32x4(xf, m), g[7]);
        let high = i32x4_shuffle::<1, 3, 5, 7>(lo, hi);
        let high = if f.signed { i32x4_sub(high, v128_and(i32x4_lt(x, g[2]), g[3])) } else { high };
        i32x4_shr(high, 16)
    }

    /// Two groups' [`window_apply`] results narrowed to eight int8 values (low 8 bytes), clamped
    /// to `out`'s bounds (int8 splats of the stage's min and max) when given.
    #[inline(always)]
    fn narrow8(r0: v128, r1: v128, out: Option<[v128; 2]>) -> v128 {
        let v = i16x8_narrow_i32x4(r0, r1);
        let v = i8x16_narrow_i16x8(v, v);
        match out {
            Some([min, max]) => i8x16_min(i8x16_max(v, min), max),
            None => v,
        }
    }

    /// The int8 clamp [`narrow8`] applies after two groups: when either group asks for it.
    #[inline(always)]
    fn out_clamp(vs: &VecStage, f: [Flags; 2]) -> Option<[v128; 2]> {
        (f[0].clamp_out || f[1].clamp_out).then(|| [i8x16_splat(vs.min as i8), i8x16_splat(vs.max as i8)])
    }

    /// Eight channels' requantization with every per-channel constant loaded once: for loops
    /// that requantize many pixels of the same eight channels straight from registers (the direct
    /// convolution). [`Block8::apply`] gives [`requant8`] of `acc + offset` bit for bit.
    #[allow(
        clippy::large_enum_variant,
        reason = "one per block of eight channels, on the stack; a box would add a pointer chase per pixel"
    )]
    pub enum Block8<'a> {
        /// Both groups have the window layout: their constants as vectors, their steps, the
        /// offsets and the int8 output clamp ([`narrow8`]).
        Windows { consts: [[v128; 8]; 2], flags: [Flags; 2], offset: [v128; 2], out: Option<[v128; 2]> },
        /// Otherwise the general layout, from the stage.
        General { vs: &'a VecStage, first: usize, offset: [v128; 2] },
    }

    impl<'a> Block8<'a> {
        /// Channels `first..first + 8` (`first` a multiple of 4) of a fixed-point stage, with
        /// their eight offsets.
        pub fn new(vs: &'a VecStage, first: usize, offset: &[i32; 8]) -> Self {
            // SAFETY: two 16-byte loads from an 8-element i32 array.
            let offset = unsafe {
                let at = offset.as_ptr();
                [v128_load(at as *const v128), v128_load(at.add(4) as *const v128)]
            };
            let g = first / 4;
            if let (Some(w0), Some(w1)) = (&vs.windows[g], &vs.windows[g + 1]) {
                let (consts, flags) = ([window_consts(w0), window_consts(w1)], [w0.flags, w1.flags]);
                return Block8::Windows { consts, flags, offset, out: out_clamp(vs, flags) };
            }
            Block8::General { vs, first, offset }
        }

        /// The eight int8 results (low 8 bytes) of sums `a0` (channels 0..4) and `a1` (4..8).
        #[inline(always)]
        pub fn apply(&self, a0: v128, a1: v128) -> v128 {
            let [o0, o1] = self.offsets();
            self.apply_offset(i32x4_add(a0, o0), i32x4_add(a1, o1))
        }

        /// The eight offsets, for kernels that start their sums from them ([`Block8::apply_offset`]).
        #[inline(always)]
        pub fn offsets(&self) -> [v128; 2] {
            match self {
                Block8::Windows { offset, .. } | Block8::General { offset, .. } => *offset,
            }
        }

        /// [`Block8::apply`] on `N` pixels' sums at once: for the window layout each step runs
        /// across the pixels before the next, so the pixels' multiply latencies overlap and every
        /// constant is used `N` times per load (the depthwise 3×3 kernel's groups of pixels).
        #[inline(always)]
        pub fn apply_many<const N: usize>(&self, sums: &[(v128, v128); N]) -> [v128; N] {
            let [o0, o1] = self.offsets();
            self.apply_many_offset(&sums.map(|(a0, a1)| (i32x4_add(a0, o0), i32x4_add(a1, o1))))
        }

        /// [`Block8::apply_many`] of sums that already include the offsets (kernels that start
        /// their sums from [`Block8::offsets`]).
        #[inline(always)]
        pub fn apply_many_offset<const N: usize>(&self, sums: &[(v128, v128); N]) -> [v128; N] {
            let Block8::Windows { consts, flags, out, .. } = self else {
                return apply_each(self, sums);
            };
            let half = |h: usize| -> [v128; N] {
                let (g, f) = (&consts[h], flags[h]);
                let x: [v128; N] = core::array::from_fn(|p| {
                    let a = if h == 0 { sums[p].0 } else { sums[p].1 };
                    if f.clamp_x {
                        i32x4_min(i32x4_max(a, g[0]), g[1])
                    } else {
                        a
                    }
                });
                let xf: [v128; N] = core::array::from_fn(|p| i32x4_mul(x[p], g[4]));
                core::array::from_fn(|p| {
                    // SAFETY: a read of an initialized v128 through a reference, once per pixel:
                    // one read shared by the pixels leaves LLVM the sign extension to share too,
                    // and an `i64x2.mul` per pixel instead of extended multiplies (see
                    // window_apply).
                    let m = unsafe { core::ptr::read_volatile(&g[5]) };
                    let lo = i64x2_add(i64x2_extmul_low_i32x4(xf[p], m), g[6]);
                    let hi = i64x2_add(i64x2_extmul_high_i32x4(xf[p], m), g[7]);
                    let high = i32x4_shuffle::<1, 3, 5, 7>(lo, hi);
                    let high = if f.signed { i32x4_sub(high, v128_and(i32x4_lt(x[p], g[2]), g[3])) } else { high };
                    i32x4_shr(high, 16)
                })
            };
            let (a, b) = (half(0), half(1));
            core::array::from_fn(|p| narrow8(a[p], b[p], *out))
        }

        /// [`Block8::apply`] of sums that already include the offsets.
        #[inline(always)]
        pub fn apply_offset(&self, x0: v128, x1: v128) -> v128 {
            match self {
                Block8::Windows { consts, flags, out, .. } => {
                    narrow8(window_apply(x0, &consts[0], flags[0]), window_apply(x1, &consts[1], flags[1]), *out)
                }
                Block8::General { vs, first, .. } => requant8(x0, x1, vs, *first),
            }
        }
    }

    /// [`Block8::apply_offset`] pixel by pixel (the general layout: stages with left shifts), kept
    /// out of line so the inlined copies of [`Block8::apply_many`]'s callers stay small.
    #[inline(never)]
    fn apply_each<const N: usize>(rq: &Block8, sums: &[(v128, v128); N]) -> [v128; N] {
        core::array::from_fn(|p| rq.apply_offset(sums[p].0, sums[p].1))
    }

    /// Requantizes eight channels `first..first + 8` (`first` a multiple of 4) given as two
    /// vectors of `acc + offset`; the int8 results are in the low 8 bytes.
    #[inline(always)]
    pub fn requant8(a0: v128, a1: v128, vs: &VecStage, first: usize) -> v128 {
        let v = i16x8_narrow_i32x4(four(a0, vs, first / 4), four(a1, vs, first / 4 + 1));
        i8x16_narrow_i16x8(v, v)
    }

    /// Two lanes of `round(x · scale)` in double precision, rounding halves away from zero as
    /// `f64::round` does: `t = trunc(p)`, plus the sign of `p` where `|p − t| ≥ ½` (both steps
    /// exact), then converted with saturation as `as i32` does.
    #[inline(always)]
    fn round_scaled(x: v128, scales: v128) -> v128 {
        let p = f64x2_mul(f64x2_convert_low_i32x4(x), scales);
        let t = f64x2_trunc(p);
        let up = f64x2_ge(f64x2_abs(f64x2_sub(p, t)), f64x2_splat(0.5));
        let sign = v128_bitselect(f64x2_splat(-1.0), f64x2_splat(1.0), f64x2_lt(p, f64x2_splat(0.0)));
        i32x4_trunc_sat_f64x2_zero(f64x2_add(t, v128_and(up, sign)))
    }

    /// [`super::row`] for a double-precision stage ([`VecStage::is_fixed`] false): four channels
    /// at a time, any `first`.
    pub fn row_double(acc: &[i32], offset: &[i32], vs: &VecStage, first: usize, out: &mut [i8]) {
        let n = acc.len().min(out.len());
        let (offset, scales) = (&offset[first..first + n], &vs.doubles[first..]);
        assert!(scales.len() >= n.div_ceil(4) * 4, "double scales too short");
        let (zp, min, max) = (i32x4_splat(vs.zp), i32x4_splat(vs.min), i32x4_splat(vs.max));
        let mut c = 0;
        while c < n {
            let take = (n - c).min(4);
            let (mut a, mut o) = ([0i32; 4], [0i32; 4]);
            a[..take].copy_from_slice(&acc[c..c + take]);
            o[..take].copy_from_slice(&offset[c..c + take]);
            // SAFETY: 16-byte loads of 4-element arrays, and of scales[c..c + 4] (asserted above).
            let v = unsafe {
                let x = i32x4_add(v128_load(a.as_ptr() as *const v128), v128_load(o.as_ptr() as *const v128));
                let s = scales.as_ptr().add(c);
                let lo = round_scaled(x, v128_load(s as *const v128));
                let hi = round_scaled(i32x4_shuffle::<2, 3, 0, 1>(x, x), v128_load(s.add(2) as *const v128));
                let r = i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(lo, hi), zp);
                i32x4_min(i32x4_max(r, min), max)
            };
            let bytes = i8x16_narrow_i16x8(i16x8_narrow_i32x4(v, v), v);
            let mut b = [0i8; 16];
            // SAFETY: a 16-byte store into a 16-byte array.
            unsafe { v128_store(b.as_mut_ptr() as *mut v128, bytes) };
            out[c..c + take].copy_from_slice(&b[..take]);
            c += 4;
        }
    }

    pub fn row(acc: &[i32], offset: &[i32], vs: &VecStage, first: usize, out: &mut [i8]) {
        let n = acc.len().min(out.len());
        let offset = &offset[first..first + n];
        let mut c = 0;
        while c + 8 <= n {
            // SAFETY: c + 8 <= n bounds the 4-lane loads at c and c + 4 and the 8-byte store at c.
            unsafe {
                let a0 = i32x4_add(
                    v128_load(acc.as_ptr().add(c) as *const v128),
                    v128_load(offset.as_ptr().add(c) as *const v128),
                );
                let a1 = i32x4_add(
                    v128_load(acc.as_ptr().add(c + 4) as *const v128),
                    v128_load(offset.as_ptr().add(c + 4) as *const v128),
                );
                v128_store64_lane::<0>(requant8(a0, a1, vs, first + c), out.as_mut_ptr().add(c) as *mut u64);
            }
            c += 8;
        }
        if c < n {
            // The tail goes through zero-padded copies (the stage has a spare group for it).
            let take = n - c;
            let (mut a, mut o, mut bytes) = ([0i32; 8], [0i32; 8], [0i8; 16]);
            a[..take].copy_from_slice(&acc[c..n]);
            o[..take].copy_from_slice(&offset[c..n]);
            // SAFETY: loads of 4 lanes at 0 and 4 of 8-element arrays; a 16-byte store into 16 bytes.
            unsafe {
                let a0 = i32x4_add(v128_load(a.as_ptr() as *const v128), v128_load(o.as_ptr() as *const v128));
                let a1 =
                    i32x4_add(v128_load(a.as_ptr().add(4) as *const v128), v128_load(o.as_ptr().add(4) as *const v128));
                v128_store(bytes.as_mut_ptr() as *mut v128, requant8(a0, a1, vs, first + c));
            }
            out[c..n].copy_from_slice(&bytes[..take]);
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::fixedpoint::{quantize_multiplier, FixedRequant, Rescale};
    use crate::rng::Rng;

    #[test]
    fn vector_requant_equals_scalar() {
        let mut rng = Rng::new(21);
        for channels in [1usize, 3, 4, 7, 16, 33] {
            // Scales from 1e-9 to 4: right shifts 0..31 mixed within a group, and left shifts.
            let scales = (0..channels)
                .map(|_| Rescale::Fixed(quantize_multiplier(10f64.powf(rng.uniform() as f64 * 9.6 - 9.0))))
                .collect();
            let stage = OutputStage::new(scales, rng.below(256) as i32 - 128, -128, 100);
            let vs = VecStage::new(&stage, channels).unwrap();
            let offset: Vec<i32> = (0..channels).map(|_| rng.below(100_000) as i32 - 50_000).collect();
            for _ in 0..50 {
                let shift = rng.below(28) as u32;
                let acc: Vec<i32> = (0..channels).map(|_| (rng.next_u64() as i32) >> shift).collect();
                for first in (0..channels).step_by(4).take(3) {
                    let mut want = vec![0i8; channels - first];
                    row_reference(&acc[first..], &offset, &stage, first, &mut want);
                    let mut got = vec![0i8; channels - first];
                    row(&acc[first..], &offset, &stage, Some(&vs), first, &mut got);
                    assert_eq!(got, want, "{channels} channels from {first}");
                }
            }
        }
    }

    /// LiteRT's double-precision stage through the vector layout: halves (exact and near), both
    /// signs, saturation, per-tensor and per-channel scales, every `first`.
    #[test]
    fn double_requant_equals_scalar() {
        let mut rng = Rng::new(22);
        for channels in [1usize, 3, 4, 5, 8, 13] {
            for per_channel in [false, true] {
                let n_scales = if per_channel { channels } else { 1 };
                let scales =
                    (0..n_scales).map(|_| Rescale::Double(10f64.powf(rng.uniform() as f64 * 6.0 - 5.0))).collect();
                let stage = OutputStage::new(scales, rng.below(256) as i32 - 128, -128 + rng.below(50) as i32, 127);
                let vs = VecStage::new(&stage, channels).unwrap();
                assert!(!vs.is_fixed());
                let offset: Vec<i32> = (0..channels).map(|_| rng.below(1000) as i32 - 500).collect();
                for trial in 0..60 {
                    let acc: Vec<i32> = (0..channels)
                        .map(|c| match trial % 4 {
                            0 => (rng.next_u64() as i32) >> rng.below(32),
                            1 => [i32::MIN, i32::MAX, -1, 0, 1][c % 5],
                            // Accumulators whose product lands on (or next to) a half.
                            _ => {
                                let s = match stage.scales[if per_channel { c } else { 0 }] {
                                    Rescale::Double(s) => s,
                                    Rescale::Fixed(_) => unreachable!(),
                                };
                                let target = (rng.below(400) as f64 - 200.0) + 0.5;
                                (target / s).round() as i32 - offset[c] + trial % 3 - 1
                            }
                        })
                        .collect();
                    for first in 0..channels {
                        let mut want = vec![0i8; channels - first];
                        row_reference(&acc[first..], &offset, &stage, first, &mut want);
                        let mut got = vec![0i8; channels - first];
                        row(&acc[first..], &offset, &stage, Some(&vs), first, &mut got);
                        assert_eq!(got, want, "{channels} channels from {first}, trial {trial}");
                    }
                }
            }
        }
    }

    /// The tile epilogue on stages that mix groups with and without the window layout (a channel
    /// with a tiny scale or a left shift beside ordinary ones): every row count, both eight-channel
    /// tiles.
    #[test]
    fn tile_equals_reference_on_mixed_groups() {
        let mut rng = Rng::new(34);
        for trial in 0..60 {
            let (tiny, left) = (trial % 16, (trial * 5 + 3) % 16);
            let scales = (0..16)
                .map(|c| match c {
                    _ if c == tiny => 1e-9,
                    _ if c == left => 2.5,
                    _ => 0.0005 + rng.uniform() as f64 * 0.01,
                })
                .map(|s| Rescale::Fixed(quantize_multiplier(s)))
                .collect();
            let zp = rng.below(256) as i32 - 128;
            let stage = OutputStage::new(scales, zp, [-128, zp.max(-128)][trial % 2], 127);
            let vs = VecStage::new(&stage, 16).unwrap();
            assert!(vs.windows.iter().any(Option::is_some) && vs.windows.iter().any(Option::is_none));
            let offset: Vec<i32> = (0..16).map(|_| rng.below(20_000) as i32 - 10_000).collect();
            let mut acc = [[0i32; 8]; 4];
            acc.iter_mut().flatten().for_each(|a| *a = (rng.next_u64() as i32) >> (8 + rng.below(20)));
            for (rows, first) in (1..=4).flat_map(|r| [(r, 0), (r, 8)]) {
                let ldo = 11;
                let (mut want, mut got) = (vec![0i8; rows * ldo], vec![0i8; rows * ldo]);
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    row_reference(acc, &offset, &stage, first, &mut want[r * ldo..r * ldo + 8]);
                }
                tile(&acc, rows, 8, &offset, &stage, Some(&vs), first, &mut got, ldo);
                assert_eq!(got, want, "trial {trial}, {rows} rows from channel {first}");
            }
        }
    }

    /// The clamp-window layout, lane by lane in scalar arithmetic, against the reference stage:
    /// mixed shifts within a group, every activation clamp, inputs over the whole i32 range and
    /// around every window edge.
    #[test]
    fn window_layout_equals_reference() {
        let mut rng = Rng::new(33);
        let (mut used, mut signed) = (0, 0);
        for trial in 0..300 {
            let scales: Vec<_> = (0..4)
                .map(|_| Rescale::Fixed(quantize_multiplier(10f64.powf(rng.uniform() as f64 * 5.5 - 6.0))))
                .collect();
            let zp = rng.below(256) as i32 - 128;
            let (min, max) = match trial % 3 {
                0 => (-128, 127),
                1 => (zp.max(-128), 127),
                _ => (zp.max(-128), (zp + rng.below(100) as i32).min(127)),
            };
            let stage = OutputStage::new(scales, zp, min, max);
            let f: Vec<_> = (0..4).map(|l| stage.fixed(l).unwrap()).collect();
            let Some(w) = Window4::new(&f, &[None; 4], zp, min, max) else { continue };
            assert!(w.flags.clamp_x, "a window without reaches keeps its clamp");
            used += 1;
            signed += w.flags.signed as usize;
            for l in 0..4 {
                let mut xs: Vec<i32> = vec![i32::MIN, i32::MAX, 0, -1, 1];
                for edge in [w.lo[l], w.hi[l], w.below[l]] {
                    xs.extend((-3..=3).map(|d| edge.saturating_add(d)));
                }
                xs.extend((0..200).map(|_| (rng.next_u64() as i32) >> rng.below(32)));
                for x in xs {
                    assert_eq!(w.apply_lane(l, x, (min, max)), stage.apply(l, x) as i32, "x={x} lane {l} {f:?}");
                }
            }
        }
        assert!(used > 100, "the window layout applied to only {used} of 300 stages");
        assert!(signed > 20 && used - signed > 20, "{signed} of {used} windows kept the sign correction");
    }

    /// Lanes of multiplier 0 (a zero scale, or one below 2^-32) give the zero point, clamped,
    /// whatever they reach: the window layout takes them as constants without a reach, beside
    /// lanes that need their window, and equals the reference over the whole i32 range.
    #[test]
    fn zero_multipliers_are_constant_without_reaches() {
        let mut rng = Rng::new(47);
        for (zp, min, max) in [(-128, -128, 127), (5, 5, 127), (-3, -128, 127), (100, -20, 60)] {
            for zeros in [[true; 4], [true, false, true, false], [false, false, false, true]] {
                let scales: Vec<_> = zeros
                    .iter()
                    .map(|&z| Rescale::Fixed(quantize_multiplier(if z { [0.0, 1e-12][rng.below(2)] } else { 3e-3 })))
                    .collect();
                let stage = OutputStage::new(scales, zp, min, max);
                let f: Vec<_> = (0..4).map(|l| stage.fixed(l).unwrap()).collect();
                let w = Window4::new(&f, &[None; 4], zp, min, max).expect("a window layout");
                let mut xs = vec![i32::MIN, i32::MAX, 0, -1, 1];
                xs.extend((0..300).map(|_| (rng.next_u64() as i32) >> rng.below(32)));
                for (l, &zero) in zeros.iter().enumerate() {
                    assert_eq!(w.factor[l] == 0, zero, "lane {l} constant exactly when its multiplier is 0");
                    for &x in &xs {
                        assert_eq!(w.apply_lane(l, x, (min, max)), stage.apply(l, x) as i32, "x={x} lane {l} {f:?}");
                    }
                }
            }
        }
    }

    /// Weights `[4][k]` (random, channel `zero` all zero), biases, and inputs: per channel the
    /// two that give its lowest and highest sums (-128 or 127 by the sign of each weight), then
    /// random ones.
    fn reach_case(rng: &mut Rng, k: usize, zero: usize) -> (Vec<i8>, Vec<i32>, Vec<Vec<i8>>) {
        let w: Vec<i8> =
            (0..4 * k).map(|i| if i / k == zero { 0 } else { (rng.below(256) as i32 - 128) as i8 }).collect();
        let bias: Vec<i32> = (0..4).map(|_| rng.below(40_000) as i32 - 20_000).collect();
        let extreme = |row: &[i8], up: bool| row.iter().map(|&v| if (v > 0) == up { 127 } else { -128 }).collect();
        let mut inputs: Vec<Vec<i8>> =
            (0..4).flat_map(|j| [false, true].map(|up| extreme(&w[j * k..(j + 1) * k], up))).collect();
        inputs.extend((0..40).map(|_| (0..k).map(|_| (rng.below(256) as i32 - 128) as i8).collect()));
        (w, bias, inputs)
    }

    /// `reach` is exact: the extreme inputs meet its ends, random ones stay inside.
    #[test]
    fn reach_bounds_the_sums() {
        let mut rng = Rng::new(41);
        for (k, io) in [(1, 0), (7, 128), (16, -127), (64, 5)] {
            let (w, bias, inputs) = reach_case(&mut rng, k, 2);
            let reach = reachable(&w, 4, k, Some(&bias), io);
            for (j, r) in reach.iter().enumerate() {
                let r = r.expect("small sums fit in i32");
                let sums: Vec<i64> = inputs
                    .iter()
                    .map(|x| {
                        bias[j] as i64 + (0..k).map(|i| w[j * k + i] as i64 * (x[i] as i64 + io as i64)).sum::<i64>()
                    })
                    .collect();
                assert_eq!(sums.iter().min(), Some(&(r.lo as i64)), "k={k} channel {j}");
                assert_eq!(sums.iter().max(), Some(&(r.hi as i64)), "k={k} channel {j}");
            }
            assert_eq!(reach[2], Some(Reach { lo: bias[2], hi: bias[2] }), "an all-zero channel reaches its bias only");
        }
        // Sums that can leave i32 have no reach.
        assert_eq!(reach(vec![127i8; 140_000], 0, 0), None);
    }

    /// Stages prepared with reaches against [`row_reference`], on inputs spanning each channel's
    /// reach (ends included): all-zero channels with tiny scales (right shifts past the window
    /// layout's, constant lanes), channels at the overflow edge of the unclamped window (reaches
    /// just inside and just outside `±2^31 / F`), every clamp, groups with and without reaches.
    #[test]
    fn ranged_stages_equal_reference() {
        let mut rng = Rng::new(43);
        let (mut constants, mut unclamped, mut out_clamped) = (0, 0, 0);
        for trial in 0..400 {
            let channels = [4, 5, 8, 13, 16][trial % 5];
            let zp = rng.below(256) as i32 - 128;
            let (min, max) = match trial % 4 {
                0 => (-128, 127),
                1 => (zp.max(-128), 127),
                2 => (zp.max(-128), (zp + 40).min(127)),
                _ => (-100, 100),
            };
            let mut scales = Vec::new();
            let mut reach = Vec::new();
            for c in 0..channels {
                let kind = rng.below(6);
                let scale = match kind {
                    0 => 1e-9,                                         // right shift past 16
                    1 => 2.5,                                          // a left shift
                    _ => 10f64.powf(rng.uniform() as f64 * 4.0 - 6.0), // 1e-6 .. 1e-2
                };
                let f = FixedRequant::new(quantize_multiplier(scale));
                let r = match (kind, c % 3) {
                    (0, _) | (_, 0) if rng.below(3) == 0 => {
                        let v = rng.below(2_000_000) as i32 - 1_000_000;
                        Some(Reach { lo: v, hi: v })
                    }
                    (_, 1) if f.left == 0 && f.right <= MAX_WINDOW_RIGHT => {
                        // At the edge: |x·F| just below or at 2^31.
                        let limit = ((1i64 << 31) >> (17 - f.right)) as i32;
                        let edge = rng.below(3);
                        Some(Reach { lo: -limit + (edge != 0) as i32, hi: limit - 1 + (edge == 2) as i32 })
                    }
                    (_, 2) => {
                        let a = (rng.next_u64() as i32) >> rng.below(31);
                        let b = (rng.next_u64() as i32) >> rng.below(31);
                        Some(Reach { lo: a.min(b), hi: a.max(b) })
                    }
                    _ => None,
                };
                scales.push(Rescale::Fixed(quantize_multiplier(scale)));
                reach.push(r);
            }
            let stage = OutputStage::new(scales, zp, min, max);
            let vs = VecStage::with_ranges(&stage, channels, &reach).unwrap();
            for w in vs.windows.iter().flatten() {
                constants += w.factor.iter().filter(|&&f| f == 0).count();
                unclamped += !w.flags.clamp_x as usize;
                out_clamped += w.flags.clamp_out as usize;
            }
            let offset: Vec<i32> = (0..channels).map(|_| rng.below(1000) as i32 - 500).collect();
            for t in 0..30 {
                // Sums inside each channel's reach (its ends first), less the offset.
                let acc: Vec<i32> = (0..channels)
                    .map(|c| {
                        let x = match reach[c] {
                            Some(r) if t == 0 => r.lo,
                            Some(r) if t == 1 => r.hi,
                            Some(r) => {
                                let span = (r.hi as i64 - r.lo as i64 + 1) as u64;
                                (r.lo as i64 + (rng.next_u64() % span) as i64) as i32
                            }
                            None => (rng.next_u64() as i32) >> rng.below(32),
                        };
                        x.wrapping_sub(offset[c])
                    })
                    .collect();
                for first in (0..channels).step_by(4) {
                    let mut want = vec![0i8; channels - first];
                    row_reference(&acc[first..], &offset, &stage, first, &mut want);
                    let mut got = vec![0i8; channels - first];
                    row(&acc[first..], &offset, &stage, Some(&vs), first, &mut got);
                    assert_eq!(got, want, "trial {trial}, {channels} channels from {first}, {reach:?}");
                    // The window layout lane by lane (what the native build cannot run as vectors).
                    for (c, &a) in acc.iter().enumerate().skip(first).take(4) {
                        let Some(w) = &vs.windows[c / 4] else { continue };
                        let x = a.wrapping_add(offset[c]);
                        assert_eq!(
                            w.apply_lane(c % 4, x, (min, max)),
                            want[c - first] as i32,
                            "trial {trial} channel {c}"
                        );
                    }
                }
            }
        }
        assert!(constants > 100 && unclamped > 50 && out_clamped > 20, "{constants} {unclamped} {out_clamped}");
    }

    /// Scales from hostile files (left shifts of 32 and more wrap in the reference stage) with
    /// reaches: no panic, and any window layout still gives the reference's outputs.
    #[test]
    fn hostile_left_shifts_with_reaches() {
        for left in [31, 32, 40, 63, 64, 200] {
            let f = FixedRequant { multiplier: 1 << 30, left, right: 0 };
            for r in [Reach { lo: 3, hi: 3 }, Reach { lo: -5, hi: 7 }, Reach { lo: i32::MIN, hi: i32::MAX }] {
                let Some(w) = Window4::new(&[f; 4], &[Some(r); 4], 0, -128, 127) else { continue };
                for x in [r.lo, r.hi, ((r.lo as i64 + r.hi as i64) / 2) as i32] {
                    assert_eq!(w.apply_lane(0, x, (-128, 127)), f.apply(x).clamp(-128, 127), "left {left} {r:?} x={x}");
                }
            }
        }
    }
}
