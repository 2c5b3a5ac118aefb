//! Mutated float models through quantization (static min/max on ten samples, and dynamic) and
//! pruning (unstructured, structured and gradient-based); every model produced must write and read
//! back. Models over the small-work bound are skipped.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::exec::Interpreter;
use tinyml_optimizer::ir::Model;
use tinyml_optimizer::npy::NpyArray;
use tinyml_optimizer::prune::{self, GradientData, Method, PruneOptions};
use tinyml_optimizer::quantize::{self, CalibrationMethod, Mode, QuantizeOptions};
use tinyml_optimizer::tflite;

#[path = "common.rs"]
mod common;

fn round_trips(m: &Model) {
    if let Ok(bytes) = tflite::write(m) {
        if let Err(e) = tflite::read(&bytes) {
            panic!("an optimized model we wrote must read back: {e}");
        }
    }
}

/// Whether every float tensor of the model stays within half of f32's range on each sample of `x`.
/// Quantizing a model whose activations overflow (weights of 1e36, say) gives tensors an infinite
/// scale (a range of 3e38 - (-3e38) overflows), which the reader then refuses: a finding in the
/// quantizer (tests/hostile/findings/quantize_nonfinite_scale_*.tflite), reported; such models
/// are skipped here until the quantizer refuses them itself.
fn representable_on(model: &Model, x: &NpyArray) -> bool {
    let Ok(mut it) = Interpreter::new(model) else { return false };
    let (Some(&n), values) = (x.shape.first(), x.to_f32()) else { return false };
    let per = values.len() / n.max(1);
    let tensors = model.graphs.first().map_or(0, |g| g.tensors.len());
    (0..n).all(|i| {
        it.set_input_f32(0, &values[i * per..(i + 1) * per]).is_ok()
            && it.invoke().is_ok()
            && (0..tensors).all(|t| it.tensor_f32(t).is_none_or(|v| v.iter().all(|f| f.abs() < f32::MAX / 2.0)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(model) = tflite::read_with(data, &common::budget()) else { return };
    if !common::small(&model) {
        return;
    }
    let Some(calib) = common::batch(&model, quantize::MIN_CALIBRATION_SAMPLES) else { return };
    let fast = QuantizeOptions {
        calibration: CalibrationMethod::MinMax,
        bias_correction: false,
        report_samples: 2,
        select_samples: 2,
        ..QuantizeOptions::default()
    };
    if representable_on(&model, &calib) {
        if let Ok((q, _)) = quantize::quantize(&model, Some(&calib), &fast, &mut common::quiet) {
            round_trips(&q);
        }
        let dynamic = QuantizeOptions { mode: Mode::Dynamic, ..QuantizeOptions::default() };
        if let Ok((q, _)) = quantize::quantize(&model, None, &dynamic, &mut common::quiet) {
            round_trips(&q);
        }
    }
    let x = calib.to_f32();
    for (method, structured) in [(Method::GlobalMagnitude, false), (Method::LayerMagnitude, true), (Method::GlobalGradient, false)]
    {
        let opts = PruneOptions { method, structured, sparsity: 0.5, ..PruneOptions::default() };
        let grad = GradientData { x: &x, shape: &calib.shape, labels: None };
        if let Ok((p, _)) = prune::prune(&model, Some(grad), &opts, &mut common::quiet) {
            round_trips(&p);
        }
    }
});
