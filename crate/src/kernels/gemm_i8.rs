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
//! all tested against the reference on tile edges and leftovers. CONV_2D feeds the micro-kernel
//! without im2col where it can ([`super::igemm_i8`]): it sums a patch run by run into one tile.

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

    pub(crate) fn panel(&self, p: usize) -> &[i16] {
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

impl<'a> Requant<'a> {
    pub fn new(offset: &'a [i32], stage: &'a OutputStage, vec: Option<&'a VecStage>) -> Self {
        Requant { offset, stage, vec }
    }

    /// Requantizes `cols` sums of the first `rows` rows of a tile, channels from `first`, into
    /// `out` (row stride `ldo`, starting at the tile's first row's channel `first`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store(
        &self,
        acc: &[[i32; NR]; MR],
        rows: usize,
        first: usize,
        cols: usize,
        out: &mut [i8],
        ldo: usize,
    ) {
        requant::tile(acc, rows, cols, self.offset, self.stage, self.vec, first, out, ldo);
    }
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
/// the packed `k`) against one panel of `NR` channels, adding to the sums already in `acc`.
pub type MicroOf<A, W> = fn(k: usize, rows: [&[A]; MR], panel: &[W], acc: &mut [[i32; NR]; MR]);

/// This module's micro-kernels: i16 rows (each readable for `kp` values) against an i16 panel.
pub type Micro = MicroOf<i16, i16>;

/// Panels a GEMV kernel sums at once.
pub const PANELS: usize = 4;

/// A GEMV kernel for a single row (readable for the packed `k`) against [`PANELS`] panels: for
/// batch-1 FULLY_CONNECTED and leftover rows, where a row tile would compute mostly copies.
pub type GemvOf<A, W> = fn(k: usize, row: &[A], panels: [&[W]; PANELS], acc: &mut [[i32; NR]; PANELS]);

/// A family's row-tile and single-row kernels.
pub struct KernelsOf<A, W> {
    pub micro: MicroOf<A, W>,
    pub gemv: GemvOf<A, W>,
}

impl<A, W> Clone for KernelsOf<A, W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, W> Copy for KernelsOf<A, W> {}

/// This module's kernels.
pub type Kernels = KernelsOf<i16, i16>;

pub fn portable_gemv(kp: usize, row: &[i16], panels: [&[i16]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
    for (panel, acc) in panels.iter().zip(acc.iter_mut()) {
        for (pair, w) in panel[..kp * NR].chunks_exact(2 * NR).enumerate() {
            let (x0, x1) = (row[2 * pair] as i32, row[2 * pair + 1] as i32);
            for c in 0..NR {
                acc[c] = acc[c].wrapping_add(x0 * w[2 * c] as i32 + x1 * w[2 * c + 1] as i32);
            }
        }
    }
}

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
pub fn tiled(m: usize, a: &[i16], lda: usize, w: &PackedI8, rq: Requant, out: &mut [i8], ldo: usize, k: Kernels) {
    tile_loop(m, w.n, a, lda, w.kp, |p| w.panel(p), rq, out, ldo, k);
}

/// The tiling the int8 GEMMs share: rows of `a` (each readable for `klen` elements) in groups of
/// [`MR`] against each panel of [`NR`] channels that `panel` returns, the `MR`×`NR` tile summed
/// by `k.micro`, then requantized into `out`. A last group of two or three rows repeats row 0 in
/// the spare slots and drops their sums; a single row goes to `k.gemv` ([`gemv_row`]).
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
    k: KernelsOf<A, W>,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(out.len() >= (m - 1) * ldo + n, "out too short");
    assert!(rq.offset.len() >= n, "offsets too short");
    // A last single row (all of a batch-1 FULLY_CONNECTED) goes to the GEMV kernel here.
    let tiled_rows = if m % MR == 1 { m - 1 } else { m };
    for_each_tile(tiled_rows, n, a, lda, klen, &panel, k, |i0, rows, first, acc, cols| {
        rq.store(acc, rows, first, cols, &mut out[i0 * ldo + first..(i0 + rows - 1) * ldo + first + cols], ldo);
    });
    if tiled_rows < m {
        let i = m - 1;
        gemv_row(n, &a[i * lda..i * lda + klen], &panel, rq, &mut out[i * ldo..i * ldo + n], k);
    }
}

/// One row (readable for the packed `k`) against every panel with the GEMV kernel, its sums
/// requantized [`PANELS`]·[`NR`] channels at a time straight from the kernel's accumulators:
/// `out[j] = stage(Σ_k row[k]·w[j][k] + offset[j])`.
pub(crate) fn gemv_row<'w, A, W: 'w>(
    n: usize,
    row: &[A],
    panel: impl Fn(usize) -> &'w [W],
    rq: Requant,
    out: &mut [i8],
    k: KernelsOf<A, W>,
) {
    gemv_panels(n, row, &panel, k, |first, sums| {
        let cols = sums.len();
        requant::row(sums, rq.offset, rq.stage, rq.vec, first, &mut out[first..first + cols]);
    });
}

/// One row (readable for the packed `k`) against the panels of `n` channels, [`PANELS`] at a
/// time with the GEMV kernel (a last short group repeats its first panel and drops those sums):
/// `sums(first, s)` receives the sums of channels `first..first + s.len()`, all of them real.
fn gemv_panels<'w, A, W: 'w>(
    n: usize,
    row: &[A],
    panel: impl Fn(usize) -> &'w [W],
    k: KernelsOf<A, W>,
    mut sums: impl FnMut(usize, &mut [i32]),
) {
    let panels = n.div_ceil(NR);
    for p0 in (0..panels).step_by(PANELS) {
        let here = PANELS.min(panels - p0);
        let pick = |j: usize| panel(p0 + if j < here { j } else { 0 });
        let mut acc = [[0i32; NR]; PANELS];
        (k.gemv)(row.len(), row, [pick(0), pick(1), pick(2), pick(3)], &mut acc);
        let first = p0 * NR;
        let flat = acc.as_flattened_mut();
        let cols = (n - first).min(flat.len());
        sums(first, &mut flat[..cols]);
    }
}

/// The sums of the product, tile by tile: `store(first_row, rows, first_channel, sums, channels)`
/// receives each tile (`rows` of its `MR` rows and `channels` of its `NR` columns are real). For
/// int8 requantization and other epilogues (the hybrid kernels scale the sums to float).
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_tile<'w, A, W: 'w>(
    m: usize,
    n: usize,
    a: &[A],
    lda: usize,
    klen: usize,
    panel: impl Fn(usize) -> &'w [W],
    k: KernelsOf<A, W>,
    mut store: impl FnMut(usize, usize, usize, &[[i32; NR]; MR], usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= klen && a.len() >= (m - 1) * lda + klen, "a rows must be padded to the packed k");
    let panels = n.div_ceil(NR);
    for i0 in (0..m).step_by(MR) {
        let rows_here = MR.min(m - i0);
        if rows_here == 1 {
            let row = &a[i0 * lda..i0 * lda + klen];
            gemv_panels(n, row, &panel, k, |first, sums| {
                for (j, chunk) in sums.chunks(NR).enumerate() {
                    let mut tile = [[0i32; NR]; MR];
                    tile[0][..chunk.len()].copy_from_slice(chunk);
                    store(i0, 1, first + j * NR, &tile, chunk.len());
                }
            });
            continue;
        }
        let row = |r: usize| {
            let i = i0 + if r < rows_here { r } else { 0 };
            &a[i * lda..i * lda + klen]
        };
        let rows = [row(0), row(1), row(2), row(3)];
        for p in 0..panels {
            let mut acc = [[0i32; NR]; MR];
            (k.micro)(klen, rows, panel(p), &mut acc);
            store(i0, rows_here, p * NR, &acc, NR.min(n - p * NR));
        }
    }
}

/// The portable kernels (what tests compare the vector ones against).
pub const PORTABLE: Kernels = Kernels { micro: portable_micro, gemv: portable_gemv };

/// The best kernels this build has.
pub fn best() -> Kernels {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        Kernels { micro: simd128::micro, gemv: simd128::gemv }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        PORTABLE
    }
}

/// The product with the best available kernels.
pub fn gemm(m: usize, a: &[i16], lda: usize, w: &PackedI8, rq: Requant, out: &mut [i8], ldo: usize) {
    tiled(m, a, lda, w, rq, out, ldo, best());
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! wasm simd128 twin: per k-pair, each row's two i16 values are broadcast as one i32 and
    //! multiplied against 8 channels' weight pairs with two `i32x4.dot_i16x8_s`.
    use super::{MR, NR, PANELS};
    use core::arch::wasm32::*;

    pub fn micro(kp: usize, rows: [&[i16]; MR], panel: &[i16], acc: &mut [[i32; NR]; MR]) {
        store(acc, sums(kp, rows, panel, load(acc)));
    }

    /// A 4×8 tile's sums kept in registers: `start` plus each row's products with the panel's
    /// eight channels over `kp` values (rows readable for `kp` i16, the panel for `kp·NR`). For
    /// kernels that requantize straight from the returned vectors ([`crate::kernels::int8::pointwise_conv`]).
    #[inline(always)]
    pub fn sums(kp: usize, rows: [&[i16]; MR], panel: &[i16], start: [(v128, v128); MR]) -> [(v128, v128); MR] {
        let panel = &panel[..kp * NR];
        let rows = [&rows[0][..kp], &rows[1][..kp], &rows[2][..kp], &rows[3][..kp]];
        let [mut a0, mut a1, mut a2, mut a3] = start;
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
        [a0, a1, a2, a3]
    }

    /// One row against four panels: per k-pair one broadcast and eight `i32x4.dot_i16x8_s`.
    pub fn gemv(kp: usize, row: &[i16], panels: [&[i16]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
        let row = &row[..kp];
        let panels = panels.map(|p| &p[..kp * NR]);
        let z = i32x4_splat(0);
        let mut a = [(z, z); PANELS];
        for p in 0..kp / 2 {
            // SAFETY: each panel holds kp·NR i16, so the loads at p·16 and p·16 + 8 are in
            // bounds; the row holds kp i16, so the 4-byte load at 2p is too.
            unsafe {
                let x = v128_load32_splat(row.as_ptr().add(2 * p) as *const u32);
                for (acc, panel) in a.iter_mut().zip(&panels) {
                    let wp = panel.as_ptr().add(p * 2 * NR);
                    let (w0, w1) = (v128_load(wp as *const v128), v128_load(wp.add(8) as *const v128));
                    *acc = (i32x4_add(acc.0, i32x4_dot_i16x8(x, w0)), i32x4_add(acc.1, i32x4_dot_i16x8(x, w1)));
                }
            }
        }
        store(acc, a);
    }

    /// Loads a tile's sums as four pairs of accumulator vectors.
    #[inline(always)]
    fn load(acc: &[[i32; NR]; 4]) -> [(v128, v128); 4] {
        // SAFETY: acc[r] is [i32; 8]: two 16-byte loads fit.
        acc.map(|r| unsafe { (v128_load(r.as_ptr() as *const v128), v128_load(r.as_ptr().add(4) as *const v128)) })
    }

    /// Stores four pairs of accumulator vectors into a tile.
    #[inline(always)]
    pub(crate) fn store(acc: &mut [[i32; NR]; 4], v: [(v128, v128); 4]) {
        for (r, (lo, hi)) in v.into_iter().enumerate() {
            // SAFETY: acc[r] is [i32; 8]: two 16-byte stores fit.
            unsafe {
                v128_store(acc[r].as_mut_ptr() as *mut v128, lo);
                v128_store(acc[r].as_mut_ptr().add(4) as *mut v128, hi);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::fixedpoint::{quantize_multiplier, Rescale};
    use crate::rng::Rng;

    /// Generated shapes, as XNNPACK's GEMM tester sweeps them: rows around the tile (1 takes the
    /// GEMV path), columns below, at and past one panel and several GEMV groups, depths stepping
    /// through primes and tile multiples on both sides.
    pub(crate) fn sweep(mut f: impl FnMut(usize, usize, usize)) {
        for m in [1, 2, 3, 4, 5, 8, 9] {
            for n in [1, 3, 7, 8, 9, 16, 17, 31, 32, 33, 41] {
                for k in [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 67] {
                    f(m, n, k);
                }
            }
        }
    }

    /// A random product with its reference result: int8 `a` `[m][k]`, weights `[n][k]`
    /// (in [-127, 127] when `symmetric`, else the whole int8 range), per-channel stages and
    /// offsets, and a clamp; `want` is [`reference`]'s output with row stride `ldo`.
    pub(crate) struct Case {
        pub a: Vec<i8>,
        pub w: Vec<i8>,
        pub offset: Vec<i32>,
        pub stage: OutputStage,
        pub vec: Option<VecStage>,
        pub ldo: usize,
        pub want: Vec<i8>,
    }

    impl Case {
        pub(crate) fn new(m: usize, n: usize, k: usize, symmetric: bool) -> Case {
            let mut rng = Rng::new((m * 1_000_003 + n * 1009 + k) as u64);
            let a: Vec<i8> = (0..m * k).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
            let lowest = if symmetric { -127 } else { -128 };
            let w: Vec<i8> = (0..n * k).map(|_| (rng.below((128 - lowest) as usize) as i32 + lowest) as i8).collect();
            let offset: Vec<i32> = (0..n).map(|_| rng.below(20000) as i32 - 10000).collect();
            let scales =
                (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.0005 + rng.uniform() as f64 * 0.01))).collect();
            let (lo, hi) = [(-128, 127), (-100, 120), (-5, 127)][(m + n + k) % 3];
            let stage = OutputStage::new(scales, -5, lo, hi);
            let vec = VecStage::new(&stage, n);
            let ldo = n + 3;
            let mut want = vec![0i8; m * ldo];
            reference(m, n, k, &a, k, &w, Requant::new(&offset, &stage, None), &mut want, ldo);
            Case { a, w, offset, stage, vec, ldo, want }
        }

        pub(crate) fn requant(&self) -> Requant<'_> {
            Requant::new(&self.offset, &self.stage, self.vec.as_ref())
        }
    }

    fn kernels() -> Vec<(&'static str, Kernels)> {
        #[allow(unused_mut)]
        let mut v = vec![("portable", PORTABLE)];
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        v.push(("simd128", Kernels { micro: simd128::micro, gemv: simd128::gemv }));
        v
    }

    #[test]
    fn every_kernel_is_exact_on_generated_shapes() {
        for (name, k) in kernels() {
            sweep(|m, n, kk| {
                let c = Case::new(m, n, kk, false);
                let kp = kk.div_ceil(2) * 2;
                let lda = kp + 6;
                let mut a16 = vec![0i16; m * lda];
                for i in 0..m {
                    for j in 0..kk {
                        a16[i * lda + j] = c.a[i * kk + j] as i16;
                    }
                }
                let mut got = vec![0i8; m * c.ldo];
                tiled(m, &a16, lda, &PackedI8::pack(&c.w, n, kk), c.requant(), &mut got, c.ldo, k);
                assert_eq!(got, c.want, "{name}: m={m} n={n} k={kk}");
            });
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
