//! Building graphs in code: tests, and importers that emit nodes one by one.

use super::{DType, Graph, Model, Node, Op, Tensor, TensorData, TensorId};

/// Appends tensors and nodes to a graph in execution order.
#[derive(Default)]
pub struct Builder {
    g: Graph,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    /// A float model input.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> TensorId {
        let t = self.g.add_tensor(Tensor::new(name, DType::F32, shape.to_vec()));
        self.g.inputs.push(t);
        t
    }

    pub fn constant_f32(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> TensorId {
        let data = TensorData::from_f32(shape, values).expect("values must fill the shape");
        self.g.add_tensor(Tensor::constant(name, DType::F32, shape.to_vec(), data))
    }

    pub fn constant_i32(&mut self, name: &str, shape: &[usize], values: Vec<i32>) -> TensorId {
        let data = TensorData::from_i32(shape, values).expect("values must fill the shape");
        self.g.add_tensor(Tensor::constant(name, DType::I32, shape.to_vec(), data))
    }

    /// A node with one float output of `shape`; `None` inputs are omitted optional operands.
    pub fn node(&mut self, op: Op, inputs: &[Option<TensorId>], shape: &[usize]) -> TensorId {
        let name = format!("{}_{}", op.name().to_lowercase(), self.g.nodes.len());
        let out = self.g.add_tensor(Tensor::new(name, DType::F32, shape.to_vec()));
        self.g.nodes.push(Node::new(op, inputs.to_vec(), vec![out]));
        out
    }

    /// The model, with `outputs` as its outputs.
    pub fn finish(mut self, outputs: &[TensorId]) -> Model {
        self.g.outputs = outputs.to_vec();
        self.g.name = "main".into();
        Model { graphs: vec![self.g], ..Model::default() }
    }
}
