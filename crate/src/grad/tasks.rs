//! Gradients over a dataset on every core: [`GradientsJob`] splits the samples into tasks of
//! [`TASK`] samples; each task sums its batches' gradients (batches of [`super::CHUNK`]) in f64, and
//! the job adds the tasks' sums in task order.

use serde::{Deserialize, Serialize};

use super::{batch_gradients, check_float, weight_tensors, Batch, Gradients, Loss, Targets, Workspace, CHUNK};
use crate::error::{Error, Result};
use crate::ir::{Model, TensorId};
use crate::npy::{self, NpyArray, NpyData};
use crate::parallel::{chunks, decode, encode, Job, Resource, ResourceId, Resources, Round, Task, Worker};

/// Samples per gradient task.
pub const TASK: usize = 64;

/// Gradient sums of the cross-entropy over samples `samples` with respect to `wrt`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradientTask {
    pub model: ResourceId,
    pub data: ResourceId,
    /// Class indices (encoded `Vec<i64>`); the model's own predictions when absent.
    pub labels: Option<ResourceId>,
    pub samples: (usize, usize),
    pub wrt: Vec<TensorId>,
}

/// What a task returns: the loss and the gradients, summed over its samples.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sums {
    loss: f64,
    grads: Vec<Option<Vec<f64>>>,
}

impl Sums {
    fn add(&mut self, loss: f64, grads: Vec<Option<Vec<f32>>>) {
        self.loss += loss;
        self.grads.resize(grads.len().max(self.grads.len()), None);
        for (acc, g) in self.grads.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            let acc = acc.get_or_insert_with(|| vec![0.0; g.len()]);
            acc.iter_mut().zip(g).for_each(|(a, v)| *a += v as f64);
        }
    }

    fn merge(&mut self, o: Sums) {
        self.loss += o.loss;
        self.grads.resize(o.grads.len().max(self.grads.len()), None);
        for (acc, g) in self.grads.iter_mut().zip(o.grads) {
            match (acc.as_mut(), g) {
                (Some(a), Some(g)) => a.iter_mut().zip(g).for_each(|(a, v)| *a += v),
                (None, g) => *acc = g,
                _ => {}
            }
        }
    }
}

impl GradientTask {
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let m = w.model(self.model)?;
        let g = m.main();
        let per = g.inputs.first().map_or(1, |&t| g.tensors[t].num_elements().max(1));
        let x = w.floats(self.data)?;
        let labels = self.labels.map(|id| w.value::<Vec<i64>>(id)).transpose()?;
        let (mut sums, mut ws) = (Sums::default(), Workspace::default());
        let batch = if w.engine(self.model, CHUNK)?.is_some() { CHUNK } else { 1 };
        for (s0, s1) in chunks(self.samples.0..self.samples.1, batch) {
            let rows = s1 - s0;
            let e = w.engine(self.model, rows)?.ok_or_else(|| Error::argument("the model does not compile"))?;
            let targets = labels.as_ref().map_or(Targets::OwnPredictions, |l| Targets::Classes(&l[s0..s1]));
            let xs = &x[s0 * per..s1 * per];
            let batch = Batch { x: xs, rows, loss: Loss::CrossEntropy, targets };
            let (seed, grads) = batch_gradients(g, &e, batch, &self.wrt, &mut ws).map_err(|e| at_sample(e, s0))?;
            sums.add(seed.loss, grads);
        }
        Ok(encode(&sums))
    }
}

/// Names the batch in an input error (the message's sample numbers are within the batch).
fn at_sample(e: Error, start: usize) -> Error {
    match e {
        Error::Input { message } => Error::input(format!("{message} (in the batch starting at sample {start})")),
        other => other,
    }
}

/// Mean gradients of the cross-entropy over a dataset, with respect to every weight and bias.
pub struct GradientsJob {
    res: Resources,
    model: ResourceId,
    data: ResourceId,
    labels: Option<ResourceId>,
    n: usize,
    tensors: usize,
    wrt: Vec<TensorId>,
    sums: Option<Sums>,
}

impl GradientsJob {
    pub fn new(model: &Model, x: &[f32], x_shape: &[usize], labels: Option<&[i64]>) -> Result<GradientsJob> {
        check_float(model)?;
        let g = model.main();
        if g.inputs.len() != 1 {
            return Err(Error::unsupported(
                format!("gradient data for models with {} inputs (one is supported)", g.inputs.len()),
                Default::default(),
            ));
        }
        let n = crate::exec::samples_in(x_shape, &g.tensors[g.inputs[0]].shape, "the gradient data")?;
        if n == 0 {
            return Err(Error::input("the gradient data has no samples"));
        }
        if labels.is_some_and(|l| l.len() != n) {
            return Err(Error::input(format!("{} labels for {n} samples", labels.map_or(0, <[i64]>::len))));
        }
        let mut res = Resources::default();
        let model_id = res.add(Resource::Model(std::sync::Arc::new(model.clone())));
        let data = NpyArray::new(x_shape.to_vec(), NpyData::F32(x.to_vec()))?;
        let data_id = res.add_bytes(npy::write(&data));
        let labels_id = labels.map(|l| res.add_bytes(encode(&l.to_vec())));
        let wrt = weight_tensors(g);
        Ok(GradientsJob {
            res,
            model: model_id,
            data: data_id,
            labels: labels_id,
            n,
            tensors: g.tensors.len(),
            wrt,
            sums: None,
        })
    }

    /// The gradients averaged over the samples, per tensor of the model.
    pub fn finish(self) -> Result<Gradients> {
        let sums = self.sums.ok_or_else(|| Error::argument("the gradients were not computed"))?;
        let n = self.n as f64;
        let mut weights = vec![None; self.tensors];
        for (&t, g) in self.wrt.iter().zip(sums.grads) {
            weights[t] = g.map(|v| v.into_iter().map(|x| (x / n) as f32).collect());
        }
        Ok(Gradients { weights, loss: sums.loss / n, samples: self.n })
    }
}

impl Job for GradientsJob {
    fn next(&mut self) -> Result<Option<Round>> {
        if self.sums.is_some() {
            return Ok(None);
        }
        let parts = chunks(0..self.n, TASK);
        let tasks = parts
            .iter()
            .map(|&samples| {
                let t = GradientTask {
                    model: self.model,
                    data: self.data,
                    labels: self.labels,
                    samples,
                    wrt: self.wrt.clone(),
                };
                encode(&Task::Gradients(t))
            })
            .collect();
        Ok(Some(Round::over_samples("gradients", self.res.take(), tasks, &parts)))
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        let mut all = Sums::default();
        for r in &results {
            all.merge(decode(r, "gradients")?);
        }
        self.sums = Some(all);
        Ok(())
    }
}
