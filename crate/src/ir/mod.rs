//! The format-neutral model IR: a graph of operators over typed, shaped, optionally quantized tensors.
//! Importers (TFLite today, ONNX later) produce it, passes (quantize, prune) rewrite it, exporters write it.

mod build;
mod dtype;
mod graph;
mod op;
mod tensor;

pub use build::Builder;
pub use dtype::DType;
pub use graph::{Graph, Model, Node, Signature, TensorId};
pub use op::*;
pub use tensor::{values, QuantParams, Tensor, TensorData};
