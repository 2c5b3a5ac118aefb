//! Int8 matrix products on the relaxed dot product with each weight's sign moved onto the
//! activation: sixteen multiply-adds per instruction, exact on every engine.
//!
//! `i32x4.relaxed_dot_i8x16_i7x16_add(a, b, c)` is specified only for bytes of `b` in [0, 127];
//! there x86 with VNNI (`vpdpbusd`), x86 without it (`pmaddubsw` + `pmaddwd` + `paddd`: a pair
//! reaches at most 2·128·127 = 32,512, so it cannot saturate) and ARM (`sdot`) all compute the
//! exact dot product. So `b` holds `|w|` (in [0, 127] for TFLite's int8 weights, [-127, 127]) and
//! `a` the activation with the weight's sign: `x' = x XOR m`, `m = 0xFF` where `w < 0`, else 0.
//! For `w < 0`, `x XOR 0xFF = -x - 1` (an int8 for every int8 `x`, where `-x` is not for -128),
//! and `(-x - 1)·|w| = (-x - 1)·(-w) = x·w + w`. So `Σ x'·|w| = Σ x·w + Σ_{w<0} w`: a per-channel
//! constant, taken off through the channel offset ([`PackedSigns::correction`]). Per row broadcast
//! and weight vector that is one `v128.xor` and one dot product, where the 7-bit halves of
//! `w + 127` this replaced needed two dot products for the same sixteen products.
//!
//! Layout ("c4" with masks): panels of [`NR`] = 8 channels, `k` padded to a multiple of 4; per
//! k-quad [`QUAD`] bytes: `|w|` as `[channel][4]` (32 bytes), then the masks in the same order.
//! Padding is 0 in both, so it adds nothing whatever the rows hold there. Masks stored beside
//! `|w|` (two more loads per k-quad) measured faster than deriving both from the signed weights
//! per k-quad (`i8x16.abs`, `i8x16.lt_s`) and sharing them across the tile's rows: a 576×128×128
//! product with requantization in Chromium 156 on the Xeon without AVX-VNNI, minimum of 20 runs,
//! 0.48 against 0.54 ms (the same with `i16x8.relaxed_dot_i8x16_i7x16_s` + `extadd_pairwise`
//! in place of the accumulating dot: 0.56 ms).
//!
//! Where it runs ([`super::gemm_dot4::kind`]): on engines whose relaxed dot is exact as specified
//! but neither an exact u8 × i8 dot (x86 with AVX-VNNI) nor the saturating `pmaddubsw` lowering of
//! x86 without it; that is ARM, where `sdot` + `eor` do sixteen multiply-adds. On x86 without
//! AVX-VNNI the `i32x4.dot_i16x8_s` kernels stay: there this kernel measured 1.26× their time on
//! the product above (0.48 against 0.38 ms), and whole models 1.4–1.6× (see the README).

use super::gemm_i8::{tile_loop, KernelsOf, MicroOf, Requant, MR, NR, PANELS};

/// Bytes of one k-quad of a panel: `|w|` of 8 channels × 4, then their masks.
pub const QUAD: usize = 8 * NR;

/// Int8 weights `[n][k]` as `|w|` and sign masks in panels, with the correction the sign trick
/// needs.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedSigns {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to a multiple of 4: the length activation rows must be readable for.
    pub kq: usize,
    data: Vec<u8>,
    /// Added to each channel's offset: `-Σ_{w<0} w[j][k]`, what the sign trick adds to the sums.
    pub correction: Vec<i32>,
}

impl PackedSigns {
    /// `None` when a weight is -128 (outside TFLite's int8 weight range: `|w|` would be 128, out
    /// of the instruction's specified range), so the caller keeps another kernel.
    pub fn pack(w: &[i8], n: usize, k: usize) -> Option<PackedSigns> {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        if w[..n * k].contains(&i8::MIN) {
            return None;
        }
        let kq = k.div_ceil(4) * 4;
        let panels = n.div_ceil(NR);
        let mut data = vec![0u8; panels * kq / 4 * QUAD];
        for p in 0..panels {
            for j in 0..NR.min(n - p * NR) {
                for (kk, &v) in w[(p * NR + j) * k..(p * NR + j + 1) * k].iter().enumerate() {
                    let at = (p * kq / 4 + kk / 4) * QUAD + j * 4 + kk % 4;
                    data[at] = v.unsigned_abs();
                    data[at + QUAD / 2] = if v < 0 { 0xFF } else { 0 };
                }
            }
        }
        let negative = |j: usize| w[j * k..(j + 1) * k].iter().filter(|&&v| v < 0).map(|&v| v as i32).sum::<i32>();
        let correction = (0..n).map(|j| -negative(j)).collect();
        Some(PackedSigns { n, k, kq, data, correction })
    }

    fn panel(&self, p: usize) -> &[u8] {
        let len = self.kq / 4 * QUAD;
        &self.data[p * len..(p + 1) * len]
    }
}

/// A micro-kernel: `MR` rows of int8 activations (each readable for `kq` bytes) against a panel.
pub type Micro = MicroOf<i8, u8>;

/// This module's kernels.
pub type Kernels = KernelsOf<i8, u8>;

/// The arithmetic the relaxed instruction performs on this layout (in its specified range), in
/// plain loops: `Σ (x XOR m)·|w|` per channel.
pub fn portable_micro(kq: usize, rows: [&[i8]; MR], panel: &[u8], acc: &mut [[i32; NR]; MR]) {
    for (q, w) in panel[..kq / 4 * QUAD].chunks_exact(QUAD).enumerate() {
        let (abs, sign) = w.split_at(QUAD / 2);
        for (row, acc) in rows.iter().zip(acc.iter_mut()) {
            for (c, acc) in acc.iter_mut().enumerate() {
                let at = |t: usize| 4 * c + t;
                let sum: i32 = (0..4).map(|t| (row[4 * q + t] ^ sign[at(t)] as i8) as i32 * abs[at(t)] as i32).sum();
                *acc = acc.wrapping_add(sum);
            }
        }
    }
}

pub fn portable_gemv(kq: usize, row: &[i8], panels: [&[u8]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
    for (panel, acc) in panels.iter().zip(acc.iter_mut()) {
        let mut tile = [[0i32; NR]; MR];
        portable_micro(kq, [row, row, row, row], panel, &mut tile);
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

/// The product of `m` int8 rows of `a` (stride `lda`, each readable for `w.kq` bytes) with the
/// packed weights, requantized into `out` (stride `ldo`); `rq.offset` must include
/// [`PackedSigns::correction`].
#[allow(clippy::too_many_arguments)]
pub fn tiled(m: usize, a: &[i8], lda: usize, w: &PackedSigns, rq: Requant, out: &mut [i8], ldo: usize, k: Kernels) {
    tile_loop(m, w.n, a, lda, w.kq, |p| w.panel(p), rq, out, ldo, k);
}

/// The product with the best kernels of this build.
pub fn gemm(m: usize, a: &[i8], lda: usize, w: &PackedSigns, rq: Requant, out: &mut [i8], ldo: usize) {
    tiled(m, a, lda, w, rq, out, ldo, best());
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed {
    //! The relaxed-SIMD kernels: per k-quad, a row's four bytes broadcast as one 32-bit value,
    //! then per weight vector one XOR with its masks and one dot product into four channels' sums.
    use super::super::gemm_i8::simd128::store;
    use super::{MR, NR, PANELS, QUAD};
    use core::arch::wasm32::*;

    /// A k-quad's two weight vectors (channels 0–3 and 4–7) at `wp`, each as `(|w|, masks)`.
    ///
    /// # Safety
    /// `wp` must be readable for [`QUAD`] bytes.
    #[inline(always)]
    unsafe fn quad(wp: *const u8) -> [(v128, v128); 2] {
        let at = |o: usize| v128_load(wp.add(o) as *const v128);
        [(at(0), at(32)), (at(16), at(48))]
    }

    /// Sixteen multiply-adds into `acc`: the row's four bytes `x` against four channels.
    #[inline(always)]
    fn dot(x: v128, (abs, sign): (v128, v128), acc: v128) -> v128 {
        i32x4_relaxed_dot_i8x16_i7x16_add(v128_xor(x, sign), abs, acc)
    }

    pub fn micro(kq: usize, rows: [&[i8]; MR], panel: &[u8], acc: &mut [[i32; NR]; MR]) {
        let panel = &panel[..kq / 4 * QUAD];
        let rows = rows.map(|r| &r[..kq]);
        let z = i32x4_splat(0);
        let mut a = [(z, z); MR];
        for q in 0..kq / 4 {
            // SAFETY: the panel holds (kq/4)·QUAD bytes, so the quad at q·QUAD is in bounds; each
            // row holds kq bytes, so the 4-byte load at 4q is too. wasm loads need no alignment.
            unsafe {
                let [w0, w1] = quad(panel.as_ptr().add(q * QUAD));
                for (acc, row) in a.iter_mut().zip(&rows) {
                    let x = v128_load32_splat(row.as_ptr().add(4 * q) as *const u32);
                    *acc = (dot(x, w0, acc.0), dot(x, w1, acc.1));
                }
            }
        }
        store(acc, a);
    }

    pub fn gemv(kq: usize, row: &[i8], panels: [&[u8]; PANELS], acc: &mut [[i32; NR]; PANELS]) {
        let row = &row[..kq];
        let panels = panels.map(|p| &p[..kq / 4 * QUAD]);
        let z = i32x4_splat(0);
        let mut a = [(z, z); PANELS];
        for q in 0..kq / 4 {
            // SAFETY: as in `micro`, for each panel and the one row.
            unsafe {
                let x = v128_load32_splat(row.as_ptr().add(4 * q) as *const u32);
                for (acc, panel) in a.iter_mut().zip(&panels) {
                    let [w0, w1] = quad(panel.as_ptr().add(q * QUAD));
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
    use crate::kernels::gemm_i8::for_each_tile;
    use crate::kernels::gemm_i8::tests::{sweep, Case};

    fn kernels() -> Vec<(&'static str, Kernels)> {
        #[allow(unused_mut)]
        let mut v = vec![("portable", PORTABLE)];
        // Exact on every engine that follows the specification, so tested wherever it compiles.
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        v.push(("relaxed", Kernels { micro: relaxed::micro, gemv: relaxed::gemv }));
        v
    }

    /// `c`'s product through this module's packing and kernels `k`, rows padded with `pad` past k.
    fn run(c: &Case, m: usize, n: usize, kk: usize, pad: i8, k: Kernels) -> Vec<i8> {
        let lda = kk.div_ceil(4) * 4 + 4;
        let mut a = vec![pad; m * lda];
        for i in 0..m {
            a[i * lda..i * lda + kk].copy_from_slice(&c.a[i * kk..(i + 1) * kk]);
        }
        let w = PackedSigns::pack(&c.w, n, kk).expect("weights in [-127, 127]");
        let offset: Vec<i32> = c.offset.iter().zip(&w.correction).map(|(a, b)| a.wrapping_add(*b)).collect();
        let mut got = vec![0i8; m * c.ldo];
        tiled(m, &a, lda, &w, Requant::new(&offset, &c.stage, c.vec.as_ref()), &mut got, c.ldo, k);
        got
    }

    #[test]
    fn every_kernel_is_exact_on_generated_shapes() {
        for (name, k) in kernels() {
            sweep(|m, n, kk| {
                let c = Case::new(m, n, kk, true);
                // Bytes past k are read but must not count (the weights there are zero).
                assert_eq!(run(&c, m, n, kk, -77, k), c.want, "{name}: m={m} n={n} k={kk}");
            });
        }
    }

    /// The raw sums plus the correction equal `Σ x·w` exactly with activations and weights at
    /// the ends of their ranges (a neighbour in every third activation and every fifth weight),
    /// where `pmaddubsw`'s pairs come closest to saturating.
    #[test]
    fn extreme_values_are_exact() {
        for (name, k) in kernels() {
            for (x, w) in [(-128i8, -127i8), (-128, 127), (127, -127), (127, 127), (-1, -1), (0, -127)] {
                sweep(|m, n, kk| {
                    let a: Vec<i8> = (0..m * kk).map(|i| if i % 3 == 2 { x.wrapping_add(1) } else { x }).collect();
                    let wt: Vec<i8> = (0..n * kk).map(|i| if i % 5 == 4 { -w } else { w }).collect();
                    let want =
                        |i: usize, j: usize| (0..kk).map(|t| a[i * kk + t] as i32 * wt[j * kk + t] as i32).sum::<i32>();
                    let packed = PackedSigns::pack(&wt, n, kk).unwrap();
                    let lda = packed.kq + 4;
                    let mut rows = vec![x; m * lda];
                    rows.chunks_exact_mut(lda).zip(a.chunks_exact(kk)).for_each(|(r, v)| r[..kk].copy_from_slice(v));
                    let mut seen = 0;
                    for_each_tile(
                        m,
                        n,
                        &rows,
                        lda,
                        packed.kq,
                        |p| packed.panel(p),
                        k,
                        |i0, r, j0, acc, cols| {
                            for (i, j) in (0..r).flat_map(|i| (0..cols).map(move |j| (i, j))) {
                                let got = acc[i][j].wrapping_add(packed.correction[j0 + j]);
                                assert_eq!(got, want(i0 + i, j0 + j), "{name}: x={x} w={w} m={m} n={n} k={kk}");
                                seen += 1;
                            }
                        },
                    );
                    assert_eq!(seen, m * n);
                });
            }
        }
    }

    #[test]
    fn minus_128_weights_are_refused() {
        assert!(PackedSigns::pack(&[1, -128, 3, 4], 2, 2).is_none());
        let p = PackedSigns::pack(&[-127, 127, 0, -3, 5], 1, 5).unwrap();
        assert_eq!(p.correction, vec![130]);
        // Channel 0's first quad (|w|, then its masks), then its second (one weight, padding).
        assert_eq!(&p.data[..4], &[127, 127, 0, 3]);
        assert_eq!(&p.data[32..36], &[0xFF, 0, 0, 0xFF]);
        assert_eq!(&p.data[QUAD..QUAD + 4], &[5, 0, 0, 0]);
        assert_eq!(&p.data[QUAD + 32..QUAD + 36], &[0, 0, 0, 0]);
    }
}
