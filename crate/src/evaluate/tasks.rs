//! The latency benchmark of one model as a task of the evaluation's round, so it runs beside the
//! last chunks on another core instead of after them on the job's own thread.

use serde::{Deserialize, Serialize};

use super::{benchmark, Latency};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::exec::Interpreter;
use crate::parallel::{encode, ResourceId, Worker};

/// About how long the latency benchmark of each model runs, in milliseconds.
const LATENCY_MS: f64 = 50.0;

/// Per-sample inference time of a model on the first sample of the data, one sample at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Time {
    pub model: ResourceId,
    pub data: ResourceId,
    /// Values per sample.
    pub per: usize,
}

impl Time {
    /// Two warm-up runs, then about [`LATENCY_MS`] of timed runs (at least five timed batches, see
    /// [`benchmark`]); returns the encoded [`Latency`].
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        // The worker's batch-1 engine: its parameters are shared with the batched runs (a store
        // serves every batch size it fits, see `Params::fits`).
        let (plan, params) = &*w.engine(self.model, 1)?.ok_or_else(|| Error::argument("the model does not compile"))?;
        let mut it = Interpreter::from_parts(plan.clone(), params.clone());
        let first = w.float_rows(self.data, self.per, (0, 1))?;
        it.set_input_f32(0, &first)?;
        it.invoke()?;
        let t = now_ms();
        it.invoke()?;
        let one = (now_ms() - t).max(1e-3);
        let latency: Latency = benchmark(&mut it, 0, ((LATENCY_MS / one) as usize).clamp(5, 10_000))?;
        Ok(encode(&latency))
    }
}
