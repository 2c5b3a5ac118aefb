//! RESHAPE and SQUEEZE (a copy), TRANSPOSE, PAD, STRIDED_SLICE, CONCATENATION and PACK: data
//! movement of any element type.

use super::LowerCx;
use crate::error::{Error, Location, Result};
use crate::exec::buffer::{dispatch_dtype, Buffer, Elem};
use crate::exec::kernel::{internal, Kernel, RunCx};
use crate::ir::{DType, StridedSlice};
use crate::kernels::layout::{self, SliceSpec};
use crate::ops::{normalize_axis, paddings, permutation, slice_spec};

/// Runs `$f` with typed input `$x` (operand 0) and output `$o` slices of the output's type.
macro_rules! typed {
    ($cx:ident, $dtype:expr, |$x:ident, $o:ident| $f:expr) => {
        dispatch_dtype!($dtype, T => {
            let $x = T::slice($cx.input(0)?).ok_or_else(|| internal("input type differs from output"))?;
            let $o = T::slice_mut($cx.out).ok_or_else(|| internal("output type"))?;
            $f
        }, return Err(Error::unsupported(format!("data movement of {}", $dtype), Location::default())))
    };
}

fn out_dtype(cx: &LowerCx) -> Result<DType> {
    Ok(cx.node.input(0, "input")?.dtype)
}

pub(super) fn copy(_cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(Copy))
}

/// RESHAPE and SQUEEZE: the values are unchanged.
struct Copy;

impl Kernel for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let x = cx.input(0)?;
        if x.len() != cx.out.len() {
            return Err(internal("copy between different sizes"));
        }
        cx.out.clone_from(x);
        Ok(())
    }
}

pub(super) fn transpose(cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let perm = permutation(cx.node, x.shape.len())?;
    Ok(Box::new(Transpose { dtype: x.dtype, shape: x.shape.clone(), perm }))
}

struct Transpose {
    dtype: DType,
    shape: Vec<usize>,
    perm: Vec<usize>,
}

impl Kernel for Transpose {
    fn name(&self) -> &'static str {
        "transpose"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        typed!(cx, self.dtype, |x, o| layout::transpose(x, &self.shape, &self.perm, o));
        Ok(())
    }
}

pub(super) fn pad(cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let pads = paddings(cx.node, x.shape.len())?;
    let zp = cx.node.out_quant().map_or(0, |q| q.single().1);
    Ok(Box::new(Pad { dtype: x.dtype, shape: x.shape.clone(), pads, zp }))
}

struct Pad {
    dtype: DType,
    shape: Vec<usize>,
    pads: Vec<(usize, usize)>,
    /// The padding value: the zero point of quantized outputs.
    zp: i64,
}

impl Kernel for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        macro_rules! pad_as {
            ($t:ty, $zero:expr) => {{
                let x = <$t as Elem>::slice(cx.input(0)?).ok_or_else(|| internal("pad input"))?;
                let o = <$t as Elem>::slice_mut(cx.out).ok_or_else(|| internal("pad output"))?;
                layout::pad(x, &self.shape, &self.pads, $zero, o);
            }};
        }
        let zp = self.zp;
        match self.dtype {
            DType::F32 => pad_as!(f32, 0.0),
            DType::I8 => pad_as!(i8, zp as i8),
            DType::U8 => pad_as!(u8, zp as u8),
            DType::I16 => pad_as!(i16, zp as i16),
            DType::I32 => pad_as!(i32, 0),
            DType::I64 => pad_as!(i64, 0),
            other => return Err(Error::unsupported(format!("PAD of {other}"), Location::default())),
        }
        Ok(())
    }
}

pub(super) fn strided_slice(o: &StridedSlice, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let spec = slice_spec(cx.node, o, &x.shape)?;
    Ok(Box::new(Slice { dtype: x.dtype, shape: x.shape.clone(), spec }))
}

struct Slice {
    dtype: DType,
    shape: Vec<usize>,
    spec: SliceSpec,
}

impl Kernel for Slice {
    fn name(&self) -> &'static str {
        "strided-slice"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        typed!(cx, self.dtype, |x, o| layout::strided_slice(x, &self.shape, &self.spec, o));
        Ok(())
    }
}

pub(super) fn concat(axis: i32, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let ins = cx.node.all_inputs("input")?;
    let first = ins.first().ok_or_else(|| cx.node.err("no inputs"))?;
    let axis = normalize_axis(cx.node, axis, first.shape.len())?;
    let shapes = ins.iter().map(|f| f.shape.clone()).collect();
    Ok(Box::new(Join { dtype: out_dtype(cx)?, axis, shapes }))
}

pub(super) fn pack(axis: i32, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let ins = cx.node.all_inputs("input")?;
    let first = ins.first().ok_or_else(|| cx.node.err("no inputs"))?;
    let axis = normalize_axis(cx.node, axis, first.shape.len() + 1)?;
    let mut one = first.shape.clone();
    one.insert(axis, 1);
    Ok(Box::new(Join { dtype: out_dtype(cx)?, axis, shapes: vec![one; ins.len()] }))
}

/// CONCATENATION, and PACK as a concatenation of inputs with a new dimension of 1.
struct Join {
    dtype: DType,
    axis: usize,
    shapes: Vec<Vec<usize>>,
}

impl Kernel for Join {
    fn name(&self) -> &'static str {
        "concatenation"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        dispatch_dtype!(self.dtype, T => {
            let ins: Vec<&[T]> = (0..self.shapes.len())
                .map(|i| cx.input(i).ok().and_then(T::slice).ok_or_else(|| internal("concatenation input")))
                .collect::<Result<_>>()?;
            let shapes: Vec<&[usize]> = self.shapes.iter().map(Vec::as_slice).collect();
            let o = T::slice_mut(cx.out).ok_or_else(|| internal("concatenation output"))?;
            layout::concat(&ins, &shapes, self.axis, o);
        }, return Err(Error::unsupported(format!("CONCATENATION of {}", self.dtype), Location::default())));
        Ok(())
    }
}

/// SHAPE: its value is always known from facts, so this kernel only runs if asked to fold it.
pub(super) fn shape(cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    Ok(Box::new(ShapeOf(x.shape.iter().map(|&d| d as i64).collect())))
}

struct ShapeOf(Vec<i64>);

impl Kernel for ShapeOf {
    fn name(&self) -> &'static str {
        "shape"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        *cx.out = match cx.out {
            Buffer::I64(_) => Buffer::I64(self.0.clone()),
            _ => Buffer::I32(self.0.iter().map(|&d| d as i32).collect()),
        };
        Ok(())
    }
}
