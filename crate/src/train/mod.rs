//! Training on the user's machine: fine-tuning, gradual pruning during training (TFMOT's
//! schedules) and quantization-aware training.
//!
//! A [`TrainJob`] is a job of rounds (see [`crate::parallel`]): each optimizer step is one round
//! whose tasks run forward and backward on fixed micro-batches of the step's batch, on any worker;
//! the job adds their gradients in order, masks them, and updates the weights. So a run gives the
//! same model whatever the number of cores. Each epoch ends with a validation round.

mod job;
pub mod masks;
pub mod optim;
pub mod qat;
pub mod schedule;
pub mod tasks;

use serde::{Deserialize, Serialize};

pub use job::TrainJob;
pub use optim::OptimizerKind;
pub use qat::QatJob;
pub use schedule::{LrSchedule, PruningSchedule};

use crate::error::{Error, Result};
use crate::grad::Loss;

/// How to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub optimizer: OptimizerKind,
    /// SGD's momentum.
    pub momentum: f64,
    /// Weight decay (decoupled for Adam, an L2 term for SGD); biases are not decayed.
    pub weight_decay: f64,
    pub lr_schedule: LrSchedule,
    pub loss: Loss,
    /// The fraction of the samples, taken from the end as Keras does, kept for validation.
    pub validation_split: f64,
    /// Stop after this many epochs without a better validation loss (0: never).
    pub early_stopping: usize,
    #[cfg_attr(test, ts(type = "number"))]
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 4,
            batch_size: 32,
            learning_rate: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            weight_decay: 0.0,
            lr_schedule: LrSchedule::Constant,
            loss: Loss::CrossEntropy,
            validation_split: 0.1,
            early_stopping: 0,
            seed: 0,
        }
    }
}

impl TrainOptions {
    /// Refuses nonsense before any work starts.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::argument(m));
        if self.epochs == 0 || self.epochs > 100_000 {
            return bad(format!("epochs must be between 1 and 100000, got {}", self.epochs));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return bad(format!("the batch size must be between 1 and 65536, got {}", self.batch_size));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 10.0) {
            return bad(format!("the learning rate must be in (0, 10), got {}", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum must be in [0, 1), got {}", self.momentum));
        }
        if !(0.0..1.0).contains(&self.weight_decay) {
            return bad(format!("weight decay must be in [0, 1), got {}", self.weight_decay));
        }
        if !(0.0..0.9).contains(&self.validation_split) {
            return bad(format!("the validation split must be in [0, 0.9), got {}", self.validation_split));
        }
        if let LrSchedule::Step { every, factor } = self.lr_schedule {
            if every == 0 || !(factor > 0.0 && factor <= 1.0) {
                return bad(format!(
                    "a step schedule needs every >= 1 and a factor in (0, 1], got {every} and {factor}"
                ));
            }
        }
        Ok(())
    }
}

/// Pruning during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PruneDuring {
    pub method: crate::prune::Method,
    /// TFMOT's default polynomial schedule to the target sparsity when absent.
    pub schedule: Option<PruningSchedule>,
    pub sparsity: f64,
    #[serde(default)]
    pub include_last_layer: bool,
    /// Also prune DEPTHWISE_CONV_2D kernels (left whole by default, as TFMOT does).
    #[serde(default)]
    pub include_depthwise: bool,
}

/// One epoch of a training run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EpochReport {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub learning_rate: f64,
    /// Fraction of the pruned layers' weights that are zero at the end of the epoch.
    pub sparsity: f64,
    pub ms: f64,
}

/// What a training run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TrainReport {
    pub epochs: Vec<EpochReport>,
    /// The epoch whose weights the result has (by validation loss, or training loss without a
    /// validation split; QAT ranks by validation accuracy first). `Some(0)`: the starting weights,
    /// which no epoch beat on the validation samples (fine-tuning and QAT never return a model
    /// worse there than the one they started from).
    pub best_epoch: Option<usize>,
    pub steps: usize,
    pub train_samples: usize,
    pub validation_samples: usize,
    /// Why training ended before its last epoch: early stopping, a diverging loss, or a stop.
    pub stopped: Option<String>,
    /// The starting weights' validation loss and accuracy (with a validation split, without
    /// pruning).
    pub start_val_loss: Option<f64>,
    pub start_val_accuracy: Option<f64>,
    /// Which weights the result has.
    pub kept: Kept,
    /// The pruned layers' sparsity in the result.
    pub sparsity: f64,
    pub ms_per_epoch: f64,
}

/// Which weights a run returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Kept {
    /// The model the run started from, untouched: no epoch beat it on the validation samples (or
    /// the run was stopped before the first epoch ended). Quantization-aware training then returns
    /// its starting static int8 model exactly.
    Start,
    /// The best epoch's weights ([`TrainReport::best_epoch`]).
    #[default]
    Best,
    /// The last weights (no epoch was eligible, e.g. none reached the final sparsity).
    Last,
}

/// Live figures for progress displays: the last step's and the epochs so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TrainMetrics {
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub epochs: Vec<EpochReport>,
}
