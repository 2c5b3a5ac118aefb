//! Tensors: type, shape, quantization and (for constants) data.

use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use super::DType;

/// The values of `a` in logical order: a copy of its slice when contiguous (nearly always), which
/// is much faster than ndarray's element iterator.
pub fn values<T: Copy>(a: &ArrayD<T>) -> Vec<T> {
    a.as_slice().map_or_else(|| a.iter().copied().collect(), <[T]>::to_vec)
}

/// Affine quantization: `real = scale * (q - zero_point)`.
///
/// With one scale the parameters apply to the whole tensor. With several, element `i` along `axis`
/// uses `scale[i]` and `zero_point[i]` (per-channel quantization).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct QuantParams {
    pub scale: Vec<f32>,
    #[cfg_attr(test, ts(type = "number[]"))]
    pub zero_point: Vec<i64>,
    /// The dimension that per-channel parameters run along. Stored as the file had it even for
    /// per-tensor parameters, so a round trip is exact; use [`QuantParams::channel_axis`] to ask.
    pub axis: usize,
    /// Optional recorded float range, kept for round trips (TFLite's `min`/`max`).
    #[cfg_attr(test, ts(as = "Option<_>", optional))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub min: Vec<f32>,
    #[cfg_attr(test, ts(as = "Option<_>", optional))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub max: Vec<f32>,
}

impl QuantParams {
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        QuantParams { scale: vec![scale], zero_point: vec![zero_point], axis: 0, min: vec![], max: vec![] }
    }

    pub fn per_channel(scale: Vec<f32>, zero_point: Vec<i64>, axis: usize) -> Self {
        QuantParams { scale, zero_point, axis, min: vec![], max: vec![] }
    }

    /// The per-channel axis, or `None` when one scale covers the whole tensor.
    pub fn channel_axis(&self) -> Option<usize> {
        (self.scale.len() > 1).then_some(self.axis)
    }

    /// Scale and zero point for the whole tensor (the first entry when per-channel).
    pub fn single(&self) -> (f32, i64) {
        (self.scale.first().copied().unwrap_or(0.0), self.zero_point.first().copied().unwrap_or(0))
    }

    /// Zero point `i`, defaulting to the first (files may give one zero point for many scales).
    pub fn zero_point_at(&self, i: usize) -> i64 {
        self.zero_point.get(i).or(self.zero_point.first()).copied().unwrap_or(0)
    }
}

/// Constant data of a tensor, in row-major (C) order.
#[derive(Clone, Debug)]
pub enum TensorData {
    F32(ArrayD<f32>),
    I8(ArrayD<i8>),
    U8(ArrayD<u8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    /// Any other element type, kept as the little-endian bytes of the file (f16, bool, strings, ...).
    Raw(Vec<u8>),
}

/// Equal when the element type, the shape and every element's bits are the same: bitwise, so a
/// NaN equals itself and -0.0 differs from 0.0, as in the bytes of a file. (One comparison of the
/// bytes instead of ndarray's element-wise one, generic over six element types and every memory
/// layout: that was ~30 KB of the wasm build.)
impl PartialEq for TensorData {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.dims() == other.dims()
            && self.to_le_bytes() == other.to_le_bytes()
    }
}

impl TensorData {
    /// The array's shape (`None` for raw bytes).
    fn dims(&self) -> Option<&[usize]> {
        match self {
            TensorData::F32(a) => Some(a.shape()),
            TensorData::I8(a) => Some(a.shape()),
            TensorData::U8(a) => Some(a.shape()),
            TensorData::I16(a) => Some(a.shape()),
            TensorData::I32(a) => Some(a.shape()),
            TensorData::I64(a) => Some(a.shape()),
            TensorData::Raw(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(a) => a.len(),
            TensorData::I8(a) => a.len(),
            TensorData::U8(a) => a.len(),
            TensorData::I16(a) => a.len(),
            TensorData::I32(a) => a.len(),
            TensorData::I64(a) => a.len(),
            TensorData::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the data in bytes as stored in a model file.
    pub fn byte_len(&self) -> usize {
        match self {
            TensorData::F32(a) => a.len() * 4,
            TensorData::I8(a) => a.len(),
            TensorData::U8(a) => a.len(),
            TensorData::I16(a) => a.len() * 2,
            TensorData::I32(a) => a.len() * 4,
            TensorData::I64(a) => a.len() * 8,
            TensorData::Raw(b) => b.len(),
        }
    }

    /// Little-endian bytes, as a model file stores them.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        fn collect<T: Copy, const N: usize>(a: &ArrayD<T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            let mut out = vec![0; a.len() * N];
            match a.as_slice() {
                // Contiguous in logical order (nearly always): a loop the compiler vectorises.
                Some(v) => out.chunks_exact_mut(N).zip(v).for_each(|(o, &x)| o.copy_from_slice(&f(x))),
                None => out.chunks_exact_mut(N).zip(a.iter()).for_each(|(o, &x)| o.copy_from_slice(&f(x))),
            }
            out
        }
        match self {
            TensorData::F32(a) => collect(a, f32::to_le_bytes),
            TensorData::I8(a) => collect(a, i8::to_le_bytes),
            TensorData::U8(a) => collect(a, u8::to_le_bytes),
            TensorData::I16(a) => collect(a, i16::to_le_bytes),
            TensorData::I32(a) => collect(a, i32::to_le_bytes),
            TensorData::I64(a) => collect(a, i64::to_le_bytes),
            TensorData::Raw(b) => b.clone(),
        }
    }

    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            TensorData::F32(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_i8(&self) -> Option<&ArrayD<i8>> {
        match self {
            TensorData::I8(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_i32(&self) -> Option<&ArrayD<i32>> {
        match self {
            TensorData::I32(a) => Some(a),
            _ => None,
        }
    }

    /// Integer values as i64 (for shape and axis operands), or `None` for non-integer data.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        match self {
            TensorData::I8(a) => Some(a.iter().map(|&v| v as i64).collect()),
            TensorData::U8(a) => Some(a.iter().map(|&v| v as i64).collect()),
            TensorData::I16(a) => Some(a.iter().map(|&v| v as i64).collect()),
            TensorData::I32(a) => Some(a.iter().map(|&v| v as i64).collect()),
            TensorData::I64(a) => Some(a.iter().copied().collect()),
            TensorData::F32(_) | TensorData::Raw(_) => None,
        }
    }

    pub fn from_f32(shape: &[usize], values: Vec<f32>) -> Option<Self> {
        ArrayD::from_shape_vec(IxDyn(shape), values).ok().map(TensorData::F32)
    }

    pub fn from_i8(shape: &[usize], values: Vec<i8>) -> Option<Self> {
        ArrayD::from_shape_vec(IxDyn(shape), values).ok().map(TensorData::I8)
    }

    pub fn from_i32(shape: &[usize], values: Vec<i32>) -> Option<Self> {
        ArrayD::from_shape_vec(IxDyn(shape), values).ok().map(TensorData::I32)
    }
}

/// A tensor of a graph: an activation, a model input/output, or a constant (when `data` is set).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Shape with unknown dimensions as -1 (typically the batch), when the file records one.
    pub shape_signature: Option<Vec<i64>>,
    pub quant: Option<QuantParams>,
    pub data: Option<TensorData>,
    /// A stateful tensor that operators update in place (e.g. recurrent state).
    pub is_variable: bool,
}

impl Tensor {
    pub fn new(name: impl Into<String>, dtype: DType, shape: Vec<usize>) -> Self {
        Tensor { name: name.into(), dtype, shape, shape_signature: None, quant: None, data: None, is_variable: false }
    }

    pub fn constant(name: impl Into<String>, dtype: DType, shape: Vec<usize>, data: TensorData) -> Self {
        Tensor { data: Some(data), ..Tensor::new(name, dtype, shape) }
    }

    pub fn with_quant(mut self, quant: QuantParams) -> Self {
        self.quant = Some(quant);
        self
    }

    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_constant(&self) -> bool {
        self.data.is_some()
    }

    /// True for int8/uint8/int16 tensors with quantization parameters.
    pub fn is_quantized(&self) -> bool {
        matches!(self.dtype, DType::I8 | DType::U8 | DType::I16) && self.quant.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::TensorData;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn tensor_data_equality_is_bitwise_and_checks_type_and_shape() {
        let f = |shape: &[usize], v: Vec<f32>| TensorData::from_f32(shape, v).unwrap();
        assert_eq!(f(&[2], vec![1.0, f32::NAN]), f(&[2], vec![1.0, f32::NAN]));
        assert_ne!(f(&[1], vec![0.0]), f(&[1], vec![-0.0]));
        assert_ne!(f(&[2, 1], vec![1.0, 2.0]), f(&[1, 2], vec![1.0, 2.0]));
        assert_ne!(f(&[2], vec![1.0, 2.0]), f(&[2], vec![1.0, 2.5]));
        // Same bytes, different element type.
        let i32s = TensorData::from_i32(&[1], vec![0]).unwrap();
        assert_ne!(f(&[1], vec![0.0]), i32s);
        assert_ne!(TensorData::Raw(vec![0; 4]), f(&[1], vec![0.0]));
        assert_eq!(TensorData::Raw(vec![1, 2]), TensorData::Raw(vec![1, 2]));
    }
}
