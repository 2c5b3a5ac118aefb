//! Pruning on the fixture models: zeros survive quantization, and a structurally pruned residual
//! model keeps running. (Accuracy against sparsity is measured by web/test and
//! tests/bench/prune_compare.mjs, which run the release wasm build.)

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::ir::{Op, TensorData};
use tinyml_optimizer::prune::{prune, Method, PruneOptions};
use tinyml_optimizer::quantize::{quantize, QuantizeOptions};
use tinyml_optimizer::{npy, tflite};

#[macro_use]
mod common;

#[test]
fn pruned_zeros_stay_exactly_zero_after_quantization() {
    let m = tflite::read(fixture!("dwcnn", "model_float.tflite")).unwrap();
    let opts = PruneOptions { method: Method::LayerMagnitude, sparsity: 0.6, ..Default::default() };
    let (p, report) = prune(&m, None, &opts, &mut |_, _, _| {}).unwrap();
    assert!(report.removed_weights > 0);
    let calib = npy::read(fixture!("data", "patterns_calib.npy")).unwrap();
    let (q, _) = quantize(&p, Some(&calib), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
    let (pg, qg) = (p.main(), q.main());
    let weights = |g: &tinyml_optimizer::ir::Graph| -> Vec<usize> {
        g.nodes.iter().filter(|n| tinyml_optimizer::ops::is_weighted(&n.op)).filter_map(|n| n.input(1)).collect()
    };
    let (pw, qw) = (weights(pg), weights(qg));
    assert_eq!(pw.len(), qw.len());
    let mut zeros = 0;
    for (&a, &b) in pw.iter().zip(&qw) {
        let f = pg.tensors[a].data.as_ref().and_then(|d| d.as_f32()).unwrap();
        let Some(TensorData::I8(i)) = qg.tensors[b].data.as_ref() else { panic!("int8 weights expected") };
        for (x, y) in f.iter().zip(i.iter()) {
            if *x == 0.0 {
                assert_eq!(*y, 0);
                zeros += 1;
            }
        }
    }
    assert!(zeros as f64 >= 0.55 * report.prunable_weights as f64);
}

#[test]
fn structured_pruning_of_the_residual_fixture_runs_and_shrinks() {
    let m = tflite::read(fixture!("resnet", "model_float.tflite")).unwrap();
    let opts = PruneOptions { method: Method::LayerMagnitude, sparsity: 0.5, structured: true, ..Default::default() };
    let (p, report) = prune(&m, None, &opts, &mut |_, _, _| {}).unwrap();
    let ratio = report.after.macs as f64 / report.before.macs as f64;
    assert!((0.4..0.6).contains(&ratio), "MACs ratio {ratio}");
    for n in p.main().nodes.iter().filter(|n| matches!(n.op, Op::Add { .. })) {
        let shapes: Vec<_> = n.inputs.iter().flatten().map(|&t| p.main().tensors[t].shape.clone()).collect();
        assert_eq!(shapes[0], shapes[1], "residual branches keep the same channels");
    }
    let x = npy::read(fixture!("resnet", "inputs.npy")).unwrap();
    let mut it = tinyml_optimizer::exec::Interpreter::new(&p).unwrap();
    let out = tinyml_optimizer::exec::run_batch(&mut it, &x, false, |_, _| {}).unwrap();
    assert_eq!(out[0].shape, vec![8, 10]);
    // Round trip through the writer keeps the pruned graph.
    let back = tflite::read(&tflite::write(&p).unwrap()).unwrap();
    assert_eq!(back.main().tensors.len(), p.main().tensors.len());
}
