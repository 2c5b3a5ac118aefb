//! Preparation: for each node, infer and check its output shape and types, and build the kernel
//! with everything precomputed (packed weights, window geometry, index maps).

use crate::error::{Error, Location, Result};
use crate::ir::{Activation, DType, Graph, Node, Op, Padding, QuantParams};
use crate::kernels::conv::ConvShape;
use crate::kernels::elementwise::broadcast_shape;
use crate::kernels::fixedpoint::{activation_range, quantize_multiplier, Multiplier, Rescale};
use crate::kernels::gemm_f32::PackedF32;
use crate::kernels::geometry::{Window, Window2D};
use crate::kernels::int8::conv::{OutputStage, PreparedDepthwise, PreparedGemm};
use crate::kernels::int8::pointwise::{
    lut, AddParams, HardSwishParams, LeakyReluParams, MeanParams, MulParams, ReluParams, SoftmaxParams,
};
use crate::kernels::layout::{strided_slice_spec, SliceSpec};
use crate::kernels::reduce::{reduce_index_map, reduced_dims};

use super::buffer::Buffer;

/// What the engine knows about a tensor while preparing: type, shape, quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub quant: Option<QuantParams>,
}

impl TensorInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Logistic,
    Tanh,
    Relu,
    Relu6,
    LeakyRelu(f32),
    HardSwish,
}

/// A prepared operator.
#[derive(Clone, Debug)]
pub enum Kernel {
    ConvF32 {
        s: ConvShape,
        w: PackedF32,
        bias: Option<Vec<f32>>,
        min: f32,
        max: f32,
    },
    ConvHybrid {
        s: ConvShape,
        w: Vec<i8>,
        w_scale: Vec<f32>,
        bias: Option<Vec<f32>>,
        min: f32,
        max: f32,
        asymmetric: bool,
    },
    DepthwiseF32 {
        s: ConvShape,
        w: Vec<f32>,
        bias: Option<Vec<f32>>,
        min: f32,
        max: f32,
    },
    DepthwiseHybrid {
        s: ConvShape,
        w: Vec<i8>,
        w_scale: Vec<f32>,
        bias: Option<Vec<f32>>,
        min: f32,
        max: f32,
    },
    FcF32 {
        rows: usize,
        w: PackedF32,
        bias: Option<Vec<f32>>,
        min: f32,
        max: f32,
    },
    FcHybrid {
        rows: usize,
        k: usize,
        w: Vec<i8>,
        w_scale: Vec<f32>,
        bias: Option<Vec<f32>>,
        min: f32,
        max: f32,
        asymmetric: bool,
    },
    PoolF32 {
        s: ConvShape,
        max_pool: bool,
        min: f32,
        max: f32,
    },
    BinaryF32 {
        op: BinOp,
        a_shape: Vec<usize>,
        b_shape: Vec<usize>,
        out_shape: Vec<usize>,
        min: f32,
        max: f32,
    },
    UnaryF32(Unary),
    SoftmaxF32 {
        depth: usize,
        beta: f32,
    },
    ReduceF32 {
        map: Vec<usize>,
        mean: bool,
    },
    /// RESHAPE and SQUEEZE: the values are unchanged.
    Copy,
    Transpose {
        shape: Vec<usize>,
        perm: Vec<usize>,
    },
    Pad {
        shape: Vec<usize>,
        pads: Vec<(usize, usize)>,
    },
    Concat {
        axis: usize,
        shapes: Vec<Vec<usize>>,
    },
    StridedSlice {
        shape: Vec<usize>,
        spec: SliceSpec,
    },
    /// Float → integer with per-tensor parameters.
    Quantize {
        scale: f32,
        zero_point: i32,
    },
    /// A value known at preparation time (e.g. SHAPE of a static tensor).
    Constant(Buffer),
    ConvI8 {
        s: ConvShape,
        g: PreparedGemm,
        in_zp: i8,
    },
    DepthwiseI8 {
        s: ConvShape,
        d: PreparedDepthwise,
    },
    FcI8 {
        rows: usize,
        g: PreparedGemm,
    },
    PoolI8 {
        s: ConvShape,
        max_pool: bool,
        min: i32,
        max: i32,
    },
    /// Int8 ADD, SUB or MUL through a 256×256 table of TFLite's integer arithmetic, indexed by
    /// the two operands' bytes.
    BinaryI8 {
        table: Vec<i8>,
        a_shape: Vec<usize>,
        b_shape: Vec<usize>,
        out_shape: Vec<usize>,
    },
    ReluI8(ReluParams),
    LeakyReluI8(LeakyReluParams),
    HardSwishI8(HardSwishParams),
    /// LOGISTIC and TANH through a 256-entry table.
    LutI8(Box<[i8; 256]>),
    SoftmaxI8 {
        p: SoftmaxParams,
        depth: usize,
    },
    MeanI8 {
        p: MeanParams,
        map: Vec<usize>,
    },
    ReduceMaxI8 {
        map: Vec<usize>,
    },
    /// Integer → integer QUANTIZE.
    Requantize {
        in_zp: i32,
        m: Multiplier,
        out_zp: i32,
    },
    /// Integer → float; per-channel when `scale` has several entries (`inner` values per channel
    /// step, `channels` channels).
    Dequantize {
        scale: Vec<f32>,
        zero_point: Vec<i32>,
        channels: usize,
        inner: usize,
    },
}

/// A kernel ready to run, with its operands.
#[derive(Clone, Debug)]
pub struct Step {
    pub node: usize,
    pub inputs: Vec<Option<usize>>,
    pub output: usize,
    pub kernel: Kernel,
}

/// Which requantization int8 FULLY_CONNECTED reproduces (the builds of TFLite differ by up to one
/// unit in the last place on some outputs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FcArithmetic {
    /// LiteRT's reference kernels (`OpResolverType.BUILTIN_REF`): double-precision rescaling.
    #[default]
    LiteRtReference,
    /// TFLite Micro and LiteRT's optimized kernels: fixed-point multiplier.
    FixedPoint,
}

/// Read access to what preparation needs: tensor infos computed so far and constant values.
pub struct Ctx<'a> {
    pub graph: &'a Graph,
    pub info: &'a [Option<TensorInfo>],
    pub consts: &'a [Option<Buffer>],
    pub node: usize,
    pub fc: FcArithmetic,
}

impl Ctx<'_> {
    fn loc(&self) -> Location {
        self.graph.node_loc(self.node)
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::graph(msg, self.loc())
    }

    fn unsupported(&self, msg: impl Into<String>) -> Error {
        Error::unsupported(msg, self.loc())
    }

    fn operand(&self, n: &Node, i: usize, what: &str) -> Result<&TensorInfo> {
        let t = n.input(i).ok_or_else(|| self.err(format!("missing {what} operand (input {i})")))?;
        self.info[t].as_ref().ok_or_else(|| self.err(format!("{what} operand has no known shape")))
    }

    fn constant(&self, n: &Node, i: usize, what: &str) -> Result<&Buffer> {
        let t = n.input(i).ok_or_else(|| self.err(format!("missing {what} operand (input {i})")))?;
        self.consts[t].as_ref().ok_or_else(|| self.unsupported(format!("{what} (input {i}) must be a constant")))
    }

    fn const_i64(&self, n: &Node, i: usize, what: &str) -> Result<Vec<i64>> {
        self.constant(n, i, what)?.to_i64().ok_or_else(|| self.err(format!("{what} must hold integers")))
    }

    fn const_f32(&self, n: &Node, i: usize, what: &str) -> Result<Vec<f32>> {
        match self.constant(n, i, what)? {
            Buffer::F32(v) => Ok(v.clone()),
            _ => Err(self.err(format!("{what} must be float32"))),
        }
    }

    /// Optional float bias of `n` outputs (operand 2).
    fn bias(&self, n: &Node, outputs: usize) -> Result<Option<Vec<f32>>> {
        if n.input(2).is_none() {
            return Ok(None);
        }
        let b = self.const_f32(n, 2, "bias")?;
        if b.len() != outputs {
            return Err(self.err(format!("bias has {} values for {outputs} output channels", b.len())));
        }
        Ok(Some(b))
    }
}

/// Whether two tensors share per-tensor scale and zero point (what TFLite requires of operators
/// that move int8 values without rescaling).
fn same_qparams(a: &Option<QuantParams>, b: &Option<QuantParams>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.single() == b.single() && a.channel_axis().is_none() && b.channel_axis().is_none(),
        _ => false,
    }
}

/// The int8 weights of a quantized layer (operand 1).
fn int8_weights(ctx: &Ctx, n: &Node, w: &TensorInfo) -> Result<Vec<i8>> {
    if w.dtype != DType::I8 {
        return Err(ctx.unsupported(format!("int8 layer with {} weights", w.dtype)));
    }
    ctx.constant(n, 1, "weights")?.as_i8().map(<[i8]>::to_vec).ok_or_else(|| ctx.err("weights are not int8 data"))
}

/// Per-tensor scale and zero point of a quantized operand.
fn qparams(ctx: &Ctx, t: &TensorInfo, what: &str) -> Result<(f32, i32)> {
    let q = t.quant.as_ref().ok_or_else(|| ctx.err(format!("int8 {what} has no quantization parameters")))?;
    if q.channel_axis().is_some() {
        return Err(ctx.unsupported(format!("per-channel quantization of the {what} activation")));
    }
    let (scale, zp) = q.single();
    if scale.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !scale.is_finite() {
        return Err(ctx.err(format!("int8 {what} has scale {scale}; it must be positive")));
    }
    let zp = i32::try_from(zp)
        .ok()
        .filter(|z| (-128..=127).contains(z))
        .ok_or_else(|| ctx.err(format!("int8 {what} has zero point {zp}, outside [-128, 127]")))?;
    Ok((scale, zp))
}

/// The declared output's parameters, for an int8 operator.
fn out_qparams(ctx: &Ctx, n: &Node) -> Result<(f32, i32, TensorInfo)> {
    let o = n.output().ok_or_else(|| ctx.err("missing output"))?;
    let t = &ctx.graph.tensors[o];
    let info = TensorInfo { dtype: t.dtype, shape: t.shape.clone(), quant: t.quant.clone() };
    let (s, z) = qparams(ctx, &info, "output")?;
    Ok((s, z, info))
}

/// Quantized clamp bounds of a fused activation on an int8 output.
fn clamp_i8(ctx: &Ctx, act: Activation, scale: f32, zp: i32) -> Result<(i32, i32)> {
    activation_range(act, scale, zp, -128, 127)
        .ok_or_else(|| ctx.unsupported(format!("fused activation {act:?} on int8")))
}

/// Int32 bias of a quantized convolution-like operator (operand 2), if present.
fn bias_i32(ctx: &Ctx, n: &Node, outputs: usize) -> Result<Option<Vec<i32>>> {
    if n.input(2).is_none() {
        return Ok(None);
    }
    let b = match ctx.constant(n, 2, "bias")? {
        Buffer::I32(v) => v.clone(),
        _ => return Err(ctx.unsupported("int8 layer whose bias is not int32")),
    };
    if b.len() != outputs {
        return Err(ctx.err(format!("bias has {} values for {outputs} output channels", b.len())));
    }
    Ok(Some(b))
}

/// `f` over every pair of int8 operands, indexed `(x as u8) · 256 + (y as u8)`.
fn binary_table(f: impl Fn(i8, i8) -> i8) -> Vec<i8> {
    (0..=u16::MAX).map(|i| f((i >> 8) as u8 as i8, i as u8 as i8)).collect()
}

/// Requantization of an int8 convolution-like layer, as TFLite prepares it.
///
/// CONV_2D and DEPTHWISE_CONV_2D use a fixed-point multiplier per channel from the double product
/// `in_scale · w_scale / out_scale`. FULLY_CONNECTED differs between TFLite's builds: LiteRT's
/// reference kernel rescales the accumulator in double precision and rounds (`Rescale::Double`),
/// while its optimized kernels and TFLite Micro use a fixed-point multiplier (from the float product
/// of the two input scales when per-tensor). [`FcArithmetic`] picks which one to reproduce.
#[allow(clippy::too_many_arguments)]
fn conv_stage(
    ctx: &Ctx,
    n: &Node,
    x: &TensorInfo,
    w: &TensorInfo,
    oc: usize,
    axis: usize,
    act: Activation,
    fc: bool,
) -> Result<OutputStage> {
    let (s_in, _) = qparams(ctx, x, "input")?;
    let (s_out, zp_out, _) = out_qparams(ctx, n)?;
    let q = w.quant.as_ref().ok_or_else(|| ctx.err("int8 weights without quantization parameters"))?;
    if q.zero_point.iter().any(|&z| z != 0) {
        return Err(ctx.unsupported("int8 weights with a non-zero zero point"));
    }
    let scales: Vec<f32> = match q.channel_axis() {
        None => vec![q.scale.first().copied().unwrap_or(0.0)],
        Some(a) if a == axis && q.scale.len() == oc => q.scale.clone(),
        Some(a) => {
            return Err(ctx
                .err(format!("weights quantized per channel along dimension {a}, expected {axis} with {oc} channels")))
        }
    };
    let per_tensor = scales.len() == 1;
    let scales = scales
        .iter()
        .map(|&ws| {
            let exact = s_in as f64 * ws as f64 / s_out as f64;
            match (fc, ctx.fc) {
                (true, FcArithmetic::LiteRtReference) => Rescale::Double(exact),
                (true, FcArithmetic::FixedPoint) if per_tensor => {
                    Rescale::Fixed(quantize_multiplier((s_in * ws) as f64 / s_out as f64))
                }
                _ => Rescale::Fixed(quantize_multiplier(exact)),
            }
        })
        .collect();
    let (min, max) = clamp_i8(ctx, act, s_out, zp_out)?;
    Ok(OutputStage::new(scales, zp_out, min, max))
}

/// Float clamp bounds of a fused activation.
fn clamp(ctx: &Ctx, act: Activation) -> Result<(f32, f32)> {
    act.clamp_range().ok_or_else(|| ctx.unsupported(format!("fused activation {act:?}")))
}

fn window(
    ctx: &Ctx,
    padding: Padding,
    input: &[usize],
    filter: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
) -> Result<Window2D> {
    let h = Window::new(padding, input[1], filter.0, stride.0, dilation.0);
    let w = Window::new(padding, input[2], filter.1, stride.1, dilation.1);
    match (h, w) {
        (Some(h), Some(w)) => Ok(Window2D { h, w }),
        _ => Err(ctx.err(format!(
            "a {}x{} window (stride {:?}, dilation {:?}, {padding:?} padding) does not fit a {}x{} input",
            filter.0, filter.1, stride, dilation, input[1], input[2]
        ))),
    }
}

fn rank4(ctx: &Ctx, t: &TensorInfo, what: &str) -> Result<()> {
    if t.shape.len() != 4 {
        return Err(ctx.err(format!("{what} must have rank 4 (NHWC), has shape {:?}", t.shape)));
    }
    Ok(())
}

/// Per-output-channel weight scales of quantized weights with `n` output channels along `axis`.
fn weight_scales(ctx: &Ctx, w: &TensorInfo, n: usize, axis: usize) -> Result<Vec<f32>> {
    let q = w.quant.as_ref().ok_or_else(|| ctx.err("int8 weights without quantization parameters"))?;
    if q.zero_point.iter().any(|&z| z != 0) {
        return Err(ctx.unsupported("int8 weights with a non-zero zero point"));
    }
    match q.channel_axis() {
        None => Ok(vec![q.scale[0]; n]),
        Some(a) if a == axis && q.scale.len() == n => Ok(q.scale.clone()),
        Some(a) => {
            Err(ctx
                .err(format!("weights quantized per channel along dimension {a}, expected {axis} with {n} channels")))
        }
    }
}

/// Builds the kernel of node `ctx.node` and returns it with the output's type and shape.
pub fn prepare(ctx: &Ctx) -> Result<(Kernel, TensorInfo)> {
    let g = ctx.graph;
    let n = &g.nodes[ctx.node];
    if n.outputs.len() != 1 && !matches!(n.op, Op::Opaque(_)) {
        return Err(ctx.err(format!("expected one output, found {}", n.outputs.len())));
    }
    let float_only = |t: &TensorInfo, what: &str| -> Result<()> {
        if t.dtype != DType::F32 {
            return Err(ctx.unsupported(format!(
                "{what} of type {}: integer execution of {} is not available in the float engine",
                t.dtype,
                n.op.name()
            )));
        }
        Ok(())
    };
    let out_quant = n.output().and_then(|o| g.tensors[o].quant.clone());
    let same = |t: &TensorInfo| TensorInfo { dtype: t.dtype, shape: t.shape.clone(), quant: out_quant.clone() };
    match &n.op {
        Op::Conv2D(c) => {
            let x = ctx.operand(n, 0, "input")?;
            let w = ctx.operand(n, 1, "weights")?;
            rank4(ctx, x, "input")?;
            rank4(ctx, w, "weights")?;
            let (oc, kh, kw, ic) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
            if ic != x.shape[3] {
                return Err(if ic > 0 && x.shape[3] % ic == 0 {
                    ctx.unsupported("grouped convolution")
                } else {
                    ctx.err(format!("weights expect {ic} input channels, input has {}", x.shape[3]))
                });
            }
            let win = window(ctx, c.padding, &x.shape, (kh, kw), c.stride, c.dilation)?;
            let s = ConvShape { batch: x.shape[0], in_c: ic, out_c: oc, win };
            let shape = vec![s.batch, s.out_h(), s.out_w(), oc];
            if x.dtype == DType::I8 {
                let stage = conv_stage(ctx, n, x, w, oc, 0, c.activation, false)?;
                let (_, in_zp) = qparams(ctx, x, "input")?;
                let wv = int8_weights(ctx, n, w)?;
                let g = PreparedGemm::new(&wv, oc, kh * kw * ic, bias_i32(ctx, n, oc)?.as_deref(), -in_zp, stage);
                return Ok((
                    Kernel::ConvI8 { s, g, in_zp: in_zp as i8 },
                    TensorInfo { dtype: DType::I8, shape, quant: out_quant },
                ));
            }
            float_only(x, "input")?;
            let (min, max) = clamp(ctx, c.activation)?;
            let bias = ctx.bias(n, oc)?;
            let kernel = match w.dtype {
                DType::F32 => {
                    let wv = ctx.const_f32(n, 1, "weights")?;
                    Kernel::ConvF32 { s, w: PackedF32::pack(&wv, oc, kh * kw * ic), bias, min, max }
                }
                DType::I8 => {
                    let wv = ctx.constant(n, 1, "weights")?.as_i8().map(<[i8]>::to_vec).unwrap_or_default();
                    let w_scale = weight_scales(ctx, w, oc, 0)?;
                    // LiteRT quantizes inputs asymmetrically only when the channel scales differ.
                    let asymmetric = w_scale.iter().any(|&s| s != w_scale[0]);
                    Kernel::ConvHybrid { s, w: wv, w_scale, bias, min, max, asymmetric }
                }
                other => return Err(ctx.unsupported(format!("CONV_2D weights of type {other}"))),
            };
            Ok((kernel, TensorInfo { dtype: DType::F32, shape, quant: out_quant }))
        }
        Op::DepthwiseConv2D(c) => {
            let x = ctx.operand(n, 0, "input")?;
            let w = ctx.operand(n, 1, "weights")?;
            rank4(ctx, x, "input")?;
            rank4(ctx, w, "weights")?;
            let (kh, kw, oc) = (w.shape[1], w.shape[2], w.shape[3]);
            let ic = x.shape[3];
            if w.shape[0] != 1 || ic == 0 || oc % ic != 0 {
                return Err(ctx.err(format!("depthwise weights {:?} do not fit {ic} input channels", w.shape)));
            }
            let win = window(ctx, c.padding, &x.shape, (kh, kw), c.stride, c.dilation)?;
            let s = ConvShape { batch: x.shape[0], in_c: ic, out_c: oc, win };
            if x.dtype == DType::I8 {
                let stage = conv_stage(ctx, n, x, w, oc, 3, c.activation, false)?;
                let (_, in_zp) = qparams(ctx, x, "input")?;
                let wv = int8_weights(ctx, n, w)?;
                let d = PreparedDepthwise::new(&wv, oc, bias_i32(ctx, n, oc)?.as_deref(), -in_zp, stage);
                let kernel = Kernel::DepthwiseI8 { s, d };
                let shape = vec![s.batch, s.out_h(), s.out_w(), oc];
                return Ok((kernel, TensorInfo { dtype: DType::I8, shape, quant: out_quant }));
            }
            float_only(x, "input")?;
            let (min, max) = clamp(ctx, c.activation)?;
            let bias = ctx.bias(n, oc)?;
            let kernel = match w.dtype {
                DType::F32 => Kernel::DepthwiseF32 { s, w: ctx.const_f32(n, 1, "weights")?, bias, min, max },
                DType::I8 => {
                    let wv = ctx.constant(n, 1, "weights")?.as_i8().map(<[i8]>::to_vec).unwrap_or_default();
                    let w_scale = weight_scales(ctx, w, oc, 3)?;
                    Kernel::DepthwiseHybrid { s, w: wv, w_scale, bias, min, max }
                }
                other => return Err(ctx.unsupported(format!("DEPTHWISE_CONV_2D weights of type {other}"))),
            };
            let shape = vec![s.batch, s.out_h(), s.out_w(), oc];
            Ok((kernel, TensorInfo { dtype: DType::F32, shape, quant: out_quant }))
        }
        Op::FullyConnected(f) => {
            let x = ctx.operand(n, 0, "input")?;
            let w = ctx.operand(n, 1, "weights")?;
            if w.shape.len() != 2 {
                return Err(ctx.err(format!("weights must be [outputs, inputs], have shape {:?}", w.shape)));
            }
            let (units, k) = (w.shape[0], w.shape[1]);
            let total = x.len();
            if k == 0 || total % k != 0 {
                return Err(ctx.err(format!("input of {total} values is not a whole number of rows of {k}")));
            }
            let rows = total / k;
            let shape = if f.keep_num_dims {
                let mut s = x.shape.clone();
                match s.last_mut() {
                    Some(last) if *last == k => *last = units,
                    _ => {
                        return Err(
                            ctx.err("keep_num_dims needs the input's last dimension to equal the weights' inputs")
                        )
                    }
                }
                s
            } else {
                vec![rows, units]
            };
            if x.dtype == DType::I8 {
                let stage = conv_stage(ctx, n, x, w, units, 0, f.activation, true)?;
                let (_, in_zp) = qparams(ctx, x, "input")?;
                let wv = int8_weights(ctx, n, w)?;
                let g = PreparedGemm::new(&wv, units, k, bias_i32(ctx, n, units)?.as_deref(), -in_zp, stage);
                return Ok((Kernel::FcI8 { rows, g }, TensorInfo { dtype: DType::I8, shape, quant: out_quant }));
            }
            float_only(x, "input")?;
            let (min, max) = clamp(ctx, f.activation)?;
            let bias = ctx.bias(n, units)?;
            let kernel = match w.dtype {
                DType::F32 => Kernel::FcF32 {
                    rows,
                    w: PackedF32::pack(&ctx.const_f32(n, 1, "weights")?, units, k),
                    bias,
                    min,
                    max,
                },
                DType::I8 => {
                    let wv = ctx.constant(n, 1, "weights")?.as_i8().map(<[i8]>::to_vec).unwrap_or_default();
                    let w_scale = weight_scales(ctx, w, units, 0)?;
                    Kernel::FcHybrid {
                        rows,
                        k,
                        w: wv,
                        w_scale,
                        bias,
                        min,
                        max,
                        asymmetric: f.asymmetric_quantize_inputs,
                    }
                }
                other => return Err(ctx.unsupported(format!("FULLY_CONNECTED weights of type {other}"))),
            };
            Ok((kernel, TensorInfo { dtype: DType::F32, shape, quant: out_quant }))
        }
        Op::AveragePool2D(p) | Op::MaxPool2D(p) => {
            let x = ctx.operand(n, 0, "input")?;
            rank4(ctx, x, "input")?;
            let win = window(ctx, p.padding, &x.shape, p.filter, p.stride, (1, 1))?;
            let s = ConvShape { batch: x.shape[0], in_c: x.shape[3], out_c: x.shape[3], win };
            let shape = vec![s.batch, s.out_h(), s.out_w(), s.in_c];
            let max_pool = matches!(n.op, Op::MaxPool2D(_));
            if x.dtype == DType::I8 {
                let (s_out, zp_out, _) = out_qparams(ctx, n)?;
                if !same_qparams(&x.quant, &out_quant) {
                    return Err(ctx.unsupported("int8 pooling whose output parameters differ from its input's"));
                }
                let (min, max) = clamp_i8(ctx, p.activation, s_out, zp_out)?;
                return Ok((
                    Kernel::PoolI8 { s, max_pool, min, max },
                    TensorInfo { dtype: DType::I8, shape, quant: out_quant },
                ));
            }
            float_only(x, "input")?;
            let (min, max) = clamp(ctx, p.activation)?;
            Ok((Kernel::PoolF32 { s, max_pool, min, max }, TensorInfo { dtype: DType::F32, shape, quant: out_quant }))
        }
        Op::Add { activation } | Op::Sub { activation } | Op::Mul { activation } => {
            let a = ctx.operand(n, 0, "first")?;
            let b = ctx.operand(n, 1, "second")?;
            let out_shape = broadcast_shape(&a.shape, &b.shape)
                .ok_or_else(|| ctx.err(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
            if a.dtype == DType::I8 && b.dtype == DType::I8 {
                let (s1, z1) = qparams(ctx, a, "first")?;
                let (s2, z2) = qparams(ctx, b, "second")?;
                let (so, zo, _) = out_qparams(ctx, n)?;
                let (min, max) = clamp_i8(ctx, *activation, so, zo)?;
                let (a_shape, b_shape) = (a.shape.clone(), b.shape.clone());
                let table = match n.op {
                    Op::Mul { .. } => binary_table(|x, y| MulParams::new(s1, z1, s2, z2, so, zo, min, max).apply(x, y)),
                    _ => {
                        let p = AddParams::new(s1, z1, s2, z2, so, zo, min, max, matches!(n.op, Op::Sub { .. }));
                        binary_table(|x, y| p.apply(x, y))
                    }
                };
                let kernel = Kernel::BinaryI8 { table, a_shape, b_shape, out_shape: out_shape.clone() };
                return Ok((kernel, TensorInfo { dtype: DType::I8, shape: out_shape, quant: out_quant }));
            }
            float_only(a, "first operand")?;
            float_only(b, "second operand")?;
            let (min, max) = clamp(ctx, *activation)?;
            let op = match n.op {
                Op::Add { .. } => BinOp::Add,
                Op::Sub { .. } => BinOp::Sub,
                _ => BinOp::Mul,
            };
            let kernel = Kernel::BinaryF32 {
                op,
                a_shape: a.shape.clone(),
                b_shape: b.shape.clone(),
                out_shape: out_shape.clone(),
                min,
                max,
            };
            Ok((kernel, TensorInfo { dtype: DType::F32, shape: out_shape, quant: out_quant }))
        }
        Op::Logistic | Op::Tanh | Op::Relu | Op::Relu6 | Op::LeakyRelu { .. } | Op::HardSwish => {
            let x = ctx.operand(n, 0, "input")?;
            if x.dtype == DType::I8 {
                let (si, zi) = qparams(ctx, x, "input")?;
                let (so, zo, _) = out_qparams(ctx, n)?;
                let kernel = match n.op {
                    Op::Relu => Kernel::ReluI8(ReluParams::new(si, zi, so, zo, 0.0, f32::INFINITY)),
                    Op::Relu6 => Kernel::ReluI8(ReluParams::new(si, zi, so, zo, 0.0, 6.0)),
                    Op::LeakyRelu { alpha } => Kernel::LeakyReluI8(LeakyReluParams::new(si, zi, so, zo, alpha)),
                    Op::HardSwish => {
                        Kernel::HardSwishI8(HardSwishParams::new(si, zi, so, zo).ok_or_else(|| {
                            ctx.unsupported("HARD_SWISH whose output scale is too small for its input")
                        })?)
                    }
                    Op::Logistic => {
                        Kernel::LutI8(Box::new(lut(si, zi, so, zo, crate::kernels::int8::pointwise::logistic)))
                    }
                    _ => Kernel::LutI8(Box::new(lut(si, zi, so, zo, f32::tanh))),
                };
                return Ok((kernel, same(x)));
            }
            float_only(x, "input")?;
            let u = match n.op {
                Op::Logistic => Unary::Logistic,
                Op::Tanh => Unary::Tanh,
                Op::Relu => Unary::Relu,
                Op::Relu6 => Unary::Relu6,
                Op::LeakyRelu { alpha } => Unary::LeakyRelu(alpha),
                _ => Unary::HardSwish,
            };
            Ok((Kernel::UnaryF32(u), same(x)))
        }
        Op::Softmax { beta } => {
            let x = ctx.operand(n, 0, "input")?;
            let depth = *x.shape.last().ok_or_else(|| ctx.err("SOFTMAX of a scalar"))?;
            if x.dtype == DType::I8 {
                let (si, _) = qparams(ctx, x, "input")?;
                let (so, zo, _) = out_qparams(ctx, n)?;
                if zo != -128 || (so - 1.0 / 256.0).abs() > 0.001 / 256.0 {
                    return Err(ctx.err(format!(
                        "int8 SOFTMAX output must have scale 1/256 and zero point -128, has {so} and {zo}"
                    )));
                }
                return Ok((Kernel::SoftmaxI8 { p: SoftmaxParams::new(*beta, si), depth }, same(x)));
            }
            float_only(x, "input")?;
            Ok((Kernel::SoftmaxF32 { depth, beta: *beta }, same(x)))
        }
        Op::Mean { keep_dims } | Op::ReduceMax { keep_dims } => {
            let x = ctx.operand(n, 0, "input")?;
            if x.dtype != DType::I8 {
                float_only(x, "input")?;
            }
            let axes = ctx.const_i64(n, 1, "axes")?;
            let reduced = reduced_dims(&axes, x.shape.len())
                .ok_or_else(|| ctx.err(format!("axes {axes:?} out of range for shape {:?}", x.shape)))?;
            let shape: Vec<usize> = x
                .shape
                .iter()
                .zip(&reduced)
                .filter_map(|(&d, &r)| match (r, keep_dims) {
                    (true, true) => Some(1),
                    (true, false) => None,
                    (false, _) => Some(d),
                })
                .collect();
            let map = reduce_index_map(&x.shape, &reduced);
            let mean = matches!(n.op, Op::Mean { .. });
            if x.dtype == DType::I8 {
                let info = TensorInfo { dtype: DType::I8, shape, quant: out_quant.clone() };
                if !mean {
                    if !same_qparams(&x.quant, &out_quant) {
                        return Err(ctx.unsupported("int8 REDUCE_MAX whose output parameters differ from its input's"));
                    }
                    return Ok((Kernel::ReduceMaxI8 { map }, info));
                }
                let (si, zi) = qparams(ctx, x, "input")?;
                let (so, zo, _) = out_qparams(ctx, n)?;
                let count = x.len() / info.len().max(1);
                return Ok((Kernel::MeanI8 { p: MeanParams::new(si, zi, so, zo, count), map }, info));
            }
            Ok((Kernel::ReduceF32 { map, mean }, TensorInfo { dtype: DType::F32, shape, quant: out_quant }))
        }
        Op::Reshape { new_shape } => {
            let x = ctx.operand(n, 0, "input")?;
            let declared = n.output().map(|o| &g.tensors[o].shape);
            let spec: Vec<i64> = if n.input(1).is_some() && ctx.consts[n.input(1).unwrap_or(0)].is_some() {
                ctx.const_i64(n, 1, "shape")?
            } else if let Some(s) = new_shape {
                s.iter().map(|&d| d as i64).collect()
            } else if let Some(d) = declared {
                d.iter().map(|&d| d as i64).collect()
            } else {
                return Err(ctx.unsupported("RESHAPE with a shape computed at run time"));
            };
            let shape = resolve_reshape(&spec, x.len()).map_err(|m| ctx.err(m))?;
            Ok((Kernel::Copy, TensorInfo { dtype: x.dtype, shape, quant: out_quant.or(x.quant.clone()) }))
        }
        Op::Squeeze { dims } => {
            let x = ctx.operand(n, 0, "input")?;
            let rank = x.shape.len() as i32;
            let mut drop = vec![false; x.shape.len()];
            if dims.is_empty() {
                for (d, &s) in x.shape.iter().enumerate() {
                    drop[d] = s == 1;
                }
            } else {
                for &d in dims {
                    let a = if d < 0 { d + rank } else { d };
                    if a < 0 || a >= rank || x.shape[a as usize] != 1 {
                        return Err(ctx.err(format!("cannot squeeze dimension {d} of shape {:?}", x.shape)));
                    }
                    drop[a as usize] = true;
                }
            }
            let shape = x.shape.iter().zip(&drop).filter(|(_, &d)| !d).map(|(&s, _)| s).collect();
            Ok((Kernel::Copy, TensorInfo { dtype: x.dtype, shape, quant: out_quant.or(x.quant.clone()) }))
        }
        Op::Transpose => {
            let x = ctx.operand(n, 0, "input")?;
            let perm = ctx.const_i64(n, 1, "permutation")?;
            let rank = x.shape.len();
            let mut seen = vec![false; rank];
            let mut p = Vec::with_capacity(rank);
            for &v in &perm {
                let v = if v < 0 { v + rank as i64 } else { v };
                if v < 0 || v as usize >= rank || seen[v as usize] {
                    return Err(ctx.err(format!("{perm:?} is not a permutation of {rank} dimensions")));
                }
                seen[v as usize] = true;
                p.push(v as usize);
            }
            if p.len() != rank {
                return Err(ctx.err(format!("{perm:?} is not a permutation of {rank} dimensions")));
            }
            let shape = p.iter().map(|&d| x.shape[d]).collect();
            Ok((
                Kernel::Transpose { shape: x.shape.clone(), perm: p },
                TensorInfo { dtype: x.dtype, shape, quant: out_quant },
            ))
        }
        Op::Pad => {
            let x = ctx.operand(n, 0, "input")?;
            let p = ctx.const_i64(n, 1, "paddings")?;
            let rank = x.shape.len();
            if p.len() != rank * 2 || p.iter().any(|&v| !(0..=1 << 24).contains(&v)) {
                return Err(ctx.err(format!(
                    "paddings {p:?} do not fit a rank-{rank} input (need {rank}x2 non-negative values)"
                )));
            }
            let pads: Vec<(usize, usize)> = p.chunks(2).map(|c| (c[0] as usize, c[1] as usize)).collect();
            let shape = x.shape.iter().zip(&pads).map(|(s, (a, b))| s + a + b).collect();
            if x.dtype != DType::F32 && !same_qparams(&x.quant, &out_quant) {
                return Err(ctx.unsupported("PAD that changes quantization parameters"));
            }
            Ok((Kernel::Pad { shape: x.shape.clone(), pads }, TensorInfo { dtype: x.dtype, shape, quant: out_quant }))
        }
        Op::Concatenation { axis, activation } => {
            if *activation != Activation::None {
                return Err(ctx.unsupported("CONCATENATION with a fused activation"));
            }
            let ins: Vec<&TensorInfo> =
                (0..n.inputs.len()).map(|i| ctx.operand(n, i, "input")).collect::<Result<_>>()?;
            let first = ins.first().ok_or_else(|| ctx.err("CONCATENATION without inputs"))?;
            let rank = first.shape.len() as i32;
            let a = if *axis < 0 { axis + rank } else { *axis };
            if a < 0 || a >= rank {
                return Err(ctx.err(format!("axis {axis} out of range for rank {rank}")));
            }
            let a = a as usize;
            let mut shape = first.shape.clone();
            shape[a] = 0;
            for t in &ins {
                let ok = t.dtype == first.dtype
                    && t.shape.len() == first.shape.len()
                    && t.shape.iter().zip(&first.shape).enumerate().all(|(d, (x, y))| d == a || x == y);
                if !ok {
                    return Err(ctx.err(format!(
                        "input shapes {:?} and {:?} do not concatenate on axis {a}",
                        first.shape, t.shape
                    )));
                }
                if t.dtype != DType::F32 && !same_qparams(&t.quant, &out_quant) {
                    return Err(ctx.unsupported("CONCATENATION of inputs with different quantization"));
                }
                shape[a] += t.shape[a];
            }
            let shapes = ins.iter().map(|t| t.shape.clone()).collect();
            Ok((Kernel::Concat { axis: a, shapes }, TensorInfo { dtype: first.dtype, shape, quant: out_quant }))
        }
        Op::StridedSlice(o) => {
            let x = ctx.operand(n, 0, "input")?;
            let begin = ctx.const_i64(n, 1, "begin")?;
            let end = ctx.const_i64(n, 2, "end")?;
            let strides = ctx.const_i64(n, 3, "strides")?;
            let spec = strided_slice_spec(&x.shape, &begin, &end, &strides, o).map_err(|m| ctx.unsupported(m))?;
            let shape = spec.out_shape.clone();
            Ok((
                Kernel::StridedSlice { shape: x.shape.clone(), spec },
                TensorInfo { dtype: x.dtype, shape, quant: out_quant },
            ))
        }
        Op::Quantize => {
            let x = ctx.operand(n, 0, "input")?;
            let out = n.output().map(|o| &g.tensors[o]).ok_or_else(|| ctx.err("missing output"))?;
            if matches!(x.dtype, DType::I8 | DType::U8) && matches!(out.dtype, DType::I8 | DType::U8) {
                let xq = x.quant.as_ref().ok_or_else(|| ctx.err("QUANTIZE input has no quantization parameters"))?;
                let oq = out.quant.as_ref().ok_or_else(|| ctx.err("QUANTIZE output has no quantization parameters"))?;
                let ((si, zi), (so, zo)) = (xq.single(), oq.single());
                if !(si > 0.0 && so > 0.0) {
                    return Err(ctx.err("QUANTIZE scales must be positive"));
                }
                let m = quantize_multiplier(si as f64 / so as f64);
                let kernel = Kernel::Requantize { in_zp: zi as i32, m, out_zp: zo as i32 };
                return Ok((kernel, TensorInfo { dtype: out.dtype, shape: x.shape.clone(), quant: out_quant }));
            }
            float_only(x, "input")?;
            let q = out.quant.as_ref().ok_or_else(|| ctx.err("QUANTIZE output has no quantization parameters"))?;
            if !matches!(out.dtype, DType::I8 | DType::U8 | DType::I16) {
                return Err(ctx.unsupported(format!("QUANTIZE to {}", out.dtype)));
            }
            let (scale, zp) = q.single();
            if scale.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Err(ctx.err("QUANTIZE output scale must be positive"));
            }
            let zero_point = i32::try_from(zp).map_err(|_| ctx.err("zero point out of range"))?;
            Ok((
                Kernel::Quantize { scale, zero_point },
                TensorInfo { dtype: out.dtype, shape: x.shape.clone(), quant: out_quant },
            ))
        }
        Op::Dequantize => {
            let x = ctx.operand(n, 0, "input")?;
            let shape = x.shape.clone();
            let info = TensorInfo { dtype: DType::F32, shape: shape.clone(), quant: None };
            if x.dtype == DType::F32 {
                // f16 constants are widened when loaded, so their DEQUANTIZE is a copy.
                return Ok((Kernel::Copy, info));
            }
            if !matches!(x.dtype, DType::I8 | DType::U8 | DType::I16) {
                return Err(ctx.unsupported(format!("DEQUANTIZE from {}", x.dtype)));
            }
            let q = x.quant.as_ref().ok_or_else(|| ctx.err("DEQUANTIZE input has no quantization parameters"))?;
            let zero_point: Vec<i32> = (0..q.scale.len()).map(|i| q.zero_point_at(i) as i32).collect();
            let (channels, inner) = match q.channel_axis() {
                None => (1, 1),
                Some(a) => (shape[a], shape[a + 1..].iter().product()),
            };
            Ok((Kernel::Dequantize { scale: q.scale.clone(), zero_point, channels, inner }, info))
        }
        Op::Shape { out_type } => {
            let x = ctx.operand(n, 0, "input")?;
            let dims = x.shape.iter().map(|&d| d as i64);
            let buf = match out_type {
                DType::I64 => Buffer::I64(dims.collect()),
                _ => Buffer::I32(dims.map(|d| d as i32).collect()),
            };
            Ok((Kernel::Constant(buf), TensorInfo { dtype: *out_type, shape: vec![x.shape.len()], quant: None }))
        }
        Op::Pack { axis } => {
            let ins: Vec<&TensorInfo> =
                (0..n.inputs.len()).map(|i| ctx.operand(n, i, "input")).collect::<Result<_>>()?;
            let first = ins.first().ok_or_else(|| ctx.err("PACK without inputs"))?;
            let rank = first.shape.len() as i32 + 1;
            let a = if *axis < 0 { axis + rank } else { *axis };
            if a < 0 || a >= rank {
                return Err(ctx.err(format!("axis {axis} out of range for rank {rank}")));
            }
            if ins.iter().any(|t| t.shape != first.shape || t.dtype != first.dtype) {
                return Err(ctx.err("PACK inputs must have the same shape and type"));
            }
            if first.dtype != DType::F32
                && out_quant.is_some()
                && ins.iter().any(|t| !same_qparams(&t.quant, &out_quant))
            {
                return Err(ctx.unsupported("PACK of inputs with different quantization"));
            }
            let mut one = first.shape.clone();
            one.insert(a as usize, 1);
            let mut shape = first.shape.clone();
            shape.insert(a as usize, ins.len());
            let kernel = Kernel::Concat { axis: a as usize, shapes: vec![one; ins.len()] };
            Ok((kernel, TensorInfo { dtype: first.dtype, shape, quant: out_quant }))
        }
        Op::Opaque(o) => Err(ctx.unsupported(format!("operator {} cannot be executed yet", o.name))),
    }
}

/// Resolves a RESHAPE target (with at most one -1) against the element count.
pub fn resolve_reshape(spec: &[i64], elements: usize) -> std::result::Result<Vec<usize>, String> {
    let mut unknown = None;
    let mut known: usize = 1;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if unknown.is_none() => unknown = Some(i),
            d if d >= 0 => known = known.checked_mul(d as usize).ok_or("reshape target too large")?,
            _ => return Err(format!("invalid reshape target {spec:?}")),
        }
    }
    let mut shape: Vec<usize> = spec.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || !elements.is_multiple_of(known) {
            return Err(format!("cannot reshape {elements} values to {spec:?}"));
        }
        shape[i] = elements / known;
    } else if known != elements {
        return Err(format!("cannot reshape {elements} values to {spec:?}"));
    }
    Ok(shape)
}
