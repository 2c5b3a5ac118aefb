//! Element-wise activations: LOGISTIC, TANH, RELU, RELU6, LEAKY_RELU, HARD_SWISH. The output has
//! the input's shape; in int8, LOGISTIC and TANH have fixed output parameters.

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;
use crate::ir::DType;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    Logistic,
    Tanh,
    Relu,
    Relu6,
    LeakyRelu(f32),
    HardSwish,
}

pub struct Unary(pub UnaryKind);

impl OpSpec for Unary {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        if x.dtype == DType::I8 {
            cx.act_qparams(x, "input")?;
            let (s, z) = cx.out_qparams()?;
            if let Int8Rule::Fixed { scale, zero_point } = self.int8() {
                if z as i64 != zero_point || (s - scale).abs() > scale * 1e-3 {
                    return Err(cx.err(format!(
                        "int8 {} output must have scale {scale} and zero point {zero_point}, has {s} and {z}",
                        cx.op_name()
                    )));
                }
            }
        } else {
            cx.float_only(x, "input")?;
        }
        Ok(vec![cx.output(x.dtype, x.shape.clone())?])
    }

    fn int8(&self) -> Int8Rule {
        match self.0 {
            UnaryKind::Logistic => Int8Rule::Fixed { scale: 1.0 / 256.0, zero_point: -128 },
            UnaryKind::Tanh => Int8Rule::Fixed { scale: 1.0 / 128.0, zero_point: 0 },
            // TFLite Micro's int8 RELU6 clamps the input codes and never rescales: the output must
            // carry the input's parameters (LiteRT computes the same then).
            UnaryKind::Relu6 => Int8Rule::SameAsInput,
            _ => Int8Rule::Calibrated,
        }
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
