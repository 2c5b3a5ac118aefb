//! Whether TensorFlow Lite Micro runs a model: the operators it registers (and the
//! `MicroMutableOpResolver` method that adds each), the tensor types its kernels accept, and what
//! it refuses or runs badly (hybrid weights, float operators inside an int8 model).
//!
//! Facts from TFLM's `micro_mutable_op_resolver.h` and its kernels' `Prepare`/`Eval`. TFLM looks
//! operators up by builtin code and ignores their version, so versions are never a reason here.

use serde::Serialize;

use crate::ir::{DType, Graph, Node, Op};

/// Builtin operators TFLM registers, with the resolver method that adds each.
const BUILTINS: &[(&str, &str)] = &[
    ("ABS", "AddAbs"),
    ("ADD", "AddAdd"),
    ("ADD_N", "AddAddN"),
    ("ARG_MAX", "AddArgMax"),
    ("ARG_MIN", "AddArgMin"),
    ("ASSIGN_VARIABLE", "AddAssignVariable"),
    ("AVERAGE_POOL_2D", "AddAveragePool2D"),
    ("BATCH_MATMUL", "AddBatchMatMul"),
    ("BATCH_TO_SPACE_ND", "AddBatchToSpaceNd"),
    ("BROADCAST_ARGS", "AddBroadcastArgs"),
    ("BROADCAST_TO", "AddBroadcastTo"),
    ("CALL_ONCE", "AddCallOnce"),
    ("CAST", "AddCast"),
    ("CEIL", "AddCeil"),
    ("CONCATENATION", "AddConcatenation"),
    ("CONV_2D", "AddConv2D"),
    ("COS", "AddCos"),
    ("CUMSUM", "AddCumSum"),
    ("DEPTH_TO_SPACE", "AddDepthToSpace"),
    ("DEPTHWISE_CONV_2D", "AddDepthwiseConv2D"),
    ("DEQUANTIZE", "AddDequantize"),
    ("DIV", "AddDiv"),
    ("DYNAMIC_UPDATE_SLICE", "AddDynamicUpdateSlice"),
    ("ELU", "AddElu"),
    ("EMBEDDING_LOOKUP", "AddEmbeddingLookup"),
    ("EQUAL", "AddEqual"),
    ("EXP", "AddExp"),
    ("EXPAND_DIMS", "AddExpandDims"),
    ("FILL", "AddFill"),
    ("FLOOR", "AddFloor"),
    ("FLOOR_DIV", "AddFloorDiv"),
    ("FLOOR_MOD", "AddFloorMod"),
    ("FULLY_CONNECTED", "AddFullyConnected"),
    ("GATHER", "AddGather"),
    ("GATHER_ND", "AddGatherNd"),
    ("GREATER", "AddGreater"),
    ("GREATER_EQUAL", "AddGreaterEqual"),
    ("HARD_SWISH", "AddHardSwish"),
    ("IF", "AddIf"),
    ("L2_NORMALIZATION", "AddL2Normalization"),
    ("L2_POOL_2D", "AddL2Pool2D"),
    ("LEAKY_RELU", "AddLeakyRelu"),
    ("LESS", "AddLess"),
    ("LESS_EQUAL", "AddLessEqual"),
    ("LOG", "AddLog"),
    ("LOGICAL_AND", "AddLogicalAnd"),
    ("LOGICAL_NOT", "AddLogicalNot"),
    ("LOGICAL_OR", "AddLogicalOr"),
    ("LOGISTIC", "AddLogistic"),
    ("LOG_SOFTMAX", "AddLogSoftmax"),
    ("MAXIMUM", "AddMaximum"),
    ("MAX_POOL_2D", "AddMaxPool2D"),
    ("MIRROR_PAD", "AddMirrorPad"),
    ("MEAN", "AddMean"),
    ("MINIMUM", "AddMinimum"),
    ("MUL", "AddMul"),
    ("NEG", "AddNeg"),
    ("NOT_EQUAL", "AddNotEqual"),
    ("PACK", "AddPack"),
    ("PAD", "AddPad"),
    ("PADV2", "AddPadV2"),
    ("PRELU", "AddPrelu"),
    ("QUANTIZE", "AddQuantize"),
    ("READ_VARIABLE", "AddReadVariable"),
    ("REDUCE_ALL", "AddReduceAll"),
    ("REDUCE_MAX", "AddReduceMax"),
    ("REDUCE_MIN", "AddReduceMin"),
    ("RELU", "AddRelu"),
    ("RELU6", "AddRelu6"),
    ("RESHAPE", "AddReshape"),
    ("RESIZE_BILINEAR", "AddResizeBilinear"),
    ("RESIZE_NEAREST_NEIGHBOR", "AddResizeNearestNeighbor"),
    ("REVERSE_V2", "AddReverseV2"),
    ("ROUND", "AddRound"),
    ("RSQRT", "AddRsqrt"),
    ("SELECT_V2", "AddSelectV2"),
    ("SHAPE", "AddShape"),
    ("SIN", "AddSin"),
    ("SLICE", "AddSlice"),
    ("SOFTMAX", "AddSoftmax"),
    ("SPACE_TO_BATCH_ND", "AddSpaceToBatchNd"),
    ("SPACE_TO_DEPTH", "AddSpaceToDepth"),
    ("SPLIT", "AddSplit"),
    ("SPLIT_V", "AddSplitV"),
    ("SQUEEZE", "AddSqueeze"),
    ("SQRT", "AddSqrt"),
    ("SQUARE", "AddSquare"),
    ("SQUARED_DIFFERENCE", "AddSquaredDifference"),
    ("STRIDED_SLICE", "AddStridedSlice"),
    ("SUB", "AddSub"),
    ("SUM", "AddSum"),
    ("SVDF", "AddSvdf"),
    ("TANH", "AddTanh"),
    ("TRANSPOSE_CONV", "AddTransposeConv"),
    ("TRANSPOSE", "AddTranspose"),
    ("UNPACK", "AddUnpack"),
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM"),
    ("VAR_HANDLE", "AddVarHandle"),
    ("WHILE", "AddWhile"),
    ("ZEROS_LIKE", "AddZerosLike"),
];

/// Custom operators TFLM ships (by custom code), with their resolver methods.
const CUSTOMS: &[(&str, &str)] = &[
    ("CIRCULAR_BUFFER", "AddCircularBuffer"),
    ("TFLM_DECODE", "AddDecode"),
    ("TFLite_Detection_PostProcess", "AddDetectionPostprocess"),
    ("ethos-u", "AddEthosU"),
    ("SignalDelay", "AddDelay"),
    ("SignalEnergy", "AddEnergy"),
    ("SignalFftAutoScale", "AddFftAutoScale"),
    ("SignalFilterBank", "AddFilterBank"),
    ("SignalFilterBankLog", "AddFilterBankLog"),
    ("SignalFilterBankSpectralSubtraction", "AddFilterBankSpectralSubtraction"),
    ("SignalFilterBankSquareRoot", "AddFilterBankSquareRoot"),
    ("SignalFramer", "AddFramer"),
    ("SignalIrfft", "AddIrfft"),
    ("SignalOverlapAdd", "AddOverlapAdd"),
    ("SignalPCAN", "AddPCAN"),
    ("SignalRfft", "AddRfft"),
    ("SignalStacker", "AddStacker"),
    ("SignalWindow", "AddWindow"),
];

/// One reason TFLM cannot run (or should not run) a model as it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "TflmUnsupported"))]
pub struct Unsupported {
    /// The operator's name (builtin name or custom code).
    pub op: String,
    /// The operator's index in its subgraph.
    pub node: usize,
    /// The subgraph, when not the main one.
    #[cfg_attr(test, ts(as = "Option<_>", optional))]
    #[serde(skip_serializing_if = "is_zero")]
    pub subgraph: usize,
    pub reason: String,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// The `MicroMutableOpResolver` method that registers `op`, if TFLM has the operator. Opaque
/// custom operators carry their custom code as their name.
pub fn resolver_method(op: &Op) -> Option<&'static str> {
    let name = op.name();
    let table = match op {
        Op::Opaque(o) if o.payload.get::<crate::tflite::OpaqueOperator>().is_some_and(|t| t.custom_code.is_some()) => {
            CUSTOMS
        }
        _ => BUILTINS,
    };
    table.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

fn dtype_of(g: &Graph, t: Option<usize>) -> Option<DType> {
    t.and_then(|t| g.tensors.get(t)).map(|t| t.dtype)
}

/// The input types TFLM's kernel for `op` evaluates, for the operators the IR models (`None`:
/// any type, as for operators that only move bytes).
fn kernel_types(op: &Op) -> Option<&'static [DType]> {
    use DType::*;
    Some(match op {
        Op::AveragePool2D(_) | Op::MaxPool2D(_) | Op::Softmax { .. } | Op::Logistic | Op::Tanh => &[F32, I8, I16],
        Op::Relu | Op::Relu6 | Op::LeakyRelu { .. } | Op::Transpose => &[F32, I8, I16],
        Op::Add { .. } | Op::Sub { .. } | Op::Mul { .. } | Op::Pad => &[F32, I8, I16, I32],
        Op::HardSwish | Op::ReduceMax { .. } => &[F32, I8],
        Op::Mean { .. } => &[F32, I8, I16],
        Op::Concatenation { .. } => &[F32, I8, I16, I32, I64, Bool],
        Op::StridedSlice(_) => &[F32, I8, I16, I32, Bool],
        Op::Pack { .. } => &[F32, I8, I16, I32, I64],
        Op::Quantize => &[F32, I32, I16, I8, U8],
        Op::Dequantize => &[I8, I16, U8],
        _ => return None,
    })
}

/// Why TFLM's kernel refuses node `n` because of its types or parameters, if it does.
fn kernel_issue(g: &Graph, n: &Node) -> Option<String> {
    let x = dtype_of(g, n.input(0));
    let out = n.output().and_then(|o| g.tensors.get(o));
    if matches!(n.op, Op::Conv2D(_) | Op::DepthwiseConv2D(_) | Op::FullyConnected(_)) {
        let w = dtype_of(g, n.input(1));
        return match (x, w) {
            (Some(DType::F32), Some(DType::F32)) | (Some(DType::I8), Some(DType::I8 | DType::I4)) => None,
            (Some(DType::I16), Some(DType::I8)) => None,
            (Some(DType::F32), Some(DType::I8 | DType::U8)) => Some(
                "hybrid (dynamic-range) weights: int8 weights with float activations; TFLM has no hybrid \
                 kernels (quantize the activations too)"
                    .into(),
            ),
            (x, w) => Some(format!("{} input with {} weights is not a TFLM kernel", name(x), name(w))),
        };
    }
    if let (Some(types), Some(x)) = (kernel_types(&n.op), x) {
        if !types.contains(&x) {
            return Some(format!("TFLM's {} kernel does not take {x} input", n.op.name()));
        }
    }
    let (scale, zp) = out.and_then(|o| o.quant.as_ref()).map_or((0.0, 0), |q| q.single());
    match (&n.op, out.map(|o| o.dtype)) {
        (Op::Softmax { .. }, Some(DType::I8)) if scale != 1.0 / 256.0 || zp != -128 => {
            Some(format!("int8 SOFTMAX output must have scale 1/256 and zero point -128 (has {scale} and {zp})"))
        }
        (Op::Logistic, Some(DType::I8)) if zp != -128 => {
            Some(format!("int8 LOGISTIC output must have zero point -128 (has {zp})"))
        }
        (Op::Shape { .. }, Some(t)) if t != DType::I32 => Some(format!("SHAPE output must be int32 (is {t})")),
        (Op::Quantize, _) if out.and_then(|o| o.quant.as_ref()).is_some_and(|q| q.scale.len() > 1) => {
            Some("QUANTIZE to per-channel parameters".into())
        }
        (Op::Dequantize, Some(t)) if t != DType::F32 => Some(format!("DEQUANTIZE to {t}")),
        _ => None,
    }
}

fn name(t: Option<DType>) -> &'static str {
    t.map_or("no", DType::name)
}

/// Tensor types TFLM does not handle at all (its runtime rejects strings and resources).
fn unsupported_type(g: &Graph, n: &Node) -> Option<DType> {
    n.inputs.iter().flatten().chain(&n.outputs).filter_map(|&t| g.tensors.get(t)).map(|t| t.dtype).find(|d| {
        matches!(d, DType::String | DType::Resource | DType::Variant | DType::Complex128 | DType::U4 | DType::I2)
    })
}

/// Every reason TFLM cannot run graph `g` (subgraph `gi`) as it is; `int8_model` says whether
/// the model is meant to compute in integers (then float operators are reported too).
pub fn graph_issues(g: &Graph, gi: usize, int8_model: bool) -> Vec<Unsupported> {
    let mut out = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let reason = if resolver_method(&n.op).is_none() {
            Some("TFLM has no kernel for this operator".to_string())
        } else if let Some(t) = unsupported_type(g, n) {
            Some(format!("TFLM does not handle {t} tensors"))
        } else if let Some(r) = kernel_issue(g, n) {
            Some(r)
        } else if int8_model && is_float_compute(g, n) {
            Some("float operator in an int8 model: TFLM runs its float kernel (float activations in RAM, slow without an FPU)".into())
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(Unsupported { op: n.op.name().to_string(), node: i, subgraph: gi, reason });
        }
    }
    out
}

/// A node that computes in float: a float output from anything but DEQUANTIZE.
fn is_float_compute(g: &Graph, n: &Node) -> bool {
    !matches!(n.op, Op::Dequantize) && n.output().and_then(|o| g.tensors.get(o)).is_some_and(|t| t.dtype == DType::F32)
}

/// The resolver methods a model needs, in order of first use, each once.
pub fn resolver_ops(graphs: &[Graph]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in graphs.iter().flat_map(|g| &g.nodes) {
        if let Some(m) = resolver_method(&n.op) {
            if !out.iter().any(|o| o == m) {
                out.push(m.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::{Activation, Builder, FullyConnected, QuantParams, TensorData};

    fn fc() -> Op {
        Op::FullyConnected(FullyConnected {
            activation: Activation::None,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        })
    }

    /// `x -> FC -> SOFTMAX`, float unless converted below.
    fn model() -> crate::ir::Model {
        let mut b = Builder::new();
        let x = b.input("x", &[1, 4]);
        let w = b.constant_f32("w", &[3, 4], vec![0.5; 12]);
        let h = b.node(fc(), &[Some(x), Some(w), None], &[1, 3]);
        let y = b.node(Op::Softmax { beta: 1.0 }, &[Some(h)], &[1, 3]);
        b.finish(&[y])
    }

    #[test]
    fn float_model_is_supported_and_lists_its_resolver_methods() {
        let m = model();
        assert!(graph_issues(m.main(), 0, false).is_empty());
        assert_eq!(resolver_ops(&m.graphs), vec!["AddFullyConnected", "AddSoftmax"]);
    }

    #[test]
    fn hybrid_weights_are_refused_with_the_reason() {
        let mut m = model();
        let g = m.main_mut();
        g.tensors[1].dtype = DType::I8;
        g.tensors[1].data = TensorData::from_i8(&[3, 4], vec![1; 12]);
        g.tensors[1].quant = Some(QuantParams::per_tensor(0.01, 0));
        let issues = graph_issues(g, 0, false);
        assert_eq!(issues.len(), 1);
        assert_eq!((issues[0].op.as_str(), issues[0].node), ("FULLY_CONNECTED", 0));
        assert!(issues[0].reason.contains("hybrid"), "{}", issues[0].reason);
    }

    #[test]
    fn int8_softmax_needs_tflms_output_parameters_and_float_ops_are_flagged() {
        let mut m = model();
        let g = m.main_mut();
        for t in [0, 2, 3] {
            g.tensors[t].dtype = DType::I8;
            g.tensors[t].quant = Some(QuantParams::per_tensor(0.1, 0));
        }
        g.tensors[1].dtype = DType::I8;
        g.tensors[1].data = TensorData::from_i8(&[3, 4], vec![1; 12]);
        let issues = graph_issues(g, 0, true);
        assert_eq!(issues.len(), 1);
        assert!(issues[0].reason.contains("1/256"), "{}", issues[0].reason);
        g.tensors[3].quant = Some(QuantParams::per_tensor(1.0 / 256.0, -128));
        assert!(graph_issues(g, 0, true).is_empty());
        // A float SOFTMAX after an int8 layer of an int8 model is flagged.
        g.tensors[3].dtype = DType::F32;
        g.tensors[3].quant = None;
        g.tensors[2].dtype = DType::F32;
        let issues = graph_issues(g, 0, true);
        assert!(issues.iter().any(|u| u.op == "SOFTMAX" && u.reason.contains("float operator")), "{issues:?}");
    }

    #[test]
    fn unknown_operators_have_no_resolver_method() {
        let mut m = model();
        m.main_mut().nodes[1].op = Op::Opaque(crate::ir::Opaque {
            name: "MY_CUSTOM".into(),
            payload: crate::ir::OpaquePayload::new(crate::tflite::OpaqueOperator {
                builtin_code: 32,
                custom_code: Some("MY_CUSTOM".into()),
                version: 1,
                builtin_options: None,
                builtin_options_2: None,
                custom_options: None,
                mutating_variable_inputs: None,
            }),
        });
        let issues = graph_issues(m.main(), 0, false);
        assert_eq!(issues[0].op, "MY_CUSTOM");
        assert_eq!(resolver_ops(&m.graphs), vec!["AddFullyConnected"]);
    }
}
