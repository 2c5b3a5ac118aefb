#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::exec::Interpreter;
use crate::ir::{Activation, Builder, Conv2D, DepthwiseConv2D, FullyConnected, Op, Padding};
use crate::rng::Rng;

fn normal(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

/// conv A (3→8, ReLU) → depthwise (ReLU6) → conv B (8→8) → ADD with A (ReLU) → MUL by a per-channel
/// constant → conv C (8→6, stride 2, ReLU) → flatten → FULLY_CONNECTED (96→5) → SOFTMAX.
/// Channels `dead1` of the residual group and `dead2` of C's output carry only zeros.
fn residual(rng: &mut Rng, dead1: &[usize], dead2: &[usize]) -> Model {
    let mut b = Builder::new();
    let conv = |act, stride| Conv2D { padding: Padding::Same, stride, dilation: (1, 1), activation: act };
    let zero_rows = |v: &mut Vec<f32>, per: usize, rows: &[usize]| {
        for &r in rows {
            v[r * per..(r + 1) * per].fill(0.0);
        }
    };
    let x = b.input("x", &[1, 8, 8, 3]);
    let (mut wa, mut ba) = (normal(rng, 8 * 27, 0.4), normal(rng, 8, 0.1));
    zero_rows(&mut wa, 27, dead1);
    zero_rows(&mut ba, 1, dead1);
    let wa = b.constant_f32("wa", &[8, 3, 3, 3], wa);
    let ba = b.constant_f32("ba", &[8], ba);
    let a = b.node(Op::Conv2D(conv(Activation::Relu, (1, 1))), &[Some(x), Some(wa), Some(ba)], &[1, 8, 8, 8]);
    let wd = b.constant_f32("wd", &[1, 3, 3, 8], normal(rng, 72, 0.4));
    let mut bd = normal(rng, 8, 0.1);
    zero_rows(&mut bd, 1, dead1);
    let bd = b.constant_f32("bd", &[8], bd);
    let dw = DepthwiseConv2D {
        padding: Padding::Same,
        stride: (1, 1),
        dilation: (1, 1),
        depth_multiplier: 1,
        activation: Activation::Relu6,
    };
    let d = b.node(Op::DepthwiseConv2D(dw), &[Some(a), Some(wd), Some(bd)], &[1, 8, 8, 8]);
    let (mut wb, mut bb) = (normal(rng, 64, 0.4), normal(rng, 8, 0.1));
    zero_rows(&mut wb, 8, dead1);
    zero_rows(&mut bb, 1, dead1);
    let wb = b.constant_f32("wb", &[8, 1, 1, 8], wb);
    let bb = b.constant_f32("bb", &[8], bb);
    let c = b.node(Op::Conv2D(conv(Activation::None, (1, 1))), &[Some(d), Some(wb), Some(bb)], &[1, 8, 8, 8]);
    let s = b.node(Op::Add { activation: Activation::Relu }, &[Some(a), Some(c)], &[1, 8, 8, 8]);
    let k = b.constant_f32("k", &[8], (0..8).map(|i| 0.5 + 0.1 * i as f32).collect());
    let m = b.node(Op::Mul { activation: Activation::None }, &[Some(s), Some(k)], &[1, 8, 8, 8]);
    let (mut wc, mut bc) = (normal(rng, 6 * 72, 0.3), normal(rng, 6, 0.1));
    zero_rows(&mut wc, 72, dead2);
    zero_rows(&mut bc, 1, dead2);
    let wc = b.constant_f32("wc", &[6, 3, 3, 8], wc);
    let bc = b.constant_f32("bc", &[6], bc);
    let e = b.node(Op::Conv2D(conv(Activation::Relu, (2, 2))), &[Some(m), Some(wc), Some(bc)], &[1, 4, 4, 6]);
    let shape = b.constant_i32("shape", &[2], vec![1, 96]);
    let f = b.node(Op::Reshape { new_shape: Some(vec![1, 96]) }, &[Some(e), Some(shape)], &[1, 96]);
    let wf = b.constant_f32("wf", &[5, 96], normal(rng, 480, 0.3));
    let bf = b.constant_f32("bf", &[5], normal(rng, 5, 0.1));
    let fc = FullyConnected { activation: Activation::None, keep_num_dims: false, asymmetric_quantize_inputs: false };
    let o = b.node(Op::FullyConnected(fc), &[Some(f), Some(wf), Some(bf)], &[1, 5]);
    let p = b.node(Op::Softmax { beta: 1.0 }, &[Some(o)], &[1, 5]);
    b.finish(&[p])
}

fn run(m: &Model, x: &[f32]) -> Vec<f32> {
    let mut it = Interpreter::new(m).unwrap();
    let mut out = Vec::new();
    for s in x.chunks(192) {
        it.set_input_f32(0, s).unwrap();
        it.invoke().unwrap();
        out.extend(it.output_f32(0).unwrap());
    }
    out
}

fn zeros(m: &Model, t: TensorId) -> usize {
    m.main().tensors[t].data.as_ref().and_then(|d| d.as_f32()).map_or(0, |a| a.iter().filter(|v| **v == 0.0).count())
}

fn opts(method: Method, sparsity: f64, structured: bool) -> PruneOptions {
    PruneOptions { method, sparsity, structured, ..PruneOptions::default() }
}

#[test]
fn unstructured_methods_hit_the_requested_sparsity() {
    let mut rng = Rng::new(1);
    let m = residual(&mut rng, &[], &[]);
    let x = normal(&mut rng, 4 * 192, 1.0);
    let data = || Some(GradientData { x: &x, shape: &[4, 8, 8, 3], labels: None });
    let layers = unstructured_layers(m.main(), false, false);
    assert_eq!(layers.len(), 3, "the classifier and the depthwise kernel are not pruned by default");
    assert_eq!(prunable_layers(m.main(), false).len(), 4);
    for method in
        [Method::GlobalMagnitude, Method::LayerMagnitude, Method::GlobalGradient, Method::LayerGradient, Method::Random]
    {
        for f in [0.25, 0.5, 0.9] {
            let (p, r) = prune(&m, data(), &opts(method, f, false), &mut |_, _, _| {}).unwrap();
            let total: usize = layers.iter().map(|l| m.main().tensors[l.weights].num_elements()).sum();
            let zeroed: usize = layers.iter().map(|l| zeros(&p, l.weights)).sum();
            assert_eq!(r.prunable_weights, total);
            // Within one weight per layer of exact.
            let want = f * total as f64;
            assert!((zeroed as f64 - want).abs() <= layers.len() as f64, "{method:?} {f}: {zeroed} zeros, want {want}");
            assert_eq!(r.removed_weights, zeroed);
            if !method.is_global() {
                for l in &layers {
                    let n = m.main().tensors[l.weights].num_elements();
                    assert!((zeros(&p, l.weights) as f64 - f * n as f64).abs() <= 1.0);
                }
            }
            // The classifier's and the depthwise layer's weights and every shape are untouched.
            let fc = m.main().nodes.iter().find(|n| matches!(n.op, Op::FullyConnected(_))).unwrap().input(1).unwrap();
            assert_eq!(zeros(&p, fc), 0);
            let dw = m.main().nodes.iter().find(|n| matches!(n.op, Op::DepthwiseConv2D(_))).unwrap().input(1).unwrap();
            assert_eq!(zeros(&p, dw), 0);
            assert_eq!(r.after.macs, r.before.macs);
            assert!(r.after.effective_macs < r.before.effective_macs);
            assert_eq!(run(&p, &x).len(), 20);
        }
    }
}

#[test]
fn depthwise_kernels_are_pruned_only_on_request() {
    let mut rng = Rng::new(3);
    let m = residual(&mut rng, &[], &[]);
    let dw = m.main().nodes.iter().find(|n| matches!(n.op, Op::DepthwiseConv2D(_))).unwrap().input(1).unwrap();
    let n = m.main().tensors[dw].num_elements();
    for method in [Method::LayerMagnitude, Method::GlobalMagnitude] {
        let o = PruneOptions { include_depthwise: true, ..opts(method, 0.5, false) };
        let (p, r) = prune(&m, None, &o, &mut |_, _, _| {}).unwrap();
        assert!(zeros(&p, dw) > 0, "{method:?}");
        let total: usize =
            prunable_layers(m.main(), false).iter().map(|l| m.main().tensors[l.weights].num_elements()).sum();
        assert_eq!(r.prunable_weights, total, "{method:?}");
        if method == Method::LayerMagnitude {
            assert_eq!(zeros(&p, dw), (0.5 * n as f64).round() as usize);
        }
    }
}

#[test]
fn global_pruning_never_empties_an_output_unit() {
    let mut rng = Rng::new(2);
    let mut m = residual(&mut rng, &[], &[]);
    // Layer C's weights are tiny: a plain global ranking would remove all of them.
    let wc = m.main().nodes.iter().filter(|n| matches!(n.op, Op::Conv2D(_))).nth(2).unwrap().input(1).unwrap();
    if let Some(crate::ir::TensorData::F32(a)) = m.main_mut().tensors[wc].data.as_mut() {
        a.mapv_inplace(|v| v * 1e-4);
    }
    let (p, r) = prune(&m, None, &opts(Method::GlobalMagnitude, 0.6, false), &mut |_, _, _| {}).unwrap();
    let w = p.main().tensors[wc].data.as_ref().and_then(|d| d.as_f32()).unwrap();
    for row in w.as_slice().unwrap().chunks(72) {
        assert_eq!(row.iter().filter(|v| **v != 0.0).count(), 1, "each filter keeps its best weight");
    }
    assert!(r.notes.iter().any(|n| n.contains("kept the best weight of 6 output units")), "{:?}", r.notes);
}

#[test]
fn random_is_reproducible_and_gradient_methods_need_data() {
    let mut rng = Rng::new(3);
    let m = residual(&mut rng, &[], &[]);
    let o = |seed| PruneOptions { seed, ..opts(Method::Random, 0.5, false) };
    let (a, _) = prune(&m, None, &o(7), &mut |_, _, _| {}).unwrap();
    let (b, _) = prune(&m, None, &o(7), &mut |_, _, _| {}).unwrap();
    let (c, _) = prune(&m, None, &o(8), &mut |_, _, _| {}).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let err = prune(&m, None, &opts(Method::LayerGradient, 0.5, false), &mut |_, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("needs data"), "{err}");
    assert!(prune(&m, None, &opts(Method::Random, 1.0, false), &mut |_, _, _| {}).is_err());
}

#[test]
fn structured_pruning_removes_dead_channels_without_changing_outputs() {
    let mut rng = Rng::new(4);
    let m = residual(&mut rng, &[2, 5], &[3]);
    let x = normal(&mut rng, 3 * 192, 1.0);
    let (p, r) = prune(&m, None, &opts(Method::GlobalMagnitude, 0.2, true), &mut |_, _, _| {}).unwrap();
    let (before, after) = r.channels.unwrap();
    assert_eq!(before, 14, "the residual group (8) and C's output (6)");
    assert!(after < before && after >= 11, "{before} -> {after}");
    let (a, b) = (run(&m, &x), run(&p, &x));
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() < 1e-5, "outputs changed: {a:?} vs {b:?}");
    }
    assert!(r.after.macs < r.before.macs && r.after.size_bytes < r.before.size_bytes);
}

#[test]
fn structured_pruning_shrinks_residual_groups_together() {
    let mut rng = Rng::new(5);
    let m = residual(&mut rng, &[], &[]);
    let x = normal(&mut rng, 4 * 192, 1.0);
    let data = || Some(GradientData { x: &x, shape: &[4, 8, 8, 3], labels: None });
    for method in
        [Method::GlobalMagnitude, Method::LayerMagnitude, Method::GlobalGradient, Method::LayerGradient, Method::Random]
    {
        let (p, r) = prune(&m, data(), &opts(method, 0.5, true), &mut |_, _, _| {}).unwrap();
        let g = p.main();
        let add = g.nodes.iter().find(|n| matches!(n.op, Op::Add { .. })).unwrap();
        let (l, rr) = (&g.tensors[add.input(0).unwrap()].shape, &g.tensors[add.input(1).unwrap()].shape);
        assert_eq!(l, rr, "{method:?}: both residual branches keep the same channels");
        assert!(l[3] >= 1 && (method.is_global() || l[3] < 8), "{method:?}: residual group pruned to {}", l[3]);
        // About half of the weights are gone, and the model still runs.
        assert!((r.achieved_sparsity - 0.5).abs() < 0.15, "{method:?}: {}", r.achieved_sparsity);
        assert!(r.after.params < r.before.params);
        assert_eq!(run(&p, &x).len(), 20);
        let fc = g.nodes.iter().find(|n| matches!(n.op, Op::FullyConnected(_))).unwrap();
        let conv_c = g.nodes.iter().filter(|n| matches!(n.op, Op::Conv2D(_))).nth(2).unwrap();
        let kept_c = g.tensors[conv_c.input(1).unwrap()].shape[0];
        assert_eq!(
            g.tensors[fc.input(1).unwrap()].shape,
            vec![5, 16 * kept_c],
            "{method:?}: flatten columns follow C's channels"
        );
    }
}
