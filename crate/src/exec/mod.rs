//! The engine: runs a model's main graph.
//!
//! Three parts, each with one job:
//! * [`Plan`]: the facts of every tensor (from [`crate::ops`]) and each node lowered to a
//!   [`Kernel`] (`lower/`, one module per operator family). Immutable; shared by every run.
//! * [`Params`]: the values known before running (weights, constants, folded results) and each
//!   step's packed form of them. Updated in place by training; only changed layers are repacked.
//! * [`State`]: the buffers of one run. Every tensor keeps its own buffer, so after a run the
//!   value of any activation can be read (calibration and gradients rely on this).
//!
//! [`Interpreter`] bundles the three for the common case of one model, one run at a time.

mod batch;
mod buffer;
mod kernel;
mod lower;
mod params;
mod plan;
mod state;
pub mod tasks;

use std::sync::Arc;

pub use batch::{run_batch, samples_in};
pub use buffer::{Buffer, Elem};
pub use kernel::{Kernel, Packed, RunCx, Scratch};
pub use params::{preparations, Params};
pub use plan::{plans_compiled, set_default_target, Plan, PlanOptions, Step, Target};
pub use state::State;
pub use tasks::RunJob;

use crate::error::{Error, Location, Result};
use crate::ir::{DType, Model, QuantParams, TensorId};
use crate::kernels::quant;
use crate::ops::Fact;
use serde::Serialize;

/// Name, type, shape and quantization of a model input or output.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct IoDetail {
    pub name: String,
    pub tensor: TensorId,
    pub dtype: DType,
    pub shape: Vec<usize>,
    #[cfg_attr(test, ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
}

/// A prepared model, ready to run: a plan, its parameters and one run's state.
pub struct Interpreter {
    plan: Arc<Plan>,
    params: Arc<Params>,
    state: State,
}

impl Interpreter {
    /// Prepares the main graph of `model` (int8 arithmetic as TFLite Micro's, the default target).
    pub fn new(model: &Model) -> Result<Interpreter> {
        Self::with_plan_options(model, PlanOptions::default())
    }

    /// Prepares the main graph with the int8 arithmetic of `target`.
    pub fn for_target(model: &Model, target: Target) -> Result<Interpreter> {
        Self::with_plan_options(model, PlanOptions { target, ..PlanOptions::default() })
    }

    pub fn with_plan_options(model: &Model, options: PlanOptions) -> Result<Interpreter> {
        let plan = Plan::new(model, options)?;
        let params = Params::new(&plan, model.main())?;
        Ok(Self::from_parts(Arc::new(plan), Arc::new(params)))
    }

    /// A fresh run state over a shared plan and parameters.
    pub fn from_parts(plan: Arc<Plan>, params: Arc<Params>) -> Interpreter {
        let state = State::new(&plan);
        Interpreter { plan, params, state }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    pub fn inputs(&self) -> Vec<IoDetail> {
        self.plan.inputs.iter().map(|&t| self.plan.io_detail(t)).collect()
    }

    pub fn outputs(&self) -> Vec<IoDetail> {
        self.plan.outputs.iter().map(|&t| self.plan.io_detail(t)).collect()
    }

    /// Nodes whose outputs are known before running (their operands are all constant); their
    /// values are in [`Interpreter::tensor`].
    pub fn folded_nodes(&self) -> &[usize] {
        self.plan.folded_nodes()
    }

    /// The lowered steps, in execution order (folded ones included).
    pub fn steps(&self) -> &[Step] {
        self.plan.steps()
    }

    /// Sets input `i` from a buffer of the input's own type.
    pub fn set_input(&mut self, i: usize, value: Buffer) -> Result<()> {
        let t = *self.plan.inputs.get(i).ok_or_else(|| Error::input(format!("the model has no input {i}")))?;
        let f = self.plan.fact(t).ok_or_else(|| Error::input("input has no shape"))?;
        if value.dtype() != Some(f.dtype) {
            return Err(Error::input(format!(
                "input {i} '{}' takes {}, got {}",
                self.plan.name(t),
                f.dtype,
                value.dtype().map_or("nothing".to_string(), |d| d.to_string())
            )));
        }
        if value.len() != f.len() {
            return Err(Error::input(format!(
                "input {i} '{}' takes {} values (shape {:?}), got {}",
                self.plan.name(t),
                f.len(),
                f.shape,
                value.len()
            )));
        }
        self.state.set(t, value);
        Ok(())
    }

    /// Sets input `i` from float values, quantizing them with the input's parameters when the model
    /// takes integers. NaN and infinite values are refused.
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<()> {
        let t = *self.plan.inputs.get(i).ok_or_else(|| Error::input(format!("the model has no input {i}")))?;
        let f = self.plan.fact(t).ok_or_else(|| Error::input("input has no shape"))?;
        let buf = float_to_input(f, values).map_err(|e| match e {
            Error::Input { message } => Error::input(format!("input {i} {message}")),
            other => other,
        })?;
        self.set_input(i, buf)
    }

    /// Zeroes the model's recurrent state (LSTM states): the next run starts fresh. State otherwise
    /// persists from one [`Interpreter::invoke`] to the next, as in LiteRT and TFLite Micro.
    pub fn reset_state(&mut self) {
        self.state.reset_variables(&self.plan);
    }

    /// Whether the model keeps recurrent state between runs.
    pub fn is_stateful(&self) -> bool {
        !self.plan.variables.is_empty()
    }

    /// Runs the model on the inputs set.
    pub fn invoke(&mut self) -> Result<()> {
        self.state.run(&self.plan, &self.params, None)
    }

    /// Runs the model like [`Interpreter::invoke`] and returns each step's node index and time in
    /// milliseconds, for finding the slow layers.
    pub fn invoke_profiled(&mut self) -> Result<Vec<(usize, f64)>> {
        let mut times = Vec::with_capacity(self.plan.steps.len());
        self.state.run(&self.plan, &self.params, Some(&mut times))?;
        Ok(times)
    }

    pub fn output(&self, i: usize) -> Option<&Buffer> {
        self.plan.outputs.get(i).and_then(|&t| self.tensor(t))
    }

    /// Output `i` as floats, dequantized when the model produces integers.
    pub fn output_f32(&self, i: usize) -> Option<Vec<f32>> {
        let t = *self.plan.outputs.get(i)?;
        self.tensor_f32(t)
    }

    /// The current value of any tensor, as floats (dequantized when quantized).
    pub fn tensor_f32(&self, t: TensorId) -> Option<Vec<f32>> {
        let f = self.plan.fact(t)?;
        to_f32(self.tensor(t)?, f)
    }

    /// The buffer of any tensor (activations after a run, constants, inputs).
    pub fn tensor(&self, t: TensorId) -> Option<&Buffer> {
        self.params.value(t).or_else(|| self.state.buffer(t))
    }

    pub fn tensor_info(&self, t: TensorId) -> Option<&Fact> {
        self.plan.fact(t)
    }

    /// The run's state (every activation of the last run), giving up the interpreter.
    pub fn into_state(self) -> State {
        self.state
    }

    pub fn state(&self) -> &State {
        &self.state
    }
}

/// Whether the graph keeps state between runs (variable tensors, e.g. an LSTM's): its samples
/// must then run one after another, in order, on one state.
pub fn stateful(g: &crate::ir::Graph) -> bool {
    g.tensors.iter().any(|t| t.is_variable)
}

/// Whether several samples can run at once as one batch: the input has a leading dimension of 1
/// to widen (recurrent state widens with it, each sample starting from zero state).
pub fn batchable(g: &crate::ir::Graph) -> bool {
    g.inputs.len() == 1 && g.tensors[g.inputs[0]].shape.first() == Some(&1)
}

/// A buffer's values as floats, dequantized with per-tensor parameters when quantized.
pub fn to_f32(b: &Buffer, f: &Fact) -> Option<Vec<f32>> {
    let (scale, zp) = f.quant.as_ref().map_or((1.0, 0), |q| q.single());
    let mut out = vec![0.0; b.len()];
    match b {
        Buffer::F32(v) => return Some(v.clone()),
        Buffer::I8(v) => quant::dequantize(v, scale, zp as i32, &mut out),
        Buffer::U8(v) => quant::dequantize(v, scale, zp as i32, &mut out),
        Buffer::I16(v) => quant::dequantize(v, scale, zp as i32, &mut out),
        Buffer::I32(v) => out.iter_mut().zip(v).for_each(|(o, &x)| *o = x as f32),
        _ => return None,
    }
    Some(out)
}

/// Float values as a buffer of an input's type, quantized with its parameters for integer inputs.
pub fn float_to_input(f: &Fact, values: &[f32]) -> Result<Buffer> {
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::input(format!("holds a non-finite value ({}) at element {pos}", values[pos])));
    }
    Ok(match f.dtype {
        DType::F32 => Buffer::F32(values.to_vec()),
        DType::I8 | DType::U8 | DType::I16 => {
            let q = f.quant.as_ref().ok_or_else(|| Error::input("integer input without quantization parameters"))?;
            let (scale, zp) = q.single();
            let (lo, hi) = int_range(f.dtype);
            let mut out = vec![0i32; values.len()];
            quant::quantize_f32(values, scale, zp as i32, lo, hi, &mut out);
            match f.dtype {
                DType::I8 => Buffer::I8(out.iter().map(|&v| v as i8).collect()),
                DType::U8 => Buffer::U8(out.iter().map(|&v| v as u8).collect()),
                _ => Buffer::I16(out.iter().map(|&v| v as i16).collect()),
            }
        }
        other => return Err(Error::unsupported(format!("input of type {other}"), Location::default())),
    })
}

pub(crate) fn int_range(d: DType) -> (i32, i32) {
    match d {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        _ => (i32::MIN, i32::MAX),
    }
}
