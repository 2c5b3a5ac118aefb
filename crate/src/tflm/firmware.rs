//! The `.h`/`.cc` pair a TensorFlow Lite Micro project compiles in: the flatbuffer as a 16-byte
//! aligned `const unsigned char` array with its length (defined in the `.cc`, declared `extern` in
//! the `.h`), the arena size from the planner with a stated margin, and a function registering
//! exactly the model's operators with a `MicroMutableOpResolver`.
//!
//! The header needs no TFLM header itself (the registration is a template over the resolver), so
//! both files compile on their own with any C++11 compiler.

use std::fmt::Write;

use crate::error::{Error, Location, Result};

use super::TflmReport;

/// `kTensorArenaSize` is the predicted minimum plus this share of it...
pub const ARENA_MARGIN_PERCENT: u64 = 10;
/// ...and at least this many bytes: headroom for the scratch buffers optimized kernel libraries
/// (CMSIS-NN, ESP-NN) request beyond TFLM's reference kernels, and for allocator differences
/// between TFLM versions.
pub const ARENA_MARGIN_MIN_BYTES: u64 = 1024;

/// The two files, with the names the `.cc` expects (`#include "<header_name>"`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FirmwareFiles {
    pub header_name: String,
    pub header: String,
    pub source_name: String,
    pub source: String,
}

const CPP_KEYWORDS: &[&str] = &[
    "alignas",
    "alignof",
    "and",
    "asm",
    "auto",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "constexpr",
    "continue",
    "default",
    "delete",
    "do",
    "double",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "nullptr",
    "operator",
    "or",
    "private",
    "protected",
    "public",
    "register",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "template",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
    "xor",
];

/// A C/C++ identifier from a file or model name: `person-detect.tflite` → `person_detect`.
pub fn c_identifier(name: &str) -> String {
    let stem = name.strip_suffix(".tflite").unwrap_or(name);
    let mut id = String::with_capacity(stem.len());
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && id.ends_with('_')) {
            id.push(c);
        }
    }
    let id = id.trim_matches('_').to_string();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        format!("model_{id}").trim_end_matches('_').to_string()
    } else if CPP_KEYWORDS.contains(&id.as_str()) {
        format!("{id}_model")
    } else {
        id
    }
}

/// `kTensorArenaSize`: the prediction plus the margin, rounded up to 16 bytes.
fn arena_with_margin(arena: u64) -> u64 {
    let margin = (arena / 100 * ARENA_MARGIN_PERCENT).max(ARENA_MARGIN_MIN_BYTES);
    arena.saturating_add(margin).saturating_add(15) / 16 * 16
}

/// The header's opening comment: what the model is, what TFLM needs, how to use the files.
fn header_comment(out: &mut String, name: &str, id: &str, len: usize, arena: u64, facts: &TflmReport) {
    let _ = writeln!(out, "// {name}: a TensorFlow Lite Micro model, {len} bytes, written by tinyml-optimizer.");
    let _ = writeln!(out, "//\n// Tensor arena: TFLM's reference kernels need at least {arena} bytes for this model");
    let _ = writeln!(out, "// (tinyml-optimizer's prediction of TFLM's own allocator and memory planner).");
    if !facts.arena_estimated_for.is_empty() {
        let _ = writeln!(out, "// Estimated, not modelled exactly: {}.", facts.arena_estimated_for.join(", "));
    }
    let _ = writeln!(
        out,
        "// kTensorArenaSize adds {ARENA_MARGIN_PERCENT}% (at least {ARENA_MARGIN_MIN_BYTES} bytes) for the scratch buffers of optimized\n\
         // kernels (CMSIS-NN, ESP-NN) and for differences between TFLM versions."
    );
    if !facts.supported {
        let _ = writeln!(out, "//\n// WARNING: TFLM cannot run this model as it is:");
        for u in &facts.unsupported {
            let _ = writeln!(out, "//   node {} ({}): {}", u.node, u.op, u.reason);
        }
    }
    let _ = writeln!(
        out,
        "//\n// Usage:\n//   alignas(16) static uint8_t tensor_arena[{id}::kTensorArenaSize];\n\
         //   static tflite::MicroMutableOpResolver<{id}::kOpCount> resolver;\n\
         //   {id}::RegisterOps(resolver);\n\
         //   tflite::MicroInterpreter interpreter(tflite::GetModel(g_{id}), resolver, tensor_arena,\n\
         //                                        {id}::kTensorArenaSize);\n\
         //   interpreter.AllocateTensors();"
    );
}

fn header(name: &str, id: &str, len: usize, arena: u64, facts: &TflmReport) -> String {
    let guard = format!("{}_H_", id.to_ascii_uppercase());
    let mut h = String::new();
    header_comment(&mut h, name, id, len, arena, facts);
    let _ = writeln!(h, "#ifndef {guard}\n#define {guard}\n");
    let _ = writeln!(h, "// The model flatbuffer (defined in {id}.cc), 16-byte aligned: TFLM reads it in place.");
    let _ = writeln!(h, "extern const unsigned char g_{id}[];\nextern const unsigned int g_{id}_len;\n");
    let _ = writeln!(h, "namespace {id} {{\n");
    let _ = writeln!(h, "// The predicted minimum, {arena} bytes, plus the margin above.");
    let _ = writeln!(h, "constexpr int kTensorArenaSize = {};", arena_with_margin(arena));
    let _ = writeln!(h, "// The operators the model uses: N of tflite::MicroMutableOpResolver<N>.");
    let _ = writeln!(h, "constexpr int kOpCount = {};\n", facts.ops.len());
    let _ = writeln!(h, "// Registers exactly the model's operators with a tflite::MicroMutableOpResolver<kOpCount>;");
    let _ = writeln!(h, "// false if a registration fails (each Add* returns kTfLiteOk, 0, on success).");
    let _ = writeln!(h, "template <typename Resolver>\ninline bool RegisterOps(Resolver& resolver) {{");
    if facts.ops.is_empty() {
        let _ = writeln!(h, "  (void)resolver;\n  return true;");
    } else {
        let calls: Vec<String> = facts.ops.iter().map(|m| format!("static_cast<int>(resolver.{m}()) == 0")).collect();
        let _ = writeln!(h, "  return {};", calls.join(" &&\n         "));
    }
    let _ = writeln!(h, "}}\n\n}}  // namespace {id}\n\n#endif  // {guard}");
    h
}

fn source(name: &str, id: &str, bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 6 + 512);
    let _ = writeln!(s, "// {name}: the model flatbuffer, {} bytes, written by tinyml-optimizer.", bytes.len());
    let _ = writeln!(s, "#include \"{id}.h\"\n\nalignas(16) const unsigned char g_{id}[] = {{");
    for row in bytes.chunks(12) {
        let cells: Vec<String> = row.iter().map(|b| format!("0x{b:02x}")).collect();
        let _ = writeln!(s, "  {},", cells.join(", "));
    }
    let _ = writeln!(s, "}};\nconst unsigned int g_{id}_len = {};", bytes.len());
    s
}

/// The firmware files for `model_bytes` (a `.tflite` file) named `name`, from the model's TFLM
/// facts. Fails when the arena could not be predicted or there are no bytes.
pub fn firmware_files(model_bytes: &[u8], name: &str, facts: &TflmReport) -> Result<FirmwareFiles> {
    if model_bytes.is_empty() {
        return Err(Error::argument("no model bytes to embed"));
    }
    let arena = facts.arena_bytes.ok_or_else(|| {
        Error::unsupported("the tensor arena of this model could not be predicted", Location::default())
    })?;
    let id = c_identifier(name);
    Ok(FirmwareFiles {
        header_name: format!("{id}.h"),
        header: header(name, &id, model_bytes.len(), arena, facts),
        source_name: format!("{id}.cc"),
        source: source(name, &id, model_bytes),
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn facts(ops: &[&str]) -> TflmReport {
        TflmReport {
            supported: true,
            unsupported: vec![],
            arena_bytes: Some(20_000),
            flash_bytes: 3,
            ops: ops.iter().map(|s| s.to_string()).collect(),
            arena_estimated_for: vec![],
        }
    }

    #[test]
    fn identifiers_are_valid_c() {
        assert_eq!(c_identifier("person-detect.tflite"), "person_detect");
        assert_eq!(c_identifier("1st model"), "model_1st_model");
        assert_eq!(c_identifier("class"), "class_model");
        assert_eq!(c_identifier("__"), "model");
        assert_eq!(c_identifier("ünïcode"), "n_code");
    }

    #[test]
    fn files_hold_the_bytes_the_arena_and_exactly_the_ops() {
        let f = firmware_files(&[0x1c, 0, 0xff], "kws.tflite", &facts(&["AddConv2D", "AddSoftmax"])).unwrap();
        assert_eq!((f.header_name.as_str(), f.source_name.as_str()), ("kws.h", "kws.cc"));
        assert!(f.source.contains("alignas(16) const unsigned char g_kws[] = {\n  0x1c, 0x00, 0xff,\n};"));
        assert!(f.source.contains("const unsigned int g_kws_len = 3;"));
        assert!(f.header.contains("extern const unsigned char g_kws[];"));
        // 20000 + 10% = 22000, a multiple of 16.
        assert!(f.header.contains("constexpr int kTensorArenaSize = 22000;"), "{}", f.header);
        assert!(f.header.contains("constexpr int kOpCount = 2;"));
        assert_eq!(f.header.matches("resolver.Add").count(), 2);
    }

    #[test]
    fn small_arenas_get_the_minimum_margin_and_missing_predictions_are_errors() {
        assert_eq!(arena_with_margin(2000), 3024);
        let mut none = facts(&[]);
        none.arena_bytes = None;
        assert!(firmware_files(&[1], "m", &none).is_err());
        assert!(firmware_files(&[], "m", &facts(&[])).is_err());
    }
}
