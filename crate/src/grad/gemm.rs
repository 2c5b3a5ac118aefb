//! The matrix product of the weighted backward: `C (+)= Aᵀ·B` with both operands stored
//! k-major, `A` as `[k][m]` rows of stride `lda` and `B` as `[k][n]` rows of stride `ldb`, so each
//! step of the sum reads `MR` contiguous values of `A` and `NR` of `B`. Both products of a
//! convolution's backward have that form straight from the activations' layout, with no packing:
//! `dW += dzᵀ·cols` (`A` = the output gradient `[pixels][out]`, `B` = the im2col rows
//! `[pixels][patch]`) and `dcols = dz·W` (`A` = `dz` transposed `[out][pixels]`, `B` = the weights
//! `[out][patch]`).
//!
//! The micro-kernel keeps an `MR × NR` tile in local accumulators (registers: plain arrays that
//! LLVM vectorizes for SSE and for wasm simd128 alike) and adds or stores it once at the end;
//! [`reference`] is the plain loop it is tested against.

/// Rows of `C` per tile (values of `A` per step).
const MR: usize = 4;
/// Columns of `C` per tile (values of `B` per step: two 4-lane vectors).
const NR: usize = 8;

/// The operands of one product: `A` `[k][m]` (stride `lda`), `B` `[k][n]` (stride `ldb`), `C`
/// `[m][n]` (stride `ldc`).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
}

impl Dims {
    /// Whether the slices hold every element the product reads or writes.
    fn fits(&self, a: &[f32], b: &[f32], c: &[f32]) -> bool {
        // The end of the last row read, checked (an overflow is "does not fit", never a wrap that
        // would let the unchecked micro-kernel read past the slice).
        let fits = |len: usize, rows: usize, ld: usize, cols: usize| {
            rows == 0
                || cols == 0
                || (rows - 1).checked_mul(ld).and_then(|x| x.checked_add(cols)).is_some_and(|l| len >= l)
        };
        self.lda >= self.m
            && self.ldb >= self.n
            && self.ldc >= self.n
            && fits(a.len(), self.k, self.lda, self.m)
            && fits(b.len(), self.k, self.ldb, self.n)
            && fits(c.len(), self.m, self.ldc, self.n)
    }
}

/// Plain loops: `c[i][j] (+)= Σ_p a[p][i] · b[p][j]`.
pub fn reference(d: Dims, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    for i in 0..d.m {
        for j in 0..d.n {
            let mut acc = 0.0f32;
            for p in 0..d.k {
                acc += a[p * d.lda + i] * b[p * d.ldb + j];
            }
            let o = &mut c[i * d.ldc + j];
            *o = if accumulate { *o + acc } else { acc };
        }
    }
}

/// `c[i][j] (+)= Σ_p a[p][i] · b[p][j]`, tiled. Panics when a slice is too short for `d` (the
/// callers size them from the same shapes).
pub fn product(d: Dims, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(d.fits(a, b, c), "gemm operands shorter than their dimensions");
    if d.m == 0 || d.n == 0 {
        return;
    }
    if d.k == 0 {
        // An empty sum: zeros, or nothing to add (A and B may be empty slices).
        if !accumulate {
            (0..d.m).for_each(|i| c[i * d.ldc..][..d.n].fill(0.0));
        }
        return;
    }
    let full_n = d.n - d.n % NR;
    // Column panels outside, row tiles inside: one panel of B (k rows of NR values) stays in L1
    // while every row tile of A streams past it.
    for j0 in (0..full_n).step_by(NR) {
        for i0 in (0..d.m).step_by(MR) {
            let rows = MR.min(d.m - i0);
            let mut acc = [[0.0f32; NR]; MR];
            if rows == MR {
                micro(d, a, b, i0, j0, &mut acc);
            } else {
                edge(d, a, b, (i0, rows), (j0, NR), &mut acc);
            }
            store(d, c, &acc, (i0, rows), (j0, NR), accumulate);
        }
    }
    if full_n < d.n {
        for i0 in (0..d.m).step_by(MR) {
            let (rows, cols) = (MR.min(d.m - i0), d.n - full_n);
            let mut acc = [[0.0f32; NR]; MR];
            edge(d, a, b, (i0, rows), (full_n, cols), &mut acc);
            store(d, c, &acc, (i0, rows), (full_n, cols), accumulate);
        }
    }
}

// TILE_IN_BOUNDS: [`product`] asserts `Dims::fits` and calls [`micro`] with `i0 + MR <= m` and
// `j0 + NR <= n`, so for every `p < k` the reads `a[p·lda + i0 ..][..MR]` and
// `b[p·ldb + j0 ..][..NR]` end at most at `(k − 1)·lda + m <= a.len()` and
// `(k − 1)·ldb + n <= b.len()`: the micro-kernels read through pointers without a bounds check
// per step (which cost a third of the kernel's instructions).

/// One full `MR × NR` tile at rows `i0..`, columns `j0..`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn micro(d: Dims, a: &[f32], b: &[f32], i0: usize, j0: usize, out: &mut [[f32; NR]; MR]) {
    let mut acc = [[0.0f32; NR]; MR];
    let (a, b) = (a[i0..].as_ptr(), b[j0..].as_ptr());
    for p in 0..d.k {
        // SAFETY: see `TILE_IN_BOUNDS`.
        let (av, bv) = unsafe { (&*(a.add(p * d.lda) as *const [f32; MR]), &*(b.add(p * d.ldb) as *const [f32; NR])) };
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] += av[r] * bv[c];
            }
        }
    }
    *out = acc;
}

/// The wasm simd128 twin: the tile in eight f32x4 accumulators, multiply-adds fused in the
/// relaxed-SIMD build (as the inference GEMM's).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn micro(d: Dims, a: &[f32], b: &[f32], i0: usize, j0: usize, out: &mut [[f32; NR]; MR]) {
    use core::arch::wasm32::*;
    /// `a·b + c`.
    #[inline(always)]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            f32x4_relaxed_madd(a, b, c)
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            f32x4_add(c, f32x4_mul(a, b))
        }
    }
    let mut v = [[f32x4_splat(0.0); 2]; MR];
    let (a, b) = (a[i0..].as_ptr(), b[j0..].as_ptr());
    for p in 0..d.k {
        // SAFETY: see `TILE_IN_BOUNDS` (v128_load has no alignment requirement).
        let (av, b0, b1) = unsafe {
            let (av, bv) = (&*(a.add(p * d.lda) as *const [f32; MR]), b.add(p * d.ldb));
            (av, v128_load(bv as *const v128), v128_load(bv.add(4) as *const v128))
        };
        for (v, &x) in v.iter_mut().zip(av) {
            let x = f32x4_splat(x);
            v[0] = madd(x, b0, v[0]);
            v[1] = madd(x, b1, v[1]);
        }
    }
    for (o, v) in out.iter_mut().zip(&v) {
        // SAFETY: each row of `out` holds NR = 8 floats: two 16-byte stores.
        unsafe {
            v128_store(o.as_mut_ptr() as *mut v128, v[0]);
            v128_store(o.as_mut_ptr().add(4) as *mut v128, v[1]);
        }
    }
}

/// A partial tile (`rows` × `cols`, at most `MR` × `NR`).
fn edge(
    d: Dims,
    a: &[f32],
    b: &[f32],
    (i0, rows): (usize, usize),
    (j0, cols): (usize, usize),
    acc: &mut [[f32; NR]; MR],
) {
    for p in 0..d.k {
        let av = &a[p * d.lda + i0..][..rows];
        let bv = &b[p * d.ldb + j0..][..cols];
        for (acc, &x) in acc.iter_mut().zip(av) {
            for (o, &y) in acc.iter_mut().zip(bv) {
                *o += x * y;
            }
        }
    }
}

/// Writes (or adds) a tile's `rows × cols` into `c`.
#[inline(always)]
fn store(
    d: Dims,
    c: &mut [f32],
    acc: &[[f32; NR]; MR],
    (i0, rows): (usize, usize),
    (j0, cols): (usize, usize),
    add: bool,
) {
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let o = &mut c[(i0 + r) * d.ldc + j0..][..cols];
        if add {
            o.iter_mut().zip(acc).for_each(|(o, &v)| *o += v);
        } else {
            o.copy_from_slice(&acc[..cols]);
        }
    }
}

/// `rows × cols` row-major `src` transposed into `dst` (`cols × rows`), in cache-sized tiles.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut Vec<f32>) {
    const T: usize = 16;
    dst.clear();
    dst.resize(rows * cols, 0.0);
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Every tile shape: full tiles, leftover rows and columns, empty sums, padded strides, and
    /// both storing and accumulating into a C that already holds values.
    #[test]
    fn product_matches_the_reference_on_edge_sizes() {
        let mut rng = Rng::new(11);
        for &(m, n, k) in
            &[(1, 1, 1), (4, 8, 1), (4, 8, 5), (5, 9, 3), (8, 16, 33), (13, 17, 29), (3, 1, 0), (8, 16, 0), (32, 9, 64)]
        {
            for &(pad, accumulate) in &[(0, false), (3, true), (1, false), (0, true)] {
                let d = Dims { m, n, k, lda: m + pad, ldb: n + pad, ldc: n + pad };
                let a: Vec<f32> = (0..k * d.lda).map(|_| rng.normal()).collect();
                let b: Vec<f32> = (0..k * d.ldb).map(|_| rng.normal()).collect();
                let start: Vec<f32> = (0..m * d.ldc).map(|_| rng.normal()).collect();
                let (mut want, mut got) = (start.clone(), start.clone());
                reference(d, &a, &b, &mut want, accumulate);
                product(d, &a, &b, &mut got, accumulate);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-5 * (1.0 + k as f32), "{m}x{n}x{k} pad {pad} at {i}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn transpose_moves_every_element() {
        let src: Vec<f32> = (0..35 * 19).map(|v| v as f32).collect();
        let mut dst = Vec::new();
        transpose(&src, 35, 19, &mut dst);
        for r in 0..35 {
            for c in 0..19 {
                assert_eq!(dst[c * 35 + r], src[r * 19 + c]);
            }
        }
    }
}
