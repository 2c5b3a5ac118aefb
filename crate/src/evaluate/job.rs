//! [`EvaluateJob`]: the model's (and the reference model's) outputs on every sample, as batch-run
//! tasks ([`crate::exec::tasks::Run`]) over fixed chunks of samples, joined in sample order; then
//! the figures of an [`EvalReport`].

use std::sync::Arc;

use super::{accuracy, benchmark, check_comparable, compare, labels_of, samples_of};
use super::{EvalReport, Latency, ReferenceComparison};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::exec::tasks::Run;
use crate::exec::Interpreter;
use crate::ir::Model;
use crate::npy::{self, NpyArray, NpyData};
use crate::parallel::{chunks, decode, encode, Job, Resource, ResourceId, Resources, Round, Task};

/// Samples per task: the unit of work, fixed so that results do not depend on the cores.
const CHUNK: usize = 32;

/// About how long the latency benchmark of each model runs, in milliseconds.
const LATENCY_MS: f64 = 50.0;

/// One model being evaluated.
struct Side {
    id: ResourceId,
    size: usize,
    /// This model prepared once on the job's own instance: checks that it compiles before any task
    /// runs (errors keep their node), and times one inference at the end.
    it: Interpreter,
    /// Values per sample of each output.
    widths: Vec<usize>,
    /// Per output, the values of the samples received so far, in sample order.
    outputs: Vec<Vec<f32>>,
}

impl Side {
    fn new(model: &Model, size: usize, res: &mut Resources) -> Result<Side> {
        let it = Interpreter::new(model)?;
        let widths: Vec<usize> = it.outputs().iter().map(|d| d.shape.iter().product()).collect();
        let outputs = vec![Vec::new(); widths.len()];
        let id = res.add(Resource::Model(Arc::new(model.clone())));
        Ok(Side { id, size, it, widths, outputs })
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

    /// Per-sample inference time on `sample`: two warm-up runs, then about [`LATENCY_MS`] of
    /// timed runs (at least five timed batches, see [`benchmark`]).
    fn latency(&mut self, sample: &[f32]) -> Result<Latency> {
        self.it.reset_state();
        self.it.set_input_f32(0, sample)?;
        self.it.invoke()?;
        let t = now_ms();
        self.it.invoke()?;
        let one = (now_ms() - t).max(1e-3);
        benchmark(&mut self.it, 0, ((LATENCY_MS / one) as usize).clamp(5, 10_000))
    }
}

/// Evaluation on every core: one round of tasks, each running a chunk of the samples through the
/// model or the reference model (batched where the model allows), then [`EvaluateJob::finish`]
/// computes the report from the outputs in sample order.
///
/// Every sample runs independently (recurrent state starts from zero for each), as float values:
/// integer data is converted to float and quantized for integer inputs, for both models alike.
pub struct EvaluateJob {
    res: Resources,
    data: ResourceId,
    n: usize,
    labels: Option<Vec<i64>>,
    /// The first sample, for the latency.
    first: Vec<f32>,
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
        let n = samples_of(model, data, "the model")?;
        if let Some((r, _)) = reference {
            let rn = samples_of(r, data, "the reference model")?;
            if rn != n {
                return Err(Error::input(format!(
                    "the data holds {n} samples for the model but {rn} for the reference"
                )));
            }
        }
        let labels = labels.map(|l| labels_of(l, n)).transpose()?;
        let mut res = Resources::default();
        let (data, first) = float_data(data, n, &mut res)?;
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
        Ok(EvaluateJob { res, data, n, labels, first, sides, issued: false, done: false })
    }

    /// The report, once the job's round is done. Times one inference of each model here, on the
    /// caller's thread.
    pub fn finish(self) -> Result<EvalReport> {
        if !self.done {
            return Err(Error::argument("the evaluation did not finish"));
        }
        let (n, labels, first) = (self.n, self.labels.as_deref(), &self.first);
        let mut sides = self.sides.into_iter();
        let mut ours = sides.next().ok_or_else(|| Error::argument("the evaluation has no model"))?;
        let reference = match sides.next() {
            None => None,
            Some(mut theirs) => {
                let (top1_agreement, output_sqnr_db, accuracy) = compare(&ours.outputs, &theirs.outputs, n, labels);
                let (size_bytes, latency) = (theirs.size, theirs.latency(first)?);
                Some(ReferenceComparison { top1_agreement, output_sqnr_db, accuracy, size_bytes, latency })
            }
        };
        Ok(EvalReport {
            samples: n,
            accuracy: labels.and_then(|l| accuracy(&ours.outputs[0], n, l)),
            reference,
            size_bytes: ours.size,
            latency: ours.latency(first)?,
            outputs: ours.it.outputs(),
        })
    }
}

/// Registers `data` as float32 `.npy` bytes (as they are when they already are float32) after
/// checking that every value is finite; returns its id and the first sample's values.
fn float_data(data: &NpyArray, n: usize, res: &mut Resources) -> Result<(ResourceId, Vec<f32>)> {
    let converted;
    let (array, values) = match &data.data {
        NpyData::F32(v) => (data, v),
        _ => {
            converted = NpyArray::new(data.shape.clone(), NpyData::F32(data.to_f32()))?;
            let NpyData::F32(v) = &converted.data else { unreachable!("built as float32 above") };
            (&converted, v)
        }
    };
    let per = values.len() / n.max(1);
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::input(format!(
            "sample {}: element {} is {}",
            pos / per.max(1),
            pos % per.max(1),
            values[pos]
        )));
    }
    Ok((res.add_bytes(npy::write(array)), values[..per].to_vec()))
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
                let run = Run { model: side.id, data: self.data, samples, raw: false, streaming: false };
                tasks.push(encode(&Task::Run(run)));
                units.push(samples.1 - samples.0);
            }
        }
        Ok(Some(Round { stage: "evaluate", resources: self.res.take(), tasks, units }))
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        let parts = chunks(0..self.n, CHUNK);
        if results.len() != parts.len() * self.sides.len() {
            return Err(Error::argument(format!(
                "{} results for {} tasks",
                results.len(),
                parts.len() * self.sides.len()
            )));
        }
        for (i, r) in results.iter().enumerate() {
            let (lo, hi) = parts[i % parts.len()];
            self.sides[i / parts.len()].append(r, hi - lo)?;
        }
        self.done = true;
        Ok(())
    }
}
