//! Int8 matrix products on four-wide dot products: the relaxed-SIMD build's CONV_2D and
//! FULLY_CONNECTED kernel.
//!
//! `i32x4.relaxed_dot_i8x16_i7x16_add` multiplies signed bytes by bytes that are only specified in
//! [0, 127]; outside that range engines differ (x86 with VNNI reads them unsigned and exactly,
//! x86 without VNNI saturates pairs, ARM reads them signed). So at load time [`available`] probes
//! what this engine computes, and the kernel is used only where the instruction is an exact
//! u8 × i8 dot: activations enter as `x + 128` (u8) and `-128 · Σ w` is folded into each channel's
//! offset, giving `Σ w·x` bit for bit. Elsewhere the simd128 kernel ([`super::gemm_i8`]) runs.
//!
//! Layout ("c4"): weights packed in panels of [`NR`] = 8 channels, `k` padded to a multiple of 4,
//! each k-quad stored as `[channel][4]` bytes; a row's four activation bytes are broadcast as one
//! i32, so one instruction does 16 multiply-adds into four channels' sums.

use super::gemm_i8::{tile_loop, MicroOf, Requant, MR, NR};

/// Int8 weights `[n][k]` in "c4" panels, with the per-channel offset correction for u8 inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedQuad {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to a multiple of 4: the length activation rows must be readable for.
    pub kq: usize,
    data: Vec<i8>,
    /// Added to each channel's offset: `-128 · Σ_k w[j][k]`, undoing the `+128` of the inputs.
    pub correction: Vec<i32>,
}

impl PackedQuad {
    pub fn pack(w: &[i8], n: usize, k: usize) -> PackedQuad {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        let kq = k.div_ceil(4) * 4;
        let panels = n.div_ceil(NR);
        let mut data = vec![0i8; panels * kq * NR];
        for p in 0..panels {
            for j in 0..NR.min(n - p * NR) {
                for (kk, &v) in w[(p * NR + j) * k..(p * NR + j + 1) * k].iter().enumerate() {
                    data[((p * (kq / 4) + kk / 4) * NR + j) * 4 + kk % 4] = v;
                }
            }
        }
        let correction = (0..n).map(|j| -128 * w[j * k..(j + 1) * k].iter().map(|&v| v as i32).sum::<i32>()).collect();
        PackedQuad { n, k, kq, data, correction }
    }

    fn panel(&self, p: usize) -> &[i8] {
        &self.data[p * self.kq * NR..(p + 1) * self.kq * NR]
    }
}

/// A micro-kernel: `MR` rows of u8 activations (each readable for `kq` bytes) against one panel.
pub type Micro = MicroOf<u8, i8>;

/// The exact u8 × i8 arithmetic the fast instruction performs where [`available`] says so.
pub fn portable_micro(kq: usize, rows: [&[u8]; MR], panel: &[i8], acc: &mut [[i32; NR]; MR]) {
    let panel = &panel[..kq * NR];
    for (q, w) in panel.chunks_exact(4 * NR).enumerate() {
        for (r, row) in rows.iter().enumerate() {
            let x = &row[4 * q..4 * q + 4];
            for c in 0..NR {
                let wc = &w[4 * c..4 * c + 4];
                acc[r][c] += (0..4).map(|t| wc[t] as i32 * x[t] as i32).sum::<i32>();
            }
        }
    }
}

/// Whether this engine's relaxed dot product is an exact u8 × i8 dot (so the kernel may run).
pub fn available() -> bool {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        static EXACT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *EXACT.get_or_init(relaxed::dot_is_exact_u8)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        false
    }
}

/// The best micro-kernel of this build for this engine (the portable one when the fast
/// instruction is not exact here; callers use [`available`] to choose this path at all).
pub fn best_micro() -> Micro {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    if available() {
        return relaxed::micro;
    }
    portable_micro
}

/// The product of `m` u8 rows of `a` (stride `lda`, each readable for `w.kq` bytes; values
/// `x + 128`) with the packed weights, requantized into `out` (stride `ldo`). `rq.offset` must
/// already include [`PackedQuad::correction`].
#[allow(clippy::too_many_arguments)]
pub fn tiled(m: usize, a: &[u8], lda: usize, w: &PackedQuad, rq: Requant, out: &mut [i8], ldo: usize, micro: Micro) {
    tile_loop(m, w.n, a, lda, w.kq, |p| w.panel(p), rq, out, ldo, micro);
}

/// The product with the best micro-kernel available.
pub fn gemm(m: usize, a: &[u8], lda: usize, w: &PackedQuad, rq: Requant, out: &mut [i8], ldo: usize) {
    tiled(m, a, lda, w, rq, out, ldo, best_micro());
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed {
    //! The relaxed-SIMD micro-kernel and the probe that decides whether it is exact here.
    use super::{MR, NR};
    use core::arch::wasm32::*;
    use core::hint::black_box;

    /// One lane of the instruction for bytes `a` (signed) and `b` (outside the specified range).
    fn lane(a: i8, b: u8) -> i32 {
        let r = i32x4_relaxed_dot_i8x16_i7x16_add(
            i8x16_splat(black_box(a)),
            u8x16_splat(black_box(b)),
            i32x4_splat(black_box(0)),
        );
        i32x4_extract_lane::<0>(r)
    }

    /// True when bytes above 127 are read unsigned and no pair saturates (x86 with VNNI).
    pub fn dot_is_exact_u8() -> bool {
        [(1i8, 200u8), (127, 255), (-128, 255), (-1, 1), (-128, 128), (5, 0)]
            .iter()
            .all(|&(a, b)| lane(a, b) == 4 * a as i32 * b as i32)
    }

    pub fn micro(kq: usize, rows: [&[u8]; MR], panel: &[i8], acc: &mut [[i32; NR]; MR]) {
        let panel = &panel[..kq * NR];
        let rows = [&rows[0][..kq], &rows[1][..kq], &rows[2][..kq], &rows[3][..kq]];
        let z = i32x4_splat(0);
        let (mut a0, mut a1, mut a2, mut a3) = ((z, z), (z, z), (z, z), (z, z));
        for q in 0..kq / 4 {
            // SAFETY: the panel holds kq·NR = (kq/4)·32 bytes, so both 16-byte loads at q·32 are in
            // bounds; each row holds kq bytes, so the 4-byte load at 4q is in bounds. wasm loads
            // need no alignment.
            unsafe {
                let wp = panel.as_ptr().add(q * 4 * NR);
                let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(16) as *const v128));
                let x0 = v128_load32_splat(rows[0].as_ptr().add(4 * q) as *const u32);
                let x1 = v128_load32_splat(rows[1].as_ptr().add(4 * q) as *const u32);
                let x2 = v128_load32_splat(rows[2].as_ptr().add(4 * q) as *const u32);
                let x3 = v128_load32_splat(rows[3].as_ptr().add(4 * q) as *const u32);
                a0 = (i32x4_relaxed_dot_i8x16_i7x16_add(w0, x0, a0.0), i32x4_relaxed_dot_i8x16_i7x16_add(w1, x0, a0.1));
                a1 = (i32x4_relaxed_dot_i8x16_i7x16_add(w0, x1, a1.0), i32x4_relaxed_dot_i8x16_i7x16_add(w1, x1, a1.1));
                a2 = (i32x4_relaxed_dot_i8x16_i7x16_add(w0, x2, a2.0), i32x4_relaxed_dot_i8x16_i7x16_add(w1, x2, a2.1));
                a3 = (i32x4_relaxed_dot_i8x16_i7x16_add(w0, x3, a3.0), i32x4_relaxed_dot_i8x16_i7x16_add(w1, x3, a3.1));
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
    use crate::kernels::fixedpoint::{quantize_multiplier, OutputStage, Rescale};
    use crate::kernels::gemm_i8::reference;
    use crate::kernels::requant::VecStage;
    use crate::rng::Rng;

    fn micros() -> Vec<Micro> {
        #[allow(unused_mut)]
        let mut v: Vec<Micro> = vec![portable_micro];
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        if available() {
            v.push(relaxed::micro);
        }
        v
    }

    #[test]
    fn every_micro_kernel_is_exact_on_edges() {
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_test::console_log!(
            "four-wide dot kernel on this engine: {}",
            if available() { "exact, tested" } else { "not exact, not used" }
        );
        for micro in micros() {
            for &(m, n, k) in &[
                (1usize, 1usize, 1usize),
                (4, 8, 8),
                (5, 9, 9),
                (3, 7, 16),
                (9, 13, 27),
                (1, 10, 64),
                (17, 3, 203),
                (6, 17, 3),
            ] {
                let mut rng = Rng::new((m * 1000 + n * 10 + k) as u64);
                let lda = k.div_ceil(4) * 4 + 4;
                let a8: Vec<i8> = (0..m * lda).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
                let a8 = a8.iter().enumerate().map(|(i, &v)| if i % lda < k { v } else { 0 }).collect::<Vec<_>>();
                let au: Vec<u8> = a8.iter().map(|&v| (v as i32 + 128) as u8).collect();
                let w: Vec<i8> = (0..n * k).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
                let offset: Vec<i32> = (0..n).map(|_| rng.below(20000) as i32 - 10000).collect();
                let scales =
                    (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.0005 + rng.uniform() as f64 * 0.01))).collect();
                let stage = OutputStage::new(scales, -5, -100, 120);
                let vs = VecStage::new(&stage, n);
                let ldo = n + 3;
                let mut want = vec![0i8; m * ldo];
                reference(m, n, k, &a8, lda, &w, Requant { offset: &offset, stage: &stage, vec: None }, &mut want, ldo);
                let packed = PackedQuad::pack(&w, n, k);
                let off: Vec<i32> = offset.iter().zip(&packed.correction).map(|(a, b)| a + b).collect();
                let mut got = vec![0i8; m * ldo];
                tiled(
                    m,
                    &au,
                    lda,
                    &packed,
                    Requant { offset: &off, stage: &stage, vec: vs.as_ref() },
                    &mut got,
                    ldo,
                    micro,
                );
                assert_eq!(got, want, "m={m} n={n} k={k}");
            }
        }
    }
}
