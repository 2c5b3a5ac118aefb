//! The worker's side of training: forward (and backward) of one micro-batch with the weights the
//! task carries, applied to the worker's own parameter store only when they changed.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::{Buffer, Params, Plan, PlanOptions, State};
use crate::grad::{seed, Backprop, Loss, Targets, Workspace};
use crate::ir::TensorId;
use crate::parallel::{encode, ResourceId, Worker};

/// What the samples are compared with.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TargetData {
    /// A class index per sample.
    pub classes: Option<Vec<i64>>,
    /// Target values per sample, `width` each (one-hot rows, probabilities, regression targets).
    pub values: Option<Vec<f32>>,
    pub width: usize,
}

/// What every step of a run shares.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSpec {
    /// The tensors trained, in the order steps carry them.
    pub trainable: Vec<TensorId>,
    /// Quantization-aware training: per FAKE_QUANT node, its input and its range tensors.
    pub fake_quant: Vec<(TensorId, TensorId, TensorId)>,
    pub loss: Loss,
}

/// Forward (and, with `backward`, backward) of the samples `indices` with version `version` of
/// the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainStep {
    pub model: ResourceId,
    pub data: ResourceId,
    pub targets: ResourceId,
    pub spec: ResourceId,
    pub version: u64,
    /// The values of `spec.trainable`, then the range of each fake-quant node (min, max).
    pub weights: Vec<Vec<f32>>,
    pub indices: Vec<u32>,
    pub backward: bool,
}

/// What a step task returns: sums over its samples.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepOut {
    pub loss: f64,
    pub correct: Option<u64>,
    /// Gradients of the summed loss, per trainable tensor (empty without backward).
    pub grads: Vec<Vec<f32>>,
    /// Per fake-quant node, the smallest and largest value its input took.
    pub ranges: Vec<(f32, f32)>,
}

/// A worker's parameter store for training one model, and which weights it holds; with the
/// activations and backward scratch its steps reuse (one [`State`] per batch size).
struct Trainee {
    version: Option<u64>,
    params: Params,
    states: Vec<(usize, State)>,
    ws: Workspace,
}

impl Trainee {
    /// The activations for batches of `rows` samples (kept for the next step of that size).
    fn take_state(&mut self, plan: &Plan, rows: usize) -> State {
        match self.states.iter().position(|s| s.0 == rows) {
            Some(i) => {
                let mut state = self.states.swap_remove(i).1;
                state.reset_variables(plan);
                state
            }
            None => State::new(plan),
        }
    }

    /// Keeps `state` for later steps: a run has at most a few batch sizes (the step's, the last
    /// step's, validation's), and the oldest goes when a fourth comes.
    fn keep_state(&mut self, rows: usize, state: State) {
        if self.states.len() >= 3 {
            self.states.remove(0);
        }
        self.states.push((rows, state));
    }
}

impl TrainStep {
    /// The samples' inputs and targets, gathered.
    fn batch(&self, x: &[f32], per: usize, t: &TargetData) -> Result<(Vec<f32>, TargetData)> {
        let mut xs = Vec::with_capacity(self.indices.len() * per);
        let mut out = TargetData { width: t.width, ..Default::default() };
        for &i in &self.indices {
            let i = i as usize;
            xs.extend_from_slice(
                x.get(i * per..(i + 1) * per).ok_or_else(|| Error::argument("sample index out of range"))?,
            );
            if let Some(c) = &t.classes {
                out.classes.get_or_insert_with(Vec::new).push(c[i]);
            }
            if let Some(v) = &t.values {
                out.values.get_or_insert_with(Vec::new).extend_from_slice(&v[i * t.width..(i + 1) * t.width]);
            }
        }
        Ok((xs, out))
    }

    /// The changes to apply when the worker holds another version of the weights.
    fn changes(&self, spec: &TrainSpec) -> Vec<(TensorId, Buffer)> {
        let ids = spec.trainable.iter().copied().chain(spec.fake_quant.iter().flat_map(|&(_, lo, hi)| [lo, hi]));
        ids.zip(&self.weights).map(|(t, v)| (t, Buffer::F32(v.clone()))).collect()
    }

    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let m = w.model(self.model)?;
        let g = m.main();
        let spec = w.value::<TrainSpec>(self.spec)?;
        let targets = w.value::<TargetData>(self.targets)?;
        let x = w.floats(self.data)?;
        let per = g.inputs.first().map_or(1, |&t| g.tensors[t].num_elements().max(1));
        let rows = self.indices.len();
        let batched = crate::exec::batchable(g);
        let (xs, t) = self.batch(&x, per, &targets)?;
        let groups: Vec<(usize, usize)> =
            if batched { vec![(0, rows)] } else { (0..rows).map(|r| (r, r + 1)).collect() };
        let mut out = None;
        for (a, b) in groups {
            let plan = w.derived(self.model, b - a, |w, _| {
                let m = w.model(self.model)?;
                Plan::new(&m, PlanOptions { batch: (b - a != 1).then_some(b - a), ..PlanOptions::default() })
            })?;
            let trainee = w.derived(self.model, usize::MAX, |_, _| {
                Ok(Mutex::new(Trainee {
                    version: None,
                    params: Params::new(&plan, g)?,
                    states: Vec::new(),
                    ws: Workspace::default(),
                }))
            })?;
            let part = self.group(g, &plan, &trainee, &spec, &xs[a * per..b * per], &t, (a, b))?;
            merge(&mut out, part);
        }
        Ok(encode(&out.unwrap_or_default()))
    }

    #[allow(clippy::too_many_arguments)]
    fn group(
        &self,
        g: &crate::ir::Graph,
        plan: &Arc<Plan>,
        trainee: &Arc<Mutex<Trainee>>,
        spec: &TrainSpec,
        x: &[f32],
        t: &TargetData,
        (a, b): (usize, usize),
    ) -> Result<StepOut> {
        let mut tr = trainee.lock().map_err(|_| Error::argument("training state poisoned"))?;
        if tr.version != Some(self.version) {
            tr.params.update(plan, self.changes(spec))?;
            tr.version = Some(self.version);
        }
        let mut state = tr.take_state(plan, b - a);
        let out = self.forward_backward(g, plan, &mut tr, &mut state, spec, x, t, (a, b));
        tr.keep_state(b - a, state);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_backward(
        &self,
        g: &crate::ir::Graph,
        plan: &Plan,
        tr: &mut Trainee,
        state: &mut State,
        spec: &TrainSpec,
        x: &[f32],
        t: &TargetData,
        (a, b): (usize, usize),
    ) -> Result<StepOut> {
        state.set_input_f32(plan, 0, x)?;
        state.run(plan, &tr.params, None)?;
        let o = plan.output_ids().first().copied().ok_or_else(|| Error::argument("the model has no output"))?;
        let p = state.buffer(o).and_then(|b| b.as_f32()).ok_or_else(|| Error::argument("the output is not float"))?;
        let targets = match (&t.classes, &t.values) {
            (Some(c), _) => Targets::Classes(&c[a..b]),
            (None, Some(v)) => Targets::Values(&v[a * t.width..b * t.width]),
            _ => return Err(Error::argument("no targets")),
        };
        let s = seed(g, o, p, b - a, spec.loss, targets)?;
        let mut out = StepOut { loss: s.loss, correct: s.correct.map(|c| c as u64), ..Default::default() };
        if self.backward {
            let bp = Backprop { graph: g, plan, params: &tr.params, state };
            let grads = bp.run(&s, &spec.trainable, &mut tr.ws)?;
            out.grads = grads
                .into_iter()
                .zip(&spec.trainable)
                .map(|(gr, &t)| gr.unwrap_or_else(|| vec![0.0; len_of(plan, t)]))
                .collect();
        }
        out.ranges = spec
            .fake_quant
            .iter()
            .map(|&(input, _, _)| {
                let v = state.buffer(input).and_then(|b| b.as_f32()).unwrap_or(&[]);
                v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
            })
            .collect();
        Ok(out)
    }
}

fn len_of(plan: &Plan, t: TensorId) -> usize {
    plan.fact(t).map_or(0, |f| f.len())
}

/// Adds a later group's sums (in order) to the first one's.
pub fn merge(acc: &mut Option<StepOut>, o: StepOut) {
    let Some(a) = acc else {
        *acc = Some(o);
        return;
    };
    a.loss += o.loss;
    a.correct = a.correct.zip(o.correct).map(|(x, y)| x + y);
    for (x, g) in a.grads.iter_mut().zip(o.grads) {
        x.iter_mut().zip(g).for_each(|(x, y)| *x += y);
    }
    for (x, r) in a.ranges.iter_mut().zip(o.ranges) {
        *x = (x.0.min(r.0), x.1.max(r.1));
    }
}
