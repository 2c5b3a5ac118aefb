//! MEAN and REDUCE_MAX: each input element has the index of the output element it reduces into.

use super::LowerCx;
use crate::error::Result;
use crate::exec::kernel::{out_f32, out_i8, Kernel, RunCx};
use crate::ir::DType;
use crate::kernels::int8::pointwise::{self as pw_i8, MeanParams};
use crate::kernels::reduce::{self, reduce_index_map};
use crate::ops::reduced_axes;

pub(super) fn reduce(mean: bool, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let n = cx.node;
    let x = n.input(0, "input")?;
    let reduced = reduced_axes(n, x.shape.len())?;
    let map = reduce_index_map(&x.shape, &reduced);
    if x.dtype != DType::I8 {
        return Ok(Box::new(ReduceF32 { map, mean }));
    }
    if !mean {
        return Ok(Box::new(ReduceMaxI8 { map }));
    }
    let (si, zi) = n.act_qparams(x, "input")?;
    let (so, zo) = n.out_qparams()?;
    let kept: usize = x.shape.iter().zip(&reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).product();
    let count = x.len() / kept.max(1);
    Ok(Box::new(MeanI8 { p: MeanParams::new(si, zi, so, zo, count), map }))
}

struct ReduceF32 {
    map: Vec<usize>,
    mean: bool,
}

impl Kernel for ReduceF32 {
    fn name(&self) -> &'static str {
        if self.mean {
            "mean-f32"
        } else {
            "reduce-max-f32"
        }
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, o) = (cx.f32_in(0)?, out_f32(cx.out)?);
        if self.mean {
            reduce::mean_f32(x, &self.map, o);
        } else {
            reduce::max_f32(x, &self.map, o);
        }
        Ok(())
    }
}

struct MeanI8 {
    p: MeanParams,
    map: Vec<usize>,
}

impl Kernel for MeanI8 {
    fn name(&self) -> &'static str {
        "mean-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        self.p.run(cx.i8_in(0)?, &self.map, out_i8(cx.out)?);
        Ok(())
    }
}

struct ReduceMaxI8 {
    map: Vec<usize>,
}

impl Kernel for ReduceMaxI8 {
    fn name(&self) -> &'static str {
        "reduce-max-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        pw_i8::reduce_max(cx.i8_in(0)?, &self.map, out_i8(cx.out)?);
        Ok(())
    }
}
