//! What each TensorFlow Lite Micro kernel allocates in the arena, operator by operator: the parsed
//! options struct, the `OpData` its `Init` allocates, what its `Prepare` allocates (persistent
//! buffers, temporary `TfLiteTensor`s, scratch-buffer requests). Facts from TFLM's reference
//! kernels (`tensorflow/lite/micro/kernels`) and its flatbuffer parsers, with the struct sizes of
//! the build described in [`super::layout`].

use crate::ir::{DType, Graph, Node, TensorId};

use super::layout::{alloc as a, Alloc};

/// The arena allocations of one operator's kernel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelAllocs {
    /// The options struct the flatbuffer parser allocates (`TfLite*Params`), if any.
    pub builtin_data: Option<Alloc>,
    /// The persistent buffer `Init` allocates (the kernel's `OpData`), if any.
    pub op_data: Option<u64>,
    /// Persistent buffers `Prepare` allocates (per-channel multipliers and shifts, tables).
    pub prepare_persistent: Vec<u64>,
    /// The tensors `Prepare` holds as temporary `TfLiteTensor`s at its peak (a tensor may appear
    /// twice when the kernel allocates it again in a helper).
    pub temp_tensors: Vec<TensorId>,
    /// Scratch buffers `Prepare` requests for the operator's evaluation.
    pub scratch: Vec<u64>,
    /// False when TFLM's kernel is not modelled and generic sizes stand in.
    pub modeled: bool,
}

/// Options struct and `OpData` size of TFLM's kernel for `op`, or `None` when not modelled.
fn known(op: &str) -> Option<(Option<Alloc>, Option<u64>)> {
    Some(match op {
        "CONV_2D" | "DEPTHWISE_CONV_2D" => (Some(a(28, 4)), Some(80)),
        "FULLY_CONNECTED" => (Some(a(32, 8)), Some(72)),
        "AVERAGE_POOL_2D" | "MAX_POOL_2D" => (Some(a(40, 4)), Some(32)),
        "ADD" => (Some(a(8, 4)), Some(60)),
        "SUB" => (Some(a(8, 4)), Some(52)),
        "MUL" => (Some(a(4, 4)), Some(36)),
        "RESHAPE" => (Some(a(36, 4)), None),
        "SOFTMAX" => (Some(a(4, 4)), Some(80)),
        "LOGISTIC" | "TANH" => (None, Some(16)),
        "RELU" => (None, Some(28)),
        "RELU6" => (None, Some(8)),
        "LEAKY_RELU" => (Some(a(4, 4)), Some(24)),
        "HARD_SWISH" => (None, Some(20)),
        "CONCATENATION" => (Some(a(8, 4)), Some(80)),
        "PAD" | "PADV2" => (None, Some(56)),
        "MEAN" | "REDUCE_MAX" => (Some(a(1, 1)), Some(44)),
        "QUANTIZE" | "DEQUANTIZE" => (None, Some(32)),
        "TRANSPOSE" => (None, None),
        "SQUEEZE" => (Some(a(36, 4)), None),
        "STRIDED_SLICE" => (Some(a(24, 4)), Some(84)),
        "SHAPE" => (Some(a(4, 4)), None),
        "PACK" => (Some(a(8, 4)), None),
        "UNIDIRECTIONAL_SEQUENCE_LSTM" => (Some(a(16, 4)), Some(688)),
        _ => return None,
    })
}

/// Generic stand-ins for a kernel the planner does not model: a large options struct and `OpData`.
const GENERIC_BUILTIN_DATA: Alloc = a(64, 8);
const GENERIC_OP_DATA: u64 = 128;

fn elements(g: &Graph, t: Option<TensorId>) -> u64 {
    t.and_then(|t| g.tensors.get(t)).map_or(0, |t| t.shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)))
}

fn rank(g: &Graph, t: Option<TensorId>) -> u64 {
    t.and_then(|t| g.tensors.get(t)).map_or(0, |t| t.shape.len() as u64)
}

fn dtype(g: &Graph, t: Option<TensorId>) -> Option<DType> {
    t.and_then(|t| g.tensors.get(t)).map(|t| t.dtype)
}

/// Dimension `axis` of tensor `t` (0 when absent).
fn dim(g: &Graph, t: Option<TensorId>, axis: usize) -> u64 {
    t.and_then(|t| g.tensors.get(t)).and_then(|t| t.shape.get(axis)).map_or(0, |&d| d as u64)
}

/// Per-channel scale count of tensor `t`.
fn channels(g: &Graph, t: Option<TensorId>) -> u64 {
    t.and_then(|t| g.tensors.get(t)).and_then(|t| t.quant.as_ref()).map_or(0, |q| q.scale.len() as u64)
}

/// Persistent buffers and scratch requests of `Prepare`, for the modelled kernels.
fn prepare_buffers(g: &Graph, n: &Node, op: &str) -> (Vec<u64>, Vec<u64>) {
    let (x, w, out) = (n.input(0), n.input(1), n.output());
    let per_channel = |c: u64| vec![4 * c, 4 * c];
    let int4_unpack = if dtype(g, w) == Some(DType::I4) { vec![elements(g, w)] } else { vec![] };
    match op {
        "CONV_2D" => (per_channel(dim(g, w, 0)), int4_unpack),
        "DEPTHWISE_CONV_2D" => (per_channel(dim(g, w, 3)), int4_unpack),
        "FULLY_CONNECTED" if channels(g, w) > 1 => (per_channel(channels(g, w)), int4_unpack),
        "FULLY_CONNECTED" => (vec![], int4_unpack),
        // Int16 output: the exp and 1/(1+x) tables, 513 int16 entries each.
        "SOFTMAX" if dtype(g, out) == Some(DType::I16) || dtype(g, x) == Some(DType::I16) => (vec![1026, 1026], vec![]),
        "MEAN" => {
            let mut s = Vec::new();
            if matches!(dtype(g, x), Some(DType::I8 | DType::I16)) {
                s.push(4 * elements(g, out));
            }
            s.extend([4 * rank(g, x), 4 * elements(g, w)]);
            (vec![], s)
        }
        "REDUCE_MAX" => (vec![], vec![4 * rank(g, x), 4 * elements(g, w)]),
        "UNIDIRECTIONAL_SEQUENCE_LSTM" => {
            // Four gate buffers of batch × state, in the cell state's type.
            let cell = dtype(g, n.input(19)).and_then(DType::size_of).unwrap_or(2) as u64;
            let b = elements(g, n.input(18)).saturating_mul(cell);
            (vec![], vec![b; 4])
        }
        _ => (vec![], vec![]),
    }
}

/// The arena allocations of node `n`'s kernel in TFLM.
pub fn kernel_allocs(g: &Graph, n: &Node) -> KernelAllocs {
    let op = n.op.name();
    let operands: Vec<TensorId> = n.inputs.iter().flatten().chain(n.outputs.iter()).copied().collect();
    let Some((builtin_data, op_data)) = known(op) else {
        return KernelAllocs {
            builtin_data: Some(GENERIC_BUILTIN_DATA),
            op_data: Some(GENERIC_OP_DATA),
            temp_tensors: operands,
            modeled: false,
            ..Default::default()
        };
    };
    let mut temp_tensors = operands;
    // Convolutions compute their parameters in a helper that allocates the operands again while
    // Prepare still holds output, input and filter; TANH's Prepare holds the input around its helper.
    match op {
        "CONV_2D" | "DEPTHWISE_CONV_2D" => {
            temp_tensors.extend(n.output().into_iter().chain(n.input(0)).chain(n.input(1)))
        }
        "TANH" => temp_tensors.extend(n.input(0)),
        _ => {}
    }
    let (prepare_persistent, scratch) = prepare_buffers(g, n, op);
    KernelAllocs { builtin_data, op_data, prepare_persistent, temp_tensors, scratch, modeled: true }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::{Activation, Builder, Conv2D, FullyConnected, Op, Padding, QuantParams};

    #[test]
    fn convolution_allocates_per_channel_parameters_and_holds_seven_temporaries() {
        let mut b = Builder::new();
        let x = b.input("x", &[1, 8, 8, 3]);
        let w = b.constant_f32("w", &[16, 3, 3, 3], vec![0.0; 16 * 27]);
        let conv = Conv2D { padding: Padding::Same, stride: (1, 1), dilation: (1, 1), activation: Activation::None };
        let y = b.node(Op::Conv2D(conv), &[Some(x), Some(w), None], &[1, 8, 8, 16]);
        let m = b.finish(&[y]);
        let g = m.main();
        let k = kernel_allocs(g, &g.nodes[0]);
        assert!(k.modeled);
        assert_eq!(k.builtin_data, Some(a(28, 4)));
        assert_eq!(k.op_data, Some(80));
        assert_eq!(k.prepare_persistent, vec![64, 64]);
        assert_eq!(k.temp_tensors.len(), 2 + 1 + 3);
        assert!(k.scratch.is_empty());
    }

    #[test]
    fn per_channel_fully_connected_and_unmodelled_kernels() {
        let mut b = Builder::new();
        let x = b.input("x", &[1, 4]);
        let w = b.constant_f32("w", &[3, 4], vec![0.0; 12]);
        let fc =
            FullyConnected { activation: Activation::None, keep_num_dims: false, asymmetric_quantize_inputs: false };
        let y = b.node(Op::FullyConnected(fc), &[Some(x), Some(w), None], &[1, 3]);
        let mut m = b.finish(&[y]);
        let g = m.main_mut();
        g.tensors[w].quant = Some(QuantParams::per_channel(vec![0.1, 0.2, 0.3], vec![0; 3], 0));
        let k = kernel_allocs(g, &g.nodes[0]);
        assert_eq!(k.prepare_persistent, vec![12, 12]);
        g.tensors[w].quant = Some(QuantParams::per_tensor(0.1, 0));
        assert!(kernel_allocs(g, &g.nodes[0]).prepare_persistent.is_empty());
        assert!(known("GATHER").is_none());
    }
}
