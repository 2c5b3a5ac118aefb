//! Refusals of evaluation (each with the message it has always had) and the job's bookkeeping, on
//! small built models. The figures on the fixture models are in `crate/tests/evaluate.rs`.

use super::*;
use crate::ir::{Builder, Op};
use crate::npy::NpyData;
use crate::parallel::Job;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// RELU of a [1, 4] input; its output is the graph output, or the graph has none.
fn relu(with_output: bool) -> Model {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 4]);
    let y = b.node(Op::Relu, &[Some(x)], &[1, 4]);
    let outputs = if with_output { vec![y] } else { vec![] };
    b.finish(&outputs)
}

/// PAD of a [1, 4] input by one column: the same input, an output one value wider.
fn padded() -> Model {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 4]);
    let p = b.constant_i32("p", &[2, 2], vec![0, 0, 0, 1]);
    let y = b.node(Op::Pad, &[Some(x), Some(p)], &[1, 5]);
    b.finish(&[y])
}

/// A [1, 4] input reduced to one value per sample (not a classifier).
fn one_value() -> Model {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 4]);
    let axis = b.constant_i32("axis", &[1], vec![1]);
    let y = b.node(Op::Mean { keep_dims: true }, &[Some(x), Some(axis)], &[1, 1]);
    b.finish(&[y])
}

fn data(n: usize) -> NpyArray {
    NpyArray::new(vec![n, 4], NpyData::F32((0..n * 4).map(|i| i as f32 - 3.0).collect())).unwrap()
}

fn nothing(_: &str, _: usize, _: usize) {}

fn message(r: Result<EvalReport>) -> String {
    r.expect_err("an error").to_string()
}

#[test]
fn a_reference_with_another_output_width_is_a_clear_error() {
    let e = evaluate(&relu(true), 1, &data(3), None, Some((&padded(), 1)), &mut nothing).unwrap_err();
    assert_eq!(e.code().as_str(), "invalid_input");
    assert!(e.to_string().contains("output 0 has 4 values per sample but the reference's has 5"), "{e}");
    // The same model as its own reference compares.
    let r = evaluate(&relu(true), 1, &data(3), None, Some((&relu(true), 1)), &mut nothing).unwrap();
    assert_eq!(r.reference.unwrap().top1_agreement, 1.0);
}

#[test]
fn a_model_without_outputs_is_a_clear_error() {
    for (model, reference) in [(relu(false), None), (relu(true), Some(relu(false)))] {
        let e = evaluate(&model, 1, &data(2), None, reference.as_ref().map(|r| (r, 1)), &mut nothing).unwrap_err();
        assert!(e.to_string().contains("has no outputs"), "{e}");
    }
}

#[test]
fn labels_without_classes_or_samples_are_errors() {
    let labels = NpyArray::new(vec![2, 0], NpyData::F32(vec![])).unwrap();
    assert!(labels_of(&labels, 2).unwrap_err().to_string().contains("no classes"));
    let labels = NpyArray::new(vec![3], NpyData::I32(vec![0, 1, 2])).unwrap();
    assert!(labels_of(&labels, 2).is_err());
    assert!(evaluate(&relu(true), 1, &data(0), None, None, &mut nothing).is_err());
}

#[test]
fn bad_labels_and_data_are_refused_before_anything_runs() {
    let (m, x) = (relu(true), data(3));
    let five = NpyArray::new(vec![5], NpyData::I32(vec![0; 5])).unwrap();
    assert_eq!(
        message(evaluate(&m, 1, &x, Some(&five), None, &mut nothing)),
        "invalid input: 5 labels for 3 samples (shape [5])"
    );
    let floats = NpyArray::new(vec![3], NpyData::F32(vec![0.5; 3])).unwrap();
    assert!(message(evaluate(&m, 1, &x, Some(&floats), None, &mut nothing)).contains("must be integers"));
    let cube = NpyArray::new(vec![3, 1, 1], NpyData::F32(vec![0.0; 3])).unwrap();
    assert!(message(evaluate(&m, 1, &x, Some(&cube), None, &mut nothing)).contains("[N] class indices or [N, classes]"));
    let three = NpyArray::new(vec![3], NpyData::I32(vec![0; 3])).unwrap();
    let e = message(evaluate(&one_value(), 1, &x, Some(&three), None, &mut nothing));
    assert!(e.contains("accuracy needs a classifier"), "{e}");
    let wrong = NpyArray::new(vec![2, 5], NpyData::F32(vec![0.0; 10])).unwrap();
    let e = message(evaluate(&m, 1, &wrong, None, None, &mut nothing));
    assert!(e.contains("the data has shape [2, 5], but the model input is [1, 4]"), "{e}");
}

#[test]
fn a_job_gives_one_round_of_chunks_and_refuses_to_finish_early() {
    let mut job = EvaluateJob::new(&relu(true), 1, &data(70), None, Some((&relu(true), 1))).unwrap();
    let round = job.next().unwrap().unwrap();
    // 70 samples in chunks of 32, for each of the two models, then each model's latency.
    assert_eq!(round.units, vec![32, 32, 6, 32, 32, 6, 0, 0]);
    assert_eq!(round.resources.len(), 3);
    let mut early = EvaluateJob::new(&relu(true), 1, &data(2), None, None).unwrap();
    assert!(early.next().unwrap().is_some());
    assert!(early.finish().is_err());
    // Results that do not match the tasks are refused.
    assert!(job.accept(vec![Vec::new(); 6]).is_err());
}

/// The job plans each model to check it; its worker packs each model's parameters once (batched
/// plans share them).
#[test]
fn one_worker_prepares_each_model_once() {
    let before = crate::exec::preparations();
    let r = evaluate(&relu(true), 1, &data(70), None, Some((&tanh_model(), 1)), &mut nothing).unwrap();
    assert_eq!(r.samples, 70);
    assert_eq!(crate::exec::preparations() - before, 2, "parameter stores prepared");
}

/// The tasks check their own samples; the job reports the first value that is not finite in
/// sample order, however many workers ran them.
#[test]
fn the_first_non_finite_value_in_sample_order_is_reported_on_any_number_of_workers() {
    let mut nan = data(3);
    if let NpyData::F32(v) = &mut nan.data {
        v[6] = f32::NAN;
    }
    let e = evaluate(&relu(true), 1, &nan, None, None, &mut nothing);
    assert_eq!(message(e), "invalid input: sample 1: element 2 is NaN");
    let mut x = data(70);
    if let NpyData::F32(v) = &mut x.data {
        v[65 * 4 + 1] = f32::INFINITY;
        v[40 * 4 + 3] = f32::NAN;
    }
    for workers in [1, 2, 3] {
        let mut job = EvaluateJob::new(&relu(true), 1, &x, None, Some((&tanh_model(), 1))).unwrap();
        let e = crate::parallel::run(&mut job, workers, &mut nothing).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(e, Err("invalid input: sample 40: element 3 is NaN".to_string()), "{workers} workers");
    }
    // In the first sample, the one the latency is measured on, too.
    if let NpyData::F32(v) = &mut x.data {
        v[1] = f32::NEG_INFINITY;
    }
    let e = evaluate(&relu(true), 1, &x, None, Some((&tanh_model(), 1)), &mut nothing);
    assert_eq!(message(e), "invalid input: sample 0: element 1 is -inf");
}

/// A [1, 4] input through TANH: a second model of RELU's shape.
fn tanh_model() -> Model {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 4]);
    let y = b.node(Op::Tanh, &[Some(x)], &[1, 4]);
    b.finish(&[y])
}

#[test]
fn integer_data_runs_as_float_values_for_both_models() {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 4]);
    let y = b.node(Op::Tanh, &[Some(x)], &[1, 4]);
    let tanh = b.finish(&[y]);
    let floats = data(3);
    let ints = NpyArray::new(vec![3, 4], NpyData::I32((0..12).map(|i| i - 3).collect())).unwrap();
    let a = evaluate(&relu(true), 1, &floats, None, Some((&tanh, 1)), &mut nothing).unwrap();
    let b = evaluate(&relu(true), 1, &ints, None, Some((&tanh, 1)), &mut nothing).unwrap();
    let (a, b) = (a.reference.unwrap().output_sqnr_db, b.reference.unwrap().output_sqnr_db);
    assert!(a[0].is_some_and(|db| db.is_finite()), "{a:?}");
    assert_eq!(a, b);
}
