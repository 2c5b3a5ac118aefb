//! A compiled plan: the facts of every tensor and, for each node, the kernel it lowered to. A plan
//! holds no weights and no activations, so it is immutable and shared (`Arc`) by every run and by
//! every parameter version (see [`super::Params`] and [`super::State`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use super::buffer::Buffer;
use super::kernel::Kernel;
use super::lower::{self, LowerCx};
use crate::error::{Error, Result};
use crate::ir::{DType, Graph, Model, TensorId};
use crate::ops::{self, Fact, Facts, InferOptions, NodeCx};

/// Which runtime's int8 arithmetic the engine reproduces, bit for bit. The two differ by up to one
/// step on some outputs of int8 FULLY_CONNECTED (LiteRT's reference kernels rescale in double
/// precision, TFLite Micro with a fixed-point multiplier), TANH and LOGISTIC (TFLM: gemmlowp's
/// fixed-point functions; LiteRT: a table of the rounded float function), MUL, SUB, RELU6 and the
/// integer LSTM. The device runs TFLite Micro, so it is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// TensorFlow Lite Micro (the `tflite-micro` interpreter, and the microcontroller).
    Tflm,
    /// LiteRT's reference kernels (`OpResolverType.BUILTIN_REF`).
    Litert,
}

/// The target of plans compiled without one: TFLite Micro unless [`set_default_target`] said
/// otherwise (the package sets it once per engine instance, from its `target` option).
static DEFAULT_TARGET: AtomicBool = AtomicBool::new(false);

/// Sets the target of every plan compiled without one from now on (in this instance).
pub fn set_default_target(target: Target) {
    DEFAULT_TARGET.store(target == Target::Litert, Ordering::Relaxed);
}

impl Default for Target {
    fn default() -> Self {
        if DEFAULT_TARGET.load(Ordering::Relaxed) {
            Target::Litert
        } else {
            Target::Tflm
        }
    }
}

/// How to compile a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    pub target: Target,
    /// Compile for this batch size instead of the model's (the inputs' first dimension).
    pub batch: Option<usize>,
}

/// One node lowered to a kernel.
pub struct Step {
    pub node: usize,
    pub inputs: Vec<Option<TensorId>>,
    pub output: TensorId,
    pub kernel: Box<dyn Kernel>,
    /// Every operand is known before running: the step runs once, when parameters are loaded.
    pub folded: bool,
}

/// A step shows its kernel by name: kernels are not `Debug` (their formatting, reachable through
/// every kernel's vtable, would weigh on the download).
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("node", &self.node)
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .field("kernel", &self.kernel.name())
            .field("folded", &self.folded)
            .finish()
    }
}

/// A model's main graph compiled for the engine.
#[derive(Debug)]
pub struct Plan {
    pub(super) facts: Facts,
    pub(super) names: Vec<String>,
    pub(super) inputs: Vec<TensorId>,
    pub(super) outputs: Vec<TensorId>,
    pub(super) steps: Vec<Step>,
    /// Nodes whose outputs are known before running (folded shape arithmetic and folded steps).
    pub(super) folded: Vec<usize>,
    /// Variable tensors: recurrent state that persists from one run to the next.
    pub(super) variables: Vec<TensorId>,
    pub(super) options: PlanOptions,
}

thread_local! {
    static COMPILED: Cell<usize> = const { Cell::new(0) };
}

/// How many plans this thread has compiled: lets tests check that a pass prepares the engine no
/// more often than it must.
pub fn plans_compiled() -> usize {
    COMPILED.with(Cell::get)
}

impl Plan {
    /// Infers the facts of `model`'s main graph and lowers every node.
    pub fn new(model: &Model, options: PlanOptions) -> Result<Plan> {
        COMPILED.with(|c| c.set(c.get() + 1));
        model.validate()?;
        let g = model.main();
        let facts = ops::infer(g, &InferOptions { batch: options.batch })?;
        let total = facts
            .tensors
            .iter()
            .flatten()
            .try_fold(0u64, |acc, f| crate::budget::add_u64(acc, crate::budget::bytes_u64(&f.shape, f.dtype)?))?;
        crate::budget::current().check_model(total, "the model's tensors")?;
        for &i in &g.inputs {
            let dtype = facts.get(i).map_or(DType::F32, |f| f.dtype);
            if Buffer::zeros(dtype, 0).is_none() {
                return Err(Error::unsupported(format!("model input of type {dtype}"), g.tensor_loc(i)));
            }
        }
        let (steps, folded) = lower_all(g, &facts, &options)?;
        Ok(Plan {
            facts,
            names: g.tensors.iter().map(|t| t.name.clone()).collect(),
            inputs: g.inputs.clone(),
            outputs: g.outputs.clone(),
            steps,
            folded,
            variables: (0..g.tensors.len())
                .filter(|&t| g.tensors[t].is_variable && !g.tensors[t].is_constant())
                .collect(),
            options,
        })
    }

    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    pub fn fact(&self, t: TensorId) -> Option<&Fact> {
        self.facts.get(t)
    }

    pub fn name(&self, t: TensorId) -> &str {
        self.names.get(t).map_or("", String::as_str)
    }

    pub fn input_ids(&self) -> &[TensorId] {
        &self.inputs
    }

    /// Name, type, shape and quantization of tensor `t` (a model input or output).
    pub fn io_detail(&self, t: TensorId) -> super::IoDetail {
        let f = self.fact(t);
        super::IoDetail {
            name: self.name(t).to_string(),
            tensor: t,
            dtype: f.map_or(DType::F32, |f| f.dtype),
            shape: f.map_or_else(Vec::new, |f| f.shape.clone()),
            quant: f.and_then(|f| f.quant.clone()),
        }
    }

    pub fn output_ids(&self) -> &[TensorId] {
        &self.outputs
    }

    /// Every lowered step in execution order, folded ones included.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn folded_nodes(&self) -> &[usize] {
        &self.folded
    }

    pub fn options(&self) -> &PlanOptions {
        &self.options
    }
}

/// Lowers every node whose output is not already known from inference; marks the steps whose
/// operands are all known as folded.
fn lower_all(g: &Graph, facts: &Facts, options: &PlanOptions) -> Result<(Vec<Step>, Vec<usize>)> {
    let mut known: Vec<bool> = facts.tensors.iter().map(|f| f.as_ref().is_some_and(Fact::is_known)).collect();
    let mut steps = Vec::with_capacity(g.nodes.len());
    let mut folded = Vec::new();
    for (index, node) in g.nodes.iter().enumerate() {
        let output = node.output().ok_or_else(|| Error::graph("node without output", g.node_loc(index)))?;
        if known[output] {
            folded.push(index);
            continue;
        }
        let cx = NodeCx::new(g, index, &facts.tensors, facts.batch);
        let kernel = lower::lower(&node.op, &LowerCx { node: &cx, target: options.target })?;
        let all_known = !node.inputs.is_empty() && node.inputs.iter().flatten().all(|&t| known[t]);
        if all_known {
            known[output] = true;
            folded.push(index);
        }
        steps.push(Step { node: index, inputs: node.inputs.clone(), output, kernel, folded: all_known });
    }
    Ok((steps, folded))
}
