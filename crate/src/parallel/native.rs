//! Runs a job's rounds on threads (one [`Worker`] each), or inline with one thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{Job, Resource, Worker};
use crate::error::Result;

/// Progress of long work: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Runs `job` to the end with `threads` workers. The first has the resources as they are; the others
/// get them as bytes, as the JavaScript pool's task workers do. With one thread (and always in wasm, where the
/// JavaScript worker pool plays this part) tasks run inline on the caller's thread.
pub fn run(job: &mut dyn Job, threads: usize, progress: Progress) -> Result<()> {
    let threads = if cfg!(target_arch = "wasm32") { 1 } else { threads.max(1) };
    let mut workers: Vec<Worker> = (0..threads).map(|_| Worker::default()).collect();
    while let Some(round) = job.next()? {
        // As in JavaScript, where the first worker holds the job and the others get bytes.
        for (i, w) in workers.iter_mut().enumerate() {
            for (id, r) in &round.resources {
                w.put(*id, if i == 0 { r.clone() } else { Resource::Bytes(r.to_bytes()?) });
            }
        }
        let total: usize = (0..round.tasks.len()).map(|i| round.unit(i)).sum();
        let results = if threads == 1 || round.tasks.len() <= 1 {
            let (mut out, mut done) = (Vec::with_capacity(round.tasks.len()), 0);
            for (i, t) in round.tasks.iter().enumerate() {
                out.push(workers[0].run(t)?);
                done += round.unit(i);
                progress(round.stage, done, total);
            }
            out
        } else {
            let out = on_threads(&mut workers, &round.tasks)?;
            progress(round.stage, total, total);
            out
        };
        job.accept(results)?;
    }
    Ok(())
}

/// Each worker on its own thread takes the next task until none is left; results in task order.
fn on_threads(workers: &mut [Worker], tasks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Vec<u8>>>>> = Mutex::new((0..tasks.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for w in workers.iter_mut() {
            let (next, results) = (&next, &results);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = tasks.get(i) else { break };
                let r = w.run(task);
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    let all = results.into_inner().unwrap_or_default();
    all.into_iter().map(|r| r.unwrap_or_else(|| Err(crate::error::Error::argument("a task did not run")))).collect()
}
