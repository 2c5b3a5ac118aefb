#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::exec::Interpreter;
use crate::ir::{Activation, Builder, Conv2D, DepthwiseConv2D, FullyConnected, Padding, Pool2D, TensorData};
use crate::ir::{Model, Op, TensorId};
use crate::rng::Rng;

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

fn normal(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

/// A small graph through every differentiable kind of step: PAD, CONV_2D (ReLU), depthwise with a
/// multiplier, a residual ADD, CONCATENATION, MAX_POOL, TRANSPOSE, MEAN, TANH, MUL by a constant,
/// FULLY_CONNECTED and SOFTMAX.
fn model(rng: &mut Rng) -> Model {
    let mut b = Builder::new();
    let x = b.input("x", &[1, 5, 5, 2]);
    let pads = b.constant_i32("pads", &[4, 2], vec![0, 0, 1, 0, 0, 1, 0, 0]);
    let xp = b.node(Op::Pad, &[Some(x), Some(pads)], &[1, 6, 6, 2]);
    let conv = |act, stride| Conv2D { padding: Padding::Same, stride, dilation: (1, 1), activation: act };
    let w1 = b.constant_f32("w1", &[3, 3, 3, 2], normal(rng, 54, 0.4));
    let b1 = b.constant_f32("b1", &[3], normal(rng, 3, 0.1));
    let c1 = b.node(Op::Conv2D(conv(Activation::Relu, (1, 1))), &[Some(xp), Some(w1), Some(b1)], &[1, 6, 6, 3]);
    let w2 = b.constant_f32("w2", &[1, 3, 3, 6], normal(rng, 54, 0.4));
    let b2 = b.constant_f32("b2", &[6], normal(rng, 6, 0.1));
    let dw = DepthwiseConv2D {
        padding: Padding::Same,
        stride: (2, 2),
        dilation: (1, 1),
        depth_multiplier: 2,
        activation: Activation::None,
    };
    let d1 = b.node(Op::DepthwiseConv2D(dw), &[Some(c1), Some(w2), Some(b2)], &[1, 3, 3, 6]);
    let w3 = b.constant_f32("w3", &[6, 1, 1, 6], normal(rng, 36, 0.4));
    let c2 = b.node(Op::Conv2D(conv(Activation::None, (1, 1))), &[Some(d1), Some(w3), None], &[1, 3, 3, 6]);
    let a = b.node(Op::Add { activation: Activation::Relu6 }, &[Some(d1), Some(c2)], &[1, 3, 3, 6]);
    let cat = b.node(Op::Concatenation { axis: 3, activation: Activation::None }, &[Some(a), Some(d1)], &[1, 3, 3, 12]);
    let pool = Pool2D { padding: Padding::Valid, stride: (1, 1), filter: (2, 2), activation: Activation::None };
    let p = b.node(Op::MaxPool2D(pool), &[Some(cat)], &[1, 2, 2, 12]);
    let perm = b.constant_i32("perm", &[4], vec![0, 3, 1, 2]);
    let tr = b.node(Op::Transpose, &[Some(p), Some(perm)], &[1, 12, 2, 2]);
    let axes = b.constant_i32("axes", &[2], vec![2, 3]);
    let m = b.node(Op::Mean { keep_dims: false }, &[Some(tr), Some(axes)], &[1, 12]);
    let h = b.node(Op::Tanh, &[Some(m)], &[1, 12]);
    let scale = b.constant_f32("scale", &[12], (0..12).map(|i| 0.5 + 0.1 * i as f32).collect());
    let t = b.node(Op::Mul { activation: Activation::None }, &[Some(h), Some(scale)], &[1, 12]);
    let w4 = b.constant_f32("w4", &[5, 12], normal(rng, 60, 0.6));
    let b4 = b.constant_f32("b4", &[5], normal(rng, 5, 0.1));
    let fc = FullyConnected { activation: Activation::None, keep_num_dims: false, asymmetric_quantize_inputs: false };
    let f = b.node(Op::FullyConnected(fc), &[Some(t), Some(w4), Some(b4)], &[1, 5]);
    let s = b.node(Op::Softmax { beta: 1.5 }, &[Some(f)], &[1, 5]);
    b.finish(&[s])
}

fn set(model: &mut Model, t: TensorId, i: usize, v: f32) {
    if let Some(TensorData::F32(a)) = model.main_mut().tensors[t].data.as_mut() {
        a.as_slice_mut().expect("contiguous")[i] = v;
    }
}

fn get(model: &Model, t: TensorId, i: usize) -> f32 {
    model.main().tensors[t].data.as_ref().and_then(|d| d.as_f32()).map_or(0.0, |a| a.as_slice().unwrap()[i])
}

#[test]
fn gradients_agree_with_finite_differences() {
    let mut rng = Rng::new(42);
    let mut m = model(&mut rng);
    let n = 3;
    let x = normal(&mut rng, n * 50, 1.0);
    let labels = [1i64, 4, 0];
    let grads = gradients(&m, &x, &[n, 5, 5, 2], Some(&labels), &mut |_, _, _| {}).unwrap();
    let l0 = loss(&m, &x, &[n, 5, 5, 2], &labels).unwrap();
    assert!((grads.loss - l0).abs() < 1e-5, "loss {} vs {l0}", grads.loss);
    let weighted: Vec<TensorId> = grads.weights.iter().enumerate().filter_map(|(t, g)| g.as_ref().map(|_| t)).collect();
    assert_eq!(weighted.len(), 7, "3 convolutions' weights + 3 biases, and the FC's pair, less the missing bias");
    // Central differences at two step sizes: where they disagree, a step crossed a ReLU or
    // max-pool kink and the difference says nothing; elsewhere the gradient must match.
    let fd = |m: &mut Model, t: TensorId, i: usize, h: f32| {
        let w = get(m, t, i);
        set(m, t, i, w + h);
        let up = loss(m, &x, &[n, 5, 5, 2], &labels).unwrap();
        set(m, t, i, w - h);
        let down = loss(m, &x, &[n, 5, 5, 2], &labels).unwrap();
        set(m, t, i, w);
        (up - down) / (2.0 * h as f64)
    };
    let (mut checked, mut kinked, mut bad) = (0, 0, Vec::new());
    for &t in &weighted {
        let g = grads.weights[t].clone().unwrap();
        for (i, &gi) in g.iter().enumerate() {
            let (coarse, fine) = (fd(&mut m, t, i, 1e-2), fd(&mut m, t, i, 5e-3));
            if (coarse - fine).abs() > 1e-4 + 0.01 * fine.abs() {
                kinked += 1;
                continue;
            }
            checked += 1;
            if (fine - gi as f64).abs() > 1e-4 + 0.02 * fine.abs() {
                bad.push((m.main().tensors[t].name.clone(), i, gi, fine));
            }
        }
    }
    assert!(bad.is_empty(), "{} of {checked} gradients disagree: {:?}", bad.len(), &bad[..bad.len().min(8)]);
    assert!(checked > 180 && kinked * 5 < checked, "{checked} checked, {kinked} across kinks");
}

#[test]
fn labels_default_to_own_predictions_and_bad_input_is_refused() {
    let mut rng = Rng::new(7);
    let m = model(&mut rng);
    let x = normal(&mut rng, 2 * 50, 1.0);
    let own = gradients(&m, &x, &[2, 5, 5, 2], None, &mut |_, _, _| {}).unwrap();
    // With the model's own top-1 as labels the loss is the smallest possible for each sample.
    let mut it = Interpreter::new(&m).unwrap();
    let mut labels = Vec::new();
    for i in 0..2 {
        it.set_input_f32(0, &x[i * 50..(i + 1) * 50]).unwrap();
        it.invoke().unwrap();
        labels.push(argmax(&it.output_f32(0).unwrap()) as i64);
    }
    let with = gradients(&m, &x, &[2, 5, 5, 2], Some(&labels), &mut |_, _, _| {}).unwrap();
    assert!((own.loss - with.loss).abs() < 1e-9);
    assert!(gradients(&m, &x, &[2, 5, 5, 3], None, &mut |_, _, _| {}).is_err());
    let err = gradients(&m, &x, &[2, 5, 5, 2], Some(&[0, 9]), &mut |_, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("label 9"), "{err}");
}
