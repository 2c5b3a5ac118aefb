//! Mutated float models through quantization (static min/max on ten samples, and dynamic) and
//! pruning (unstructured, structured and gradient-based); every model produced must write and read
//! back. Models over the small-work bound are skipped.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::ir::Model;
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
    if let Ok((q, _)) = quantize::quantize(&model, Some(&calib), &fast, &mut common::quiet) {
        round_trips(&q);
    }
    let dynamic = QuantizeOptions { mode: Mode::Dynamic, ..QuantizeOptions::default() };
    if let Ok((q, _)) = quantize::quantize(&model, None, &dynamic, &mut common::quiet) {
        round_trips(&q);
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
