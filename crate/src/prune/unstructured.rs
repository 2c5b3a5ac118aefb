//! Unstructured pruning: the lowest-scored weights become exactly zero; shapes stay.
//!
//! Global methods rank every prunable weight together and remove `round(f · total)` of them, but
//! never the best-scored weight of an output unit, so no channel or neuron (and no layer) is wiped
//! out; the report says when that limit decided. Layer methods remove `round(f · n)` weights of
//! each layer.

use super::score::{values, Scores};
use super::{Layer, PruneOptions};
use crate::error::Result;
use crate::ir::{Model, TensorData, TensorId};

pub(crate) struct Outcome {
    pub model: Model,
    pub prunable: usize,
    /// Prunable values that are zero afterwards.
    pub removed: usize,
}

/// A prunable tensor: the layer's weights or (on request) its bias.
struct Target {
    tensor: TensorId,
    scores: Vec<f32>,
    /// Per value, the output unit whose last weight it may be (`None` for biases).
    units: Option<Vec<usize>>,
}

pub(crate) fn prune(
    model: &Model,
    layers: &[Layer],
    scores: &Scores,
    options: &PruneOptions,
    notes: &mut Vec<String>,
) -> Result<Outcome> {
    let g = model.main();
    let mut targets = Vec::new();
    for (k, l) in layers.iter().enumerate() {
        let n = scores.weights[k].len();
        targets.push(Target {
            tensor: l.weights,
            scores: scores.weights[k].clone(),
            units: Some((0..n).map(|i| l.unit_of(i)).collect()),
        });
        if let (Some(b), Some(s)) = (l.bias, &scores.biases[k]) {
            targets.push(Target { tensor: b, scores: s.clone(), units: None });
        }
    }
    let prunable: usize = targets.iter().map(|t| t.scores.len()).sum();
    // masks[t][i]: value i of target t is removed.
    let mut masks: Vec<Vec<bool>> = targets.iter().map(|t| vec![false; t.scores.len()]).collect();
    if options.method.is_global() {
        let k = (options.sparsity * prunable as f64).round() as usize;
        // The best-scored weight of each output unit is kept.
        let mut protected: Vec<Vec<bool>> = masks.clone();
        for (t, target) in targets.iter().enumerate() {
            let Some(units) = &target.units else { continue };
            let mut best: std::collections::HashMap<usize, usize> = Default::default();
            for (i, &u) in units.iter().enumerate() {
                let e = best.entry(u).or_insert(i);
                if target.scores[i] > target.scores[*e] {
                    *e = i;
                }
            }
            for i in best.into_values() {
                protected[t][i] = true;
            }
        }
        let mut order: Vec<(f32, usize, usize)> = targets
            .iter()
            .enumerate()
            .flat_map(|(t, target)| target.scores.iter().enumerate().map(move |(i, &s)| (s, t, i)))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut taken = 0;
        let mut bound = 0;
        for &(_, t, i) in &order {
            if taken == k {
                break;
            }
            if protected[t][i] {
                bound += 1;
                continue;
            }
            masks[t][i] = true;
            taken += 1;
        }
        if bound > 0 {
            notes.push(format!(
                "kept the best weight of {bound} output unit{} that the global ranking would have emptied",
                if bound == 1 { "" } else { "s" }
            ));
        }
        if taken < k {
            notes.push(format!("only {taken} of {k} weights could go without emptying an output unit"));
        }
    } else {
        for (t, target) in targets.iter().enumerate() {
            let k = (options.sparsity * target.scores.len() as f64).round() as usize;
            let mut order: Vec<usize> = (0..target.scores.len()).collect();
            order.sort_by(|&a, &b| target.scores[a].total_cmp(&target.scores[b]).then(a.cmp(&b)));
            for &i in order.iter().take(k) {
                masks[t][i] = true;
            }
        }
    }
    let mut out = model.clone();
    let mut removed = 0;
    for (target, mask) in targets.iter().zip(&masks) {
        let mut v = values(g, target.tensor);
        for (x, &m) in v.iter_mut().zip(mask) {
            if m {
                *x = 0.0;
            }
        }
        removed += v.iter().filter(|x| **x == 0.0).count();
        let t = &mut out.main_mut().tensors[target.tensor];
        t.data = TensorData::from_f32(&t.shape, v);
    }
    Ok(Outcome { model: out, prunable, removed })
}
