//! TFLite flatbuffer import and export.
//!
//! [`read`] turns a `.tflite` file into the IR, checking every index, offset and length as hostile;
//! [`write`] serializes the IR back. Operators the IR does not model become [`crate::ir::Op::Opaque`]
//! holding an [`OpaqueOperator`], so they survive a round trip byte for byte in meaning.

mod ops;
mod read;
#[rustfmt::skip]
#[allow(clippy::all, unused, non_camel_case_types, rustdoc::all)]
mod schema;
mod write;

use std::sync::OnceLock;

pub use read::{read, read_with};
pub use write::write;

/// Builtin operator codes of the operators the IR models.
/// The custom code under which a training graph's fake-quant nodes travel between our own workers
/// (quantization-aware training); exported models never contain it.
pub const FAKE_QUANT_CUSTOM: &str = "TINYML_FAKE_QUANT";

pub mod code {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONCATENATION: i32 = 2;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const DEQUANTIZE: i32 = 6;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const LOGISTIC: i32 = 14;
    pub const MAX_POOL_2D: i32 = 17;
    pub const MUL: i32 = 18;
    pub const RELU: i32 = 19;
    pub const RELU6: i32 = 21;
    pub const RESHAPE: i32 = 22;
    pub const SOFTMAX: i32 = 25;
    pub const TANH: i32 = 28;
    pub const CUSTOM: i32 = 32;
    pub const PAD: i32 = 34;
    pub const TRANSPOSE: i32 = 39;
    pub const SHAPE: i32 = 77;
    pub const PACK: i32 = 83;
    pub const UNIDIRECTIONAL_SEQUENCE_LSTM: i32 = 44;
    pub const MEAN: i32 = 40;
    pub const SUB: i32 = 41;
    pub const SQUEEZE: i32 = 43;
    pub const STRIDED_SLICE: i32 = 45;
    pub const REDUCE_MAX: i32 = 82;
    pub const LEAKY_RELU: i32 = 98;
    pub const QUANTIZE: i32 = 114;
    pub const HARD_SWISH: i32 = 117;
    /// Codes below this may also be stored in the legacy one-byte field.
    pub const PLACEHOLDER_FOR_GREATER_OP_CODES: i32 = 127;
}

/// An operator kept as the file had it: its code, options and extra operands.
#[derive(Clone, Debug, PartialEq)]
pub struct OpaqueOperator {
    pub builtin_code: i32,
    pub custom_code: Option<String>,
    pub version: i32,
    pub builtin_options: Option<schema::tflite::BuiltinOptions>,
    pub builtin_options_2: Option<schema::tflite::BuiltinOptions2>,
    pub custom_options: Option<Vec<u8>>,
    pub mutating_variable_inputs: Option<Vec<bool>>,
}

/// TFLite's name for a builtin operator code (`"CONV_2D"`), or `BUILTIN_<code>` for codes newer than
/// our schema. Names come from the schema file itself, so there is one source of truth.
pub fn builtin_name(code: i32) -> String {
    static NAMES: OnceLock<Vec<(i32, &'static str)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let schema = include_str!("../../schema/tflite.fbs");
        let start = schema.find("enum BuiltinOperator").unwrap_or(0);
        let body = &schema[start..];
        let body = &body[body.find('{').map_or(0, |i| i + 1)..body.find('}').unwrap_or(0)];
        body.split(',')
            .filter_map(|entry| {
                let (name, value) = entry.split_once('=')?;
                Some((value.trim().parse().ok()?, name.trim()))
            })
            .collect()
    });
    names.iter().find(|(c, _)| *c == code).map(|(_, n)| n.to_string()).unwrap_or_else(|| format!("BUILTIN_{code}"))
}

/// True when `bytes` carry the TFLite file identifier.
pub fn looks_like_tflite(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[4..8] == b"TFL3"
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn builtin_names_come_from_the_schema() {
        assert_eq!(builtin_name(code::CONV_2D), "CONV_2D");
        assert_eq!(builtin_name(44), "UNIDIRECTIONAL_SEQUENCE_LSTM");
        assert_eq!(builtin_name(code::HARD_SWISH), "HARD_SWISH");
        assert_eq!(builtin_name(209), "STABLEHLO_CASE");
        assert_eq!(builtin_name(4000), "BUILTIN_4000");
    }
}
