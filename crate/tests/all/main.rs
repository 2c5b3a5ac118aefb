//! The integration tests, one binary: one link instead of one per file, one browser start per
//! wasm build instead of one per file, and natively the tests of every file share the test threads
//! (a file's slow tests no longer wait for the previous file to finish). Test names keep the file:
//! `cargo test --test all quantize::` runs one file's tests.
//!
//! Each file is a module loaded with `#[path]`, so the files' own `mod common;` finds `common.rs`
//! here (without `#[path]`, a module file's submodules are looked up in a folder named after it).
//! fixtures.rs stays a binary of its own: the relaxed-SIMD build runs it alone (scripts/test.sh).

#[path = "evaluate.rs"]
mod evaluate;
#[path = "findings.rs"]
mod findings;
#[path = "gradients.rs"]
mod gradients;
#[path = "lstm_kernels.rs"]
mod lstm_kernels;
#[path = "prune.rs"]
mod prune;
#[path = "quantize.rs"]
mod quantize;
#[path = "reference_models.rs"]
mod reference_models;
#[path = "tflm_arena.rs"]
mod tflm_arena;
#[path = "tflm_firmware.rs"]
mod tflm_firmware;
#[path = "train.rs"]
mod train;
