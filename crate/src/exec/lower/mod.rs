//! Lowering: each node to a [`Kernel`], from the facts its spec inferred. This step only picks a
//! kernel and computes what the kernel needs from facts (geometry, fixed-point multipliers, index
//! maps); shapes and type rules were checked by [`crate::ops`], and weights are packed later, per
//! parameter version.

mod binary;
mod lstm;
mod movement;
mod pool;
mod quant;
mod reduce;
mod softmax;
mod unary;
mod weighted;

use binary::BinOp;

use super::kernel::Kernel;
use super::plan::Target;
use crate::error::Result;
use crate::ir::Op;
use crate::ops::{NodeCx, UnaryKind};

/// What lowering sees: the node with its operands' facts, and whose arithmetic to reproduce.
pub struct LowerCx<'a> {
    pub node: &'a NodeCx<'a>,
    pub target: Target,
}

/// The kernel of one node. Exhaustive: an operator added to the IR without a lowering does not
/// compile.
pub fn lower(op: &Op, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    match op {
        Op::Conv2D(c) => weighted::conv2d(c, cx),
        Op::DepthwiseConv2D(c) => weighted::depthwise(c, cx),
        Op::FullyConnected(f) => weighted::fully_connected(f, cx),
        Op::AveragePool2D(p) => pool::pool2d(p, false, cx),
        Op::MaxPool2D(p) => pool::pool2d(p, true, cx),
        Op::Add { activation } => binary::binary(BinOp::Add, *activation, cx),
        Op::Sub { activation } => binary::binary(BinOp::Sub, *activation, cx),
        Op::Mul { activation } => binary::binary(BinOp::Mul, *activation, cx),
        Op::Logistic => unary::unary(UnaryKind::Logistic, cx),
        Op::Tanh => unary::unary(UnaryKind::Tanh, cx),
        Op::Relu => unary::unary(UnaryKind::Relu, cx),
        Op::Relu6 => unary::unary(UnaryKind::Relu6, cx),
        Op::LeakyRelu { alpha } => unary::unary(UnaryKind::LeakyRelu(*alpha), cx),
        Op::HardSwish => unary::unary(UnaryKind::HardSwish, cx),
        Op::Softmax { beta } => softmax::softmax(*beta, cx),
        Op::Mean { .. } => reduce::reduce(true, cx),
        Op::ReduceMax { .. } => reduce::reduce(false, cx),
        Op::Reshape { .. } | Op::Squeeze { .. } => movement::copy(cx),
        Op::Transpose => movement::transpose(cx),
        Op::Pad => movement::pad(cx),
        Op::StridedSlice(o) => movement::strided_slice(o, cx),
        Op::Concatenation { axis, .. } => movement::concat(*axis, cx),
        Op::Pack { axis } => movement::pack(*axis, cx),
        Op::Shape { .. } => movement::shape(cx),
        Op::Quantize => quant::quantize(cx),
        Op::Dequantize => quant::dequantize(cx),
        Op::FakeQuant => quant::fake_quant(cx),
        Op::UnidirectionalSequenceLstm(o) => lstm::lstm(o, cx),
        Op::Opaque(o) => Err(cx.node.unsupported(format!("operator {} cannot be executed yet", o.name))),
    }
}
