//! Gradients through our own engine, on batches.
//!
//! A batch runs forward in a [`Plan`] compiled for that batch size (its [`State`] keeps every
//! activation); a [`loss`] seeds the gradient at the output; [`Backprop`] walks the graph's nodes
//! in reverse, and the backward registry ([`registry`], keyed by the IR operator, exhaustive)
//! turns each node's output gradient into its operands' gradients. Only tensors on a path from the
//! requested parameters to the loss get a gradient; an operator on that path that cannot be
//! trained through is a typed error naming it.
//!
//! [`gradients`] averages over a dataset in fixed chunks of [`CHUNK`] samples, summed in chunk
//! order, so the result does not depend on how work is split across cores ([`GradientsJob`]).

pub mod gemm;
mod loss;
mod pointwise;
mod registry;
mod shape;
pub mod tasks;
mod weighted;

use std::sync::Arc;

pub use loss::{seed, Loss, Seed, Targets};
pub use registry::not_trainable;
pub use tasks::GradientsJob;

use crate::error::{Error, Location, Result};
use crate::exec::{Params, Plan, PlanOptions, State};
use crate::ir::{Activation, DType, Graph, Model, TensorId};
use crate::ops::{spec, Gradient, NodeCx};
use crate::parallel::Engine;

/// Samples per forward/backward batch. Fixed, so sums are taken in the same order whatever the
/// number of cores.
pub const CHUNK: usize = 16;

/// Gradients of each operand of one node; `None` where not requested.
type OperandGrads = Vec<Option<Vec<f32>>>;

/// Scratch reused across nodes and batches.
#[derive(Default)]
pub struct Workspace {
    /// A convolution's output gradient through its clamp.
    dz: Vec<f32>,
    cols: Vec<f32>,
    dcols: Vec<f32>,
    t0: Vec<f32>,
}

/// What a node's backward sees.
struct BackCx<'a> {
    node: &'a NodeCx<'a>,
    inputs: Vec<Option<&'a [f32]>>,
    y: &'a [f32],
    dy: &'a [f32],
    /// Per operand: whether its gradient is wanted.
    need: Vec<bool>,
    ws: &'a mut Workspace,
}

impl<'a> BackCx<'a> {
    /// The forward value of float operand `i`.
    fn value(&self, i: usize) -> Result<&'a [f32]> {
        self.inputs.get(i).copied().flatten().ok_or_else(|| self.node.err(format!("operand {i} has no float value")))
    }

    fn empty(&self) -> OperandGrads {
        vec![None; self.need.len()]
    }
}

/// The output gradient before a fused clamp activation: it passes where the output is strictly
/// inside `(min, max)` (ReLU passes where the output is positive, ReLU6 where it is in (0, 6)).
fn through_clamp(cx: &BackCx, act: Activation) -> Result<Vec<f32>> {
    let (min, max) = cx.node.clamp(act)?;
    if min == f32::NEG_INFINITY && max == f32::INFINITY {
        return Ok(cx.dy.to_vec());
    }
    Ok(cx.dy.iter().zip(cx.y).map(|(&d, &v)| if v > min && v < max { d } else { 0.0 }).collect())
}

/// [`through_clamp`] into a reused buffer.
fn through_clamp_into(cx: &BackCx, act: Activation, out: &mut Vec<f32>) -> Result<()> {
    let (min, max) = cx.node.clamp(act)?;
    out.clear();
    if min == f32::NEG_INFINITY && max == f32::INFINITY {
        out.extend_from_slice(cx.dy);
    } else {
        out.extend(cx.dy.iter().zip(cx.y).map(|(&d, &v)| if v > min && v < max { d } else { 0.0 }));
    }
    Ok(())
}

/// One reverse walk over a graph, from the activations of one forward run.
pub struct Backprop<'a> {
    pub graph: &'a Graph,
    pub plan: &'a Plan,
    pub params: &'a Params,
    pub state: &'a State,
}

impl Backprop<'_> {
    fn value(&self, t: TensorId) -> Option<&[f32]> {
        self.params.value(t).or_else(|| self.state.buffer(t)).and_then(|b| b.as_f32())
    }

    /// Which tensors depend on any of `wrt` through operators gradients can flow through.
    fn requires(&self, wrt: &[TensorId]) -> Vec<bool> {
        let mut req = vec![false; self.graph.tensors.len()];
        wrt.iter().for_each(|&t| req[t] = true);
        for n in &self.graph.nodes {
            if n.inputs.iter().flatten().any(|&t| req[t]) && spec(&n.op).gradient() != Gradient::Stops {
                n.outputs.iter().for_each(|&o| req[o] = true);
            }
        }
        req
    }

    /// Gradients of the seeded quantity with respect to each tensor in `wrt` (indexed like `wrt`).
    pub fn run(&self, seed: &Seed, wrt: &[TensorId], ws: &mut Workspace) -> Result<Vec<Option<Vec<f32>>>> {
        let req = self.requires(wrt);
        let mut grads: Vec<Option<Vec<f32>>> = vec![None; self.graph.tensors.len()];
        grads[seed.tensor] = Some(seed.grad.clone());
        for (index, node) in self.graph.nodes.iter().enumerate().rev() {
            let Some(out) = node.output() else { continue };
            if !req[out] {
                continue;
            }
            let Some(dy) = grads[out].take() else { continue };
            if let Gradient::Unsupported(_) = spec(&node.op).gradient() {
                return Err(not_trainable(&node.op, index));
            }
            let operand_grads = self.node(index, &dy, &req, ws)?;
            for (t, g) in node.inputs.iter().zip(operand_grads) {
                if let (Some(t), Some(g)) = (*t, g) {
                    add_into(&mut grads[t], g);
                }
            }
        }
        Ok(wrt.iter().map(|&t| grads[t].take()).collect())
    }

    fn node(&self, index: usize, dy: &[f32], req: &[bool], ws: &mut Workspace) -> Result<OperandGrads> {
        let node = &self.graph.nodes[index];
        let facts = self.plan.facts();
        let cx = NodeCx::new(self.graph, index, &facts.tensors, facts.batch);
        let out = node.output().unwrap_or(0);
        let y = self.value(out).ok_or_else(|| cx.err("output has no float value"))?;
        if y.len() != dy.len() {
            return Err(cx.err("output gradient has the wrong length"));
        }
        let mut bcx = BackCx {
            node: &cx,
            inputs: node.inputs.iter().map(|t| t.and_then(|t| self.value(t))).collect(),
            y,
            dy,
            need: node.inputs.iter().map(|t| t.is_some_and(|t| req[t])).collect(),
            ws,
        };
        registry::backward(&node.op, &mut bcx).map_err(|e| e.at(self.graph.node_loc(index)))
    }
}

fn add_into(slot: &mut Option<Vec<f32>>, g: Vec<f32>) {
    match slot {
        Some(acc) if acc.len() == g.len() => acc.iter_mut().zip(g).for_each(|(a, v)| *a += v),
        _ => *slot = Some(g),
    }
}

/// Averaged gradients of the loss.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// Per tensor of the main graph: ∂L/∂t for the weights and biases of CONV_2D,
    /// DEPTHWISE_CONV_2D and FULLY_CONNECTED (other tensors `None`), averaged over the samples.
    pub weights: Vec<Option<Vec<f32>>>,
    /// The mean loss over the samples.
    pub loss: f64,
    pub samples: usize,
}

/// Progress of long work: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Checks that `model` can be differentiated: float weights in every weighted operator.
pub fn check_float(model: &Model) -> Result<()> {
    let g = model.main();
    for (i, n) in g.nodes.iter().enumerate() {
        let Some(w) = crate::ops::weight_layout(&n.op).and_then(|l| n.input(l.weights)) else { continue };
        if g.tensors[w].dtype != DType::F32 {
            return Err(Error::unsupported(
                format!(
                    "gradients through {} weights of type {}: prune the float model, then quantize it",
                    n.op.name(),
                    g.tensors[w].dtype
                ),
                g.node_loc(i),
            ));
        }
    }
    Ok(())
}

/// The weight and bias tensors of every weighted operator, in execution order.
pub fn weight_tensors(g: &Graph) -> Vec<TensorId> {
    let mut ids = Vec::new();
    for n in &g.nodes {
        if let Some(l) = crate::ops::weight_layout(&n.op) {
            ids.extend([n.input(l.weights), n.input(l.weights + 1)].into_iter().flatten());
        }
    }
    ids
}

/// The model's first output must be a float classifier row per sample.
fn classifier_width(plan: &Plan, rows: usize) -> Result<usize> {
    let out = plan.output_ids().first().copied().ok_or_else(|| Error::argument("the model has no output"))?;
    let f = plan.fact(out).ok_or_else(|| Error::argument("the model output has no shape"))?;
    let classes = f.shape.last().copied().unwrap_or(0);
    if f.dtype != DType::F32 || classes < 2 || f.len() != classes * rows {
        return Err(Error::unsupported(
            format!(
                "gradient scores need a classifier: one float output row of at least 2 classes, got {} {:?}",
                f.dtype, f.shape
            ),
            Location::default(),
        ));
    }
    Ok(classes)
}

/// One batch of samples and what they are compared with.
pub struct Batch<'a> {
    /// `rows` samples, one after another.
    pub x: &'a [f32],
    pub rows: usize,
    pub loss: Loss,
    pub targets: Targets<'a>,
}

/// Forward and backward of one batch on a compiled engine: the loss seed and the gradients of
/// `wrt` (summed over the batch's samples).
pub fn batch_gradients(
    graph: &Graph,
    engine: &Engine,
    batch: Batch,
    wrt: &[TensorId],
    ws: &mut Workspace,
) -> Result<(Seed, Vec<Option<Vec<f32>>>)> {
    let Batch { x, rows, loss, targets } = batch;
    let (plan, params) = (&engine.0, &engine.1);
    let mut it = crate::exec::Interpreter::from_parts(plan.clone(), params.clone());
    it.set_input_f32(0, x)?;
    it.invoke()?;
    let state = it.into_state();
    if loss == Loss::CrossEntropy {
        classifier_width(plan, rows)?;
    }
    let out = plan.output_ids().first().copied().ok_or_else(|| Error::argument("the model has no output"))?;
    let p = state.buffer(out).and_then(|b| b.as_f32()).ok_or_else(|| Error::argument("output is not float"))?;
    let s = seed(graph, out, p, rows, loss, targets)?;
    let bp = Backprop { graph, plan, params, state: &state };
    let grads = bp.run(&s, wrt, ws)?;
    Ok((s, grads))
}

/// Gradients of the mean cross-entropy over the samples of `x` (`[N, ...input shape]`, float
/// values) against `labels` (class indices), or against the model's own predictions when `None`.
pub fn gradients(
    model: &Model,
    x: &[f32],
    x_shape: &[usize],
    labels: Option<&[i64]>,
    progress: Progress,
) -> Result<Gradients> {
    let mut job = GradientsJob::new(model, x, x_shape, labels)?;
    crate::parallel::run(&mut job, 1, progress)?;
    job.finish()
}

/// The loss alone (mean cross-entropy as [`gradients`] defines it), for finite-difference checks.
pub fn loss(model: &Model, x: &[f32], x_shape: &[usize], labels: &[i64]) -> Result<f64> {
    let plan = Plan::new(model, PlanOptions::default())?;
    let params = Params::new(&plan, model.main())?;
    let engine: Engine = (Arc::new(plan), Arc::new(params));
    let per = model.main().inputs.first().map_or(1, |&t| model.main().tensors[t].num_elements().max(1));
    let n = crate::exec::samples_in(x_shape, &model.main().tensors[model.main().inputs[0]].shape, "the data")?;
    let mut total = 0.0f64;
    for i in 0..n {
        let mut it = crate::exec::Interpreter::from_parts(engine.0.clone(), engine.1.clone());
        it.set_input_f32(0, &x[i * per..(i + 1) * per])?;
        it.invoke()?;
        let out = engine.0.output_ids()[0];
        let p = it.tensor(out).and_then(|b| b.as_f32()).ok_or_else(|| Error::argument("output is not float"))?;
        total += seed(model.main(), out, p, 1, Loss::CrossEntropy, Targets::Classes(&labels[i..i + 1]))?.loss;
    }
    Ok(total / n.max(1) as f64)
}

#[cfg(test)]
mod tests;
