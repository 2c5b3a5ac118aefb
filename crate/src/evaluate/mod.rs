//! Evaluation of a model on data: accuracy against labels, agreement and output SQNR against a
//! reference model (usually the float original), size, and latency with our engine.
//!
//! The samples run as an [`EvaluateJob`] (chunks of samples on every core, see
//! [`crate::parallel`]); the figures are computed from the outputs joined in sample order, so they
//! are identical whatever the number of cores. [`evaluate`] runs the job on the caller's thread.

mod job;
pub mod tasks;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use job::EvaluateJob;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::exec::{samples_in, Interpreter, IoDetail};
use crate::ir::Model;
use crate::npy::NpyArray;
use crate::quantize::report::SqnrAcc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub mean_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
}

impl Latency {
    /// Summary of per-run times in milliseconds.
    pub fn of(times: &[f64]) -> Latency {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        Latency {
            mean_ms: times.iter().sum::<f64>() / times.len().max(1) as f64,
            median_ms: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            min_ms: sorted.first().copied().unwrap_or(0.0),
        }
    }
}

/// Times about `runs` invocations of `it` on the inputs already set, after `warmup` untimed ones.
///
/// Browsers coarsen `performance.now()` (to 0.1 ms without cross-origin isolation), so runs are
/// timed in batches of at least 5 ms each; the statistics are over per-run times of the batches.
pub fn benchmark(it: &mut Interpreter, warmup: usize, runs: usize) -> Result<Latency> {
    for _ in 0..warmup {
        it.invoke()?;
    }
    // At least one run: on a busy machine the thread may lose the core for 5 ms before the first.
    let (mut per_batch, t0) = (0usize, now_ms());
    while per_batch == 0 || now_ms() - t0 < 5.0 {
        it.invoke()?;
        per_batch += 1;
    }
    let batches = (runs / per_batch).max(5);
    let mut times = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = now_ms();
        for _ in 0..per_batch {
            it.invoke()?;
        }
        times.push((now_ms() - t) / per_batch as f64);
    }
    Ok(Latency::of(&times))
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ReferenceComparison {
    /// Fraction of samples whose top-1 class equals the reference model's.
    pub top1_agreement: f64,
    /// Per output: SQNR of this model's output against the reference's, in dB.
    pub output_sqnr_db: Vec<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub accuracy: Option<f64>,
    pub size_bytes: usize,
    /// The reference model's per-sample inference time, measured as [`EvalReport::latency`].
    pub latency: Latency,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EvalReport {
    pub samples: usize,
    /// Top-1 accuracy against the labels (output 0), when labels were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub reference: Option<ReferenceComparison>,
    pub size_bytes: usize,
    /// Per-sample inference time with our engine (wasm in the browser and Node): a short
    /// benchmark of the first sample, one at a time on one core, as the last task of the
    /// evaluation's round (the evaluation itself runs samples in batches on every core, which says
    /// nothing about the latency of one inference).
    pub latency: Latency,
    pub outputs: Vec<IoDetail>,
}

/// Class labels from `[N]` integers or `[N, C]` one-hot/probabilities.
pub fn labels_of(labels: &NpyArray, n: usize) -> Result<Vec<i64>> {
    let count = labels.shape.first().copied().unwrap_or(0);
    if count != n {
        return Err(Error::input(format!("{count} labels for {n} samples (shape {:?})", labels.shape)));
    }
    match labels.shape.len() {
        1 => labels.to_i64().ok_or_else(|| Error::input("labels of shape [N] must be integers (class indices)")),
        2 => {
            let c = labels.shape[1];
            if c == 0 {
                return Err(Error::input(format!("one-hot labels of shape {:?} have no classes", labels.shape)));
            }
            Ok(labels.to_f32().chunks(c).map(|row| argmax(row) as i64).collect())
        }
        _ => Err(Error::input(format!("labels must be [N] class indices or [N, classes], not {:?}", labels.shape))),
    }
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Top-1 accuracy of `out` (`n` rows) against `labels`; `None` unless each row holds 2+ classes.
fn accuracy(out: &[f32], n: usize, labels: &[i64]) -> Option<f64> {
    let k = out.len() / n.max(1);
    if k < 2 || labels.len() < n || out.len() < n * k {
        return None;
    }
    let correct = (0..n).filter(|&i| argmax(&out[i * k..(i + 1) * k]) as i64 == labels[i]).count();
    Some(correct as f64 / n as f64)
}

/// Evaluates `model` (of `size` bytes) on `data` (`[N, ...input shape]`) on the caller's thread:
/// [`EvaluateJob`] run with one worker.
pub fn evaluate(
    model: &Model,
    size: usize,
    data: &NpyArray,
    labels: Option<&NpyArray>,
    reference: Option<(&Model, usize)>,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<EvalReport> {
    let mut job = EvaluateJob::new(model, size, data, labels, reference)?;
    crate::parallel::run(&mut job, 1, progress)?;
    job.finish()
}

/// Samples in data of shape `data` for `model`'s single input; `who` names the model in errors.
fn samples_of(model: &Model, data: &[usize], who: &str) -> Result<usize> {
    let g = model.graphs.first().ok_or_else(|| Error::input(format!("{who} has no graph")))?;
    if g.inputs.len() != 1 {
        return Err(Error::input(format!("evaluating models with {} inputs (one is supported)", g.inputs.len())));
    }
    if g.outputs.is_empty() {
        return Err(Error::input(format!("{who} has no outputs: there is nothing to evaluate")));
    }
    let input = g.tensors.get(g.inputs[0]).ok_or_else(|| Error::input(format!("{who}'s input tensor is missing")))?;
    let n = samples_in(data, &input.shape, "the data")?;
    if n == 0 {
        return Err(Error::input("the data holds no samples"));
    }
    Ok(n)
}

/// Checks that the reference model's outputs (`theirs`, values per sample of each) compare with
/// the model's (`ours`): as many outputs, each as wide.
fn check_comparable(ours: &[usize], theirs: &[usize]) -> Result<()> {
    if ours.len() != theirs.len() {
        return Err(Error::input(format!(
            "the reference model has {} outputs, the model {}",
            theirs.len(),
            ours.len()
        )));
    }
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a != b {
            return Err(Error::input(format!(
                "output {k} has {a} values per sample but the reference's has {b}: the models do not compare"
            )));
        }
    }
    Ok(())
}

/// Agreement, SQNR and the reference's accuracy, from both models' outputs over all `n` samples
/// (one vector per output, samples in order, as wide as [`check_comparable`] made sure).
fn compare(
    ours: &[Vec<f32>],
    theirs: &[Vec<f32>],
    n: usize,
    labels: Option<&[i64]>,
) -> (f64, Vec<Option<f64>>, Option<f64>) {
    let output_sqnr_db = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| {
            let mut s = SqnrAcc::default();
            s.add(b, a);
            s.db()
        })
        .collect();
    let (a, b) = (&ours[0], &theirs[0]);
    let k = a.len() / n;
    let agree = if k == 0 {
        0
    } else {
        (0..n).filter(|&i| argmax(&a[i * k..(i + 1) * k]) == argmax(&b[i * k..(i + 1) * k])).count()
    };
    (agree as f64 / n as f64, output_sqnr_db, labels.and_then(|l| accuracy(b, n, l)))
}
