//! Size and cost of a model as the pruning literature reports them (ShrinkBench): parameters and
//! non-zero parameters, MACs and effective MACs (those with a non-zero weight), file size and
//! gzip-compressed file size (what zeroed weights save in a compressed download or flash image).

use serde::Serialize;

use crate::error::Result;
use crate::ir::{Model, TensorData, TensorId};
use crate::summary::{is_parameter, node_macs};
use crate::tflite;

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LayerMetrics {
    pub node: usize,
    pub op: String,
    /// The layer's output tensor name.
    pub name: String,
    /// Weights and bias values.
    pub params: usize,
    pub nonzero_params: usize,
    /// Output channels or neurons.
    pub units: usize,
    #[cfg_attr(test, ts(type = "number"))]
    pub macs: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub effective_macs: u64,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ModelMetrics {
    /// All learned constants (as `inspect` counts parameters).
    pub params: usize,
    pub nonzero_params: usize,
    /// `params / nonzero_params`.
    pub compression_ratio: f64,
    #[cfg_attr(test, ts(type = "number"))]
    pub macs: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub effective_macs: u64,
    pub size_bytes: usize,
    /// Size of the `.tflite` file after gzip (deflate level 6 plus the 18-byte gzip frame).
    pub gzip_bytes: usize,
    /// Per weighted layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED).
    pub layers: Vec<LayerMetrics>,
}

fn count(data: &Option<TensorData>) -> (usize, usize) {
    match data {
        Some(TensorData::F32(a)) => (a.len(), a.iter().filter(|v| **v != 0.0).count()),
        Some(TensorData::I8(a)) => (a.len(), a.iter().filter(|v| **v != 0).count()),
        Some(TensorData::U8(a)) => (a.len(), a.iter().filter(|v| **v != 0).count()),
        Some(TensorData::I16(a)) => (a.len(), a.iter().filter(|v| **v != 0).count()),
        Some(TensorData::I32(a)) => (a.len(), a.iter().filter(|v| **v != 0).count()),
        Some(TensorData::I64(a)) => (a.len(), a.iter().filter(|v| **v != 0).count()),
        Some(TensorData::Raw(b)) => (b.len(), b.iter().filter(|v| **v != 0).count()),
        None => (0, 0),
    }
}

pub fn model_metrics(model: &Model) -> Result<ModelMetrics> {
    let g = model.main();
    let bytes = tflite::write(model)?;
    let gzip_bytes = miniz_oxide::deflate::compress_to_vec(&bytes, 6).len() + 18;
    let mut is_param = vec![false; g.tensors.len()];
    for n in &g.nodes {
        for (k, t) in n.inputs.iter().enumerate() {
            if let Some(t) = *t {
                is_param[t] |= is_parameter(g, n, k, t);
            }
        }
    }
    let (mut params, mut nonzero) = (0, 0);
    for (t, _) in is_param.iter().enumerate().filter(|(_, p)| **p) {
        let (n, nz) = count(&g.tensors[t].data);
        params += n;
        nonzero += nz;
    }
    let mut layers = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let Some(layout) = crate::ops::weight_layout(&n.op) else { continue };
        let operand =
            |k: usize| -> (usize, usize) { n.input(k).map_or((0, 0), |t: TensorId| count(&g.tensors[t].data)) };
        let (w, wnz) = operand(layout.weights);
        let (b, bnz) = operand(layout.weights + 1);
        let macs = node_macs(g, i);
        let units = n.input(layout.weights).map_or(0, |t| layout.units(&g.tensors[t].shape));
        layers.push(LayerMetrics {
            node: i,
            op: n.op.name().to_string(),
            name: n.output().map(|o| g.tensors[o].name.clone()).unwrap_or_default(),
            params: w + b,
            nonzero_params: wnz + bnz,
            units,
            macs,
            effective_macs: if w == 0 { 0 } else { macs / w as u64 * wnz as u64 },
        });
    }
    Ok(ModelMetrics {
        params,
        nonzero_params: nonzero,
        compression_ratio: if nonzero == 0 { 0.0 } else { params as f64 / nonzero as f64 },
        macs: layers.iter().map(|l| l.macs).sum(),
        effective_macs: layers.iter().map(|l| l.effective_macs).sum(),
        size_bytes: bytes.len(),
        gzip_bytes,
        layers,
    })
}
