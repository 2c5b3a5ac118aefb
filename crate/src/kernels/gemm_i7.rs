//! Int8 matrix products on the relaxed dot product, exact on every engine.
//!
//! `i32x4.relaxed_dot_i8x16_i7x16_add(a, b, c)` is specified only for bytes of `b` in [0, 127];
//! there x86 with or without VNNI (`vpdpbusd`, or `pmaddubsw` whose pairs then cannot saturate) and
//! ARM (`sdot`) all compute the exact dot product. So the activations go into `a` as they are
//! (signed) and the weights into `b`, shifted and split: `w + 127` is in [0, 254] (for weights in
//! [-127, 127], the int8 weight range TFLite specifies) and is stored as two halves
//! `p = min(w + 127, 127)` and `q = w + 127 - p`, both in [0, 127]. A row's two activations
//! `x0, x1` are broadcast as one 16-bit value, so each 32-bit lane sees `[x0, x1, x0, x1]` against
//! a channel's `[p0, p1, q0, q1]`: `x0·(w0 + 127) + x1·(w1 + 127)`. The `127 · Σ x` this adds is
//! taken off per row (`row_offset`), giving `Σ w·x` bit for bit with wrapping int32 arithmetic.
//!
//! Layout ("c2 halves"): panels of [`NR`] = 8 channels, `k` padded to even, each k-pair stored as
//! `[channel][p0, p1, q0, q1]`; padding has `p = q = 0`, so it adds nothing whatever the rows hold.

use super::gemm_i8::{tile_loop, KernelsOf, MicroOf, Requant, MR, NR, PANELS};

/// The shift that makes every weight non-negative.
pub const SHIFT: i32 = 127;

/// Int8 weights `[n][k]` split into 7-bit halves of `w + 127`.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedHalves {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to even: the length activation rows must be readable for.
    pub kp: usize,
    data: Vec<u8>,
}

impl PackedHalves {
    /// `None` when a weight is -128 (outside TFLite's int8 weight range; `w + 127` would not
    /// split into two 7-bit halves), so the caller keeps another kernel.
    pub fn pack(w: &[i8], n: usize, k: usize) -> Option<PackedHalves> {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        if w[..n * k].contains(&i8::MIN) {
            return None;
        }
        let kp = k.div_ceil(2) * 2;
        let panels = n.div_ceil(NR);
        let mut data = vec![0u8; panels * kp * NR * 2];
        for p in 0..panels {
            for j in 0..NR.min(n - p * NR) {
                for (kk, &v) in w[(p * NR + j) * k..(p * NR + j + 1) * k].iter().enumerate() {
                    let shifted = v as i32 + SHIFT;
                    let low = shifted.min(127);
                    let at = ((p * (kp / 2) + kk / 2) * NR + j) * 4 + kk % 2;
                    data[at] = low as u8;
                    data[at + 2] = (shifted - low) as u8;
                }
            }
        }
        Some(PackedHalves { n, k, kp, data })
    }

    fn panel(&self, p: usize) -> &[u8] {
        &self.data[p * self.kp * NR * 2..(p + 1) * self.kp * NR * 2]
    }
}

/// `-SHIFT · Σ_k a[i][k]` for each of `m` rows (stride `lda`, `k` values each): the row offsets
/// that undo the weight shift.
pub fn row_offsets(m: usize, a: &[i8], lda: usize, k: usize, out: &mut Vec<i32>) {
    out.clear();
    out.extend((0..m).map(|i| -SHIFT.wrapping_mul(a[i * lda..i * lda + k].iter().map(|&v| v as i32).sum::<i32>())));
}

/// A micro-kernel: `MR` rows of int8 activations (each readable for `kp` bytes) against a panel.
pub type Micro = MicroOf<i8, u8>;

/// This module's kernels.
pub type Kernels = KernelsOf<i8, u8>;

/// The arithmetic the relaxed instruction performs on this layout, in plain loops.
pub fn portable_micro(kp: usize, rows: [&[i8]; MR], panel: &[u8], acc: &mut [[i32; NR]; MR]) {
    for (pair, w) in panel[..kp * NR * 2].chunks_exact(4 * NR).enumerate() {
        for (r, row) in rows.iter().enumerate() {
            let (x0, x1) = (row[2 * pair] as i32, row[2 * pair + 1] as i32);
            for c in 0..NR {
                let h = &w[4 * c..4 * c + 4];
                acc[r][c] =
                    acc[r][c].wrapping_add(x0 * h[0] as i32 + x1 * h[1] as i32 + x0 * h[2] as i32 + x1 * h[3] as i32);
            }
        }
    }
}

pub fn portable_gemv(kp: usize, row: &[i8], panels: [&[u8]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
    for (panel, acc) in panels.iter().zip(acc.iter_mut()) {
        let mut tile = [[0i32; NR]; MR];
        portable_micro(kp, [row, row, row, row], panel, &mut tile);
        *acc = tile[0];
    }
}

/// The portable kernels (what tests compare the vector ones against).
pub const PORTABLE: Kernels = Kernels { micro: portable_micro, gemv: portable_gemv };

/// The best kernels of this build: the relaxed ones where the build has relaxed SIMD (callers
/// check [`super::gemm_dot4::kind`], which guards that the instruction behaves as specified).
pub fn best() -> Kernels {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        Kernels { micro: relaxed::micro, gemv: relaxed::gemv }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        PORTABLE
    }
}

/// The product of `m` int8 rows of `a` (stride `lda`, each readable for `w.kp` bytes) with the
/// packed weights, requantized into `out` (stride `ldo`); `rq.row_offset` must hold
/// [`row_offsets`] of the rows.
#[allow(clippy::too_many_arguments)]
pub fn tiled(m: usize, a: &[i8], lda: usize, w: &PackedHalves, rq: Requant, out: &mut [i8], ldo: usize, k: Kernels) {
    assert!(rq.row_offset.is_some(), "the halves kernel needs its row offsets");
    tile_loop(m, w.n, a, lda, w.kp, |p| w.panel(p), rq, out, ldo, k);
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed {
    //! The relaxed-SIMD kernels: per k-pair, a row's two bytes broadcast as one 16-bit value,
    //! two dot products per row into eight channels' sums.
    use super::super::gemm_i8::simd128::store;
    use super::{MR, NR, PANELS};
    use core::arch::wasm32::*;

    #[inline(always)]
    fn dot(x: v128, w: v128, acc: v128) -> v128 {
        i32x4_relaxed_dot_i8x16_i7x16_add(x, w, acc)
    }

    pub fn micro(kp: usize, rows: [&[i8]; MR], panel: &[u8], acc: &mut [[i32; NR]; MR]) {
        let panel = &panel[..kp * NR * 2];
        let rows = rows.map(|r| &r[..kp]);
        let z = i32x4_splat(0);
        let mut a = [(z, z); MR];
        for p in 0..kp / 2 {
            // SAFETY: the panel holds (kp/2)·32 bytes, so the loads at p·32 and p·32 + 16 are in
            // bounds; each row holds kp bytes, so the 2-byte load at 2p is too.
            unsafe {
                let wp = panel.as_ptr().add(p * 4 * NR);
                let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(16) as *const v128));
                for (acc, row) in a.iter_mut().zip(&rows) {
                    let x = v128_load16_splat(row.as_ptr().add(2 * p) as *const u16);
                    *acc = (dot(x, w0, acc.0), dot(x, w1, acc.1));
                }
            }
        }
        store(acc, a);
    }

    pub fn gemv(kp: usize, row: &[i8], panels: [&[u8]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
        let row = &row[..kp];
        let panels = panels.map(|p| &p[..kp * NR * 2]);
        let z = i32x4_splat(0);
        let mut a = [(z, z); PANELS];
        for p in 0..kp / 2 {
            // SAFETY: as in `micro`, for each panel and the one row.
            unsafe {
                let x = v128_load16_splat(row.as_ptr().add(2 * p) as *const u16);
                for (acc, panel) in a.iter_mut().zip(&panels) {
                    let wp = panel.as_ptr().add(p * 4 * NR);
                    let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(16) as *const v128));
                    *acc = (dot(x, w0, acc.0), dot(x, w1, acc.1));
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
        // Exact on every engine that follows the specification, so tested wherever it compiles.
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        v.push(("relaxed", Kernels { micro: relaxed::micro, gemv: relaxed::gemv }));
        v
    }

    #[test]
    fn every_kernel_is_exact_on_generated_shapes() {
        for (name, k) in kernels() {
            sweep(|m, n, kk| {
                let c = Case::new(m, n, kk, true);
                let lda = kk.div_ceil(2) * 2 + 2;
                let mut a = vec![0i8; m * lda];
                for i in 0..m {
                    a[i * lda..i * lda + kk].copy_from_slice(&c.a[i * kk..(i + 1) * kk]);
                    // Bytes past k are read but must not count (the halves there are zero).
                    a[i * lda + kk..(i + 1) * lda].fill(-77);
                }
                let mut rows = Vec::new();
                row_offsets(m, &a, lda, kk, &mut rows);
                let w = PackedHalves::pack(&c.w, n, kk).expect("weights in [-127, 127]");
                let mut got = vec![0i8; m * c.ldo];
                let rq = Requant { row_offset: Some(&rows), ..c.requant() };
                tiled(m, &a, lda, &w, rq, &mut got, c.ldo, k);
                assert_eq!(got, c.want, "{name}: m={m} n={n} k={kk}");
            });
        }
    }

    #[test]
    fn minus_128_weights_are_refused() {
        assert!(PackedHalves::pack(&[1, -128, 3, 4], 2, 2).is_none());
        let p = PackedHalves::pack(&[-127, 127, 0], 1, 3).unwrap();
        // w + 127: 0 → (0, 0); 254 → (127, 127); 127 → (127, 0); padding (0, 0).
        assert_eq!(&p.data[..4], &[0, 127, 0, 127]);
        assert_eq!(&p.data[32..36], &[127, 0, 0, 0]);
    }
}
