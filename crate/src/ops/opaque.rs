//! Operators this version does not model: their outputs are taken as declared, so the rest of the
//! graph can still be inferred, inspected and written back; the engine refuses to run them.

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;

pub struct Opaque;

impl OpSpec for Opaque {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        cx.node
            .outputs
            .iter()
            .map(|&o| {
                let t = &cx.graph.tensors[o];
                cx.output_with(t.dtype, t.shape.clone(), t.quant.clone())
            })
            .collect()
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Float("has no int8 kernel in this version")
    }

    fn gradient(&self) -> Gradient {
        Gradient::Unsupported("an operator this version does not model")
    }
}
