//! The parameter store: the values of every tensor known before running (weights, biases, other
//! constants, and the results of folded steps), and each step's packed form of them. A training
//! step updates values in place; only the steps that read a changed tensor are re-folded and
//! repacked.

use std::any::Any;
use std::cell::Cell;
use std::sync::Arc;

use super::buffer::Buffer;
use super::kernel::{Packed, RunCx, Scratch};
use super::plan::Plan;
use crate::error::{Error, Result};
use crate::ir::{Graph, TensorData, TensorId};
use crate::ops::Known;

thread_local! {
    static PREPARED: Cell<usize> = const { Cell::new(0) };
}

/// How many parameter stores this thread has prepared (constants loaded, folded and packed): lets
/// tests check that a pass prepares each model no more often than it must.
pub fn preparations() -> usize {
    PREPARED.with(Cell::get)
}

/// Parameter values and packed weights for one [`Plan`] (and for the same model's plans at other
/// batch sizes: packing does not depend on the batch, see [`Params::fits`]).
pub struct Params {
    /// Per tensor: its value when known before running, `Empty` otherwise.
    values: Vec<Buffer>,
    /// Per step of the plan: its packed operands.
    packed: Vec<Option<Packed>>,
    /// Per step: its node and whether it is folded (what [`Params::fits`] compares).
    nodes: Vec<(usize, bool)>,
    /// The values shape inference computed (SHAPE → PACK → RESHAPE and the like): they can depend
    /// on the batch size, so [`Params::fits`] compares them too.
    inferred: Vec<(TensorId, Arc<TensorData>)>,
}

/// The tensors whose values shape inference computed for `plan`, with those values.
fn inferred_values(plan: &Plan) -> Vec<(TensorId, Arc<TensorData>)> {
    let facts = plan.facts.tensors.iter().enumerate();
    facts
        .filter_map(|(t, f)| match &f.as_ref()?.known {
            Known::Folded(v) => Some((t, v.clone())),
            _ => None,
        })
        .collect()
}

impl Params {
    /// Loads the constants of `graph` (the graph the plan was compiled from), runs the folded
    /// steps and packs every step's operands.
    pub fn new(plan: &Plan, graph: &Graph) -> Result<Params> {
        PREPARED.with(|c| c.set(c.get() + 1));
        let mut values = vec![Buffer::Empty; plan.facts.tensors.len()];
        for (t, fact) in plan.facts.tensors.iter().enumerate() {
            let Some(f) = fact else { continue };
            let data = match &f.known {
                Known::Constant => graph.tensors[t].data.as_ref(),
                Known::Folded(v) => Some(v.as_ref()),
                Known::No => None,
            };
            if let Some(d) = data {
                let dtype = if f.known == Known::Constant { graph.tensors[t].dtype } else { f.dtype };
                values[t] = Buffer::from_data(dtype, d)
                    .ok_or_else(|| Error::unsupported(format!("constant of type {dtype}"), graph.tensor_loc(t)))?;
            }
        }
        let nodes = plan.steps.iter().map(|s| (s.node, s.folded)).collect();
        let packed = (0..plan.steps.len()).map(|_| None).collect();
        let mut params = Params { values, packed, nodes, inferred: inferred_values(plan) };
        let all: Vec<usize> = (0..plan.steps.len()).collect();
        params.refresh(plan, &all)?;
        Ok(params)
    }

    /// Whether these parameters serve `plan`: the same model lowered to the same steps (at any
    /// batch size), so packed operands line up step by step, with the same values inferred from
    /// shapes (a RESHAPE target computed from the batch size differs between batch sizes).
    pub fn fits(&self, plan: &Plan) -> bool {
        self.values.len() == plan.facts.tensors.len()
            && self.packed.len() == plan.steps.len()
            && self.nodes == plan.steps.iter().map(|s| (s.node, s.folded)).collect::<Vec<_>>()
            && self.inferred == inferred_values(plan)
    }

    /// The value of tensor `t` if it is known before running.
    pub fn value(&self, t: TensorId) -> Option<&Buffer> {
        self.values.get(t).filter(|b| !matches!(b, Buffer::Empty))
    }

    /// The packed operands of step `s`.
    pub fn packed(&self, s: usize) -> Option<&(dyn Any + Send + Sync)> {
        self.packed.get(s).and_then(|p| p.as_deref())
    }

    /// Replaces the values of parameter tensors (same type and length) and re-folds and repacks
    /// only the steps that read them, directly or through folded steps.
    pub fn update(&mut self, plan: &Plan, changes: Vec<(TensorId, Buffer)>) -> Result<()> {
        let mut changed = vec![false; self.values.len()];
        for (t, value) in changes {
            let old = self.value(t).ok_or_else(|| Error::argument(format!("tensor {t} is not a parameter")))?;
            if old.dtype() != value.dtype() || old.len() != value.len() {
                return Err(Error::argument(format!(
                    "parameter {t} '{}' holds {} values of {:?}, the update {} of {:?}",
                    plan.name(t),
                    old.len(),
                    old.dtype(),
                    value.len(),
                    value.dtype()
                )));
            }
            self.values[t] = value;
            changed[t] = true;
        }
        let mut steps = Vec::new();
        for (s, step) in plan.steps.iter().enumerate() {
            if step.inputs.iter().flatten().any(|&t| changed[t]) {
                steps.push(s);
                if step.folded {
                    changed[step.output] = true;
                }
            }
        }
        self.refresh(plan, &steps)
    }

    /// Runs the folded steps among `steps` (in order) and packs them all.
    fn refresh(&mut self, plan: &Plan, steps: &[usize]) -> Result<()> {
        let mut scratch = Scratch::default();
        for &s in steps {
            let step = &plan.steps[s];
            let operands: Vec<Option<&Buffer>> = step.inputs.iter().map(|t| t.and_then(|t| self.value(t))).collect();
            let at = || plan_loc(plan, step.node);
            let packed = step.kernel.pack(&operands).map_err(|e| e.at(at()))?;
            if step.folded {
                let f = plan.fact(step.output).ok_or_else(|| super::kernel::internal("folded output without facts"))?;
                let mut out = Buffer::zeros(f.dtype, f.len())
                    .ok_or_else(|| Error::unsupported(format!("folding a constant of type {}", f.dtype), at()))?;
                let mut cx = RunCx {
                    inputs: &operands,
                    out: &mut out,
                    packed: packed.as_deref(),
                    scratch: &mut scratch,
                    states: &mut [],
                };
                step.kernel.run(&mut cx).map_err(|e| e.at(at()))?;
                self.values[step.output] = out;
            }
            self.packed[s] = packed;
        }
        Ok(())
    }
}

fn plan_loc(plan: &Plan, node: usize) -> crate::error::Location {
    let name = plan.steps.iter().find(|s| s.node == node).map_or("", |s| s.kernel.name());
    crate::error::Location::node(node, name)
}
