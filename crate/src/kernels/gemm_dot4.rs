//! Int8 matrix products on four-wide dot products: the relaxed-SIMD build's CONV_2D and
//! FULLY_CONNECTED kernel.
//!
//! `i32x4.relaxed_dot_i8x16_i7x16_add` multiplies signed bytes by bytes that are only specified in
//! [0, 127]; outside that range engines differ (x86 with VNNI reads them unsigned and exactly,
//! x86 without VNNI saturates pairs, ARM reads them signed). So at load time [`kind`] probes
//! what this engine computes. Where the instruction is an exact u8 × i8 dot (VNNI), this kernel
//! runs: activations enter as `x + 128` (u8) and `-128 · Σ w` is folded into each channel's
//! offset, giving `Σ w·x` bit for bit, sixteen multiply-adds per instruction. On x86 without VNNI
//! (pairs saturate) the `dot_i16x8` kernels run, measured faster there (also than
//! [`super::gemm_sign`], whose second operand stays in [0, 127] and which is exact there too).
//! Everywhere else (ARM) the kernel of [`super::gemm_sign`] runs: `|w|` against the activations
//! with the weights' signs, sixteen multiply-adds per instruction, exact on every engine.
//!
//! Layout ("c4"): weights packed in panels of [`NR`] = 8 channels, `k` padded to a multiple of 4,
//! each k-quad stored as `[channel][4]` bytes; a row's four activation bytes are broadcast as one
//! i32, so one instruction does 16 multiply-adds into four channels' sums.

use super::gemm_i8::{tile_loop, KernelsOf, MicroOf, Requant, MR, NR, PANELS};

/// Int8 weights `[n][k]` in "c4" panels. The inputs are u8 (`x + 128`): each channel's offset
/// takes off the `128 · Σ_k w[j][k]` that adds (`int8::conv::channel_offsets` with `u8_inputs`).
#[derive(Clone, Debug, PartialEq)]
pub struct PackedQuad {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to a multiple of 4: the length activation rows must be readable for.
    pub kq: usize,
    data: Vec<i8>,
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
        PackedQuad { n, k, kq, data }
    }

    fn panel(&self, p: usize) -> &[i8] {
        &self.data[p * self.kq * NR..(p + 1) * self.kq * NR]
    }
}

/// A micro-kernel: `MR` rows of u8 activations (each readable for `kq` bytes) against one panel.
pub type Micro = MicroOf<u8, i8>;

/// This module's kernels.
pub type Kernels = KernelsOf<u8, i8>;

/// Which relaxed dot product this engine computes exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotKind {
    /// Exact for any unsigned second operand (x86 with AVX-VNNI): [`PackedQuad`] kernels.
    U8,
    /// Exact for second operands in [0, 127], as specified: [`super::gemm_sign`] kernels.
    Sign,
    /// No relaxed SIMD in this build (or an engine that breaks the specification): i16 kernels.
    None,
}

impl DotKind {
    /// What `info().int8Kernel` reports.
    pub fn name(self) -> &'static str {
        match self {
            DotKind::U8 => "relaxed-dot-u8",
            DotKind::Sign => "relaxed-dot-s8",
            DotKind::None => "dot-i16",
        }
    }
}

/// The probe's verdict for this engine, computed once.
pub fn kind() -> DotKind {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        static KIND: std::sync::OnceLock<DotKind> = std::sync::OnceLock::new();
        *KIND.get_or_init(|| {
            if !relaxed::dot_is_exact_i7() {
                DotKind::None
            } else if relaxed::dot_is_exact_u8() {
                DotKind::U8
            } else if relaxed::dot_saturates_pairs() {
                // x86 without VNNI lowers the instruction to pmaddubsw + pmaddwd + paddd. The sign
                // kernel is exact there but measured 1.3-1.5x the time of dot_i16x8 on whole
                // models (see gemm_sign), so the i16 kernels run.
                DotKind::None
            } else {
                DotKind::Sign
            }
        })
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        DotKind::None
    }
}

pub fn portable_gemv(kq: usize, row: &[u8], panels: [&[i8]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
    for (panel, acc) in panels.iter().zip(acc.iter_mut()) {
        let mut tile = [[0i32; NR]; MR];
        portable_micro(kq, [row, row, row, row], panel, &mut tile);
        *acc = tile[0];
    }
}

/// The portable kernels (what tests compare the vector ones against).
pub const PORTABLE: Kernels = Kernels { micro: portable_micro, gemv: portable_gemv };

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

/// Whether this engine's relaxed dot product is an exact u8 × i8 dot (so this kernel may run).
pub fn available() -> bool {
    kind() == DotKind::U8
}

/// The best kernels of this build for this engine (the portable ones when the fast instruction
/// is not exact here; callers use [`available`] to choose this path at all).
pub fn best() -> Kernels {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    if available() {
        return Kernels { micro: relaxed::micro, gemv: relaxed::gemv };
    }
    PORTABLE
}

/// The product of `m` u8 rows of `a` (stride `lda`, each readable for `w.kq` bytes; values
/// `x + 128`) with the packed weights, requantized into `out` (stride `ldo`). `rq.offset` must
/// already take off the `128 · Σ_k w[j][k]` of the u8 inputs (see [`PackedQuad`]).
#[allow(clippy::too_many_arguments)]
pub fn tiled(m: usize, a: &[u8], lda: usize, w: &PackedQuad, rq: Requant, out: &mut [i8], ldo: usize, k: Kernels) {
    tile_loop(m, w.n, a, lda, w.kq, |p| w.panel(p), rq, out, ldo, k);
}

/// The product with the best micro-kernel available.
pub fn gemm(m: usize, a: &[u8], lda: usize, w: &PackedQuad, rq: Requant, out: &mut [i8], ldo: usize) {
    tiled(m, a, lda, w, rq, out, ldo, best());
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed {
    //! The relaxed-SIMD micro-kernel and the probe that decides whether it is exact here.
    use super::super::gemm_i8::simd128::store;
    use super::{MR, NR, PANELS};
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

    /// True when second operands in [0, 127] give the exact dot product, as the proposal
    /// specifies (every conforming engine; the kernels rely on it).
    pub fn dot_is_exact_i7() -> bool {
        [(1i8, 1u8), (127, 127), (-128, 127), (-1, 1), (-128, 64), (5, 0), (100, 99)].iter().all(|&(a, b)| {
            let r = i32x4_relaxed_dot_i8x16_i7x16_add(
                i8x16_splat(black_box(a)),
                u8x16_splat(black_box(b)),
                i32x4_splat(black_box(-7)),
            );
            i32x4_extract_lane::<3>(r) == 4 * a as i32 * b as i32 - 7
        })
    }

    /// True when bytes above 127 are read unsigned and pairs saturate to 16 bits: the `pmaddubsw`
    /// lowering of x86 engines on CPUs without VNNI.
    pub fn dot_saturates_pairs() -> bool {
        lane(127, 255) == 2 * i16::MAX as i32
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
        store(acc, [a0, a1, a2, a3]);
    }

    /// One row against four panels: per k-quad one broadcast and eight dot products.
    pub fn gemv(kq: usize, row: &[u8], panels: [&[i8]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
        let row = &row[..kq];
        let panels = panels.map(|p| &p[..kq * NR]);
        let z = i32x4_splat(0);
        let mut a = [(z, z); PANELS];
        for q in 0..kq / 4 {
            // SAFETY: each panel holds kq·NR bytes, so the loads at q·32 and q·32 + 16 are in
            // bounds; the row holds kq bytes, so the 4-byte load at 4q is too.
            unsafe {
                let x = v128_load32_splat(row.as_ptr().add(4 * q) as *const u32);
                for (acc, panel) in a.iter_mut().zip(&panels) {
                    let wp = panel.as_ptr().add(q * 4 * NR);
                    let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(16) as *const v128));
                    *acc = (
                        i32x4_relaxed_dot_i8x16_i7x16_add(w0, x, acc.0),
                        i32x4_relaxed_dot_i8x16_i7x16_add(w1, x, acc.1),
                    );
                }
            }
        }
        store(acc, a);
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::gemm_i8::tests::{sweep, Case};

    fn kernels() -> Vec<(&'static str, Kernels)> {
        #[allow(unused_mut)]
        let mut v = vec![("portable", PORTABLE)];
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        if available() {
            v.push(("relaxed", Kernels { micro: relaxed::micro, gemv: relaxed::gemv }));
        }
        v
    }

    #[test]
    fn every_kernel_is_exact_on_generated_shapes() {
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_test::console_log!("relaxed dot product on this engine: {:?}", kind());
        for (name, k) in kernels() {
            sweep(|m, n, kk| {
                let c = Case::new(m, n, kk, false);
                let lda = kk.div_ceil(4) * 4 + 4;
                let mut au = vec![128u8; m * lda];
                for i in 0..m {
                    for j in 0..kk {
                        au[i * lda + j] = (c.a[i * kk + j] as u8) ^ 0x80;
                    }
                }
                let packed = PackedQuad::pack(&c.w, n, kk);
                let u8_inputs = |j: usize| -128 * c.w[j * kk..(j + 1) * kk].iter().map(|&v| v as i32).sum::<i32>();
                let off: Vec<i32> = c.offset.iter().enumerate().map(|(j, a)| a.wrapping_add(u8_inputs(j))).collect();
                let mut got = vec![0i8; m * c.ldo];
                let rq = Requant::new(&off, &c.stage, c.vec.as_ref());
                tiled(m, &au, lda, &packed, rq, &mut got, c.ldo, k);
                assert_eq!(got, c.want, "{name}: m={m} n={n} k={kk}");
            });
        }
    }
}
