//! Static quantization as a job of rounds (see [`crate::parallel`]): observe the calibration data in
//! chunks, build candidates and score them on held-out chunks, then measure the chosen one.
//!
//! `auto` first picks the calibration method without bias correction, then tries the correction on
//! the winner; each candidate is scored by output SQNR on held-out calibration samples, and must
//! beat the best so far (the first is min/max, the TF converter's recipe) by a margin.
//!
//! The corrected candidate usually wins, so its round also measures it: one round fewer (and one
//! wait for the slowest engine fewer) when it does; when it does not, a measure round of the winner
//! follows, and the speculative measurements are dropped. The result is the same either way.

use std::sync::Arc;

use super::observe::{mean_samples, Calibration, Observed};
use super::report::{Candidate, QuantReport, SqnrAcc};
use super::rewrite::{build, Built, Shared};
use super::{CalibrationMethod, Granularity, IoType, QuantizeOptions, TensorRanges};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::ir::{Model, TensorId};
use crate::parallel::{chunks, deal, decode, encode, in_job_order, Job, Resource, ResourceId, Resources, Round, Task};
use crate::{passes, tflite};

/// Samples per calibration task.
const CALIBRATE_CHUNK: usize = 16;
/// The last samples of calibration come in half chunks: the last tasks taken (see [`deal`]) are then
/// short, and the engine that finishes first waits less for the other.
const CALIBRATE_TAIL: usize = 48;
/// Samples per scoring task.
const SCORE_CHUNK: usize = 25;
/// Samples per measuring task: the default 32 report samples make four equal tasks.
const MEASURE_CHUNK: usize = 8;
/// How much better (dB of output SQNR on held-out calibration samples) a candidate must be to win.
const SELECT_MARGIN_DB: f64 = 0.25;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Calibrate,
    Select { round: u8 },
    Measure,
    Done,
}

struct Tried {
    method: CalibrationMethod,
    bias_correction: bool,
    /// The candidate's model (taken out of `built`, shared with the workers).
    model: Arc<Model>,
    /// Its `.tflite` bytes, once written (for workers elsewhere, or for its size).
    written: Resource,
    built: Built,
    resource: ResourceId,
    score: Option<f64>,
}

/// Static quantization of one model with one calibration set.
pub struct QuantizeJob {
    float: Arc<Model>,
    folded: usize,
    opts: QuantizeOptions,
    samples: usize,
    res: Resources,
    float_id: ResourceId,
    data_id: ResourceId,
    reference_id: Option<ResourceId>,
    phase: Phase,
    /// What the round in flight is for.
    waiting: Phase,
    calib: Option<Calibration>,
    /// What the candidates built from `calib` share.
    shared: Shared,
    tried: Vec<Tried>,
    /// Candidates scored in the round in flight.
    round: Vec<usize>,
    /// The candidate the round in flight also measures (see the module's doc), and its task count.
    speculative: Option<(usize, usize)>,
    /// The round in flight's tasks in the order they were sent (see [`deal`]): `order[position]`
    /// is the task's index in the job's own order.
    order: Vec<usize>,
    best: Option<usize>,
    result: Option<(Model, QuantReport, TensorRanges)>,
    size_before: usize,
    /// Start, end of calibration, end of selection.
    times: [f64; 3],
}

/// The calibration methods `auto` compares; the first is the TF converter's recipe.
fn methods(opts: &QuantizeOptions) -> Vec<CalibrationMethod> {
    match opts.calibration {
        CalibrationMethod::Auto => {
            vec![CalibrationMethod::MinMax, CalibrationMethod::Percentile { percentile: 99.99 }, CalibrationMethod::Mse]
        }
        m => vec![m],
    }
}

impl QuantizeJob {
    /// Checks nothing about the data (`bytes`, a `.npy` file the workers get as it is): see
    /// `quantize::quantize_job_npy`, which validates first.
    pub fn new(model: &Model, bytes: Vec<u8>, samples: usize, opts: &QuantizeOptions) -> Result<QuantizeJob> {
        let t0 = now_ms();
        let (fm, folded) = passes::fold_constants(model)?;
        let float = Arc::new(fm);
        // Folding usually leaves the model as it was: then the bytes workers elsewhere get are the
        // model's own, and give its size (one write instead of two). With nothing folded, folding
        // only drops unused tensors: the same tensor counts mean the same model.
        let tensors = |m: &Model| m.graphs.iter().map(|g| g.tensors.len()).collect::<Vec<_>>();
        let (float_resource, size_before) = if folded == 0 && tensors(&float) == tensors(model) {
            let bytes = tflite::write(&float)?;
            let size = bytes.len();
            (Resource::written(float.clone(), Some(bytes)), size)
        } else {
            (Resource::written(float.clone(), None), tflite::write(model)?.len())
        };
        let mut res = Resources::default();
        let float_id = res.add(float_resource);
        let data_id = res.add_bytes(bytes);
        Ok(QuantizeJob {
            float,
            folded,
            opts: opts.clone(),
            samples,
            res,
            float_id,
            data_id,
            reference_id: None,
            phase: Phase::Calibrate,
            waiting: Phase::Done,
            calib: None,
            shared: Shared::default(),
            tried: Vec::new(),
            round: Vec::new(),
            speculative: None,
            order: Vec::new(),
            best: None,
            result: None,
            size_before,
            times: [t0, 0.0, 0.0],
        })
    }

    /// The resource of the calibration data: the `.npy` file's bytes as given.
    pub fn data_resource(&self) -> ResourceId {
        self.data_id
    }

    fn auto(&self) -> bool {
        self.opts.calibration == CalibrationMethod::Auto
    }

    /// The quantized model and its report, once the job is done.
    pub fn finish(self) -> Result<(Model, QuantReport)> {
        self.finish_with_ranges().map(|(m, r, _)| (m, r))
    }

    /// Also, per tensor of the float model, the real range its int8 twin represents.
    pub fn finish_with_ranges(self) -> Result<(Model, QuantReport, TensorRanges)> {
        self.result.ok_or_else(|| Error::argument("quantization did not finish"))
    }

    fn calibrate_round(&mut self) -> Round {
        let histograms = methods(&self.opts).iter().any(|m| *m != CalibrationMethod::MinMax);
        let means_until = if self.opts.bias_correction { mean_samples(self.samples) } else { 0 };
        let tail = self.samples.saturating_sub(CALIBRATE_TAIL).max(means_until);
        let mut all = chunks(0..means_until, CALIBRATE_CHUNK);
        all.extend(chunks(means_until..tail, CALIBRATE_CHUNK));
        all.extend(chunks(tail..self.samples, CALIBRATE_CHUNK / 2));
        // Whether a chunk also sums the layers' inputs (for bias correction's means).
        let means = |&(_, b): &(usize, usize)| b <= means_until;
        let task = |samples: (usize, usize)| {
            let means = means(&samples);
            let t = super::tasks::Calibrate { model: self.float_id, data: self.data_id, samples, means, histograms };
            encode(&Task::Calibrate(t))
        };
        // The chunks that also sum the layers' inputs cost about twice as much per sample.
        let weights: Vec<u64> = all.iter().map(|c| ((c.1 - c.0) * if means(c) { 2 } else { 1 }) as u64).collect();
        self.order = deal(&weights);
        let all: Vec<_> = self.order.iter().map(|&k| all[k]).collect();
        let tasks = all.iter().map(|&s| task(s)).collect();
        let mut round = Round::over_samples("calibrate", self.res.take(), tasks, &all);
        round.kinds = all.iter().map(|c| u8::from(!means(c))).collect();
        round
    }

    /// Builds the candidates of this selection round (or the one candidate without `auto`).
    fn candidates(&self, round: u8) -> Result<Vec<(CalibrationMethod, bool)>> {
        let ms = methods(&self.opts);
        Ok(match (self.auto(), round) {
            (false, _) => vec![(ms[0], self.opts.bias_correction)],
            (true, 0) => ms.iter().map(|&m| (m, false)).collect(),
            (true, _) => {
                let winner = self.best.map_or(CalibrationMethod::MinMax, |k| self.tried[k].method);
                vec![(winner, true)]
            }
        })
    }

    fn select_round(&mut self, round: u8) -> Result<Option<Round>> {
        let calib = self.calib.as_ref().ok_or_else(|| Error::argument("no calibration"))?;
        self.round.clear();
        self.order.clear();
        for (method, bc) in self.candidates(round)? {
            let o = QuantizeOptions { calibration: method, bias_correction: bc, ..self.opts.clone() };
            let mut built = build(&self.float, calib, &o, &self.shared)?;
            let model = Arc::new(std::mem::take(&mut built.model));
            let written = Resource::written(model.clone(), None);
            let resource = self.res.add(written.clone());
            self.round.push(self.tried.len());
            self.tried.push(Tried { method, bias_correction: bc, model, written, built, resource, score: None });
        }
        if !self.auto() {
            self.best = Some(0);
            return Ok(None);
        }
        if self.reference_id.is_none() {
            self.reference_id = Some(self.res.add_bytes(encode(&calib.outputs)));
        }
        let held_out = (self.samples / 2)..self.samples.min(self.samples / 2 + self.opts.select_samples);
        let (mut tasks, mut units) = (Vec::new(), Vec::new());
        for &k in &self.round {
            for samples in chunks(held_out.clone(), SCORE_CHUNK) {
                units.push(samples.1 - samples.0);
                let t = super::tasks::Score {
                    model: self.tried[k].resource,
                    data: self.data_id,
                    reference: self.reference_id.unwrap_or(0),
                    samples,
                };
                tasks.push(encode(&Task::Score(t)));
            }
        }
        self.speculative = None;
        // Scoring is kind 0, measuring (two models, every layer compared) kind 1.
        let mut kinds = vec![0; tasks.len()];
        if let [k] = self.round[..] {
            if self.tried[k].bias_correction {
                let (measure, parts) = self.measure_tasks(k);
                self.speculative = Some((k, measure.len()));
                units.extend(parts.iter().map(|(a, b)| b - a));
                kinds.resize(tasks.len() + measure.len(), 1);
                tasks.extend(measure);
            }
        }
        // The heavier measuring tasks (about 1.6 times a scoring task's time for a third of its
        // samples) go to both ends, the scoring ones meet in the middle (see [`deal`]); a round of
        // scoring alone keeps each candidate's tasks together (fewer models for each engine to
        // prepare).
        self.order = if self.speculative.is_some() {
            deal(&kinds.iter().map(|&kind| 1 + u64::from(kind)).collect::<Vec<_>>())
        } else {
            (0..tasks.len()).collect()
        };
        let tasks = self.order.iter().map(|&k| std::mem::take(&mut tasks[k])).collect();
        let units = self.order.iter().map(|&k| units[k]).collect();
        let kinds = self.order.iter().map(|&k| kinds[k]).collect();
        Ok(Some(Round { stage: "select", resources: self.res.take(), tasks, units, kinds }))
    }

    /// Scores the round's candidates from their chunks' accumulators and keeps the best.
    fn accept_scores(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        let per = results.len() / self.round.len().max(1);
        for (i, &k) in self.round.clone().iter().enumerate() {
            let mut acc: Vec<SqnrAcc> = Vec::new();
            for r in &results[i * per..(i + 1) * per] {
                let part: Vec<SqnrAcc> = decode(r, "scores")?;
                acc.resize(part.len().max(acc.len()), SqnrAcc::default());
                acc.iter_mut().zip(&part).for_each(|(a, b)| a.merge(b));
            }
            let dbs: Vec<f64> = acc.iter().filter_map(SqnrAcc::db).map(|d| d.min(200.0)).collect();
            let score = (!dbs.is_empty()).then(|| dbs.iter().sum::<f64>() / dbs.len() as f64);
            self.tried[k].score = score;
            let s = score.unwrap_or(f64::NEG_INFINITY);
            // Another candidate has to beat the best so far by more than the scoring noise.
            let margin = if k == 0 { 0.0 } else { SELECT_MARGIN_DB };
            let best = self.best.map(|b| self.tried[b].score.unwrap_or(f64::NEG_INFINITY));
            if best.is_none_or(|b| s > b + margin) {
                self.best = Some(k);
            }
        }
        Ok(())
    }

    /// The tasks that measure candidate `k` on the report samples, and their sample ranges.
    fn measure_tasks(&self, k: usize) -> (Vec<Vec<u8>>, Vec<(usize, usize)>) {
        let chosen = &self.tried[k];
        let pairs: Vec<Option<(TensorId, TensorId)>> = chosen
            .built
            .layers
            .iter()
            .map(|l| {
                l.source_tensor.and_then(|old| chosen.built.qt[old].or(chosen.built.ft[old]).map(|new| (old, new)))
            })
            .collect();
        let parts = chunks(0..self.samples.min(self.opts.report_samples), MEASURE_CHUNK);
        let tasks = parts
            .iter()
            .map(|&samples| {
                encode(&Task::Measure(super::tasks::Measure {
                    float: self.float_id,
                    quant: chosen.resource,
                    data: self.data_id,
                    samples,
                    pairs: pairs.clone(),
                }))
            })
            .collect();
        (tasks, parts)
    }

    fn measure_round(&mut self) -> Result<Option<Round>> {
        let k = self.best.ok_or_else(|| Error::argument("no quantization candidate"))?;
        let (tasks, parts) = self.measure_tasks(k);
        if tasks.is_empty() {
            return Ok(None);
        }
        Ok(Some(Round::over_samples("measure", self.res.take(), tasks, &parts)))
    }

    /// Writes the report from the measured accumulators (layers first, then outputs).
    fn complete(&mut self, measured: Vec<SqnrAcc>) -> Result<()> {
        let t3 = now_ms();
        let k = self.best.ok_or_else(|| Error::argument("no quantization candidate"))?;
        let outputs = self.float.main().outputs.len();
        let t = &self.tried[k];
        let mut layers = t.built.layers.clone();
        let n_layers = layers.len();
        for (l, a) in layers.iter_mut().zip(&measured) {
            l.sqnr_db = a.db();
        }
        let output_sqnr_db = (0..outputs).map(|o| measured.get(n_layers + o).and_then(SqnrAcc::db)).collect();
        let mut notes = t.built.notes.clone();
        if self.folded > 0 {
            notes.push(format!(
                "{} operators computing constants (e.g. Keras Flatten's SHAPE/PACK) were folded",
                self.folded
            ));
        }
        let candidates = if self.auto() {
            self.tried
                .iter()
                .enumerate()
                .map(|(i, c)| Candidate {
                    calibration: c.method.name(),
                    bias_correction: c.bias_correction,
                    output_sqnr_db: c.score,
                    chosen: i == k,
                })
                .collect()
        } else {
            Vec::new()
        };
        let report = QuantReport {
            mode: "static",
            calibration: Some(if self.auto() { format!("auto: {}", t.method.name()) } else { t.method.name() }),
            granularity: if self.opts.granularity == Granularity::PerChannel { "per-channel" } else { "per-tensor" },
            io: if self.opts.io == IoType::Int8 { "int8" } else { "float32" },
            bias_correction: t.bias_correction,
            calibration_samples: self.samples,
            report_samples: self.samples.min(self.opts.report_samples),
            folded_nodes: self.folded,
            layers,
            output_sqnr_db,
            kept_float: t.built.kept.clone(),
            candidates,
            notes,
            size_before: self.size_before,
            size_after: t.written.to_bytes()?.len(),
            calibration_ms: self.times[1] - self.times[0],
            rewrite_ms: self.times[2] - self.times[1],
            report_ms: t3 - self.times[2],
        };
        self.result = Some((Model::clone(&t.model), report, t.built.ranges(&t.model)));
        self.phase = Phase::Done;
        Ok(())
    }
}

impl Job for QuantizeJob {
    fn next(&mut self) -> Result<Option<Round>> {
        loop {
            let round = match self.phase {
                Phase::Calibrate => Some(self.calibrate_round()),
                Phase::Select { round } => self.select_round(round)?,
                Phase::Measure => self.measure_round()?,
                Phase::Done => return Ok(None),
            };
            self.waiting = self.phase;
            match round {
                Some(r) => return Ok(Some(r)),
                None => self.advance(Vec::new())?,
            }
        }
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        self.advance(results)
    }
}

impl QuantizeJob {
    /// Takes the results of the phase in flight (none when it needed no tasks) and moves on.
    fn advance(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        match self.waiting {
            Phase::Calibrate => {
                let mut all: Option<Observed> = None;
                for r in &in_job_order(results, &self.order)? {
                    let part: Observed = decode(r, "calibration")?;
                    if let Some((sample, element, v)) = part.non_finite {
                        return Err(Error::input(format!(
                            "the calibration data holds {v} at sample {sample}, element {element}"
                        )));
                    }
                    match all.as_mut() {
                        None => all = Some(part),
                        Some(all) => all.merge(part),
                    }
                }
                let all = all.unwrap_or_else(|| Observed::new(self.float.main(), true));
                self.calib = Some(all.finish(self.float.main()));
                self.times[1] = now_ms();
                self.phase = Phase::Select { round: 0 };
            }
            Phase::Select { round } => {
                let mut results = in_job_order(results, &self.order)?;
                let measured = match self.speculative.take() {
                    Some((k, n)) if n <= results.len() => Some((k, results.split_off(results.len() - n))),
                    _ => None,
                };
                if !results.is_empty() {
                    self.accept_scores(results)?;
                }
                let again = self.auto() && self.opts.bias_correction && round == 0;
                self.phase = if again { Phase::Select { round: 1 } } else { Phase::Measure };
                if self.phase == Phase::Measure {
                    self.times[2] = now_ms();
                    if let Some((_, m)) = measured.filter(|(k, _)| self.best == Some(*k)) {
                        self.complete(merge_measured(&m)?)?;
                    }
                }
            }
            Phase::Measure => self.complete(merge_measured(&results)?)?,
            Phase::Done => {}
        }
        Ok(())
    }
}

/// The measure tasks' accumulators merged in task order (layers first, then outputs).
fn merge_measured(results: &[Vec<u8>]) -> Result<Vec<SqnrAcc>> {
    let mut acc: Vec<SqnrAcc> = Vec::new();
    for r in results {
        let part: Vec<SqnrAcc> = decode(r, "measurements")?;
        acc.resize(part.len().max(acc.len()), SqnrAcc::default());
        acc.iter_mut().zip(&part).for_each(|(a, b)| a.merge(b));
    }
    Ok(acc)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// A fixture file's bytes.
    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
    }

    /// A fixture float model and a default quantization job of it over the calibration patterns.
    fn fixture_job(model: &str) -> (Model, QuantizeJob) {
        let m = tflite::read(&fixture(model)).unwrap();
        let job = QuantizeJob::new(&m, fixture("data/patterns_calib.npy"), 200, &QuantizeOptions::default()).unwrap();
        (m, job)
    }

    /// Every candidate `auto` built with the job's shared weights and ranges is the model a build
    /// of its own (nothing shared) gives, byte for byte.
    #[test]
    fn candidates_built_with_shared_parts_equal_builds_of_their_own() {
        for model in ["dwcnn/model_float.tflite", "mlp/model_float.tflite"] {
            let (m, mut job) = fixture_job(model);
            crate::parallel::run(&mut job, 1, &mut |_, _, _| {}).unwrap();
            assert_eq!(job.tried.len(), 4, "{model}: three methods, then bias correction on the winner");
            let calib = job.calib.as_ref().unwrap();
            for t in &job.tried {
                let o =
                    QuantizeOptions { calibration: t.method, bias_correction: t.bias_correction, ..job.opts.clone() };
                let alone = build(&job.float, calib, &o, &Shared::default()).unwrap();
                let (a, b) = (tflite::write(&alone.model).unwrap(), tflite::write(&t.model).unwrap());
                assert!(a == b, "{model}: {} (bias correction {}) differs", t.method.name(), t.bias_correction);
            }
            // The sizes come from bytes written for other purposes: they are the files' sizes.
            let (q, report) = job.finish().unwrap();
            assert_eq!(report.size_before, tflite::write(&m).unwrap().len(), "{model}: size before");
            assert_eq!(report.size_after, tflite::write(&q).unwrap().len(), "{model}: size after");
        }
    }

    /// Runs `job` inline, `tamper` seeing each round's stage, task kinds and results before the job
    /// does; returns the stages of the rounds.
    fn drive(job: &mut QuantizeJob, tamper: impl Fn(&str, &[u8], &mut Vec<Vec<u8>>)) -> Vec<&'static str> {
        let (mut w, mut stages) = (crate::parallel::Worker::default(), Vec::new());
        while let Some(round) = job.next().unwrap() {
            round.resources.iter().for_each(|(id, r)| w.put(*id, r.clone()));
            let mut results: Vec<Vec<u8>> = round.tasks.iter().map(|t| w.run(t).unwrap()).collect();
            tamper(round.stage, &round.kinds, &mut results);
            stages.push(round.stage);
            job.accept(results).unwrap();
        }
        stages
    }

    /// The corrected candidate's round measures it too: when it wins, no measure round follows;
    /// when it loses (its scores made empty here), the winner is measured in a round of its own.
    /// Either way every layer of the report has its SQNR, measured on the chosen model.
    #[test]
    fn the_corrected_candidate_is_measured_in_its_round_and_the_winner_after_it_loses() {
        let new_job = || fixture_job("dwcnn/model_float.tflite").1;
        let mut job = new_job();
        assert_eq!(drive(&mut job, |_, _, _| {}), ["calibrate", "select", "select"]);
        let (_, won) = job.finish().unwrap();
        assert!(won.bias_correction, "the corrected candidate wins on this fixture");
        let select_rounds = std::cell::Cell::new(0);
        let mut job = new_job();
        let stages = drive(&mut job, |stage, kinds, results| {
            if stage == "select" {
                select_rounds.set(select_rounds.get() + 1);
                if select_rounds.get() == 2 {
                    // The scoring tasks (kind 0; the measuring ones are kind 1, at both ends).
                    assert_eq!(
                        (kinds.first(), kinds.last(), kinds.iter().filter(|&&k| k == 1).count()),
                        (Some(&1), Some(&1), 4)
                    );
                    let empty = encode(&Vec::<SqnrAcc>::new());
                    results.iter_mut().zip(kinds).filter(|(_, &k)| k == 0).for_each(|(r, _)| *r = empty.clone());
                }
            }
        });
        assert_eq!(stages, ["calibrate", "select", "select", "measure"]);
        let (_, lost) = job.finish().unwrap();
        assert!(!lost.bias_correction && lost.candidates.iter().any(|c| c.bias_correction && !c.chosen));
        for r in [&won, &lost] {
            assert!(r.layers.iter().all(|l| l.sqnr_db.is_some()) && r.output_sqnr_db.iter().all(Option::is_some));
        }
        assert_ne!(won.output_sqnr_db, lost.output_sqnr_db, "each report measures its own model");
    }

    /// Tasks that cost differently per sample are told apart for the executor's estimates: the
    /// calibration chunks that also sum the layers' inputs (kind 0) from the others (1), and
    /// measuring (1) from scoring (0).
    #[test]
    fn rounds_tell_their_kinds_of_task_apart() {
        let (_, mut job) = fixture_job("dwcnn/model_float.tflite");
        let (mut w, mut seen) = (crate::parallel::Worker::default(), Vec::new());
        while let Some(round) = job.next().unwrap() {
            round.resources.iter().for_each(|(id, r)| w.put(*id, r.clone()));
            let kind = |t: &Vec<u8>| match decode::<Task>(t, "task").unwrap() {
                Task::Calibrate(c) => u8::from(!c.means),
                Task::Score(_) => 0,
                Task::Measure(_) => 1,
                _ => 9,
            };
            assert_eq!(round.kinds, round.tasks.iter().map(kind).collect::<Vec<_>>(), "{}", round.stage);
            seen.push(round.kinds.clone());
            let results = round.tasks.iter().map(|t| w.run(t).unwrap()).collect();
            job.accept(results).unwrap();
        }
        assert_eq!(seen.len(), 3);
        assert!(seen[0].contains(&0) && seen[0].contains(&1) && seen[2].contains(&0) && seen[2].contains(&1));
    }

    /// Folding renumbers a model's tensors: the quantized model's signature still names its input
    /// and output (it used to lose the output of the fixtures whose Flatten is folded), whether
    /// from static quantization or from given ranges (quantization-aware training's export).
    #[test]
    fn signatures_survive_folding() {
        for model in ["dwcnn/model_float.tflite", "mlp/model_float.tflite"] {
            let (m, mut job) = fixture_job(model);
            assert!(job.folded > 0, "{model}: the test needs a model that folds");
            crate::parallel::run(&mut job, 1, &mut |_, _, _| {}).unwrap();
            let ranges = vec![Some((-1.0, 1.0)); m.main().tensors.len()];
            let (from_ranges, _) =
                super::super::quantize_with_ranges(&m, &ranges, &QuantizeOptions::default()).unwrap();
            for q in [job.finish().unwrap().0, from_ranges] {
                let g = q.main();
                let s = &q.signatures[0];
                assert_eq!(
                    s.inputs.iter().map(|(n, t)| (n.as_str(), *t)).collect::<Vec<_>>(),
                    [("image", g.inputs[0])]
                );
                assert_eq!(
                    s.outputs.iter().map(|(n, t)| (n.as_str(), *t)).collect::<Vec<_>>(),
                    [("output_0", g.outputs[0])]
                );
                let back = tflite::read(&tflite::write(&q).unwrap()).unwrap();
                assert_eq!(back.signatures, q.signatures, "{model}");
            }
        }
    }
}
