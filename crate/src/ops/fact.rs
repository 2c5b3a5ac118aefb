//! What is known about a tensor before anything runs: element type, shape, quantization, and, for
//! constants and shape arithmetic, its value.

use std::sync::Arc;

use crate::ir::{DType, QuantParams, TensorData, TensorId};

/// Where a tensor's value is known from, if it is known before running.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Known {
    /// Computed at run time.
    #[default]
    No,
    /// A constant of the graph (its data is in the graph's tensor).
    Constant,
    /// Computed by inference from constant operands (shape arithmetic such as SHAPE → PACK).
    Folded(Arc<TensorData>),
}

/// The facts of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub quant: Option<QuantParams>,
    pub known: Known,
}

impl Fact {
    pub fn new(dtype: DType, shape: Vec<usize>, quant: Option<QuantParams>) -> Fact {
        Fact { dtype, shape, quant, known: Known::No }
    }

    /// Number of elements. Facts are only created with counts that fit the budget, so this cannot
    /// overflow.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the value is known before running (a constant or folded shape arithmetic).
    pub fn is_known(&self) -> bool {
        !matches!(self.known, Known::No)
    }

    /// Per-tensor scale and zero point (the first entry of per-channel parameters).
    pub fn qparams(&self) -> Option<(f32, i64)> {
        self.quant.as_ref().map(QuantParams::single)
    }
}

/// Facts of every tensor of a graph, indexed by [`TensorId`]; `None` for tensors nothing computes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub tensors: Vec<Option<Fact>>,
    /// The batch size the facts were inferred for, when it was overridden.
    pub batch: Option<usize>,
}

impl Facts {
    pub fn get(&self, t: TensorId) -> Option<&Fact> {
        self.tensors.get(t).and_then(Option::as_ref)
    }
}
