//! Element types of tensors.

use serde::Serialize;

/// The element type of a tensor. The engine computes with `F32`, `I8`, `U8`, `I16`, `I32` and `I64`
/// (and reads `F16` constants); the rest exist so that any model can be read and written back unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I4,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
    String,
    Complex64,
    Complex128,
    Resource,
    Variant,
    I2,
    U4,
    F8E4M3,
    F8E5M2,
}

impl DType {
    /// Bytes per element, for types with a fixed whole-byte size.
    pub fn size_of(self) -> Option<usize> {
        use DType::*;
        Some(match self {
            I8 | U8 | Bool | F8E4M3 | F8E5M2 => 1,
            F16 | BF16 | I16 | U16 => 2,
            F32 | I32 | U32 => 4,
            F64 | I64 | U64 | Complex64 => 8,
            Complex128 => 16,
            I4 | I2 | U4 | String | Resource | Variant => return None,
        })
    }

    /// Lower-case name used in reports, errors and the JS API (`"f32"`, `"i8"`, ...).
    pub fn name(self) -> &'static str {
        use DType::*;
        match self {
            F32 => "f32",
            F16 => "f16",
            BF16 => "bf16",
            F64 => "f64",
            I4 => "i4",
            I8 => "i8",
            U8 => "u8",
            I16 => "i16",
            U16 => "u16",
            I32 => "i32",
            U32 => "u32",
            I64 => "i64",
            U64 => "u64",
            Bool => "bool",
            String => "string",
            Complex64 => "complex64",
            Complex128 => "complex128",
            Resource => "resource",
            Variant => "variant",
            I2 => "i2",
            U4 => "u4",
            F8E4M3 => "f8e4m3",
            F8E5M2 => "f8e5m2",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
