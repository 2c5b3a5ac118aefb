//! Work on every core, in any JavaScript engine and natively.
//!
//! A long operation (calibration, scoring quantization candidates, batch runs, evaluation,
//! gradients) is a [`Job`]: it hands out rounds of [`Task`]s, and merges their results, in task
//! order, before deciding the next round. Any engine instance runs any task: a [`Worker`] holds the
//! shared inputs it was sent once ([`Round::resources`]: models, data) and caches what it derives
//! from them (parsed models, compiled plans), so each model is prepared once per worker.
//!
//! Natively [`run`] executes rounds on threads; in JavaScript the package's worker pool does the
//! same with Web Workers or worker threads (no shared memory needed, so it works on any page). A
//! job splits work into chunks that do not depend on the number of workers and merges them in a
//! fixed order, so the result is identical, bit for bit, whatever the number of cores.

mod native;
mod worker;

use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use native::run;
pub use worker::{Engine, Samples, Task, Worker};

use crate::error::{Error, Result};

/// Identifies a shared input within one job.
pub type ResourceId = u32;

/// A shared input of a job's tasks.
#[derive(Clone)]
pub enum Resource {
    /// Bytes: a `.tflite` model, a `.npy` array, or a value written by [`encode`]. (A `Vec` so that
    /// bytes handed over, e.g. a large `.npy` file from JavaScript, are not copied again.)
    Bytes(Arc<Vec<u8>>),
    /// A model already in memory (a candidate the job built). Workers in the same memory use it as
    /// is; [`Resource::to_bytes`] serializes it for workers elsewhere.
    Model(Arc<crate::ir::Model>),
    /// A model in memory with the batch-1 engine the job already compiled from it (to check it
    /// before any task runs): a worker in the same memory reuses that engine instead of compiling
    /// the model again.
    Compiled(Arc<crate::ir::Model>, Arc<Engine>),
    /// A model in memory whose `.tflite` bytes are written once, when first needed (for workers
    /// elsewhere, or by the job itself: the size of the file), and then shared.
    Written(Arc<crate::ir::Model>, Arc<Written>),
}

/// The `.tflite` bytes of a [`Resource::Written`] model, once written.
pub type Written = OnceLock<Arc<Vec<u8>>>;

impl Resource {
    /// A model whose bytes are written at most once; `bytes`, when given, are its written form.
    pub fn written(model: Arc<crate::ir::Model>, bytes: Option<Vec<u8>>) -> Resource {
        let cell = Written::new();
        if let Some(b) = bytes {
            let _ = cell.set(Arc::new(b));
        }
        Resource::Written(model, Arc::new(cell))
    }

    /// The resource as bytes, for a worker in another memory.
    pub fn to_bytes(&self) -> Result<Arc<Vec<u8>>> {
        match self {
            Resource::Bytes(b) => Ok(b.clone()),
            Resource::Model(m) | Resource::Compiled(m, _) => Ok(Arc::new(crate::tflite::write(m)?)),
            Resource::Written(m, cell) => {
                if let Some(b) = cell.get() {
                    return Ok(b.clone());
                }
                let b = Arc::new(crate::tflite::write(m)?);
                Ok(cell.get_or_init(|| b).clone())
            }
        }
    }
}

/// One round of work.
pub struct Round {
    /// Progress stage of this round ("calibrate", "select", ...).
    pub stage: &'static str,
    /// Shared inputs the tasks need that were not sent in an earlier round.
    pub resources: Vec<(ResourceId, Resource)>,
    /// Encoded [`Task`]s.
    pub tasks: Vec<Vec<u8>>,
    /// Per task, its share of the round's work (samples) for progress; empty means one each.
    pub units: Vec<usize>,
    /// Per task, what kind of work it is: tasks of one kind cost about the same per unit, so an
    /// executor can tell from the finished ones how long the others will take. Empty: one kind.
    pub kinds: Vec<u8>,
}

impl Round {
    /// A round whose tasks cover `chunks` of samples: progress counts samples.
    pub fn over_samples(
        stage: &'static str,
        resources: Vec<(ResourceId, Resource)>,
        tasks: Vec<Vec<u8>>,
        chunks: &[(usize, usize)],
    ) -> Round {
        Round { stage, resources, tasks, units: chunks.iter().map(|(a, b)| b - a).collect(), kinds: Vec::new() }
    }

    /// The work of task `i` (1 when not given).
    pub fn unit(&self, i: usize) -> usize {
        self.units.get(i).copied().unwrap_or(1)
    }

    /// The kind of task `i` (0 when not given).
    pub fn kind(&self, i: usize) -> u8 {
        self.kinds.get(i).copied().unwrap_or(0)
    }
}

/// A long operation split into rounds of independent tasks.
pub trait Job {
    /// The next round, or `None` when the job is done.
    fn next(&mut self) -> Result<Option<Round>>;
    /// The results of the last round's tasks, in task order.
    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()>;
}

/// Serializes a task or a result (compact and deterministic).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap_or_default()
}

/// Reads what [`encode`] wrote.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::argument(format!("malformed {what} between workers: {e}")))
}

/// Hands out resource ids and remembers which were already sent.
#[derive(Default)]
pub struct Resources {
    next: ResourceId,
    pending: Vec<(ResourceId, Resource)>,
}

impl Resources {
    /// Registers a resource to send with the next round; returns its id.
    pub fn add(&mut self, r: Resource) -> ResourceId {
        let id = self.next;
        self.next += 1;
        self.pending.push((id, r));
        id
    }

    pub fn add_bytes(&mut self, bytes: Vec<u8>) -> ResourceId {
        self.add(Resource::Bytes(Arc::new(bytes)))
    }

    /// The resources registered since the last round.
    pub fn take(&mut self) -> Vec<(ResourceId, Resource)> {
        std::mem::take(&mut self.pending)
    }
}

/// `0..n` in fixed chunks of `chunk`: the unit of work of a job, independent of the cores.
pub fn chunks(range: std::ops::Range<usize>, chunk: usize) -> Vec<(usize, usize)> {
    let chunk = chunk.max(1);
    range.clone().step_by(chunk).map(|s| (s, (s + chunk).min(range.end))).collect()
}

/// An order for tasks of the given weights (their expected cost): the heaviest dealt alternately to
/// the two ends (first, last, second, second to last, ...), so the lightest meet in the middle. The
/// JavaScript pool's task workers take tasks from the front and the serving worker from the back:
/// each side starts with its share of the heavy work, and the last tasks taken, which decide how
/// long one engine waits for the other at the end of the round, are the shortest. Tasks of equal
/// weight keep their order. `order[position]` is the task's index in the job's own order.
pub fn deal(weights: &[u64]) -> Vec<usize> {
    // Heaviest first, equal weights in their order: an insertion sort (a round has few tasks, and
    // the standard library's stable sort adds 10 KB to the engine).
    let mut by_weight: Vec<usize> = Vec::with_capacity(weights.len());
    for (k, w) in weights.iter().enumerate() {
        let at = by_weight.iter().position(|&j| weights[j] < *w).unwrap_or(by_weight.len());
        by_weight.insert(at, k);
    }
    let front = by_weight.iter().step_by(2);
    let back = by_weight.iter().skip(1).step_by(2).rev();
    front.chain(back).copied().collect()
}

/// Results of tasks sent in `order` (see [`deal`]) put back in the job's own order, so that
/// they merge as they would have unshuffled. Fails on a result count that does not match.
pub fn in_job_order(results: Vec<Vec<u8>>, order: &[usize]) -> Result<Vec<Vec<u8>>> {
    if results.len() != order.len() {
        return Err(Error::argument(format!("{} results for {} tasks", results.len(), order.len())));
    }
    let mut out = vec![Vec::new(); order.len()];
    for (r, &k) in results.into_iter().zip(order) {
        let slot = out.get_mut(k).ok_or_else(|| Error::argument("a task order out of range"))?;
        *slot = r;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
