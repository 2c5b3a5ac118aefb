//! Post-training quantization to TFLite's int8 specification.
//!
//! * **Static** ([`Mode::Static`]): calibrate activation ranges on representative data with the
//!   float engine, then rewrite the graph to full int8 — weights int8 symmetric (per output channel
//!   by default), activations int8 asymmetric per tensor, biases int32 at `input_scale ·
//!   weight_scale`, with the operator constraints TFLite enforces. Optional bias correction removes
//!   the mean output shift that weight rounding causes, measured on the calibration data.
//! * **Dynamic** ([`Mode::Dynamic`]): int8 weights, float activations (LiteRT's hybrid kernels
//!   quantize activations on the fly); needs no data.
//!
//! Both return the quantized model and a [`QuantReport`] with, per layer, the chosen parameters and
//! the SQNR of the layer's output against the float model.

pub mod calibrate;
mod dynamic;
mod job;
mod observe;
pub mod report;
mod rewrite;
pub mod tasks;

use serde::{Deserialize, Serialize};

pub use calibrate::{int8_params, CalibrationMethod, Observer};
pub use job::QuantizeJob;

/// Per tensor of a float model, the real range its int8 twin represents, if it has one.
pub type TensorRanges = Vec<Option<(f32, f32)>>;
pub use report::{sqnr_db, LayerReport, QuantReport};

use crate::error::{Error, Location, Result};
use crate::exec::samples_in;
use crate::ir::{DType, Model, Op};
use crate::npy::NpyArray;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "QuantizeMode"))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Static,
    Dynamic,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    #[default]
    PerChannel,
    PerTensor,
}

/// The element type of the quantized model's inputs and outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum IoType {
    #[default]
    Int8,
    Float32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct QuantizeOptions {
    pub mode: Mode,
    pub calibration: CalibrationMethod,
    pub granularity: Granularity,
    pub io: IoType,
    pub bias_correction: bool,
    /// Calibration samples also used to measure per-layer SQNR for the report (0 skips it).
    pub report_samples: usize,
    /// Calibration samples `auto` scores each candidate on.
    pub select_samples: usize,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            mode: Mode::Static,
            calibration: CalibrationMethod::Auto,
            granularity: Granularity::PerChannel,
            io: IoType::Int8,
            bias_correction: true,
            report_samples: 32,
            select_samples: 100,
        }
    }
}

/// Fewest calibration samples accepted for static quantization.
pub const MIN_CALIBRATION_SAMPLES: usize = 10;

/// Progress of long work: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Quantizes `model`. Static mode needs `calibration`: `[N, ...input shape]`, N >= 10.
pub fn quantize(
    model: &Model,
    calibration: Option<&NpyArray>,
    options: &QuantizeOptions,
    progress: Progress,
) -> Result<(Model, QuantReport)> {
    check_float_model(model, options.mode)?;
    match options.mode {
        Mode::Dynamic => dynamic::quantize_dynamic(model, options),
        Mode::Static => {
            let data = calibration.ok_or_else(|| {
                Error::argument(
                    "static quantization needs calibration data (representative inputs, [N, ...input shape])",
                )
            })?;
            let mut job = quantize_job(model, data, options)?;
            crate::parallel::run(&mut job, 1, progress)?;
            job.finish()
        }
    }
}

/// Static quantization as a job, for an executor with several workers (see [`crate::parallel`]):
/// checks the model and the calibration data first.
pub fn quantize_job(model: &Model, data: &NpyArray, options: &QuantizeOptions) -> Result<QuantizeJob> {
    quantize_job_npy(model, crate::npy::write(data), options)
}

/// [`quantize_job`] on the `.npy` file `bytes`, which the workers get as they are (not written
/// again): only its header is parsed here; the calibration tasks check the values (the job fails
/// with the first one that is not finite, in sample order).
pub fn quantize_job_npy(model: &Model, bytes: Vec<u8>, options: &QuantizeOptions) -> Result<QuantizeJob> {
    let header = crate::npy::checked_header(&bytes)?;
    check_float_model(model, Mode::Static)?;
    let samples = check_calibration(model, &header)?;
    QuantizeJob::new(model, bytes, samples, options)
}

/// The int8 model of `model` with every tensor's range given (quantization-aware training's
/// export): the rewrite of static quantization, with those ranges exactly and no bias correction.
pub fn quantize_with_ranges(
    model: &Model,
    ranges: &[Option<(f32, f32)>],
    options: &QuantizeOptions,
) -> Result<(Model, QuantReport)> {
    check_float_model(model, Mode::Static)?;
    let size_before = crate::tflite::write(model)?.len();
    let (fm, folded) = crate::passes::fold_constants(model)?;
    let calib = observe::Calibration::from_ranges(ranges);
    let opts = QuantizeOptions { calibration: CalibrationMethod::MinMax, bias_correction: false, ..options.clone() };
    let built = rewrite::build(&fm, &calib, &opts, &rewrite::Shared::default())?;
    let report = QuantReport {
        mode: "qat",
        calibration: Some("quantization-aware training".into()),
        granularity: if opts.granularity == Granularity::PerChannel { "per-channel" } else { "per-tensor" },
        io: if opts.io == IoType::Int8 { "int8" } else { "float32" },
        bias_correction: false,
        calibration_samples: 0,
        report_samples: 0,
        folded_nodes: folded,
        layers: built.layers,
        output_sqnr_db: Vec::new(),
        kept_float: built.kept,
        candidates: Vec::new(),
        notes: built.notes,
        size_before,
        size_after: crate::tflite::write(&built.model)?.len(),
        calibration_ms: 0.0,
        rewrite_ms: 0.0,
        report_ms: 0.0,
    };
    Ok((built.model, report))
}

/// Refuses models that are already quantized, with the reason.
fn check_float_model(model: &Model, mode: Mode) -> Result<()> {
    let g = model.main();
    if g.inputs.len() != 1 {
        return Err(Error::unsupported(
            format!("quantizing models with {} inputs (one is supported)", g.inputs.len()),
            Location::default(),
        ));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let out_int = n.outputs.iter().any(|&o| matches!(g.tensors[o].dtype, DType::I8 | DType::U8 | DType::I16));
        if out_int && !matches!(n.op, Op::Shape { .. }) && g.tensors[n.outputs[0]].quant.is_some() {
            return Err(Error::argument(format!(
                "the model is already quantized (operator {i} {} produces {}); quantize its float version instead",
                n.op.name(),
                g.tensors[n.outputs[0]].dtype
            )));
        }
        if mode == Mode::Dynamic {
            if let Some(w) = crate::ops::weight_layout(&n.op).and_then(|l| n.input(l.weights)) {
                if g.tensors[w].dtype == DType::I8 {
                    return Err(Error::argument(
                        "the model already has int8 weights (it is dynamic-range quantized); quantize its float version instead",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Validates calibration data against the model input; returns the sample count.
fn check_calibration(model: &Model, h: &crate::npy::Header) -> Result<usize> {
    let g = model.main();
    let input = &g.tensors[g.inputs[0]];
    let n = samples_in(&h.shape, &input.shape, "the calibration data")?;
    if n < MIN_CALIBRATION_SAMPLES {
        return Err(Error::input(format!(
            "the calibration data has {n} samples; at least {MIN_CALIBRATION_SAMPLES} are needed for meaningful ranges \
             (100 to 500 representative samples are recommended)"
        )));
    }
    // Values that are not finite are reported by the calibration tasks, which read every sample:
    // scanning them here would be serial work before any task starts.
    Ok(n)
}

/// Symmetric int8 quantization of weights: per slice along `axis`, or per tensor when `None`.
/// Returns the int8 values and the scales (`max |w| / 127`; 1/127 for an all-zero slice).
///
/// The weights are walked in blocks of one channel (the `inner` values after `axis`), the channel
/// counted along: no division per value to find its channel, and the rounding without
/// `f32::round`'s library call in wasm.
pub fn quantize_weights(w: &[f32], shape: &[usize], axis: Option<usize>) -> (Vec<i8>, Vec<f32>) {
    let (channels, inner) = match axis {
        Some(a) => (shape[a].max(1), shape[a + 1..].iter().product::<usize>().max(1)),
        None => (1, w.len().max(1)),
    };
    let blocks = || w.chunks(inner).zip((0..channels).cycle());
    let mut max = vec![0f32; channels];
    for (blk, c) in blocks() {
        max[c] = blk.iter().fold(max[c], |m, &v| m.max(v.abs()));
    }
    let scales: Vec<f32> = max.iter().map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 / 127.0 }).collect();
    let mut q = vec![0i8; w.len()];
    for ((blk, c), out) in blocks().zip(q.chunks_mut(inner)) {
        out.iter_mut().zip(blk).for_each(|(o, &v)| *o = weight_code(v, scales[c]));
    }
    (q, scales)
}

/// `round(v / s)` (half away from zero) clamped to ±127; NaN gives 0.
fn weight_code(v: f32, s: f32) -> i8 {
    crate::kernels::quant::round_half_away(v / s).clamp(-127.0, 127.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The plain twin of [`quantize_weights`]: each value's channel by division, `f32::round`.
    fn quantize_weights_plain(w: &[f32], shape: &[usize], axis: Option<usize>) -> (Vec<i8>, Vec<f32>) {
        let (channels, inner) = axis.map_or((1, 1), |a| (shape[a], shape[a + 1..].iter().product::<usize>()));
        let channel = |i: usize| if channels > 1 { (i / inner) % channels } else { 0 };
        let mut max = vec![0f32; channels.max(1)];
        for (i, &v) in w.iter().enumerate() {
            max[channel(i)] = max[channel(i)].max(v.abs());
        }
        let scales: Vec<f32> = max.iter().map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 / 127.0 }).collect();
        let q = w.iter().enumerate().map(|(i, &v)| (v / scales[channel(i)]).round().clamp(-127.0, 127.0) as i8);
        (q.collect(), scales)
    }

    #[test]
    fn weights_quantize_as_the_plain_twin_does_on_every_axis() {
        let mut rng = crate::rng::Rng::new(3);
        let shapes: [&[usize]; 6] = [&[8, 3, 3, 5], &[1, 3, 3, 16], &[10, 7], &[1], &[4, 1, 1, 1], &[3, 0, 2]];
        for shape in shapes {
            let n: usize = shape.iter().product();
            let mut w: Vec<f32> = (0..n).map(|i| (rng.uniform() - 0.5) * 10f32.powi(i as i32 % 5 - 2)).collect();
            if n > 4 {
                w[1] = 0.5 * w[0]; // ties once scaled, sometimes
                w[n - 1] = f32::NAN;
                w[2..4].fill(0.0);
            }
            let axes = (0..shape.len()).map(Some).chain([None]);
            for axis in axes {
                let (a, b) = (quantize_weights(&w, shape, axis), quantize_weights_plain(&w, shape, axis));
                assert_eq!(a.0, b.0, "{shape:?} axis {axis:?}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a.1), bits(&b.1), "{shape:?} axis {axis:?}");
            }
        }
        let zeros = quantize_weights(&[0.0; 6], &[2, 3], Some(0));
        assert_eq!(zeros, (vec![0; 6], vec![1.0 / 127.0; 2]), "an all-zero slice");
    }
}
