//! Batch-1 int8 FULLY_CONNECTED (a GEMV) on i16 pairs (`i32x4.dot_i16x8_s`): one row of int8
//! inputs against every output channel, for the simd128 build and the relaxed build where the u8
//! relaxed dot is not exact (no VNNI).
//!
//! The GEMM's single-row path ([`super::super::gemm_i8::gemv_row`]) reads a row widened to i16 and
//! sums four panels of eight channels; here a block of [`BLOCK`] = 32 channels is summed over the
//! whole depth in eight vector registers, straight from the int8 input: per k-pair, the two input
//! bytes are loaded as one 16-bit splat and sign-extended (i16 lanes `x0 x1 x0 x1 …`, the pair
//! splat as one i32 per lane), then eight `dot_i16x8` against the block's eight weight vectors do
//! 2 k-steps × 32 channels. The block's sums are then requantized as a row
//! ([`crate::kernels::requant::row`]).
//!
//! Layout ([`PackedGemv`]): the weights as i16 in blocks of 32 channels, then the leftover
//! channels in blocks of [`TAIL`] = 8 (the last one padded with zero channels), each block
//! `[k-pair][channel][2]` over the depth rounded up to even (zero past `k`): a block starting at
//! channel `c0` of width `b` is `b·kp` values at `c0·kp`. Twice the int8 weights' bytes, packed once
//! at load.
//!
//! [`portable`] is the plain-loop twin over the same layout (the native engine's kernel); both are
//! tested against [`super::conv::fully_connected_reference`] on generated shapes.

use super::super::fixedpoint::OutputStage;
use super::super::requant::{reachable, VecStage};
use super::conv::channel_offsets;

/// Channels of a full block (eight vectors of four sums).
pub const BLOCK: usize = 32;
/// Channels of a leftover block (two vectors).
pub const TAIL: usize = 8;

/// Int8 weights `[n][k]` widened to i16 and packed in blocks over the whole depth (see the module
/// documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct PackedGemv {
    pub n: usize,
    pub k: usize,
    data: Vec<i16>,
}

impl PackedGemv {
    pub fn pack(w: &[i8], n: usize, k: usize) -> PackedGemv {
        assert!(w.len() >= n * k, "weights shorter than n·k");
        let kp = k.div_ceil(2) * 2;
        let mut data = vec![0i16; n.div_ceil(TAIL) * TAIL * kp];
        for (c0, width) in blocks(n) {
            let block = &mut data[c0 * kp..(c0 + width) * kp];
            for c in 0..width.min(n - c0) {
                for (kk, &v) in w[(c0 + c) * k..(c0 + c + 1) * k].iter().enumerate() {
                    block[(kk / 2 * width + c) * 2 + kk % 2] = v as i16;
                }
            }
        }
        PackedGemv { n, k, data }
    }

    /// The block of channels `c0..c0 + width` (as [`blocks`] yields them).
    fn block(&self, c0: usize, width: usize) -> &[i16] {
        let kp = self.k.div_ceil(2) * 2;
        &self.data[c0 * kp..(c0 + width) * kp]
    }
}

/// The blocks of `n` channels: `(first channel, width)`, full [`BLOCK`]s then [`TAIL`]s.
fn blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let full = n / BLOCK * BLOCK;
    let tails = (full..n).step_by(TAIL).map(|c0| (c0, TAIL));
    (0..full).step_by(BLOCK).map(|c0| (c0, BLOCK)).chain(tails)
}

/// A prepared batch-1 FULLY_CONNECTED: the packed weights, each channel's offset
/// `bias + input_offset·Σ_k w[j][k]` (as the GEMM's, [`channel_offsets`]) and the output stage with
/// its vector layout.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedGemv {
    pub weights: PackedGemv,
    offset: Vec<i32>,
    stage: OutputStage,
    vec: Option<VecStage>,
}

impl PreparedGemv {
    /// Weights `[n][k]`, `bias` and `input_offset` give each channel's offset
    /// (`bias + input_offset·Σ_k w[j][k]`) and its reach ([`reachable`]), which lets the vector
    /// stage skip steps no reachable sum needs.
    pub fn new(
        weights: &[i8],
        (n, k): (usize, usize),
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
    ) -> PreparedGemv {
        assert!(weights.len() >= n * k, "gemv: weights shorter than n·k");
        let vec = VecStage::with_ranges(&stage, n, &reachable(weights, n, k, bias, input_offset));
        let offset = channel_offsets(weights, n, k, bias, input_offset, false);
        PreparedGemv { weights: PackedGemv::pack(weights, n, k), offset, stage, vec }
    }
}

/// `out[j] = stage(Σ_k x[k]·w[j][k] + offset[j])` for the `n` channels, with the vector kernel
/// where this build has one.
pub fn gemv(x: &[i8], g: &PreparedGemv, out: &mut [i8]) {
    let w = &g.weights;
    assert!(x.len() >= w.k && out.len() >= w.n, "gemv: operands too short");
    let x = &x[..w.k];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    simd::gemv(x, g, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    portable(x, g, out);
}

/// The plain-loop twin: the same blocks and pairs, then [`crate::kernels::requant::row`] per
/// block. (Compiled into wasm builds only for the tests.)
#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
pub fn portable(x: &[i8], g: &PreparedGemv, out: &mut [i8]) {
    let (w, x) = (&g.weights, &x[..g.weights.k]);
    for (c0, width) in blocks(w.n) {
        let mut acc = [0i32; BLOCK];
        for (pair, wp) in w.block(c0, width).chunks_exact(2 * width).enumerate() {
            let x0 = x[2 * pair] as i32;
            let x1 = x.get(2 * pair + 1).map_or(0, |&v| v as i32);
            for (c, a) in acc[..width].iter_mut().enumerate() {
                *a = a.wrapping_add(x0 * wp[2 * c] as i32 + x1 * wp[2 * c + 1] as i32);
            }
        }
        let take = width.min(w.n - c0);
        super::super::requant::row(&acc[..take], &g.offset, &g.stage, g.vec.as_ref(), c0, &mut out[c0..c0 + take]);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::super::super::requant;
    use super::{blocks, PreparedGemv, BLOCK, TAIL};
    use core::arch::wasm32::*;

    /// [`super::gemv`] with the vector sums (kept out of line: one call per layer). A block's
    /// sums go through memory to the requantization of a row ([`requant::row`]): each channel's
    /// constants are used once, so requantizing straight from the registers (`Block8`) saves no
    /// loads, and its copies inlined per group of eight channels cost ~1 KB gzipped, measured no
    /// faster.
    #[inline(never)]
    pub(super) fn gemv(x: &[i8], g: &PreparedGemv, out: &mut [i8]) {
        let (w, mut acc) = (&g.weights, [0i32; BLOCK]);
        for (c0, width) in blocks(w.n) {
            let block = w.block(c0, width);
            if width == BLOCK {
                store(&mut acc, sums::<{ BLOCK / 4 }>(x, block));
            } else {
                store(&mut acc, sums::<{ TAIL / 4 }>(x, block));
            }
            let take = width.min(w.n - c0);
            requant::row(&acc[..take], &g.offset, &g.stage, g.vec.as_ref(), c0, &mut out[c0..c0 + take]);
        }
    }

    /// Stores `V` vectors of sums at the start of `acc`.
    #[inline(always)]
    fn store<const V: usize>(acc: &mut [i32; BLOCK], s: [v128; V]) {
        assert!(V * 4 <= BLOCK);
        for (v, s) in s.into_iter().enumerate() {
            // SAFETY: 16-byte stores at 4v < 4V ≤ BLOCK values of `acc` (asserted).
            unsafe { v128_store(acc.as_mut_ptr().add(4 * v) as *mut v128, s) };
        }
    }

    /// The sums of a block of `4·V` channels over the whole depth: per k-pair one 16-bit splat
    /// of two input bytes, sign-extended to the i16 pair in every 32-bit lane, and `V`
    /// `dot_i16x8` against the block's weight vectors.
    ///
    /// The weight loads address one base pointer per k-pair with constant offsets. LLVM's loop
    /// strength reduction otherwise gives each of the `V` loads its own pointer, incremented every
    /// step (V more adds per k-pair in the wasm, live across the loop); the base is XOR-ed with an
    /// opaque zero to keep its offsets out of that reduction.
    #[inline(always)]
    fn sums<const V: usize>(x: &[i8], block: &[i16]) -> [v128; V] {
        let (k, pairs) = (x.len(), x.len() / 2);
        assert!(block.len() >= k.div_ceil(2) * 8 * V, "gemv block shorter than its depth");
        let opaque = core::hint::black_box(0usize);
        let mut acc = [i32x4_splat(0); V];
        for p in 0..pairs {
            // SAFETY: 2p + 1 < k reads two input bytes in bounds; the block holds ⌈k/2⌉·8V i16, so
            // the V 8-lane loads at p·8V are in bounds (XOR with zero keeps the address). wasm
            // loads need no alignment.
            unsafe {
                let xv = i16x8_extend_low_i8x16(v128_load16_splat(x.as_ptr().add(2 * p) as *const u16));
                let base = (block.as_ptr().add(p * 8 * V) as usize ^ opaque) as *const i16;
                for (v, a) in acc.iter_mut().enumerate() {
                    *a = i32x4_add(*a, i32x4_dot_i16x8(xv, v128_load(base.add(8 * v) as *const v128)));
                }
            }
        }
        if k % 2 == 1 {
            // The last k alone: its pair's second weight is zero, the second lane too.
            let xv = i32x4_splat(x[k - 1] as i16 as u16 as i32);
            let wp = &block[pairs * 8 * V..(pairs + 1) * 8 * V];
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: `wp` holds 8V i16: the 8-lane load at 8v is in bounds.
                let wv = unsafe { v128_load(wp.as_ptr().add(8 * v) as *const v128) };
                *a = i32x4_add(*a, i32x4_dot_i16x8(xv, wv));
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::fixedpoint::{quantize_multiplier, Rescale};
    use crate::kernels::int8::conv::fully_connected_reference;
    use crate::rng::Rng;

    type Kernel = fn(&[i8], &PreparedGemv, &mut [i8]);

    /// The kernels this build has: the plain twin and [`gemv`] (the vector one on wasm).
    fn kernels() -> [(&'static str, Kernel); 2] {
        [("portable", portable), ("gemv", gemv)]
    }

    /// Stages: per channel and per tensor, small and large multipliers (the window and general
    /// vector layouts), LiteRT's double rescaling, clamps narrower than int8 (ReLU's at the zero
    /// point), extreme zero points.
    fn stages(rng: &mut Rng, n: usize) -> Vec<OutputStage> {
        let mut fixed = |lo: f64, span: f64, count: usize| -> Vec<Rescale> {
            (0..count).map(|_| Rescale::Fixed(quantize_multiplier(lo + rng.uniform() as f64 * span))).collect()
        };
        let (small, one, big) = (fixed(0.0002, 0.01, n), fixed(0.0002, 0.01, 1), fixed(0.5, 3.0, n));
        let big_one = fixed(0.5, 3.0, 1);
        vec![
            OutputStage::new(small.clone(), -5, -128, 127),
            OutputStage::new(one.clone(), 3, -100, 120),
            OutputStage::new(one.clone(), -128, -128, 127),
            OutputStage::new(one, 96, -128, 127),
            OutputStage::new(big, -5, -128, 127),
            OutputStage::new(big_one, 7, 7, 127),
            OutputStage::new(vec![Rescale::Double(0.003)], 2, -128, 127),
            OutputStage::new(small.clone(), -128, -128, 127),
            OutputStage::new(small, 127, 127, 127),
        ]
    }

    #[test]
    fn every_kernel_equals_the_reference_on_generated_shapes() {
        let mut rng = Rng::new(41);
        let mut cases = 0;
        for n in [1, 3, 7, 8, 9, 16, 31, 32, 33, 40, 63, 64, 65, 72, 100] {
            for k in [1, 2, 3, 5, 8, 15, 16, 17, 31, 32, 33, 64, 127, 640] {
                let x: Vec<i8> = (0..k).map(|_| rng.below(256) as i8).collect();
                // Channel 1 pruned (all zero: a constant output).
                let w: Vec<i8> = (0..n * k).map(|i| if i / k == 1 { 0 } else { rng.below(256) as i8 }).collect();
                let bias: Vec<i32> = (0..n).map(|_| rng.below(40000) as i32 - 20000).collect();
                for (s, stage) in stages(&mut rng, n).into_iter().enumerate() {
                    // Input zero points at both extremes and between.
                    let in_zp = [-128, 127, 5][(s + k) % 3];
                    let mut want = vec![0i8; n];
                    fully_connected_reference(1, k, -in_zp, &x, &w, 0, Some(&bias), &stage, &mut want);
                    let g = PreparedGemv::new(&w, (n, k), Some(&bias), -in_zp, stage.clone());
                    for (name, kernel) in kernels() {
                        let mut got = vec![0i8; n + 3];
                        kernel(&x, &g, &mut got);
                        assert_eq!(&got[..n], &want[..], "{name}: n={n} k={k} stage {s}");
                        assert_eq!(&got[n..], &[0; 3], "{name}: wrote past n={n}");
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 15 * 14 * 9 * 2);
    }

    #[test]
    fn blocks_cover_every_channel_once() {
        for n in 0..100 {
            let b: Vec<_> = blocks(n).collect();
            let covered: usize = b.iter().map(|&(_, w)| w).sum();
            assert_eq!(covered, n.div_ceil(TAIL) * TAIL, "n={n}");
            assert!(b.windows(2).all(|p| p[0].0 + p[0].1 == p[1].0), "n={n}: {b:?}");
        }
    }
}
