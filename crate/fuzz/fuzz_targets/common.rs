//! Shared by the fuzz targets: the budget they read with, and the bound on the work one input may
//! cause. scripts/fuzz.sh runs every target under an RSS limit (`-rss_limit_mb`), so memory that
//! grows past it is a finding; the budget here is far below that limit.
#![allow(dead_code)]

use tinyml_optimizer::budget::{self, Budget};
use tinyml_optimizer::ir::Model;
use tinyml_optimizer::npy::{NpyArray, NpyData};

/// What the targets read models with: 64 MiB per model, 16 MiB per tensor.
pub fn budget() -> Budget {
    Budget::with_max_memory(64 << 20)
}

/// Whether running, quantizing or pruning `model` stays cheap enough for a fuzz input: at most 64
/// nodes, each declared tensor at most 1 MiB and 8 MiB in all, and one input of at most 64 KiB.
pub fn small(model: &Model) -> bool {
    let Some(g) = model.graphs.first() else { return false };
    if g.nodes.len() > 64 || g.inputs.len() != 1 {
        return false;
    }
    let mut total = 0u64;
    for t in &g.tensors {
        match budget::bytes_u64(&t.shape, t.dtype) {
            Ok(b) if b <= 1 << 20 => total += b,
            _ => return false,
        }
    }
    let input = g.tensors.get(g.inputs[0]).map(|t| budget::bytes_u64(&t.shape, t.dtype));
    total <= 8 << 20 && matches!(input, Some(Ok(b)) if b <= 64 << 10)
}

/// `n` samples for the model's input: `[n, ...input shape without a leading 1]`, values in [-1, 1].
pub fn batch(model: &Model, n: usize) -> Option<NpyArray> {
    let g = model.graphs.first()?;
    let shape = &g.tensors.get(*g.inputs.first()?)?.shape;
    let per = if shape.first() == Some(&1) { &shape[1..] } else { &shape[..] };
    let mut full = vec![n];
    full.extend_from_slice(per);
    let len = budget::elements(&full).ok()?;
    let values = (0..len).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
    NpyArray::new(full, NpyData::F32(values)).ok()
}

/// Progress callbacks are ignored.
pub fn quiet(_: &str, _: usize, _: usize) {}
