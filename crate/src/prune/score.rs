//! Importance scores of single weights: `|w|`, `|w · ∂L/∂w|`, or seeded uniform noise.

use super::{Layer, Method, PruneOptions};
use crate::grad::Gradients;
use crate::ir::{Graph, TensorId};
use crate::rng::Rng;

/// Per prunable layer, the score of each weight (and of each bias value, when biases are pruned).
pub(crate) struct Scores {
    pub weights: Vec<Vec<f32>>,
    pub biases: Vec<Option<Vec<f32>>>,
}

/// The float values of constant `t` (empty when it is not a float constant).
pub(crate) fn values(g: &Graph, t: TensorId) -> Vec<f32> {
    g.tensors[t].data.as_ref().and_then(|d| d.as_f32()).map(|a| a.iter().copied().collect()).unwrap_or_default()
}

impl Scores {
    pub fn new(g: &Graph, layers: &[Layer], options: &PruneOptions, grads: Option<&Gradients>) -> Scores {
        let mut rng = Rng::new(options.seed ^ 0x005e_ed0f_9a11);
        let mut score = |t: TensorId| -> Vec<f32> {
            let w = values(g, t);
            match options.method {
                Method::GlobalMagnitude | Method::LayerMagnitude => w.iter().map(|v| v.abs()).collect(),
                Method::GlobalGradient | Method::LayerGradient => {
                    let grad = grads.and_then(|gr| gr.weights.get(t)).and_then(|v| v.as_ref());
                    match grad {
                        Some(gv) if gv.len() == w.len() => w.iter().zip(gv).map(|(a, b)| (a * b).abs()).collect(),
                        _ => vec![0.0; w.len()],
                    }
                }
                Method::Random => w.iter().map(|_| rng.uniform()).collect(),
            }
        };
        let weights = layers.iter().map(|l| score(l.weights)).collect();
        let biases = layers.iter().map(|l| if options.include_bias { l.bias.map(&mut score) } else { None }).collect();
        Scores { weights, biases }
    }
}
