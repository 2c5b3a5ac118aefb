//! Evaluation of a model on data: accuracy against labels, agreement and output SQNR against a
//! reference model (usually the float original), size, and latency with our engine.

use serde::Serialize;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::exec::{samples_in, Interpreter, IoDetail};
use crate::ir::Model;
use crate::npy::NpyArray;
use crate::quantize::report::SqnrAcc;

#[derive(Clone, Debug, Serialize)]
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
    let (mut per_batch, t0) = (0usize, now_ms());
    while now_ms() - t0 < 5.0 {
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
pub struct ReferenceComparison {
    /// Fraction of samples whose top-1 class equals the reference model's.
    pub top1_agreement: f64,
    /// Per output: SQNR of this model's output against the reference's, in dB.
    pub output_sqnr_db: Vec<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    pub size_bytes: usize,
    pub latency: Latency,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub samples: usize,
    /// Top-1 accuracy against the labels (output 0), when labels were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceComparison>,
    pub size_bytes: usize,
    /// Per-sample inference time with our engine (wasm in the browser and Node).
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

struct Run {
    outputs: Vec<Vec<f32>>,
    latency: Latency,
}

fn run_all(
    model: &Model,
    x: &[f32],
    n: usize,
    progress: &mut dyn FnMut(&str, usize, usize),
    stage: &str,
) -> Result<Run> {
    let mut it = Interpreter::new(model)?;
    let per = x.len() / n.max(1);
    let outs = it.outputs().len();
    let mut outputs = vec![Vec::new(); outs];
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        it.set_input_f32(0, &x[i * per..(i + 1) * per]).map_err(|e| match e {
            Error::Input { message } => Error::input(format!("sample {i}: {message}")),
            other => other,
        })?;
        let t = now_ms();
        it.invoke()?;
        times.push(now_ms() - t);
        for (k, o) in outputs.iter_mut().enumerate() {
            o.extend(it.output_f32(k).unwrap_or_default());
        }
        progress(stage, i + 1, n);
    }
    Ok(Run { outputs, latency: Latency::of(&times) })
}

fn accuracy(out: &[f32], n: usize, labels: &[i64]) -> Option<f64> {
    let k = out.len() / n.max(1);
    if k < 2 || labels.len() < n || out.len() < n * k {
        return None;
    }
    let correct = (0..n).filter(|&i| argmax(&out[i * k..(i + 1) * k]) as i64 == labels[i]).count();
    Some(correct as f64 / n as f64)
}

/// Evaluates `model` (of `size` bytes) on `data` (`[N, ...input shape]`).
pub fn evaluate(
    model: &Model,
    size: usize,
    data: &NpyArray,
    labels: Option<&NpyArray>,
    reference: Option<(&Model, usize)>,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<EvalReport> {
    let n = samples_of(model, data, "the model")?;
    if let Some((r, _)) = reference {
        let rn = samples_of(r, data, "the reference model")?;
        if rn != n {
            return Err(Error::input(format!("the data holds {n} samples for the model but {rn} for the reference")));
        }
    }
    let x = data.to_f32();
    let labels = labels.map(|l| labels_of(l, n)).transpose()?;
    let ours = run_all(model, &x, n, progress, "evaluate")?;
    let acc = labels.as_ref().and_then(|l| accuracy(&ours.outputs[0], n, l));
    if labels.is_some() && acc.is_none() {
        return Err(Error::input("accuracy needs a classifier: the first output has fewer than 2 values per sample"));
    }
    let reference = match reference {
        None => None,
        Some((r, rsize)) => {
            let theirs = run_all(r, &x, n, progress, "reference")?;
            Some(compare(&ours, theirs, n, labels.as_deref(), rsize)?)
        }
    };
    let outputs = Interpreter::new(model)?.outputs();
    Ok(EvalReport { samples: n, accuracy: acc, reference, size_bytes: size, latency: ours.latency, outputs })
}

/// Samples in `data` for `model`'s single input; `who` names the model in errors.
fn samples_of(model: &Model, data: &NpyArray, who: &str) -> Result<usize> {
    let g = model.graphs.first().ok_or_else(|| Error::input(format!("{who} has no graph")))?;
    if g.inputs.len() != 1 {
        return Err(Error::input(format!("evaluating models with {} inputs (one is supported)", g.inputs.len())));
    }
    if g.outputs.is_empty() {
        return Err(Error::input(format!("{who} has no outputs: there is nothing to evaluate")));
    }
    let input = g.tensors.get(g.inputs[0]).ok_or_else(|| Error::input(format!("{who}'s input tensor is missing")))?;
    let n = samples_in(&data.shape, &input.shape, "the data")?;
    if n == 0 {
        return Err(Error::input("the data holds no samples"));
    }
    Ok(n)
}

/// Agreement, SQNR and accuracy of the reference run `theirs` against `ours`. Both must produce
/// the same number of outputs, each of the same width.
fn compare(ours: &Run, theirs: Run, n: usize, labels: Option<&[i64]>, size: usize) -> Result<ReferenceComparison> {
    if ours.outputs.len() != theirs.outputs.len() {
        return Err(Error::input(format!(
            "the reference model has {} outputs, the model {}",
            theirs.outputs.len(),
            ours.outputs.len()
        )));
    }
    for (k, (a, b)) in ours.outputs.iter().zip(&theirs.outputs).enumerate() {
        if a.len() != b.len() {
            return Err(Error::input(format!(
                "output {k} has {} values per sample but the reference's has {}: the models do not compare",
                a.len() / n,
                b.len() / n
            )));
        }
    }
    let output_sqnr_db = ours
        .outputs
        .iter()
        .zip(&theirs.outputs)
        .map(|(a, b)| {
            let mut s = SqnrAcc::default();
            s.add(b, a);
            s.db()
        })
        .collect();
    let (a, b) = (&ours.outputs[0], &theirs.outputs[0]);
    let k = a.len() / n;
    let agree = if k == 0 {
        0
    } else {
        (0..n).filter(|&i| argmax(&a[i * k..(i + 1) * k]) == argmax(&b[i * k..(i + 1) * k])).count()
    };
    Ok(ReferenceComparison {
        top1_agreement: agree as f64 / n as f64,
        output_sqnr_db,
        accuracy: labels.and_then(|l| accuracy(b, n, l)),
        size_bytes: size,
        latency: theirs.latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Builder, Op};
    use crate::npy::NpyData;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// RELU of a [1, 4] input; its output is the graph output, or the graph has none.
    fn relu(with_output: bool) -> Model {
        let mut b = Builder::new();
        let x = b.input("x", &[1, 4]);
        let y = b.node(Op::Relu, &[Some(x)], &[1, 4]);
        let outputs = if with_output { vec![y] } else { vec![] };
        b.finish(&outputs)
    }

    /// PAD of a [1, 4] input by one column: the same input, an output one value wider.
    fn padded() -> Model {
        let mut b = Builder::new();
        let x = b.input("x", &[1, 4]);
        let p = b.constant_i32("p", &[2, 2], vec![0, 0, 0, 1]);
        let y = b.node(Op::Pad, &[Some(x), Some(p)], &[1, 5]);
        b.finish(&[y])
    }

    fn data(n: usize) -> NpyArray {
        NpyArray::new(vec![n, 4], NpyData::F32((0..n * 4).map(|i| i as f32 - 3.0).collect())).unwrap()
    }

    fn nothing(_: &str, _: usize, _: usize) {}

    #[test]
    fn a_reference_with_another_output_width_is_a_clear_error() {
        let e = evaluate(&relu(true), 1, &data(3), None, Some((&padded(), 1)), &mut nothing).unwrap_err();
        assert_eq!(e.code().as_str(), "invalid_input");
        assert!(e.to_string().contains("output 0 has 4 values per sample but the reference's has 5"), "{e}");
        // The same model as its own reference compares.
        let r = evaluate(&relu(true), 1, &data(3), None, Some((&relu(true), 1)), &mut nothing).unwrap();
        assert_eq!(r.reference.unwrap().top1_agreement, 1.0);
    }

    #[test]
    fn a_model_without_outputs_is_a_clear_error() {
        for (model, reference) in [(relu(false), None), (relu(true), Some(relu(false)))] {
            let e = evaluate(&model, 1, &data(2), None, reference.as_ref().map(|r| (r, 1)), &mut nothing).unwrap_err();
            assert!(e.to_string().contains("has no outputs"), "{e}");
        }
    }

    #[test]
    fn labels_without_classes_or_samples_are_errors() {
        let labels = NpyArray::new(vec![2, 0], NpyData::F32(vec![])).unwrap();
        assert!(labels_of(&labels, 2).unwrap_err().to_string().contains("no classes"));
        let labels = NpyArray::new(vec![3], NpyData::I32(vec![0, 1, 2])).unwrap();
        assert!(labels_of(&labels, 2).is_err());
        assert!(evaluate(&relu(true), 1, &data(0), None, None, &mut nothing).is_err());
    }
}
