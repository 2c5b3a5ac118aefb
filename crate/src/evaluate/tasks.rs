//! The evaluation's tasks: a chunk of samples through one model, its values checked first (so the
//! check runs on every core instead of over the whole data on the job's own thread), and the
//! latency benchmark of one model, which runs beside the last chunks on another core.

use serde::{Deserialize, Serialize};

use super::{benchmark, Latency};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::exec::tasks::Run;
use crate::exec::Interpreter;
use crate::npy::NpyData;
use crate::parallel::{encode, ResourceId, Worker};

/// A chunk of samples run through one model, its values first checked to be finite as float32
/// (every model's chunks check theirs: an integer model would refuse the value otherwise, with an
/// error that depends on which worker saw it first).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chunk {
    pub run: Run,
}

/// What a [`Chunk`] gives: its outputs (one `.npy` per output, as [`Run`] writes them), or the
/// first value that is not finite (sample within the data, element within the sample).
#[derive(Debug, Serialize, Deserialize)]
pub enum Outcome {
    Outputs(Vec<u8>),
    NonFinite { sample: usize, element: usize, value: f32 },
}

impl Chunk {
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let rows = self.run.rows(w)?;
        let per = rows.len() / (self.run.samples.1 - self.run.samples.0).max(1);
        if let Some((at, value)) = first_non_finite(&rows) {
            let (sample, element) = (self.run.samples.0 + at / per.max(1), at % per.max(1));
            return Ok(encode(&Outcome::NonFinite { sample, element, value }));
        }
        Ok(encode(&Outcome::Outputs(self.run.run_rows(w, &rows)?)))
    }
}

/// The position and value of the first value of `rows` that is not finite as float32 (integers
/// always are).
fn first_non_finite(rows: &NpyData) -> Option<(usize, f32)> {
    let first = |v: &mut dyn Iterator<Item = f32>| v.enumerate().find(|(_, x)| !x.is_finite());
    match rows {
        NpyData::F32(v) => first(&mut v.iter().copied()),
        NpyData::F64(v) => first(&mut v.iter().map(|&x| x as f32)),
        _ => None,
    }
}

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
    /// [`benchmark`]); returns the encoded `Option<Latency>` (none when the first sample holds a
    /// value that is not finite: its chunk's task reports that).
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        // The worker's batch-1 engine: its parameters are shared with the batched runs (a store
        // serves every batch size it fits, see `Params::fits`).
        let (plan, params) = &*w.engine(self.model, 1)?.ok_or_else(|| Error::argument("the model does not compile"))?;
        let mut it = Interpreter::from_parts(plan.clone(), params.clone());
        let first = w.float_rows(self.data, self.per, (0, 1))?;
        if first.iter().any(|v| !v.is_finite()) {
            // The chunk holding that sample reports it (in sample order, whichever worker runs it).
            return Ok(encode(&None::<Latency>));
        }
        it.set_input_f32(0, &first)?;
        it.invoke()?;
        let t = now_ms();
        it.invoke()?;
        let one = (now_ms() - t).max(1e-3);
        let latency: Latency = benchmark(&mut it, 0, ((LATENCY_MS / one) as usize).clamp(5, 10_000))?;
        Ok(encode(&Some(latency)))
    }
}
