//! MEAN and REDUCE_MAX over constant axes (operand 1), keeping reduced dimensions as 1 or dropping
//! them. In int8, REDUCE_MAX's output shares its input's parameters; MEAN rescales.

use super::cx::{same_qparams, NodeCx};
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;
use crate::ir::DType;
use crate::kernels::reduce::reduced_dims;

pub struct Reduce {
    pub keep_dims: bool,
    pub mean: bool,
}

/// Which dimensions the node reduces: from its axes operand, checked against the input's rank.
pub fn reduced_axes(cx: &NodeCx, rank: usize) -> Result<Vec<bool>> {
    let axes = cx.value_i64(1, "axes")?;
    reduced_dims(&axes, rank).ok_or_else(|| cx.err(format!("axes {axes:?} out of range for rank {rank}")))
}

impl OpSpec for Reduce {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let reduced = reduced_axes(cx, x.shape.len())?;
        let shape: Vec<usize> = x
            .shape
            .iter()
            .zip(&reduced)
            .filter_map(|(&d, &r)| match (r, self.keep_dims) {
                (true, true) => Some(1),
                (true, false) => None,
                (false, _) => Some(d),
            })
            .collect();
        if x.dtype == DType::I8 {
            cx.act_qparams(x, "input")?;
            cx.out_qparams()?;
            if !self.mean && !same_qparams(&x.quant, &cx.out_quant()) {
                return Err(cx.unsupported("int8 REDUCE_MAX whose output parameters differ from its input's"));
            }
        } else {
            cx.float_only(x, "input")?;
        }
        Ok(vec![cx.output(x.dtype, shape)?])
    }

    fn int8(&self) -> Int8Rule {
        if self.mean {
            Int8Rule::Calibrated
        } else {
            Int8Rule::SameAsInput
        }
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
