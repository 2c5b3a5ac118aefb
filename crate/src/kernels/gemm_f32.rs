//! Float matrix products for CONV_2D (after im2col) and FULLY_CONNECTED.
//!
//! `out[i][j] = clamp(bias[j] + Σ_k a[i][k] · w[j][k])`: rows of `a` are pixels or batch rows, rows
//! of `w` are output channels, both contiguous in `k` as TFLite stores them. Weights are packed once
//! into panels of [`NR`] outputs (`[k][NR]`), so the micro-kernel streams one panel while it keeps an
//! `MR × NR` tile of accumulators in registers.
//!
//! Three versions: [`reference`] (plain loops, the ground truth in tests), the portable tiled kernel
//! (which LLVM vectorizes for SSE), and its wasm simd128 twin. [`gemm`] picks the best available.

/// Outputs per packed panel (two f32x4 vectors).
pub const NR: usize = 8;
/// Rows per micro-kernel tile.
pub const MR: usize = 4;

/// Weights `[n][k]` packed in panels of `NR` outputs, zero-padded to a multiple of `NR`.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedF32 {
    pub n: usize,
    pub k: usize,
    data: Vec<f32>,
}

impl PackedF32 {
    /// Packs `w`, which holds `n` rows of `k` values.
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedF32 {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; panels * k * NR];
        for p in 0..panels {
            let panel = &mut data[p * k * NR..(p + 1) * k * NR];
            for j in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + j) * k..(p * NR + j + 1) * k];
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * NR + j] = v;
                }
            }
        }
        PackedF32 { n, k, data }
    }

    /// Packs the `k × n` row-major matrix `b` (its columns become the `n` rows of [`Self::pack`]):
    /// the same panels, read straight from the other layout.
    pub fn pack_kn(b: &[f32], k: usize, n: usize) -> PackedF32 {
        assert!(b.len() >= n * k, "matrix shorter than k*n");
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; panels * k * NR];
        for p in 0..panels {
            let cols = NR.min(n - p * NR);
            let panel = &mut data[p * k * NR..(p + 1) * k * NR];
            for kk in 0..k {
                panel[kk * NR..kk * NR + cols].copy_from_slice(&b[kk * n + p * NR..kk * n + p * NR + cols]);
            }
        }
        PackedF32 { n, k, data }
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * NR..(p + 1) * self.k * NR]
    }
}

/// Epilogue shared by all versions: bias and activation clamp.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub min: f32,
    pub max: f32,
}

/// Plain triple loop over unpacked weights: the reference the fast versions are tested against.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    w: &[f32],
    ep: Epilogue,
    out: &mut [f32],
    ldo: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[i * lda + kk] * w[j * k + kk];
            }
            let b = ep.bias.map_or(0.0, |b| b[j]);
            out[i * ldo + j] = (acc + b).max(ep.min).min(ep.max);
        }
    }
}

/// `out = clamp(bias + a · wᵀ)` for `m` rows of `a` (stride `lda`) into `out` (stride `ldo`).
pub fn gemm(m: usize, a: &[f32], lda: usize, w: &PackedF32, ep: Epilogue, out: &mut [f32], ldo: usize) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        tiled(m, a, lda, w, ep, out, ldo, (simd128::micro, simd128::gemv));
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        tiled(m, a, lda, w, ep, out, ldo, (portable_micro, portable_gemv));
    }
}

/// A micro-kernel: accumulates `MR` rows (given as slices, each at least `k` long) against one panel.
/// Called with four panels and one row repeated, the same type serves as a GEMV kernel (see
/// [`tiled`]): the arithmetic is identical, with the roles of rows and panels swapped.
pub type Micro = fn(k: usize, rows: [&[f32]; MR], panel: &[f32], acc: &mut [[f32; NR]; MR]);

/// A GEMV kernel: one row (at least `k` long) against [`MR`] panels.
pub type Gemv = fn(k: usize, row: &[f32], panels: [&[f32]; MR], acc: &mut [[f32; NR]; MR]);

/// Drives a micro-kernel over the whole product. Leftover rows reuse row 0 and are discarded;
/// leftover columns come from the zero padding of the last panel and are not stored. A single
/// row (batch-1 FULLY_CONNECTED) goes to the GEMV kernel, [`MR`] panels at a time.
#[allow(clippy::too_many_arguments)]
pub fn tiled(
    m: usize,
    a: &[f32],
    lda: usize,
    w: &PackedF32,
    ep: Epilogue,
    out: &mut [f32],
    ldo: usize,
    (micro, gemv): (Micro, Gemv),
) {
    let (n, k) = (w.n, w.k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k, "a too short");
    assert!(out.len() >= (m - 1) * ldo + n, "out too short");
    if let Some(b) = ep.bias {
        assert!(b.len() >= n, "bias too short");
    }
    for i0 in (0..m).step_by(MR) {
        let rows_here = MR.min(m - i0);
        if rows_here == 1 {
            gemv_row(&a[i0 * lda..i0 * lda + k], w, ep, &mut out[i0 * ldo..i0 * ldo + n], gemv);
            continue;
        }
        let row = |r: usize| {
            let i = i0 + if r < rows_here { r } else { 0 };
            &a[i * lda..i * lda + k]
        };
        let rows = [row(0), row(1), row(2), row(3)];
        for p in 0..n.div_ceil(NR) {
            let mut acc = [[0.0f32; NR]; MR];
            micro(k, rows, w.panel(p), &mut acc);
            let cols_here = NR.min(n - p * NR);
            let bias = ep.bias.map(|b| &b[p * NR..p * NR + cols_here]);
            for (r, acc_row) in acc.iter().enumerate().take(rows_here) {
                let o = &mut out[(i0 + r) * ldo + p * NR..(i0 + r) * ldo + p * NR + cols_here];
                finish(acc_row, bias, ep.min, ep.max, o);
            }
        }
    }
}

/// One row against every panel, [`MR`] panels per GEMV call (a last group repeats its first).
fn gemv_row(row: &[f32], w: &PackedF32, ep: Epilogue, out: &mut [f32], gemv: Gemv) {
    let panels = w.n.div_ceil(NR);
    for p0 in (0..panels).step_by(MR) {
        let here = MR.min(panels - p0);
        let pick = |j: usize| w.panel(p0 + if j < here { j } else { 0 });
        let mut acc = [[0.0f32; NR]; MR];
        gemv(w.k, row, [pick(0), pick(1), pick(2), pick(3)], &mut acc);
        for (j, acc) in acc.iter().enumerate().take(here) {
            let first = (p0 + j) * NR;
            let cols = NR.min(w.n - first);
            let bias = ep.bias.map(|b| &b[first..first + cols]);
            finish(acc, bias, ep.min, ep.max, &mut out[first..first + cols]);
        }
    }
}

/// `out[c] = clamp(acc[c] + bias[c])` for the `out.len()` columns of one tile row.
#[inline(always)]
fn finish(acc: &[f32; NR], bias: Option<&[f32]>, min: f32, max: f32, out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if out.len() == NR {
        simd128::finish(acc, bias, min, max, out);
        return;
    }
    for (c, v) in out.iter_mut().enumerate() {
        *v = (acc[c] + bias.map_or(0.0, |b| b[c])).max(min).min(max);
    }
}

pub fn portable_gemv(k: usize, row: &[f32], panels: [&[f32]; MR], acc: &mut [[f32; NR]; MR]) {
    for (panel, acc) in panels.iter().zip(acc.iter_mut()) {
        let mut tile = [[0.0f32; NR]; MR];
        portable_micro(k, [row, row, row, row], panel, &mut tile);
        *acc = tile[0];
    }
}

/// Portable micro-kernel; the fixed-size arrays let LLVM keep the tile in vector registers.
pub fn portable_micro(k: usize, rows: [&[f32]; MR], panel: &[f32], acc: &mut [[f32; NR]; MR]) {
    let panel = &panel[..k * NR];
    let rows = [&rows[0][..k], &rows[1][..k], &rows[2][..k], &rows[3][..k]];
    for (kk, b) in panel.chunks_exact(NR).enumerate() {
        for r in 0..MR {
            let av = rows[r][kk];
            for c in 0..NR {
                acc[r][c] += av * b[c];
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! wasm simd128 twin of the portable micro-kernel: the tile lives in eight f32x4 registers.
    //! The relaxed-SIMD build multiplies and adds with `f32x4.relaxed_madd` (fused where the CPU
    //! has FMA: the last bit can differ from the unfused product, far inside the 1e-4 relative
    //! tolerance our float results keep against LiteRT).
    use super::{MR, NR};
    use core::arch::wasm32::*;

    /// `a·b + c`.
    #[inline(always)]
    pub fn madd(a: v128, b: v128, c: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            f32x4_relaxed_madd(a, b, c)
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            f32x4_add(c, f32x4_mul(a, b))
        }
    }

    /// One row against four panels: per k one broadcast and eight multiply-adds.
    pub fn gemv(k: usize, row: &[f32], panels: [&[f32]; MR], acc: &mut [[f32; NR]; MR]) {
        let row = &row[..k];
        let panels = panels.map(|p| &p[..k * NR]);
        let mut v = [[f32x4_splat(0.0); 2]; MR];
        for (kk, &x) in row.iter().enumerate() {
            let a = f32x4_splat(x);
            for (v, panel) in v.iter_mut().zip(&panels) {
                // SAFETY: each panel holds k·NR floats: the loads at kk·NR and kk·NR + 4 fit.
                unsafe {
                    let b = panel.as_ptr().add(kk * NR);
                    v[0] = madd(a, v128_load(b as *const v128), v[0]);
                    v[1] = madd(a, v128_load(b.add(4) as *const v128), v[1]);
                }
            }
        }
        for (r, v) in v.iter().enumerate() {
            // SAFETY: acc[r] holds NR = 8 floats: two 16-byte stores.
            unsafe {
                v128_store(acc[r].as_mut_ptr() as *mut v128, v[0]);
                v128_store(acc[r].as_mut_ptr().add(4) as *mut v128, v[1]);
            }
        }
    }

    pub fn micro(k: usize, rows: [&[f32]; MR], panel: &[f32], acc: &mut [[f32; NR]; MR]) {
        let panel = &panel[..k * NR];
        let rows = [&rows[0][..k], &rows[1][..k], &rows[2][..k], &rows[3][..k]];
        let mut v = [[f32x4_splat(0.0); 2]; MR];
        for (kk, b) in panel.chunks_exact(NR).enumerate() {
            // SAFETY: `b` is exactly NR = 8 floats, so both 16-byte loads are in bounds; v128_load
            // has no alignment requirement.
            let (b0, b1) =
                unsafe { (v128_load(b.as_ptr() as *const v128), v128_load(b.as_ptr().add(4) as *const v128)) };
            for r in 0..MR {
                let a = f32x4_splat(rows[r][kk]);
                v[r][0] = madd(a, b0, v[r][0]);
                v[r][1] = madd(a, b1, v[r][1]);
            }
        }
        for (r, v) in v.iter().enumerate() {
            // SAFETY: acc[r] holds NR = 8 floats: two 16-byte stores.
            unsafe {
                v128_store(acc[r].as_mut_ptr() as *mut v128, v[0]);
                v128_store(acc[r].as_mut_ptr().add(4) as *mut v128, v[1]);
            }
        }
    }

    #[inline(always)]
    pub fn finish(acc: &[f32; NR], bias: Option<&[f32]>, min: f32, max: f32, out: &mut [f32]) {
        let out = &mut out[..NR];
        let (min, max) = (f32x4_splat(min), f32x4_splat(max));
        // SAFETY: acc, out and (when present) bias hold NR = 8 floats: 16-byte accesses at 0 and 4.
        unsafe {
            let (mut a0, mut a1) =
                (v128_load(acc.as_ptr() as *const v128), v128_load(acc.as_ptr().add(4) as *const v128));
            if let Some(b) = bias {
                let b = &b[..NR];
                a0 = f32x4_add(a0, v128_load(b.as_ptr() as *const v128));
                a1 = f32x4_add(a1, v128_load(b.as_ptr().add(4) as *const v128));
            }
            v128_store(out.as_mut_ptr() as *mut v128, f32x4_min(f32x4_max(a0, min), max));
            v128_store(out.as_mut_ptr().add(4) as *mut v128, f32x4_min(f32x4_max(a1, min), max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check(m: usize, n: usize, k: usize, micro: (Micro, Gemv)) {
        let mut rng = Rng::new((m * 131 + n * 17 + k) as u64);
        let lda = k + 3;
        let ldo = n + 2;
        let a: Vec<f32> = (0..m * lda).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let ep = Epilogue { bias: Some(&bias), min: -1.5, max: 2.0 };
        let mut want = vec![0.0; m * ldo];
        reference(m, n, k, &a, lda, &w, ep, &mut want, ldo);
        let mut got = vec![0.0; m * ldo];
        tiled(m, &a, lda, &PackedF32::pack(&w, n, k), ep, &mut got, ldo, micro);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "m={m} n={n} k={k} at {i}: {g} vs {e}");
        }
    }

    /// Every micro-kernel this target has, against the reference, on tile edges and leftovers.
    fn micros() -> Vec<(Micro, Gemv)> {
        #[allow(unused_mut)]
        let mut v: Vec<(Micro, Gemv)> = vec![(portable_micro, portable_gemv)];
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        v.push((simd128::micro, simd128::gemv));
        v
    }

    #[test]
    fn tiled_matches_reference_on_generated_shapes() {
        for micro in micros() {
            for m in [1, 2, 3, 4, 5, 9] {
                for n in [1, 3, 8, 9, 17, 32, 33, 41] {
                    for k in [0, 1, 2, 3, 7, 16, 17, 33, 64] {
                        check(m, n, k, micro);
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_dispatch_matches_reference() {
        let (m, n, k) = (7, 12, 9);
        let mut rng = Rng::new(5);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
        let ep = Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY };
        let mut want = vec![0.0; m * n];
        reference(m, n, k, &a, k, &w, ep, &mut want, n);
        let mut got = vec![0.0; m * n];
        gemm(m, &a, k, &PackedF32::pack(&w, n, k), ep, &mut got, n);
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()));
        }
    }
}
