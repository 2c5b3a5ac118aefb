//! Quantization on the fixture models: static int8 (every calibration method, per-channel and
//! per-tensor, int8 and float I/O) and dynamic range, plus every refusal a user can run into.
//! Compiled-in data, so this runs natively and in the browser.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::exec::{run_batch, Interpreter};
use tinyml_optimizer::ir::{DType, Model};
use tinyml_optimizer::npy::{self, NpyArray, NpyData};
use tinyml_optimizer::quantize::{quantize, sqnr_db, CalibrationMethod, Granularity, IoType, Mode, QuantizeOptions};
use tinyml_optimizer::{tflite, ErrorCode};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/", $path)).as_slice()
    };
}

fn model(bytes: &[u8]) -> Model {
    tflite::read(bytes).unwrap()
}

fn calib() -> NpyArray {
    npy::read(fixture!("data/patterns_calib.npy")).unwrap()
}

/// Accuracy and output of `m` on the first `n` test samples.
fn evaluate(m: &Model, n: usize) -> (f64, Vec<f32>) {
    let x = npy::read(fixture!("data/patterns_test_x.npy")).unwrap();
    let y = npy::read(fixture!("data/patterns_test_y.npy")).unwrap().to_i64().unwrap();
    let per: usize = x.shape[1..].iter().product();
    let xs = NpyArray::new([&[n], &x.shape[1..]].concat(), NpyData::F32(x.to_f32()[..n * per].to_vec())).unwrap();
    let mut it = Interpreter::new(m).unwrap();
    let out = run_batch(&mut it, &xs, false, |_, _| {}).unwrap()[0].to_f32();
    let k = out.len() / n;
    let correct = (0..n)
        .filter(|&i| {
            let row = &out[i * k..(i + 1) * k];
            let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            best as i64 == y[i]
        })
        .count();
    (correct as f64 / n as f64, out)
}

fn static_opts(calibration: CalibrationMethod) -> QuantizeOptions {
    QuantizeOptions { calibration, ..Default::default() }
}

#[test]
fn static_int8_tracks_the_float_model_and_round_trips() {
    const N: usize = 1000;
    for (name, float, tf) in [
        ("cnn", fixture!("cnn/model_float.tflite"), fixture!("cnn/model_int8_tf.tflite")),
        ("dwcnn", fixture!("dwcnn/model_float.tflite"), fixture!("dwcnn/model_int8_tf.tflite")),
        ("resnet", fixture!("resnet/model_float.tflite"), fixture!("resnet/model_int8_tf.tflite")),
        ("mlp", fixture!("mlp/model_float.tflite"), fixture!("mlp/model_int8_tf.tflite")),
    ] {
        let fm = model(float);
        let (q, report) = quantize(&fm, Some(&calib()), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
        let g = q.main();
        assert_eq!(g.tensors[g.inputs[0]].dtype, DType::I8, "{name}: int8 input");
        assert!(report.kept_float.is_empty(), "{name}: {:?}", report.kept_float);
        assert!(g
            .nodes
            .iter()
            .filter(|n| n.op.has_weights())
            .all(|n| g.tensors[n.input(1).unwrap()].dtype == DType::I8));
        let (fa, fo) = evaluate(&fm, N);
        let (qa, qo) = evaluate(&q, N);
        let (_, to) = evaluate(&model(tf), N);
        let (ours, theirs) = (sqnr_db(&fo, &qo).unwrap(), sqnr_db(&fo, &to).unwrap());
        assert!(qa >= fa - 0.02, "{name}: int8 accuracy {qa} vs float {fa}");
        // Within noise of the TF converter's model built from the same Keras model and data.
        assert!(ours >= theirs - 1.0, "{name}: output SQNR {ours:.2} dB vs the converter's {theirs:.2} dB");
        let bytes = tflite::write(&q).unwrap();
        let back = tflite::read(&bytes).unwrap();
        assert_eq!(back.main().tensors, q.main().tensors, "{name}: tensors round-trip");
        assert!(back.main().nodes.iter().zip(&q.main().nodes).all(|(a, b)| a.op == b.op && a.inputs == b.inputs));
        assert_eq!(tflite::write(&back).unwrap(), bytes, "{name}: writing is a fixed point");
        assert!(report.layers.iter().all(|l| l.sqnr_db.is_some()), "{name}: every layer has an SQNR");
        // Weights shrink 4x; tiny models keep a fixed overhead (graph, names), so the bound is loose.
        let bound = if name == "mlp" { 0.35 } else { 0.9 };
        assert!(
            (report.size_after as f64) < bound * report.size_before as f64,
            "{name}: {} -> {} bytes",
            report.size_before,
            report.size_after
        );
    }
}

#[test]
fn every_calibration_method_and_variant_gives_a_working_model() {
    let fm = model(fixture!("dwcnn/model_float.tflite"));
    let (fa, _) = evaluate(&fm, 200);
    for method in [
        CalibrationMethod::MinMax,
        CalibrationMethod::Percentile { percentile: 99.9 },
        CalibrationMethod::Mse,
        CalibrationMethod::Entropy,
    ] {
        let (q, r) = quantize(&fm, Some(&calib()), &static_opts(method), &mut |_, _, _| {}).unwrap();
        let (qa, _) = evaluate(&q, 200);
        // Entropy clips hard on these small post-ReLU distributions; it must still classify.
        let slack = if method == CalibrationMethod::Entropy { 0.15 } else { 0.03 };
        assert!(qa >= fa - slack, "{method:?}: {qa} vs {fa}");
        assert_eq!(r.calibration.as_deref(), Some(method.name().as_str()));
    }
    let per_tensor = QuantizeOptions { granularity: Granularity::PerTensor, ..Default::default() };
    let (q, _) = quantize(&fm, Some(&calib()), &per_tensor, &mut |_, _, _| {}).unwrap();
    let g = q.main();
    let w = g.nodes.iter().find(|n| n.op.has_weights()).unwrap().input(1).unwrap();
    assert_eq!(g.tensors[w].quant.as_ref().unwrap().scale.len(), 1);
    assert!(evaluate(&q, 200).0 >= fa - 0.05);
    let float_io = QuantizeOptions { io: IoType::Float32, ..Default::default() };
    let (q, _) = quantize(&fm, Some(&calib()), &float_io, &mut |_, _, _| {}).unwrap();
    let g = q.main();
    assert_eq!((g.tensors[g.inputs[0]].dtype, g.tensors[g.outputs[0]].dtype), (DType::F32, DType::F32));
    assert_eq!(g.nodes.first().unwrap().op.name(), "QUANTIZE");
    assert_eq!(g.nodes.last().unwrap().op.name(), "DEQUANTIZE");
    assert!(evaluate(&q, 200).0 >= fa - 0.03);
}

#[test]
fn bias_correction_is_reported_and_progress_is_given() {
    let fm = model(fixture!("cnn/model_float.tflite"));
    let mut stages = Vec::new();
    let opts = QuantizeOptions { calibration: CalibrationMethod::MinMax, bias_correction: true, ..Default::default() };
    let (_, r) = quantize(&fm, Some(&calib()), &opts, &mut |s, d, t| stages.push((s.to_string(), d, t))).unwrap();
    assert!(r.layers.iter().filter(|l| l.weights.is_some()).all(|l| l.bias_correction.is_some()));
    assert!(stages.contains(&("calibrate".to_string(), 200, 200)));
    let no_bc = QuantizeOptions { bias_correction: false, ..opts };
    let (_, r) = quantize(&fm, Some(&calib()), &no_bc, &mut |_, _, _| {}).unwrap();
    assert!(r.layers.iter().all(|l| l.bias_correction.is_none()));
}

#[test]
fn dynamic_range_quantizes_weights_only() {
    let fm = model(fixture!("mlp/model_float.tflite"));
    let opts = QuantizeOptions { mode: Mode::Dynamic, ..Default::default() };
    let (q, r) = quantize(&fm, None, &opts, &mut |_, _, _| {}).unwrap();
    let g = q.main();
    assert_eq!(g.tensors[g.inputs[0]].dtype, DType::F32);
    assert_eq!(r.layers.len(), 3);
    assert!(g.nodes.iter().filter(|n| n.op.has_weights()).all(|n| g.tensors[n.input(1).unwrap()].dtype == DType::I8));
    let (fa, fo) = evaluate(&fm, 200);
    let (qa, qo) = evaluate(&q, 200);
    assert!(qa >= fa - 0.02);
    assert!(sqnr_db(&fo, &qo).unwrap() > 25.0);
}

#[test]
fn bad_requests_get_clear_errors() {
    let fm = model(fixture!("cnn/model_float.tflite"));
    let run =
        |m: &Model, data: Option<&NpyArray>, o: QuantizeOptions| quantize(m, data, &o, &mut |_, _, _| {}).unwrap_err();
    let e = run(&fm, None, QuantizeOptions::default());
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(e.to_string().contains("needs calibration data"), "{e}");

    let wrong = NpyArray::new(vec![20, 8, 8, 1], NpyData::F32(vec![0.5; 20 * 64])).unwrap();
    let e = run(&fm, Some(&wrong), QuantizeOptions::default());
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert!(e.to_string().contains("[20, 8, 8, 1]") && e.to_string().contains("[1, 16, 16, 1]"), "{e}");

    let few = NpyArray::new(vec![3, 16, 16, 1], NpyData::F32(vec![0.5; 3 * 256])).unwrap();
    let e = run(&fm, Some(&few), QuantizeOptions::default());
    assert!(e.to_string().contains("3 samples") && e.to_string().contains("at least 10"), "{e}");

    let mut v = vec![0.5f32; 12 * 256];
    v[5 * 256 + 7] = f32::NAN;
    let nan = NpyArray::new(vec![12, 16, 16, 1], NpyData::F32(v)).unwrap();
    let e = run(&fm, Some(&nan), QuantizeOptions::default());
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert!(e.to_string().contains("sample 5, element 7"), "{e}");

    let int8 = model(fixture!("cnn/model_int8_tf.tflite"));
    let e = run(&int8, Some(&calib()), QuantizeOptions::default());
    assert!(e.to_string().contains("already quantized"), "{e}");

    let hybrid = model(fixture!("mlp/model_dynamic.tflite"));
    let e = run(&hybrid, None, QuantizeOptions { mode: Mode::Dynamic, ..Default::default() });
    assert!(e.to_string().contains("already has int8 weights"), "{e}");
    // A hybrid model can still be fully quantized: its weights are dequantized first.
    let (q, r) = quantize(&hybrid, Some(&calib()), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
    assert!(r.notes.iter().any(|n| n.contains("dequantized and requantized")));
    assert!(evaluate(&q, 100).0 > 0.9);
}
