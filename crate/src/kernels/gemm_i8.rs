//! Int8 matrix products for CONV_2D (after im2col) and FULLY_CONNECTED, with int32 accumulation.
//!
//! `acc[i][j] = Σ_k a[i][k] · w[j][k]`; the epilogue then adds a per-output offset (bias plus the
//! input zero-point correction) and requantizes ([`super::requant`]).
//!
//! Layout ("c2", as XNNPACK's wasm kernels use): activations arrive widened to i16, weights are
//! packed once in panels of [`NR`] = 8 output channels, `k` padded to even, each k-pair stored as
//! `[channel][2]` i16. The wasm micro-kernel broadcasts a row's k-pair (one i32) and feeds
//! `i32x4.dot_i16x8_s` with two weight vectors, so a 4×8 tile of int32 sums stays in eight vector
//! registers with no horizontal reduction, whatever `k` is.
//!
//! Versions: [`reference`] (plain loops over int8), [`portable_micro`] and the wasm simd128 twin,
//! all tested against the reference on tile edges and leftovers.

use super::fixedpoint::OutputStage;
use super::requant::{self, VecStage};

pub const NR: usize = 8;
pub const MR: usize = 4;

/// Int8 weights `[n][k]` packed for the micro-kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedI8 {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to even: the length activation rows must be readable for.
    pub kp: usize,
    data: Vec<i16>,
    /// Σ_k w[j][k] for each output j.
    pub row_sums: Vec<i32>,
}

impl PackedI8 {
    pub fn pack(w: &[i8], n: usize, k: usize) -> PackedI8 {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        let kp = k.div_ceil(2) * 2;
        let panels = n.div_ceil(NR);
        let mut data = vec![0i16; panels * kp * NR];
        for p in 0..panels {
            for j in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + j) * k..(p * NR + j + 1) * k];
                for (kk, &v) in row.iter().enumerate() {
                    data[((p * (kp / 2) + kk / 2) * NR + j) * 2 + kk % 2] = v as i16;
                }
            }
        }
        let row_sums = (0..n).map(|j| w[j * k..(j + 1) * k].iter().map(|&v| v as i32).sum()).collect();
        PackedI8 { n, k, kp, data, row_sums }
    }

    fn panel(&self, p: usize) -> &[i16] {
        &self.data[p * self.kp * NR..(p + 1) * self.kp * NR]
    }
}

/// The epilogue: per-output offsets and the output stage (with its vector layout, if any).
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Per output: bias plus the input zero-point correction.
    pub offset: &'a [i32],
    pub stage: &'a OutputStage,
    pub vec: Option<&'a VecStage>,
}

/// Plain loops over unpacked int8 `w` (`[n][k]`) and int8 `a`: the ground truth.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    m: usize,
    n: usize,
    k: usize,
    a: &[i8],
    lda: usize,
    w: &[i8],
    rq: Requant,
    out: &mut [i8],
    ldo: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0i32;
            for kk in 0..k {
                acc = acc.wrapping_add(a[i * lda + kk] as i32 * w[j * k + kk] as i32);
            }
            out[i * ldo + j] = rq.stage.apply(j, acc.wrapping_add(rq.offset[j]));
        }
    }
}

/// A micro-kernel over rows of `A` and a panel of `W`: accumulates `MR` rows (each readable for
/// the packed `k`) against one panel of `NR` channels.
pub type MicroOf<A, W> = fn(k: usize, rows: [&[A]; MR], panel: &[W], acc: &mut [[i32; NR]; MR]);

/// This module's micro-kernels: i16 rows (each readable for `kp` values) against an i16 panel.
pub type Micro = MicroOf<i16, i16>;

pub fn portable_micro(kp: usize, rows: [&[i16]; MR], panel: &[i16], acc: &mut [[i32; NR]; MR]) {
    let panel = &panel[..kp * NR];
    let rows = [&rows[0][..kp], &rows[1][..kp], &rows[2][..kp], &rows[3][..kp]];
    for (pair, w) in panel.chunks_exact(2 * NR).enumerate() {
        for r in 0..MR {
            let (x0, x1) = (rows[r][2 * pair] as i32, rows[r][2 * pair + 1] as i32);
            for c in 0..NR {
                acc[r][c] = acc[r][c].wrapping_add(x0 * w[2 * c] as i32 + x1 * w[2 * c + 1] as i32);
            }
        }
    }
}

/// The product of `m` i16 rows of `a` (stride `lda`, each readable for `w.kp` values, zero past
/// `w.k`) with the packed weights, requantized into `out` (stride `ldo`).
#[allow(clippy::too_many_arguments)]
pub fn tiled(m: usize, a: &[i16], lda: usize, w: &PackedI8, rq: Requant, out: &mut [i8], ldo: usize, micro: Micro) {
    tile_loop(m, w.n, a, lda, w.kp, |p| w.panel(p), rq, out, ldo, micro);
}

/// The tiling both int8 GEMMs share: rows of `a` (each readable for `klen` elements) in groups of
/// [`MR`] against each panel of [`NR`] channels that `panel` returns, the `MR`×`NR` tile summed
/// by `micro`, then requantized into `out`. A last group with fewer rows repeats row 0 in the
/// spare slots and drops their sums.
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_loop<'w, A, W: 'w>(
    m: usize,
    n: usize,
    a: &[A],
    lda: usize,
    klen: usize,
    panel: impl Fn(usize) -> &'w [W],
    rq: Requant,
    out: &mut [i8],
    ldo: usize,
    micro: MicroOf<A, W>,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= klen && a.len() >= (m - 1) * lda + klen, "a rows must be padded to the packed k");
    assert!(out.len() >= (m - 1) * ldo + n, "out too short");
    assert!(rq.offset.len() >= n, "offsets too short");
    for i0 in (0..m).step_by(MR) {
        let rows_here = MR.min(m - i0);
        let row = |r: usize| {
            let i = i0 + if r < rows_here { r } else { 0 };
            &a[i * lda..i * lda + klen]
        };
        let rows = [row(0), row(1), row(2), row(3)];
        for p in 0..n.div_ceil(NR) {
            let mut acc = [[0i32; NR]; MR];
            micro(klen, rows, panel(p), &mut acc);
            let cols = NR.min(n - p * NR);
            for (r, acc_row) in acc.iter().enumerate().take(rows_here) {
                let o = &mut out[(i0 + r) * ldo + p * NR..(i0 + r) * ldo + p * NR + cols];
                requant::row(&acc_row[..cols], rq.offset, rq.stage, rq.vec, p * NR, o);
            }
        }
    }
}

/// The best micro-kernel this build has.
pub fn best_micro() -> Micro {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd128::micro
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        portable_micro
    }
}

/// The product with the best available micro-kernel.
pub fn gemm(m: usize, a: &[i16], lda: usize, w: &PackedI8, rq: Requant, out: &mut [i8], ldo: usize) {
    tiled(m, a, lda, w, rq, out, ldo, best_micro());
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! wasm simd128 twin: per k-pair, each row's two i16 values are broadcast as one i32 and
    //! multiplied against 8 channels' weight pairs with two `i32x4.dot_i16x8_s`.
    use super::{MR, NR};
    use core::arch::wasm32::*;

    pub fn micro(kp: usize, rows: [&[i16]; MR], panel: &[i16], acc: &mut [[i32; NR]; MR]) {
        let panel = &panel[..kp * NR];
        let rows = [&rows[0][..kp], &rows[1][..kp], &rows[2][..kp], &rows[3][..kp]];
        let z = i32x4_splat(0);
        let (mut a0, mut a1, mut a2, mut a3) = ((z, z), (z, z), (z, z), (z, z));
        let pairs = kp / 2;
        for p in 0..pairs {
            // SAFETY: the panel holds kp·NR = pairs·16 i16, so both 8-lane loads at p·16 are in
            // bounds; each row holds kp = 2·pairs i16, so the 4-byte load at 2p is in bounds.
            // wasm loads need no alignment.
            unsafe {
                let wp = panel.as_ptr().add(p * 2 * NR);
                let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(8) as *const v128));
                let x0 = v128_load32_splat(rows[0].as_ptr().add(2 * p) as *const u32);
                let x1 = v128_load32_splat(rows[1].as_ptr().add(2 * p) as *const u32);
                let x2 = v128_load32_splat(rows[2].as_ptr().add(2 * p) as *const u32);
                let x3 = v128_load32_splat(rows[3].as_ptr().add(2 * p) as *const u32);
                a0 = (i32x4_add(a0.0, i32x4_dot_i16x8(x0, w0)), i32x4_add(a0.1, i32x4_dot_i16x8(x0, w1)));
                a1 = (i32x4_add(a1.0, i32x4_dot_i16x8(x1, w0)), i32x4_add(a1.1, i32x4_dot_i16x8(x1, w1)));
                a2 = (i32x4_add(a2.0, i32x4_dot_i16x8(x2, w0)), i32x4_add(a2.1, i32x4_dot_i16x8(x2, w1)));
                a3 = (i32x4_add(a3.0, i32x4_dot_i16x8(x3, w0)), i32x4_add(a3.1, i32x4_dot_i16x8(x3, w1)));
            }
        }
        for (r, (lo, hi)) in [a0, a1, a2, a3].into_iter().enumerate() {
            // SAFETY: acc[r] is [i32; 8]: two 16-byte stores fit.
            unsafe {
                v128_store(acc[r].as_mut_ptr() as *mut v128, lo);
                v128_store(acc[r].as_mut_ptr().add(4) as *mut v128, hi);
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

    fn micros() -> Vec<Micro> {
        #[allow(unused_mut)]
        let mut v: Vec<Micro> = vec![portable_micro];
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        v.push(simd128::micro);
        v
    }

    fn check(m: usize, n: usize, k: usize, micro: Micro) {
        let mut rng = Rng::new((m * 1000 + n * 10 + k) as u64);
        let kp = k.div_ceil(2) * 2;
        let lda = kp + 6;
        let mut a8 = vec![0i8; m * lda];
        for i in 0..m {
            for kk in 0..k {
                a8[i * lda + kk] = (rng.below(256) as i32 - 128) as i8;
            }
        }
        let a16: Vec<i16> = a8.iter().map(|&v| v as i16).collect();
        let w: Vec<i8> = (0..n * k).map(|_| (rng.below(255) as i32 - 127) as i8).collect();
        let offset: Vec<i32> = (0..n).map(|_| rng.below(20000) as i32 - 10000).collect();
        let scales: Vec<_> =
            (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.0005 + rng.uniform() as f64 * 0.01))).collect();
        let stage = OutputStage::new(scales, -5, -100, 120);
        let vs = VecStage::new(&stage, n);
        let ldo = n + 3;
        let mut want = vec![0i8; m * ldo];
        reference(m, n, k, &a8, lda, &w, Requant { offset: &offset, stage: &stage, vec: None }, &mut want, ldo);
        let mut got = vec![0i8; m * ldo];
        let rq = Requant { offset: &offset, stage: &stage, vec: vs.as_ref() };
        tiled(m, &a16, lda, &PackedI8::pack(&w, n, k), rq, &mut got, ldo, micro);
        assert_eq!(got, want, "m={m} n={n} k={k}");
    }

    #[test]
    fn every_micro_kernel_is_exact_on_edges() {
        for micro in micros() {
            for &(m, n, k) in &[
                (1, 1, 1),
                (4, 8, 8),
                (5, 9, 9),
                (3, 7, 16),
                (9, 13, 27),
                (1, 10, 64),
                (4, 4, 7),
                (17, 3, 200),
                (6, 17, 3),
            ] {
                check(m, n, k, micro);
            }
        }
    }

    #[test]
    fn row_sums_are_exact() {
        let w: Vec<i8> = vec![1, -2, 3, 127, -127, 5];
        let p = PackedI8::pack(&w, 2, 3);
        assert_eq!(p.row_sums, vec![2, 5]);
        assert_eq!(p.kp, 4);
    }
}
