//! Our engine against LiteRT's stored outputs on the fixture models (tests/fixtures, built by
//! tests/fixtures/make_fixtures.py). Float models are compared with LiteRT's default kernels, hybrid
//! (dynamic-range) models with its reference kernels, within 1e-4 relative or 1e-5 absolute.
//! The files are compiled in, so the same test runs natively and in the browser (wasm-pack test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::exec::{run_batch, Interpreter, Target};
use tinyml_optimizer::{npy, tflite};

#[macro_use]
mod common;

/// Full-int8 models: our int8 engine with the `litert` target must equal LiteRT's reference kernels
/// byte for byte (TFLite Micro is checked by tests/conformance/check_tflm.py).
fn check_exact(name: &str, model: &[u8], inputs: &[u8], expected: &[u8]) {
    let m = tflite::read(model).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut it = Interpreter::for_target(&m, Target::Litert).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = npy::read(inputs).unwrap();
    let want = npy::read(expected).unwrap();
    let got = run_batch(&mut it, &x, true, |_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got[0].shape, want.shape, "{name}: output shape");
    assert_eq!(got[0].data, want.data, "{name}: int8 outputs differ from LiteRT's reference kernels");
}

fn check(name: &str, model: &[u8], inputs: &[u8], expected: &[u8]) {
    let m = tflite::read(model).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut it = Interpreter::new(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = npy::read(inputs).unwrap();
    let want = npy::read(expected).unwrap();
    let got = run_batch(&mut it, &x, false, |_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got[0].shape, want.shape, "{name}: output shape");
    let (g, w) = (got[0].to_f32(), want.to_f32());
    let mut worst = 0.0f32;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let err = (a - b).abs();
        assert!(err <= 1e-5 || err <= 1e-4 * b.abs(), "{name}: element {i}: ours {a}, LiteRT {b}");
        worst = worst.max(err);
    }
    println!("{name}: {} values, worst abs error {worst:e}", g.len());
}

macro_rules! fixture_tests {
    ($($test:ident: $dir:literal, $kind:literal;)*) => {$(
        #[test]
        fn $test() {
            check(
                concat!($dir, "/", $kind),
                fixture!($dir, concat!("model_", $kind, ".tflite")),
                fixture!($dir, "inputs.npy"),
                fixture!($dir, concat!("outputs_", $kind, ".npy")),
            );
        }
    )*};
}

fixture_tests! {
    cnn_float: "cnn", "float";
    cnn_dynamic: "cnn", "dynamic";
    dwcnn_float: "dwcnn", "float";
    dwcnn_dynamic: "dwcnn", "dynamic";
    resnet_float: "resnet", "float";
    resnet_dynamic: "resnet", "dynamic";
    mlp_float: "mlp", "float";
    mlp_dynamic: "mlp", "dynamic";
    ops_float: "ops", "float";
    ops_dynamic: "ops", "dynamic";
}

macro_rules! int8_tests {
    ($($test:ident: $dir:literal;)*) => {$(
        #[test]
        fn $test() {
            check_exact(
                concat!($dir, "/int8_tf"),
                fixture!($dir, "model_int8_tf.tflite"),
                fixture!($dir, "inputs.npy"),
                fixture!($dir, "outputs_int8_tf.npy"),
            );
        }
    )*};
}

int8_tests! {
    cnn_int8_tf: "cnn";
    dwcnn_int8_tf: "dwcnn";
    resnet_int8_tf: "resnet";
    mlp_int8_tf: "mlp";
}
