//! Gradients of a classification loss with respect to every weight, by a backward pass through the
//! float engine's own forward activations.
//!
//! For each sample the [`Interpreter`] runs forward (it keeps every activation), the loss gradient
//! is seeded at the model output, and [`backward`] walks the prepared steps in reverse, turning each
//! step's output gradient into gradients of its non-constant inputs and of its weights and bias.
//! The loss is cross-entropy against the given labels, or against the model's own top-1 prediction
//! when there are none (so gradient-based pruning works without labels). Gradients are averaged
//! over the samples, like the gradient of the batch's mean loss.
//!
//! When the output comes from SOFTMAX the seed is placed at the softmax input as
//! `β·(p − onehot)`, which is the exact gradient and stays finite when `p` underflows.

mod backward;

use crate::error::{Error, Location, Result};
use crate::exec::{samples_in, Interpreter, Kernel};
use crate::ir::{DType, Model, Op, TensorId};

/// Averaged gradients of the loss.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// Per tensor of the main graph: ∂L/∂t for the weights and biases of CONV_2D,
    /// DEPTHWISE_CONV_2D and FULLY_CONNECTED (other tensors `None`), averaged over the samples.
    pub weights: Vec<Option<Vec<f32>>>,
    /// The mean loss over the samples.
    pub loss: f64,
    pub samples: usize,
}

/// Progress of long work: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Checks that `model` can be differentiated: float weights in every weighted operator.
pub fn check_float(model: &Model) -> Result<()> {
    let g = model.main();
    for (i, n) in g.nodes.iter().enumerate() {
        if !n.op.has_weights() {
            continue;
        }
        let Some(w) = n.input(1) else { continue };
        if g.tensors[w].dtype != DType::F32 {
            return Err(Error::unsupported(
                format!(
                    "gradients through {} weights of type {}: prune the float model, then quantize it",
                    n.op.name(),
                    g.tensors[w].dtype
                ),
                g.node_loc(i),
            ));
        }
    }
    Ok(())
}

/// Gradients of the mean cross-entropy over the samples of `x` (`[N, ...input shape]`, float
/// values) against `labels` (class indices), or against the model's own predictions when `None`.
pub fn gradients(
    model: &Model,
    x: &[f32],
    x_shape: &[usize],
    labels: Option<&[i64]>,
    progress: Progress,
) -> Result<Gradients> {
    check_float(model)?;
    let g = model.main();
    let mut it = Interpreter::new(model)?;
    let input = it.inputs().first().cloned().ok_or_else(|| Error::argument("the model has no input"))?;
    if g.inputs.len() != 1 {
        return Err(Error::unsupported(
            format!("gradients of models with {} inputs", g.inputs.len()),
            Location::default(),
        ));
    }
    let n = samples_in(x_shape, &input.shape, "the gradient data")?;
    if n == 0 {
        return Err(Error::input("the gradient data has no samples"));
    }
    if let Some(l) = labels {
        if l.len() != n {
            return Err(Error::input(format!("{} labels for {n} samples", l.len())));
        }
    }
    let out = *g.outputs.first().ok_or_else(|| Error::argument("the model has no output"))?;
    let out_info = it.tensor_info(out).cloned().ok_or_else(|| Error::argument("the model output has no shape"))?;
    let classes = out_info.shape.last().copied().unwrap_or(0);
    if out_info.dtype != DType::F32 || classes < 2 || out_info.len() != classes {
        return Err(Error::unsupported(
            format!(
                "gradient scores need a classifier: one float output row of at least 2 classes, got {} {:?}",
                out_info.dtype, out_info.shape
            ),
            g.tensor_loc(out),
        ));
    }
    if let Some(bad) = labels.and_then(|l| l.iter().position(|&y| y < 0 || y as usize >= classes)) {
        return Err(Error::input(format!(
            "label {} of sample {bad} is not a class index below {classes}",
            labels.map_or(0, |l| l[bad])
        )));
    }
    let per = x.len() / n;
    let steps = it.steps().to_vec();
    let softmax_seed = steps.iter().rposition(|s| s.output == out).and_then(|k| match steps[k].kernel {
        Kernel::SoftmaxF32 { beta, .. } => steps[k].inputs.first().copied().flatten().map(|input| (k, input, beta)),
        _ => None,
    });
    // Tensors whose gradient is needed: outputs of steps (graph inputs and constants are leaves).
    let mut needed = vec![false; g.tensors.len()];
    for s in &steps {
        needed[s.output] = true;
    }
    let weight_ids: Vec<TensorId> =
        g.nodes.iter().filter(|n| n.op.has_weights()).flat_map(|n| [n.input(1), n.input(2)]).flatten().collect();
    let mut sums: Vec<Option<Vec<f64>>> = vec![None; g.tensors.len()];
    for &t in &weight_ids {
        sums[t] = Some(vec![0.0; g.tensors[t].num_elements()]);
    }
    let mut loss = 0.0f64;
    let mut ws = backward::Workspace::default();
    for i in 0..n {
        it.set_input_f32(0, &x[i * per..(i + 1) * per]).map_err(|e| match e {
            Error::Input { message } => Error::input(format!("sample {i}: {message}")),
            other => other,
        })?;
        it.invoke()?;
        let p = it.tensor(out).and_then(|b| b.as_f32()).ok_or_else(|| Error::argument("output is not float"))?;
        let mut act: Vec<Option<Vec<f32>>> = vec![None; g.tensors.len()];
        let skip = match softmax_seed {
            Some((k, input, beta)) => {
                let y = labels.map_or_else(|| argmax(p), |l| l[i] as usize);
                loss -= (p[y].max(f32::MIN_POSITIVE) as f64).ln();
                let mut d: Vec<f32> = p.iter().map(|&v| beta * v).collect();
                d[y] -= beta;
                act[input] = Some(d);
                Some(k)
            }
            None => {
                // Raw scores: softmax cross-entropy on the logits.
                let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f64> = p.iter().map(|&v| ((v - max) as f64).exp()).collect();
                let sum: f64 = exp.iter().sum();
                let y = labels.map_or_else(|| argmax(p), |l| l[i] as usize);
                loss += sum.ln() - (p[y] - max) as f64;
                let mut d: Vec<f32> = exp.iter().map(|&e| (e / sum) as f32).collect();
                d[y] -= 1.0;
                act[out] = Some(d);
                None
            }
        };
        if !loss.is_finite() {
            return Err(Error::input(format!("the loss is not finite at sample {i} (NaN or infinite outputs)")));
        }
        let mut wg: Vec<Option<Vec<f32>>> = vec![None; g.tensors.len()];
        for (k, step) in steps.iter().enumerate().rev() {
            if Some(k) == skip {
                continue;
            }
            let Some(dy) = act[step.output].take() else { continue };
            backward::step(g, &it, step, &dy, &needed, &mut act, &mut wg, &mut ws)
                .map_err(|e| e.at(g.node_loc(step.node)))?;
        }
        for (t, w) in wg.into_iter().enumerate() {
            if let (Some(w), Some(s)) = (w, sums[t].as_mut()) {
                for (s, v) in s.iter_mut().zip(w) {
                    *s += v as f64;
                }
            }
        }
        progress("gradients", i + 1, n);
    }
    let weights = sums.into_iter().map(|s| s.map(|v| v.into_iter().map(|x| (x / n as f64) as f32).collect())).collect();
    Ok(Gradients { weights, loss: loss / n as f64, samples: n })
}

/// The loss alone (mean cross-entropy as [`gradients`] defines it), for finite-difference checks.
pub fn loss(model: &Model, x: &[f32], x_shape: &[usize], labels: &[i64]) -> Result<f64> {
    let mut it = Interpreter::new(model)?;
    let input = it.inputs().first().cloned().ok_or_else(|| Error::argument("the model has no input"))?;
    let n = samples_in(x_shape, &input.shape, "the data")?;
    let per = x.len() / n.max(1);
    let out = *model.main().outputs.first().ok_or_else(|| Error::argument("the model has no output"))?;
    let is_softmax =
        model.main().nodes.iter().any(|nd| nd.output() == Some(out) && matches!(nd.op, Op::Softmax { .. }));
    let mut total = 0.0f64;
    for i in 0..n {
        it.set_input_f32(0, &x[i * per..(i + 1) * per])?;
        it.invoke()?;
        let p = it.output_f32(0).unwrap_or_default();
        let y = labels[i] as usize;
        total += if is_softmax {
            -(p[y].max(f32::MIN_POSITIVE) as f64).ln()
        } else {
            let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            p.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() - (p[y] as f64 - max)
        };
    }
    Ok(total / n.max(1) as f64)
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests;
