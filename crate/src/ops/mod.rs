//! Operator specs: each operator described once, in one module per family.
//!
//! A spec says, without running anything: the output facts (type, shape, quantization) its
//! operands' facts give, with every attribute checked against them; the role of each operand
//! (activation, weights and their layout, bias, constant operand, recurrent state); the constraint
//! TFLite's int8 specification puts on its output; and whether gradients flow through it.
//! [`infer`] walks a graph with them. The engine's lowering, quantization, pruning, constant
//! folding and the backward pass all read shapes and layouts from here, so none of them re-derives
//! a shape or prepares the engine to learn one.

mod activation;
mod binary;
mod conv;
mod cx;
mod dense;
mod fact;
mod infer;
mod join;
mod lstm;
mod movement;
mod opaque;
mod pool;
mod quant;
mod reduce;
mod softmax;

pub use activation::UnaryKind;
pub use conv::conv_shape;
pub use cx::{checked_bytes, same_qparams, NodeCx};
pub use dense::dense_rows;
pub use fact::{Fact, Facts, Known};
pub use infer::{infer, InferOptions};
pub use join::normalize_axis;
pub use lstm::lstm_config;
pub use movement::{paddings, permutation, resolve_reshape, slice_spec};
pub use pool::pool_shape;
pub use reduce::reduced_axes;

use crate::error::Result;
use crate::ir::{Op, TensorData};

/// What an operand of an operator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A value computed by the graph (or a model input); constants are allowed where the operator
    /// accepts them (e.g. ADD with a constant term).
    Activation,
    /// Learned weights, laid out as [`OpSpec::weights`] says.
    Weights,
    /// A learned bias, one value per output channel.
    Bias,
    /// A constant that parameterizes the operator: a shape, axes, paddings, a permutation.
    Operand,
    /// Recurrent state the operator reads and updates in place (a variable tensor).
    State,
}

/// How a weights tensor is laid out: which dimension indexes output channels, and which one input
/// channels (none for DEPTHWISE_CONV_2D, whose output channel `c` reads input `c / multiplier`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightLayout {
    /// The operand index of the weights (the bias, when present, is the next one).
    pub weights: usize,
    pub out_axis: usize,
    pub in_axis: Option<usize>,
}

impl WeightLayout {
    /// Output channels of weights of `shape`.
    pub fn units(&self, shape: &[usize]) -> usize {
        shape.get(self.out_axis).copied().unwrap_or(0)
    }

    /// Elements between consecutive output channels: weight `i` of a tensor of `shape` belongs
    /// to output channel `(i / inner) % units`.
    pub fn inner(&self, shape: &[usize]) -> usize {
        shape.get(self.out_axis + 1..).map_or(1, |s| s.iter().product::<usize>().max(1))
    }

    /// The output channel of weight `i` of a tensor of `shape`.
    pub fn channel_of(&self, shape: &[usize], i: usize) -> usize {
        (i / self.inner(shape)) % self.units(shape).max(1)
    }
}

/// What TFLite's int8 specification requires of an operator's output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Int8Rule {
    /// Int8 weights symmetric per output channel, int32 bias at `input_scale · weight_scale`, and a
    /// calibrated output.
    Weighted,
    /// The output shares the input's parameters: the operator moves values, it does not rescale.
    SameAsInput,
    /// The output has its own calibrated parameters.
    Calibrated,
    /// The output's parameters are fixed by the operator.
    Fixed { scale: f32, zero_point: i64 },
    /// Every input shares the output's calibrated parameters (CONCATENATION, PACK).
    SharedWithInputs,
    /// The output is integer shape arithmetic; any twin of the input will do.
    ShapeOnly,
    /// Already a quantization boundary (QUANTIZE, DEQUANTIZE).
    Boundary,
    /// No int8 form in this version; the reason says why.
    Float(&'static str),
}

/// Whether and how gradients pass through an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gradient {
    /// Differentiable: the backward registry has its backward.
    Flows,
    /// The output does not depend smoothly on the float inputs (integer shape arithmetic): no
    /// gradient is needed through it.
    Stops,
    /// Training through this operator is not possible in this version; the reason says why.
    Unsupported(&'static str),
}

/// Everything known about one operator without running it.
pub trait OpSpec {
    /// The facts of the node's outputs, from its operands' facts; checks every attribute against
    /// the shapes and TFLite's type rules, with errors naming the node.
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>>;

    /// The role of operand `input`.
    fn role(&self, input: usize) -> Role {
        if input == 0 {
            Role::Activation
        } else {
            Role::Operand
        }
    }

    /// The layout of the learned weights, for operators that have them.
    fn weights(&self) -> Option<WeightLayout> {
        None
    }

    fn int8(&self) -> Int8Rule;

    fn gradient(&self) -> Gradient;

    /// The output's value when it can be computed from known operands during inference: integer
    /// shape arithmetic only (SHAPE, and the slicing and packing of its result).
    fn fold(&self, _cx: &NodeCx, _out: &Fact) -> Result<Option<TensorData>> {
        Ok(None)
    }
}

/// The spec of an operator.
pub fn spec(op: &Op) -> Box<dyn OpSpec + '_> {
    use activation::{Unary, UnaryKind as U};
    use binary::Binary;
    match op {
        Op::Conv2D(a) => Box::new(conv::Conv(a)),
        Op::DepthwiseConv2D(a) => Box::new(conv::Depthwise(a)),
        Op::FullyConnected(a) => Box::new(dense::Dense(a)),
        Op::AveragePool2D(a) | Op::MaxPool2D(a) => Box::new(pool::Pool(a)),
        Op::Add { activation } | Op::Sub { activation } | Op::Mul { activation } => Box::new(Binary(*activation)),
        Op::Reshape { new_shape } => Box::new(movement::Reshape(new_shape.as_deref())),
        Op::Squeeze { dims } => Box::new(movement::Squeeze(dims)),
        Op::Transpose => Box::new(movement::Transpose),
        Op::Pad => Box::new(movement::Pad),
        Op::StridedSlice(a) => Box::new(movement::Slice(a)),
        Op::Softmax { beta } => Box::new(softmax::Softmax(*beta)),
        Op::Logistic => Box::new(Unary(U::Logistic)),
        Op::Tanh => Box::new(Unary(U::Tanh)),
        Op::Relu => Box::new(Unary(U::Relu)),
        Op::Relu6 => Box::new(Unary(U::Relu6)),
        Op::LeakyRelu { alpha } => Box::new(Unary(U::LeakyRelu(*alpha))),
        Op::HardSwish => Box::new(Unary(U::HardSwish)),
        Op::Concatenation { axis, activation } => Box::new(join::Concat { axis: *axis, activation: *activation }),
        Op::Pack { axis } => Box::new(join::Pack(*axis)),
        Op::Shape { out_type } => Box::new(join::ShapeOf(*out_type)),
        Op::Mean { keep_dims } => Box::new(reduce::Reduce { keep_dims: *keep_dims, mean: true }),
        Op::ReduceMax { keep_dims } => Box::new(reduce::Reduce { keep_dims: *keep_dims, mean: false }),
        Op::Quantize => Box::new(quant::Quantize),
        Op::Dequantize => Box::new(quant::Dequantize),
        Op::FakeQuant => Box::new(quant::FakeQuant),
        Op::UnidirectionalSequenceLstm(a) => Box::new(lstm::Lstm(a)),
        Op::Opaque(_) => Box::new(opaque::Opaque),
    }
}

/// The weight layout of `op`, if it has learned weights.
pub fn weight_layout(op: &Op) -> Option<WeightLayout> {
    spec(op).weights()
}

/// True for operators with learned weights (that pruning and quantization act on).
pub fn is_weighted(op: &Op) -> bool {
    weight_layout(op).is_some()
}
