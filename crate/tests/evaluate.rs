//! Evaluation on the fixture models as an [`EvaluateJob`]: the same figures with one thread and
//! with two, and the same figures as a plain evaluation that runs every sample on its own through
//! one interpreter (what `evaluate` did before it was a job).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::evaluate::{EvalReport, EvaluateJob};
use tinyml_optimizer::exec::Interpreter;
use tinyml_optimizer::ir::Model;
use tinyml_optimizer::npy::{self, NpyArray, NpyData};
use tinyml_optimizer::parallel;
use tinyml_optimizer::quantize::sqnr_db;
use tinyml_optimizer::tflite;

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/", $path)).as_slice()
    };
}

/// Samples of the test set used here (a few chunks of the job, the last one short).
const N: usize = 300;

fn model(bytes: &[u8]) -> Model {
    tflite::read(bytes).unwrap()
}

/// The first `n` samples of the fixtures' test set, and their labels.
fn test_set(n: usize) -> (NpyArray, NpyArray) {
    let x = npy::read(fixture!("data/patterns_test_x.npy")).unwrap();
    let y = npy::read(fixture!("data/patterns_test_y.npy")).unwrap();
    let per: usize = x.shape[1..].iter().product();
    let xs = NpyArray::new([&[n], &x.shape[1..]].concat(), NpyData::F32(x.to_f32()[..n * per].to_vec())).unwrap();
    let ys = NpyArray::new(vec![n], NpyData::I64(y.to_i64().unwrap()[..n].to_vec())).unwrap();
    (xs, ys)
}

fn run_job(m: &Model, x: &NpyArray, y: Option<&NpyArray>, r: &Model, threads: usize) -> EvalReport {
    let mut job = EvaluateJob::new(m, 10, x, y, Some((r, 20))).unwrap();
    let mut seen = Vec::new();
    parallel::run(&mut job, threads, &mut |stage: &str, done, total| seen.push((stage.to_string(), done, total)))
        .unwrap();
    // Progress counts the samples of both models, and ends at the total.
    let last = seen.last().cloned().unwrap();
    assert_eq!(last, ("evaluate".to_string(), 2 * x.shape[0], 2 * x.shape[0]));
    job.finish().unwrap()
}

/// The plain twin: every sample alone through one interpreter (state reset before each), outputs
/// dequantized to float, then the figures.
struct Plain {
    accuracy: Option<f64>,
    reference_accuracy: Option<f64>,
    agreement: f64,
    sqnr: Vec<Option<f64>>,
}

fn outputs_one_by_one(m: &Model, x: &NpyArray) -> Vec<Vec<f32>> {
    let mut it = Interpreter::new(m).unwrap();
    let values = x.to_f32();
    let n = x.shape[0];
    let per = values.len() / n;
    let mut outs = vec![Vec::new(); it.outputs().len()];
    for i in 0..n {
        it.reset_state();
        it.set_input_f32(0, &values[i * per..(i + 1) * per]).unwrap();
        it.invoke().unwrap();
        for (k, o) in outs.iter_mut().enumerate() {
            o.extend(it.output_f32(k).unwrap());
        }
    }
    outs
}

fn top1(out: &[f32], n: usize) -> Vec<usize> {
    let k = out.len() / n;
    (0..n).map(|i| (0..k).fold(0, |b, j| if out[i * k + j] > out[i * k + b] { j } else { b })).collect()
}

fn plain(m: &Model, x: &NpyArray, y: Option<&[i64]>, r: &Model) -> Plain {
    let n = x.shape[0];
    let (ours, theirs) = (outputs_one_by_one(m, x), outputs_one_by_one(r, x));
    let (a, b) = (top1(&ours[0], n), top1(&theirs[0], n));
    let acc = |p: &[usize]| y.map(|y| (0..n).filter(|&i| p[i] as i64 == y[i]).count() as f64 / n as f64);
    Plain {
        accuracy: acc(&a),
        reference_accuracy: acc(&b),
        agreement: (0..n).filter(|&i| a[i] == b[i]).count() as f64 / n as f64,
        sqnr: ours.iter().zip(&theirs).map(|(o, t)| sqnr_db(t, o)).collect(),
    }
}

/// The figures of a report that must not depend on the cores (latency does), as JSON.
fn figures(r: &EvalReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    let o = v.as_object_mut().unwrap();
    assert!(o.remove("latency").is_some());
    assert!(o["reference"].as_object_mut().unwrap().remove("latency").is_some());
    v
}

#[test]
fn figures_are_identical_on_one_and_two_threads_and_match_a_plain_evaluation() {
    let (x, y) = test_set(N);
    let labels = y.to_i64().unwrap();
    for (name, int8, float) in [
        ("cnn", fixture!("cnn/model_int8_tf.tflite"), fixture!("cnn/model_float.tflite")),
        ("dwcnn", fixture!("dwcnn/model_int8_tf.tflite"), fixture!("dwcnn/model_float.tflite")),
        ("resnet", fixture!("resnet/model_int8_tf.tflite"), fixture!("resnet/model_float.tflite")),
        ("mlp", fixture!("mlp/model_int8_tf.tflite"), fixture!("mlp/model_float.tflite")),
    ] {
        let (m, r) = (model(int8), model(float));
        let one = run_job(&m, &x, Some(&y), &r, 1);
        let two = run_job(&m, &x, Some(&y), &r, 2);
        assert_eq!(figures(&one), figures(&two), "{name}");
        let p = plain(&m, &x, Some(&labels), &r);
        let c = one.reference.as_ref().unwrap();
        assert_eq!(one.accuracy, p.accuracy, "{name}");
        assert_eq!(c.accuracy, p.reference_accuracy, "{name}");
        assert_eq!(c.top1_agreement, p.agreement, "{name}");
        assert_eq!(c.output_sqnr_db, p.sqnr, "{name}");
        assert!(one.accuracy.unwrap() > 0.8, "{name}: {:?}", one.accuracy);
        assert!(c.output_sqnr_db[0].unwrap() > 15.0, "{name}: {:?}", c.output_sqnr_db);
        assert!(one.latency.min_ms > 0.0 && c.latency.min_ms > 0.0, "{name}");
        assert_eq!(one.outputs.len(), 1, "{name}");
    }
}

#[test]
fn a_recurrent_model_starts_every_sample_from_zero_state_on_any_number_of_threads() {
    let x = npy::read(fixture!("lstm/inputs.npy")).unwrap();
    let (m, r) = (model(fixture!("lstm/model_int8_tf.tflite")), model(fixture!("lstm/model_float.tflite")));
    let one = run_job(&m, &x, None, &r, 1);
    let two = run_job(&m, &x, None, &r, 2);
    assert_eq!(figures(&one), figures(&two));
    let p = plain(&m, &x, None, &r);
    let c = one.reference.as_ref().unwrap();
    assert_eq!((c.top1_agreement, &c.output_sqnr_db), (p.agreement, &p.sqnr));
}
