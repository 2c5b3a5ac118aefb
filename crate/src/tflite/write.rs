//! IR → TFLite file.
//!
//! Tensors no operator, graph edge or signature refers to are dropped; identical constant buffers are
//! stored once; operator codes are deduplicated. Buffer data is 16-byte aligned in the file, which
//! TFLite Micro relies on when it reads weights in place.

use std::collections::HashMap;

use super::schema::tflite as fb;
use super::{code, ops, OpaqueOperator};
use crate::error::{Error, Result};
use crate::ir::{DType, Graph, Model, Node, Op, QuantParams, Tensor, TensorId};

/// Serializes a model. Fails only for a graph whose references are broken.
pub fn write(model: &Model) -> Result<Vec<u8>> {
    model.validate()?;
    let mut w = Writer::default();
    w.buffers.push(fb::Buffer::default()); // buffer 0: the empty sentinel
    let mut subgraphs = Vec::with_capacity(model.graphs.len());
    let mut remaps = Vec::with_capacity(model.graphs.len());
    for (gi, g) in model.graphs.iter().enumerate() {
        let (sg, remap) = w.subgraph(g, &model.signature_tensors(gi))?;
        subgraphs.push(sg);
        remaps.push(remap);
    }
    let mut metadata = Vec::new();
    for (name, bytes) in &model.metadata {
        let buffer = w.add_buffer(bytes.clone());
        metadata.push(fb::Metadata { name: Some(name.clone()), buffer });
    }
    let signature_defs = model
        .signatures
        .iter()
        .map(|s| {
            let remap = &remaps[s.graph];
            let map = |list: &[(String, TensorId)]| {
                list.iter()
                    .map(|(name, t)| fb::TensorMap { name: Some(name.clone()), tensor_index: remap[*t] as u32 })
                    .collect::<Vec<_>>()
            };
            fb::SignatureDef {
                inputs: Some(map(&s.inputs)),
                outputs: Some(map(&s.outputs)),
                signature_key: Some(s.key.clone()),
                subgraph_index: s.graph as u32,
            }
        })
        .collect::<Vec<_>>();
    // The constants are most of the file: room for them up front, so that the builder does not
    // grow (and copy) its buffer over and over while it writes them.
    let data: usize = w.buffers.iter().filter_map(|b| b.data.as_ref()).map(|d| d.len() + 32).sum();
    let fb_model = fb::Model {
        version: 3,
        operator_codes: Some(w.codes),
        subgraphs: Some(subgraphs),
        description: Some(if model.description.is_empty() {
            "tinyml-optimizer".to_string()
        } else {
            model.description.clone()
        }),
        buffers: Some(w.buffers),
        metadata_buffer: None,
        metadata: (!metadata.is_empty()).then_some(metadata),
        signature_defs: (!signature_defs.is_empty()).then_some(signature_defs),
        external_buffer_groups: None,
        external_buffers: None,
    };
    let mut builder = planus::Builder::with_capacity(data + 64 * 1024);
    let mut bytes = builder.finish(&fb_model, Some(*b"TFL3")).to_vec();
    put_identifier_after_root_offset(&mut bytes);
    Ok(bytes)
}

/// planus 1.3 writes the file identifier *before* the root offset (bytes 0..4) with the offset, at
/// bytes 4..8, measured from byte 4 (planus-org/planus PR #377). FlatBuffers wants the root offset
/// first and the identifier at bytes 4..8. Swapping the two words and re-basing the offset to byte 0
/// fixes the header without moving anything else, so buffer alignment is kept.
fn put_identifier_after_root_offset(bytes: &mut [u8]) {
    if bytes.len() < 8 || &bytes[4..8] == b"TFL3" || &bytes[0..4] != b"TFL3" {
        return;
    }
    let from_byte4 = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    bytes[0..4].copy_from_slice(&(from_byte4 + 4).to_le_bytes());
    bytes[4..8].copy_from_slice(b"TFL3");
}

#[derive(Default)]
struct Writer {
    codes: Vec<fb::OperatorCode>,
    buffers: Vec<fb::Buffer>,
    /// Digest of the content → indices of the buffers with it, so identical constants share one
    /// buffer (their bytes are compared).
    buffer_index: HashMap<(usize, u64), Vec<u32>>,
}

/// A quick digest of a buffer's bytes (not cryptographic: equal digests are compared byte for
/// byte), eight bytes at a time: hashing whole constants with the standard hasher cost more than
/// the rest of writing a model.
fn digest(bytes: &[u8]) -> u64 {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder().iter().fold(0u64, |h, &b| (h << 8) | b as u64);
    let mix = |h: u64, w: u64| (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    words.map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).fold(mix(0, tail), mix)
}

fn tensor_type(d: DType) -> fb::TensorType {
    use fb::TensorType as T;
    match d {
        DType::F32 => T::Float32,
        DType::F16 => T::Float16,
        DType::I32 => T::Int32,
        DType::U8 => T::Uint8,
        DType::I64 => T::Int64,
        DType::String => T::String,
        DType::Bool => T::Bool,
        DType::I16 => T::Int16,
        DType::Complex64 => T::Complex64,
        DType::I8 => T::Int8,
        DType::F64 => T::Float64,
        DType::Complex128 => T::Complex128,
        DType::U64 => T::Uint64,
        DType::Resource => T::Resource,
        DType::Variant => T::Variant,
        DType::U32 => T::Uint32,
        DType::U16 => T::Uint16,
        DType::I4 => T::Int4,
        DType::BF16 => T::Bfloat16,
        DType::I2 => T::Int2,
        DType::U4 => T::Uint4,
        DType::F8E4M3 => T::Float8E4m3fn,
        DType::F8E5M2 => T::Float8E5m2,
    }
}

fn quantization(q: &QuantParams) -> fb::QuantizationParameters {
    let opt = |v: &Vec<f32>| (!v.is_empty()).then(|| v.clone());
    fb::QuantizationParameters {
        min: opt(&q.min),
        max: opt(&q.max),
        scale: opt(&q.scale),
        zero_point: (!q.zero_point.is_empty()).then(|| q.zero_point.clone()),
        details: None,
        quantized_dimension: q.axis as i32,
    }
}

impl Writer {
    fn add_buffer(&mut self, bytes: Vec<u8>) -> u32 {
        if bytes.is_empty() {
            return 0;
        }
        let key = (bytes.len(), digest(&bytes));
        let same = self.buffer_index.get(&key).and_then(|list| {
            list.iter().copied().find(|&i| self.buffers[i as usize].data.as_deref() == Some(&bytes[..]))
        });
        if let Some(i) = same {
            return i;
        }
        let i = self.buffers.len() as u32;
        self.buffers.push(fb::Buffer { data: Some(bytes), offset: 0, size: 0 });
        self.buffer_index.entry(key).or_default().push(i);
        i
    }

    fn opcode(&mut self, builtin: i32, custom: Option<&str>, version: i32) -> u32 {
        let found = self
            .codes
            .iter()
            .position(|c| c.builtin_code == builtin && c.custom_code.as_deref() == custom && c.version == version);
        if let Some(i) = found {
            return i as u32;
        }
        self.codes.push(fb::OperatorCode {
            // The legacy byte holds codes below 127; newer codes store the placeholder there.
            deprecated_builtin_code: builtin.min(code::PLACEHOLDER_FOR_GREATER_OP_CODES) as i8,
            custom_code: custom.map(str::to_string),
            version,
            builtin_code: builtin,
        });
        (self.codes.len() - 1) as u32
    }

    fn subgraph(&mut self, g: &Graph, keep_extra: &[TensorId]) -> Result<(fb::SubGraph, Vec<usize>)> {
        // Keep only the tensors something refers to, in their original order.
        let used = g.used_tensors(keep_extra);
        let mut remap = vec![usize::MAX; g.tensors.len()];
        let mut tensors = Vec::new();
        for (i, t) in g.tensors.iter().enumerate() {
            if used[i] {
                remap[i] = tensors.len();
                tensors.push(self.tensor(t));
            }
        }
        let idx = |list: &[TensorId]| list.iter().map(|&t| remap[t] as i32).collect::<Vec<_>>();
        let mut operators = Vec::with_capacity(g.nodes.len());
        for n in &g.nodes {
            operators.push(self.operator(g, n, &remap)?);
        }
        let sg = fb::SubGraph {
            tensors: Some(tensors),
            inputs: Some(idx(&g.inputs)),
            outputs: Some(idx(&g.outputs)),
            operators: Some(operators),
            name: (!g.name.is_empty()).then(|| g.name.clone()),
            debug_metadata_index: -1,
        };
        Ok((sg, remap))
    }

    fn tensor(&mut self, t: &Tensor) -> fb::Tensor {
        let buffer = t.data.as_ref().map(|d| self.add_buffer(d.to_le_bytes())).unwrap_or(0);
        fb::Tensor {
            shape: Some(t.shape.iter().map(|&d| d as i32).collect()),
            type_: tensor_type(t.dtype),
            buffer,
            name: Some(t.name.clone()),
            quantization: t.quant.as_ref().map(|q| Box::new(quantization(q))),
            is_variable: t.is_variable,
            sparsity: None,
            shape_signature: t.shape_signature.as_ref().map(|s| s.iter().map(|&d| d as i32).collect()),
            has_rank: true,
            variant_tensors: None,
            external_buffer: 0,
        }
    }

    fn operator(&mut self, g: &Graph, n: &Node, remap: &[usize]) -> Result<fb::Operator> {
        let inputs = n.inputs.iter().map(|t| t.map_or(-1, |t| remap[t] as i32)).collect();
        let outputs = n.outputs.iter().map(|&t| remap[t] as i32).collect();
        let mut op = fb::Operator {
            inputs: Some(inputs),
            outputs: Some(outputs),
            debug_metadata_index: -1,
            ..Default::default()
        };
        if !n.intermediates.is_empty() {
            op.intermediates = Some(n.intermediates.iter().map(|&i| remap[i] as i32).collect());
        }
        match &n.op {
            Op::Opaque(o) => {
                if cfg!(not(feature = "optimizer")) {
                    let why = "the inference-only build keeps no options tables";
                    let msg = format!(
                        "{}: writing an operator the engine does not execute needs the full engine ({why})",
                        o.name
                    );
                    return Err(Error::unsupported(msg, Default::default()));
                }
                let t = o.payload.get::<OpaqueOperator>().ok_or_else(|| {
                    Error::unsupported(format!("{} was not read from TFLite", o.name), Default::default())
                })?;
                op.opcode_index = self.opcode(t.builtin_code, t.custom_code.as_deref(), t.version);
                #[cfg(feature = "optimizer")]
                {
                    op.builtin_options = t.builtin_options.clone();
                    op.builtin_options_2 = t.builtin_options_2.clone();
                }
                op.custom_options = t.custom_options.clone();
                op.mutating_variable_inputs = t.mutating_variable_inputs.clone();
            }
            Op::FakeQuant => op.opcode_index = self.opcode(code::CUSTOM, Some(super::FAKE_QUANT_CUSTOM), 1),
            known => {
                let (builtin, options) = ops::from_ir(known)
                    .ok_or_else(|| Error::unsupported("operator cannot be written to TFLite", Default::default()))?;
                let version = n.version.map_or_else(|| op_version(g, n), |v| v as i32);
                op.opcode_index = self.opcode(builtin, None, version);
                op.builtin_options = match options {
                    Some(fb::BuiltinOptions::PackOptions(mut o)) => {
                        o.values_count = n.inputs.len() as i32;
                        Some(fb::BuiltinOptions::PackOptions(o))
                    }
                    other => other,
                };
            }
        }
        Ok(op)
    }
}

/// The operator version for a node that has none recorded (one a pass created or rewrote): the
/// lowest version that covers its types and options, following the version history of TFLite's
/// builtin operators closely enough for any runtime to accept the file.
fn op_version(g: &Graph, n: &Node) -> i32 {
    let dt = |i: usize| n.input(i).map(|t| g.tensors[t].dtype);
    let input = dt(0);
    let weights = dt(1);
    let int8 = input == Some(DType::I8);
    let hybrid = input == Some(DType::F32) && matches!(weights, Some(DType::I8) | Some(DType::U8));
    match &n.op {
        Op::Conv2D(c) => {
            if int8 {
                3
            } else if hybrid || c.dilation != (1, 1) {
                2
            } else {
                1
            }
        }
        Op::DepthwiseConv2D(c) => {
            if hybrid {
                6
            } else if int8 {
                3
            } else if c.dilation != (1, 1) {
                2
            } else {
                1
            }
        }
        Op::FullyConnected(f) => {
            if hybrid && f.asymmetric_quantize_inputs {
                7
            } else if f.keep_num_dims {
                5
            } else if int8 {
                4
            } else if hybrid {
                3
            } else {
                1
            }
        }
        Op::AveragePool2D(_)
        | Op::MaxPool2D(_)
        | Op::Add { .. }
        | Op::Sub { .. }
        | Op::Mul { .. }
        | Op::Softmax { .. }
        | Op::Logistic
        | Op::Tanh
        | Op::Relu
        | Op::Relu6
        | Op::LeakyRelu { .. }
        | Op::Concatenation { .. }
        | Op::Pad
        | Op::Mean { .. }
        | Op::ReduceMax { .. }
        | Op::Transpose
        | Op::StridedSlice(_)
        | Op::Dequantize
            if int8 =>
        {
            2
        }
        _ => 1,
    }
}
