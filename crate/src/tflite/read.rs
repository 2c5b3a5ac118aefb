//! TFLite file → IR. Every index, offset and length in the file is treated as hostile, and so is
//! the file's structure: flatbuffer tables, vectors and strings may be shared by any number of
//! references, so the reader reads the file in place and copies only what the IR keeps, charging
//! every copy to a [`Meter`] bounded by a small multiple of the file's size ([`Budget`]). A file
//! whose 1,024 `buffers` entries all point at one 1 MiB buffer is refused instead of taking 1 GiB.

use std::mem::size_of;

use ndarray::{ArrayD, IxDyn};
use planus::{ReadAsRoot, Vector};

use super::schema::tflite as fb;
use super::{builtin_name, code, ops, OpaqueOperator};
use crate::budget::{self, Budget, Meter};
use crate::error::{Error, Location, Result};
use crate::ir::{DType, Graph, Model, Node, Op, Opaque, OpaquePayload, QuantParams, Signature, Tensor, TensorData};

/// Largest rank we accept.
const MAX_RANK: usize = 8;
/// What an owned options table costs beyond its vectors and strings (the box and its scalars).
const OPTIONS_BASE: u64 = 128;

/// Reads a `.tflite` file into the IR and validates the graph, within the default [`Budget`].
pub fn read(bytes: &[u8]) -> Result<Model> {
    read_with(bytes, &Budget::default())
}

/// Reads a `.tflite` file within `budget`: no tensor may declare more than its
/// `max_tensor_bytes`, and the IR may not take more than its reader limit for this file size.
pub fn read_with(bytes: &[u8], budget: &Budget) -> Result<Model> {
    check_header(bytes)?;
    let model = fb::ModelRef::read_as_root(bytes).map_err(planus_err)?;
    let buffers = fb_(model.buffers())?;
    let mut r = Reader { file: bytes, model, buffers, budget, meter: budget.reader_meter(bytes.len()) };
    let ir = r.convert()?;
    ir.validate()?;
    Ok(ir)
}

fn planus_err(e: planus::Error) -> Error {
    Error::format(e.to_string())
}

/// A flatbuffer access, its error as a format error.
fn fb_<T>(r: planus::Result<T>) -> Result<T> {
    r.map_err(planus_err)
}

/// Length of an optional vector field, times `elem` bytes per entry.
fn vec_bytes<T>(v: planus::Result<Option<Vector<'_, T>>>, elem: u64) -> Result<u64> {
    Ok(fb_(v)?.map_or(0, |v| v.len() as u64 * elem))
}

/// Length of an optional byte-vector field (in `builtin_options_2` tables only, which only the full
/// engine copies).
#[cfg(feature = "optimizer")]
fn bytes_len(v: planus::Result<Option<&[u8]>>) -> Result<u64> {
    Ok(fb_(v)?.map_or(0, |s| s.len() as u64))
}

/// Length of an optional string field.
fn str_bytes(v: planus::Result<Option<&str>>) -> Result<u64> {
    Ok(fb_(v)?.map_or(0, |s| s.len() as u64))
}

/// An optional vector of plain values, copied.
fn vec_of<'a, T: planus::VectorRead<'a>>(v: planus::Result<Option<Vector<'a, T>>>) -> Result<Vec<T>> {
    Ok(fb_(v)?.map(|v| v.iter().collect()).unwrap_or_default())
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

struct Reader<'a, 'b> {
    file: &'a [u8],
    model: fb::ModelRef<'a>,
    buffers: Option<Vector<'a, planus::Result<fb::BufferRef<'a>>>>,
    budget: &'b Budget,
    meter: Meter,
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

impl<'a> Reader<'a, '_> {
    /// Charges `bytes` the IR is about to copy out of the file.
    fn charge(&mut self, bytes: u64) -> Result<()> {
        self.meter.charge(bytes)
    }

    /// Charges the copy of `n` items of type `T` (the IR's own structures).
    fn charge_items<T>(&mut self, n: usize) -> Result<()> {
        self.charge((n as u64).saturating_mul(size_of::<T>() as u64))
    }

    /// A copy of an optional string field, charged.
    fn string(&mut self, v: planus::Result<Option<&str>>) -> Result<String> {
        let s = fb_(v)?.unwrap_or_default();
        self.charge(s.len() as u64)?;
        Ok(s.to_string())
    }

    fn convert(&mut self) -> Result<Model> {
        let m = self.model;
        let codes = self.op_codes()?;
        let subgraphs = fb_(m.subgraphs())?;
        let count = subgraphs.map_or(0, |v| v.len());
        if count == 0 {
            return Err(Error::format("the model has no subgraphs"));
        }
        self.charge_items::<Graph>(count)?;
        let mut graphs = Vec::with_capacity(count);
        for (si, sg) in subgraphs.into_iter().flatten().enumerate() {
            graphs.push(self.subgraph(si, fb_(sg)?, &codes)?);
        }
        let metadata = self.metadata()?;
        let signatures = self.signatures(&graphs)?;
        let description = self.string(m.description())?;
        Ok(Model { graphs, description, metadata, signatures })
    }

    fn metadata(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        let list = fb_(self.model.metadata())?;
        self.charge_items::<(String, Vec<u8>)>(list.map_or(0, |v| v.len()))?;
        let mut out = Vec::new();
        for md in list.into_iter().flatten() {
            let md = fb_(md)?;
            let name = self.string(md.name())?;
            let bytes = self.buffer_bytes(fb_(md.buffer())? as i64, &Location::default)?;
            self.charge(bytes.len() as u64)?;
            out.push((name, bytes.to_vec()));
        }
        Ok(out)
    }

    fn signatures(&mut self, graphs: &[Graph]) -> Result<Vec<Signature>> {
        let list = fb_(self.model.signature_defs())?;
        self.charge_items::<Signature>(list.map_or(0, |v| v.len()))?;
        let mut out = Vec::new();
        for sd in list.into_iter().flatten() {
            let sd = fb_(sd)?;
            let gi = index(fb_(sd.subgraph_index())? as i64, graphs.len(), "signature subgraph", &Location::default)?;
            let nt = graphs[gi].tensors.len();
            let inputs = self.tensor_maps(fb_(sd.inputs())?, nt)?;
            let outputs = self.tensor_maps(fb_(sd.outputs())?, nt)?;
            out.push(Signature { key: self.string(sd.signature_key())?, graph: gi, inputs, outputs });
        }
        Ok(out)
    }

    fn tensor_maps(
        &mut self,
        list: Option<Vector<'a, planus::Result<fb::TensorMapRef<'a>>>>,
        nt: usize,
    ) -> Result<Vec<(String, usize)>> {
        self.charge_items::<(String, usize)>(list.map_or(0, |v| v.len()))?;
        let mut out = Vec::new();
        for tm in list.into_iter().flatten() {
            let tm = fb_(tm)?;
            let t = index(fb_(tm.tensor_index())? as i64, nt, "signature tensor", &Location::default)?;
            out.push((self.string(tm.name())?, t));
        }
        Ok(out)
    }

    fn op_codes(&mut self) -> Result<Vec<OpCode>> {
        let list = fb_(self.model.operator_codes())?;
        self.charge_items::<OpCode>(list.map_or(0, |v| v.len()))?;
        let mut out = Vec::new();
        for c in list.into_iter().flatten() {
            let c = fb_(c)?;
            let custom = match fb_(c.custom_code())? {
                Some(_) => Some(self.string(c.custom_code())?),
                None => None,
            };
            out.push(OpCode {
                // The effective code is the larger of the legacy byte and the new int field.
                builtin: (fb_(c.deprecated_builtin_code())? as i32).max(fb_(c.builtin_code())?),
                custom,
                version: fb_(c.version())?,
            });
        }
        Ok(out)
    }

    /// The bytes of buffer `i`: inline data, or a slice of the file for >2 GiB-style offset buffers.
    /// Borrowed from the file; the caller charges what it copies.
    fn buffer_bytes(&self, i: i64, at: &dyn Fn() -> Location) -> Result<&'a [u8]> {
        let buffers = self.buffers;
        let b = match buffers {
            Some(v) => v.get(index(i, v.len(), "buffer", at)?),
            None => None,
        };
        let b = match b {
            Some(b) => fb_(b)?,
            None => return Err(index(i, 0, "buffer", at).err().unwrap_or_else(|| Error::format("no buffers"))),
        };
        let (offset, size) = (fb_(b.offset())?, fb_(b.size())?);
        if offset > 1 {
            let end =
                offset.checked_add(size).filter(|&e| e <= self.file.len() as u64).ok_or_else(|| Error::Format {
                    message: format!(
                        "buffer {i} points at bytes {offset}..+{size} outside the {}-byte file",
                        self.file.len()
                    ),
                    at: at(),
                })?;
            return Ok(&self.file[offset as usize..end as usize]);
        }
        Ok(fb_(b.data())?.unwrap_or(&[]))
    }

    /// A list of tensor indices (graph inputs/outputs, operator outputs), checked and charged.
    fn tensor_list(
        &mut self,
        list: Option<Vector<'a, i32>>,
        nt: usize,
        what: &str,
        node: Option<usize>,
    ) -> Result<Vec<usize>> {
        self.charge_items::<usize>(list.map_or(0, |v| v.len()))?;
        let at = || Location { node, ..Default::default() };
        list.into_iter().flatten().map(|i| index(i as i64, nt, what, &at)).collect()
    }

    fn subgraph(&mut self, si: usize, sg: fb::SubGraphRef<'a>, codes: &[OpCode]) -> Result<Graph> {
        let fb_tensors = fb_(sg.tensors())?;
        let count = fb_tensors.map_or(0, |v| v.len());
        self.charge_items::<Tensor>(count)?;
        let mut tensors = Vec::with_capacity(count);
        for (ti, t) in fb_tensors.into_iter().flatten().enumerate() {
            let t = fb_(t)?;
            let name = self.string(t.name()).map_err(|e| e.at(Location::tensor(ti, "")))?;
            let loc = || Location::tensor(ti, &name);
            tensors.push(self.tensor(t, ti, name.clone()).map_err(|e| e.at(loc()))?);
        }
        let nt = tensors.len();
        let inputs = self.tensor_list(fb_(sg.inputs())?, nt, &format!("subgraph {si} input tensor"), None)?;
        let outputs = self.tensor_list(fb_(sg.outputs())?, nt, &format!("subgraph {si} output tensor"), None)?;
        let operators = fb_(sg.operators())?;
        self.charge_items::<Node>(operators.map_or(0, |v| v.len()))?;
        let mut nodes = Vec::new();
        for (ni, op) in operators.into_iter().flatten().enumerate() {
            nodes.push(self.node(ni, fb_(op)?, codes, nt)?);
        }
        Ok(Graph { name: self.string(sg.name())?, tensors, nodes, inputs, outputs })
    }

    fn node(&mut self, ni: usize, op: fb::OperatorRef<'a>, codes: &[OpCode], nt: usize) -> Result<Node> {
        let ci = index(fb_(op.opcode_index())? as i64, codes.len(), "operator code", &|| Location {
            node: Some(ni),
            ..Default::default()
        })?;
        let oc = &codes[ci];
        let name = if oc.builtin == code::CUSTOM {
            oc.custom.clone().unwrap_or_else(|| "CUSTOM".into())
        } else {
            builtin_name(oc.builtin)
        };
        self.charge(name.len() as u64)?;
        let loc = || Location::node(ni, &name);
        let operands = fb_(op.inputs())?;
        self.charge_items::<Option<usize>>(operands.map_or(0, |v| v.len()))?;
        let inputs = operands
            .into_iter()
            .flatten()
            .map(|i| if i == -1 { Ok(None) } else { index(i as i64, nt, "operand tensor", &loc).map(Some) })
            .collect::<Result<Vec<_>>>()?;
        let outputs = self.tensor_list(fb_(op.outputs())?, nt, "output tensor", Some(ni)).map_err(|e| e.at(loc()))?;
        let intermediates = self.tensor_list(fb_(op.intermediates())?, nt, "intermediate tensor", Some(ni))?;
        let options = self.options(&op).map_err(|e| e.at(loc()))?;
        let custom_options = fb_(op.custom_options())?;
        let mutating = vec_of(op.mutating_variable_inputs())?;
        let plain = custom_options.is_none()
            && options.complete
            && options.two.is_none()
            && mutating.iter().all(|b| !b)
            && oc.builtin != code::CUSTOM;
        let fake_quant = oc.builtin == code::CUSTOM
            && oc.custom.as_deref() == Some(super::FAKE_QUANT_CUSTOM)
            && custom_options.is_none()
            && inputs.len() == 3;
        let ir_op = if plain {
            ops::to_ir(oc.builtin, options.one.as_ref())
        } else if fake_quant {
            Some(Op::FakeQuant)
        } else {
            None
        };
        let op = match ir_op {
            Some(o) => o,
            None => {
                if fb_(op.large_custom_options_offset())? > 1 {
                    return Err(Error::unsupported("custom options stored outside the flatbuffer", loc()));
                }
                let custom_bytes = custom_options.map_or(0, |c| c.len());
                let code_bytes = oc.custom.as_ref().map_or(0, |c| c.len());
                self.charge((size_of::<OpaqueOperator>() + custom_bytes + code_bytes + name.len()) as u64)?;
                Op::Opaque(Opaque {
                    name,
                    payload: OpaquePayload::new(OpaqueOperator {
                        builtin_code: oc.builtin,
                        custom_code: oc.custom.clone(),
                        version: oc.version,
                        #[cfg(feature = "optimizer")]
                        builtin_options: options.one,
                        #[cfg(feature = "optimizer")]
                        builtin_options_2: options.two,
                        custom_options: custom_options.map(<[u8]>::to_vec),
                        mutating_variable_inputs: fb_(op.mutating_variable_inputs())?.map(|_| mutating),
                    }),
                })
            }
        };
        Ok(Node { op, inputs, outputs, intermediates, version: u32::try_from(oc.version).ok() })
    }

    /// The operator's two options tables as owned values, charged before they are copied.
    fn options(&mut self, op: &fb::OperatorRef<'a>) -> Result<Options> {
        let mut complete = true;
        let one = match fb_(op.builtin_options())? {
            Some(o) => {
                self.charge(OPTIONS_BASE + options_bytes(&o)?)?;
                let owned = owned_options(o)?;
                complete &= owned.is_some();
                owned
            }
            None => None,
        };
        let two = match fb_(op.builtin_options_2())? {
            Some(o) => {
                let owned = self.options2(o)?;
                complete &= owned.is_some();
                owned
            }
            None => None,
        };
        Ok(Options { one, two, complete })
    }

    /// An owned copy of a `builtin_options_2` table, charged before it is copied. The full engine
    /// copies every kind (see [`owned_options`]).
    #[cfg(feature = "optimizer")]
    fn options2(&mut self, o: fb::BuiltinOptions2Ref<'_>) -> Result<Option<fb::BuiltinOptions2>> {
        self.charge(OPTIONS_BASE + options2_bytes(&o)?)?;
        fb_(fb::BuiltinOptions2::try_from(o)).map(Some)
    }

    /// [`ops::to_ir`] reads no `builtin_options_2` table: the inference-only core copies none.
    #[cfg(not(feature = "optimizer"))]
    fn options2(&mut self, _: fb::BuiltinOptions2Ref<'_>) -> Result<Option<fb::BuiltinOptions2>> {
        Ok(None)
    }

    fn tensor(&mut self, t: fb::TensorRef<'a>, ti: usize, name: String) -> Result<Tensor> {
        let dt = dtype(fb_(t.type_())?);
        let raw_shape = fb_(t.shape())?;
        let rank = raw_shape.map_or(0, |v| v.len());
        if rank > MAX_RANK {
            return Err(Error::format(format!("rank {rank} exceeds the maximum of {MAX_RANK}")));
        }
        let raw_shape: Vec<i32> = vec_of(t.shape())?;
        if raw_shape.iter().any(|&d| d < 0) {
            return Err(Error::format(format!("shape {raw_shape:?} has a negative dimension")));
        }
        let shape: Vec<usize> = raw_shape.iter().map(|&d| d as usize).collect();
        self.budget.tensor_bytes(&shape, dt, &tensor_name(ti, &name))?;
        if fb_(t.sparsity())?.is_some() {
            return Err(Error::unsupported("sparse tensors (TFLite sparsity encoding)", Location::default()));
        }
        if fb_(t.external_buffer())? != 0 {
            return Err(Error::unsupported("tensor data in an external file", Location::default()));
        }
        let quant = match fb_(t.quantization())? {
            Some(q) => self.quant(q, &shape)?,
            None => None,
        };
        let signature = fb_(t.shape_signature())?;
        self.charge(rank as u64 * 8 + vec_bytes(t.shape_signature(), 8)?)?;
        let shape_signature = signature.map(|s| s.iter().map(|d| d as i64).collect());
        let bytes = self.buffer_bytes(fb_(t.buffer())? as i64, &Location::default)?;
        self.charge(bytes.len() as u64)?;
        let data = if bytes.is_empty() { None } else { Some(decode(dt, &shape, bytes)?) };
        Ok(Tensor { name, dtype: dt, shape, shape_signature, quant, data, is_variable: fb_(t.is_variable())? })
    }

    fn quant(&mut self, q: fb::QuantizationParametersRef<'a>, shape: &[usize]) -> Result<Option<QuantParams>> {
        if fb_(q.details())?.is_some() {
            return Err(Error::unsupported("custom or block-wise quantization parameters", Location::default()));
        }
        let size =
            vec_bytes(q.scale(), 4)? + vec_bytes(q.zero_point(), 8)? + vec_bytes(q.min(), 4)? + vec_bytes(q.max(), 4)?;
        self.charge(size + size_of::<QuantParams>() as u64)?;
        let scale: Vec<f32> = vec_of(q.scale())?;
        let zero_point: Vec<i64> = vec_of(q.zero_point())?;
        let min: Vec<f32> = vec_of(q.min())?;
        let max: Vec<f32> = vec_of(q.max())?;
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
        let dim = fb_(q.quantized_dimension())?;
        if dim < 0 {
            return Err(Error::format(format!("negative quantized_dimension {dim}")));
        }
        let mut axis = dim as usize;
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

fn tensor_name(ti: usize, name: &str) -> String {
    if name.is_empty() {
        format!("tensor {ti}")
    } else {
        format!("tensor {ti} '{name}'")
    }
}

/// An operator's options tables, owned. `complete` is false when a table was left out (only the
/// inference-only core leaves any out: see [`owned_options`]); the operator is then opaque.
struct Options {
    one: Option<fb::BuiltinOptions>,
    two: Option<fb::BuiltinOptions2>,
    complete: bool,
}

/// An owned copy of a `builtin_options` table. The full engine copies every kind: an operator it
/// cannot execute keeps its tables, to be written back unchanged.
#[cfg(feature = "optimizer")]
fn owned_options(o: fb::BuiltinOptionsRef<'_>) -> Result<Option<fb::BuiltinOptions>> {
    fb_(fb::BuiltinOptions::try_from(o)).map(Some)
}

/// Calls `$then!` with the options kinds [`ops::to_ir`] reads: the only ones the inference-only
/// core copies. A test (`core_copies_every_options_kind_to_ir_reads`) checks this list against
/// `to_ir`'s source, so an operator the IR learns cannot silently stay opaque in the core.
#[cfg(any(test, not(feature = "optimizer")))]
macro_rules! ir_options_kinds {
    ($then:ident) => {
        $then!(
            AddOptions,
            ConcatenationOptions,
            Conv2DOptions,
            DepthwiseConv2DOptions,
            DequantizeOptions,
            FullyConnectedOptions,
            HardSwishOptions,
            LeakyReluOptions,
            MulOptions,
            PackOptions,
            PadOptions,
            Pool2DOptions,
            QuantizeOptions,
            ReducerOptions,
            ReshapeOptions,
            ShapeOptions,
            SoftmaxOptions,
            SqueezeOptions,
            StridedSliceOptions,
            SubOptions,
            TransposeOptions,
            UnidirectionalSequenceLstmOptions
        )
    };
}

/// An owned copy of a `builtin_options` table, if it is one of the kinds [`ops::to_ir`] reads
/// ([`ir_options_kinds`]; `None` for the others). The inference-only core never writes a model
/// back, so an operator it cannot execute needs no copy of its options; copying only these kinds
/// keeps the conversions of the other ~170 kinds of table out of its download.
#[cfg(not(feature = "optimizer"))]
fn owned_options(o: fb::BuiltinOptionsRef<'_>) -> Result<Option<fb::BuiltinOptions>> {
    use fb::{BuiltinOptions as B, BuiltinOptionsRef as R};
    macro_rules! kinds {
        ($($kind:ident),*) => {
            Ok(match o {
                $(R::$kind(t) => Some(B::$kind(Box::new(fb_(t.try_into())?))),)*
                _ => None,
            })
        };
    }
    ir_options_kinds!(kinds)
}

/// Bytes of the vectors and strings an owned copy of a `builtin_options` table holds.
fn options_bytes(o: &fb::BuiltinOptionsRef<'_>) -> Result<u64> {
    use fb::BuiltinOptionsRef as O;
    Ok(match o {
        O::ReshapeOptions(t) => vec_bytes(t.new_shape(), 4)?,
        O::SqueezeOptions(t) => vec_bytes(t.squeeze_dims(), 4)?,
        O::BucketizeOptions(t) => vec_bytes(t.boundaries(), 4)?,
        O::ConcatEmbeddingsOptions(t) => {
            vec_bytes(t.num_columns_per_channel(), 4)? + vec_bytes(t.embedding_dim_per_channel(), 4)?
        }
        O::VarHandleOptions(t) => str_bytes(t.container())? + str_bytes(t.shared_name())?,
        _ => 0,
    })
}

/// Bytes of the vectors and strings an owned copy of a `builtin_options_2` table holds.
#[cfg(feature = "optimizer")]
fn options2_bytes(o: &fb::BuiltinOptions2Ref<'_>) -> Result<u64> {
    use fb::BuiltinOptions2Ref as O;
    Ok(match o {
        O::StablehloBroadcastInDimOptions(t) => vec_bytes(t.broadcast_dimensions(), 8)?,
        O::StablehloSliceOptions(t) => {
            vec_bytes(t.start_indices(), 8)? + vec_bytes(t.limit_indices(), 8)? + vec_bytes(t.strides(), 8)?
        }
        O::StablehloConvolutionOptions(t) => {
            vec_bytes(t.window_strides(), 8)?
                + vec_bytes(t.padding(), 8)?
                + vec_bytes(t.lhs_dilation(), 8)?
                + vec_bytes(t.rhs_dilation(), 8)?
                + vec_bytes(t.window_reversal(), 1)?
                + vec_bytes(t.input_spatial_dimensions(), 8)?
                + vec_bytes(t.kernel_spatial_dimensions(), 8)?
                + vec_bytes(t.output_spatial_dimensions(), 8)?
                + vec_bytes(t.precision_config(), 4)?
        }
        O::StablehloCustomCallOptions(t) => {
            str_bytes(t.call_target_name())?
                + str_bytes(t.backend_config())?
                + vec_bytes(t.called_computations(), 4)?
                + bytes_len(t.custom_attributes())?
        }
        O::StablehloReduceOptions(t) => vec_bytes(t.dimensions(), 8)?,
        O::StablehloScatterOptions(t) => {
            vec_bytes(t.update_window_dims(), 8)?
                + vec_bytes(t.inserted_window_dims(), 8)?
                + vec_bytes(t.scatter_dims_to_operand_dims(), 8)?
        }
        O::StablehloDynamicSliceOptions(t) => vec_bytes(t.slice_sizes(), 8)?,
        O::StablehloPadOptions(t) => {
            vec_bytes(t.edge_padding_low(), 8)?
                + vec_bytes(t.edge_padding_high(), 8)?
                + vec_bytes(t.interior_padding(), 8)?
        }
        O::StablehloDotGeneralOptions(t) => {
            vec_bytes(t.lhs_batching_dimensions(), 8)?
                + vec_bytes(t.rhs_batching_dimensions(), 8)?
                + vec_bytes(t.lhs_contracting_dimensions(), 8)?
                + vec_bytes(t.rhs_contracting_dimensions(), 8)?
                + vec_bytes(t.precision_config(), 4)?
        }
        O::StablehloReduceWindowOptions(t) => {
            vec_bytes(t.window_dimensions(), 8)?
                + vec_bytes(t.window_strides(), 8)?
                + vec_bytes(t.base_dilations(), 8)?
                + vec_bytes(t.window_dilations(), 8)?
                + vec_bytes(t.padding(), 8)?
        }
        O::StablehloGatherOptions(t) => {
            vec_bytes(t.offset_dims(), 8)?
                + vec_bytes(t.collapsed_slice_dims(), 8)?
                + vec_bytes(t.start_index_map(), 8)?
                + vec_bytes(t.slice_sizes(), 8)?
        }
        O::StablehloTransposeOptions(t) => vec_bytes(t.permutation(), 8)?,
        O::StableHloCompositeOptions(t) => str_bytes(t.name())? + bytes_len(t.composite_attributes())?,
        O::StablehloCaseOptions(t) => vec_bytes(t.branch_subgraph_indices(), 4)?,
        _ => 0,
    })
}

/// Decodes little-endian buffer bytes into typed tensor data, checking the size exactly.
fn decode(dt: DType, shape: &[usize], bytes: &[u8]) -> Result<TensorData> {
    if dt.size_of().is_some() {
        let want = budget::bytes(shape, dt)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use planus::{Builder, Offset};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Every options kind `ops::to_ir` matches on (`O::…Options` in its source) is one the
    /// inference-only core copies: otherwise that operator would be opaque in the core only.
    #[test]
    fn core_copies_every_options_kind_to_ir_reads() {
        macro_rules! names {
            ($($kind:ident),*) => { [$(stringify!($kind)),*] };
        }
        let copied = ir_options_kinds!(names);
        let src = include_str!("ops.rs");
        let body = &src[src.find("fn to_ir(").expect("to_ir in ops.rs")..];
        let body = &body[..body.find("\n}\n").expect("the end of to_ir")];
        let read: Vec<&str> = body
            .split("O::")
            .skip(1)
            .map(|t| t.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or(""))
            .collect();
        assert!(read.len() >= copied.len(), "to_ir's options kinds were not found in its source: {read:?}");
        for kind in read {
            assert!(copied.contains(&kind), "ops::to_ir reads {kind}, which ir_options_kinds! does not list");
        }
    }

    /// Finishes a planus build as a TFLite file (root offset first, then the identifier).
    fn finish(b: &mut Builder, root: Offset<fb::Model>) -> Vec<u8> {
        let mut bytes = b.finish(root, Some(*b"TFL3")).to_vec();
        let from_byte4 = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        bytes[0..4].copy_from_slice(&(from_byte4 + 4).to_le_bytes());
        bytes[4..8].copy_from_slice(b"TFL3");
        bytes
    }

    /// A model with one buffer table of `size` bytes that `shares` entries of `buffers` point at,
    /// and `shares` tensors (or, with `metadata`, metadata entries) that all use it. Every shared
    /// table is written once: the file is about `size` bytes whatever `shares` is.
    fn shared_model(shares: usize, size: usize, metadata: bool) -> Vec<u8> {
        let mut b = Builder::new();
        let data = vec![0u8; size];
        let empty = fb::Buffer::create(&mut b, (), 0u64, 0u64);
        let shared = fb::Buffer::create(&mut b, data.as_slice(), 0u64, 0u64);
        let mut buffers = vec![empty];
        buffers.extend(std::iter::repeat_n(shared, shares));
        let buffers = b.create_vector(&buffers);
        let shape = b.create_vector([(size / 4) as i32]);
        let name = b.create_string("w");
        let tensor =
            fb::Tensor::create(&mut b, shape, fb::TensorType::Float32, 1u32, name, (), false, (), (), false, (), 0u32);
        let tensors: Vec<Offset<fb::Tensor>> = if metadata { vec![tensor] } else { vec![tensor; shares] };
        let tensors = b.create_vector(&tensors);
        let outputs = b.create_vector([0i32]);
        let sg = fb::SubGraph::create(&mut b, tensors, (), outputs, (), (), 0i32);
        let subgraphs = b.create_vector([sg]);
        let md_name = b.create_string("m");
        let md = fb::Metadata::create(&mut b, md_name, 1u32);
        let metadata = if metadata { Some(b.create_vector(vec![md; shares])) } else { None };
        let root = fb::Model::create(&mut b, 3u32, (), subgraphs, (), buffers, (), metadata, (), (), ());
        finish(&mut b, root)
    }

    fn resource_figures(e: &Error) -> (Option<u64>, u64) {
        e.figures().unwrap_or_else(|| panic!("expected a resource error, got {e}"))
    }

    #[test]
    fn a_buffer_shared_by_many_tensors_is_refused_not_copied_per_reference() {
        let file = shared_model(1024, 1 << 20, false);
        assert!(file.len() < (1 << 20) + 16_384, "one copy of the buffer in the file");
        let e = read(&file).unwrap_err();
        assert_eq!(e.code().as_str(), "resource_limit");
        let (asked, limit) = resource_figures(&e);
        assert_eq!(limit, Budget::default().reader_limit(file.len()));
        assert!(
            asked.unwrap() > limit && asked.unwrap() < limit + (2 << 20),
            "refused at the first copy over the limit"
        );
        assert!(e.to_string().contains("reading the file"), "{e}");
        // A few references to one buffer are fine: the copies fit the budget.
        let m = read(&shared_model(3, 1 << 20, false)).unwrap();
        assert_eq!(m.main().tensors.len(), 3);
        assert!(m.main().tensors.iter().all(|t| t.data.as_ref().map(|d| d.byte_len()) == Some(1 << 20)));
    }

    #[test]
    fn metadata_entries_sharing_a_buffer_are_charged_per_copy() {
        let e = read(&shared_model(1024, 1 << 20, true)).unwrap_err();
        assert_eq!(e.code().as_str(), "resource_limit", "{e}");
        let m = read(&shared_model(4, 1 << 20, true)).unwrap();
        assert_eq!(m.metadata.len(), 4);
        assert!(m.metadata.iter().all(|(n, b)| n == "m" && b.len() == 1 << 20));
    }

    #[test]
    fn a_small_reader_budget_refuses_what_the_default_reads() {
        let file = shared_model(3, 1 << 20, false);
        let tight = Budget { max_reader_slack: 0, max_reader_factor: 2, ..Budget::default() };
        assert_eq!(read_with(&file, &tight).unwrap_err().code().as_str(), "resource_limit");
    }

    #[test]
    fn a_tensor_declared_over_the_tensor_budget_is_refused_by_name() {
        let mut b = Builder::new();
        let empty = fb::Buffer::create(&mut b, (), 0u64, 0u64);
        let buffers = b.create_vector([empty]);
        let shape = b.create_vector([1, i32::MAX]);
        let name = b.create_string("huge");
        let t =
            fb::Tensor::create(&mut b, shape, fb::TensorType::Float32, 0u32, name, (), false, (), (), false, (), 0u32);
        let tensors = b.create_vector([t]);
        let io = b.create_vector([0i32]);
        let sg = fb::SubGraph::create(&mut b, tensors, io, io, (), (), 0i32);
        let subgraphs = b.create_vector([sg]);
        let root = fb::Model::create(&mut b, 3u32, (), subgraphs, (), buffers, (), (), (), (), ());
        let e = read(&finish(&mut b, root)).unwrap_err();
        assert_eq!(e.code().as_str(), "resource_limit");
        assert_eq!(resource_figures(&e), (Some(i32::MAX as u64 * 4), Budget::default().max_tensor_bytes));
        assert_eq!(e.location().and_then(|l| l.tensor), Some(0));
        assert!(e.to_string().contains("tensor 0 'huge'"), "{e}");
    }

    /// TFLite's builtin code of GATHER, an operator the engine does not execute.
    const GATHER: i32 = 36;

    /// One GATHER with its options table (axis 1).
    fn gather_model() -> Vec<u8> {
        let tensor = |name: &str, shape: Vec<i32>, type_| fb::Tensor {
            shape: Some(shape),
            type_,
            name: Some(name.into()),
            ..Default::default()
        };
        let gather = fb::Operator {
            inputs: Some(vec![0, 1]),
            outputs: Some(vec![2]),
            builtin_options: Some(fb::BuiltinOptions::GatherOptions(Box::new(fb::GatherOptions {
                axis: 1,
                batch_dims: 0,
            }))),
            ..Default::default()
        };
        let model = fb::Model {
            version: 3,
            operator_codes: Some(vec![fb::OperatorCode {
                deprecated_builtin_code: GATHER as i8,
                builtin_code: GATHER,
                version: 1,
                ..Default::default()
            }]),
            subgraphs: Some(vec![fb::SubGraph {
                tensors: Some(vec![
                    tensor("x", vec![2, 3], fb::TensorType::Float32),
                    tensor("i", vec![2], fb::TensorType::Int32),
                    tensor("y", vec![2, 2], fb::TensorType::Float32),
                ]),
                inputs: Some(vec![0, 1]),
                outputs: Some(vec![2]),
                operators: Some(vec![gather]),
                ..Default::default()
            }]),
            buffers: Some(vec![fb::Buffer::default()]),
            ..Default::default()
        };
        let mut b = Builder::new();
        let root = planus::WriteAsOffset::prepare(&model, &mut b);
        finish(&mut b, root)
    }

    /// An operator the engine cannot execute reads as opaque in both builds; the full engine keeps
    /// its options table to write it back, the inference-only core (which never writes) does not
    /// copy it.
    #[test]
    fn an_operator_the_engine_cannot_execute_keeps_its_options_in_the_full_engine_only() {
        let m = read(&gather_model()).unwrap();
        let Op::Opaque(o) = &m.main().nodes[0].op else { panic!("GATHER must read as opaque") };
        assert_eq!(o.name, "GATHER");
        let opaque = o.payload.get::<OpaqueOperator>().expect("an OpaqueOperator");
        assert_eq!((opaque.builtin_code, opaque.version), (GATHER, 1));
        #[cfg(feature = "optimizer")]
        {
            let want = fb::BuiltinOptions::GatherOptions(Box::new(fb::GatherOptions { axis: 1, batch_dims: 0 }));
            assert_eq!(opaque.builtin_options, Some(want));
            let back = read(&crate::tflite::write(&m).unwrap()).unwrap();
            assert_eq!(back.graphs, m.graphs, "the round trip changed the graph");
        }
        #[cfg(not(feature = "optimizer"))]
        {
            let e = crate::tflite::write(&m).unwrap_err();
            assert!(e.to_string().contains("GATHER") && e.to_string().contains("full engine"), "{e}");
        }
        assert_eq!(crate::summary::summarize(&m, 0).unsupported_ops, ["GATHER"]);
    }
}
