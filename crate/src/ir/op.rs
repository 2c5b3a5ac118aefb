//! Operators and their attributes.
//!
//! Layout convention: activations are NHWC; CONV_2D weights are `[out, kh, kw, in]`, DEPTHWISE_CONV_2D
//! weights `[1, kh, kw, channels]`, FULLY_CONNECTED weights `[out, in]`. An importer of an NCHW format
//! (ONNX) converts weights to these layouts and inserts TRANSPOSE where a graph's edges need NCHW, so the
//! rest of the system sees one convention.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Activation fused into an operator's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    SignBit,
}

impl Activation {
    /// The clamp range in real values, for the activations that are clamps.
    pub fn clamp_range(self) -> Option<(f32, f32)> {
        match self {
            Activation::None => Some((f32::NEG_INFINITY, f32::INFINITY)),
            Activation::Relu => Some((0.0, f32::INFINITY)),
            Activation::ReluN1To1 => Some((-1.0, 1.0)),
            Activation::Relu6 => Some((0.0, 6.0)),
            Activation::Tanh | Activation::SignBit => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    Same,
    Valid,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conv2D {
    pub padding: Padding,
    /// (height, width)
    pub stride: (usize, usize),
    /// (height, width)
    pub dilation: (usize, usize),
    pub activation: Activation,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DepthwiseConv2D {
    pub padding: Padding,
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    /// Output channels per input channel (the file's value; the weights' shape is authoritative).
    pub depth_multiplier: usize,
    pub activation: Activation,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FullyConnected {
    pub activation: Activation,
    /// Keep the input's leading dimensions instead of flattening them to a batch.
    pub keep_num_dims: bool,
    /// For int8 weights with float activations: quantize the activations asymmetrically.
    pub asymmetric_quantize_inputs: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pool2D {
    pub padding: Padding,
    pub stride: (usize, usize),
    /// (height, width)
    pub filter: (usize, usize),
    pub activation: Activation,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct StridedSlice {
    pub begin_mask: u32,
    pub end_mask: u32,
    pub ellipsis_mask: u32,
    pub new_axis_mask: u32,
    pub shrink_axis_mask: u32,
    /// `end` is relative to `begin`.
    pub offset: bool,
}

/// UNIDIRECTIONAL_SEQUENCE_LSTM's options. Operands in TFLite's order: input, 16 weight,
/// peephole and bias tensors, the output and cell state (variable tensors, updated in place), and
/// optionally four layer-norm coefficient tensors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SequenceLstm {
    /// The cell gate's and the output's activation.
    pub activation: Activation,
    /// Clips the cell state to ±`cell_clip` when positive.
    pub cell_clip: f32,
    /// Clips the projected output to ±`proj_clip` when positive.
    pub proj_clip: f32,
    /// `[time, batch, features]` instead of `[batch, time, features]`.
    pub time_major: bool,
    pub asymmetric_quantize_inputs: bool,
}

/// An operator. Tensor operands (weights, bias, shapes, axes) are node inputs, not attributes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Op {
    /// inputs: input, weights `[out, kh, kw, in]`, optional bias `[out]`.
    Conv2D(Conv2D),
    /// inputs: input, weights `[1, kh, kw, out]`, optional bias `[out]`.
    DepthwiseConv2D(DepthwiseConv2D),
    /// inputs: input, weights `[out, in]`, optional bias `[out]`.
    FullyConnected(FullyConnected),
    AveragePool2D(Pool2D),
    MaxPool2D(Pool2D),
    Add {
        activation: Activation,
    },
    Sub {
        activation: Activation,
    },
    Mul {
        activation: Activation,
    },
    /// inputs: input, optional shape tensor. `new_shape` is the attribute form of the shape.
    Reshape {
        new_shape: Option<Vec<i32>>,
    },
    Softmax {
        beta: f32,
    },
    Logistic,
    Tanh,
    Relu,
    Relu6,
    LeakyRelu {
        alpha: f32,
    },
    HardSwish,
    Concatenation {
        axis: i32,
        activation: Activation,
    },
    /// inputs: input, paddings `[rank, 2]`.
    Pad,
    /// inputs: input, axes.
    Mean {
        keep_dims: bool,
    },
    /// inputs: input, axes.
    ReduceMax {
        keep_dims: bool,
    },
    Quantize,
    Dequantize,
    /// inputs: input, permutation.
    Transpose,
    Squeeze {
        dims: Vec<i32>,
    },
    /// inputs: input, begin, end, strides.
    StridedSlice(StridedSlice),
    /// The input's shape as a 1-D integer tensor of type `out_type` (i32 or i64).
    Shape {
        out_type: super::DType,
    },
    /// Stacks its inputs along a new dimension `axis`.
    Pack {
        axis: i32,
    },
    UnidirectionalSequenceLstm(SequenceLstm),
    /// Quantize-dequantize in float (training only, for quantization-aware training): inputs x,
    /// and the range as 1-element constants `min`, `max`; int8 parameters as [`int8_params`] makes
    /// them, so the result is exactly what the int8 model computes from that range.
    ///
    /// [`int8_params`]: crate::kernels::quant::int8_params
    FakeQuant,
    /// An operator this version does not model. Kept as read, so it survives a round trip.
    Opaque(Opaque),
}

/// An operator carried through unchanged. `name` is its name in the source format.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Opaque {
    pub name: String,
    #[serde(skip)]
    pub payload: OpaquePayload,
}

/// The source format's own encoding of an opaque operator, which only that format's writer reads
/// (the IR does not depend on any format). Compared by value, printed by its own `Debug`.
#[derive(Clone)]
pub struct OpaquePayload {
    value: Arc<dyn Any + Send + Sync>,
    eq: fn(&dyn Any, &dyn Any) -> bool,
    debug: fn(&dyn Any, &mut fmt::Formatter<'_>) -> fmt::Result,
}

impl OpaquePayload {
    pub fn new<T: Any + Send + Sync + PartialEq + fmt::Debug>(value: T) -> Self {
        fn eq<T: Any + PartialEq>(a: &dyn Any, b: &dyn Any) -> bool {
            matches!((a.downcast_ref::<T>(), b.downcast_ref::<T>()), (Some(a), Some(b)) if a == b)
        }
        fn debug<T: Any + fmt::Debug>(v: &dyn Any, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            v.downcast_ref::<T>().map_or(Ok(()), |v| v.fmt(f))
        }
        OpaquePayload { value: Arc::new(value), eq: eq::<T>, debug: debug::<T> }
    }

    /// The payload, if it is of type `T` (the format that wrote it).
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }
}

impl PartialEq for OpaquePayload {
    fn eq(&self, other: &Self) -> bool {
        (self.eq)(self.value.as_ref(), other.value.as_ref())
    }
}

impl fmt::Debug for OpaquePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.debug)(self.value.as_ref(), f)
    }
}

impl Op {
    /// The operator's name, as TFLite spells it.
    pub fn name(&self) -> &str {
        match self {
            Op::Conv2D(_) => "CONV_2D",
            Op::DepthwiseConv2D(_) => "DEPTHWISE_CONV_2D",
            Op::FullyConnected(_) => "FULLY_CONNECTED",
            Op::AveragePool2D(_) => "AVERAGE_POOL_2D",
            Op::MaxPool2D(_) => "MAX_POOL_2D",
            Op::Add { .. } => "ADD",
            Op::Sub { .. } => "SUB",
            Op::Mul { .. } => "MUL",
            Op::Reshape { .. } => "RESHAPE",
            Op::Softmax { .. } => "SOFTMAX",
            Op::Logistic => "LOGISTIC",
            Op::Tanh => "TANH",
            Op::Relu => "RELU",
            Op::Relu6 => "RELU6",
            Op::LeakyRelu { .. } => "LEAKY_RELU",
            Op::HardSwish => "HARD_SWISH",
            Op::Concatenation { .. } => "CONCATENATION",
            Op::Pad => "PAD",
            Op::Mean { .. } => "MEAN",
            Op::ReduceMax { .. } => "REDUCE_MAX",
            Op::Quantize => "QUANTIZE",
            Op::Dequantize => "DEQUANTIZE",
            Op::Transpose => "TRANSPOSE",
            Op::Squeeze { .. } => "SQUEEZE",
            Op::StridedSlice(_) => "STRIDED_SLICE",
            Op::Shape { .. } => "SHAPE",
            Op::Pack { .. } => "PACK",
            Op::FakeQuant => "FAKE_QUANT",
            Op::UnidirectionalSequenceLstm(_) => "UNIDIRECTIONAL_SEQUENCE_LSTM",
            Op::Opaque(o) => &o.name,
        }
    }

    /// The fused activation, for operators that have one.
    pub fn activation(&self) -> Option<Activation> {
        match self {
            Op::Conv2D(a) => Some(a.activation),
            Op::DepthwiseConv2D(a) => Some(a.activation),
            Op::FullyConnected(a) => Some(a.activation),
            Op::AveragePool2D(a) | Op::MaxPool2D(a) => Some(a.activation),
            Op::Add { activation } | Op::Sub { activation } | Op::Mul { activation } => Some(*activation),
            Op::Concatenation { activation, .. } => Some(*activation),
            _ => None,
        }
    }
}
