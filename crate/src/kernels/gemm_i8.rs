//! Int8 matrix products for CONV_2D (after im2col) and FULLY_CONNECTED, with int32 accumulation.
//!
//! `acc[i][j] = Σ_k a[i][k] · w[j][k]`, then an epilogue adds a per-output offset (bias plus the
//! input zero-point correction), requantizes with TFLite's fixed-point multiplier and clamps.
//!
//! Weights are packed once: panels of [`NR`] output channels, `k` padded to a multiple of [`KC`] with
//! zeros and widened to i16, laid out `[panel][k / KC][NR][KC]` so the wasm kernel feeds
//! `i32x4.dot_i16x8_s` straight from memory. Rows of `a` must be readable up to the padded length
//! (the callers copy rows into a zero-padded scratch when they are not).
//!
//! Versions: [`reference`] (plain loops), [`portable_micro`], and the wasm simd128 twin, all tested
//! against the reference on tile edges and leftovers.

use super::fixedpoint::OutputStage;

pub const NR: usize = 4;
pub const MR: usize = 4;
/// k-step of the micro-kernel (one i16x8 vector).
pub const KC: usize = 8;

/// Int8 weights `[n][k]` packed for the micro-kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedI8 {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to a multiple of [`KC`].
    pub kp: usize,
    data: Vec<i16>,
    /// Σ_k w[j][k] for each output j.
    pub row_sums: Vec<i32>,
}

impl PackedI8 {
    pub fn pack(w: &[i8], n: usize, k: usize) -> PackedI8 {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        let kp = k.div_ceil(KC) * KC;
        let panels = n.div_ceil(NR);
        let mut data = vec![0i16; panels * kp * NR];
        for p in 0..panels {
            for j in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + j) * k..(p * NR + j + 1) * k];
                for (kk, &v) in row.iter().enumerate() {
                    let (blk, lane) = (kk / KC, kk % KC);
                    data[((p * (kp / KC) + blk) * NR + j) * KC + lane] = v as i16;
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

/// Requantization after the integer product: the output stage applied to `acc + offset_j`.
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Per output: bias plus the input zero-point correction.
    pub offset: &'a [i32],
    pub stage: &'a OutputStage,
}

impl Requant<'_> {
    #[inline]
    pub fn apply(&self, j: usize, acc: i32) -> i8 {
        self.stage.apply(j, acc.wrapping_add(self.offset[j]))
    }
}

/// Plain loops over unpacked `w` (`[n][k]`): the ground truth of the fast versions.
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
            out[i * ldo + j] = rq.apply(j, acc);
        }
    }
}

/// A micro-kernel: accumulates `MR` rows (each readable for `kp` values) against one panel.
pub type Micro = fn(kp: usize, rows: [&[i8]; MR], panel: &[i16], acc: &mut [[i32; NR]; MR]);

pub fn portable_micro(kp: usize, rows: [&[i8]; MR], panel: &[i16], acc: &mut [[i32; NR]; MR]) {
    let panel = &panel[..kp * NR];
    let rows = [&rows[0][..kp], &rows[1][..kp], &rows[2][..kp], &rows[3][..kp]];
    for (blk, w) in panel.chunks_exact(NR * KC).enumerate() {
        for r in 0..MR {
            let x = &rows[r][blk * KC..blk * KC + KC];
            for c in 0..NR {
                let wc = &w[c * KC..c * KC + KC];
                let mut s = 0i32;
                for l in 0..KC {
                    s += x[l] as i32 * wc[l] as i32;
                }
                acc[r][c] = acc[r][c].wrapping_add(s);
            }
        }
    }
}

/// `out[i][j] = rq(Σ_k a[i][k] · w[j][k])` for `m` rows. Each row of `a` (stride `lda`) must be
/// readable for `w.kp` values with zeros past `w.k`.
#[allow(clippy::too_many_arguments)]
pub fn tiled(m: usize, a: &[i8], lda: usize, w: &PackedI8, rq: Requant, out: &mut [i8], ldo: usize, micro: Micro) {
    let (n, kp) = (w.n, w.kp);
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= kp && a.len() >= (m - 1) * lda + kp, "a rows must be padded to kp");
    assert!(out.len() >= (m - 1) * ldo + n, "out too short");
    assert!(rq.offset.len() >= n && (rq.stage.scales.len() == 1 || rq.stage.scales.len() >= n), "requant too short");
    for i0 in (0..m).step_by(MR) {
        let rows_here = MR.min(m - i0);
        let row = |r: usize| {
            let i = i0 + if r < rows_here { r } else { 0 };
            &a[i * lda..i * lda + kp]
        };
        let rows = [row(0), row(1), row(2), row(3)];
        for p in 0..n.div_ceil(NR) {
            let mut acc = [[0i32; NR]; MR];
            micro(kp, rows, w.panel(p), &mut acc);
            let cols = NR.min(n - p * NR);
            for (r, acc_row) in acc.iter().enumerate().take(rows_here) {
                let o = &mut out[(i0 + r) * ldo + p * NR..(i0 + r) * ldo + p * NR + cols];
                for (c, v) in o.iter_mut().enumerate() {
                    *v = rq.apply(p * NR + c, acc_row[c]);
                }
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
pub fn gemm(m: usize, a: &[i8], lda: usize, w: &PackedI8, rq: Requant, out: &mut [i8], ldo: usize) {
    tiled(m, a, lda, w, rq, out, ldo, best_micro());
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    //! wasm simd128 twin: per k-step, each row's 8 values are loaded sign-extended to i16
    //! (`v128.load8x8_s`) and multiplied against each channel's 8 pre-widened weights with
    //! `i32x4.dot_i16x8_s`; 16 i32x4 accumulators hold the 4×4 tile.
    use super::{KC, MR, NR};
    use core::arch::wasm32::*;

    pub fn micro(kp: usize, rows: [&[i8]; MR], panel: &[i16], acc: &mut [[i32; NR]; MR]) {
        let panel = &panel[..kp * NR];
        let rows = [&rows[0][..kp], &rows[1][..kp], &rows[2][..kp], &rows[3][..kp]];
        let zero = i32x4_splat(0);
        let mut v = [[zero; NR]; MR];
        for (blk, w) in panel.chunks_exact(NR * KC).enumerate() {
            // SAFETY: `w` holds NR·KC = 32 i16 (four 16-byte vectors) and every row slice holds
            // kp >= (blk + 1)·KC bytes, so each 8-byte load is in bounds. Loads need no alignment.
            unsafe {
                let wv = [
                    v128_load(w.as_ptr() as *const v128),
                    v128_load(w.as_ptr().add(KC) as *const v128),
                    v128_load(w.as_ptr().add(2 * KC) as *const v128),
                    v128_load(w.as_ptr().add(3 * KC) as *const v128),
                ];
                for r in 0..MR {
                    let x = i16x8_load_extend_i8x8(rows[r].as_ptr().add(blk * KC));
                    for c in 0..NR {
                        v[r][c] = i32x4_add(v[r][c], i32x4_dot_i16x8(x, wv[c]));
                    }
                }
            }
        }
        for r in 0..MR {
            // Horizontal sums of the four channel accumulators, as one i32x4 [c0, c1, c2, c3].
            let s01 =
                i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(v[r][0], v[r][1]), i32x4_shuffle::<2, 6, 3, 7>(v[r][0], v[r][1]));
            let s23 =
                i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(v[r][2], v[r][3]), i32x4_shuffle::<2, 6, 3, 7>(v[r][2], v[r][3]));
            let s = i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23));
            acc[r][0] = acc[r][0].wrapping_add(i32x4_extract_lane::<0>(s));
            acc[r][1] = acc[r][1].wrapping_add(i32x4_extract_lane::<1>(s));
            acc[r][2] = acc[r][2].wrapping_add(i32x4_extract_lane::<2>(s));
            acc[r][3] = acc[r][3].wrapping_add(i32x4_extract_lane::<3>(s));
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
        let kp = k.div_ceil(KC) * KC;
        let lda = kp + 8;
        let mut a = vec![0i8; m * lda];
        for i in 0..m {
            for kk in 0..k {
                a[i * lda + kk] = (rng.below(256) as i32 - 128) as i8;
            }
        }
        let w: Vec<i8> = (0..n * k).map(|_| (rng.below(255) as i32 - 127) as i8).collect();
        let offset: Vec<i32> = (0..n).map(|_| rng.below(20000) as i32 - 10000).collect();
        let scales: Vec<_> =
            (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.0005 + rng.uniform() as f64 * 0.01))).collect();
        let stage = OutputStage::new(scales, -5, -100, 120);
        let rq = Requant { offset: &offset, stage: &stage };
        let ldo = n + 3;
        let mut want = vec![0i8; m * ldo];
        reference(m, n, k, &a, lda, &w, rq, &mut want, ldo);
        let mut got = vec![0i8; m * ldo];
        tiled(m, &a, lda, &PackedI8::pack(&w, n, k), rq, &mut got, ldo, micro);
        assert_eq!(got, want, "m={m} n={n} k={k}");
    }

    #[test]
    fn every_micro_kernel_is_exact_on_edges() {
        for micro in micros() {
            for &(m, n, k) in
                &[(1, 1, 1), (4, 4, 8), (5, 5, 9), (3, 7, 16), (9, 13, 27), (1, 10, 64), (4, 4, 7), (17, 3, 200)]
            {
                check(m, n, k, micro);
            }
        }
    }

    #[test]
    fn row_sums_are_exact() {
        let w: Vec<i8> = vec![1, -2, 3, 127, -127, 5];
        let p = PackedI8::pack(&w, 2, 3);
        assert_eq!(p.row_sums, vec![2, 5]);
        assert_eq!(p.kp, 8);
    }
}
