//! The JavaScript surface (wasm-bindgen). The only module that knows about JS: errors become JS
//! `Error`s with `code`, `node` and `tensor` properties; structured results cross as plain objects
//! through serde-wasm-bindgen; byte arrays cross as `Uint8Array`s.

use std::cell::RefCell;

use js_sys::{Array, Function, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::exec::{run_batch, Interpreter};
use crate::{evaluate, ir, npy, prune, quantize, summary, tflite, tflm};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
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

/// Which int8 matrix-product kernel runs here: "relaxed-dot-i8" where this build has relaxed SIMD
/// and the engine's relaxed dot product is exact (VNNI on x86), otherwise "dot-i16".
#[wasm_bindgen(js_name = int8Kernel)]
pub fn int8_kernel() -> String {
    if crate::kernels::gemm_dot4::available() { "relaxed-dot-i8" } else { "dot-i16" }.to_string()
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
#[wasm_bindgen]
pub struct ModelResult {
    model: Option<Model>,
    report: JsValue,
}

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
        let model = tflite::read(bytes).map_err(js_error)?;
        Ok(Model { model, size: bytes.len(), interp: RefCell::new(None) })
    }

    /// The summary `inspect` prints (operators, tensors, parameters, MACs, quantization, I/O).
    pub fn summary(&self) -> Result<JsValue, JsValue> {
        to_js(&summary::summarize(&self.model, self.size))
    }

    /// Serializes the model back to `.tflite` bytes.
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
    pub fn evaluate(
        &self,
        data: &[u8],
        labels: Option<Vec<u8>>,
        progress: Option<Function>,
    ) -> Result<JsValue, JsValue> {
        self.evaluate_impl(data, labels, None, progress)
    }

    /// [`Model::evaluate`] plus top-1 agreement and output SQNR against `reference`.
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
        let x = npy::read(x_npy).map_err(js_error)?;
        let values = x.to_f32();
        let latency = self.with_interpreter(|it| {
            let per: usize = it.inputs().first().map_or(0, |d| d.shape.iter().product());
            if values.len() < per {
                return Err(Error::input(format!(
                    "benchmarking needs one sample of {per} values, got {}",
                    values.len()
                )));
            }
            it.set_input_f32(0, &values[..per])?;
            crate::evaluate::benchmark(it, 5, runs as usize)
        })?;
        to_js(&latency)
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
#[wasm_bindgen(js_name = tflmFirmware)]
pub fn tflm_firmware(bytes: &[u8], name: &str) -> Result<JsValue, JsValue> {
    let model = tflite::read(bytes).map_err(js_error)?;
    let facts = tflm::report(&model, bytes.len() as u64);
    to_js(&tflm::firmware_files(bytes, name, &facts).map_err(js_error)?)
}
