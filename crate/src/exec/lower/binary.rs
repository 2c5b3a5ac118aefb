//! ADD, SUB and MUL with broadcasting. Int8 runs through a 256×256 table of TFLite's integer
//! arithmetic, indexed by the two operands' bytes.

use super::LowerCx;
use crate::error::Result;
use crate::exec::kernel::{internal, out_f32, out_i8, Kernel, RunCx};
use crate::exec::plan::Target;
use crate::ir::{Activation, DType};
use crate::kernels::elementwise;
use crate::kernels::f32x4::F4;
use crate::kernels::int8::pointwise::{AddParams, MulParams};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum BinOp {
    Add,
    Sub,
    Mul,
}

pub(super) fn binary(op: BinOp, act: Activation, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let n = cx.node;
    let (a, b) = (n.input(0, "first")?, n.input(1, "second")?);
    let out_shape = elementwise::broadcast_shape(&a.shape, &b.shape).ok_or_else(|| n.err("shapes do not broadcast"))?;
    let shapes = Shapes { a: a.shape.clone(), b: b.shape.clone(), out: out_shape };
    if a.dtype == DType::I8 {
        let (s1, z1) = n.act_qparams(a, "first")?;
        let (s2, z2) = n.act_qparams(b, "second")?;
        let (so, zo) = n.out_qparams()?;
        let (min, max) = n.clamp_i8(act, so, zo)?;
        let tflm = cx.target == Target::Tflm;
        let table = match op {
            BinOp::Mul if tflm => {
                let p = MulParams::new_tflm(s1, z1, s2, z2, so, zo, min, max);
                table(|x, y| p.apply(x, y))
            }
            BinOp::Sub if tflm => {
                let p = AddParams::new_tflm_sub(s1, z1, s2, z2, so, zo, min, max);
                table(|x, y| p.apply(x, y))
            }
            BinOp::Mul => {
                let p = MulParams::new(s1, z1, s2, z2, so, zo, min, max);
                table(|x, y| p.apply(x, y))
            }
            _ => {
                let p = AddParams::new(s1, z1, s2, z2, so, zo, min, max, op == BinOp::Sub);
                table(|x, y| p.apply(x, y))
            }
        };
        return Ok(Box::new(BinaryI8 { table, shapes }));
    }
    let (min, max) = n.clamp(act)?;
    Ok(Box::new(BinaryF32 { op, shapes, min, max }))
}

/// `f` over every pair of int8 operands, indexed `(x as u8) · 256 + (y as u8)`.
fn table(f: impl Fn(i8, i8) -> i8) -> Vec<i8> {
    (0..=u16::MAX).map(|i| f((i >> 8) as u8 as i8, i as u8 as i8)).collect()
}

#[derive(Debug)]
struct Shapes {
    a: Vec<usize>,
    b: Vec<usize>,
    out: Vec<usize>,
}

struct BinaryF32 {
    op: BinOp,
    shapes: Shapes,
    min: f32,
    max: f32,
}

impl Kernel for BinaryF32 {
    fn name(&self) -> &'static str {
        match self.op {
            BinOp::Add => "add-f32",
            BinOp::Sub => "sub-f32",
            BinOp::Mul => "mul-f32",
        }
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (a, b) = (cx.f32_in(0)?, cx.f32_in(1)?);
        let (lo, hi, s) = (self.min, self.max, &self.shapes);
        let o = out_f32(cx.out)?;
        if a.len() == o.len() && b.len() == o.len() {
            let bounds = (lo, hi);
            match self.op {
                BinOp::Add => elementwise::same_shape_f32(a, b, o, bounds, |x, y| x + y, F4::plus),
                BinOp::Sub => elementwise::same_shape_f32(a, b, o, bounds, |x, y| x - y, F4::minus),
                BinOp::Mul => elementwise::same_shape_f32(a, b, o, bounds, |x, y| x * y, F4::times),
            }
            return Ok(());
        }
        match self.op {
            BinOp::Add => elementwise::binary(a, &s.a, b, &s.b, &s.out, o, |x, y| (x + y).max(lo).min(hi)),
            BinOp::Sub => elementwise::binary(a, &s.a, b, &s.b, &s.out, o, |x, y| (x - y).max(lo).min(hi)),
            BinOp::Mul => elementwise::binary(a, &s.a, b, &s.b, &s.out, o, |x, y| (x * y).max(lo).min(hi)),
        }
        Ok(())
    }
}

struct BinaryI8 {
    table: Vec<i8>,
    shapes: Shapes,
}

impl Kernel for BinaryI8 {
    fn name(&self) -> &'static str {
        "binary-i8-table"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (a, b) = (cx.i8_in(0)?, cx.i8_in(1)?);
        let table: &[i8; 1 << 16] = self.table.as_slice().try_into().map_err(|_| internal("binary table size"))?;
        let s = &self.shapes;
        elementwise::binary(a, &s.a, b, &s.b, &s.out, out_i8(cx.out)?, |x, y| {
            table[(x as u8 as usize) << 8 | y as u8 as usize]
        });
        Ok(())
    }
}
