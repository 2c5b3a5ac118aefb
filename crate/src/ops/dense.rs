//! FULLY_CONNECTED: `out[r, u] = Σ_k x[r, k] · w[u, k] + b[u]` over the rows of the input.
//! Weights `[units, k]`; float, hybrid and full-int8 forms.

use super::conv::{weighted_role, weighted_types};
use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec, Role, WeightLayout};
use crate::error::Result;
use crate::ir::FullyConnected;

pub struct Dense<'a>(pub &'a FullyConnected);

/// Rows and inner length of a FULLY_CONNECTED input of `len` values against weights `[units, k]`.
pub fn dense_rows(len: usize, k: usize) -> Option<usize> {
    (k > 0 && len.is_multiple_of(k)).then(|| len / k)
}

impl OpSpec for Dense<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let (x, w) = (cx.input(0, "input")?, cx.input(1, "weights")?);
        if w.shape.len() != 2 {
            return Err(cx.err(format!("weights must be [outputs, inputs], have shape {:?}", w.shape)));
        }
        let (units, k) = (w.shape[0], w.shape[1]);
        let rows = dense_rows(x.len(), k)
            .ok_or_else(|| cx.err(format!("input of {} values is not a whole number of rows of {k}", x.len())))?;
        let shape = if self.0.keep_num_dims {
            let mut s = x.shape.clone();
            match s.last_mut() {
                Some(last) if *last == k => *last = units,
                _ => return Err(cx.err("keep_num_dims needs the input's last dimension to equal the weights' inputs")),
            }
            s
        } else {
            vec![rows, units]
        };
        let dtype = weighted_types(cx, x, w, units, 0, self.0.activation)?;
        Ok(vec![cx.output(dtype, shape)?])
    }

    fn role(&self, input: usize) -> Role {
        weighted_role(input)
    }

    fn weights(&self) -> Option<WeightLayout> {
        Some(WeightLayout { weights: 1, out_axis: 0, in_axis: Some(1) })
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Weighted
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
