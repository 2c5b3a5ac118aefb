//! Pruning masks during training: at each step the schedule names, the lowest-scoring weights of
//! the pruned layers are masked, globally or layer by layer, so exactly the target fraction is
//! zero. Weights masked before stay masked (the schedule's sparsity only grows).

use crate::prune::Method;
use crate::rng::Rng;

/// The score of each weight of one layer: higher is more important.
pub fn scores(method: Method, w: &[f32], grad: Option<&[f32]>, rng: &mut Rng) -> Vec<f32> {
    match method {
        Method::GlobalMagnitude | Method::LayerMagnitude => w.iter().map(|v| v.abs()).collect(),
        Method::GlobalGradient | Method::LayerGradient => match grad {
            Some(g) if g.len() == w.len() => w.iter().zip(g).map(|(a, b)| (a * b).abs()).collect(),
            _ => w.iter().map(|v| v.abs()).collect(),
        },
        Method::Random => w.iter().map(|_| rng.uniform()).collect(),
    }
}

/// Masks (`true` = kept) for layers with `scores`, removing `sparsity` of all their weights: the
/// lowest scores of all layers together (`global`) or of each layer. Weights already masked in
/// `previous` score lowest, so they stay masked. Ties go to the lower index.
pub fn masks(scores: &[Vec<f32>], previous: &[Option<Vec<bool>>], sparsity: f64, global: bool) -> Vec<Vec<bool>> {
    let keyed: Vec<Vec<f32>> = scores
        .iter()
        .zip(previous)
        .map(|(s, p)| {
            s.iter()
                .enumerate()
                .map(|(i, &v)| if p.as_ref().is_some_and(|m| !m[i]) { f32::NEG_INFINITY } else { v })
                .collect()
        })
        .collect();
    let mut out: Vec<Vec<bool>> = keyed.iter().map(|s| vec![true; s.len()]).collect();
    let lowest = |items: &mut Vec<(f32, usize, usize)>, k: usize, out: &mut Vec<Vec<bool>>| {
        items.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for &(_, l, i) in items.iter().take(k) {
            out[l][i] = false;
        }
    };
    if global {
        let mut items: Vec<(f32, usize, usize)> =
            keyed.iter().enumerate().flat_map(|(l, s)| s.iter().enumerate().map(move |(i, &v)| (v, l, i))).collect();
        let k = (sparsity * items.len() as f64).round() as usize;
        lowest(&mut items, k, &mut out);
    } else {
        for (l, s) in keyed.iter().enumerate() {
            let mut items: Vec<(f32, usize, usize)> = s.iter().enumerate().map(|(i, &v)| (v, l, i)).collect();
            let k = (sparsity * items.len() as f64).round() as usize;
            lowest(&mut items, k, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn masks_remove_exactly_the_fraction_and_keep_earlier_masks() {
        let s = vec![vec![0.5, 0.1, 0.9, 0.3], vec![0.2, 0.8]];
        let m = masks(&s, &[None, None], 0.5, true);
        assert_eq!(m, vec![vec![true, false, true, false], vec![false, true]]);
        let m = masks(&s, &[None, None], 0.5, false);
        assert_eq!(m, vec![vec![true, false, true, false], vec![false, true]]);
        // A weight masked before stays masked even if it now scores high.
        let prev = vec![Some(vec![true, true, false, true]), None];
        let m = masks(&s, &prev, 1.0 / 6.0, true);
        assert!(!m[0][2]);
        assert_eq!(m.iter().flatten().filter(|k| !**k).count(), 1);
    }
}
