//! Mapping between TFLite builtin operators (code + options table) and IR operators, both ways.
//!
//! `to_ir` returns `None` for operators the IR does not model *and* for modelled operators whose
//! options use a feature the IR cannot express (e.g. shuffled FC weights); the reader then keeps the
//! operator opaque instead of silently dropping the option.

use super::code;
use super::schema::tflite as fb;
use crate::ir::{Activation, Conv2D, DepthwiseConv2D, FullyConnected, Op, Padding, Pool2D, SequenceLstm, StridedSlice};

fn activation_in(a: fb::ActivationFunctionType) -> Activation {
    match a {
        fb::ActivationFunctionType::None => Activation::None,
        fb::ActivationFunctionType::Relu => Activation::Relu,
        fb::ActivationFunctionType::ReluN1To1 => Activation::ReluN1To1,
        fb::ActivationFunctionType::Relu6 => Activation::Relu6,
        fb::ActivationFunctionType::Tanh => Activation::Tanh,
        fb::ActivationFunctionType::SignBit => Activation::SignBit,
    }
}

fn activation_out(a: Activation) -> fb::ActivationFunctionType {
    match a {
        Activation::None => fb::ActivationFunctionType::None,
        Activation::Relu => fb::ActivationFunctionType::Relu,
        Activation::ReluN1To1 => fb::ActivationFunctionType::ReluN1To1,
        Activation::Relu6 => fb::ActivationFunctionType::Relu6,
        Activation::Tanh => fb::ActivationFunctionType::Tanh,
        Activation::SignBit => fb::ActivationFunctionType::SignBit,
    }
}

fn padding_in(p: fb::Padding) -> Padding {
    match p {
        fb::Padding::Same => Padding::Same,
        fb::Padding::Valid => Padding::Valid,
    }
}

fn padding_out(p: Padding) -> fb::Padding {
    match p {
        Padding::Same => fb::Padding::Same,
        Padding::Valid => fb::Padding::Valid,
    }
}

/// Strides, dilations and filter sizes must be positive; a file with 0 or a negative value is kept
/// opaque here and rejected with a clear message when someone tries to run it.
fn positive(v: i32) -> Option<usize> {
    (v > 0).then_some(v as usize)
}

/// Converts a builtin operator to the IR, or `None` to keep it opaque.
pub(super) fn to_ir(builtin: i32, options: Option<&fb::BuiltinOptions>) -> Option<Op> {
    use fb::BuiltinOptions as O;
    let op = match (builtin, options) {
        (code::CONV_2D, Some(O::Conv2DOptions(o))) => {
            if o.quantized_bias_type != fb::TensorType::Float32 {
                return None;
            }
            Op::Conv2D(Conv2D {
                padding: padding_in(o.padding),
                stride: (positive(o.stride_h)?, positive(o.stride_w)?),
                dilation: (positive(o.dilation_h_factor)?, positive(o.dilation_w_factor)?),
                activation: activation_in(o.fused_activation_function),
            })
        }
        (code::DEPTHWISE_CONV_2D, Some(O::DepthwiseConv2DOptions(o))) => Op::DepthwiseConv2D(DepthwiseConv2D {
            padding: padding_in(o.padding),
            stride: (positive(o.stride_h)?, positive(o.stride_w)?),
            dilation: (positive(o.dilation_h_factor)?, positive(o.dilation_w_factor)?),
            depth_multiplier: o.depth_multiplier.max(0) as usize,
            activation: activation_in(o.fused_activation_function),
        }),
        (code::FULLY_CONNECTED, opts) => {
            let default = fb::FullyConnectedOptions::default();
            let o = match opts {
                Some(O::FullyConnectedOptions(o)) => o.as_ref(),
                None => &default,
                Some(_) => return None,
            };
            if o.weights_format != fb::FullyConnectedOptionsWeightsFormat::Default
                || o.quantized_bias_type != fb::TensorType::Float32
            {
                return None;
            }
            Op::FullyConnected(FullyConnected {
                activation: activation_in(o.fused_activation_function),
                keep_num_dims: o.keep_num_dims,
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
            })
        }
        (code::AVERAGE_POOL_2D | code::MAX_POOL_2D, Some(O::Pool2DOptions(o))) => {
            let p = Pool2D {
                padding: padding_in(o.padding),
                stride: (positive(o.stride_h)?, positive(o.stride_w)?),
                filter: (positive(o.filter_height)?, positive(o.filter_width)?),
                activation: activation_in(o.fused_activation_function),
            };
            if builtin == code::AVERAGE_POOL_2D {
                Op::AveragePool2D(p)
            } else {
                Op::MaxPool2D(p)
            }
        }
        (code::ADD, Some(O::AddOptions(o))) if o.pot_scale_int16 => {
            Op::Add { activation: activation_in(o.fused_activation_function) }
        }
        (code::ADD, None) => Op::Add { activation: Activation::None },
        (code::SUB, Some(O::SubOptions(o))) if o.pot_scale_int16 => {
            Op::Sub { activation: activation_in(o.fused_activation_function) }
        }
        (code::SUB, None) => Op::Sub { activation: Activation::None },
        (code::MUL, Some(O::MulOptions(o))) => Op::Mul { activation: activation_in(o.fused_activation_function) },
        (code::MUL, None) => Op::Mul { activation: Activation::None },
        (code::RESHAPE, Some(O::ReshapeOptions(o))) => Op::Reshape { new_shape: o.new_shape.clone() },
        (code::RESHAPE, None) => Op::Reshape { new_shape: None },
        (code::SOFTMAX, Some(O::SoftmaxOptions(o))) => Op::Softmax { beta: o.beta },
        (code::SOFTMAX, None) => Op::Softmax { beta: 1.0 },
        (code::LOGISTIC, None) => Op::Logistic,
        (code::TANH, None) => Op::Tanh,
        (code::RELU, None) => Op::Relu,
        (code::RELU6, None) => Op::Relu6,
        (code::LEAKY_RELU, Some(O::LeakyReluOptions(o))) => Op::LeakyRelu { alpha: o.alpha },
        (code::HARD_SWISH, None | Some(O::HardSwishOptions(_))) => Op::HardSwish,
        (code::UNIDIRECTIONAL_SEQUENCE_LSTM, Some(O::UnidirectionalSequenceLstmOptions(o))) => {
            if o.diagonal_recurrent_tensors {
                return None;
            }
            Op::UnidirectionalSequenceLstm(SequenceLstm {
                activation: activation_in(o.fused_activation_function),
                cell_clip: o.cell_clip,
                proj_clip: o.proj_clip,
                time_major: o.time_major,
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
            })
        }
        (code::CONCATENATION, Some(O::ConcatenationOptions(o))) => {
            Op::Concatenation { axis: o.axis, activation: activation_in(o.fused_activation_function) }
        }
        (code::PAD, None | Some(O::PadOptions(_))) => Op::Pad,
        (code::MEAN, Some(O::ReducerOptions(o))) => Op::Mean { keep_dims: o.keep_dims },
        (code::MEAN, None) => Op::Mean { keep_dims: false },
        (code::REDUCE_MAX, Some(O::ReducerOptions(o))) => Op::ReduceMax { keep_dims: o.keep_dims },
        (code::REDUCE_MAX, None) => Op::ReduceMax { keep_dims: false },
        (code::QUANTIZE, None | Some(O::QuantizeOptions(_))) => Op::Quantize,
        (code::DEQUANTIZE, None | Some(O::DequantizeOptions(_))) => Op::Dequantize,
        (code::TRANSPOSE, None | Some(O::TransposeOptions(_))) => Op::Transpose,
        (code::SQUEEZE, Some(O::SqueezeOptions(o))) => Op::Squeeze { dims: o.squeeze_dims.clone().unwrap_or_default() },
        (code::SQUEEZE, None) => Op::Squeeze { dims: vec![] },
        (code::STRIDED_SLICE, Some(O::StridedSliceOptions(o))) => {
            let mask = |v: i32| v as u32;
            Op::StridedSlice(StridedSlice {
                begin_mask: mask(o.begin_mask),
                end_mask: mask(o.end_mask),
                ellipsis_mask: mask(o.ellipsis_mask),
                new_axis_mask: mask(o.new_axis_mask),
                shrink_axis_mask: mask(o.shrink_axis_mask),
                offset: o.offset,
            })
        }
        (code::SHAPE, Some(O::ShapeOptions(o))) => match o.out_type {
            fb::TensorType::Int32 => Op::Shape { out_type: crate::ir::DType::I32 },
            fb::TensorType::Int64 => Op::Shape { out_type: crate::ir::DType::I64 },
            _ => return None,
        },
        (code::SHAPE, None) => Op::Shape { out_type: crate::ir::DType::I32 },
        (code::PACK, Some(O::PackOptions(o))) => Op::Pack { axis: o.axis },
        _ => return None,
    };
    Some(op)
}

/// The builtin code and options table of an IR operator. Panics never: `Opaque` is handled by the
/// writer before calling this.
pub(super) fn from_ir(op: &Op) -> Option<(i32, Option<fb::BuiltinOptions>)> {
    use fb::BuiltinOptions as O;
    let pool = |p: &Pool2D| {
        O::Pool2DOptions(Box::new(fb::Pool2DOptions {
            padding: padding_out(p.padding),
            stride_w: p.stride.1 as i32,
            stride_h: p.stride.0 as i32,
            filter_width: p.filter.1 as i32,
            filter_height: p.filter.0 as i32,
            fused_activation_function: activation_out(p.activation),
        }))
    };
    let reducer = |keep_dims: bool| Some(O::ReducerOptions(Box::new(fb::ReducerOptions { keep_dims })));
    Some(match op {
        Op::Conv2D(c) => (
            code::CONV_2D,
            Some(O::Conv2DOptions(Box::new(fb::Conv2DOptions {
                padding: padding_out(c.padding),
                stride_w: c.stride.1 as i32,
                stride_h: c.stride.0 as i32,
                fused_activation_function: activation_out(c.activation),
                dilation_w_factor: c.dilation.1 as i32,
                dilation_h_factor: c.dilation.0 as i32,
                quantized_bias_type: fb::TensorType::Float32,
            }))),
        ),
        Op::DepthwiseConv2D(c) => (
            code::DEPTHWISE_CONV_2D,
            Some(O::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptions {
                padding: padding_out(c.padding),
                stride_w: c.stride.1 as i32,
                stride_h: c.stride.0 as i32,
                depth_multiplier: c.depth_multiplier as i32,
                fused_activation_function: activation_out(c.activation),
                dilation_w_factor: c.dilation.1 as i32,
                dilation_h_factor: c.dilation.0 as i32,
            }))),
        ),
        Op::FullyConnected(f) => (
            code::FULLY_CONNECTED,
            Some(O::FullyConnectedOptions(Box::new(fb::FullyConnectedOptions {
                fused_activation_function: activation_out(f.activation),
                weights_format: fb::FullyConnectedOptionsWeightsFormat::Default,
                keep_num_dims: f.keep_num_dims,
                asymmetric_quantize_inputs: f.asymmetric_quantize_inputs,
                quantized_bias_type: fb::TensorType::Float32,
            }))),
        ),
        Op::AveragePool2D(p) => (code::AVERAGE_POOL_2D, Some(pool(p))),
        Op::MaxPool2D(p) => (code::MAX_POOL_2D, Some(pool(p))),
        Op::Add { activation } => (
            code::ADD,
            Some(O::AddOptions(Box::new(fb::AddOptions {
                fused_activation_function: activation_out(*activation),
                pot_scale_int16: true,
            }))),
        ),
        Op::Sub { activation } => (
            code::SUB,
            Some(O::SubOptions(Box::new(fb::SubOptions {
                fused_activation_function: activation_out(*activation),
                pot_scale_int16: true,
            }))),
        ),
        Op::Mul { activation } => (
            code::MUL,
            Some(O::MulOptions(Box::new(fb::MulOptions { fused_activation_function: activation_out(*activation) }))),
        ),
        Op::Reshape { new_shape } => (
            code::RESHAPE,
            new_shape.as_ref().map(|s| O::ReshapeOptions(Box::new(fb::ReshapeOptions { new_shape: Some(s.clone()) }))),
        ),
        Op::Softmax { beta } => (code::SOFTMAX, Some(O::SoftmaxOptions(Box::new(fb::SoftmaxOptions { beta: *beta })))),
        Op::Logistic => (code::LOGISTIC, None),
        Op::Tanh => (code::TANH, None),
        Op::Relu => (code::RELU, None),
        Op::Relu6 => (code::RELU6, None),
        Op::LeakyRelu { alpha } => {
            (code::LEAKY_RELU, Some(O::LeakyReluOptions(Box::new(fb::LeakyReluOptions { alpha: *alpha }))))
        }
        Op::HardSwish => (code::HARD_SWISH, Some(O::HardSwishOptions(Box::new(fb::HardSwishOptions {})))),
        Op::UnidirectionalSequenceLstm(l) => (
            code::UNIDIRECTIONAL_SEQUENCE_LSTM,
            Some(O::UnidirectionalSequenceLstmOptions(Box::new(fb::UnidirectionalSequenceLstmOptions {
                fused_activation_function: activation_out(l.activation),
                cell_clip: l.cell_clip,
                proj_clip: l.proj_clip,
                time_major: l.time_major,
                asymmetric_quantize_inputs: l.asymmetric_quantize_inputs,
                diagonal_recurrent_tensors: false,
            }))),
        ),
        Op::Concatenation { axis, activation } => (
            code::CONCATENATION,
            Some(O::ConcatenationOptions(Box::new(fb::ConcatenationOptions {
                axis: *axis,
                fused_activation_function: activation_out(*activation),
            }))),
        ),
        Op::Pad => (code::PAD, Some(O::PadOptions(Box::new(fb::PadOptions {})))),
        Op::Mean { keep_dims } => (code::MEAN, reducer(*keep_dims)),
        Op::ReduceMax { keep_dims } => (code::REDUCE_MAX, reducer(*keep_dims)),
        Op::Quantize => (code::QUANTIZE, Some(O::QuantizeOptions(Box::new(fb::QuantizeOptions {})))),
        Op::Dequantize => (code::DEQUANTIZE, Some(O::DequantizeOptions(Box::new(fb::DequantizeOptions {})))),
        Op::Transpose => (code::TRANSPOSE, Some(O::TransposeOptions(Box::new(fb::TransposeOptions {})))),
        Op::Squeeze { dims } => {
            (code::SQUEEZE, Some(O::SqueezeOptions(Box::new(fb::SqueezeOptions { squeeze_dims: Some(dims.clone()) }))))
        }
        Op::StridedSlice(s) => (
            code::STRIDED_SLICE,
            Some(O::StridedSliceOptions(Box::new(fb::StridedSliceOptions {
                begin_mask: s.begin_mask as i32,
                end_mask: s.end_mask as i32,
                ellipsis_mask: s.ellipsis_mask as i32,
                new_axis_mask: s.new_axis_mask as i32,
                shrink_axis_mask: s.shrink_axis_mask as i32,
                offset: s.offset,
            }))),
        ),
        Op::Shape { out_type } => (
            code::SHAPE,
            Some(O::ShapeOptions(Box::new(fb::ShapeOptions {
                out_type: if *out_type == crate::ir::DType::I64 {
                    fb::TensorType::Int64
                } else {
                    fb::TensorType::Int32
                },
            }))),
        ),
        Op::Pack { axis } => {
            // values_count is derived from the node's inputs by the writer.
            (code::PACK, Some(O::PackOptions(Box::new(fb::PackOptions { values_count: 0, axis: *axis }))))
        }
        // Training-only: quantization-aware training exports the int8 model instead.
        Op::Opaque(_) | Op::FakeQuant => return None,
    })
}
