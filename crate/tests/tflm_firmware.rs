//! The generated TensorFlow Lite Micro firmware files compile with a C++ compiler (`g++
//! -std=c++17`, warnings as errors) and, linked with a small program, hold exactly the model:
//! its bytes and length, 16-byte alignment, and a `RegisterOps` that calls each resolver method
//! the model needs once. g++ is required: the test fails if it is missing.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use tinyml_optimizer::{tflite, tflm};

#[macro_use]
mod common;

fn scratch_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("tinyml-firmware-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gxx(dir: &Path, args: &[&str]) {
    let out = Command::new("g++")
        .current_dir(dir)
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("g++ is required for this test and could not be run: {e}"));
    assert!(out.status.success(), "g++ {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A program that checks the embedded model against the original file and counts registrations
/// through a resolver with exactly the model's methods.
fn checker(id: &str, ops: &[String], model_len: usize) -> String {
    let methods: String = ops.iter().map(|m| format!("  int {m}() {{ ++calls; return 0; }}\n")).collect();
    format!(
        r#"#include <cstdint>
#include <cstdio>
#include <cstring>
#include "{id}.h"

struct Resolver {{
  int calls = 0;
{methods}}};

int main(int argc, char** argv) {{
  if (argc != 2) return 2;
  static_assert({id}::kOpCount == {n}, "op count");
  static unsigned char file[{model_len}];
  FILE* f = std::fopen(argv[1], "rb");
  if (!f || std::fread(file, 1, sizeof(file), f) != sizeof(file)) return 3;
  std::fclose(f);
  if (g_{id}_len != sizeof(file) || std::memcmp(g_{id}, file, sizeof(file)) != 0) return 4;
  if (reinterpret_cast<std::uintptr_t>(g_{id}) % 16 != 0) return 5;
  Resolver r;
  if (!{id}::RegisterOps(r) || r.calls != {id}::kOpCount) return 6;
  std::printf("%d\n", {id}::kTensorArenaSize);
  return 0;
}}
"#,
        n = ops.len()
    )
}

fn check_model(tag: &str, bytes: &[u8]) {
    let model = tflite::read(bytes).unwrap_or_else(|e| panic!("{tag}: {e}"));
    let facts = tflm::report(&model, bytes.len() as u64);
    let files = tflm::firmware_files(bytes, &format!("{tag}.tflite"), &facts).unwrap();
    let dir = scratch_dir(tag);
    std::fs::write(dir.join(&files.header_name), &files.header).unwrap();
    std::fs::write(dir.join(&files.source_name), &files.source).unwrap();
    std::fs::write(dir.join("model.tflite"), bytes).unwrap();
    let id = files.header_name.trim_end_matches(".h").to_string();
    std::fs::write(dir.join("check.cc"), checker(&id, &facts.ops, bytes.len())).unwrap();
    gxx(&dir, &["-c", &files.source_name, "-o", "model.o"]);
    gxx(&dir, &["check.cc", "model.o", "-o", "check"]);
    let run = Command::new(dir.join("check")).arg(dir.join("model.tflite")).output().unwrap();
    assert!(run.status.success(), "{tag}: the linked checker exited with {:?}", run.status.code());
    let arena: u64 = String::from_utf8_lossy(&run.stdout).trim().parse().unwrap();
    let predicted = facts.arena_bytes.unwrap();
    assert!(
        arena > predicted && arena.is_multiple_of(16),
        "{tag}: kTensorArenaSize {arena} for a prediction of {predicted}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn int8_models_compile_link_and_embed_the_model() {
    check_model("mlp", fixture!("mlp", "model_int8_tf.tflite"));
    check_model("resnet", fixture!("resnet", "model_int8_tf.tflite"));
}

#[test]
fn a_model_tflm_refuses_still_compiles_with_its_warning() {
    let bytes = fixture!("cnn", "model_dynamic.tflite");
    let model = tflite::read(bytes).unwrap();
    let facts = tflm::report(&model, bytes.len() as u64);
    assert!(!facts.supported, "a dynamic-range model must be reported unsupported");
    let files = tflm::firmware_files(bytes, "cnn-dynamic", &facts).unwrap();
    assert!(files.header.contains("WARNING: TFLM cannot run this model"));
    check_model("cnn_dynamic", bytes);
}
