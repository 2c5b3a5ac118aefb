//! The engine: runs a model's main graph.
//!
//! [`Interpreter::new`] prepares every node once (shape inference, type checks, packed weights) and
//! folds nodes whose operands are all constant (such as DEQUANTIZE of float16 weights).
//! [`Interpreter::invoke`] then runs the remaining steps. Every tensor keeps its own buffer, so after
//! a run the value of any activation can be read (calibration and gradients rely on this).

mod batch;
mod buffer;
mod plan;

pub use batch::{run_batch, samples_in};
pub(crate) use buffer::dispatch_dtype;
pub use buffer::{Buffer, Elem};
pub use plan::{resolve_reshape, BinOp, FcArithmetic, Kernel, Step, TensorInfo, Unary};

use crate::error::{Error, Location, Result};
use crate::ir::{DType, Model, QuantParams, TensorId};
use crate::kernels::int8::{conv as conv_i8, pointwise as pw_i8};
use crate::kernels::{conv, elementwise, fc, layout, pool, quant, reduce};
use conv::QuantizedInput;
use plan::Ctx;
use serde::Serialize;

/// Name, type, shape and quantization of a model input or output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IoDetail {
    pub name: String,
    pub tensor: TensorId,
    pub dtype: DType,
    pub shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
}

/// A prepared model, ready to run.
pub struct Interpreter {
    infos: Vec<Option<TensorInfo>>,
    names: Vec<String>,
    bufs: Vec<Buffer>,
    steps: Vec<Step>,
    inputs: Vec<TensorId>,
    outputs: Vec<TensorId>,
    scratch_f32: Vec<f32>,
    scratch_i8: Vec<i8>,
    scratch_int8: conv_i8::Scratch,
    scratch_pad_f32: Vec<f32>,
    /// Nodes evaluated at preparation because their operands are constant.
    folded: Vec<usize>,
}

impl Interpreter {
    /// Prepares the main graph of `model` (int8 arithmetic as LiteRT's reference kernels).
    pub fn new(model: &Model) -> Result<Interpreter> {
        Self::with_options(model, FcArithmetic::default())
    }

    /// Prepares the main graph with a choice of int8 FULLY_CONNECTED arithmetic.
    pub fn with_options(model: &Model, fc: FcArithmetic) -> Result<Interpreter> {
        model.validate()?;
        let g = model.main();
        let nt = g.tensors.len();
        let mut infos: Vec<Option<TensorInfo>> = vec![None; nt];
        let mut consts: Vec<Option<Buffer>> = vec![None; nt];
        for (i, t) in g.tensors.iter().enumerate() {
            if let Some(data) = &t.data {
                let buf = Buffer::from_data(t.dtype, data);
                // f16 constants load as f32 values.
                let dtype = if t.dtype == DType::F16 { DType::F32 } else { t.dtype };
                consts[i] = buf;
                infos[i] = Some(TensorInfo { dtype, shape: t.shape.clone(), quant: t.quant.clone() });
            }
        }
        for &i in &g.inputs {
            let t = &g.tensors[i];
            if Buffer::zeros(t.dtype, 0).is_none() {
                return Err(Error::unsupported(format!("model input of type {}", t.dtype), g.tensor_loc(i)));
            }
            infos[i] = Some(TensorInfo { dtype: t.dtype, shape: t.shape.clone(), quant: t.quant.clone() });
        }
        let mut steps = Vec::new();
        let mut folded = Vec::new();
        for ni in 0..g.nodes.len() {
            let node = &g.nodes[ni];
            let (kernel, info) = plan::prepare(&Ctx { graph: g, info: &infos, consts: &consts, node: ni, fc })?;
            let out = node.outputs[0];
            let declared = &g.tensors[out];
            if declared.dtype != info.dtype && !(declared.dtype == DType::F16 && info.dtype == DType::F32) {
                return Err(Error::graph(
                    format!("output is declared {} but the operator produces {}", declared.dtype, info.dtype),
                    g.node_loc(ni),
                ));
            }
            if !declared.shape.is_empty() && declared.shape != info.shape {
                return Err(Error::graph(
                    format!(
                        "output is declared with shape {:?} but the operator produces {:?}",
                        declared.shape, info.shape
                    ),
                    g.node_loc(ni),
                ));
            }
            let step = Step { node: ni, inputs: node.inputs.clone(), output: out, kernel };
            let all_const = node.inputs.iter().flatten().all(|&t| consts[t].is_some());
            infos[out] = Some(info);
            if let Kernel::Constant(value) = &step.kernel {
                consts[out] = Some(value.clone());
                folded.push(ni);
            } else if all_const && !node.inputs.is_empty() {
                // Evaluate now; the result becomes a constant for the nodes after it.
                let mut bufs: Vec<Buffer> = consts.iter().map(|c| c.clone().unwrap_or_default()).collect();
                let mut s = Scratch::default();
                run_step(&step, &infos, &mut bufs, &mut s).map_err(|e| e.at(g.node_loc(ni)))?;
                consts[out] = Some(std::mem::take(&mut bufs[out]));
                folded.push(ni);
            } else {
                steps.push(step);
            }
        }
        for &o in &g.outputs {
            if infos[o].is_none() {
                return Err(Error::graph("graph output is never computed", g.tensor_loc(o)));
            }
        }
        let mut bufs = Vec::with_capacity(nt);
        for (i, info) in infos.iter().enumerate() {
            bufs.push(match (&consts[i], info) {
                (Some(c), _) => c.clone(),
                (None, Some(info)) => Buffer::zeros(info.dtype, info.len()).unwrap_or_default(),
                (None, None) => Buffer::Empty,
            });
        }
        Ok(Interpreter {
            infos,
            names: g.tensors.iter().map(|t| t.name.clone()).collect(),
            bufs,
            steps,
            inputs: g.inputs.clone(),
            outputs: g.outputs.clone(),
            scratch_f32: Vec::new(),
            scratch_i8: Vec::new(),
            scratch_int8: conv_i8::Scratch::default(),
            scratch_pad_f32: Vec::new(),
            folded,
        })
    }

    fn detail(&self, t: TensorId) -> IoDetail {
        let info = self.infos[t].clone().unwrap_or(TensorInfo { dtype: DType::F32, shape: vec![], quant: None });
        IoDetail { name: self.names[t].clone(), tensor: t, dtype: info.dtype, shape: info.shape, quant: info.quant }
    }

    pub fn inputs(&self) -> Vec<IoDetail> {
        self.inputs.iter().map(|&t| self.detail(t)).collect()
    }

    pub fn outputs(&self) -> Vec<IoDetail> {
        self.outputs.iter().map(|&t| self.detail(t)).collect()
    }

    /// Nodes whose outputs were computed at preparation (their operands are all constant); their
    /// values are in [`Interpreter::tensor`].
    pub fn folded_nodes(&self) -> &[usize] {
        &self.folded
    }

    /// The prepared steps (one per non-folded node), in execution order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Sets input `i` from a buffer of the input's own type.
    pub fn set_input(&mut self, i: usize, value: Buffer) -> Result<()> {
        let t = *self.inputs.get(i).ok_or_else(|| Error::input(format!("the model has no input {i}")))?;
        let info = self.infos[t].as_ref().ok_or_else(|| Error::input("input has no shape"))?;
        if value.dtype() != Some(info.dtype) {
            return Err(Error::input(format!(
                "input {i} '{}' takes {}, got {}",
                self.names[t],
                info.dtype,
                value.dtype().map_or("nothing".to_string(), |d| d.to_string())
            )));
        }
        if value.len() != info.len() {
            return Err(Error::input(format!(
                "input {i} '{}' takes {} values (shape {:?}), got {}",
                self.names[t],
                info.len(),
                info.shape,
                value.len()
            )));
        }
        self.bufs[t] = value;
        Ok(())
    }

    /// Sets input `i` from float values, quantizing them with the input's parameters when the model
    /// takes integers. NaN and infinite values are refused.
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<()> {
        if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(format!("input {i} holds a non-finite value ({}) at element {pos}", values[pos])));
        }
        let t = *self.inputs.get(i).ok_or_else(|| Error::input(format!("the model has no input {i}")))?;
        let info = self.infos[t].clone().ok_or_else(|| Error::input("input has no shape"))?;
        let buf = match info.dtype {
            DType::F32 => Buffer::F32(values.to_vec()),
            DType::I8 | DType::U8 | DType::I16 => {
                let q =
                    info.quant.as_ref().ok_or_else(|| Error::input("integer input without quantization parameters"))?;
                let (scale, zp) = q.single();
                let (lo, hi) = int_range(info.dtype);
                let mut out = vec![0i32; values.len()];
                quant::quantize_f32(values, scale, zp as i32, lo, hi, &mut out);
                match info.dtype {
                    DType::I8 => Buffer::I8(out.iter().map(|&v| v as i8).collect()),
                    DType::U8 => Buffer::U8(out.iter().map(|&v| v as u8).collect()),
                    _ => Buffer::I16(out.iter().map(|&v| v as i16).collect()),
                }
            }
            other => return Err(Error::unsupported(format!("input of type {other}"), Location::default())),
        };
        self.set_input(i, buf)
    }

    /// Runs the model on the inputs set.
    pub fn invoke(&mut self) -> Result<()> {
        let mut s = Scratch {
            f32: std::mem::take(&mut self.scratch_f32),
            i8: std::mem::take(&mut self.scratch_i8),
            int8: std::mem::take(&mut self.scratch_int8),
            pad_f32: std::mem::take(&mut self.scratch_pad_f32),
        };
        let mut result = Ok(());
        for step in &self.steps {
            if let Err(e) = run_step(step, &self.infos, &mut self.bufs, &mut s) {
                result = Err(e.at(Location::node(step.node, "")));
                break;
            }
        }
        self.scratch_f32 = s.f32;
        self.scratch_i8 = s.i8;
        self.scratch_int8 = s.int8;
        self.scratch_pad_f32 = s.pad_f32;
        result
    }

    /// Runs the model like [`Interpreter::invoke`] and returns each step's node index and time in
    /// milliseconds, for finding the slow layers.
    pub fn invoke_profiled(&mut self) -> Result<Vec<(usize, f64)>> {
        let mut s = Scratch {
            f32: std::mem::take(&mut self.scratch_f32),
            i8: std::mem::take(&mut self.scratch_i8),
            int8: std::mem::take(&mut self.scratch_int8),
            pad_f32: std::mem::take(&mut self.scratch_pad_f32),
        };
        let mut times = Vec::with_capacity(self.steps.len());
        let mut result = Ok(());
        for step in &self.steps {
            let t = crate::clock::now_ms();
            if let Err(e) = run_step(step, &self.infos, &mut self.bufs, &mut s) {
                result = Err(e.at(Location::node(step.node, "")));
                break;
            }
            times.push((step.node, crate::clock::now_ms() - t));
        }
        self.scratch_f32 = s.f32;
        self.scratch_i8 = s.i8;
        self.scratch_int8 = s.int8;
        self.scratch_pad_f32 = s.pad_f32;
        result.map(|_| times)
    }

    pub fn output(&self, i: usize) -> Option<&Buffer> {
        self.outputs.get(i).map(|&t| &self.bufs[t])
    }

    /// Output `i` as floats, dequantized when the model produces integers.
    pub fn output_f32(&self, i: usize) -> Option<Vec<f32>> {
        let t = *self.outputs.get(i)?;
        self.tensor_f32(t)
    }

    /// The current value of any tensor, as floats (dequantized when quantized).
    pub fn tensor_f32(&self, t: TensorId) -> Option<Vec<f32>> {
        let info = self.infos.get(t)?.as_ref()?;
        let (scale, zp) = info.quant.as_ref().map_or((1.0, 0), |q| q.single());
        let mut out = vec![0.0; self.bufs[t].len()];
        match &self.bufs[t] {
            Buffer::F32(v) => return Some(v.clone()),
            Buffer::I8(v) => quant::dequantize(v, scale, zp as i32, &mut out),
            Buffer::U8(v) => quant::dequantize(v, scale, zp as i32, &mut out),
            Buffer::I16(v) => quant::dequantize(v, scale, zp as i32, &mut out),
            Buffer::I32(v) => out.iter_mut().zip(v).for_each(|(o, &x)| *o = x as f32),
            _ => return None,
        }
        Some(out)
    }

    /// The buffer of any tensor (activations after a run, constants, inputs).
    pub fn tensor(&self, t: TensorId) -> Option<&Buffer> {
        self.bufs.get(t)
    }

    pub fn tensor_info(&self, t: TensorId) -> Option<&TensorInfo> {
        self.infos.get(t).and_then(|i| i.as_ref())
    }
}

pub(crate) fn int_range(d: DType) -> (i32, i32) {
    match d {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        _ => (i32::MIN, i32::MAX),
    }
}

#[derive(Default)]
struct Scratch {
    f32: Vec<f32>,
    i8: Vec<i8>,
    int8: conv_i8::Scratch,
    pad_f32: Vec<f32>,
}

fn internal(msg: &str) -> Error {
    Error::graph(format!("engine invariant broken: {msg}"), Location::default())
}

fn f32_in(bufs: &[Buffer], t: Option<usize>) -> Result<&[f32]> {
    t.and_then(|t| bufs.get(t)).and_then(Buffer::as_f32).ok_or_else(|| internal("expected a float operand"))
}

fn i8_in(bufs: &[Buffer], t: Option<usize>) -> Result<&[i8]> {
    t.and_then(|t| bufs.get(t)).and_then(Buffer::as_i8).ok_or_else(|| internal("expected an int8 operand"))
}

fn map_i8(x: &[i8], out: &mut [i8], f: impl Fn(i8) -> i8) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// Hybrid activations quantized per row (`rows` rows of `len` values).
fn quantize_rows(x: &[f32], rows: usize, asymmetric: bool, q: &mut Vec<i8>) -> Vec<(f32, i32)> {
    q.resize(x.len(), 0);
    let len = x.len() / rows.max(1);
    (0..rows)
        .map(|r| {
            let (xr, qr) = (&x[r * len..(r + 1) * len], &mut q[r * len..(r + 1) * len]);
            if asymmetric {
                quant::asymmetric_quantize(xr, qr)
            } else {
                (quant::symmetric_quantize(xr, qr), 0)
            }
        })
        .collect()
}

fn run_step(step: &Step, infos: &[Option<TensorInfo>], bufs: &mut [Buffer], s: &mut Scratch) -> Result<()> {
    let mut out = std::mem::take(&mut bufs[step.output]);
    let r = exec_kernel(step, infos, bufs, &mut out, s);
    bufs[step.output] = out;
    r
}

fn exec_kernel(
    step: &Step,
    infos: &[Option<TensorInfo>],
    bufs: &[Buffer],
    out: &mut Buffer,
    s: &mut Scratch,
) -> Result<()> {
    use crate::kernels::gemm_f32::Epilogue;
    let x0 = step.inputs.first().copied().flatten();
    let out_info = infos[step.output].as_ref().ok_or_else(|| internal("output without info"))?;
    if out.len() != out_info.len() || out.dtype() != Some(out_info.dtype) {
        *out = Buffer::zeros(out_info.dtype, out_info.len()).ok_or_else(|| internal("output type"))?;
    }
    macro_rules! out_i8 {
        () => {
            match out {
                Buffer::I8(v) => v.as_mut_slice(),
                _ => return Err(internal("expected an int8 output")),
            }
        };
    }
    macro_rules! out_f32 {
        () => {
            match out {
                Buffer::F32(v) => v.as_mut_slice(),
                _ => return Err(internal("expected a float output")),
            }
        };
    }
    // A data movement that works for any element type: `$f` sees typed input and output slices.
    macro_rules! movement {
        (|$x:ident, $o:ident| $f:expr) => {
            dispatch_dtype!(out_info.dtype, T => {
                let $x = x0.and_then(|t| T::slice(&bufs[t])).ok_or_else(|| internal("input type differs from output"))?;
                let $o = T::slice_mut(out).ok_or_else(|| internal("output type"))?;
                $f
            }, return Err(Error::unsupported(format!("data movement of {}", out_info.dtype), Location::default())))
        };
    }
    match &step.kernel {
        Kernel::ConvF32 { s: shape, w, bias, min, max } => {
            let ep = Epilogue { bias: bias.as_deref(), min: *min, max: *max };
            conv::conv2d_f32(shape, f32_in(bufs, x0)?, w, ep, out_f32!(), &mut s.f32, &mut s.pad_f32);
        }
        Kernel::ConvHybrid { s: shape, w, w_scale, bias, min, max, asymmetric } => {
            let x = f32_in(bufs, x0)?;
            let params = quantize_rows(x, shape.batch, *asymmetric, &mut s.i8);
            let ep = Epilogue { bias: bias.as_deref(), min: *min, max: *max };
            conv::conv2d_hybrid(
                shape,
                QuantizedInput { values: &s.i8, params: &params },
                w,
                w_scale,
                *asymmetric,
                ep,
                out_f32!(),
            );
        }
        Kernel::DepthwiseF32 { s: shape, w, bias, min, max } => {
            let ep = Epilogue { bias: bias.as_deref(), min: *min, max: *max };
            conv::depthwise_f32(shape, f32_in(bufs, x0)?, w, ep, out_f32!(), &mut s.pad_f32);
        }
        Kernel::DepthwiseHybrid { s: shape, w, w_scale, bias, min, max } => {
            let x = f32_in(bufs, x0)?;
            let params = quantize_rows(x, shape.batch, true, &mut s.i8);
            let ep = Epilogue { bias: bias.as_deref(), min: *min, max: *max };
            conv::depthwise_hybrid(
                shape,
                QuantizedInput { values: &s.i8, params: &params },
                w,
                w_scale,
                ep,
                out_f32!(),
            );
        }
        Kernel::FcF32 { rows, w, bias, min, max } => {
            let ep = Epilogue { bias: bias.as_deref(), min: *min, max: *max };
            fc::fc_f32(*rows, f32_in(bufs, x0)?, w, ep, out_f32!());
        }
        Kernel::FcHybrid { rows, k, w, w_scale, bias, min, max, asymmetric } => {
            let x = f32_in(bufs, x0)?;
            let params = quantize_rows(x, *rows, *asymmetric, &mut s.i8);
            let ep = Epilogue { bias: bias.as_deref(), min: *min, max: *max };
            fc::fc_hybrid(*rows, *k, QuantizedInput { values: &s.i8, params: &params }, w, w_scale, ep, out_f32!());
        }
        Kernel::PoolF32 { s: shape, max_pool, min, max } => {
            let x = f32_in(bufs, x0)?;
            if *max_pool {
                pool::max_pool_f32(shape, x, *min, *max, out_f32!());
            } else {
                pool::average_pool_f32(shape, x, *min, *max, out_f32!());
            }
        }
        Kernel::BinaryF32 { op, a_shape, b_shape, out_shape, min, max } => {
            let a = f32_in(bufs, x0)?;
            let b = f32_in(bufs, step.inputs.get(1).copied().flatten())?;
            let (lo, hi) = (*min, *max);
            let o = out_f32!();
            match op {
                BinOp::Add => elementwise::binary(a, a_shape, b, b_shape, out_shape, o, |x, y| (x + y).max(lo).min(hi)),
                BinOp::Sub => elementwise::binary(a, a_shape, b, b_shape, out_shape, o, |x, y| (x - y).max(lo).min(hi)),
                BinOp::Mul => elementwise::binary(a, a_shape, b, b_shape, out_shape, o, |x, y| (x * y).max(lo).min(hi)),
            }
        }
        Kernel::UnaryF32(u) => {
            let x = f32_in(bufs, x0)?;
            let f: Box<dyn Fn(f32) -> f32> = match *u {
                Unary::Logistic => Box::new(elementwise::logistic),
                Unary::Tanh => Box::new(f32::tanh),
                Unary::Relu => Box::new(|v: f32| v.max(0.0)),
                Unary::Relu6 => Box::new(|v: f32| v.clamp(0.0, 6.0)),
                Unary::LeakyRelu(a) => Box::new(move |v| elementwise::leaky_relu(v, a)),
                Unary::HardSwish => Box::new(elementwise::hard_swish),
            };
            for (o, &v) in out_f32!().iter_mut().zip(x) {
                *o = f(v);
            }
        }
        Kernel::SoftmaxF32 { depth, beta } => reduce::softmax_f32(f32_in(bufs, x0)?, *depth, *beta, out_f32!()),
        Kernel::ReduceF32 { map, mean } => {
            let x = f32_in(bufs, x0)?;
            if *mean {
                reduce::mean_f32(x, map, out_f32!());
            } else {
                reduce::max_f32(x, map, out_f32!());
            }
        }
        Kernel::Copy => {
            let x = x0.map(|t| &bufs[t]).ok_or_else(|| internal("copy without input"))?;
            if x.len() != out.len() {
                return Err(internal("copy between different sizes"));
            }
            *out = x.clone();
        }
        Kernel::Transpose { shape, perm } => movement!(|x, o| layout::transpose(x, shape, perm, o)),
        Kernel::Pad { shape, pads } => {
            let zp = out_info.quant.as_ref().map_or(0, |q| q.single().1);
            macro_rules! pad_as {
                ($t:ty, $zero:expr) => {{
                    let x = x0.and_then(|t| <$t as Elem>::slice(&bufs[t])).ok_or_else(|| internal("pad input"))?;
                    let o = <$t as Elem>::slice_mut(out).ok_or_else(|| internal("pad output"))?;
                    layout::pad(x, shape, pads, $zero, o);
                }};
            }
            match out_info.dtype {
                DType::F32 => pad_as!(f32, 0.0),
                DType::I8 => pad_as!(i8, zp as i8),
                DType::U8 => pad_as!(u8, zp as u8),
                DType::I16 => pad_as!(i16, zp as i16),
                DType::I32 => pad_as!(i32, 0),
                DType::I64 => pad_as!(i64, 0),
                other => return Err(Error::unsupported(format!("PAD of {other}"), Location::default())),
            }
        }
        Kernel::Concat { axis, shapes } => {
            dispatch_dtype!(out_info.dtype, T => {
                let ins: Vec<&[T]> = step
                    .inputs
                    .iter()
                    .map(|t| t.and_then(|t| T::slice(&bufs[t])).ok_or_else(|| internal("concat input")))
                    .collect::<Result<_>>()?;
                let shape_refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
                let o = T::slice_mut(out).ok_or_else(|| internal("concat output"))?;
                layout::concat(&ins, &shape_refs, *axis, o);
            }, return Err(Error::unsupported(format!("CONCATENATION of {}", out_info.dtype), Location::default())));
        }
        Kernel::StridedSlice { shape, spec } => movement!(|x, o| layout::strided_slice(x, shape, spec, o)),
        Kernel::Quantize { scale, zero_point } => {
            let x = f32_in(bufs, x0)?;
            let (lo, hi) = int_range(out_info.dtype);
            let mut q = vec![0i32; x.len()];
            quant::quantize_f32(x, *scale, *zero_point, lo, hi, &mut q);
            match out {
                Buffer::I8(o) => o.iter_mut().zip(&q).for_each(|(o, &v)| *o = v as i8),
                Buffer::U8(o) => o.iter_mut().zip(&q).for_each(|(o, &v)| *o = v as u8),
                Buffer::I16(o) => o.iter_mut().zip(&q).for_each(|(o, &v)| *o = v as i16),
                _ => return Err(internal("quantize output type")),
            }
        }
        Kernel::Constant(value) => *out = value.clone(),
        Kernel::ConvI8 { s: shape, g, in_zp } => {
            conv_i8::conv2d(shape, *in_zp, i8_in(bufs, x0)?, g, out_i8!(), &mut s.int8);
        }
        Kernel::DepthwiseI8 { s: shape, d } => conv_i8::depthwise(shape, i8_in(bufs, x0)?, d, out_i8!(), &mut s.int8),
        Kernel::FcI8 { rows, g } => conv_i8::fully_connected(*rows, i8_in(bufs, x0)?, g, out_i8!(), &mut s.int8),
        Kernel::PoolI8 { s: shape, max_pool, min, max } => {
            let x = i8_in(bufs, x0)?;
            if *max_pool {
                pw_i8::max_pool(shape, x, *min, *max, out_i8!());
            } else {
                pw_i8::average_pool(shape, x, *min, *max, out_i8!());
            }
        }
        Kernel::BinaryI8 { table, a_shape, b_shape, out_shape } => {
            let (a, b) = (i8_in(bufs, x0)?, i8_in(bufs, step.inputs.get(1).copied().flatten())?);
            let table: &[i8; 1 << 16] = table.as_slice().try_into().map_err(|_| internal("binary table size"))?;
            elementwise::binary(a, a_shape, b, b_shape, out_shape, out_i8!(), |x, y| {
                table[(x as u8 as usize) << 8 | y as u8 as usize]
            });
        }
        Kernel::ReluI8(p) => map_i8(i8_in(bufs, x0)?, out_i8!(), |v| p.apply(v)),
        Kernel::LeakyReluI8(p) => map_i8(i8_in(bufs, x0)?, out_i8!(), |v| p.apply(v)),
        Kernel::HardSwishI8(p) => map_i8(i8_in(bufs, x0)?, out_i8!(), |v| p.apply(v)),
        Kernel::LutI8(t) => map_i8(i8_in(bufs, x0)?, out_i8!(), |v| t[(v as u8) as usize]),
        Kernel::SoftmaxI8 { p, depth } => p.run(i8_in(bufs, x0)?, *depth, out_i8!()),
        Kernel::MeanI8 { p, map } => p.run(i8_in(bufs, x0)?, map, out_i8!()),
        Kernel::ReduceMaxI8 { map } => pw_i8::reduce_max(i8_in(bufs, x0)?, map, out_i8!()),
        Kernel::Requantize { in_zp, m, out_zp } => {
            let x = x0.map(|t| &bufs[t]).ok_or_else(|| internal("quantize input"))?;
            let vals: Vec<i32> = match x {
                Buffer::I8(v) => v.iter().map(|&a| a as i32).collect(),
                Buffer::U8(v) => v.iter().map(|&a| a as i32).collect(),
                _ => return Err(internal("requantize input type")),
            };
            let (lo, hi) = int_range(out_info.dtype);
            let mut q = vec![0i32; vals.len()];
            pw_i8::requantize(&vals, *in_zp, *m, *out_zp, lo, hi, &mut q);
            match out {
                Buffer::I8(o) => o.iter_mut().zip(&q).for_each(|(o, &v)| *o = v as i8),
                Buffer::U8(o) => o.iter_mut().zip(&q).for_each(|(o, &v)| *o = v as u8),
                _ => return Err(internal("requantize output type")),
            }
        }
        Kernel::Dequantize { scale, zero_point, channels, inner } => {
            let x = x0.map(|t| &bufs[t]).ok_or_else(|| internal("dequantize input"))?;
            let vals: Vec<i32> = match x {
                Buffer::I8(v) => v.iter().map(|&a| a as i32).collect(),
                Buffer::U8(v) => v.iter().map(|&a| a as i32).collect(),
                Buffer::I16(v) => v.iter().map(|&a| a as i32).collect(),
                _ => return Err(internal("dequantize input type")),
            };
            let o = out_f32!();
            for (i, (o, v)) in o.iter_mut().zip(vals).enumerate() {
                let c = if *channels > 1 { (i / inner) % channels } else { 0 };
                *o = pw_i8::dequantize_one(v, scale[c], zero_point[c]);
            }
        }
    }
    Ok(())
}
