//! The state of one run: a buffer per computed tensor (kept after the run, so calibration and the
//! backward pass can read any activation) and scratch memory. Many states can share one plan and
//! one parameter store.

use super::buffer::Buffer;
use super::kernel::{internal, RunCx, Scratch};
use super::params::Params;
use super::plan::Plan;
use crate::error::{Error, Location, Result};
use crate::ir::{DType, TensorId};

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

    /// A state for `plan` on the memory of `old`, a state of any plan. Each buffer a run of `plan`
    /// writes before reading it (every step's output, and the inputs, which are set before a run)
    /// takes the old buffer of its type with the least room that is enough, shortened or lengthened
    /// in place; the others, and those no old buffer fits, are fresh zeros as in [`State::new`].
    /// Old buffers left over are freed. The recycled buffers hold old values, which is safe for the
    /// same reason reusing a state across runs is: a run writes every element of each tensor it
    /// produces. The scratch memory is taken over too (kernels never read scratch they did not
    /// write in the same step).
    pub fn recycled(plan: &Plan, old: State) -> State {
        let takes = reuse(plan, &old.capacities());
        let mut spare: Vec<Option<Buffer>> = old.bufs.into_iter().map(Some).collect();
        let bufs = (plan.facts.tensors.iter().zip(takes))
            .map(|(f, take)| match f {
                Some(f) if !f.is_known() => {
                    let reused = take.and_then(|k| spare.get_mut(k)).and_then(Option::take).map(|mut b| {
                        b.resize(f.len());
                        b
                    });
                    reused.or_else(|| Buffer::zeros(f.dtype, f.len())).unwrap_or_default()
                }
                _ => Buffer::Empty,
            })
            .collect();
        let mut state = State { bufs, scratch: old.scratch };
        state.reset_variables(plan);
        state
    }

    /// The bytes of this state's memory a state of `plan` made by [`State::recycled`] would reuse.
    pub fn reusable_bytes(&self, plan: &Plan) -> usize {
        let caps = self.capacities();
        let size = |k: usize| caps[k].0.and_then(DType::size_of).unwrap_or(1) * caps[k].1;
        reuse(plan, &caps).into_iter().flatten().map(size).sum()
    }

    /// The type and capacity (in elements) of each buffer.
    fn capacities(&self) -> Vec<(Option<DType>, usize)> {
        self.bufs.iter().map(|b| (b.dtype(), b.capacity())).collect()
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
                "input {i} '{}' takes {} values (shape {:?}), got {}",
                plan.name(t),
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

/// For each tensor of `plan`, the old buffer (an index into `old`, the old buffers' types and
/// capacities) [`State::recycled`] gives it: for each tensor a run writes before reading it (every
/// step's output, and the inputs, set before a run), in tensor order, the free old buffer of its
/// type with the least room that is enough.
fn reuse(plan: &Plan, old: &[(Option<DType>, usize)]) -> Vec<Option<usize>> {
    let mut written = vec![false; plan.facts.tensors.len()];
    let outputs = plan.steps.iter().filter(|s| !s.folded).map(|s| s.output);
    for t in outputs.chain(plan.inputs.iter().copied()) {
        if let Some(w) = written.get_mut(t) {
            *w = true;
        }
    }
    let mut free: Vec<bool> = old.iter().map(|&(d, c)| d.is_some() && c > 0).collect();
    let mut take = |dtype: DType, n: usize| {
        let fits = |k: &usize| free[*k] && old[*k].0 == Some(dtype) && old[*k].1 >= n;
        let k = (0..old.len()).filter(fits).min_by_key(|&k| old[k].1)?;
        free[k] = false;
        Some(k)
    };
    (plan.facts.tensors.iter().zip(written))
        .map(|(f, written)| f.as_ref().filter(|f| written && !f.is_known()).and_then(|f| take(f.dtype, f.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::exec::{Interpreter, Params, PlanOptions};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn model(name: &str) -> crate::ir::Model {
        let bytes: &[u8] = match name {
            "cnn float" => include_bytes!("../../../tests/fixtures/cnn/model_float.tflite"),
            "cnn int8" => include_bytes!("../../../tests/fixtures/cnn/model_int8_tf.tflite"),
            "dwcnn int8" => include_bytes!("../../../tests/fixtures/dwcnn/model_int8_tf.tflite"),
            "resnet int8" => include_bytes!("../../../tests/fixtures/resnet/model_int8_tf.tflite"),
            _ => include_bytes!("../../../tests/fixtures/lstm/model_int8_tf.tflite"),
        };
        crate::tflite::read(bytes).unwrap()
    }

    /// A fresh interpreter of `name` for `batch` samples, run on pseudo-random inputs of `seed`.
    fn engine(name: &str, batch: usize) -> (Arc<Plan>, Arc<Params>) {
        let m = model(name);
        let batch = (batch != 1).then_some(batch);
        let plan = Arc::new(Plan::new(&m, PlanOptions { batch, ..PlanOptions::default() }).unwrap());
        let params = Arc::new(Params::new(&plan, m.main()).unwrap());
        (plan, params)
    }

    fn run(it: &mut Interpreter, seed: u64) {
        let len = it.inputs()[0].shape.iter().product::<usize>();
        let mut rng = crate::rng::Rng::new(seed);
        let x: Vec<f32> = (0..len).map(|_| rng.uniform()).collect();
        it.set_input_f32(0, &x).unwrap();
        it.invoke().unwrap();
    }

    fn address(b: &Buffer) -> usize {
        match b {
            Buffer::F32(v) => v.as_ptr() as usize,
            Buffer::I8(v) => v.as_ptr() as usize,
            Buffer::U8(v) => v.as_ptr() as usize,
            Buffer::I16(v) => v.as_ptr() as usize,
            Buffer::I32(v) => v.as_ptr() as usize,
            Buffer::I64(v) => v.as_ptr() as usize,
            Buffer::Bool(v) => v.as_ptr() as usize,
            Buffer::Empty => 0,
        }
    }

    /// Model B run on the buffers model A's run left gives, in every tensor, what B run on fresh
    /// buffers gives; `min_reused` of B's buffers are A's memory.
    fn check(a: (&str, usize), b: (&str, usize), min_reused: usize) {
        let mut first = {
            let (plan, params) = engine(a.0, a.1);
            Interpreter::from_parts(plan, params)
        };
        run(&mut first, 1);
        let old: Vec<usize> = first.state().bufs.iter().map(address).filter(|&p| p != 0).collect();
        let (plan, params) = engine(b.0, b.1);
        let bytes = first.reusable_bytes(&plan);
        let mut recycled = first.recycle(plan.clone(), params.clone());
        run(&mut recycled, 2);
        let mut fresh = Interpreter::from_parts(plan, params);
        run(&mut fresh, 2);
        assert!(recycled.state().bufs == fresh.state().bufs, "{a:?} then {b:?}: the tensors differ");
        let reused = recycled.state().bufs.iter().filter(|b| old.contains(&address(b))).count();
        assert!(reused >= min_reused, "{a:?} then {b:?}: {reused} buffers reused, expected {min_reused}");
        assert_eq!(bytes > 0, reused > 0, "{a:?} then {b:?}: {bytes} bytes said reusable, {reused} buffers reused");
    }

    #[test]
    fn runs_on_recycled_buffers_equal_runs_on_fresh_ones() {
        // The same layout: every buffer the run writes is the old one.
        let cnn = engine("cnn int8", 4).0;
        let written = cnn.steps.iter().filter(|s| !s.folded).count() + cnn.inputs.len();
        check(("cnn int8", 4), ("cnn int8", 4), written);
        // A smaller batch of the same model on the larger buffers, and back.
        check(("cnn int8", 5), ("cnn int8", 3), written);
        check(("cnn int8", 2), ("cnn int8", 3), 1);
        // Other models, other types (int8 ones with int8 inputs: nothing of the float model fits), recurrent
        // state.
        check(("cnn float", 3), ("cnn int8", 3), 0);
        check(("resnet int8", 2), ("dwcnn int8", 2), 4);
        check(("dwcnn int8", 2), ("lstm int8", 1), 1);
        check(("lstm int8", 1), ("cnn float", 2), 0);
    }
}
