//! Training on the fixture models: gradual pruning reaches exactly the requested sparsity and keeps
//! accuracy that one-shot pruning loses; quantization-aware training exports an int8 model at least
//! as accurate as static quantization's; results do not depend on the number of threads; bad
//! requests are refused before work starts.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::exec::{run_batch, Interpreter};
use tinyml_optimizer::ir::{Model, TensorData};
use tinyml_optimizer::npy::{self, NpyArray, NpyData};
use tinyml_optimizer::parallel::run;
use tinyml_optimizer::prune::{prune, Method, PruneOptions};
use tinyml_optimizer::quantize::{quantize, quantize_job, quantize_with_ranges, CalibrationMethod, QuantizeOptions};
use tinyml_optimizer::train::qat::{self, Calibration};
use tinyml_optimizer::train::{Kept, PruneDuring, QatJob, TrainJob, TrainOptions, TrainReport};
use tinyml_optimizer::{tflite, ErrorCode};

#[macro_use]
mod common;

/// Samples `a..b` of the fixture test set: images and labels.
fn split(a: usize, b: usize) -> (NpyArray, NpyArray) {
    let x = npy::read(fixture!("data", "patterns_test_x.npy")).unwrap();
    let y = npy::read(fixture!("data", "patterns_test_y.npy")).unwrap();
    let per = 256;
    let xs = NpyArray::new(vec![b - a, 16, 16, 1], NpyData::F32(x.to_f32()[a * per..b * per].to_vec())).unwrap();
    let ys = NpyArray::new(vec![b - a], NpyData::I64(y.to_i64().unwrap()[a..b].to_vec())).unwrap();
    (xs, ys)
}

fn accuracy(m: &Model, x: &NpyArray, y: &NpyArray) -> f64 {
    let mut it = Interpreter::new(m).unwrap();
    let out = run_batch(&mut it, x, false, |_, _| {}).unwrap()[0].to_f32();
    let labels = y.to_i64().unwrap();
    let k = out.len() / labels.len();
    let hits = labels
        .iter()
        .enumerate()
        .filter(|(i, &l)| {
            let row = &out[i * k..(i + 1) * k];
            (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b }) as i64 == l
        })
        .count();
    hits as f64 / labels.len() as f64
}

fn zeros(m: &Model) -> (usize, usize) {
    let g = m.main();
    let mut z = (0, 0);
    for n in &g.nodes {
        let Some(l) = tinyml_optimizer::ops::weight_layout(&n.op) else { continue };
        let Some(TensorData::F32(a)) = n.input(l.weights).and_then(|t| g.tensors[t].data.as_ref()) else { continue };
        z.0 += a.iter().filter(|v| **v == 0.0).count();
        z.1 += a.len();
    }
    z
}

/// Gradual pruning to 80% while training on the first 800 samples (one thread, no validation
/// split, the default schedule).
fn prune_while_training(m: &Model, method: Method, epochs: usize) -> (Model, TrainReport) {
    let (x, y) = split(0, 800);
    let opts = TrainOptions { epochs, validation_split: 0.0, ..Default::default() };
    let p = PruneDuring { method, schedule: None, sparsity: 0.8, include_last_layer: false, include_depthwise: false };
    let mut job = TrainJob::new(m, &x, &y, &opts, Some(&p), Vec::new()).unwrap();
    run(&mut job, 1, &mut |_, _, _| {}).unwrap();
    let (tuned, report, _) = job.finish().unwrap();
    (tuned, report)
}

#[test]
fn gradual_pruning_keeps_accuracy_one_shot_loses() {
    let m = tflite::read(fixture!("resnet", "model_float.tflite")).unwrap();
    let (tx, ty) = split(800, 1000);
    let (tuned, report) = prune_while_training(&m, Method::GlobalMagnitude, 2);
    assert!((report.sparsity - 0.8).abs() < 1e-3, "sparsity {}", report.sparsity);
    let one = PruneOptions { method: Method::GlobalMagnitude, sparsity: 0.8, ..Default::default() };
    let (oneshot, _) = prune(&m, None, &one, &mut |_, _, _| {}).unwrap();
    let (a_tuned, a_one) = (accuracy(&tuned, &tx, &ty), accuracy(&oneshot, &tx, &ty));
    eprintln!("80%: fine-tuned {a_tuned:.3}, one-shot {a_one:.3}, {:?}", report.epochs);
    assert!(a_tuned >= a_one + 0.15 && a_tuned >= 0.8, "fine-tuned {a_tuned}, one-shot {a_one}");
    // Zeros stay exactly zero through static quantization.
    let calib = split(0, 100).0;
    let (q, _) = quantize(&tuned, Some(&calib), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
    let qz: usize = q
        .main()
        .nodes
        .iter()
        .filter_map(|n| tinyml_optimizer::ops::weight_layout(&n.op).and_then(|l| n.input(l.weights)))
        .filter_map(|t| {
            q.main().tensors[t].data.as_ref().and_then(TensorData::as_i8).map(|a| a.iter().filter(|v| **v == 0).count())
        })
        .sum();
    assert!(qz >= zeros(&tuned).0, "int8 zeros {qz} < float zeros {}", zeros(&tuned).0);
}

/// The comparison's claim on the depthwise fixture, small: 80% with layer-wise magnitudes, as
/// `finetune_compare.py` prunes it. With its DEPTHWISE_CONV_2D kernels pruned too, training ended at
/// 13.5% (chance is 10%); the bar is TFMOT's 59.7% there (tests/bench/results/finetune.json, same
/// schedule, 1200 samples where this test trains on 800).
#[test]
fn gradual_pruning_of_a_depthwise_model_keeps_accuracy() {
    let m = tflite::read(fixture!("dwcnn", "model_float.tflite")).unwrap();
    let (tx, ty) = split(800, 1000);
    let (tuned, report) = prune_while_training(&m, Method::LayerMagnitude, 4);
    assert!((report.sparsity - 0.8).abs() < 2e-3, "sparsity {}", report.sparsity);
    let g = tuned.main();
    for n in g.nodes.iter().filter(|n| matches!(n.op, tinyml_optimizer::ir::Op::DepthwiseConv2D(_))) {
        let w = g.tensors[n.inputs[1].unwrap()].data.as_ref().and_then(TensorData::as_f32).unwrap();
        assert!(w.iter().all(|v| *v != 0.0), "a depthwise kernel was pruned");
    }
    let a = accuracy(&tuned, &tx, &ty);
    eprintln!("dwcnn 80%: fine-tuned {a:.3}, {:?}", report.epochs);
    assert!(a >= 0.597, "fine-tuned {a}");
}

#[test]
#[cfg(not(target_arch = "wasm32"))]
fn training_is_identical_on_one_and_two_threads() {
    let m = tflite::read(fixture!("cnn", "model_float.tflite")).unwrap();
    let (x, y) = split(0, 200);
    let opts = TrainOptions { epochs: 1, batch_size: 40, ..Default::default() };
    let p = PruneDuring {
        method: Method::GlobalGradient,
        schedule: None,
        sparsity: 0.5,
        include_last_layer: true,
        include_depthwise: false,
    };
    let mut bytes = Vec::new();
    for threads in [1, 2] {
        let mut job = TrainJob::new(&m, &x, &y, &opts, Some(&p), Vec::new()).unwrap();
        run(&mut job, threads, &mut |_, _, _| {}).unwrap();
        bytes.push(tflite::write(&job.finish().unwrap().0).unwrap());
    }
    assert!(bytes[0] == bytes[1], "the trained models differ between 1 and 2 threads");
}

#[test]
#[cfg(not(target_arch = "wasm32"))]
fn quantization_aware_training_is_identical_on_one_and_two_threads() {
    // The second worker gets the training graph, fake-quant nodes included, as bytes.
    let m = tflite::read(fixture!("cnn", "model_float.tflite")).unwrap();
    let (x, y) = split(0, 120);
    let opts = TrainOptions { epochs: 1, batch_size: 40, validation_split: 0.0, ..Default::default() };
    let mut bytes = Vec::new();
    for threads in [1, 2] {
        let mut job =
            QatJob::new(&m, &x, &y, Calibration::TrainingSamples, &opts, &QuantizeOptions::default()).unwrap();
        run(&mut job, threads, &mut |_, _, _| {}).unwrap();
        bytes.push(tflite::write(&job.finish().unwrap().0).unwrap());
    }
    assert!(bytes[0] == bytes[1], "the QAT models differ between 1 and 2 threads");
}

#[test]
fn quantization_aware_training_beats_static_quantization() {
    let m = tflite::read(fixture!("mlp", "model_float.tflite")).unwrap();
    let (x, y) = split(0, 800);
    let (tx, ty) = split(800, 1000);
    let opts = TrainOptions { epochs: 2, learning_rate: 2e-4, validation_split: 0.0, ..Default::default() };
    let mut job = QatJob::new(&m, &x, &y, Calibration::TrainingSamples, &opts, &QuantizeOptions::default()).unwrap();
    run(&mut job, 1, &mut |_, _, _| {}).unwrap();
    let (q, _, report, _) = job.finish().unwrap();
    let (ptq, _) = quantize(&m, Some(&split(0, 200).0), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
    let (a_qat, a_ptq) = (accuracy(&q, &tx, &ty), accuracy(&ptq, &tx, &ty));
    eprintln!("QAT {a_qat:.3}, PTQ {a_ptq:.3}, float {:.3}, {:?}", accuracy(&m, &tx, &ty), report.epochs);
    assert!(a_qat >= a_ptq, "QAT {a_qat} < PTQ {a_ptq}");
}

/// Quantization-aware training starts from static quantization's model exactly: with bias
/// correction carried into the float biases, exporting the untrained weights with the static
/// ranges gives the static model back, tensor for tensor (without it, the biases differ).
#[test]
fn quantization_aware_training_starts_from_the_static_model() {
    for (name, bytes) in
        [("cnn", fixture!("cnn", "model_float.tflite")), ("mlp", fixture!("mlp", "model_float.tflite"))]
    {
        let m = tflite::read(bytes).unwrap();
        let opts = QuantizeOptions { calibration: CalibrationMethod::MinMax, ..Default::default() };
        let mut job = quantize_job(&m, &split(0, 200).0, &opts).unwrap();
        run(&mut job, 1, &mut |_, _, _| {}).unwrap();
        let (ptq, report, ranges) = job.finish_with_ranges().unwrap();
        assert!(report.layers.iter().any(|l| l.bias_correction.is_some_and(|c| c > 0.0)), "{name}: no correction");
        let float = tinyml_optimizer::passes::fold_constants(&m).unwrap().0;
        let (plain, _) = quantize_with_ranges(&float, &ranges, &opts).unwrap();
        assert!(tensors(&plain) != tensors(&ptq), "{name}: bias correction changed nothing");
        let mut start = float.clone();
        qat::start_biases(&mut start, &ptq, &report);
        let (again, _) = quantize_with_ranges(&start, &ranges, &opts).unwrap();
        assert!(tensors(&again) == tensors(&ptq), "{name}: the start is not the static model");
    }
}

/// Every tensor's type, shape, quantization and data, in order.
fn tensors(m: &Model) -> Vec<String> {
    m.main().tensors.iter().map(|t| format!("{:?} {:?} {:?} {:?}", t.dtype, t.shape, t.quant, t.data)).collect()
}

/// With a validation split, the starting weights are a candidate too: a run that only makes the
/// model worse on the validation samples (here a far too high learning rate) returns the model it
/// started from, for fine-tuning and for quantization-aware training alike.
#[test]
fn training_that_does_not_help_keeps_the_start() {
    let m = tflite::read(fixture!("mlp", "model_float.tflite")).unwrap();
    let (x, y) = split(0, 300);
    let opts = TrainOptions { epochs: 2, learning_rate: 0.5, validation_split: 0.3, ..Default::default() };
    let mut job = TrainJob::new(&m, &x, &y, &opts, None, Vec::new()).unwrap();
    run(&mut job, 1, &mut |_, _, _| {}).unwrap();
    let (tuned, report, _) = job.finish().unwrap();
    let start = report.start_val_loss.unwrap();
    assert!(report.epochs.iter().all(|e| e.val_loss.unwrap() > start), "{start} {:?}", report.epochs);
    assert_eq!(report.best_epoch, Some(0));
    assert!(tflite::write(&tuned).unwrap() == tflite::write(&m).unwrap(), "the start's weights are returned");
    let mut job = QatJob::new(&m, &x, &y, Calibration::TrainingSamples, &opts, &QuantizeOptions::default()).unwrap();
    run(&mut job, 1, &mut |_, _, _| {}).unwrap();
    let (_, _, report, _) = job.finish().unwrap();
    assert_eq!(report.best_epoch, Some(0), "{:?} {:?}", report.start_val_loss, report.epochs);
    assert_eq!(report.kept, Kept::Start);
    // Training that helps is kept: a sane rate beats the start.
    let opts = TrainOptions { learning_rate: 1e-3, ..opts };
    let mut job = TrainJob::new(&m, &x, &y, &opts, None, Vec::new()).unwrap();
    run(&mut job, 1, &mut |_, _, _| {}).unwrap();
    let report = job.finish().unwrap().1;
    assert!(
        report.best_epoch.is_some_and(|e| e > 0) || report.epochs.iter().all(|e| e.val_loss >= report.start_val_loss)
    );
}

/// Quantization-aware training starts from the static model `quantize` gives with the same
/// calibration data and method, and when no epoch beats it on the validation samples, returns that
/// model byte for byte; without calibration data it calibrates on the first training samples.
#[test]
fn quantization_aware_training_that_does_not_help_returns_the_static_model() {
    let m = tflite::read(fixture!("mlp", "model_float.tflite")).unwrap();
    let (x, y) = split(0, 300);
    let calibration = split(500, 560).0;
    let qopts = QuantizeOptions { calibration: CalibrationMethod::Mse, ..Default::default() };
    // A far too high learning rate: every epoch is worse than the start on the validation split.
    let opts = TrainOptions { epochs: 2, learning_rate: 0.5, validation_split: 0.3, ..Default::default() };
    let static_model = |c: &NpyArray| {
        let (q, _) = quantize(&m, Some(c), &qopts, &mut |_, _, _| {}).unwrap();
        tflite::write(&q).unwrap()
    };
    let mut written = Vec::new();
    for (calib, expected) in [
        (Calibration::Data(&calibration), static_model(&calibration)),
        (Calibration::TrainingSamples, static_model(&split(0, qat::CALIBRATION.min(300)).0)),
    ] {
        let mut job = QatJob::new(&m, &x, &y, calib, &opts, &qopts).unwrap();
        run(&mut job, 1, &mut |_, _, _| {}).unwrap();
        let (q, report, train, start) = job.finish().unwrap();
        assert_eq!(train.kept, Kept::Start, "{:?} {:?}", train.start_val_accuracy, train.epochs);
        assert!(train.epochs.len() == 2, "both epochs ran");
        let bytes = tflite::write(&q).unwrap();
        assert!(bytes == expected, "the result is not the static model quantize gives");
        assert_eq!(report.mode, start.unwrap().mode, "the report is static quantization's");
        written.push(bytes);
    }
    assert!(written[0] != written[1], "the calibration data made no difference");
}

#[test]
fn bad_training_requests_are_refused() {
    let m = tflite::read(fixture!("cnn", "model_float.tflite")).unwrap();
    let (x, y) = split(0, 50);
    let ok = TrainOptions::default();
    let err = |opts: &TrainOptions, x: &NpyArray, y: &NpyArray| {
        TrainJob::new(&m, x, y, opts, None, Vec::new()).err().unwrap()
    };
    let e = err(&TrainOptions { epochs: 0, ..ok.clone() }, &x, &y);
    assert!(e.to_string().contains("epochs"), "{e}");
    let e = err(&TrainOptions { learning_rate: -1.0, ..ok.clone() }, &x, &y);
    assert!(e.to_string().contains("learning rate"), "{e}");
    let e = err(&TrainOptions { batch_size: 0, ..ok.clone() }, &x, &y);
    assert!(e.to_string().contains("batch size"), "{e}");
    let short = split(0, 40).1;
    assert!(err(&ok, &x, &short).to_string().contains("50 samples"));
    let bad = NpyArray::new(vec![50], NpyData::I64((0..50).map(|i| i % 12).collect())).unwrap();
    let e = err(&ok, &x, &bad);
    assert!(e.to_string().contains("label 10") && e.code() == ErrorCode::InvalidInput, "{e}");
    let mut nan = x.to_f32();
    nan[300] = f32::NAN;
    let xn = NpyArray::new(x.shape.clone(), NpyData::F32(nan)).unwrap();
    assert!(err(&ok, &xn, &y).to_string().contains("NaN"));
}
