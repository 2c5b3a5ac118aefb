//! General float matrix products for training: `C = A·B`, `C = A·Bᵀ` and `C = Aᵀ·B` over
//! row-major matrices. Each packs its right operand into [`PackedF32`] panels straight from its
//! layout and runs the inference GEMM's micro-kernel (only `Aᵀ` is transposed first);
//! [`reference`] is the plain triple loop they are tested against.

use super::gemm_f32::{self, Epilogue, PackedF32};

const NO_CLAMP: Epilogue<'static> = Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY };

/// `c[m][n] = Σ_k a(i, k) · b(k, j)` with `a(i, k) = a[i·k_a + k]` or `a[k·m + i]` when `ta`
/// (A stored transposed), and `b(k, j) = b[k·n + j]` or `b[j·k + k]` when `tb`.
#[allow(clippy::too_many_arguments)]
pub fn reference(m: usize, n: usize, k: usize, a: &[f32], ta: bool, b: &[f32], tb: bool, c: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                let x = if ta { a[kk * m + i] } else { a[i * k + kk] };
                let y = if tb { b[j * k + kk] } else { b[kk * n + j] };
                acc += x * y;
            }
            c[i * n + j] = acc;
        }
    }
}

/// `rows × cols` row-major `src` transposed into `dst`.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut Vec<f32>) {
    dst.clear();
    dst.resize(rows * cols, 0.0);
    for r in 0..rows {
        for (c, &v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// `C[m][n] = A[m][k] · B[n][k]ᵀ`.
pub fn nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    gemm_f32::gemm(m, a, k, &PackedF32::pack(b, n, k), NO_CLAMP, c, n);
}

/// `C[m][n] = A[m][k] · B[k][n]` (`B` packed as it lies).
pub fn nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    gemm_f32::gemm(m, a, k, &PackedF32::pack_kn(b, k, n), NO_CLAMP, c, n);
}

/// `C[m][n] = A[k][m]ᵀ · B[k][n]`; `scratch` holds `A` transposed.
pub fn tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], scratch: &mut Vec<f32>) {
    transpose(a, k, m, scratch);
    nn(m, n, k, scratch, b, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect()
    }

    fn close(a: &[f32], b: &[f32], k: usize) {
        let tol = 1e-5 * (k as f32).max(1.0);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn products_match_the_reference_on_edge_sizes() {
        let mut rng = Rng::new(7);
        let mut s0 = Vec::new();
        for &(m, n, k) in &[(1, 1, 1), (5, 9, 3), (4, 8, 16), (13, 17, 29), (3, 1, 0), (33, 2, 7)] {
            let a = random(&mut rng, m * k);
            let b = random(&mut rng, k * n);
            let (mut want, mut got) = (vec![0.0; m * n], vec![1.0; m * n]);
            reference(m, n, k, &a, false, &b, false, &mut want);
            nn(m, n, k, &a, &b, &mut got);
            close(&got, &want, k);
            reference(m, n, k, &a, true, &b, false, &mut want);
            tn(m, n, k, &a, &b, &mut got, &mut s0);
            close(&got, &want, k);
            reference(m, n, k, &a, false, &b, true, &mut want);
            nt(m, n, k, &a, &b, &mut got);
            close(&got, &want, k);
        }
    }
}
