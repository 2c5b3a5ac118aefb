//! Generates `builtin_names.rs`: TFLite's builtin operator codes and names, read from the schema
//! (`schema/tflite.fbs`, `enum BuiltinOperator`), so the names have one source of truth without
//! the 25 KB schema text in every build.

use std::fmt::Write as _;
use std::{env, fs, path::Path};

fn main() {
    let schema_path = "schema/tflite.fbs";
    println!("cargo:rerun-if-changed={schema_path}");
    let schema = fs::read_to_string(schema_path).expect("crate/schema/tflite.fbs");
    let start = schema.find("enum BuiltinOperator").expect("enum BuiltinOperator in the schema");
    let body = &schema[start..];
    let body = &body[body.find('{').expect("its body") + 1..body.find('}').expect("its end")];
    let mut out =
        String::from("/// TFLite's builtin operator codes and names (from schema/tflite.fbs, by build.rs).\n");
    out.push_str("pub(crate) static BUILTIN_NAMES: &[(i32, &str)] = &[\n");
    for entry in body.split(',') {
        // Entries are `NAME = code` (comments stripped line by line).
        let line: String = entry.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
        let Some((name, value)) = line.split_once('=') else { continue };
        let code: i32 = value.trim().parse().unwrap_or_else(|_| panic!("BuiltinOperator {name}: code {value}"));
        writeln!(out, "    ({code}, {:?}),", name.trim()).unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_names.rs");
    fs::write(dest, out).expect("write builtin_names.rs");
}
