//! Runtime storage of one tensor's values.

use crate::ir::{values, DType, TensorData};

/// The values of a tensor at run time, row-major.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Buffer {
    #[default]
    Empty,
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Buffer {
    /// A zero-filled buffer of `n` elements, for the types the engine computes with.
    pub fn zeros(dtype: DType, n: usize) -> Option<Buffer> {
        Some(match dtype {
            DType::F32 => Buffer::F32(vec![0.0; n]),
            DType::I8 => Buffer::I8(vec![0; n]),
            DType::U8 => Buffer::U8(vec![0; n]),
            DType::I16 => Buffer::I16(vec![0; n]),
            DType::I32 => Buffer::I32(vec![0; n]),
            DType::I64 => Buffer::I64(vec![0; n]),
            DType::Bool => Buffer::Bool(vec![false; n]),
            _ => return None,
        })
    }

    /// The values of constant tensor data (f16 is widened to f32; other raw types are not loaded).
    pub fn from_data(dtype: DType, data: &TensorData) -> Option<Buffer> {
        Some(match data {
            TensorData::F32(a) => Buffer::F32(values(a)),
            TensorData::I8(a) => Buffer::I8(values(a)),
            TensorData::U8(a) => Buffer::U8(values(a)),
            TensorData::I16(a) => Buffer::I16(values(a)),
            TensorData::I32(a) => Buffer::I32(values(a)),
            TensorData::I64(a) => Buffer::I64(values(a)),
            TensorData::Raw(bytes) => match dtype {
                DType::F16 => Buffer::F32(
                    bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                ),
                DType::Bool => Buffer::Bool(bytes.iter().map(|&b| b != 0).collect()),
                _ => return None,
            },
        })
    }

    pub fn dtype(&self) -> Option<DType> {
        Some(match self {
            Buffer::Empty => return None,
            Buffer::F32(_) => DType::F32,
            Buffer::I8(_) => DType::I8,
            Buffer::U8(_) => DType::U8,
            Buffer::I16(_) => DType::I16,
            Buffer::I32(_) => DType::I32,
            Buffer::I64(_) => DType::I64,
            Buffer::Bool(_) => DType::Bool,
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Buffer::Empty => 0,
            Buffer::F32(v) => v.len(),
            Buffer::I8(v) => v.len(),
            Buffer::U8(v) => v.len(),
            Buffer::I16(v) => v.len(),
            Buffer::I32(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements its memory holds without growing.
    pub fn capacity(&self) -> usize {
        match self {
            Buffer::Empty => 0,
            Buffer::F32(v) => v.capacity(),
            Buffer::I8(v) => v.capacity(),
            Buffer::U8(v) => v.capacity(),
            Buffer::I16(v) => v.capacity(),
            Buffer::I32(v) => v.capacity(),
            Buffer::I64(v) => v.capacity(),
            Buffer::Bool(v) => v.capacity(),
        }
    }

    /// Shortened to `n` elements, or lengthened with zeros (no allocation within its capacity).
    pub fn resize(&mut self, n: usize) {
        match self {
            Buffer::Empty => {}
            Buffer::F32(v) => v.resize(n, 0.0),
            Buffer::I8(v) => v.resize(n, 0),
            Buffer::U8(v) => v.resize(n, 0),
            Buffer::I16(v) => v.resize(n, 0),
            Buffer::I32(v) => v.resize(n, 0),
            Buffer::I64(v) => v.resize(n, 0),
            Buffer::Bool(v) => v.resize(n, false),
        }
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Buffer::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i8(&self) -> Option<&[i8]> {
        match self {
            Buffer::I8(v) => Some(v),
            _ => None,
        }
    }

    /// Integer values widened to i64 (for shape, axis and padding operands).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match self {
            Buffer::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Buffer::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Buffer::I16(v) => v.iter().map(|&x| x as i64).collect(),
            Buffer::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Buffer::I64(v) => v.clone(),
            _ => return None,
        })
    }
}

/// An element type the engine stores, with typed access to a [`Buffer`].
pub trait Elem: Copy + Default + 'static {
    const DTYPE: DType;
    fn slice(b: &Buffer) -> Option<&[Self]>;
    fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]>;
    fn buffer(v: Vec<Self>) -> Buffer;
}

macro_rules! elem {
    ($t:ty, $v:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$v;
            fn buffer(v: Vec<Self>) -> Buffer {
                Buffer::$v(v)
            }
            fn slice(b: &Buffer) -> Option<&[Self]> {
                match b {
                    Buffer::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]> {
                match b {
                    Buffer::$v(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
elem!(f32, F32);
elem!(i8, I8);
elem!(u8, U8);
elem!(i16, I16);
elem!(i32, I32);
elem!(i64, I64);
elem!(bool, Bool);

/// Runs `$body` with `$t` bound to the Rust element type of `$dtype`; `$other` for the rest.
macro_rules! dispatch_dtype {
    ($dtype:expr, $t:ident => $body:expr, $other:expr) => {
        match $dtype {
            $crate::ir::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::ir::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::ir::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::ir::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::ir::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::ir::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::ir::DType::Bool => {
                type $t = bool;
                $body
            }
            _ => $other,
        }
    };
}
pub(crate) use dispatch_dtype;
