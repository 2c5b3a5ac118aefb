//! [`EvaluateJob`]: the model's (and the reference model's) outputs on every sample, as batch-run
//! tasks ([`crate::exec::tasks::Run`]) over fixed chunks of samples, joined in sample order, and
//! each model's latency ([`super::tasks::Time`]); then the figures of an [`EvalReport`].

use std::sync::Arc;

use super::tasks::{Chunk, Outcome, Time};
use super::{accuracy, check_comparable, compare, labels_of, samples_of};
use super::{EvalReport, Latency, ReferenceComparison};
use crate::error::{Error, Result};
use crate::exec::tasks::Run;
use crate::exec::{IoDetail, Plan, PlanOptions};
use crate::ir::Model;
use crate::npy::{self, NpyArray};
use crate::parallel::{chunks, decode, encode, Job, Resource, ResourceId, Resources, Round, Task};

/// Samples per task: the unit of work, fixed so that results do not depend on the cores.
const CHUNK: usize = 32;

/// One model being evaluated.
struct Side {
    id: ResourceId,
    size: usize,
    /// The model's outputs, from its plan.
    details: Vec<IoDetail>,
    /// Per-sample inference time, from its task.
    latency: Option<Latency>,
    /// Values per sample of each output.
    widths: Vec<usize>,
    /// Per output, the values of the samples received so far, in sample order.
    outputs: Vec<Vec<f32>>,
}

impl Side {
    /// Plans `model` once here, so that its errors (with their node) come before any task runs.
    /// Its parameters are packed by each worker in its first task: this one's as the others',
    /// which get the model first instead of waiting for that packing.
    fn new(model: &Model, size: usize, res: &mut Resources) -> Result<Side> {
        let plan = Plan::new(model, PlanOptions::default())?;
        let details: Vec<IoDetail> = plan.output_ids().iter().map(|&t| plan.io_detail(t)).collect();
        let widths: Vec<usize> = details.iter().map(|d| d.shape.iter().product()).collect();
        let outputs = vec![Vec::new(); widths.len()];
        let id = res.add(Resource::Model(Arc::new(model.clone())));
        Ok(Side { id, size, details, latency: None, widths, outputs })
    }

    /// Appends a task's outputs for `rows` samples (one `.npy` per output).
    fn append(&mut self, result: &[u8], rows: usize) -> Result<()> {
        let arrays: Vec<Vec<u8>> = decode(result, "outputs")?;
        if arrays.len() != self.widths.len() {
            return Err(Error::argument(format!(
                "a task returned {} outputs, not {}",
                arrays.len(),
                self.widths.len()
            )));
        }
        for (k, bytes) in arrays.iter().enumerate() {
            let values = npy::read(bytes)?.to_f32();
            if Some(values.len()) != rows.checked_mul(self.widths[k]) {
                return Err(Error::argument(format!(
                    "a task returned {} values of output {k} for {rows} samples of {}",
                    values.len(),
                    self.widths[k]
                )));
            }
            self.outputs[k].extend_from_slice(&values);
        }
        Ok(())
    }

    fn latency(&mut self) -> Result<Latency> {
        self.latency.take().ok_or_else(|| Error::argument("the latency was not measured"))
    }
}

/// Evaluation on every core: one round of tasks, each running a chunk of the samples through the
/// model or the reference model (batched where the model allows), then one timing each model's
/// latency; [`EvaluateJob::finish`] computes the report from the outputs in sample order.
///
/// Every sample runs independently (recurrent state starts from zero for each), as float values:
/// integer data is converted to float and quantized for integer inputs, for both models alike.
pub struct EvaluateJob {
    res: Resources,
    data: ResourceId,
    /// Values per sample.
    per: usize,
    n: usize,
    labels: Option<Vec<i64>>,
    /// The model, then the reference model if any.
    sides: Vec<Side>,
    issued: bool,
    done: bool,
}

impl EvaluateJob {
    /// Checks the inputs and prepares both models once (errors come here, before any task runs):
    /// `model` of `size` bytes on `data` (`[N, ...input shape]`), with optional `labels` (class
    /// indices `[N]` or rows `[N, C]`) and `reference` (a model and its size).
    pub fn new(
        model: &Model,
        size: usize,
        data: &NpyArray,
        labels: Option<&NpyArray>,
        reference: Option<(&Model, usize)>,
    ) -> Result<EvaluateJob> {
        Self::from_npy(model, size, npy::write(data), labels, reference)
    }

    /// [`EvaluateJob::new`] on the `.npy` file `bytes`, which the workers get as they are: only its
    /// header is parsed here (and its values checked in blocks); each task decodes its own samples.
    pub fn from_npy(
        model: &Model,
        size: usize,
        bytes: Vec<u8>,
        labels: Option<&NpyArray>,
        reference: Option<(&Model, usize)>,
    ) -> Result<EvaluateJob> {
        let header = npy::checked_header(&bytes)?;
        let n = samples_of(model, &header.shape, "the model")?;
        if let Some((r, _)) = reference {
            let rn = samples_of(r, &header.shape, "the reference model")?;
            if rn != n {
                return Err(Error::input(format!(
                    "the data holds {n} samples for the model but {rn} for the reference"
                )));
            }
        }
        let labels = labels.map(|l| labels_of(l, n)).transpose()?;
        // (The tasks check that the values are finite, each its own samples.)
        let per = header.shape.iter().product::<usize>() / n.max(1);
        let mut res = Resources::default();
        let data = res.add_bytes(bytes);
        let mut sides = vec![Side::new(model, size, &mut res)?];
        if labels.is_some() && sides[0].widths[0] < 2 {
            return Err(Error::input(
                "accuracy needs a classifier: the first output has fewer than 2 values per sample",
            ));
        }
        if let Some((r, rsize)) = reference {
            let theirs = Side::new(r, rsize, &mut res)?;
            check_comparable(&sides[0].widths, &theirs.widths)?;
            sides.push(theirs);
        }
        Ok(EvaluateJob { res, data, per, n, labels, sides, issued: false, done: false })
    }

    /// The resource of the data: with [`EvaluateJob::from_npy`], the file's bytes as given.
    pub fn data_resource(&self) -> ResourceId {
        self.data
    }

    /// The report, once the job's round is done.
    pub fn finish(self) -> Result<EvalReport> {
        if !self.done {
            return Err(Error::argument("the evaluation did not finish"));
        }
        let (n, labels) = (self.n, self.labels.as_deref());
        let mut sides = self.sides.into_iter();
        let mut ours = sides.next().ok_or_else(|| Error::argument("the evaluation has no model"))?;
        let reference = match sides.next() {
            None => None,
            Some(mut theirs) => {
                let (top1_agreement, output_sqnr_db, accuracy) = compare(&ours.outputs, &theirs.outputs, n, labels);
                let (size_bytes, latency) = (theirs.size, theirs.latency()?);
                Some(ReferenceComparison { top1_agreement, output_sqnr_db, accuracy, size_bytes, latency })
            }
        };
        Ok(EvalReport {
            samples: n,
            accuracy: labels.and_then(|l| accuracy(&ours.outputs[0], n, l)),
            reference,
            size_bytes: ours.size,
            latency: ours.latency()?,
            outputs: ours.details,
        })
    }
}

impl Job for EvaluateJob {
    fn next(&mut self) -> Result<Option<Round>> {
        if self.issued {
            return Ok(None);
        }
        self.issued = true;
        let parts = chunks(0..self.n, CHUNK);
        let mut tasks = Vec::with_capacity(parts.len() * self.sides.len());
        let mut units = Vec::with_capacity(tasks.capacity());
        for side in &self.sides {
            for &samples in &parts {
                let run = Run { model: side.id, data: self.data, samples, raw: false, streaming: false, floats: true };
                tasks.push(encode(&Task::Evaluate(Chunk { run })));
                units.push(samples.1 - samples.0);
            }
        }
        // Last, so that they run beside the last chunks.
        for side in &self.sides {
            tasks.push(encode(&Task::Time(Time { model: side.id, data: self.data, per: self.per })));
            units.push(0);
        }
        Ok(Some(Round { stage: "evaluate", resources: self.res.take(), tasks, units, kinds: Vec::new() }))
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        let parts = chunks(0..self.n, CHUNK);
        let runs = parts.len() * self.sides.len();
        if results.len() != runs + self.sides.len() {
            return Err(Error::argument(format!("{} results for {} tasks", results.len(), runs + self.sides.len())));
        }
        for (i, r) in results[..runs].iter().enumerate() {
            let (lo, hi) = parts[i % parts.len()];
            match decode(r, "outputs")? {
                Outcome::Outputs(arrays) => self.sides[i / parts.len()].append(&arrays, hi - lo)?,
                // The first in sample order: the model's chunks come first, in sample order.
                Outcome::NonFinite { sample, element, value } => {
                    return Err(Error::input(format!("sample {sample}: element {element} is {value}")));
                }
            }
        }
        for (side, r) in self.sides.iter_mut().zip(&results[runs..]) {
            side.latency = decode(r, "latency")?;
        }
        self.done = true;
        Ok(())
    }
}
