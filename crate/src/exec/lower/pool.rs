//! AVERAGE_POOL_2D and MAX_POOL_2D, float and int8.

use super::LowerCx;
use crate::error::Result;
use crate::exec::kernel::{out_f32, out_i8, Kernel, RunCx};
use crate::ir::{DType, Pool2D};
use crate::kernels::conv::ConvShape;
use crate::kernels::int8::pool as pool_i8;
use crate::kernels::pool;
use crate::ops::pool_shape;

pub(super) fn pool2d(p: &Pool2D, max_pool: bool, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let s = pool_shape(p, &x.shape).ok_or_else(|| cx.node.err("window does not fit"))?;
    if x.dtype == DType::I8 {
        let (scale, zp) = cx.node.out_qparams()?;
        let (min, max) = cx.node.clamp_i8(p.activation, scale, zp)?;
        return Ok(Box::new(PoolI8 { s, max_pool, min, max }));
    }
    let (min, max) = cx.node.clamp(p.activation)?;
    Ok(Box::new(PoolF32 { s, max_pool, min, max }))
}

struct PoolF32 {
    s: ConvShape,
    max_pool: bool,
    min: f32,
    max: f32,
}

impl Kernel for PoolF32 {
    fn name(&self) -> &'static str {
        if self.max_pool {
            "max-pool-f32"
        } else {
            "average-pool-f32"
        }
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, o) = (cx.f32_in(0)?, out_f32(cx.out)?);
        if self.max_pool {
            pool::max_pool_f32(&self.s, x, self.min, self.max, o);
        } else {
            pool::average_pool_f32(&self.s, x, self.min, self.max, o);
        }
        Ok(())
    }
}

struct PoolI8 {
    s: ConvShape,
    max_pool: bool,
    min: i32,
    max: i32,
}

impl Kernel for PoolI8 {
    fn name(&self) -> &'static str {
        if self.max_pool {
            "max-pool-i8"
        } else {
            "average-pool-i8"
        }
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, o) = (cx.i8_in(0)?, out_i8(cx.out)?);
        if self.max_pool {
            pool_i8::max_pool(&self.s, x, self.min, self.max, o);
        } else {
            pool_i8::average_pool(&self.s, x, self.min, self.max, o);
        }
        Ok(())
    }
}
