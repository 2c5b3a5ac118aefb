//! The backward of every operator, keyed by the IR operator. Exhaustive by construction: adding an
//! operator to the IR without deciding its backward here does not compile, and an operator that
//! cannot be trained through returns a typed "not trainable" error naming it and its node, never a
//! silent zero gradient.

use super::{pointwise, shape, weighted, BackCx, OperandGrads};
use crate::error::{Error, Result};
use crate::ir::Op;
use crate::ops::{spec, Gradient, UnaryKind};

/// The gradients of a node's operands from the gradient of its output.
pub(super) fn backward(op: &Op, cx: &mut BackCx) -> Result<OperandGrads> {
    use pointwise::BinaryKind as B;
    match op {
        Op::Conv2D(c) => weighted::conv2d(c.activation, cx),
        Op::DepthwiseConv2D(c) => weighted::depthwise(c.activation, cx),
        Op::FullyConnected(f) => weighted::dense(f.activation, cx),
        Op::AveragePool2D(p) => shape::pool(p, false, cx),
        Op::MaxPool2D(p) => shape::pool(p, true, cx),
        Op::Add { activation } => pointwise::binary(B::Add, *activation, cx),
        Op::Sub { activation } => pointwise::binary(B::Sub, *activation, cx),
        Op::Mul { activation } => pointwise::binary(B::Mul, *activation, cx),
        Op::Logistic => pointwise::unary(UnaryKind::Logistic, cx),
        Op::Tanh => pointwise::unary(UnaryKind::Tanh, cx),
        Op::Relu => pointwise::unary(UnaryKind::Relu, cx),
        Op::Relu6 => pointwise::unary(UnaryKind::Relu6, cx),
        Op::LeakyRelu { alpha } => pointwise::unary(UnaryKind::LeakyRelu(*alpha), cx),
        Op::HardSwish => pointwise::unary(UnaryKind::HardSwish, cx),
        Op::Softmax { beta } => pointwise::softmax(*beta, cx),
        Op::Mean { .. } => shape::reduce(true, cx),
        Op::ReduceMax { .. } => shape::reduce(false, cx),
        Op::Reshape { .. } | Op::Squeeze { .. } => shape::copy(cx),
        Op::Transpose => shape::transpose(cx),
        Op::Pad => shape::pad(cx),
        Op::StridedSlice(o) => shape::strided_slice(o, cx),
        Op::Concatenation { axis, .. } => shape::concat(*axis, cx),
        Op::Pack { axis } => shape::pack(*axis, cx),
        Op::FakeQuant => pointwise::fake_quant(cx),
        Op::Shape { .. } | Op::Quantize | Op::Dequantize | Op::UnidirectionalSequenceLstm(_) | Op::Opaque(_) => {
            Err(not_trainable(op, cx.node.index))
        }
    }
}

/// "not trainable: OP at node N: why".
pub fn not_trainable(op: &Op, node: usize) -> Error {
    let why = match spec(op).gradient() {
        Gradient::Unsupported(why) => why,
        Gradient::Stops => "its output does not depend smoothly on its inputs",
        Gradient::Flows => "no backward is implemented",
    };
    Error::unsupported(
        format!("not trainable: {} at node {node}: {why}", op.name()),
        crate::error::Location::node(node, op.name()),
    )
}
