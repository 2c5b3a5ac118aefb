//! UNIDIRECTIONAL_SEQUENCE_LSTM: the float kernel and the integer one (LiteRT's reference
//! arithmetic), reading and updating the output and cell state in place (operands 18 and 19).

use super::LowerCx;
use crate::error::Result;
use crate::exec::buffer::{Buffer, Elem};
use crate::exec::kernel::{internal, out_f32, out_i8, Kernel, Packed, RunCx};
use crate::exec::plan::Target;
use crate::ir::{DType, SequenceLstm};
use crate::kernels::int8::lstm::{self as int8, LstmArithmetic, LstmQuantization, PreparedLstm, Quant};
use crate::kernels::lstm::{self, LstmConfig, LstmParts, LstmState};
use crate::ops::{lstm_config, NodeCx};

/// The operand indices of the output state and the cell state.
const STATES: [usize; 2] = [18, 19];

pub(super) fn lstm(o: &SequenceLstm, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let n = cx.node;
    let config = lstm_config(n, o)?;
    if n.input(0, "input")?.dtype == DType::F32 {
        return Ok(Box::new(LstmF32 { config }));
    }
    let arithmetic = match cx.target {
        Target::Tflm => LstmArithmetic::Tflm,
        Target::Litert => LstmArithmetic::LiteRt,
    };
    Ok(Box::new(LstmI8 { quant: quantization(n)?, config, arithmetic }))
}

/// An operand's owned values, if the node has it.
fn part<T: Elem>(operands: &[Option<&Buffer>], i: usize) -> Option<Vec<T>> {
    operands.get(i).copied().flatten().and_then(T::slice).map(<[T]>::to_vec)
}

type Owned<W, C, B> = LstmParts<Vec<W>, Vec<C>, Vec<B>>;

fn owned<W: Elem, C: Elem, B: Elem>(operands: &[Option<&Buffer>]) -> Owned<W, C, B> {
    LstmParts::from_operands(|i| part::<W>(operands, i), |i| part::<C>(operands, i), |i| part::<B>(operands, i))
}

/// The output state and cell state buffers, typed.
fn states<'b, H: Elem, S: Elem>(states: &'b mut [Buffer]) -> Result<LstmState<'b, H, S>> {
    let [h, c] = states else { return Err(internal("LSTM states missing")) };
    Ok(LstmState {
        output_state: H::slice_mut(h).ok_or_else(|| internal("LSTM output state type"))?,
        cell_state: S::slice_mut(c).ok_or_else(|| internal("LSTM cell state type"))?,
    })
}

struct LstmF32 {
    config: LstmConfig,
}

impl Kernel for LstmF32 {
    fn name(&self) -> &'static str {
        "lstm-f32"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let p: Owned<f32, f32, f32> = owned(operands);
        self.config.check(&p.as_slices())?;
        Ok(Some(Box::new(p)))
    }

    fn states(&self) -> &'static [usize] {
        &STATES
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<Owned<f32, f32, f32>>()?);
        let state = states::<f32, f32>(cx.states)?;
        lstm::run_f32(&self.config, &p.as_slices(), x, state, out_f32(cx.out)?)
    }
}

/// A tensor's per-tensor scale and zero point.
fn quant_of(cx: &NodeCx, t: Option<usize>) -> Option<Quant> {
    let (s, z) = cx.graph.tensors.get(t?)?.quant.as_ref()?.single();
    Some(Quant { scale: s, zero_point: z as i32 })
}

/// The node's scales and zero points, including its intermediate tensors'.
fn quantization(cx: &NodeCx) -> Result<LstmQuantization> {
    let q = |i: usize| quant_of(cx, cx.node.input(i));
    let need = |i: usize, what: &str| q(i).ok_or_else(|| cx.err(format!("the int8 LSTM's {what} has no quantization")));
    let mut intermediates = [None; 5];
    for (slot, &t) in intermediates.iter_mut().zip(&cx.node.intermediates) {
        *slot = quant_of(cx, Some(t));
    }
    let s = |i: usize| q(i).map(|q| q.scale);
    let parts = LstmParts::from_operands(s, s, |_| None);
    Ok(LstmQuantization {
        input: need(0, "input")?,
        output_state: need(18, "output state")?,
        cell_state_scale: need(19, "cell state")?.scale,
        output: quant_of(cx, cx.node.output()).ok_or_else(|| cx.err("the int8 LSTM's output has no quantization"))?,
        weight_scales: parts,
        intermediates,
    })
}

struct LstmI8 {
    config: LstmConfig,
    quant: LstmQuantization,
    arithmetic: LstmArithmetic,
}

/// The integer LSTM's operands and its prepared arithmetic.
struct PackedI8 {
    operands: Owned<i8, i16, i32>,
    prepared: PreparedLstm,
}

impl Kernel for LstmI8 {
    fn name(&self) -> &'static str {
        "lstm-i8"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let p: Owned<i8, i16, i32> = owned(operands);
        let prepared = int8::prepare(&self.config, &self.quant, &p.as_slices(), self.arithmetic)?;
        Ok(Some(Box::new(PackedI8 { operands: p, prepared })))
    }

    fn states(&self) -> &'static [usize] {
        &STATES
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.i8_in(0)?, cx.packed::<PackedI8>()?);
        let state = states::<i8, i16>(cx.states)?;
        int8::run(&self.config, &p.prepared, &p.operands.as_slices(), x, state, out_i8(cx.out)?)
    }
}
