//! The predicted TFLite Micro arena of the fixture models against TFLM's real minimum, and the
//! `tflm` facts of `inspect` (support, resolver operators). The minima were measured with the pip
//! `tflite-micro` runtime (tests/requirements.txt) by binary search on `arena_size`, as
//! tests/conformance/check_tflm.py does on every run; the prediction, rounded up to 16 bytes, must
//! never be below the minimum.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::{summary, tflite, tflm};

#[macro_use]
mod common;

fn predicted(bytes: &[u8]) -> u64 {
    let m = tflite::read(bytes).unwrap();
    tflm::plan_arena(&m).unwrap().arena_bytes
}

#[test]
fn fixture_arenas_match_tflms_minimum() {
    // (model, TFLM's minimum arena_size in bytes)
    let cases: [(&str, &[u8], u64); 4] = [
        ("cnn", fixture!("cnn", "model_int8_tf.tflite"), 4840),
        ("dwcnn", fixture!("dwcnn", "model_int8_tf.tflite"), 5408),
        ("mlp", fixture!("mlp", "model_int8_tf.tflite"), 4192),
        ("resnet", fixture!("resnet", "model_int8_tf.tflite"), 30104),
    ];
    for (name, bytes, minimum) in cases {
        let p = predicted(bytes);
        assert!(p >= minimum && p < minimum + 16, "{name}: predicted {p}, TFLM's minimum {minimum}");
    }
}

#[test]
fn inspect_reports_tflm_support_and_resolver_operators() {
    let bytes = fixture!("mlp", "model_int8_tf.tflite");
    // The full engine's summary carries the report (the inference-only core's leaves it out).
    let s = summary::summarize(&tflite::read(bytes).unwrap(), bytes.len()).tflm.expect("full engine: a TFLM report");
    assert!(s.supported, "{:?}", s.unsupported);
    assert_eq!(s.flash_bytes, bytes.len() as u64);
    let ops: Vec<&str> = s.ops.iter().map(String::as_str).collect();
    assert_eq!(
        ops,
        ["AddShape", "AddStridedSlice", "AddPack", "AddReshape", "AddFullyConnected", "AddTanh", "AddSoftmax"]
    );
    assert!(s.arena_estimated_for.is_empty());

    let dynamic = fixture!("mlp", "model_dynamic.tflite");
    let s =
        summary::summarize(&tflite::read(dynamic).unwrap(), dynamic.len()).tflm.expect("full engine: a TFLM report");
    assert!(!s.supported);
    assert!(s.unsupported.iter().all(|u| u.op == "FULLY_CONNECTED" && u.reason.contains("hybrid")));
}
