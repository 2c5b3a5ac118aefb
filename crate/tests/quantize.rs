//! Quantization on the fixture models: static int8 (every calibration method, per-channel and
//! per-tensor, int8 and float I/O) and dynamic range, plus every refusal a user can run into.
//! Compiled-in data, so this runs natively and in the browser.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::exec::{run_batch, Interpreter};
use tinyml_optimizer::ir::{Activation, Builder, DType, FullyConnected, Model, Op};
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
            .filter(|n| tinyml_optimizer::ops::is_weighted(&n.op))
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
    let w = g.nodes.iter().find(|n| tinyml_optimizer::ops::is_weighted(&n.op)).unwrap().input(1).unwrap();
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
    assert!(g
        .nodes
        .iter()
        .filter(|n| tinyml_optimizer::ops::is_weighted(&n.op))
        .all(|n| g.tensors[n.input(1).unwrap()].dtype == DType::I8));
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

/// Ranges of tensors read only by TANH, LOGISTIC or SOFTMAX stop where those functions' int8
/// outputs stop changing: the values that matter get finer steps, and inputs beyond the bounds
/// still give the saturated (or zero-probability) outputs.
#[test]
fn ranges_stop_where_tanh_logistic_and_softmax_saturate() {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 4]);
    let fc = FullyConnected { activation: Activation::None, keep_num_dims: false, asymmetric_quantize_inputs: false };
    let dense = |b: &mut Builder, name: &str, k: f32, bias: f32| {
        let w = b.constant_f32(name, &[4, 4], (0..16).map(|i| if i % 5 == 0 { k } else { 0.0 }).collect());
        let bias = b.constant_f32(&format!("{name}_bias"), &[4], vec![bias; 4]);
        b.node(Op::FullyConnected(fc.clone()), &[Some(x), Some(w), Some(bias)], &[1, 4])
    };
    let pre_tanh = dense(&mut b, "w1", 8.0, 0.0);
    let pre_logistic = dense(&mut b, "w2", -16.0, 0.0);
    let logits = dense(&mut b, "w3", 20.0, -10.0);
    let t = b.node(Op::Tanh, &[Some(pre_tanh)], &[1, 4]);
    let l = b.node(Op::Logistic, &[Some(pre_logistic)], &[1, 4]);
    let p = b.node(Op::Softmax { beta: 1.0 }, &[Some(logits)], &[1, 4]);
    let fm = b.finish(&[t, l, p]);

    // One coordinate near 1 per sample, the others small: 8x spans [-2.4, 10.4], -16x [-20.8, 4.8],
    // and 20x - 10 [-16, 16], with every row's maximum at 4 or more.
    let mut rng = tinyml_optimizer::rng::Rng::new(5);
    let n = 200;
    let data: Vec<f32> =
        (0..n * 4).map(|i| 0.6 * rng.uniform() - 0.3 + if i % 4 == (i / 4) % 4 { 1.0 } else { 0.0 }).collect();
    let maxima: Vec<f64> =
        data.chunks(4).map(|r| 20.0 * r.iter().copied().fold(f32::MIN, f32::max) as f64 - 10.0).collect();
    let mean = maxima.iter().sum::<f64>() / n as f64;
    let std = (maxima.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n as f64).sqrt() as f32;
    let row_max_floor = maxima.iter().copied().fold(f64::MAX, f64::min) as f32 - std;
    let xs = NpyArray::new(vec![n, 4], NpyData::F32(data)).unwrap();
    let opts = QuantizeOptions { bias_correction: false, ..static_opts(CalibrationMethod::MinMax) };
    let (q, report) = quantize(&fm, Some(&xs), &opts, &mut |_, _, _| {}).unwrap();
    assert!(
        report.notes.iter().any(|m| m.starts_with("3 tensor(s) read only by TANH, LOGISTIC or SOFTMAX")),
        "{:?}",
        report.notes
    );

    // The int8 range of the tensor each function reads.
    let g = q.main();
    let range_into = |op: &str| {
        let node = g.nodes.iter().find(|n| n.op.name() == op).unwrap();
        let (s, z) = g.tensors[node.input(0).unwrap()].quant.as_ref().unwrap().single();
        ((-128 - z) as f32 * s, (127 - z) as f32 * s)
    };
    let (lo, hi) = range_into("TANH");
    assert!((-2.5..=-2.3).contains(&lo) && (2.95..=3.05).contains(&hi), "TANH input range [{lo}, {hi}]");
    let (lo, hi) = range_into("LOGISTIC");
    assert!((-7.55..=-7.4).contains(&lo) && (4.7..=4.9).contains(&hi), "LOGISTIC input range [{lo}, {hi}]");
    let floor = row_max_floor - ((512.0f32 * 4.0).ln() + 2.0);
    let (lo, hi) = range_into("SOFTMAX");
    assert!(
        floor < -5.0 && lo >= floor - 0.1 && lo <= floor + 0.1 && hi >= 15.5,
        "SOFTMAX input range [{lo}, {hi}], floor {floor}"
    );

    // Outputs track the float model's over the calibration set: the error allowed is what the input
    // step (1.6/255, times 8, 16 and 20 in the layers) and the output steps explain.
    let run = |m: &Model| {
        let mut it = Interpreter::new(m).unwrap();
        run_batch(&mut it, &xs, false, |_, _| {}).unwrap().iter().map(|o| o.to_f32()).collect::<Vec<_>>()
    };
    let (want, got) = (run(&fm), run(&q));
    for (k, (name, tol)) in [("TANH", 0.045), ("LOGISTIC", 0.025), ("SOFTMAX", 0.06)].into_iter().enumerate() {
        let worst = want[k].iter().zip(&got[k]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= tol, "{name}: worst error {worst}");
    }
    // Inputs beyond the clipped bounds still give the saturated codes, and probabilities under
    // 1/512 exactly 0.
    let mut saturated = [0; 3];
    for (a, b) in want[0].iter().zip(&got[0]) {
        if a.abs() > 0.9995 {
            assert!(b.abs() >= 127.0 / 128.0, "tanh {a} -> {b}");
            saturated[0] += 1;
        }
    }
    for (a, b) in want[1].iter().zip(&got[1]) {
        if !(0.0005..=0.9995).contains(a) {
            assert!(*b == 0.0 || *b == 255.0 / 256.0, "logistic {a} -> {b}");
            saturated[1] += 1;
        }
    }
    for (a, b) in want[2].iter().zip(&got[2]) {
        if *a < 1.0 / 512.0 {
            assert_eq!(*b, 0.0, "softmax {a}");
            saturated[2] += 1;
        }
    }
    assert!(saturated.iter().all(|&c| c >= 100), "saturated outputs checked: {saturated:?}");
}

#[test]
fn auto_quantization_prepares_the_engine_once_per_candidate() {
    // The MLP has Keras' Flatten (SHAPE → STRIDED_SLICE → PACK): it folds from the specs alone.
    for bytes in [fixture!("mlp/model_float.tflite"), fixture!("cnn/model_float.tflite")] {
        let m = model(bytes);
        let before = tinyml_optimizer::exec::preparations();
        let (_, r) = quantize(&m, Some(&calib()), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
        let compiled = tinyml_optimizer::exec::preparations() - before;
        assert_eq!(r.candidates.len(), 4, "min/max, percentile, MSE, then the winner with bias correction");
        // One float model (calibration, reused for the report) and one per scored candidate; plans
        // for other batch sizes share their model's prepared parameters.
        assert_eq!(compiled, r.candidates.len() + 1, "engine preparations");
    }
}
