//! Inference over a whole graph: the facts of every tensor, node by node in execution order.

use std::sync::Arc;

use super::cx::{checked_bytes, NodeCx};
use super::fact::{Fact, Facts, Known};
use super::spec;
use crate::error::{Error, Result};
use crate::ir::{DType, Graph, Tensor, TensorId};

/// How to infer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InferOptions {
    /// Run with this batch size instead of the model's (the inputs' first dimension).
    pub batch: Option<usize>,
}

/// The facts of every tensor of `graph`, checking each node against its spec and its declared
/// outputs. Errors name the node or tensor.
pub fn infer(graph: &Graph, opts: &InferOptions) -> Result<Facts> {
    graph.validate()?;
    let mut facts: Vec<Option<Fact>> = vec![None; graph.tensors.len()];
    for (t, tensor) in graph.tensors.iter().enumerate() {
        if tensor.is_variable && !tensor.is_constant() {
            // Recurrent state has one row per sample: it widens with the batch.
            facts[t] = Some(declared_fact(graph, t, opts.batch.filter(|_| tensor.shape.first() == Some(&1)))?);
        } else if tensor.is_constant() {
            facts[t] = Some(declared_fact(graph, t, None)?);
        }
    }
    for &t in &graph.inputs {
        facts[t] = Some(declared_fact(graph, t, opts.batch)?);
    }
    for index in 0..graph.nodes.len() {
        let outs = infer_node(graph, index, &facts, opts.batch)?;
        for (&o, f) in graph.nodes[index].outputs.iter().zip(outs) {
            facts[o] = Some(f);
        }
    }
    for &o in &graph.outputs {
        if facts[o].is_none() {
            return Err(Error::graph("graph output is never computed", graph.tensor_loc(o)));
        }
    }
    Ok(Facts { tensors: facts, batch: opts.batch })
}

/// The fact of a constant, variable or input tensor, as declared (inputs resized to `batch`).
fn declared_fact(graph: &Graph, t: TensorId, batch: Option<usize>) -> Result<Fact> {
    let tensor = &graph.tensors[t];
    let mut shape = tensor.shape.clone();
    if let (Some(b), Some(first)) = (batch, shape.first_mut()) {
        *first = b;
    }
    let what = || format!("tensor {t} '{}'", tensor.name);
    checked_bytes(&shape, tensor.dtype, what).map_err(|e| e.at(graph.tensor_loc(t)))?;
    let mut f = Fact::new(tensor.dtype, shape, tensor.quant.clone());
    check_channel_axis(&f).map_err(|m| Error::graph(m, graph.tensor_loc(t)))?;
    if tensor.is_constant() && !tensor.is_variable {
        f.known = Known::Constant;
    }
    Ok(f)
}

/// Infers node `index`, checks the result against the declared outputs, and folds shape arithmetic.
fn infer_node(graph: &Graph, index: usize, facts: &[Option<Fact>], batch: Option<usize>) -> Result<Vec<Fact>> {
    let cx = NodeCx::new(graph, index, facts, batch);
    let s = spec(&cx.node.op);
    let mut outs = s.infer(&cx)?;
    if outs.len() != cx.node.outputs.len() {
        return Err(cx.err(format!("expected {} output(s), the graph declares {}", outs.len(), cx.node.outputs.len())));
    }
    for (f, &o) in outs.iter().zip(&cx.node.outputs) {
        check_declared(f, &graph.tensors[o], batch).map_err(|m| cx.err(m))?;
        check_channel_axis(f).map_err(|m| cx.err(format!("output {m}")))?;
    }
    let all_known = cx.node.inputs.iter().flatten().all(|&t| facts[t].as_ref().is_some_and(Fact::is_known));
    if outs.len() == 1 && (all_known || matches!(cx.node.op, crate::ir::Op::Shape { .. })) {
        if let Some(v) = s.fold(&cx, &outs[0])? {
            outs[0].known = Known::Folded(Arc::new(v));
        }
    }
    Ok(outs)
}

/// The inferred fact must agree with the output as the file declares it (an empty declared shape
/// means "unknown"; with a batch override the first dimension may differ).
fn check_declared(f: &Fact, declared: &Tensor, batch: Option<usize>) -> std::result::Result<(), String> {
    let widened = declared.dtype == DType::F16 && f.dtype == DType::F32;
    if declared.dtype != f.dtype && !widened {
        return Err(format!("output is declared {} but the operator produces {}", declared.dtype, f.dtype));
    }
    let d = &declared.shape;
    let same = match batch {
        _ if d.is_empty() => true,
        Some(_) => d.len() == f.shape.len() && d[1..] == f.shape[1..],
        None => *d == f.shape,
    };
    if !same {
        return Err(format!("output is declared with shape {d:?} but the operator produces {:?}", f.shape));
    }
    Ok(())
}

/// Per-channel parameters must run along an existing dimension, one scale per element of it.
fn check_channel_axis(f: &Fact) -> std::result::Result<(), String> {
    let Some(q) = &f.quant else { return Ok(()) };
    let Some(axis) = q.channel_axis() else { return Ok(()) };
    match f.shape.get(axis) {
        Some(&n) if n == q.scale.len() && (q.zero_point.len() <= 1 || q.zero_point.len() == n) => Ok(()),
        Some(&n) => Err(format!(
            "has {} per-channel scales and {} zero points along dimension {axis} of size {n}",
            q.scale.len(),
            q.zero_point.len()
        )),
        None => Err(format!("is quantized per channel along dimension {axis}, but has shape {:?}", f.shape)),
    }
}
