//! AVERAGE_POOL_2D and MAX_POOL_2D over NHWC windows. In int8 the output shares the input's
//! parameters.

use super::cx::{same_qparams, NodeCx};
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;
use crate::ir::{DType, Pool2D};
use crate::kernels::conv::ConvShape;
use crate::kernels::geometry::{Window, Window2D};

/// AVERAGE_POOL_2D or MAX_POOL_2D (the two share every rule).
pub struct Pool<'a>(pub &'a Pool2D);

/// The window geometry of a pooling node over an NHWC input, or `None` if it does not fit.
pub fn pool_shape(p: &Pool2D, input: &[usize]) -> Option<ConvShape> {
    if input.len() != 4 {
        return None;
    }
    let h = Window::new(p.padding, input[1], p.filter.0, p.stride.0, 1)?;
    let w = Window::new(p.padding, input[2], p.filter.1, p.stride.1, 1)?;
    Some(ConvShape { batch: input[0], in_c: input[3], out_c: input[3], win: Window2D { h, w } })
}

impl OpSpec for Pool<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        if x.shape.len() != 4 {
            return Err(cx.err(format!("input must have rank 4 (NHWC), has shape {:?}", x.shape)));
        }
        let p = self.0;
        let s = pool_shape(p, &x.shape).ok_or_else(|| {
            cx.err(format!(
                "a {}x{} window (stride {:?}, {:?} padding) does not fit a {}x{} input",
                p.filter.0, p.filter.1, p.stride, p.padding, x.shape[1], x.shape[2]
            ))
        })?;
        match x.dtype {
            DType::I8 => {
                let (s_out, zp_out) = cx.out_qparams()?;
                if !same_qparams(&x.quant, &cx.out_quant()) {
                    return Err(cx.unsupported("int8 pooling whose output parameters differ from its input's"));
                }
                cx.clamp_i8(p.activation, s_out, zp_out)?;
            }
            _ => {
                cx.float_only(x, "input")?;
                cx.clamp(p.activation)?;
            }
        }
        Ok(vec![cx.output(x.dtype, vec![s.batch, s.out_h(), s.out_w(), s.in_c])?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SameAsInput
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
