//! Float one-row products (batch-1 FULLY_CONNECTED): weights packed for the GEMV.
//!
//! Groups of four [`gemm_f32`] panels ([`GROUP`] outputs) are interleaved per reduction step,
//! `[k][GROUP]`, so the loop walks one pointer and every load has a constant offset (over four
//! separate panels, each load needed an address computed beside it). The last `n mod GROUP`
//! outputs stay in plain panels and take [`gemm_f32::gemm`]'s one-row path. Every sum takes its
//! terms in the order of [`gemm_f32`] (the reduction in order, then the bias), so the outputs are
//! bit-equal to it.

use super::f32x4::F4;
use super::gemm_f32::{self, bias_of, finish, Epilogue, PackedF32, NR};

/// Outputs per interleaved group: four panels.
pub const GROUP: usize = 4 * NR;

/// Weights `[n][k]`: whole groups as `[group][k][GROUP]`, the rest as [`PackedF32`].
#[derive(Clone, Debug, PartialEq)]
pub struct PackedGemv {
    pub n: usize,
    pub k: usize,
    /// `[group][k][GROUP]` in blocks of four values, 16-byte aligned: no vector load straddles
    /// two cache lines.
    groups: Vec<Quad>,
    tail: PackedF32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(16))]
struct Quad([f32; 4]);

impl PackedGemv {
    /// Packs `w`, which holds `n` rows of `k` values.
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedGemv {
        assert!(w.len() >= n * k, "weights shorter than n*k");
        let head = n / GROUP * GROUP;
        let mut groups = vec![Quad::default(); head * k / 4];
        for (j, row) in w[..head * k].chunks_exact(k.max(1)).enumerate() {
            let group = &mut groups[j / GROUP * k * GROUP / 4..][..k * GROUP / 4];
            for (kk, &v) in row.iter().enumerate() {
                let at = kk * GROUP + j % GROUP;
                group[at / 4].0[at % 4] = v;
            }
        }
        PackedGemv { n, k, groups, tail: PackedF32::pack(&w[head * k..n * k], n - head, k) }
    }
}

/// `out = clamp(bias + w · row)` for one `row` of `w.k` values into `out[..w.n]`.
pub fn gemv(row: &[f32], w: &PackedGemv, ep: Epilogue, out: &mut [f32]) {
    let (n, k) = (w.n, w.k);
    assert!(row.len() >= k && out.len() >= n, "row or out too short");
    if let Some(b) = ep.bias {
        assert!(b.len() >= n, "bias too short");
    }
    let head = n / GROUP * GROUP;
    for g in 0..head / GROUP {
        let quads = &w.groups[g * k * GROUP / 4..][..k * GROUP / 4];
        group(&row[..k], quads, g * GROUP, ep, &mut out[g * GROUP..][..GROUP]);
    }
    let tail_ep = Epilogue { bias: ep.bias.map(|b| &b[head..]), ..ep };
    gemm_f32::gemm(1, &row[..k], k, &w.tail, tail_ep, &mut out[head..n], n - head);
}

/// One group (outputs `first..first + GROUP`) against `row`: per reduction step one broadcast and
/// eight multiply-adds, in eight accumulators; then [`gemm_f32`]'s epilogue per panel (the bias
/// last, the clamp).
#[inline(always)]
fn group(row: &[f32], group: &[Quad], first: usize, ep: Epilogue, out: &mut [f32]) {
    let mut acc = [F4::splat(0.0); GROUP / 4];
    let mut b = group.as_ptr() as *const f32;
    for x in row {
        // SAFETY: `group` holds `row.len() · GROUP` values and `b` steps GROUP at a time, once per
        // value of `row`.
        unsafe {
            let a = F4::load_splat(x);
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = a.madd(F4::load(b.add(4 * j)), *acc);
            }
            b = b.add(GROUP);
        }
    }
    let (lo, hi) = (F4::splat(ep.min), F4::splat(ep.max));
    for p in 0..GROUP / NR {
        let bias = bias_of(ep, first / NR + p, first + GROUP);
        finish(&[acc[2 * p], acc[2 * p + 1]], bias, (lo, hi), &mut out[p * NR..][..NR]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Bit-equal to the panel GEMM's one-row path (and so within its tolerance of the reference),
    /// on groups, tails, and both together; `out` past `n` untouched.
    #[test]
    fn gemv_equals_the_panel_gemm_bit_for_bit() {
        for n in [1, 7, 8, 31, 32, 33, 64, 70, 96, 130] {
            for k in [0, 1, 2, 5, 16, 33] {
                let mut rng = Rng::new((n * 97 + k) as u64);
                let row: Vec<f32> = (0..k).map(|_| rng.normal()).collect();
                let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
                let bias: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
                for ep in [
                    Epilogue { bias: Some(&bias), min: -1.5, max: 2.0 },
                    Epilogue { bias: None, min: f32::NEG_INFINITY, max: f32::INFINITY },
                ] {
                    let mut want = vec![7.0; n + 2];
                    gemm_f32::gemm(1, &row, k, &PackedF32::pack(&w, n, k), ep, &mut want, n);
                    let mut got = vec![7.0; n + 2];
                    gemv(&row, &PackedGemv::pack(&w, n, k), ep, &mut got);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "n={n} k={k}");
                }
            }
        }
    }
}
