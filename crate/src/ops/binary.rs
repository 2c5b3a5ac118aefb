//! ADD, SUB and MUL with NumPy broadcasting and a fused clamp. In int8 both operands and the
//! output have their own parameters.

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec, Role};
use crate::error::Result;
use crate::ir::{Activation, DType};
use crate::kernels::elementwise::broadcast_shape;

/// ADD, SUB or MUL with its fused activation (the three share every rule).
pub struct Binary(pub Activation);

impl OpSpec for Binary {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let (a, b) = (cx.input(0, "first")?, cx.input(1, "second")?);
        let shape = broadcast_shape(&a.shape, &b.shape)
            .ok_or_else(|| cx.err(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
        if a.dtype == DType::I8 && b.dtype == DType::I8 {
            cx.act_qparams(a, "first")?;
            cx.act_qparams(b, "second")?;
            let (s, z) = cx.out_qparams()?;
            cx.clamp_i8(self.0, s, z)?;
        } else {
            cx.float_only(a, "first operand")?;
            cx.float_only(b, "second operand")?;
            cx.clamp(self.0)?;
        }
        Ok(vec![cx.output(a.dtype, shape)?])
    }

    fn role(&self, _input: usize) -> Role {
        Role::Activation
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Calibrated
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
