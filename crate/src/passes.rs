//! Graph rewrites that keep a model's meaning: constant folding.

use ndarray::{ArrayD, IxDyn};

use crate::error::Result;
use crate::exec::{Buffer, Interpreter};
use crate::ir::{DType, Model, TensorData, TensorId};
use crate::ops::{self, Fact, InferOptions, Known};

fn data_of(buf: &Buffer, shape: &[usize]) -> Option<TensorData> {
    let s = IxDyn(shape);
    Some(match buf {
        Buffer::F32(v) => TensorData::F32(ArrayD::from_shape_vec(s, v.clone()).ok()?),
        Buffer::I8(v) => TensorData::I8(ArrayD::from_shape_vec(s, v.clone()).ok()?),
        Buffer::U8(v) => TensorData::U8(ArrayD::from_shape_vec(s, v.clone()).ok()?),
        Buffer::I16(v) => TensorData::I16(ArrayD::from_shape_vec(s, v.clone()).ok()?),
        Buffer::I32(v) => TensorData::I32(ArrayD::from_shape_vec(s, v.clone()).ok()?),
        Buffer::I64(v) => TensorData::I64(ArrayD::from_shape_vec(s, v.clone()).ok()?),
        Buffer::Bool(_) | Buffer::Empty => return None,
    })
}

/// Replaces every node whose result is known before any input arrives (all operands constant, or a
/// SHAPE of a static tensor) by a constant tensor. Keras' Flatten (SHAPE → STRIDED_SLICE → PACK →
/// RESHAPE) becomes a RESHAPE with a constant shape, and float16 weights with their DEQUANTIZE
/// become float32 constants. Returns the rewritten model and how many nodes were folded.
///
/// Shape arithmetic folds from the operators' specs alone; the engine is prepared only when a node
/// computes a constant from constant data (such as DEQUANTIZE of float16 weights).
pub fn fold_constants(model: &Model) -> Result<(Model, usize)> {
    let g = model.main();
    let facts = ops::infer(g, &InferOptions::default())?;
    let known = |t: TensorId| facts.get(t).is_some_and(Fact::is_known);
    let foldable: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| {
            let n = &g.nodes[i];
            n.output()
                .is_some_and(|o| known(o) || (!n.inputs.is_empty() && n.inputs.iter().flatten().all(|&t| known(t))))
        })
        .collect();
    let needs_engine = foldable.iter().any(|&i| g.nodes[i].output().is_some_and(|o| !known(o)));
    let engine = if needs_engine { Some(Interpreter::new(model)?) } else { None };
    let mut out = model.clone();
    let g = out.main_mut();
    let mut removed = vec![false; g.nodes.len()];
    for &ni in &foldable {
        let Some(o) = g.nodes[ni].output() else { continue };
        // Graph outputs keep their producing node (a model must compute something).
        if g.outputs.contains(&o) {
            continue;
        }
        let Some(f) = facts.get(o) else { continue };
        let data = match (&f.known, &engine) {
            (Known::Folded(v), _) => Some(v.as_ref().clone()),
            (_, Some(it)) => it.tensor(o).and_then(|b| data_of(b, &f.shape)),
            _ => None,
        };
        let Some(data) = data else { continue };
        let t = &mut g.tensors[o];
        t.dtype = if t.dtype == DType::F16 { DType::F32 } else { f.dtype };
        t.shape = f.shape.clone();
        t.shape_signature = None;
        t.data = Some(data);
        removed[ni] = true;
    }
    let count = removed.iter().filter(|&&r| r).count();
    let mut i = 0;
    g.nodes.retain(|_| {
        let keep = !removed[i];
        i += 1;
        keep
    });
    // The folded tensors' inputs are gone: number tensors as the written model will.
    out.drop_unused_tensors();
    out.validate()?;
    Ok((out, count))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::Op;

    #[test]
    fn keras_flatten_folds_to_a_constant_reshape() {
        let bytes = include_bytes!("../../tests/fixtures/mlp/model_float.tflite");
        let m = crate::tflite::read(bytes).unwrap();
        assert!(m.main().nodes.iter().any(|n| matches!(n.op, Op::Shape { .. })));
        let compiled = crate::exec::plans_compiled();
        let (folded, count) = fold_constants(&m).unwrap();
        assert_eq!(crate::exec::plans_compiled(), compiled, "shape arithmetic folds without the engine");
        assert_eq!(count, 3, "SHAPE, STRIDED_SLICE and PACK fold");
        assert!(!folded.main().nodes.iter().any(|n| matches!(n.op, Op::Shape { .. } | Op::Pack { .. })));
        let x: Vec<f32> = (0..256).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |m: &Model| {
            let mut it = Interpreter::new(m).unwrap();
            it.set_input_f32(0, &x).unwrap();
            it.invoke().unwrap();
            it.output_f32(0).unwrap()
        };
        assert_eq!(run(&m), run(&folded));
        // The folded model writes and reads back.
        let again = crate::tflite::read(&crate::tflite::write(&folded).unwrap()).unwrap();
        assert_eq!(run(&again), run(&m));
    }
}
