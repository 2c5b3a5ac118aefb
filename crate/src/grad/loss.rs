//! Losses and their gradients at the model output: the seed of the backward pass. Each returns the
//! loss summed over the batch's samples and the gradient of that sum.
//!
//! When the output comes from SOFTMAX (cross-entropy) or LOGISTIC (binary cross-entropy), the seed
//! is placed at that operator's input: `β·(p − t)` and `p − t` are the exact gradients there and
//! stay finite when `p` underflows.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ir::{Graph, Op, TensorId};

/// What a model is trained to minimise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Softmax cross-entropy against class labels (or one-hot / soft targets).
    #[default]
    CrossEntropy,
    /// Binary cross-entropy of probabilities against targets in [0, 1], averaged over outputs.
    BinaryCrossEntropy,
    /// Mean squared error over outputs (autoencoders, regression).
    MeanSquaredError,
}

/// What the outputs of a batch are compared with.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// A class index per sample.
    Classes(&'a [i64]),
    /// Values shaped like the outputs (one-hot or soft labels, probabilities, regression targets).
    Values(&'a [f32]),
    /// The model's own top-1 prediction (gradient scores without labels).
    OwnPredictions,
}

/// The seed of one batch.
pub struct Seed {
    pub tensor: TensorId,
    pub grad: Vec<f32>,
    /// The loss summed over the batch.
    pub loss: f64,
    /// Samples whose top-1 (or thresholded) prediction matches the target, where that means
    /// something.
    pub correct: Option<usize>,
}

/// The operator producing tensor `t` and its first input, if the producer is `op`-like.
fn producer(g: &Graph, t: TensorId) -> Option<(&Op, TensorId)> {
    g.nodes.iter().rev().find(|n| n.outputs.contains(&t)).and_then(|n| Some((&n.op, n.input(0)?)))
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// The seed for `loss` with the output `out` holding `p` (`rows` samples).
pub fn seed(g: &Graph, out: TensorId, p: &[f32], rows: usize, loss: Loss, targets: Targets) -> Result<Seed> {
    let width = p.len() / rows.max(1);
    if width == 0 || width * rows != p.len() {
        return Err(Error::input(format!("{} outputs do not split into {rows} samples", p.len())));
    }
    if let Targets::Values(t) = targets {
        if t.len() != p.len() {
            return Err(Error::input(format!("{} target values for {} outputs", t.len(), p.len())));
        }
    }
    let s = match loss {
        Loss::CrossEntropy => cross_entropy(g, out, p, width, targets)?,
        Loss::BinaryCrossEntropy => binary_cross_entropy(g, out, p, width, targets)?,
        Loss::MeanSquaredError => squared_error(out, p, width, targets)?,
    };
    if !s.loss.is_finite() {
        return Err(Error::input("the loss is not finite (NaN or infinite outputs)"));
    }
    Ok(s)
}

/// The target distribution of sample `i` (one-hot for a class).
fn target_row(targets: Targets, p: &[f32], i: usize, width: usize, row: &mut Vec<f32>) -> Result<()> {
    row.clear();
    row.resize(width, 0.0);
    match targets {
        Targets::Classes(c) => {
            let y = *c.get(i).ok_or_else(|| Error::input(format!("no label for sample {i}")))?;
            if y < 0 || y as usize >= width {
                return Err(Error::input(format!("label {y} of sample {i} is not a class index below {width}")));
            }
            row[y as usize] = 1.0;
        }
        Targets::Values(t) => row.copy_from_slice(&t[i * width..(i + 1) * width]),
        Targets::OwnPredictions => row[argmax(&p[i * width..(i + 1) * width])] = 1.0,
    }
    Ok(())
}

fn cross_entropy(g: &Graph, out: TensorId, p: &[f32], width: usize, targets: Targets) -> Result<Seed> {
    let softmax = producer(g, out).and_then(|(op, x)| match op {
        Op::Softmax { beta } => Some((x, *beta)),
        _ => None,
    });
    let (mut grad, mut loss, mut correct, mut t) = (vec![0.0f32; p.len()], 0.0f64, 0, Vec::new());
    for (i, row) in p.chunks_exact(width).enumerate() {
        target_row(targets, p, i, width, &mut t)?;
        correct += usize::from(argmax(&t) == argmax(row));
        let g = &mut grad[i * width..(i + 1) * width];
        match softmax {
            Some((_, beta)) => {
                for (j, (&pj, &tj)) in row.iter().zip(&t).enumerate() {
                    loss -= tj as f64 * (pj.max(f32::MIN_POSITIVE) as f64).ln();
                    g[j] = beta * (pj * t.iter().sum::<f32>() - tj);
                }
            }
            None => {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f64> = row.iter().map(|&v| ((v - max) as f64).exp()).collect();
                let sum: f64 = exp.iter().sum();
                for (j, &tj) in t.iter().enumerate() {
                    loss += tj as f64 * (sum.ln() - (row[j] - max) as f64);
                    g[j] = (exp[j] / sum) as f32 * t.iter().sum::<f32>() - tj;
                }
            }
        }
    }
    let tensor = softmax.map_or(out, |(x, _)| x);
    Ok(Seed { tensor, grad, loss, correct: Some(correct) })
}

fn binary_cross_entropy(g: &Graph, out: TensorId, p: &[f32], width: usize, targets: Targets) -> Result<Seed> {
    let logistic = producer(g, out).and_then(|(op, x)| matches!(op, Op::Logistic).then_some(x));
    let t: Vec<f32> = match targets {
        Targets::Values(t) => t.to_vec(),
        Targets::Classes(c) if width == 1 => c.iter().map(|&y| y as f32).collect(),
        _ => return Err(Error::input("binary cross-entropy needs targets shaped like the outputs")),
    };
    if t.len() != p.len() || t.iter().any(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::input("binary cross-entropy targets must be in [0, 1], one per output"));
    }
    const EPS: f32 = 1e-7;
    let (mut grad, mut loss, mut correct) = (vec![0.0f32; p.len()], 0.0f64, 0);
    for (i, (&pi, &ti)) in p.iter().zip(&t).enumerate() {
        let q = pi.clamp(EPS, 1.0 - EPS);
        loss -= (ti as f64 * (q as f64).ln() + (1.0 - ti) as f64 * (1.0 - q as f64).ln()) / width as f64;
        grad[i] = match logistic {
            Some(_) => (pi - ti) / width as f32,
            None => (q - ti) / (q * (1.0 - q)) / width as f32,
        };
        correct += usize::from((pi > 0.5) == (ti > 0.5));
    }
    let correct = (width == 1).then_some(correct);
    Ok(Seed { tensor: logistic.unwrap_or(out), grad, loss, correct })
}

fn squared_error(out: TensorId, p: &[f32], width: usize, targets: Targets) -> Result<Seed> {
    let Targets::Values(t) = targets else {
        return Err(Error::input("mean squared error needs target values shaped like the outputs"));
    };
    let (mut grad, mut loss) = (vec![0.0f32; p.len()], 0.0f64);
    for (i, (&pi, &ti)) in p.iter().zip(t).enumerate() {
        let d = pi - ti;
        loss += (d as f64) * (d as f64) / width as f64;
        grad[i] = 2.0 * d / width as f32;
    }
    Ok(Seed { tensor: out, grad, loss, correct: None })
}
