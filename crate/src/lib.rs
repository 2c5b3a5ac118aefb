//! tinyml-optimizer: read, run, quantize and prune TinyML models, natively and in wasm32.
//!
//! Layers, each one module: [`ir`] (the format-neutral model), [`ops`] (what each operator is:
//! shapes, types, operand roles, int8 rules), [`tflite`] (import/export), [`kernels`] (reference
//! kernels beside their SIMD twins), [`exec`] (the engine: plan, parameters, run state), [`grad`]
//! (batched backward), the passes ([`quantize`], [`prune`]), [`tflm`] (TensorFlow Lite Micro as the deployment
//! target: support, arena plan, firmware files), and `wasm` (the only module that
//! knows wasm-bindgen). `crate/ARCHITECTURE.md` shows how they fit.

pub mod budget;
pub mod clock;
pub mod error;
pub mod evaluate;
pub mod exec;
pub mod grad;
pub mod ir;
pub mod kernels;
pub mod npy;
pub mod ops;
pub mod parallel;
pub mod passes;
pub mod prune;
pub mod quantize;
pub mod rng;
pub mod summary;
pub mod tflite;
/// TensorFlow Lite Micro as the deployment target: in the full engine only (the `optimizer`
/// feature); the inference-only core leaves the summary's TFLM report out.
#[cfg(feature = "optimizer")]
pub mod tflm;
pub mod train;
#[cfg(all(test, feature = "optimizer", not(target_arch = "wasm32")))]
mod ts_bindings;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, ErrorCode, Result};

// Built natively only for its tests: native allocators align to 16 bytes, so the kernels'
// 16-byte accesses never straddle a cache line there.
#[cfg(any(test, target_arch = "wasm32"))]
mod aligned_alloc;
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: aligned_alloc::LineAligned = aligned_alloc::LineAligned;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
