//! A model's summary, as `inspect` shows it: operators, tensors, parameters, MACs, types and
//! quantization, inputs and outputs, what our engine cannot execute, and what deploying with
//! TensorFlow Lite Micro takes.

use serde::Serialize;

use crate::exec::IoDetail;
use crate::ir::{DType, Graph, Model, Op, QuantParams};
use crate::ops::Role;

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OpCount {
    pub op: String,
    pub count: usize,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WeightSummary {
    pub tensor: usize,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// "per-channel", "per-tensor" or "none".
    #[cfg_attr(test, ts(type = "'per-channel' | 'per-tensor' | 'none'"))]
    pub quantization: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LayerSummary {
    pub index: usize,
    pub op: String,
    /// The name of the layer's (first) output tensor.
    pub name: String,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
    pub dtype: DType,
    /// Elements of the constant operands (weights and bias).
    pub params: usize,
    #[cfg_attr(test, ts(type = "number"))]
    pub macs: u64,
    #[cfg_attr(test, ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightSummary>,
    #[cfg_attr(test, ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    pub executable: bool,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TensorSummary {
    pub index: usize,
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub constant: bool,
    pub bytes: usize,
    #[cfg_attr(test, ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    #[cfg_attr(test, ts(type = "'tflite'"))]
    pub format: &'static str,
    pub size_bytes: usize,
    pub description: String,
    /// "float", "hybrid" (int8 weights, float activations), "int8" (full integer) or "mixed".
    #[cfg_attr(test, ts(type = "'float' | 'hybrid' | 'int8' | 'mixed'"))]
    pub precision: &'static str,
    pub subgraphs: usize,
    pub inputs: Vec<IoDetail>,
    pub outputs: Vec<IoDetail>,
    pub operators: Vec<OpCount>,
    pub layers: Vec<LayerSummary>,
    pub tensors: Vec<TensorSummary>,
    /// Elements of the learned constants (weights, biases, other float or quantized constants);
    /// integer shape, axis and padding operands are not parameters.
    pub parameters: usize,
    /// Bytes of those constants in the file.
    pub parameter_bytes: usize,
    /// Multiply-accumulates of one inference (convolutions, FULLY_CONNECTED, LSTM matrices).
    #[cfg_attr(test, ts(type = "number"))]
    pub macs: u64,
    /// Operators our engine cannot execute yet, by name (they still survive a round trip).
    pub unsupported_ops: Vec<String>,
    /// Deploying with TensorFlow Lite Micro: support, predicted arena, flash, resolver operators.
    /// Only the full engine (the `optimizer` feature) computes it, always: the inference-only core
    /// has no such field (the TFLM arena planner and its serialization would be 10 KB of its
    /// download), and the package asks the full engine for it (`LoadedModel.tflm()`).
    #[cfg(feature = "optimizer")]
    #[cfg_attr(test, ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tflm: Option<crate::tflm::TflmReport>,
}

/// Multiply-accumulates of node `i`, from the declared shapes.
pub fn node_macs(g: &Graph, i: usize) -> u64 {
    let n = &g.nodes[i];
    let out: u64 = n.output().map_or(0, |o| g.tensors[o].num_elements() as u64);
    let w = n.input(1).map(|t| &g.tensors[t].shape);
    match (&n.op, w) {
        (Op::Conv2D(_), Some(w)) if w.len() == 4 => out * (w[1] * w[2] * w[3]) as u64,
        (Op::DepthwiseConv2D(_), Some(w)) if w.len() == 4 => out * (w[1] * w[2]) as u64,
        (Op::FullyConnected(_), Some(w)) if w.len() == 2 => out * w[1] as u64,
        (Op::UnidirectionalSequenceLstm(_), _) => lstm_macs(g, n),
        _ => 0,
    }
}

/// An LSTM's multiply-accumulates: every gate, recurrent and projection matrix once per time step
/// and batch row (the elementwise gate arithmetic is not counted).
fn lstm_macs(g: &Graph, n: &crate::ir::Node) -> u64 {
    let elements = |k: usize| n.input(k).map_or(0, |t| g.tensors[t].num_elements() as u64);
    let x = n.input(0).map(|t| &g.tensors[t].shape);
    let rows = match x.and_then(|s| s.last().copied()) {
        Some(inner) if inner > 0 => elements(0) / inner as u64,
        _ => return 0,
    };
    let matrices: u64 = (1..=8).chain([16]).map(elements).sum();
    rows.saturating_mul(matrices)
}

/// Whether operand `k` (tensor `t`) of node `n` is a learned parameter: a constant that is the
/// weights or bias of a weighted layer, or any float or quantized constant of another operator.
pub(crate) fn is_parameter(g: &Graph, n: &crate::ir::Node, k: usize, t: usize) -> bool {
    let tensor = &g.tensors[t];
    tensor.is_constant()
        && (matches!(crate::ops::spec(&n.op).role(k), Role::Weights | Role::Bias)
            || tensor.dtype.is_float()
            || matches!(tensor.dtype, DType::I8 | DType::U8 | DType::I16))
}

/// A fused activation as the summary names it (its variant name in lower case).
fn activation_name(a: crate::ir::Activation) -> &'static str {
    use crate::ir::Activation as A;
    match a {
        A::None => "none",
        A::Relu => "relu",
        A::ReluN1To1 => "relun1to1",
        A::Relu6 => "relu6",
        A::Tanh => "tanh",
        A::SignBit => "signbit",
    }
}

fn quant_kind(q: &Option<QuantParams>) -> &'static str {
    match q {
        None => "none",
        Some(q) if q.channel_axis().is_some() => "per-channel",
        Some(_) => "per-tensor",
    }
}

/// The precision class of a model: what its weighted layers compute in.
pub fn precision(g: &Graph) -> &'static str {
    let (mut float, mut hybrid, mut int) = (0, 0, 0);
    for n in &g.nodes {
        let Some(layout) = crate::ops::weight_layout(&n.op) else { continue };
        let input = n.input(0).map(|t| g.tensors[t].dtype);
        let w = n.input(layout.weights).map(|t| g.tensors[t].dtype);
        match (input, w) {
            (Some(DType::F32), Some(DType::F32)) => float += 1,
            (Some(DType::F32), Some(DType::I8 | DType::U8)) => hybrid += 1,
            (Some(DType::I8 | DType::U8 | DType::I16), _) => int += 1,
            _ => {}
        }
    }
    match (float > 0, hybrid > 0, int > 0) {
        (_, true, false) => "hybrid",
        (false, false, true) => "int8",
        (true, false, false) | (false, false, false) => "float",
        _ => "mixed",
    }
}

pub fn summarize(model: &Model, size_bytes: usize) -> ModelSummary {
    let g = model.main();
    let detail = |t: usize| {
        let x = &g.tensors[t];
        IoDetail { name: x.name.clone(), tensor: t, dtype: x.dtype, shape: x.shape.clone(), quant: x.quant.clone() }
    };
    let mut operators: Vec<OpCount> = Vec::new();
    let mut unsupported = Vec::new();
    let mut layers = Vec::with_capacity(g.nodes.len());
    for (i, n) in g.nodes.iter().enumerate() {
        let name = n.op.name().to_string();
        match operators.iter_mut().find(|c| c.op == name) {
            Some(c) => c.count += 1,
            None => operators.push(OpCount { op: name.clone(), count: 1 }),
        }
        let executable = !matches!(n.op, Op::Opaque(_));
        if !executable && !unsupported.contains(&name) {
            unsupported.push(name.clone());
        }
        let params = n
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(k, t)| t.filter(|&t| is_parameter(g, n, k, t)))
            .map(|t| g.tensors[t].num_elements())
            .sum();
        let weights = if let Some(layout) = crate::ops::weight_layout(&n.op) {
            n.input(layout.weights).map(|t| WeightSummary {
                tensor: t,
                dtype: g.tensors[t].dtype,
                shape: g.tensors[t].shape.clone(),
                quantization: quant_kind(&g.tensors[t].quant),
            })
        } else {
            None
        };
        let out = n.output().map(|o| &g.tensors[o]);
        layers.push(LayerSummary {
            index: i,
            op: name,
            name: out.map(|t| t.name.clone()).unwrap_or_default(),
            inputs: n.inputs.clone(),
            outputs: n.outputs.clone(),
            input_shape: n.input(0).map(|t| g.tensors[t].shape.clone()).unwrap_or_default(),
            output_shape: out.map(|t| t.shape.clone()).unwrap_or_default(),
            dtype: out.map_or(DType::F32, |t| t.dtype),
            params,
            macs: node_macs(g, i),
            weights,
            activation: n
                .op
                .activation()
                .filter(|a| *a != crate::ir::Activation::None)
                .map(|a| activation_name(a).to_string()),
            executable,
        });
    }
    // (Names are unique: an unstable sort gives the same order, without a stable sort's code.)
    operators.sort_unstable_by(|a, b| b.count.cmp(&a.count).then(a.op.cmp(&b.op)));
    let mut param_tensor = vec![false; g.tensors.len()];
    for n in &g.nodes {
        for (k, t) in n.inputs.iter().enumerate() {
            if let Some(t) = *t {
                param_tensor[t] |= is_parameter(g, n, k, t);
            }
        }
    }
    let tensors: Vec<TensorSummary> = g
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| TensorSummary {
            index: i,
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            constant: t.is_constant(),
            bytes: t.data.as_ref().map_or(0, |d| d.byte_len()),
            quant: t.quant.clone(),
        })
        .collect();
    ModelSummary {
        format: "tflite",
        size_bytes,
        description: model.description.clone(),
        precision: precision(g),
        subgraphs: model.graphs.len(),
        inputs: g.inputs.iter().map(|&t| detail(t)).collect(),
        outputs: g.outputs.iter().map(|&t| detail(t)).collect(),
        parameters: tensors.iter().filter(|t| param_tensor[t.index]).map(|t| t.shape.iter().product::<usize>()).sum(),
        parameter_bytes: tensors.iter().filter(|t| param_tensor[t.index]).map(|t| t.bytes).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        operators,
        layers,
        tensors,
        unsupported_ops: unsupported,
        #[cfg(feature = "optimizer")]
        tflm: Some(crate::tflm::report(model, size_bytes as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Activation as A;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The names are the variant names in lower case, as the summary has always given them.
    #[test]
    fn activation_names_are_the_variant_names_in_lower_case() {
        for a in [A::None, A::Relu, A::ReluN1To1, A::Relu6, A::Tanh, A::SignBit] {
            assert_eq!(activation_name(a), format!("{a:?}").to_lowercase());
        }
    }
}
