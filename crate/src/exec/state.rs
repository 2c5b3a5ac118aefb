//! The state of one run: a buffer per computed tensor (kept after the run, so calibration and the
//! backward pass can read any activation) and scratch memory. Many states can share one plan and
//! one parameter store.

use super::buffer::Buffer;
use super::kernel::{internal, RunCx, Scratch};
use super::params::Params;
use super::plan::Plan;
use crate::error::{Error, Location, Result};
use crate::ir::TensorId;

/// Operands a step passes to its kernel without a heap allocation.
const STACK_OPERANDS: usize = 8;

/// Activations and scratch of one run of a plan.
pub struct State {
    pub(super) bufs: Vec<Buffer>,
    scratch: Scratch,
}

impl State {
    /// Zeroed buffers for every tensor the plan computes, takes as input or keeps as state.
    pub fn new(plan: &Plan) -> State {
        let bufs = plan
            .facts
            .tensors
            .iter()
            .map(|f| match f {
                Some(f) if !f.is_known() => Buffer::zeros(f.dtype, f.len()).unwrap_or_default(),
                _ => Buffer::Empty,
            })
            .collect();
        let mut state = State { bufs, scratch: Scratch::default() };
        state.reset_variables(plan);
        state
    }

    /// Sets the recurrent state (variable tensors) to zero, as TFLite and TFLite Micro reset it:
    /// real zero, so an int8 state holds its zero point (int16 states are symmetric).
    pub fn reset_variables(&mut self, plan: &Plan) {
        for &t in &plan.variables {
            if let Some(f) = plan.fact(t) {
                let mut b = Buffer::zeros(f.dtype, f.len()).unwrap_or_default();
                let zp = f.quant.as_ref().and_then(|q| q.zero_point.first().copied()).unwrap_or(0);
                if let Buffer::I8(v) = &mut b {
                    v.fill(zp.clamp(-128, 127) as i8);
                }
                self.bufs[t] = b;
            }
        }
    }

    /// The buffer of a computed tensor or input (not of parameters: see [`Params::value`]).
    pub fn buffer(&self, t: TensorId) -> Option<&Buffer> {
        self.bufs.get(t)
    }

    pub(super) fn buffer_mut(&mut self, t: TensorId) -> Option<&mut Buffer> {
        self.bufs.get_mut(t)
    }

    pub(super) fn set(&mut self, t: TensorId, value: Buffer) {
        if let Some(b) = self.bufs.get_mut(t) {
            *b = value;
        }
    }

    /// Sets input `i` of `plan` from float values (quantized for integer inputs).
    pub fn set_input_f32(&mut self, plan: &Plan, i: usize, values: &[f32]) -> Result<()> {
        let t = *plan.inputs.get(i).ok_or_else(|| Error::input(format!("the model has no input {i}")))?;
        let f = plan.fact(t).ok_or_else(|| Error::input("input has no shape"))?;
        if values.len() != f.len() {
            return Err(Error::input(format!(
                "input {i} takes {} values (shape {:?}), got {}",
                f.len(),
                f.shape,
                values.len()
            )));
        }
        let q = super::float_input_params(f, values).map_err(|e| match e {
            Error::Input { message } => Error::input(format!("input {i} {message}")),
            other => other,
        })?;
        if let Some(dst) = self.bufs.get_mut(t) {
            super::write_float_input(f, q, values, dst);
        }
        Ok(())
    }

    /// Runs every step that is not folded, in order; with `times`, records each step's node and
    /// duration in milliseconds.
    pub fn run(&mut self, plan: &Plan, params: &Params, mut times: Option<&mut Vec<(usize, f64)>>) -> Result<()> {
        for (s, step) in plan.steps.iter().enumerate().filter(|(_, s)| !s.folded) {
            let t0 = times.as_ref().map(|_| crate::clock::now_ms());
            self.run_step(plan, params, s).map_err(|e| e.at(Location::node(step.node, step.kernel.name())))?;
            if let (Some(times), Some(t0)) = (times.as_deref_mut(), t0) {
                times.push((step.node, crate::clock::now_ms() - t0));
            }
        }
        Ok(())
    }

    fn run_step(&mut self, plan: &Plan, params: &Params, s: usize) -> Result<()> {
        let step = &plan.steps[s];
        let fact = plan.fact(step.output).ok_or_else(|| internal("output without facts"))?;
        let mut out = std::mem::take(&mut self.bufs[step.output]);
        if out.len() != fact.len() || out.dtype() != Some(fact.dtype) {
            out = Buffer::zeros(fact.dtype, fact.len())
                .ok_or_else(|| Error::unsupported(format!("outputs of type {}", fact.dtype), Location::default()))?;
        }
        let held = step.kernel.states();
        let state_ids: Vec<Option<TensorId>> = held.iter().map(|&i| step.inputs.get(i).copied().flatten()).collect();
        let mut states: Vec<Buffer> =
            state_ids.iter().map(|t| t.map_or(Buffer::Empty, |t| std::mem::take(&mut self.bufs[t]))).collect();
        let bufs = &self.bufs;
        let operand = |(i, t): (usize, &Option<TensorId>)| {
            t.filter(|_| !held.contains(&i)).map(|t| params.value(t).unwrap_or(&bufs[t]))
        };
        // The operands on the stack, not in a Vec allocated per step; the few operators with more
        // (LSTMs) in a Vec.
        let mut stack = [None; STACK_OPERANDS];
        let mut heap = Vec::new();
        let inputs: &[Option<&Buffer>] = if step.inputs.len() <= STACK_OPERANDS {
            let slots = &mut stack[..step.inputs.len()];
            slots.iter_mut().zip(step.inputs.iter().enumerate().map(operand)).for_each(|(s, b)| *s = b);
            slots
        } else {
            heap.extend(step.inputs.iter().enumerate().map(operand));
            &heap
        };
        let mut cx =
            RunCx { inputs, out: &mut out, packed: params.packed(s), scratch: &mut self.scratch, states: &mut states };
        let result = step.kernel.run(&mut cx);
        self.bufs[step.output] = out;
        for (t, b) in state_ids.into_iter().zip(states) {
            if let Some(t) = t {
                self.bufs[t] = b;
            }
        }
        result
    }
}
