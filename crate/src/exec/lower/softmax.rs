//! SOFTMAX over the last dimension, float and int8 (TFLite's fixed-point exponentials).

use super::LowerCx;
use crate::error::Result;
use crate::exec::kernel::{out_f32, out_i8, Kernel, RunCx};
use crate::ir::DType;
use crate::kernels::int8::pointwise::SoftmaxParams;
use crate::kernels::reduce;

pub(super) fn softmax(beta: f32, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let depth = *x.shape.last().ok_or_else(|| cx.node.err("SOFTMAX of a scalar"))?;
    if x.dtype == DType::I8 {
        let (si, _) = cx.node.act_qparams(x, "input")?;
        return Ok(Box::new(SoftmaxI8 { p: SoftmaxParams::new(beta, si), depth }));
    }
    Ok(Box::new(SoftmaxF32 { depth, beta }))
}

struct SoftmaxF32 {
    depth: usize,
    beta: f32,
}

impl Kernel for SoftmaxF32 {
    fn name(&self) -> &'static str {
        "softmax-f32"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        reduce::softmax_f32(cx.f32_in(0)?, self.depth, self.beta, out_f32(cx.out)?);
        Ok(())
    }
}

struct SoftmaxI8 {
    p: SoftmaxParams,
    depth: usize,
}

impl Kernel for SoftmaxI8 {
    fn name(&self) -> &'static str {
        "softmax-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        self.p.run(cx.i8_in(0)?, self.depth, out_i8(cx.out)?);
        Ok(())
    }
}
