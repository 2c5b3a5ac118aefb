//! A double-precision output stage for the depthwise kernels, used only where it is proven equal to
//! TFLite's fixed-point one on every accumulator the layer can produce.
//!
//! TFLite's stage for a multiplier `m` with right shift `R` (no left shift) is
//! `zp + ⌊(x·m + 2^30 + (2^(R−1) − neg)·2^31) / 2^(31+R)⌋`, `neg` when SRDHM's result is negative
//! (`x·m < −2^30`): SRDHM rounds half up, the rounding divide half away from zero, and nested floor
//! divisions by powers of two compose. Where `neg` is 0 that is `⌊x·s + zp + 2^−(R+1) + ½⌋` with
//! `s = m·2^−(31+R)`, which we compute as `rint(acc·s + k)` in f64 with
//! `k = offset·s + zp + 2^−(R+1) + 2^−(R+32)` (the kernel's sums `acc` lack the per-channel
//! `offset`; the last term, half a step of `x·s`'s grid, turns `rint`'s ties-to-even into ties-up),
//! `rint` being the `+ 1.5·2^52` trick: the low 32 bits of the sum are the rounded integer.
//! Products and sums of that size are usually exact in f64, but neither that nor `neg` is assumed:
//! both functions are monotone in `acc`, so they are equal on the reachable range of `acc` exactly
//! when they agree at its low end and cross every output threshold at the same `acc` — which
//! [`prove`] checks, threshold by threshold, against the integer stage itself. Channels whose clamp
//! reaches below the zero point fail there (the `neg` rounding) and keep the integer stage.
//!
//! Per four channels the vector twin is two conversions, two multiplies and four additions of two
//! lanes and one shuffle, against the fixed-point window's clamp, 32-bit multiply, two extended
//! multiplies and four more operations; the clamp moves after the saturating narrowing to bytes.

use super::super::super::fixedpoint::{FixedRequant, OutputStage};

/// `1.5·2^52`: adding it rounds an f64 below `2^51` in magnitude to an integer (ties to even), which
/// then sits in the low 32 bits of the result's bits.
pub const MAGIC: f64 = 6_755_399_441_055_744.0;

/// Channels per block (the 3×3 kernel's block of eight).
pub const NB: usize = 8;

/// The stage's constants for blocks of eight channels, each block present only when all its
/// channels were proven (`None` blocks keep the integer stage).
#[derive(Clone, Debug, PartialEq)]
pub struct F64Stage {
    pub blocks: Vec<Option<Block>>,
    pub min: i8,
    pub max: i8,
}

/// `scale[c]` and `add[c]` of eight channels (unused channels of a last block: zeros).
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub scale: [f64; NB],
    pub add: [f64; NB],
}

/// One channel's result: `clamp(rint(acc·scale + add), min, max)`, the operations in the vector
/// twin's order (every step rounded as f64, so both give the same bits).
#[inline(always)]
pub fn apply(scale: f64, add: f64, acc: i32, min: i8, max: i8) -> i8 {
    let bits = ((acc as f64 * scale + add) + MAGIC).to_bits() as u32 as i32;
    bits.clamp(min as i32, max as i32) as i8
}

impl F64Stage {
    /// The stage for `c` channels whose kernel sums lie in `ranges[ch]` (inclusive) and get
    /// `offset[ch]` added before TFLite's stage; `None` when no block can use it (a stage that is
    /// not fixed-point, or no block whose eight channels all pass [`prove`]).
    pub fn new(stage: &OutputStage, c: usize, offset: &[i32], ranges: &[(i64, i64)]) -> Option<F64Stage> {
        let min = i8::try_from(stage.min).ok()?;
        let max = i8::try_from(stage.max).ok()?;
        if min > max || offset.len() < c || ranges.len() < c {
            return None;
        }
        let mut blocks = Vec::with_capacity(c.div_ceil(NB));
        for b0 in (0..c).step_by(NB) {
            let mut blk = Block { scale: [0.0; NB], add: [0.0; NB] };
            let mut ok = true;
            for ch in b0..c.min(b0 + NB) {
                let Some((s, k)) = prove(stage, ch, offset[ch], ranges[ch]) else {
                    ok = false;
                    break;
                };
                (blk.scale[ch - b0], blk.add[ch - b0]) = (s, k);
            }
            blocks.push(ok.then_some(blk));
        }
        blocks.iter().any(Option::is_some).then_some(F64Stage { blocks, min, max })
    }
}

/// The reachable sums of a channel whose taps have weights `w` against int8 inputs (any value
/// in `−128..=127`, padding included): `(Σ min(−128·w, 127·w), Σ max(…))`.
pub fn sum_range(w: impl Iterator<Item = i8>) -> (i64, i64) {
    w.fold((0, 0), |(lo, hi), w| {
        let (a, b) = (-128 * w as i64, 127 * w as i64);
        (lo + a.min(b), hi + a.max(b))
    })
}

/// `(scale, add)` for channel `ch` when `clamp(rint(acc·scale + add))` equals
/// `stage.apply(ch, acc + offset)` for every `acc` in `range`; `None` otherwise (or when the
/// stage has a left shift, a non-positive multiplier, or sums that would wrap).
pub fn prove(stage: &OutputStage, ch: usize, offset: i32, (lo, hi): (i64, i64)) -> Option<(f64, f64)> {
    let f = stage.fixed(ch)?;
    if f.left != 0 || f.multiplier <= 0 || f.right > 30 || lo > hi {
        return None;
    }
    let (xlo, xhi) = (lo + offset as i64, hi + offset as i64);
    if xlo < i32::MIN as i64 || xhi > i32::MAX as i64 {
        return None;
    }
    let r = f.right as i32;
    let s = f.multiplier as f64 * pow2(-31 - r);
    // The rounding divide's half (none without a right shift), and half a grid step of `x·s`.
    let half = if r > 0 { pow2(-r - 1) } else { 0.0 };
    let k = offset as f64 * s + stage.out_zp as f64 + half + pow2(-r - 32);
    // The f64 side is monotone only while its rounded value fits in 32 bits: check both ends.
    let t = |acc: i64| acc as f64 * s + k;
    if !(t(lo).abs() < pow2(30) && t(hi).abs() < pow2(30)) {
        return None;
    }
    if exact(f, stage, offset, (lo, hi), (t(lo), t(hi))) {
        return Some((s, k));
    }
    let (min, max) = (stage.min as i8, stage.max as i8);
    let h = |acc: i64| apply(s, k, acc as i32, min, max) as i32;
    let g = |acc: i64| stage.apply(ch, (acc + offset as i64) as i32) as i32;
    // Both sides are non-decreasing: equal at both ends and stepping up at the same `acc` for
    // every value in between, they are equal everywhere (the high end rules out a step of `h`
    // past the last one `g` takes).
    if g(lo) != h(lo) || g(hi) != h(hi) {
        return None;
    }
    let mut prev = lo;
    for target in g(lo) + 1..=g(hi) {
        let at = crossing(f, stage.out_zp, offset, target, prev, hi, &g);
        if h(at) < target || h(at - 1) >= target {
            return None;
        }
        prev = at;
    }
    Some((s, k))
}

/// Whether the f64 stage is equal to the fixed-point one by construction, without a search. With
/// `|acc|` and `|offset|` below `2^22`, `acc·m` and `offset·m` are below `2^53`; every value the
/// stage computes is then a multiple of `2^−(R+32)`, and below `2^(21−R)` in magnitude (checked:
/// `k`'s partial sums and `t` at both ends), so every step is exact. `t + ½` is never an integer
/// (its numerator in those units is odd), so `rint(t) = ⌊t + ½⌋`, the positive branch's closed
/// form. Where a reachable `x` takes the negative branch, a clamp with `min ≥ zp` gives `min` on
/// both sides (both unclamped results are at most `zp` there); otherwise the search decides.
fn exact(f: FixedRequant, stage: &OutputStage, offset: i32, (lo, hi): (i64, i64), (tlo, thi): (f64, f64)) -> bool {
    let (r, m) = (f.right as i32, f.multiplier as i64);
    if r > 20 || lo.abs().max(hi.abs()) >= 1 << 22 || (offset as i64).abs() >= 1 << 22 {
        return false;
    }
    let bound = pow2(21 - r);
    let k_parts = (offset as f64 * m as f64 * pow2(-31 - r)).abs() + 129.0;
    let fits = k_parts < bound && tlo.abs() < bound && thi.abs() < bound;
    let positive = (lo + offset as i64) * m + (1 << 30) >= 0;
    fits && (positive || stage.min >= stage.out_zp)
}

/// `2^e`, exactly (`e` in the normal range).
fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// The first `acc` in `(from, to]` with `g(acc) ≥ target` (`g` non-decreasing, `g(to) ≥ target`):
/// from the closed form of the positive branch, corrected by a few steps, or a binary search.
fn crossing(f: FixedRequant, zp: i32, offset: i32, target: i32, from: i64, to: i64, g: &impl Fn(i64) -> i32) -> i64 {
    // Estimated in f64 (no 128-bit division in the module); the steps and the search correct it.
    let r = f.right as i32;
    let num = (target - zp) as f64 * pow2(31 + r) - pow2(30) - if r > 0 { pow2(30 + r) } else { 0.0 };
    let guess = ((num / f.multiplier as f64).ceil() as i64).saturating_sub(offset as i64);
    let mut at = guess.clamp(from + 1, to);
    for _ in 0..4 {
        if g(at) < target {
            at += 1;
        } else if at > from + 1 && g(at - 1) >= target {
            at -= 1;
        } else {
            return at;
        }
        at = at.clamp(from + 1, to);
    }
    let (mut a, mut b) = (from + 1, to);
    while a < b {
        let mid = a + (b - a) / 2;
        if g(mid) >= target {
            b = mid;
        } else {
            a = mid + 1;
        }
    }
    a
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! The stage on eight channels' sums held in two vectors.
    use super::{Block, F64Stage, MAGIC};
    use core::arch::wasm32::*;

    /// A block's constants as vectors: scales and additions per pair of channels, the clamp.
    #[derive(Clone, Copy)]
    pub struct Consts {
        scale: [v128; 4],
        add: [v128; 4],
        min: v128,
        max: v128,
        clamp: bool,
    }

    impl Consts {
        pub fn new(b: &Block, st: &F64Stage) -> Consts {
            let pair = |a: &[f64; 8], i: usize| f64x2(a[2 * i], a[2 * i + 1]);
            Consts {
                scale: core::array::from_fn(|i| pair(&b.scale, i)),
                add: core::array::from_fn(|i| pair(&b.add, i)),
                min: i8x16_splat(st.min),
                max: i8x16_splat(st.max),
                clamp: st.min > i8::MIN || st.max < i8::MAX,
            }
        }

        /// The eight int8 results (low 8 bytes) of sums `lo` (channels 0..4) and `hi` (4..8).
        #[inline(always)]
        pub fn apply(&self, lo: v128, hi: v128) -> v128 {
            let magic = f64x2_splat(MAGIC);
            let two = |x: v128, i: usize| {
                let p = f64x2_mul(f64x2_convert_low_i32x4(x), self.scale[i]);
                f64x2_add(f64x2_add(p, self.add[i]), magic)
            };
            let four = |x: v128, i: usize| {
                let up = i32x4_shuffle::<2, 3, 2, 3>(x, x);
                i32x4_shuffle::<0, 2, 4, 6>(two(x, i), two(up, i + 1))
            };
            let v = i16x8_narrow_i32x4(four(lo, 0), four(hi, 2));
            let v = i8x16_narrow_i16x8(v, v);
            if self.clamp {
                i8x16_min(i8x16_max(v, self.min), self.max)
            } else {
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::fixedpoint::{quantize_multiplier, Rescale};
    use crate::rng::Rng;

    fn stage(scales: &[f64], zp: i32, min: i32, max: i32) -> OutputStage {
        OutputStage::new(scales.iter().map(|&s| Rescale::Fixed(quantize_multiplier(s))).collect(), zp, min, max)
    }

    /// Every accumulator of a (small) range through both stages, for a proven channel; a refused
    /// one must show a difference somewhere or be outside what the proof takes.
    fn exhaustive(st: &OutputStage, ch: usize, offset: i32, range: (i64, i64)) -> bool {
        let proven = prove(st, ch, offset, range);
        if let Some((s, k)) = proven {
            for acc in range.0..=range.1 {
                let want = st.apply(ch, (acc + offset as i64) as i32);
                assert_eq!(apply(s, k, acc as i32, st.min as i8, st.max as i8), want, "acc {acc} {st:?}");
            }
        }
        proven.is_some()
    }

    /// ReLU-type clamps (min at or above the zero point) over random scales, offsets and ranges:
    /// proven, and equal on every accumulator; clamps below the zero point are refused.
    #[test]
    fn proven_channels_equal_fixed_point_everywhere() {
        let mut rng = Rng::new(41);
        let (mut relu, mut proven, mut signed_refused) = (0, 0, 0);
        for trial in 0..120 {
            let scale = 10f64.powf(rng.uniform() as f64 * 2.5 - 3.0);
            let zp = rng.below(256) as i32 - 128;
            let is_relu = trial % 2 == 0;
            let (min, max) = if is_relu { (zp, 127) } else { (-128, 127) };
            let st = stage(&[scale], zp, min, max);
            let offset = rng.below(200_000) as i32 - 100_000;
            // Sums whose outputs reach from well below the zero point to well above it.
            let span = (127.0 / scale) as i64 * 2;
            let lo = -(span / 2 + rng.below(span as usize / 2) as i64) - offset as i64;
            let ok = exhaustive(&st, 0, offset, (lo, lo + span));
            relu += is_relu as usize;
            proven += (ok && is_relu) as usize;
            signed_refused += (!ok && !is_relu) as usize;
        }
        assert!(proven * 10 >= relu * 9, "only {proven} of {relu} ReLU-clamped channels proven");
        // A clamp below the zero point meets the half-away-from-zero rounding of negative results.
        assert!(signed_refused > 20, "{signed_refused} refused");
    }

    /// Power-of-two scales put TFLite's rounding ties on reachable accumulators: the ties-up term
    /// must keep them equal.
    #[test]
    fn ties_round_up_as_tflite() {
        for (scale, zp) in [(1.0 / 64.0, -128), (1.0 / 1024.0, -5), (0.25, 0)] {
            let st = stage(&[scale], zp, zp, 127);
            assert!(exhaustive(&st, 0, 17, (-3000, 140_000)), "{scale}");
        }
    }

    /// Channels outside the closed form's bounds (a right shift above 20, sums near 2^22) go through
    /// the threshold search, and are still equal wherever it accepts them.
    #[test]
    fn search_proves_what_the_closed_form_leaves() {
        let tiny = stage(&[3e-7], -128, -128, 127);
        assert!(tiny.fixed(0).unwrap().right > 20);
        assert!(exhaustive(&tiny, 0, 5, (-300_000, 600_000)));
        let wide = stage(&[0.00002], 10, 10, 127);
        assert!(exhaustive(&wide, 0, -4_000_000, (3_000_000, 5_000_000)));
    }

    /// Refusals: left shifts, sums that wrap, and a narrow range gets only its own thresholds.
    #[test]
    fn refuses_what_it_cannot_prove() {
        let big = stage(&[3.5], 0, 0, 127);
        assert!(prove(&big, 0, 0, (-10, 10)).is_none());
        let st = stage(&[0.01], -128, -128, 127);
        assert!(prove(&st, 0, i32::MAX - 5, (0, 10)).is_none());
        assert!(exhaustive(&st, 0, 300, (-50, 50)));
        let double = OutputStage::new(vec![Rescale::Double(0.01)], 0, 0, 127);
        assert!(prove(&double, 0, 0, (0, 10)).is_none());
        let narrow = stage(&[0.01], 3, 3, 40);
        assert!(exhaustive(&narrow, 0, -20, (-60_000, 60_000)));
    }

    /// Only the top of a range differs: `x = 5` times `m ≡ (2^30 − 1)·5⁻¹ (mod 2^31)` is one unit
    /// below a rounding threshold, and sums near 2^30 cancelled by the offset lose that unit in f64,
    /// so the f64 stage steps up at the last sum with no threshold of the fixed-point stage between
    /// the ends. Found by searching such sums; the check at the high end must refuse it.
    #[test]
    fn refuses_a_step_at_the_top_end_alone() {
        let m = 1_932_735_283;
        let st = stage(&[m as f64 * pow2(-31)], -127, -128, 127);
        assert_eq!(st.fixed(0).map(|f| (f.multiplier, f.right)), Some((m, 0)));
        let (acc, offset) = (1_073_738_824i64, -1_073_738_819);
        assert_eq!((acc + offset as i64) * m as i64 % (1 << 31), (1 << 30) - 1);
        let below = (acc - 1, acc - 1);
        let (s, k) = prove(&st, 0, offset, below).expect("the sum below is proven");
        let g = |a: i64| st.apply(0, (a + offset as i64) as i32);
        assert_eq!(g(acc - 1), g(acc), "no threshold of the fixed-point stage between the ends");
        assert_ne!(apply(s, k, acc as i32, -128, 127), g(acc), "the f64 stage steps at the top");
        assert!(prove(&st, 0, offset, (acc - 1, acc)).is_none());
    }

    #[test]
    fn blocks_need_every_channel() {
        // Channel 9 has a left shift: block 1 keeps the integer stage, block 0 is proven.
        let mut scales = vec![0.003; 12];
        scales[9] = 2.0;
        let st = stage(&scales, -128, -128, 127);
        let f = F64Stage::new(&st, 12, &[100; 12], &[(-20_000, 20_000); 12]).unwrap();
        assert!(f.blocks[0].is_some() && f.blocks[1].is_none());
        assert_eq!(sum_range([2i8, -3].into_iter()), (-128 * 2 - 3 * 127, 127 * 2 + 3 * 128));
    }
}
