//! Backward of element-wise operators: ADD, SUB and MUL (summing over broadcast dimensions), the
//! activations, and SOFTMAX.

use super::{through_clamp, BackCx, OperandGrads};
use crate::error::Result;
use crate::ir::Activation;
use crate::kernels::elementwise;
use crate::ops::UnaryKind;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum BinaryKind {
    Add,
    Sub,
    Mul,
}

pub(super) fn binary(kind: BinaryKind, act: Activation, cx: &mut BackCx) -> Result<OperandGrads> {
    let dz = through_clamp(cx, act)?;
    let (af, bf) = (cx.node.input(0, "first")?, cx.node.input(1, "second")?);
    let out_shape = elementwise::broadcast_shape(&af.shape, &bf.shape).ok_or_else(|| cx.node.err("broadcast"))?;
    if af.shape == bf.shape && af.len() == dz.len() {
        return same_shape(kind, dz, cx);
    }
    // For each output element, the elements of `a` and `b` it was computed from.
    let ia: Vec<u32> = (0..af.len() as u32).collect();
    let ib: Vec<u32> = (0..bf.len() as u32).collect();
    let mut pairs = vec![(0u32, 0u32); dz.len()];
    elementwise::binary(&ia, &af.shape, &ib, &bf.shape, &out_shape, &mut pairs, |p, q| (p, q));
    let mut grads = cx.empty();
    if cx.need[0] {
        let b = if kind == BinaryKind::Mul { Some(cx.value(1)?) } else { None };
        let mut da = vec![0.0f32; af.len()];
        for (&(p, q), &d) in pairs.iter().zip(&dz) {
            da[p as usize] += b.map_or(d, |b| d * b[q as usize]);
        }
        grads[0] = Some(da);
    }
    if cx.need[1] {
        let a = if kind == BinaryKind::Mul { Some(cx.value(0)?) } else { None };
        let mut db = vec![0.0f32; bf.len()];
        for (&(p, q), &d) in pairs.iter().zip(&dz) {
            db[q as usize] += match (kind, a) {
                (BinaryKind::Sub, _) => -d,
                (_, Some(a)) => d * a[p as usize],
                _ => d,
            };
        }
        grads[1] = Some(db);
    }
    Ok(grads)
}

/// [`binary`] without broadcasting: element `i` of the output gradient goes to element `i` of each
/// operand (the residual ADD of a ResNet block, on every step).
fn same_shape(kind: BinaryKind, dz: Vec<f32>, cx: &BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    let times = |v: &[f32]| dz.iter().zip(v).map(|(&d, &x)| d * x).collect::<Vec<f32>>();
    if cx.need[1] {
        grads[1] = Some(match kind {
            BinaryKind::Add => dz.clone(),
            BinaryKind::Sub => dz.iter().map(|&d| -d).collect(),
            BinaryKind::Mul => times(cx.value(0)?),
        });
    }
    if cx.need[0] {
        grads[0] = Some(match kind {
            BinaryKind::Mul => times(cx.value(1)?),
            _ => dz,
        });
    }
    Ok(grads)
}

/// The derivative of an activation at input `v` with output `o`.
fn derivative(kind: UnaryKind, v: f32, o: f32) -> f32 {
    match kind {
        UnaryKind::Logistic => o * (1.0 - o),
        UnaryKind::Tanh => 1.0 - o * o,
        UnaryKind::Relu => f32::from(v > 0.0),
        UnaryKind::Relu6 => f32::from(v > 0.0 && v < 6.0),
        UnaryKind::LeakyRelu(a) => {
            if v > 0.0 {
                1.0
            } else {
                a
            }
        }
        UnaryKind::HardSwish => {
            if v < -3.0 {
                0.0
            } else if v > 3.0 {
                1.0
            } else {
                (2.0 * v + 3.0) / 6.0
            }
        }
    }
}

pub(super) fn unary(kind: UnaryKind, cx: &mut BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    if cx.need[0] {
        let x = cx.value(0)?;
        grads[0] = Some(x.iter().zip(cx.y).zip(cx.dy).map(|((&v, &o), &d)| d * derivative(kind, v, o)).collect());
    }
    Ok(grads)
}

pub(super) fn softmax(beta: f32, cx: &mut BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    if cx.need[0] {
        let depth = cx.node.input(0, "input")?.shape.last().copied().unwrap_or(1).max(1);
        let mut dx = vec![0.0f32; cx.y.len()];
        for ((p, d), o) in cx.y.chunks(depth).zip(cx.dy.chunks(depth)).zip(dx.chunks_mut(depth)) {
            let dot: f32 = p.iter().zip(d).map(|(a, b)| a * b).sum();
            for ((o, &p), &d) in o.iter_mut().zip(p).zip(d) {
                *o = beta * p * (d - dot);
            }
        }
        grads[0] = Some(dx);
    }
    Ok(grads)
}

/// The straight-through estimator: the gradient passes where the input lies inside the range the
/// int8 tensor represents, and is zero where quantization clamps it.
pub(super) fn fake_quant(cx: &mut BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    if cx.need[0] {
        let (x, lo, hi) = (cx.value(0)?, cx.value(1)?, cx.value(2)?);
        let (scale, zp) = crate::kernels::quant::int8_params(lo[0], hi[0]);
        let (min, max) = ((-128 - zp) as f32 * scale, (127 - zp) as f32 * scale);
        grads[0] = Some(x.iter().zip(cx.dy).map(|(&v, &d)| if v >= min && v <= max { d } else { 0.0 }).collect());
    }
    Ok(grads)
}
