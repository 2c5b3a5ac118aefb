//! Our backward pass against TensorFlow's gradients on the fixture models: the gradient of the mean
//! cross-entropy over 16 test samples with respect to every kernel, stored by
//! tests/fixtures/make_fixtures.py in TFLite's weight layouts and in execution order.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::{grad, npy, tflite};

#[macro_use]
mod common;

fn check(name: &str, model: &[u8], x: &[u8], y: &[u8], loss: &[u8], tf: &[&[u8]]) {
    let m = tflite::read(model).unwrap();
    let x = npy::read(x).unwrap();
    let labels = npy::read(y).unwrap().to_i64().unwrap();
    let ours = grad::gradients(&m, &x.to_f32(), &x.shape, Some(&labels), &mut |_, _, _| {}).unwrap();
    let tf_loss = npy::read(loss).unwrap().to_f32()[0] as f64;
    assert!((ours.loss - tf_loss).abs() < 1e-4 * tf_loss.max(1.0), "{name}: loss {} vs TF {tf_loss}", ours.loss);
    let g = m.main();
    let kernels: Vec<usize> =
        g.nodes.iter().filter(|n| tinyml_optimizer::ops::is_weighted(&n.op)).filter_map(|n| n.input(1)).collect();
    assert_eq!(kernels.len(), tf.len(), "{name}: weighted layers");
    for (i, (&t, bytes)) in kernels.iter().zip(tf).enumerate() {
        let want = npy::read(bytes).unwrap();
        assert_eq!(want.shape, g.tensors[t].shape, "{name} layer {i}: gradient shape");
        let want = want.to_f32();
        let got = ours.weights[t].as_ref().unwrap_or_else(|| panic!("{name} layer {i}: no gradient"));
        // Relative L2 error over the layer, and the worst element against the layer's scale.
        let norm = want.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let err = got.iter().zip(&want).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) as f64;
        let max = want.iter().map(|v| v.abs()).fold(0.0f32, f32::max) as f64;
        assert!(err <= 1e-3 * norm, "{name} layer {i}: relative L2 error {:.2e}", err / norm);
        assert!(worst <= 1e-3 * max, "{name} layer {i}: worst element off by {worst:.2e} (max {max:.2e})");
    }
}

#[test]
fn cnn_gradients_match_tensorflow() {
    check(
        "cnn",
        fixture!("cnn", "model_float.tflite"),
        fixture!("cnn", "grad_x.npy"),
        fixture!("cnn", "grad_y.npy"),
        fixture!("cnn", "grad_loss.npy"),
        &[fixture!("cnn", "grad_0.npy"), fixture!("cnn", "grad_1.npy"), fixture!("cnn", "grad_2.npy")],
    );
}

#[test]
fn dwcnn_gradients_match_tensorflow() {
    check(
        "dwcnn",
        fixture!("dwcnn", "model_float.tflite"),
        fixture!("dwcnn", "grad_x.npy"),
        fixture!("dwcnn", "grad_y.npy"),
        fixture!("dwcnn", "grad_loss.npy"),
        &[
            fixture!("dwcnn", "grad_0.npy"),
            fixture!("dwcnn", "grad_1.npy"),
            fixture!("dwcnn", "grad_2.npy"),
            fixture!("dwcnn", "grad_3.npy"),
            fixture!("dwcnn", "grad_4.npy"),
            fixture!("dwcnn", "grad_5.npy"),
        ],
    );
}

/// The ops graph runs through PAD, CONV_2D, LEAKY_RELU, MUL, DEPTHWISE_CONV_2D, LOGISTIC, TANH,
/// SUB, HARD_SWISH, CONCATENATION, TRANSPOSE, STRIDED_SLICE, REDUCE_MAX, MEAN, SQUEEZE, ADD, RELU,
/// RESHAPE, FULLY_CONNECTED and SOFTMAX: TensorFlow's gradients on a batch of 12 check each of
/// their backward passes, batched.
#[test]
fn ops_gradients_match_tensorflow_on_a_batch() {
    check(
        "ops",
        fixture!("ops", "model_float.tflite"),
        fixture!("ops", "grad_x.npy"),
        fixture!("ops", "grad_y.npy"),
        fixture!("ops", "grad_loss.npy"),
        &[fixture!("ops", "grad_0.npy"), fixture!("ops", "grad_1.npy"), fixture!("ops", "grad_2.npy")],
    );
}
