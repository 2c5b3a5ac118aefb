//! The view of one node that specs (and the engine's lowering) work from: its operands' facts,
//! its declared outputs, and the checks TFLite's int8 specification makes of quantized operands.

use std::cmp::Ordering;

use super::fact::{Fact, Known};
use crate::error::{Error, Location, Result};
use crate::ir::{Activation, DType, Graph, Node, QuantParams, Tensor, TensorData};
use crate::kernels::fixedpoint::activation_range;

/// One node of a graph, with the facts inferred for the tensors before it.
pub struct NodeCx<'a> {
    pub graph: &'a Graph,
    pub index: usize,
    pub node: &'a Node,
    pub facts: &'a [Option<Fact>],
    /// The batch size inference runs with, when it overrides the model's.
    pub batch: Option<usize>,
}

impl<'a> NodeCx<'a> {
    pub fn new(graph: &'a Graph, index: usize, facts: &'a [Option<Fact>], batch: Option<usize>) -> Self {
        NodeCx { graph, index, node: &graph.nodes[index], facts, batch }
    }

    pub fn loc(&self) -> Location {
        self.graph.node_loc(self.index)
    }

    /// An inconsistent model (shapes, types, parameters).
    pub fn err(&self, msg: impl Into<String>) -> Error {
        Error::graph(msg, self.loc())
    }

    /// A valid model this version cannot handle.
    pub fn unsupported(&self, msg: impl Into<String>) -> Error {
        Error::unsupported(msg, self.loc())
    }

    pub fn op_name(&self) -> &str {
        self.node.op.name()
    }

    /// The facts of operand `i`, if present.
    pub fn opt_input(&self, i: usize) -> Option<&'a Fact> {
        self.node.input(i).and_then(|t| self.facts.get(t)).and_then(Option::as_ref)
    }

    /// The facts of operand `i`, which must be present.
    pub fn input(&self, i: usize, what: &str) -> Result<&'a Fact> {
        let t = self.node.input(i).ok_or_else(|| self.err(format!("missing {what} operand (input {i})")))?;
        self.facts
            .get(t)
            .and_then(Option::as_ref)
            .ok_or_else(|| self.err(format!("{what} operand (input {i}) has no known shape")))
    }

    /// Facts of every operand, all of which must be present (CONCATENATION, PACK).
    pub fn all_inputs(&self, what: &str) -> Result<Vec<&'a Fact>> {
        (0..self.node.inputs.len()).map(|i| self.input(i, what)).collect()
    }

    /// The known value of operand `i` (a constant, or folded shape arithmetic).
    pub fn value(&self, i: usize) -> Option<&'a TensorData> {
        let t = self.node.input(i)?;
        match &self.facts.get(t)?.as_ref()?.known {
            Known::Constant => self.graph.tensors[t].data.as_ref(),
            Known::Folded(v) => Some(v),
            Known::No => None,
        }
    }

    /// The value of an integer operand that must be known (shapes, axes, paddings).
    pub fn value_i64(&self, i: usize, what: &str) -> Result<Vec<i64>> {
        self.node.input(i).ok_or_else(|| self.err(format!("missing {what} operand (input {i})")))?;
        let v = self.value(i).ok_or_else(|| self.unsupported(format!("{what} (input {i}) must be a constant")))?;
        v.to_i64_vec().ok_or_else(|| self.err(format!("{what} must hold integers")))
    }

    /// Whether operand `i` is present and known before running.
    pub fn is_known(&self, i: usize) -> bool {
        self.opt_input(i).is_some_and(Fact::is_known)
    }

    /// The first output tensor as the file declares it.
    pub fn declared(&self) -> Result<&'a Tensor> {
        let o = self.node.output().ok_or_else(|| self.err("the operator has no output"))?;
        Ok(&self.graph.tensors[o])
    }

    /// The declared quantization of the first output.
    pub fn out_quant(&self) -> Option<QuantParams> {
        self.node.output().and_then(|o| self.graph.tensors[o].quant.clone())
    }

    /// The fact of an output of `dtype` and `shape` with the declared output's quantization,
    /// refused when its size overflows or exceeds the budget.
    pub fn output(&self, dtype: DType, shape: Vec<usize>) -> Result<Fact> {
        self.output_with(dtype, shape, self.out_quant())
    }

    pub fn output_with(&self, dtype: DType, shape: Vec<usize>, quant: Option<QuantParams>) -> Result<Fact> {
        let what = || format!("the output of node {} ({})", self.index, self.op_name());
        checked_bytes(&shape, dtype, what).map_err(|e| e.at(self.loc()))?;
        Ok(Fact::new(dtype, shape, quant))
    }

    /// Refuses operand types other than f32, naming the operator.
    pub fn float_only(&self, f: &Fact, what: &str) -> Result<()> {
        if f.dtype != DType::F32 {
            return Err(self.unsupported(format!(
                "{what} of type {}: {} runs on f32 or int8 operands only",
                f.dtype,
                self.op_name()
            )));
        }
        Ok(())
    }

    /// Per-tensor scale and zero point of a quantized int8 activation, checked as TFLite does.
    pub fn act_qparams(&self, f: &Fact, what: &str) -> Result<(f32, i32)> {
        let q = f.quant.as_ref().ok_or_else(|| self.err(format!("int8 {what} has no quantization parameters")))?;
        if q.channel_axis().is_some() {
            return Err(self.unsupported(format!("per-channel quantization of the {what} activation")));
        }
        let (scale, zp) = q.single();
        if scale.partial_cmp(&0.0) != Some(Ordering::Greater) || !scale.is_finite() {
            return Err(self.err(format!("int8 {what} has scale {scale}; it must be positive")));
        }
        let zp = i32::try_from(zp)
            .ok()
            .filter(|z| (-128..=127).contains(z))
            .ok_or_else(|| self.err(format!("int8 {what} has zero point {zp}, outside [-128, 127]")))?;
        Ok((scale, zp))
    }

    /// The declared int8 output's scale and zero point.
    pub fn out_qparams(&self) -> Result<(f32, i32)> {
        let t = self.declared()?;
        self.act_qparams(&Fact::new(t.dtype, t.shape.clone(), t.quant.clone()), "output")
    }

    /// Symmetric weight scales, one per output channel (`n` along `axis`), or one repeated.
    pub fn weight_scales(&self, w: &Fact, n: usize, axis: usize) -> Result<Vec<f32>> {
        let q = w.quant.as_ref().ok_or_else(|| self.err("int8 weights without quantization parameters"))?;
        if q.zero_point.iter().any(|&z| z != 0) {
            return Err(self.unsupported("int8 weights with a non-zero zero point"));
        }
        if let Some(bad) = q.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(self.err(format!("int8 weights have scale {bad}; scales must be positive")));
        }
        match q.channel_axis() {
            None => Ok(vec![q.scale[0]; n]),
            Some(a) if a == axis && q.scale.len() == n => Ok(q.scale.clone()),
            Some(a) => Err(self
                .err(format!("weights quantized per channel along dimension {a}, expected {axis} with {n} channels"))),
        }
    }

    /// Float clamp bounds of a fused activation.
    pub fn clamp(&self, act: Activation) -> Result<(f32, f32)> {
        act.clamp_range().ok_or_else(|| self.unsupported(format!("fused activation {act:?}")))
    }

    /// Quantized clamp bounds of a fused activation on an int8 output.
    pub fn clamp_i8(&self, act: Activation, scale: f32, zp: i32) -> Result<(i32, i32)> {
        activation_range(act, scale, zp, -128, 127)
            .ok_or_else(|| self.unsupported(format!("fused activation {act:?} on int8")))
    }
}

/// Whether two tensors share per-tensor scale and zero point (what TFLite requires of operators
/// that move int8 values without rescaling).
pub fn same_qparams(a: &Option<QuantParams>, b: &Option<QuantParams>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.single() == b.single() && a.channel_axis().is_none() && b.channel_axis().is_none(),
        _ => false,
    }
}

/// Bytes of a tensor of `shape` and `dtype`, refused over the engine's budget (or when the count
/// overflows what this platform addresses): a typed resource error naming `what()`, which is only
/// formatted for the error (shape inference checks every tensor of every candidate model).
pub fn checked_bytes(shape: &[usize], dtype: DType, what: impl FnOnce() -> String) -> Result<usize> {
    let budget = crate::budget::current();
    budget.tensor_bytes(shape, dtype, "").or_else(|_| budget.tensor_bytes(shape, dtype, &what()))
}
