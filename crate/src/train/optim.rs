//! Optimizers over a set of parameter tensors: SGD with momentum and Adam (with decoupled weight
//! decay), each keeping its state per parameter. A pruning mask applies to the weights, the
//! gradients and the optimizer state alike, so a pruned weight stays exactly zero and no momentum
//! brings it back.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "OptimizerKind"))]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Adam,
    Sgd,
}

/// One parameter tensor being trained.
#[derive(Clone, Debug)]
pub struct Param {
    pub values: Vec<f32>,
    /// `false` where the weight is pruned (held at zero).
    pub mask: Option<Vec<bool>>,
    /// First moment (Adam) or velocity (SGD).
    m: Vec<f32>,
    /// Second moment (Adam).
    v: Vec<f32>,
    /// Whether weight decay applies (weights yes, biases no).
    pub decay: bool,
}

impl Param {
    pub fn new(values: Vec<f32>, decay: bool) -> Param {
        let n = values.len();
        Param { values, mask: None, m: vec![0.0; n], v: vec![0.0; n], decay }
    }

    /// Forgets the optimizer's moments: after a pruning step they describe another network (a
    /// loss spike's large second moments would otherwise damp the recovery for ~1000 steps).
    pub fn reset_moments(&mut self) {
        self.m.iter_mut().for_each(|x| *x = 0.0);
        self.v.iter_mut().for_each(|x| *x = 0.0);
    }

    /// Sets the mask and zeroes everything it removes: values and optimizer state.
    pub fn set_mask(&mut self, mask: Vec<bool>) {
        for (i, &keep) in mask.iter().enumerate() {
            if !keep {
                self.values[i] = 0.0;
                self.m[i] = 0.0;
                self.v[i] = 0.0;
            }
        }
        self.mask = Some(mask);
    }

    /// Fraction of the values that are pruned.
    pub fn sparsity(&self) -> f64 {
        self.mask.as_ref().map_or(0.0, |m| m.iter().filter(|&&k| !k).count() as f64 / m.len().max(1) as f64)
    }
}

/// The settings of an optimizer.
#[derive(Clone, Copy, Debug)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, momentum: f32, weight_decay: f32) -> Optimizer {
        // Keras' defaults, so the same settings train the same way.
        Optimizer { kind, momentum, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weight_decay }
    }

    /// One step on `p` with gradient `g` at learning rate `lr`; `t` counts steps from 1.
    pub fn step(&self, p: &mut Param, g: &[f32], lr: f32, t: u32) {
        match self.kind {
            OptimizerKind::Sgd => self.sgd(p, g, lr),
            OptimizerKind::Adam => self.adam(p, g, lr, t),
        }
        if let Some(mask) = &p.mask {
            for (i, &keep) in mask.iter().enumerate() {
                if !keep {
                    p.values[i] = 0.0;
                    p.m[i] = 0.0;
                    p.v[i] = 0.0;
                }
            }
        }
    }

    /// Keras' SGD: `v = μ·v − lr·(g + λ·w)`, `w += v` (weight decay as an L2 term).
    fn sgd(&self, p: &mut Param, g: &[f32], lr: f32) {
        let decay = if p.decay { self.weight_decay } else { 0.0 };
        for ((w, m), &gi) in p.values.iter_mut().zip(p.m.iter_mut()).zip(g) {
            *m = self.momentum * *m - lr * (gi + decay * *w);
            *w += *m;
        }
    }

    /// Adam with bias correction as Keras computes it, and AdamW's decoupled weight decay.
    fn adam(&self, p: &mut Param, g: &[f32], lr: f32, t: u32) {
        let (b1, b2) = (self.beta1, self.beta2);
        let lr_t = lr * (1.0 - b2.powi(t as i32)).sqrt() / (1.0 - b1.powi(t as i32));
        let decay = if p.decay { lr * self.weight_decay } else { 0.0 };
        for (((w, m), v), &gi) in p.values.iter_mut().zip(p.m.iter_mut()).zip(p.v.iter_mut()).zip(g) {
            *m = b1 * *m + (1.0 - b1) * gi;
            *v = b2 * *v + (1.0 - b2) * gi * gi;
            *w -= lr_t * *m / (v.sqrt() + self.epsilon) + decay * *w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Minimises (w − 3)² from 0: both optimizers converge; a masked weight stays exactly zero.
    #[test]
    fn optimizers_converge_and_masks_hold() {
        for (kind, lr) in [(OptimizerKind::Sgd, 0.1), (OptimizerKind::Adam, 0.1)] {
            let opt = Optimizer::new(kind, 0.9, 0.0);
            let mut p = Param::new(vec![0.0, 0.0], true);
            p.set_mask(vec![true, false]);
            for t in 1..=500 {
                let g: Vec<f32> = p.values.iter().map(|w| 2.0 * (w - 3.0)).collect();
                opt.step(&mut p, &g, lr, t);
            }
            assert!((p.values[0] - 3.0).abs() < 1e-2, "{kind:?}: {}", p.values[0]);
            assert_eq!(p.values[1], 0.0, "{kind:?}: the pruned weight moved");
        }
    }
}
