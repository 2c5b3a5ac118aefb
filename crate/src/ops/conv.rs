//! CONV_2D and DEPTHWISE_CONV_2D: NHWC activations; weights `[out, kh, kw, in]` and
//! `[1, kh, kw, out]`; optional bias `[out]`. Float, hybrid (int8 weights, float activations) and
//! full-int8 forms.

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec, Role, WeightLayout};
use crate::error::Result;
use crate::ir::{Activation, Conv2D, DType, DepthwiseConv2D, Op, Padding};
use crate::kernels::conv::ConvShape;
use crate::kernels::geometry::{Window, Window2D};

pub struct Conv<'a>(pub &'a Conv2D);
pub struct Depthwise<'a>(pub &'a DepthwiseConv2D);

/// The geometry of a convolution node from its input and weight shapes, or `None` when `op` is not
/// a convolution or the shapes do not fit. Every pass that walks a convolution's window (the
/// engine, quantization's bias correction, pruning's metrics, the backward pass) starts here.
pub fn conv_shape(op: &Op, input: &[usize], weights: &[usize]) -> Option<ConvShape> {
    let (padding, stride, dilation, out_c) = match op {
        Op::Conv2D(c) => (c.padding, c.stride, c.dilation, *weights.first()?),
        Op::DepthwiseConv2D(c) => (c.padding, c.stride, c.dilation, *weights.get(3)?),
        _ => return None,
    };
    if input.len() != 4 || weights.len() != 4 {
        return None;
    }
    let h = Window::new(padding, input[1], weights[1], stride.0, dilation.0)?;
    let w = Window::new(padding, input[2], weights[2], stride.1, dilation.1)?;
    Some(ConvShape { batch: input[0], in_c: input[3], out_c, win: Window2D { h, w } })
}

fn rank4(cx: &NodeCx, f: &Fact, what: &str) -> Result<()> {
    if f.shape.len() != 4 {
        return Err(cx.err(format!("{what} must have rank 4 (NHWC), has shape {:?}", f.shape)));
    }
    Ok(())
}

/// Checks stride, dilation and the window against the input, naming what does not fit.
fn window(
    cx: &NodeCx,
    x: &Fact,
    w: &Fact,
    padding: Padding,
    stride: (usize, usize),
    dilation: (usize, usize),
) -> Result<()> {
    if stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 {
        return Err(cx.err(format!("stride {stride:?} and dilation {dilation:?} must be at least 1")));
    }
    let (kh, kw) = (w.shape[1], w.shape[2]);
    let reach = |k: usize, d: usize| (k.saturating_sub(1)).checked_mul(d).and_then(|r| r.checked_add(1));
    match (reach(kh, dilation.0), reach(kw, dilation.1)) {
        (Some(h), Some(w)) if h <= x.shape[1].max(1) * 2 + 1 && w <= x.shape[2].max(1) * 2 + 1 => {}
        _ => {
            return Err(cx.unsupported(format!(
                "a {kh}x{kw} filter with dilation {dilation:?} spans more than twice the {}x{} input",
                x.shape[1], x.shape[2]
            )))
        }
    }
    if conv_shape(&cx.node.op, &x.shape, &w.shape).is_none() {
        return Err(cx.err(format!(
            "a {kh}x{kw} window (stride {stride:?}, dilation {dilation:?}, {padding:?} padding) does not fit a {}x{} input",
            x.shape[1], x.shape[2]
        )));
    }
    Ok(())
}

/// Type rules shared by CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: the output type, after
/// checking the weights, bias and activation for the float, hybrid or int8 form.
pub(super) fn weighted_types(
    cx: &NodeCx,
    x: &Fact,
    w: &Fact,
    out_c: usize,
    axis: usize,
    act: Activation,
) -> Result<DType> {
    let bias = cx.opt_input(2);
    if let Some(b) = bias {
        if b.len() != out_c {
            return Err(cx.err(format!("bias has {} values for {out_c} output channels", b.len())));
        }
    }
    if !cx.is_known(1) {
        return Err(cx.unsupported("weights (input 1) must be a constant"));
    }
    if bias.is_some() && !cx.is_known(2) {
        return Err(cx.unsupported("bias (input 2) must be a constant"));
    }
    match x.dtype {
        DType::I8 => {
            if w.dtype != DType::I8 {
                return Err(cx.unsupported(format!("int8 {} with {} weights", cx.op_name(), w.dtype)));
            }
            if bias.is_some_and(|b| b.dtype != DType::I32) {
                return Err(cx.unsupported("int8 layer whose bias is not int32"));
            }
            cx.act_qparams(x, "input")?;
            let (s, z) = cx.out_qparams()?;
            cx.weight_scales(w, out_c, axis)?;
            cx.clamp_i8(act, s, z)?;
            Ok(DType::I8)
        }
        DType::F32 => {
            match w.dtype {
                DType::F32 => {}
                DType::I8 => {
                    cx.weight_scales(w, out_c, axis)?;
                }
                other => return Err(cx.unsupported(format!("{} weights of type {other}", cx.op_name()))),
            }
            if bias.is_some_and(|b| b.dtype != DType::F32) {
                return Err(cx.unsupported("float layer whose bias is not float32"));
            }
            cx.clamp(act)?;
            Ok(DType::F32)
        }
        other => Err(cx.unsupported(format!("{} input of type {other}", cx.op_name()))),
    }
}

pub(super) fn weighted_role(input: usize) -> Role {
    match input {
        0 => Role::Activation,
        1 => Role::Weights,
        2 => Role::Bias,
        _ => Role::Operand,
    }
}

impl OpSpec for Conv<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let (x, w) = (cx.input(0, "input")?, cx.input(1, "weights")?);
        rank4(cx, x, "input")?;
        rank4(cx, w, "weights")?;
        let (oc, ic) = (w.shape[0], w.shape[3]);
        if ic != x.shape[3] {
            return Err(if ic > 0 && x.shape[3] % ic == 0 {
                cx.unsupported("grouped convolution")
            } else {
                cx.err(format!("weights expect {ic} input channels, input has {}", x.shape[3]))
            });
        }
        let c = self.0;
        window(cx, x, w, c.padding, c.stride, c.dilation)?;
        let s = conv_shape(&cx.node.op, &x.shape, &w.shape).ok_or_else(|| cx.err("window does not fit"))?;
        let dtype = weighted_types(cx, x, w, oc, 0, c.activation)?;
        Ok(vec![cx.output(dtype, vec![s.batch, s.out_h(), s.out_w(), oc])?])
    }

    fn role(&self, input: usize) -> Role {
        weighted_role(input)
    }

    fn weights(&self) -> Option<WeightLayout> {
        Some(WeightLayout { weights: 1, out_axis: 0, in_axis: Some(3) })
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Weighted
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}

impl OpSpec for Depthwise<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let (x, w) = (cx.input(0, "input")?, cx.input(1, "weights")?);
        rank4(cx, x, "input")?;
        rank4(cx, w, "weights")?;
        let (ic, oc) = (x.shape[3], w.shape[3]);
        if w.shape[0] != 1 || ic == 0 || oc % ic != 0 {
            return Err(cx.err(format!("depthwise weights {:?} do not fit {ic} input channels", w.shape)));
        }
        let c = self.0;
        window(cx, x, w, c.padding, c.stride, c.dilation)?;
        let s = conv_shape(&cx.node.op, &x.shape, &w.shape).ok_or_else(|| cx.err("window does not fit"))?;
        let dtype = weighted_types(cx, x, w, oc, 3, c.activation)?;
        Ok(vec![cx.output(dtype, vec![s.batch, s.out_h(), s.out_w(), oc])?])
    }

    fn role(&self, input: usize) -> Role {
        weighted_role(input)
    }

    fn weights(&self) -> Option<WeightLayout> {
        Some(WeightLayout { weights: 1, out_axis: 3, in_axis: None })
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Weighted
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
