//! The interface between the engine and a lowered operator: a [`Kernel`] packs its constant
//! operands once per parameter update and runs on the buffers of one run.

use std::any::Any;

use super::buffer::Buffer;
use crate::error::{Error, Location, Result};
use crate::kernels::int8::conv as conv_i8;

/// A kernel's prepared form of its constant operands (e.g. weights packed for a GEMM).
pub type Packed = Box<dyn Any + Send + Sync>;

/// One operator lowered for the engine: everything computed from facts alone (geometry, fixed-point
/// multipliers, index maps). It holds no weights, so one plan serves any parameter values.
pub trait Kernel: Send + Sync {
    /// What runs, for profiles: operator, types and variant (`"conv2d-i8"`).
    fn name(&self) -> &'static str;

    /// Packs the constant operands the kernel reads in a prepared form. Runs once per parameter
    /// update; kernels that read their operands as they are return `None`.
    fn pack(&self, _operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        Ok(None)
    }

    /// Operands the kernel reads and updates in place (recurrent state held in variable
    /// tensors): they are passed in [`RunCx::states`], in this order, not in `inputs`.
    fn states(&self) -> &'static [usize] {
        &[]
    }

    fn run(&self, cx: &mut RunCx) -> Result<()>;
}

/// Scratch memory reused across steps and runs.
#[derive(Default)]
pub struct Scratch {
    pub i8: Vec<i8>,
    pub int8: conv_i8::Scratch,
    pub depthwise: crate::kernels::int8::depthwise::Scratch,
    pub pad_f32: Vec<f32>,
}

/// What a kernel runs on: its operands (constants or activations), its output, its packed data
/// and scratch.
pub struct RunCx<'a> {
    pub inputs: &'a [Option<&'a Buffer>],
    pub out: &'a mut Buffer,
    pub packed: Option<&'a (dyn Any + Send + Sync)>,
    pub scratch: &'a mut Scratch,
    /// The operands of [`Kernel::states`], to read and update.
    pub states: &'a mut [Buffer],
}

impl<'a> RunCx<'a> {
    pub fn input(&self, i: usize) -> Result<&'a Buffer> {
        self.inputs.get(i).copied().flatten().ok_or_else(|| internal(&format!("operand {i} is missing")))
    }

    pub fn f32_in(&self, i: usize) -> Result<&'a [f32]> {
        self.input(i)?.as_f32().ok_or_else(|| internal("expected a float operand"))
    }

    pub fn i8_in(&self, i: usize) -> Result<&'a [i8]> {
        self.input(i)?.as_i8().ok_or_else(|| internal("expected an int8 operand"))
    }

    /// The packed data, of the type the kernel's [`Kernel::pack`] made.
    pub fn packed<T: 'static>(&self) -> Result<&'a T> {
        self.packed.and_then(|p| p.downcast_ref::<T>()).ok_or_else(|| internal("packed operands are missing"))
    }
}

/// The float values of an output buffer.
pub fn out_f32(b: &mut Buffer) -> Result<&mut [f32]> {
    match b {
        Buffer::F32(v) => Ok(v),
        _ => Err(internal("expected a float output")),
    }
}

/// The int8 values of an output buffer.
pub fn out_i8(b: &mut Buffer) -> Result<&mut [i8]> {
    match b {
        Buffer::I8(v) => Ok(v),
        _ => Err(internal("expected an int8 output")),
    }
}

/// The float values of a constant operand, when packing.
pub fn const_f32<'b>(operands: &[Option<&'b Buffer>], i: usize, what: &str) -> Result<&'b [f32]> {
    operands.get(i).copied().flatten().and_then(Buffer::as_f32).ok_or_else(|| internal(&format!("{what} is not float")))
}

/// The int8 values of a constant operand, when packing.
pub fn const_i8<'b>(operands: &[Option<&'b Buffer>], i: usize, what: &str) -> Result<&'b [i8]> {
    operands.get(i).copied().flatten().and_then(Buffer::as_i8).ok_or_else(|| internal(&format!("{what} is not int8")))
}

/// An optional int32 constant operand (a quantized bias), when packing.
pub fn const_i32<'b>(operands: &[Option<&'b Buffer>], i: usize) -> Result<Option<&'b [i32]>> {
    match operands.get(i).copied().flatten() {
        None => Ok(None),
        Some(Buffer::I32(v)) => Ok(Some(v)),
        Some(_) => Err(internal("bias is not int32")),
    }
}

/// An optional float constant operand (a float bias), when packing.
pub fn opt_f32(operands: &[Option<&Buffer>], i: usize) -> Result<Option<Vec<f32>>> {
    match operands.get(i).copied().flatten() {
        None => Ok(None),
        Some(Buffer::F32(v)) => Ok(Some(v.clone())),
        Some(_) => Err(internal("bias is not float")),
    }
}

/// A broken engine invariant (a bug, not bad input: specs have checked the model).
pub fn internal(msg: &str) -> Error {
    Error::graph(format!("engine invariant broken: {msg}"), Location::default())
}
