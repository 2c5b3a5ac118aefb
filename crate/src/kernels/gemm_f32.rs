//! Float matrix products for CONV_2D (after im2col) and FULLY_CONNECTED.
//!
//! `out[i][j] = clamp(bias[j] + Σ_k a[i][k] · w[j][k])`: rows of `a` are pixels or batch rows, rows
//! of `w` are output channels, both contiguous in `k` as TFLite stores them. Weights are packed once
//! into panels of [`NR`] outputs (`[k][NR]`), so the micro-kernel streams one panel while it keeps an
//! `MR × NR` tile of accumulators in registers.
//!
//! Two versions: [`reference`] (plain loops, the ground truth in tests) and [`gemm`], written once
//! over [`F4`] (wasm simd128, or a portable array natively), with a GEMV path for one row.

use super::f32x4::F4;

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

    pub(crate) fn panel(&self, p: usize) -> &[f32] {
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
///
/// Tiles of [`MR`] rows × one panel accumulate in registers; the bias is added and the clamp
/// applied as they are stored; a single row (batch-1 FULLY_CONNECTED) goes to [`gemv_row`].
/// The `m mod MR` rows left go one-row tiles at a time (a tile of `MR` whose extra rows are
/// discarded did a third more work on VWW's 3×3-pixel layers, `m` = 9).
pub fn gemm(m: usize, a: &[f32], lda: usize, w: &PackedF32, ep: Epilogue, out: &mut [f32], ldo: usize) {
    let (n, k) = (w.n, w.k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k, "a too short");
    assert!(out.len() >= (m - 1) * ldo + n, "out too short");
    if let Some(b) = ep.bias {
        assert!(b.len() >= n, "bias too short");
    }
    if m == 1 {
        gemv_row(&a[..k], w, ep, &mut out[..n]);
        return;
    }
    let full = m - m % MR;
    // Panel by panel, so that its bias is read once and the panel stays in the nearest cache.
    for p in 0..n.div_ceil(NR) {
        let (bias, cols, panel) = (bias_of(ep, p, n), NR.min(n - p * NR), w.panel(p).as_ptr());
        for i0 in (0..full).step_by(MR) {
            let rows: [*const f32; MR] = core::array::from_fn(|r| a[(i0 + r) * lda..].as_ptr());
            // SAFETY: each row pointer starts a row of at least k values (asserted above), and the
            // panel holds k·NR values.
            let acc = unsafe { tile(k, rows, |kk| kk, panel) };
            store_tile(&acc, bias, ep, &mut out[i0 * ldo..], ldo, (p * NR, cols));
        }
        for i in full..m {
            // SAFETY: as above, for one row.
            let acc = unsafe { tile(k, [a[i * lda..].as_ptr()], |kk| kk, panel) };
            store_tile(&acc, bias, ep, &mut out[i * ldo..], ldo, (p * NR, cols));
        }
    }
}

/// The bias of panel `p`'s outputs (zero where there is none or past `n`), as two vectors.
#[inline(always)]
pub(crate) fn bias_of(ep: Epilogue, p: usize, n: usize) -> [F4; 2] {
    let mut b = [0.0f32; NR];
    if let Some(bias) = ep.bias {
        let cols = NR.min(n - p * NR);
        if cols == NR {
            return [F4::from_slice(&bias[p * NR..]), F4::from_slice(&bias[p * NR + 4..])];
        }
        for (d, &v) in b.iter_mut().zip(&bias[p * NR..p * NR + cols]) {
            *d = v;
        }
    }
    [F4::from_slice(&b), F4::from_slice(&b[4..])]
}

/// One `R` × [`NR`] tile (`R` = [`MR`], or 1 for the rows left over): `acc[r] = Σ_kk
/// a_r[off(kk)] · panel[kk·NR..][..NR]` for the rows at `rows` (each value broadcast with one
/// load); each row's sums do not depend on the others'. `off` maps the reduction index to an
/// offset from each row's start: `kk` itself for a matrix, a tap table for a convolution read
/// straight from its (padded) input.
///
/// # Safety
/// `rows[r] + off(kk)` must be readable and `panel` must hold `k · NR` values.
#[inline(always)]
pub(crate) unsafe fn tile<const R: usize>(
    k: usize,
    rows: [*const f32; R],
    off: impl Fn(usize) -> usize,
    panel: *const f32,
) -> [[F4; 2]; R] {
    let mut acc = [[F4::splat(0.0); 2]; R];
    for kk in 0..k {
        let (b0, b1) = (F4::load(panel.add(kk * NR)), F4::load(panel.add(kk * NR + 4)));
        let o = off(kk);
        for r in 0..R {
            let a = F4::load_splat(rows[r].add(o));
            acc[r] = [a.madd(b0, acc[r][0]), a.madd(b1, acc[r][1])];
        }
    }
    acc
}

/// [`tile`] for a reduction made of runs of `run` consecutive values: run `j` starts `starts[j]`
/// after each row's start (a convolution's filter row, or one tap, in its padded input). The
/// inner loop walks a run with no offset table, the panel in step.
///
/// # Safety
/// `rows[r] + starts[j] + run` must stay readable for every row and run, and `panel` must hold
/// `starts.len() · run · NR` values.
#[inline(always)]
pub(crate) unsafe fn tile_runs<const R: usize>(
    starts: &[usize],
    run: usize,
    rows: [*const f32; R],
    panel: *const f32,
) -> [[F4; 2]; R] {
    let mut acc = [[F4::splat(0.0); 2]; R];
    let mut w = panel;
    for &t in starts {
        let at: [*const f32; R] = core::array::from_fn(|r| rows[r].add(t));
        for i in 0..run {
            let (b0, b1) = (F4::load(w), F4::load(w.add(4)));
            w = w.add(NR);
            for r in 0..R {
                let a = F4::load_splat(at[r].add(i));
                acc[r] = [a.madd(b0, acc[r][0]), a.madd(b1, acc[r][1])];
            }
        }
    }
    acc
}

/// Adds the bias, clamps and stores the rows of a tile at `out[r·ldo + col..][..cols]`.
#[inline(always)]
pub(crate) fn store_tile<const R: usize>(
    acc: &[[F4; 2]; R],
    bias: [F4; 2],
    ep: Epilogue,
    out: &mut [f32],
    ldo: usize,
    (col, cols): (usize, usize),
) {
    let (lo, hi) = (F4::splat(ep.min), F4::splat(ep.max));
    for (r, v) in acc.iter().enumerate() {
        finish(v, bias, (lo, hi), &mut out[r * ldo + col..r * ldo + col + cols]);
    }
}

/// `out = clamp(acc + bias)` for the `out.len() ≤ NR` columns of one tile row. The bias comes
/// last, as in TFLite's reference kernels, so the simd128 build sums in their order.
#[inline(always)]
pub(crate) fn finish(acc: &[F4; 2], bias: [F4; 2], (lo, hi): (F4, F4), out: &mut [f32]) {
    let (v0, v1) = (acc[0].plus(bias[0]).clamp(lo, hi), acc[1].plus(bias[1]).clamp(lo, hi));
    if out.len() == NR {
        v0.write(out);
        v1.write(&mut out[4..]);
    } else {
        let mut t = [0.0f32; NR];
        v0.write(&mut t);
        v1.write(&mut t[4..]);
        let cols = out.len();
        out.copy_from_slice(&t[..cols]);
    }
}

/// One row against every panel, two or one panels per pass over the row. (Batch-1
/// FULLY_CONNECTED has its own packing, [`super::gemv_f32`]; this path serves convolutions of one
/// output pixel and that packing's last few panels.)
fn gemv_row(row: &[f32], w: &PackedF32, ep: Epilogue, out: &mut [f32]) {
    let panels = w.n.div_ceil(NR);
    let mut p = 0;
    while p < panels {
        p += match panels - p {
            2.. => gemv_panels::<2>(row, w, p, ep, out),
            _ => gemv_panels::<1>(row, w, p, ep, out),
        };
    }
}

/// Panels `p..p + P` against one row: per reduction step one broadcast and `2·P` multiply-adds.
/// Returns `P`.
#[inline(always)]
fn gemv_panels<const P: usize>(row: &[f32], w: &PackedF32, p: usize, ep: Epilogue, out: &mut [f32]) -> usize {
    let k = w.k;
    let row = &row[..k];
    let panels: [&[f32]; P] = core::array::from_fn(|j| w.panel(p + j));
    let mut acc = [[F4::splat(0.0); 2]; P];
    for (kk, x) in row.iter().enumerate() {
        // SAFETY: `x` is an element of `row`; each panel holds k·NR values, so the loads at
        // kk·NR and kk·NR + 4 are in bounds.
        unsafe {
            let a = F4::load_splat(x);
            for j in 0..P {
                let b = panels[j].as_ptr().add(kk * NR);
                acc[j] = [a.madd(F4::load(b), acc[j][0]), a.madd(F4::load(b.add(4)), acc[j][1])];
            }
        }
    }
    let (lo, hi) = (F4::splat(ep.min), F4::splat(ep.max));
    for (j, v) in acc.iter().enumerate() {
        let first = (p + j) * NR;
        finish(v, bias_of(ep, p + j, w.n), (lo, hi), &mut out[first..first + NR.min(w.n - first)]);
    }
    P
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check(m: usize, n: usize, k: usize, with_bias: bool) {
        let mut rng = Rng::new((m * 131 + n * 17 + k) as u64);
        let lda = k + 3;
        let ldo = n + 2;
        let a: Vec<f32> = (0..m * lda).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let ep = if with_bias {
            Epilogue { bias: Some(&bias), min: -1.5, max: 2.0 }
        } else {
            Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY }
        };
        let mut want = vec![7.0; m * ldo];
        reference(m, n, k, &a, lda, &w, ep, &mut want, ldo);
        let mut got = vec![7.0; m * ldo];
        gemm(m, &a, lda, &PackedF32::pack(&w, n, k), ep, &mut got, ldo);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "m={m} n={n} k={k} at {i}: {g} vs {e}");
        }
    }

    /// Tile and panel edges, leftovers and the one-row GEMV path (one to five panels).
    #[test]
    fn gemm_matches_reference_on_generated_shapes() {
        for m in [1, 2, 3, 4, 5, 9] {
            for n in [1, 3, 8, 9, 17, 24, 32, 33, 41] {
                for k in [0, 1, 2, 3, 7, 16, 17, 33, 64] {
                    check(m, n, k, (m + n + k) % 2 == 0);
                }
            }
        }
    }

    /// A row left past the last full tile (one-row tiles) sums in the order a full tile does: the
    /// first `m` rows of a 12-row product, bit for bit.
    #[test]
    fn leftover_rows_equal_full_tile_rows_bit_for_bit() {
        let (n, k) = (19, 37);
        let mut rng = Rng::new(5);
        let a: Vec<f32> = (0..12 * k).map(|_| rng.normal()).collect();
        let w = PackedF32::pack(&(0..n * k).map(|_| rng.normal()).collect::<Vec<_>>(), n, k);
        let bias: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let ep = Epilogue { bias: Some(&bias), min: -2.0, max: 2.5 };
        let mut all = vec![0.0; 12 * n];
        gemm(12, &a, k, &w, ep, &mut all, n);
        for m in [2, 3, 5, 6, 7, 9, 10, 11] {
            let mut some = vec![0.0; m * n];
            gemm(m, &a, k, &w, ep, &mut some, n);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&some), bits(&all[..m * n]), "m = {m}");
        }
    }

    #[test]
    fn packing_from_either_layout_agrees() {
        let (n, k) = (11, 5);
        let w: Vec<f32> = (0..n * k).map(|v| v as f32).collect();
        let mut kn = vec![0.0; n * k];
        for j in 0..n {
            for kk in 0..k {
                kn[kk * n + j] = w[j * k + kk];
            }
        }
        assert_eq!(PackedF32::pack(&w, n, k), PackedF32::pack_kn(&kn, k, n));
    }
}
