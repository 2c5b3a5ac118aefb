//! FULLY_CONNECTED: float through [`gemm_f32`] (or [`gemv_f32`] for one row at a time), hybrid
//! (int8 weights, float activations) as LiteRT's hybrid kernel computes it.

use super::conv::QuantizedInput;
use super::gemm_f32::{self, Epilogue, PackedF32};
use super::gemv_f32::{self, PackedGemv};

/// Float weights `[n][k]`, packed for the number of rows the layer runs on.
#[derive(Clone, Debug, PartialEq)]
pub enum PackedFc {
    Rows(PackedF32),
    Row(PackedGemv),
}

impl PackedFc {
    /// The GEMV's packing for a layer of one row, else the GEMM's panels.
    pub fn pack(w: &[f32], n: usize, k: usize, rows: usize) -> PackedFc {
        if rows == 1 {
            PackedFc::Row(PackedGemv::pack(w, n, k))
        } else {
            PackedFc::Rows(PackedF32::pack(w, n, k))
        }
    }
}

/// Float FULLY_CONNECTED over `rows` input rows of `k` values.
pub fn fc_f32(rows: usize, input: &[f32], weights: &PackedFc, ep: Epilogue, out: &mut [f32]) {
    match weights {
        PackedFc::Rows(w) => gemm_f32::gemm(rows, input, w.k, w, ep, out, w.n),
        PackedFc::Row(w) => {
            for r in 0..rows {
                gemv_f32::gemv(&input[r * w.k..], w, ep, &mut out[r * w.n..]);
            }
        }
    }
}

/// Hybrid FULLY_CONNECTED: rows quantized one by one (`input.params[row]`), int8 weights `[n, k]`
/// with per-output `w_scale`. Output is `bias + (Σ w·(q − zp))·(in_scale·w_scale)`, then the clamp.
pub fn fc_hybrid(
    rows: usize,
    k: usize,
    input: QuantizedInput,
    weights: &[i8],
    w_scale: &[f32],
    ep: Epilogue,
    out: &mut [f32],
) {
    let n = w_scale.len();
    for r in 0..rows {
        let (in_scale, zp) = input.params[r];
        let x = &input.values[r * k..(r + 1) * k];
        for (j, o) in out[r * n..(r + 1) * n].iter_mut().enumerate() {
            let w = &weights[j * k..(j + 1) * k];
            let mut acc: i32 = 0;
            for (q, w) in x.iter().zip(w) {
                acc += (*w as i32) * (*q as i32 - zp);
            }
            let v = ep.bias.map_or(0.0, |b| b[j]) + acc as f32 * (in_scale * w_scale[j]);
            *o = v.max(ep.min).min(ep.max);
        }
    }
}
