//! SOFTMAX over the last dimension, `exp(β·x) / Σ exp(β·x)`. Its int8 output is fixed at scale
//! 1/256 and zero point -128.

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;
use crate::ir::DType;

pub struct Softmax(pub f32);

impl OpSpec for Softmax {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        if x.shape.is_empty() {
            return Err(cx.err("SOFTMAX of a scalar"));
        }
        if !self.0.is_finite() {
            return Err(cx.err(format!("SOFTMAX beta {} is not finite", self.0)));
        }
        if x.dtype == DType::I8 {
            cx.act_qparams(x, "input")?;
            let (so, zo) = cx.out_qparams()?;
            if zo != -128 || (so - 1.0 / 256.0).abs() > 0.001 / 256.0 {
                return Err(
                    cx.err(format!("int8 SOFTMAX output must have scale 1/256 and zero point -128, has {so} and {zo}"))
                );
            }
        } else {
            cx.float_only(x, "input")?;
        }
        Ok(vec![cx.output(x.dtype, x.shape.clone())?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Fixed { scale: 1.0 / 256.0, zero_point: -128 }
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
