//! The fuzzing findings in tests/hostile/findings: each file gets a result (a model, outputs or a
//! typed error), never a panic, here in a build with overflow checks on.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::exec::{run_batch, Interpreter};
use tinyml_optimizer::quantize::{quantize, CalibrationMethod, QuantizeOptions};
use tinyml_optimizer::{npy, tflite};

macro_rules! finding {
    ($file:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/hostile/findings/", $file)).as_slice()
    };
}

/// Runs a model that reads on an input of ones; returns whether it ran.
fn runs(bytes: &[u8]) -> bool {
    let m = tflite::read(bytes).expect("the finding reads");
    let mut it = Interpreter::new(&m).expect("the finding prepares");
    let d = &it.inputs()[0];
    let per: usize = d.shape.iter().product();
    let x = npy::NpyArray::new(d.shape.clone(), npy::NpyData::F32(vec![1.0; per])).unwrap();
    run_batch(&mut it, &x, false, |_, _| {}).is_ok()
}

#[test]
fn a_multiplier_shift_beyond_30_saturates_instead_of_overflowing() {
    assert!(runs(finding!("multiplier_shift_overflow_mean.tflite")));
}

#[test]
fn a_softmax_whose_exponentials_all_underflow_runs() {
    assert!(runs(finding!("softmax_zero_sum_shift.tflite")));
}

#[test]
fn quantizing_values_near_the_float_limits_is_refused_naming_the_tensor() {
    let data = npy::read(finding!("quantize_nonfinite_scale_calibration.npy")).unwrap();
    let opts = QuantizeOptions { calibration: CalibrationMethod::MinMax, bias_correction: false, ..Default::default() };
    for bytes in [finding!("quantize_nonfinite_scale_1.tflite"), finding!("quantize_nonfinite_scale_2.tflite")] {
        let m = tflite::read(bytes).unwrap();
        match quantize(&m, Some(&data), &opts, &mut |_, _, _| {}) {
            // Either a model that reads back ...
            Ok((q, _)) => {
                tflite::read(&tflite::write(&q).unwrap()).expect("the quantized model reads back");
            }
            // ... or an error that names the tensor.
            Err(e) => assert!(e.to_string().contains("tensor"), "{e}"),
        }
    }
}

#[test]
fn evaluating_a_model_whose_input_holds_no_values_is_an_error_not_a_panic() {
    // run_model target: an input with a zero dimension; the samples of the batch hold no values.
    let m = tflite::read(finding!("run_task_short_data.tflite")).unwrap();
    let g = m.main();
    let shape = &g.tensors[g.inputs[0]].shape;
    let per = if shape.first() == Some(&1) { &shape[1..] } else { &shape[..] };
    let full: Vec<usize> = std::iter::once(2).chain(per.iter().copied()).collect();
    let len: usize = full.iter().product();
    let x = npy::NpyArray::new(full, npy::NpyData::F32(vec![0.5; len])).unwrap();
    let labels = npy::NpyArray::new(vec![2], npy::NpyData::I64(vec![0, 1])).unwrap();
    let r = tinyml_optimizer::evaluate::evaluate(&m, 412, &x, Some(&labels), Some((&m, 412)), &mut |_, _, _| {});
    if let Err(e) = r {
        assert!(!e.to_string().is_empty());
    }
}
