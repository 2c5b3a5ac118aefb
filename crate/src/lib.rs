//! tinyml-optimizer: read, run, quantize and prune TinyML models, natively and in wasm32.
//!
//! Layers, each one module: [`ir`] (the format-neutral model), [`tflite`] (import/export),
//! `kernels` (reference kernels beside their SIMD twins), [`exec`] (the engine), [`npy`] (array files),
//! [`summary`] (inspection), and `wasm` (the only module that knows wasm-bindgen).

pub mod error;
pub mod ir;
pub mod tflite;

pub use error::{Error, ErrorCode, Result};
