//! TFLite file → IR. Every index, offset and length in the file is treated as hostile.

use ndarray::{ArrayD, IxDyn};
use planus::ReadAsRoot;

use super::schema::tflite as fb;
use super::{builtin_name, code, ops, OpaqueOperator};
use crate::error::{Error, Location, Result};
use crate::ir::{DType, Graph, Model, Node, Op, Opaque, OpaquePayload, QuantParams, Signature, Tensor, TensorData};

/// Largest tensor we accept, in elements (2^31: more than any microcontroller model by far).
const MAX_ELEMENTS: usize = 1 << 31;
/// Largest rank we accept.
const MAX_RANK: usize = 8;

/// Reads a `.tflite` file into the IR and validates the graph.
pub fn read(bytes: &[u8]) -> Result<Model> {
    check_header(bytes)?;
    let root = fb::ModelRef::read_as_root(bytes).map_err(|e| Error::format(format!("{e}")))?;
    let model = fb::Model::try_from(root).map_err(|e| Error::format(format!("{e}")))?;
    let ir = Reader { file: bytes, model: &model }.convert()?;
    ir.validate()?;
    Ok(ir)
}

fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Err(Error::format("the file is empty"));
    }
    if bytes.len() < 8 {
        return Err(Error::format(format!(
            "the file is only {} bytes long; a TFLite model has at least 8",
            bytes.len()
        )));
    }
    if super::looks_like_tflite(bytes) {
        return Ok(());
    }
    let hint = if bytes.first() == Some(&0x08) {
        " (it looks like an ONNX/protobuf file; ONNX import is not supported yet)"
    } else if bytes.starts_with(b"\x93NUMPY") {
        " (it is a .npy array, not a model)"
    } else if bytes.starts_with(b"PK") {
        " (it is a zip archive; unpack the .tflite file first)"
    } else if bytes.starts_with(b"\x89HDF") {
        " (it is a Keras .h5 file; convert it to .tflite first)"
    } else {
        ""
    };
    Err(Error::format(format!("missing the TFLite identifier 'TFL3' at byte offset 4{hint}")))
}

struct Reader<'a> {
    file: &'a [u8],
    model: &'a fb::Model,
}

/// A resolved operator code.
struct OpCode {
    builtin: i32,
    custom: Option<String>,
    version: i32,
}

fn dtype(t: fb::TensorType) -> DType {
    use fb::TensorType as T;
    match t {
        T::Float32 => DType::F32,
        T::Float16 => DType::F16,
        T::Int32 => DType::I32,
        T::Uint8 => DType::U8,
        T::Int64 => DType::I64,
        T::String => DType::String,
        T::Bool => DType::Bool,
        T::Int16 => DType::I16,
        T::Complex64 => DType::Complex64,
        T::Int8 => DType::I8,
        T::Float64 => DType::F64,
        T::Complex128 => DType::Complex128,
        T::Uint64 => DType::U64,
        T::Resource => DType::Resource,
        T::Variant => DType::Variant,
        T::Uint32 => DType::U32,
        T::Uint16 => DType::U16,
        T::Int4 => DType::I4,
        T::Bfloat16 => DType::BF16,
        T::Int2 => DType::I2,
        T::Uint4 => DType::U4,
        T::Float8E4m3fn => DType::F8E4M3,
        T::Float8E5m2 => DType::F8E5M2,
    }
}

/// Index into a list, with an error that says which list and how long it is.
fn index(i: i64, len: usize, what: &str, at: &dyn Fn() -> Location) -> Result<usize> {
    if i < 0 || i as u64 >= len as u64 {
        return Err(Error::Format { message: format!("{what} index {i} is out of range (there are {len})"), at: at() });
    }
    Ok(i as usize)
}

impl<'a> Reader<'a> {
    fn convert(&self) -> Result<Model> {
        let m = self.model;
        let codes = self.op_codes()?;
        let subgraphs = m.subgraphs.as_deref().unwrap_or(&[]);
        if subgraphs.is_empty() {
            return Err(Error::format("the model has no subgraphs"));
        }
        let mut graphs = Vec::with_capacity(subgraphs.len());
        for (si, sg) in subgraphs.iter().enumerate() {
            graphs.push(self.subgraph(si, sg, &codes)?);
        }
        let mut metadata = Vec::new();
        for md in m.metadata.as_deref().unwrap_or(&[]) {
            let name = md.name.clone().unwrap_or_default();
            let bytes = self.buffer_bytes(md.buffer as i64, &|| Location::default())?;
            metadata.push((name, bytes.to_vec()));
        }
        let mut signatures = Vec::new();
        for sd in m.signature_defs.as_deref().unwrap_or(&[]) {
            let gi = index(sd.subgraph_index as i64, graphs.len(), "signature subgraph", &Location::default)?;
            let nt = graphs[gi].tensors.len();
            let map = |list: &Option<Vec<fb::TensorMap>>| -> Result<Vec<(String, usize)>> {
                list.as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .map(|tm| {
                        let t = index(tm.tensor_index as i64, nt, "signature tensor", &Location::default)?;
                        Ok((tm.name.clone().unwrap_or_default(), t))
                    })
                    .collect()
            };
            signatures.push(Signature {
                key: sd.signature_key.clone().unwrap_or_default(),
                graph: gi,
                inputs: map(&sd.inputs)?,
                outputs: map(&sd.outputs)?,
            });
        }
        Ok(Model { graphs, description: m.description.clone().unwrap_or_default(), metadata, signatures })
    }

    fn op_codes(&self) -> Result<Vec<OpCode>> {
        Ok(self
            .model
            .operator_codes
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|c| OpCode {
                // The effective code is the larger of the legacy byte and the new int field.
                builtin: (c.deprecated_builtin_code as i32).max(c.builtin_code),
                custom: c.custom_code.clone(),
                version: c.version,
            })
            .collect())
    }

    /// The bytes of buffer `i`: inline data, or a slice of the file for >2 GiB-style offset buffers.
    fn buffer_bytes(&self, i: i64, at: &dyn Fn() -> Location) -> Result<&'a [u8]> {
        let buffers = self.model.buffers.as_deref().unwrap_or(&[]);
        let b = &buffers[index(i, buffers.len(), "buffer", at)?];
        if b.offset > 1 {
            let start = b.offset;
            let end =
                start.checked_add(b.size).filter(|&e| e <= self.file.len() as u64).ok_or_else(|| Error::Format {
                    message: format!(
                        "buffer {i} points at bytes {}..+{} outside the {}-byte file",
                        b.offset,
                        b.size,
                        self.file.len()
                    ),
                    at: at(),
                })?;
            return Ok(&self.file[start as usize..end as usize]);
        }
        // Inline data lives in the flatbuffer; `try_from` already copied it, so borrow from the model.
        Ok(b.data.as_deref().unwrap_or(&[]))
    }

    fn subgraph(&self, si: usize, sg: &fb::SubGraph, codes: &[OpCode]) -> Result<Graph> {
        let fb_tensors = sg.tensors.as_deref().unwrap_or(&[]);
        let mut tensors = Vec::with_capacity(fb_tensors.len());
        for (ti, t) in fb_tensors.iter().enumerate() {
            let loc = || Location::tensor(ti, t.name.as_deref().unwrap_or(""));
            tensors.push(self.tensor(t).map_err(|e| e.at(loc()))?);
        }
        let nt = tensors.len();
        let tensor_list = |list: &Option<Vec<i32>>, what: &str, node: Option<usize>| -> Result<Vec<usize>> {
            list.as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|&i| {
                    index(i as i64, nt, what, &|| match node {
                        Some(n) => Location { node: Some(n), ..Default::default() },
                        None => Location::default(),
                    })
                })
                .collect()
        };
        let inputs = tensor_list(&sg.inputs, &format!("subgraph {si} input tensor"), None)?;
        let outputs = tensor_list(&sg.outputs, &format!("subgraph {si} output tensor"), None)?;
        let mut nodes = Vec::new();
        for (ni, op) in sg.operators.as_deref().unwrap_or(&[]).iter().enumerate() {
            let ci = index(op.opcode_index as i64, codes.len(), "operator code", &|| Location {
                node: Some(ni),
                ..Default::default()
            })?;
            let oc = &codes[ci];
            let name = if oc.builtin == code::CUSTOM {
                oc.custom.clone().unwrap_or_else(|| "CUSTOM".into())
            } else {
                builtin_name(oc.builtin)
            };
            let loc = || Location::node(ni, &name);
            let node_inputs = op
                .inputs
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|&i| if i == -1 { Ok(None) } else { index(i as i64, nt, "operand tensor", &loc).map(Some) })
                .collect::<Result<Vec<_>>>()?;
            let node_outputs = tensor_list(&op.outputs, "output tensor", Some(ni)).map_err(|e| e.at(loc()))?;
            let intermediates = tensor_list(&op.intermediates, "intermediate tensor", Some(ni))?;
            let plain = op.custom_options.is_none()
                && op.builtin_options_2.is_none()
                && op.mutating_variable_inputs.as_ref().is_none_or(|v| v.iter().all(|b| !b))
                && oc.builtin != code::CUSTOM;
            let ir_op = if plain { ops::to_ir(oc.builtin, op.builtin_options.as_ref()) } else { None };
            let ir_op = match ir_op {
                Some(o) => o,
                None => {
                    if op.large_custom_options_offset > 1 {
                        return Err(Error::unsupported("custom options stored outside the flatbuffer", loc()));
                    }
                    Op::Opaque(Opaque {
                        name: name.clone(),
                        payload: OpaquePayload::new(OpaqueOperator {
                            builtin_code: oc.builtin,
                            custom_code: oc.custom.clone(),
                            version: oc.version,
                            builtin_options: op.builtin_options.clone(),
                            builtin_options_2: op.builtin_options_2.clone(),
                            custom_options: op.custom_options.clone(),
                            mutating_variable_inputs: op.mutating_variable_inputs.clone(),
                        }),
                    })
                }
            };
            nodes.push(Node {
                op: ir_op,
                inputs: node_inputs,
                outputs: node_outputs,
                intermediates,
                version: u32::try_from(oc.version).ok(),
            });
        }
        Ok(Graph { name: sg.name.clone().unwrap_or_default(), tensors, nodes, inputs, outputs })
    }

    fn tensor(&self, t: &fb::Tensor) -> Result<Tensor> {
        let dt = dtype(t.type_);
        let raw_shape = t.shape.as_deref().unwrap_or(&[]);
        if raw_shape.len() > MAX_RANK {
            return Err(Error::format(format!("rank {} exceeds the maximum of {MAX_RANK}", raw_shape.len())));
        }
        let mut shape = Vec::with_capacity(raw_shape.len());
        let mut elements: usize = 1;
        for &d in raw_shape {
            if d < 0 {
                return Err(Error::format(format!("shape {raw_shape:?} has a negative dimension")));
            }
            shape.push(d as usize);
            elements = elements
                .checked_mul(d as usize)
                .filter(|&e| e <= MAX_ELEMENTS)
                .ok_or_else(|| Error::format(format!("shape {raw_shape:?} has too many elements")))?;
        }
        if t.sparsity.is_some() {
            return Err(Error::unsupported("sparse tensors (TFLite sparsity encoding)", Location::default()));
        }
        if t.external_buffer != 0 {
            return Err(Error::unsupported("tensor data in an external file", Location::default()));
        }
        let quant = match &t.quantization {
            Some(q) => self.quant(q, &shape)?,
            None => None,
        };
        let bytes = self.buffer_bytes(t.buffer as i64, &Location::default)?;
        let data = if bytes.is_empty() { None } else { Some(decode(dt, &shape, elements, bytes)?) };
        Ok(Tensor {
            name: t.name.clone().unwrap_or_default(),
            dtype: dt,
            shape,
            shape_signature: t.shape_signature.as_ref().map(|s| s.iter().map(|&d| d as i64).collect()),
            quant,
            data,
            is_variable: t.is_variable,
        })
    }

    fn quant(&self, q: &fb::QuantizationParameters, shape: &[usize]) -> Result<Option<QuantParams>> {
        if q.details.is_some() {
            return Err(Error::unsupported("custom or block-wise quantization parameters", Location::default()));
        }
        let scale = q.scale.clone().unwrap_or_default();
        let zero_point = q.zero_point.clone().unwrap_or_default();
        let min = q.min.clone().unwrap_or_default();
        let max = q.max.clone().unwrap_or_default();
        if scale.is_empty() && zero_point.is_empty() && min.is_empty() && max.is_empty() {
            return Ok(None);
        }
        if !zero_point.is_empty() && zero_point.len() != scale.len() && zero_point.len() != 1 {
            return Err(Error::format(format!(
                "quantization has {} scales but {} zero points",
                scale.len(),
                zero_point.len()
            )));
        }
        if q.quantized_dimension < 0 {
            return Err(Error::format(format!("negative quantized_dimension {}", q.quantized_dimension)));
        }
        let mut axis = q.quantized_dimension as usize;
        if scale.len() > 1 && shape.len() == 1 && axis >= 1 && shape[0] == scale.len() {
            // Some converters tag a per-channel bias with the weights' channel dimension (e.g. 3).
            // A rank-1 tensor has one dimension, so that is the only reading; TFLite Micro reads it so.
            axis = 0;
        }
        if scale.len() > 1 {
            if axis >= shape.len() {
                return Err(Error::format(format!(
                    "per-channel quantization along dimension {axis} of a rank-{} tensor",
                    shape.len()
                )));
            }
            if shape[axis] != scale.len() {
                return Err(Error::format(format!(
                    "{} per-channel scales for dimension {axis} of size {}",
                    scale.len(),
                    shape[axis]
                )));
            }
        }
        if scale.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return Err(Error::format("quantization scale is negative, NaN or infinite"));
        }
        Ok(Some(QuantParams { scale, zero_point, axis, min, max }))
    }
}

/// Decodes little-endian buffer bytes into typed tensor data, checking the size exactly.
fn decode(dt: DType, shape: &[usize], elements: usize, bytes: &[u8]) -> Result<TensorData> {
    if let Some(size) = dt.size_of() {
        let want = elements.checked_mul(size).ok_or_else(|| Error::format("tensor too large"))?;
        if bytes.len() != want {
            return Err(Error::format(format!(
                "buffer holds {} bytes but shape {shape:?} of {dt} needs {want}",
                bytes.len()
            )));
        }
    }
    fn arr<T, const N: usize>(shape: &[usize], bytes: &[u8], f: fn([u8; N]) -> T) -> Result<ArrayD<T>> {
        let v: Vec<T> = bytes.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect();
        ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| Error::format(format!("tensor data: {e}")))
    }
    Ok(match dt {
        DType::F32 => TensorData::F32(arr(shape, bytes, f32::from_le_bytes)?),
        DType::I8 => TensorData::I8(arr(shape, bytes, i8::from_le_bytes)?),
        DType::U8 => TensorData::U8(arr(shape, bytes, u8::from_le_bytes)?),
        DType::I16 => TensorData::I16(arr(shape, bytes, i16::from_le_bytes)?),
        DType::I32 => TensorData::I32(arr(shape, bytes, i32::from_le_bytes)?),
        DType::I64 => TensorData::I64(arr(shape, bytes, i64::from_le_bytes)?),
        _ => TensorData::Raw(bytes.to_vec()),
    })
}
