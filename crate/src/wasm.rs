//! The JavaScript surface (wasm-bindgen). The only module that knows about JS: errors become JS
//! `Error`s with `code`, `node` and `tensor` properties; structured results cross as plain objects
//! through serde-wasm-bindgen; byte arrays cross as `Uint8Array`s.

use std::cell::RefCell;

use js_sys::{Array, Function, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::budget::Budget;
use crate::error::Error;
use crate::exec::{run_batch, Interpreter};
#[cfg(feature = "optimizer")]
use crate::{evaluate, prune, quantize, tflm};
use crate::{ir, npy, summary, tflite};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The memory budget of this engine: `bytes` per model (see [`Budget::with_max_memory`]).
#[wasm_bindgen(js_name = setMaxMemory)]
pub fn set_max_memory(bytes: f64) -> Result<(), JsValue> {
    if !(bytes.is_finite() && bytes >= 1.0 && bytes <= u64::MAX as f64) {
        return Err(js_error(Error::argument(format!(
            "the memory budget must be a positive number of bytes, got {bytes}"
        ))));
    }
    crate::budget::set_current(Budget::with_max_memory(bytes as u64));
    Ok(())
}

/// Whose int8 arithmetic this engine reproduces from now on: `"tflm"` (TensorFlow Lite Micro, the
/// default) or `"litert"` (LiteRT's reference kernels). They differ by one step on rare outputs.
#[wasm_bindgen(js_name = setTarget)]
pub fn set_target(target: &str) -> Result<(), JsValue> {
    let t = match target {
        "tflm" => crate::exec::Target::Tflm,
        "litert" => crate::exec::Target::Litert,
        other => {
            return Err(js_error(Error::argument(format!("target must be 'tflm' or 'litert', got '{other}'"))));
        }
    };
    crate::exec::set_default_target(t);
    Ok(())
}

fn budget() -> Budget {
    crate::budget::current()
}

/// Test hook: traps the engine on purpose, so tests can check that the client recovers from a
/// trap. `"unreachable"` executes wasm's `unreachable` (what a panic or an allocation failure
/// becomes in this build); `"stack-overflow"` recurses until the JS engine stops it.
#[wasm_bindgen(js_name = testHookTrap)]
pub fn test_hook_trap(kind: &str) -> Result<(), JsValue> {
    thread_local! {
        // Called through a cell, so the compiler cannot see the recursion and turn it into a loop.
        static NEXT: std::cell::Cell<fn(u64) -> u64> = const { std::cell::Cell::new(deeper) };
    }
    fn deeper(n: u64) -> u64 {
        NEXT.with(|f| f.get())(n + 1).wrapping_mul(3) ^ n
    }
    match kind {
        "unreachable" => core::arch::wasm32::unreachable(),
        "stack-overflow" => {
            deeper(0);
            Ok(())
        }
        other => Err(js_error(Error::argument(format!("unknown trap kind '{other}'")))),
    }
}

/// Installs a panic hook that records the message, so the worker can report an internal error
/// with text instead of a bare `unreachable` trap. Called once when the module starts.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
    }));
}

/// The message of the last panic, if any (taken: a second call returns `undefined`).
#[wasm_bindgen(js_name = takePanicMessage)]
pub fn take_panic_message() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Which SIMD flavour this module was built with: "relaxed-simd", "simd128" or "scalar".
#[wasm_bindgen(js_name = simdLevel)]
pub fn simd_level() -> String {
    if cfg!(target_feature = "relaxed-simd") {
        "relaxed-simd"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "scalar"
    }
    .to_string()
}

/// Which int8 matrix-product kernel runs here: in the relaxed-SIMD build "relaxed-dot-u8" where
/// the engine's relaxed dot product is exact for unsigned bytes (x86 with AVX-VNNI),
/// "relaxed-dot-s8" on engines that lower it otherwise but not to x86's saturating pairs (ARM's
/// sdot: `|w|` against the activations with the weights' signs, exact in its specified range);
/// "dot-i16" elsewhere.
#[wasm_bindgen(js_name = int8Kernel)]
pub fn int8_kernel() -> String {
    crate::kernels::gemm_dot4::kind().name().to_string()
}

fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&err, &JsValue::from_str(k), &v);
    };
    set("code", JsValue::from_str(e.code().as_str()));
    if let Some(loc) = e.location() {
        if let Some(n) = loc.node {
            set("node", JsValue::from_f64(n as f64));
        }
        if let Some(op) = &loc.op {
            set("op", JsValue::from_str(op));
        }
        if let Some(t) = loc.tensor {
            set("tensor", JsValue::from_f64(t as f64));
        }
        if let Some(name) = &loc.tensor_name {
            set("tensorName", JsValue::from_str(name));
        }
    }
    if let Some((asked, limit)) = e.figures() {
        if let Some(asked) = asked {
            set("requested", JsValue::from_f64(asked as f64));
        }
        set("limit", JsValue::from_f64(limit as f64));
    }
    err.into()
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    let ser = serde_wasm_bindgen::Serializer::json_compatible();
    v.serialize(&ser).map_err(|e| JsValue::from(js_sys::Error::new(&e.to_string())))
}

fn progress_fn(f: Option<Function>) -> impl FnMut(usize, usize) {
    move |done, total| {
        if let Some(f) = &f {
            let _ = f.call2(&JsValue::NULL, &JsValue::from_f64(done as f64), &JsValue::from_f64(total as f64));
        }
    }
}

#[cfg(feature = "optimizer")]
fn progress_stage_fn(f: Option<Function>) -> impl FnMut(&str, usize, usize) {
    move |stage, done, total| {
        if let Some(f) = &f {
            let _ = f.call3(
                &JsValue::NULL,
                &JsValue::from_str(stage),
                &JsValue::from_f64(done as f64),
                &JsValue::from_f64(total as f64),
            );
        }
    }
}

/// The result of `Model.quantize` and `Model.prune`: the new model and the report.
#[cfg(feature = "optimizer")]
#[wasm_bindgen]
pub struct ModelResult {
    model: Option<Model>,
    report: JsValue,
}

#[cfg(feature = "optimizer")]
#[wasm_bindgen]
impl ModelResult {
    /// The quantized model (can be taken once).
    #[wasm_bindgen(js_name = takeModel)]
    pub fn take_model(&mut self) -> Option<Model> {
        self.model.take()
    }

    #[wasm_bindgen(getter)]
    pub fn report(&self) -> JsValue {
        self.report.clone()
    }
}

/// A model loaded into the engine.
#[wasm_bindgen]
pub struct Model {
    model: ir::Model,
    size: usize,
    interp: RefCell<Option<Interpreter>>,
}

#[wasm_bindgen]
impl Model {
    /// Reads a `.tflite` file.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<Model, JsValue> {
        let model = tflite::read_with(bytes, &budget()).map_err(js_error)?;
        Ok(Model { model, size: bytes.len(), interp: RefCell::new(None) })
    }

    /// The summary `inspect` prints (operators, tensors, parameters, MACs, quantization, I/O). In
    /// the inference-only core too (without its `tflm` report): the package shows it when a model
    /// is loaded.
    pub fn summary(&self) -> Result<JsValue, JsValue> {
        to_js(&summary::summarize(&self.model, self.size))
    }

    /// What deploying the model with TensorFlow Lite Micro takes (`TflmReport`: support, predicted
    /// arena, flash, operators): the summary's `tflm`, which the inference-only core leaves out.
    #[cfg(feature = "optimizer")]
    pub fn tflm(&self) -> Result<JsValue, JsValue> {
        to_js(&tflm::report(&self.model, self.size as u64))
    }

    /// Serializes the model back to `.tflite` bytes.
    #[cfg(feature = "optimizer")]
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Result<Vec<u8>, JsValue> {
        tflite::write(&self.model).map_err(js_error)
    }

    fn with_interpreter<T>(&self, f: impl FnOnce(&mut Interpreter) -> Result<T, Error>) -> Result<T, JsValue> {
        let mut slot = self.interp.borrow_mut();
        if slot.is_none() {
            *slot = Some(Interpreter::new(&self.model).map_err(js_error)?);
        }
        f(slot.as_mut().expect("interpreter just created")).map_err(js_error)
    }

    /// Quantizes the model (options as `QuantizeOptions`, camelCase); returns `{ model, report }`.
    /// `calibration` is a `.npy` batch, needed for static mode.
    #[cfg(feature = "optimizer")]
    pub fn quantize(
        &self,
        calibration: Option<Vec<u8>>,
        options: JsValue,
        progress: Option<Function>,
    ) -> Result<ModelResult, JsValue> {
        let opts: quantize::QuantizeOptions = if options.is_undefined() || options.is_null() {
            Default::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| js_error(Error::argument(format!("quantize options: {e}"))))?
        };
        let calib = calibration.map(|b| npy::read(&b)).transpose().map_err(js_error)?;
        let mut report_progress = progress_stage_fn(progress);
        let (model, report) =
            quantize::quantize(&self.model, calib.as_ref(), &opts, &mut report_progress).map_err(js_error)?;
        let size = tflite::write(&model).map_err(js_error)?.len();
        Ok(ModelResult { model: Some(Model { model, size, interp: RefCell::new(None) }), report: to_js(&report)? })
    }

    /// Prunes the model (options as `PruneOptions`, camelCase); returns `{ model, report }`.
    /// Gradient methods need `data` (a `.npy` batch); `labels` (class indices or one-hot) are
    /// optional: without them the loss is taken against the model's own predictions.
    #[cfg(feature = "optimizer")]
    pub fn prune(
        &self,
        data: Option<Vec<u8>>,
        labels: Option<Vec<u8>>,
        options: JsValue,
        progress: Option<Function>,
    ) -> Result<ModelResult, JsValue> {
        let opts: prune::PruneOptions = if options.is_undefined() || options.is_null() {
            Default::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| js_error(Error::argument(format!("prune options: {e}"))))?
        };
        let x = data.map(|b| npy::read(&b)).transpose().map_err(js_error)?;
        let values = x.as_ref().map(|x| x.to_f32());
        let labels = match (labels, &x) {
            (Some(b), Some(x)) => {
                let y = npy::read(&b).map_err(js_error)?;
                let n = x.shape.first().copied().unwrap_or(0);
                Some(evaluate::labels_of(&y, n).map_err(js_error)?)
            }
            (Some(_), None) => return Err(js_error(Error::argument("labels were given without data"))),
            _ => None,
        };
        let gd = match (&x, &values) {
            (Some(x), Some(v)) => Some(prune::GradientData { x: v, shape: &x.shape, labels: labels.as_deref() }),
            _ => None,
        };
        let mut report_progress = progress_stage_fn(progress);
        let (model, report) = prune::prune(&self.model, gd, &opts, &mut report_progress).map_err(js_error)?;
        let size = report.after.size_bytes;
        Ok(ModelResult { model: Some(Model { model, size, interp: RefCell::new(None) }), report: to_js(&report)? })
    }

    /// Evaluates the model on a `.npy` batch: accuracy with `labels` (a `.npy` of class indices or
    /// one-hot rows), size and latency.
    #[cfg(feature = "optimizer")]
    pub fn evaluate(
        &self,
        data: &[u8],
        labels: Option<Vec<u8>>,
        progress: Option<Function>,
    ) -> Result<JsValue, JsValue> {
        self.evaluate_impl(data, labels, None, progress)
    }

    /// [`Model::evaluate`] plus top-1 agreement and output SQNR against `reference`.
    #[cfg(feature = "optimizer")]
    #[wasm_bindgen(js_name = evaluateAgainst)]
    pub fn evaluate_against(
        &self,
        data: &[u8],
        labels: Option<Vec<u8>>,
        reference: &Model,
        progress: Option<Function>,
    ) -> Result<JsValue, JsValue> {
        self.evaluate_impl(data, labels, Some(reference), progress)
    }

    #[cfg(feature = "optimizer")]
    fn evaluate_impl(
        &self,
        data: &[u8],
        labels: Option<Vec<u8>>,
        reference: Option<&Model>,
        progress: Option<Function>,
    ) -> Result<JsValue, JsValue> {
        let x = npy::read(data).map_err(js_error)?;
        let y = labels.map(|b| npy::read(&b)).transpose().map_err(js_error)?;
        let mut p = progress_stage_fn(progress);
        let r =
            evaluate::evaluate(&self.model, self.size, &x, y.as_ref(), reference.map(|m| (&m.model, m.size)), &mut p)
                .map_err(js_error)?;
        to_js(&r)
    }

    /// Per-layer time in milliseconds, averaged over `iterations` runs on the first sample of `x_npy`:
    /// `[{ node, op, ms }]` in execution order.
    pub fn profile(&self, x_npy: &[u8], iterations: u32) -> Result<JsValue, JsValue> {
        #[derive(Serialize)]
        struct Layer {
            node: usize,
            op: String,
            ms: f64,
        }
        let x = npy::read(x_npy).map_err(js_error)?;
        let values = x.to_f32();
        let g = self.model.main();
        let layers = self.with_interpreter(|it| {
            let per: usize = it.inputs().first().map_or(0, |d| d.shape.iter().product());
            if values.len() < per {
                return Err(Error::input(format!("profiling needs one sample of {per} values, got {}", values.len())));
            }
            it.set_input_f32(0, &values[..per])?;
            it.invoke()?; // warm-up
            let n = iterations.max(1);
            let mut total: Vec<(usize, f64)> = Vec::new();
            for _ in 0..n {
                for (k, (node, ms)) in it.invoke_profiled()?.into_iter().enumerate() {
                    if total.len() <= k {
                        total.push((node, 0.0));
                    }
                    total[k].1 += ms / n as f64;
                }
            }
            Ok(total
                .into_iter()
                .map(|(node, ms)| Layer { node, op: g.nodes[node].op.name().to_string(), ms })
                .collect::<Vec<_>>())
        })?;
        to_js(&layers)
    }

    /// Inference latency on the first sample of `x_npy`: `{ mean_ms, median_ms, min_ms }` over `runs`
    /// timed runs after a few warm-up runs.
    pub fn benchmark(&self, x_npy: &[u8], runs: u32) -> Result<JsValue, JsValue> {
        self.set_first_sample(x_npy)?;
        let latency = self.with_interpreter(|it| crate::evaluate::benchmark(it, 5, runs as usize))?;
        to_js(&latency)
    }

    /// Sets the first sample of `x_npy` as the input for [`Model::invoke`].
    #[wasm_bindgen(js_name = setFirstSample)]
    pub fn set_first_sample(&self, x_npy: &[u8]) -> Result<(), JsValue> {
        let values = npy::read(x_npy).map_err(js_error)?.to_f32();
        self.with_interpreter(|it| {
            let per: usize = it.inputs().first().map_or(0, |d| d.shape.iter().product());
            if values.len() < per {
                return Err(Error::input(format!("the model needs one sample of {per} values, got {}", values.len())));
            }
            it.set_input_f32(0, &values[..per])
        })
    }

    /// Runs the model `runs` times on the input set by [`Model::set_first_sample`], for benchmarks
    /// that time several engines with one JavaScript loop.
    pub fn invoke(&self, runs: u32) -> Result<(), JsValue> {
        self.with_interpreter(|it| (0..runs).try_for_each(|_| it.invoke()))
    }

    /// Runs every sample of a `.npy` batch `[N, ...input shape]`; returns one `.npy` per output.
    pub fn run(&self, x_npy: &[u8], raw: bool, progress: Option<Function>) -> Result<Array, JsValue> {
        let x = npy::read(x_npy).map_err(js_error)?;
        let outs = self.with_interpreter(|it| run_batch(it, &x, raw, progress_fn(progress)))?;
        let arr = Array::new();
        for o in outs {
            arr.push(&Uint8Array::from(npy::write(&o).as_slice()));
        }
        Ok(arr)
    }
}

/// Shape and type of a `.npy` file, without converting its data.
#[wasm_bindgen(js_name = npyInfo)]
pub fn npy_info(bytes: &[u8]) -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct Info {
        shape: Vec<usize>,
        dtype: &'static str,
    }
    let a = npy::read(bytes).map_err(js_error)?;
    to_js(&Info { shape: a.shape.clone(), dtype: a.data.type_name() })
}

/// Builds a float32 `.npy` file (the web app turns images into one).
#[wasm_bindgen(js_name = npyFromF32)]
pub fn npy_from_f32(shape: Vec<u32>, data: Vec<f32>) -> Result<Vec<u8>, JsValue> {
    let a = npy::NpyArray::new(shape.into_iter().map(|d| d as usize).collect(), npy::NpyData::F32(data))
        .map_err(js_error)?;
    Ok(npy::write(&a))
}

/// Firmware files for TensorFlow Lite Micro from a `.tflite` file: `{ header_name, header,
/// source_name, source }`, the `.h`/`.cc` pair with the model array, `kTensorArenaSize` (the
/// predicted arena plus a margin) and a resolver registration of exactly the model's operators.
/// `name` becomes the C identifier (`person-detect.tflite` → `g_person_detect`).
#[cfg(feature = "optimizer")]
#[wasm_bindgen(js_name = tflmFirmware)]
pub fn tflm_firmware(bytes: &[u8], name: &str) -> Result<JsValue, JsValue> {
    let model = tflite::read(bytes).map_err(js_error)?;
    let facts = tflm::report(&model, bytes.len() as u64);
    to_js(&tflm::firmware_files(bytes, name, &facts).map_err(js_error)?)
}

/// A long operation split into rounds of tasks (see the crate's `parallel` module). The package
/// runs each round on its pool of workers: some tasks here ([`Job::run_local`], on this instance's
/// own copies of the models), others on [`TaskWorker`]s in other workers.
#[cfg(feature = "optimizer")]
#[wasm_bindgen]
pub struct Job {
    kind: JobKind,
    local: crate::parallel::Worker,
    round: Option<crate::parallel::Round>,
    /// The resource that holds the caller's input file as it was given: the caller sends its own
    /// copy to other workers, so [`Job::next_round`] does not copy it out of this memory.
    input: Option<u32>,
}

#[cfg(feature = "optimizer")]
enum JobKind {
    Quantize(quantize::QuantizeJob),
    Prune(prune::PruneJob),
    Run(crate::exec::RunJob),
    Train(crate::train::TrainJob),
    /// Boxed: a QAT job carries its static-quantization start and is the largest kind by far.
    Qat(Box<crate::train::QatJob>),
    Evaluate(evaluate::EvaluateJob),
}

#[cfg(feature = "optimizer")]
impl JobKind {
    fn job(&mut self) -> &mut dyn crate::parallel::Job {
        match self {
            JobKind::Quantize(j) => j,
            JobKind::Prune(j) => j,
            JobKind::Run(j) => j,
            JobKind::Train(j) => j,
            JobKind::Qat(j) => j.as_mut(),
            JobKind::Evaluate(j) => j,
        }
    }
}

#[cfg(feature = "optimizer")]
fn job(kind: JobKind) -> Job {
    let input = match &kind {
        JobKind::Quantize(j) => Some(j.data_resource()),
        JobKind::Evaluate(j) => Some(j.data_resource()),
        _ => None,
    };
    Job { kind, local: crate::parallel::Worker::default(), round: None, input }
}

#[cfg(feature = "optimizer")]
#[wasm_bindgen]
impl Job {
    /// Starts the next round: `{ stage, units: number[], tasks: Uint8Array[], resources }`, or
    /// `null` when the job is done. `resources` (`[{ id, bytes }]`, what other workers need that
    /// they were not sent yet) is filled only with `portable`; the job's input file (the bytes the
    /// job was made from) comes as `{ id, input: true }` without bytes: the caller has them.
    #[wasm_bindgen(js_name = nextRound)]
    pub fn next_round(&mut self, portable: bool) -> Result<JsValue, JsValue> {
        let Some(round) = self.kind.job().next().map_err(js_error)? else { return Ok(JsValue::NULL) };
        for (id, r) in &round.resources {
            self.local.put(*id, r.clone());
        }
        let resources = Array::new();
        if portable {
            for (id, r) in &round.resources {
                let o = js_sys::Object::new();
                let _ = Reflect::set(&o, &"id".into(), &JsValue::from_f64(*id as f64));
                if self.input == Some(*id) {
                    let _ = Reflect::set(&o, &"input".into(), &JsValue::TRUE);
                } else {
                    let bytes = r.to_bytes().map_err(js_error)?;
                    let _ = Reflect::set(&o, &"bytes".into(), &Uint8Array::from(&bytes[..]));
                }
                resources.push(&o);
            }
        }
        let out = js_sys::Object::new();
        let tasks: Array = round.tasks.iter().map(|t| JsValue::from(Uint8Array::from(t.as_slice()))).collect();
        let units: Array = (0..round.tasks.len()).map(|i| JsValue::from_f64(round.unit(i) as f64)).collect();
        let kinds: Array = (0..round.tasks.len()).map(|i| JsValue::from_f64(f64::from(round.kind(i)))).collect();
        let _ = Reflect::set(&out, &"stage".into(), &JsValue::from_str(round.stage));
        let _ = Reflect::set(&out, &"tasks".into(), &tasks);
        let _ = Reflect::set(&out, &"units".into(), &units);
        let _ = Reflect::set(&out, &"kinds".into(), &kinds);
        let _ = Reflect::set(&out, &"resources".into(), &resources);
        self.round = Some(round);
        Ok(out.into())
    }

    /// The resource id of the job's input file (see [`Job::next_round`]), if it has one: the
    /// caller may send its bytes to other workers before the first round.
    #[wasm_bindgen(getter, js_name = inputId)]
    pub fn input_id(&self) -> Option<u32> {
        self.input
    }

    /// Runs task `i` of the current round in this instance; returns its result.
    #[wasm_bindgen(js_name = runLocal)]
    pub fn run_local(&mut self, i: usize) -> Result<Vec<u8>, JsValue> {
        let task = self
            .round
            .as_ref()
            .and_then(|r| r.tasks.get(i))
            .ok_or_else(|| js_error(Error::argument("no such task")))?;
        self.local.run(task).map_err(js_error)
    }

    /// The results of the current round, in task order.
    pub fn accept(&mut self, results: Array) -> Result<(), JsValue> {
        let results: Vec<Vec<u8>> = results.iter().map(|v| Uint8Array::new(&v).to_vec()).collect();
        self.round = None;
        self.kind.job().accept(results).map_err(js_error)
    }

    /// Training figures so far (`TrainMetrics`), for training jobs; `undefined` otherwise.
    pub fn metrics(&self) -> Result<JsValue, JsValue> {
        match &self.kind {
            JobKind::Train(j) => to_js(&j.metrics()),
            JobKind::Qat(j) => j.metrics().map_or(Ok(JsValue::UNDEFINED), |m| to_js(&m)),
            _ => Ok(JsValue::UNDEFINED),
        }
    }

    /// Ends a training job after the round in flight, keeping the best weights so far.
    pub fn stop(&mut self) {
        match &mut self.kind {
            JobKind::Train(j) => j.stop("stopped by the user"),
            JobKind::Qat(j) => j.stop("stopped by the user"),
            _ => {}
        }
    }

    /// The model and report of a quantization, pruning or training job (`{ train, quantize? }`
    /// for training).
    #[wasm_bindgen(js_name = finishModel)]
    pub fn finish_model(self) -> Result<ModelResult, JsValue> {
        // A quantization wrote its model already (its report has the size): not written again.
        let mut size = None;
        let (model, report) = match self.kind {
            JobKind::Train(j) => {
                #[derive(Serialize)]
                struct R {
                    train: crate::train::TrainReport,
                    before: prune::ModelMetrics,
                    after: prune::ModelMetrics,
                }
                let before = prune::model_metrics(j.model()).map_err(js_error)?;
                let (m, r, _) = j.finish().map_err(js_error)?;
                let after = prune::model_metrics(&m).map_err(js_error)?;
                (m, to_js(&R { train: r, before, after })?)
            }
            JobKind::Qat(j) => {
                #[derive(Serialize)]
                struct R {
                    train: crate::train::TrainReport,
                    quantize: quantize::QuantReport,
                    #[serde(rename = "staticQuantize")]
                    static_quantize: Option<quantize::QuantReport>,
                }
                let (m, q, t, s) = j.finish().map_err(js_error)?;
                (m, to_js(&R { train: t, quantize: q, static_quantize: s })?)
            }
            JobKind::Quantize(j) => {
                let (m, r) = j.finish().map_err(js_error)?;
                size = Some(r.size_after);
                (m, to_js(&r)?)
            }
            JobKind::Prune(j) => {
                let (m, r) = j.finish().map_err(js_error)?;
                (m, to_js(&r)?)
            }
            JobKind::Run(_) => return Err(js_error(Error::argument("a run job has arrays, not a model"))),
            JobKind::Evaluate(_) => return Err(js_error(Error::argument("an evaluation has a report, not a model"))),
        };
        let size = match size {
            Some(n) => n,
            None => tflite::write(&model).map_err(js_error)?.len(),
        };
        Ok(ModelResult { model: Some(Model { model, size, interp: RefCell::new(None) }), report })
    }

    /// The report of an evaluation job (`EvalReport`).
    #[wasm_bindgen(js_name = finishReport)]
    pub fn finish_report(self) -> Result<JsValue, JsValue> {
        let JobKind::Evaluate(j) = self.kind else { return Err(js_error(Error::argument("not an evaluation job"))) };
        to_js(&j.finish().map_err(js_error)?)
    }

    /// The outputs of a run job, one `.npy` per model output.
    #[wasm_bindgen(js_name = finishArrays)]
    pub fn finish_arrays(self) -> Result<Array, JsValue> {
        let JobKind::Run(j) = self.kind else { return Err(js_error(Error::argument("not a run job"))) };
        let arr = Array::new();
        for o in j.finish().map_err(js_error)? {
            arr.push(&Uint8Array::from(npy::write(&o).as_slice()));
        }
        Ok(arr)
    }
}

/// A worker's side of jobs started in another worker: the shared inputs it was sent, and tasks.
#[cfg(feature = "optimizer")]
#[wasm_bindgen]
pub struct TaskWorker {
    w: crate::parallel::Worker,
}

#[cfg(feature = "optimizer")]
#[wasm_bindgen]
impl TaskWorker {
    #[wasm_bindgen(constructor)]
    pub fn new() -> TaskWorker {
        TaskWorker { w: crate::parallel::Worker::default() }
    }

    /// Stores a shared input.
    pub fn put(&mut self, id: u32, bytes: Vec<u8>) {
        self.w.put(id, crate::parallel::Resource::Bytes(bytes.into()));
    }

    /// Runs an encoded task; returns its encoded result.
    pub fn run(&mut self, task: &[u8]) -> Result<Vec<u8>, JsValue> {
        self.w.run(task).map_err(js_error)
    }
}

#[cfg(feature = "optimizer")]
impl Default for TaskWorker {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "optimizer")]
#[wasm_bindgen]
impl Model {
    /// Static quantization as a job for the worker pool (see [`Model::quantize`] for the options).
    #[wasm_bindgen(js_name = quantizeJob)]
    pub fn quantize_job(&self, calibration: Vec<u8>, options: JsValue) -> Result<Job, JsValue> {
        let opts = options_of::<quantize::QuantizeOptions>(options, "quantize options")?;
        let j = quantize::quantize_job_npy(&self.model, calibration, &opts).map_err(js_error)?;
        Ok(job(JobKind::Quantize(j)))
    }

    /// Pruning as a job for the worker pool (see [`Model::prune`]).
    #[wasm_bindgen(js_name = pruneJob)]
    pub fn prune_job(&self, data: Option<Vec<u8>>, labels: Option<Vec<u8>>, options: JsValue) -> Result<Job, JsValue> {
        let opts = options_of::<prune::PruneOptions>(options, "prune options")?;
        let x = data.map(|b| npy::read(&b)).transpose().map_err(js_error)?;
        let values = x.as_ref().map(|x| x.to_f32());
        let labels = match (labels, &x) {
            (Some(b), Some(x)) => {
                let y = npy::read(&b).map_err(js_error)?;
                Some(evaluate::labels_of(&y, x.shape.first().copied().unwrap_or(0)).map_err(js_error)?)
            }
            (Some(_), None) => return Err(js_error(Error::argument("labels were given without data"))),
            _ => None,
        };
        let gd = match (&x, &values) {
            (Some(x), Some(v)) => Some(prune::GradientData { x: v, shape: &x.shape, labels: labels.as_deref() }),
            _ => None,
        };
        Ok(job(JobKind::Prune(prune::PruneJob::new(&self.model, gd, &opts).map_err(js_error)?)))
    }

    /// Training as a job for the worker pool: fine-tuning (keeping pruned weights at zero), with
    /// gradual pruning when `prune` is given (`PruneDuring`). `x` is a `.npy` batch, `y` its labels
    /// or targets; options as `TrainOptions`.
    #[wasm_bindgen(js_name = trainJob)]
    pub fn train_job(&self, x: &[u8], y: &[u8], options: JsValue, prune: JsValue) -> Result<Job, JsValue> {
        let opts = options_of::<crate::train::TrainOptions>(options, "training options")?;
        let prune: Option<crate::train::PruneDuring> = if prune.is_undefined() || prune.is_null() {
            None
        } else {
            Some(
                serde_wasm_bindgen::from_value(prune)
                    .map_err(|e| js_error(Error::argument(format!("pruning: {e}"))))?,
            )
        };
        let (x, y) = (npy::read(x).map_err(js_error)?, npy::read(y).map_err(js_error)?);
        let mut j =
            crate::train::TrainJob::new(&self.model, &x, &y, &opts, prune.as_ref(), Vec::new()).map_err(js_error)?;
        j.keep_zeros();
        Ok(job(JobKind::Train(j)))
    }

    /// Quantization-aware training as a job: static quantization starts the ranges, training with
    /// fake quantization, then the int8 export (quantize options as `QuantizeOptions`). Static
    /// quantization calibrates on `calibration` (a `.npy` batch) when given, otherwise on the first
    /// 200 training samples.
    #[wasm_bindgen(js_name = qatJob)]
    pub fn qat_job(
        &self,
        x: &[u8],
        y: &[u8],
        options: JsValue,
        quantize_options: JsValue,
        calibration: Option<Vec<u8>>,
    ) -> Result<Job, JsValue> {
        use crate::train::qat::Calibration;
        let opts = options_of::<crate::train::TrainOptions>(options, "training options")?;
        let qopts = options_of::<quantize::QuantizeOptions>(quantize_options, "quantize options")?;
        let (x, y) = (npy::read(x).map_err(js_error)?, npy::read(y).map_err(js_error)?);
        let calibration = calibration.map_or(Calibration::TrainingSamples, Calibration::Npy);
        let j = crate::train::QatJob::new(&self.model, &x, &y, calibration, &opts, &qopts).map_err(js_error)?;
        Ok(job(JobKind::Qat(Box::new(j))))
    }

    /// A batch run as a job for the worker pool (see [`Model::run`]).
    #[wasm_bindgen(js_name = runJob)]
    pub fn run_job(&self, x_npy: &[u8], raw: bool, streaming: bool) -> Result<Job, JsValue> {
        let x = npy::read(x_npy).map_err(js_error)?;
        let j =
            crate::exec::RunJob::new(std::sync::Arc::new(self.model.clone()), &x, raw, streaming).map_err(js_error)?;
        Ok(job(JobKind::Run(j)))
    }

    /// Evaluation as a job for the worker pool (see [`Model::evaluate`]); `finishReport` gives the
    /// report.
    #[wasm_bindgen(js_name = evaluateJob)]
    pub fn evaluate_job(&self, data: Vec<u8>, labels: Option<Vec<u8>>) -> Result<Job, JsValue> {
        self.evaluate_job_impl(data, labels, None)
    }

    /// [`Model::evaluate_job`] against `reference` (see [`Model::evaluate_against`]).
    #[wasm_bindgen(js_name = evaluateJobAgainst)]
    pub fn evaluate_job_against(
        &self,
        data: Vec<u8>,
        labels: Option<Vec<u8>>,
        reference: &Model,
    ) -> Result<Job, JsValue> {
        self.evaluate_job_impl(data, labels, Some(reference))
    }

    fn evaluate_job_impl(
        &self,
        data: Vec<u8>,
        labels: Option<Vec<u8>>,
        reference: Option<&Model>,
    ) -> Result<Job, JsValue> {
        let y = labels.map(|b| npy::read(&b)).transpose().map_err(js_error)?;
        let r = reference.map(|m| (&m.model, m.size));
        let j = evaluate::EvaluateJob::from_npy(&self.model, self.size, data, y.as_ref(), r).map_err(js_error)?;
        Ok(job(JobKind::Evaluate(j)))
    }
}

/// Options from a JS object (camelCase), or the defaults for `undefined`/`null`.
#[cfg(feature = "optimizer")]
fn options_of<T: Default + serde::de::DeserializeOwned>(options: JsValue, what: &str) -> Result<T, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(options).map_err(|e| js_error(Error::argument(format!("{what}: {e}"))))
}
