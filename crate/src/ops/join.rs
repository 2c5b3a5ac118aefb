//! CONCATENATION and PACK (joining inputs along an axis) and SHAPE. Int8 inputs of a join share
//! the output's parameters. On integer shape values known during inference, all three fold.

use super::cx::{same_qparams, NodeCx};
use super::movement::int_data;
use super::{Fact, Gradient, Int8Rule, OpSpec, Role};
use crate::error::Result;
use crate::ir::{Activation, DType, TensorData};

pub struct Concat {
    pub axis: i32,
    pub activation: Activation,
}
pub struct Pack(pub i32);
pub struct ShapeOf(pub DType);

/// `axis` (negative counts from the end) normalized for `rank` dimensions.
pub fn normalize_axis(cx: &NodeCx, axis: i32, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis as i64 + rank as i64 } else { axis as i64 };
    if a < 0 || a >= rank as i64 {
        return Err(cx.err(format!("axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Inputs must share the output's parameters (int8) and type.
fn check_joined(cx: &NodeCx, ins: &[&Fact]) -> Result<()> {
    let out_quant = cx.out_quant();
    for t in ins {
        if t.dtype != ins[0].dtype {
            return Err(cx.err(format!("inputs of types {} and {} cannot be joined", ins[0].dtype, t.dtype)));
        }
        if t.dtype != DType::F32 && out_quant.is_some() && !same_qparams(&t.quant, &out_quant) {
            return Err(cx.unsupported(format!("{} of inputs with different quantization", cx.op_name())));
        }
    }
    Ok(())
}

/// The known integer values of every input, joined in order (PACK and CONCATENATION of shape
/// values along their only or first axis).
fn fold_join(cx: &NodeCx, out: &Fact, flat: bool) -> Option<TensorData> {
    if !flat {
        return None;
    }
    let mut values = Vec::new();
    for i in 0..cx.node.inputs.len() {
        values.extend(cx.value(i)?.to_i64_vec()?);
    }
    int_data(out.dtype, &out.shape, values)
}

impl OpSpec for Concat {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        if self.activation != Activation::None {
            return Err(cx.unsupported("CONCATENATION with a fused activation"));
        }
        let ins = cx.all_inputs("input")?;
        let first = ins.first().ok_or_else(|| cx.err("CONCATENATION without inputs"))?;
        let a = normalize_axis(cx, self.axis, first.shape.len())?;
        let mut shape = first.shape.clone();
        shape[a] = 0;
        for t in &ins {
            let fits = t.shape.len() == first.shape.len()
                && t.shape.iter().zip(&first.shape).enumerate().all(|(d, (x, y))| d == a || x == y);
            if !fits {
                return Err(
                    cx.err(format!("input shapes {:?} and {:?} do not concatenate on axis {a}", first.shape, t.shape))
                );
            }
            shape[a] = shape[a].checked_add(t.shape[a]).ok_or_else(|| cx.err("concatenated size overflows"))?;
        }
        check_joined(cx, &ins)?;
        Ok(vec![cx.output(first.dtype, shape)?])
    }

    fn role(&self, _input: usize) -> Role {
        Role::Activation
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SharedWithInputs
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }

    fn fold(&self, cx: &NodeCx, out: &Fact) -> Result<Option<TensorData>> {
        Ok(fold_join(cx, out, out.shape.len() == 1))
    }
}

impl OpSpec for Pack {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let ins = cx.all_inputs("input")?;
        let first = ins.first().ok_or_else(|| cx.err("PACK without inputs"))?;
        let a = normalize_axis(cx, self.0, first.shape.len() + 1)?;
        if ins.iter().any(|t| t.shape != first.shape) {
            return Err(cx.err("PACK inputs must have the same shape and type"));
        }
        check_joined(cx, &ins)?;
        let mut shape = first.shape.clone();
        shape.insert(a, ins.len());
        Ok(vec![cx.output(first.dtype, shape)?])
    }

    fn role(&self, _input: usize) -> Role {
        Role::Activation
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SharedWithInputs
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }

    fn fold(&self, cx: &NodeCx, out: &Fact) -> Result<Option<TensorData>> {
        Ok(fold_join(cx, out, out.shape.len() == 1))
    }
}

impl OpSpec for ShapeOf {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        if !matches!(self.0, DType::I32 | DType::I64) {
            return Err(cx.unsupported(format!("SHAPE of type {}", self.0)));
        }
        Ok(vec![cx.output_with(self.0, vec![x.shape.len()], None)?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::ShapeOnly
    }

    fn gradient(&self) -> Gradient {
        Gradient::Stops
    }

    fn fold(&self, cx: &NodeCx, out: &Fact) -> Result<Option<TensorData>> {
        let x = cx.input(0, "input")?;
        Ok(int_data(out.dtype, &out.shape, x.shape.iter().map(|&d| d as i64).collect()))
    }
}
