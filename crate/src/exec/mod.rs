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

    /// An interpreter of another plan and parameters on this one's memory ([`State::recycled`]):
    /// its buffers hold this one's values until a run writes them.
    pub fn recycle(self, plan: Arc<Plan>, params: Arc<Params>) -> Interpreter {
        let state = State::recycled(&plan, self.state);
        Interpreter { plan, params, state }
    }

    /// The bytes of this interpreter's memory [`Interpreter::recycle`] for `plan` would reuse.
    pub fn reusable_bytes(&self, plan: &Plan) -> usize {
        self.state.reusable_bytes(plan)
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

    /// The tensors of the model's outputs, in order.
    pub fn output_tensors(&self) -> &[TensorId] {
        &self.plan.outputs
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
        let t = self.input_for(i, value.dtype(), value.len())?;
        self.state.set(t, value);
        Ok(())
    }

    /// Sets input `i` from values of its own type, copied into the input's buffer.
    pub fn set_input_from<T: Elem>(&mut self, i: usize, values: &[T]) -> Result<()> {
        let t = self.input_for(i, Some(T::DTYPE), values.len())?;
        match self.state.buffer_mut(t).and_then(T::slice_mut) {
            Some(dst) if dst.len() == values.len() => dst.copy_from_slice(values),
            _ => self.state.set(t, T::buffer(values.to_vec())),
        }
        Ok(())
    }

    /// The tensor of input `i`, when it takes `len` values of type `dtype`.
    fn input_for(&self, i: usize, dtype: Option<DType>, len: usize) -> Result<TensorId> {
        let t = *self.plan.inputs.get(i).ok_or_else(|| Error::input(format!("the model has no input {i}")))?;
        let f = self.plan.fact(t).ok_or_else(|| Error::input("input has no shape"))?;
        if dtype != Some(f.dtype) {
            return Err(Error::input(format!(
                "input {i} '{}' takes {}, got {}",
                self.plan.name(t),
                f.dtype,
                dtype.map_or("nothing".to_string(), |d| d.to_string())
            )));
        }
        if len != f.len() {
            return Err(Error::input(format!(
                "input {i} '{}' takes {} values (shape {:?}), got {}",
                self.plan.name(t),
                f.len(),
                f.shape,
                len
            )));
        }
        Ok(t)
    }

    /// Sets input `i` from float values, quantizing them with the input's parameters when the model
    /// takes integers. NaN and infinite values are refused. The values are written into the
    /// input's buffer (no allocation once it has their type and length).
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<()> {
        self.state.set_input_f32(&self.plan, i, values)
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

    /// Appends the current value of any tensor, as floats, to `into` ([`Interpreter::tensor_f32`]
    /// without a vector of its own); false (nothing appended) when it has none.
    pub fn append_tensor_f32(&self, t: TensorId, into: &mut Vec<f32>) -> bool {
        match (self.plan.fact(t), self.tensor(t)) {
            (Some(f), Some(b)) => append_f32(b, f, into),
            _ => false,
        }
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
    let mut out = Vec::new();
    append_f32(b, f, &mut out).then_some(out)
}

/// Appends [`to_f32`]'s values to `into`, without a vector of their own; false (nothing appended)
/// for a type without a float reading.
pub fn append_f32(b: &Buffer, f: &Fact, into: &mut Vec<f32>) -> bool {
    let (scale, zp) = f.quant.as_ref().map_or((1.0, 0), |q| q.single());
    let start = into.len();
    match b {
        Buffer::F32(v) => {
            into.extend_from_slice(v);
            return true;
        }
        Buffer::I8(_) | Buffer::U8(_) | Buffer::I16(_) | Buffer::I32(_) => into.resize(start + b.len(), 0.0),
        _ => return false,
    }
    let out = &mut into[start..];
    match b {
        Buffer::I8(v) => quant::dequantize_into(v, scale, zp as i32, out),
        Buffer::U8(v) => quant::dequantize_into(v, scale, zp as i32, out),
        Buffer::I16(v) => quant::dequantize_into(v, scale, zp as i32, out),
        Buffer::I32(v) => out.iter_mut().zip(v).for_each(|(o, &x)| *o = x as f32),
        _ => {}
    }
    true
}

/// Float values as a buffer of an input's type, quantized with its parameters for integer inputs.
pub fn float_to_input(f: &Fact, values: &[f32]) -> Result<Buffer> {
    let q = float_input_params(f, values)?;
    let mut b = Buffer::Empty;
    write_float_input(f, q, values, &mut b);
    Ok(b)
}

/// Checks float values for an input of fact `f` (every value finite, an input type they convert
/// to); returns the parameters to quantize them with (`None` for a float input).
pub(crate) fn float_input_params(f: &Fact, values: &[f32]) -> Result<Option<(f32, i32)>> {
    if let Some(pos) = quant::first_non_finite(values) {
        return Err(Error::input(format!("holds a non-finite value ({}) at element {pos}", values[pos])));
    }
    match f.dtype {
        DType::F32 => Ok(None),
        DType::I8 | DType::U8 | DType::I16 => {
            let q = f.quant.as_ref().ok_or_else(|| Error::input("integer input without quantization parameters"))?;
            let (scale, zp) = q.single();
            Ok(Some((scale, zp as i32)))
        }
        other => Err(Error::unsupported(format!("input of type {other}"), Location::default())),
    }
}

/// Writes checked float values ([`float_input_params`] gave `q`) into `dst` as the input of fact
/// `f` holds them, in its memory when it has their type and length already.
pub(crate) fn write_float_input(f: &Fact, q: Option<(f32, i32)>, values: &[f32], dst: &mut Buffer) {
    if dst.dtype() != Some(f.dtype) || dst.len() != values.len() {
        *dst = match f.dtype {
            DType::F32 => Buffer::F32(values.to_vec()),
            d => Buffer::zeros(d, values.len()).unwrap_or_default(),
        };
    }
    let (scale, zp) = q.unwrap_or((1.0, 0));
    match dst {
        Buffer::F32(d) => d.copy_from_slice(values),
        Buffer::I8(d) => quant::quantize_into(values, scale, zp, d),
        Buffer::U8(d) => quant::quantize_into(values, scale, zp, d),
        Buffer::I16(d) => quant::quantize_into(values, scale, zp, d),
        _ => {}
    }
}

pub(crate) fn int_range(d: DType) -> (i32, i32) {
    match d {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        _ => (i32::MIN, i32::MAX),
    }
}
