//! CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: float, hybrid and int8 kernels. Packing turns
//! the weights into each kernel's layout; the int8 requantization is computed once, here.

use super::LowerCx;
use crate::error::Result;
use crate::exec::buffer::Buffer;
use crate::exec::kernel::{const_f32, const_i32, const_i8, opt_f32, out_f32, out_i8, Kernel, Packed, RunCx};
use crate::ir::{Activation, Conv2D, DType, DepthwiseConv2D, FullyConnected};
use crate::kernels::conv::{self, ConvShape, QuantizedInput};
use crate::kernels::fc::{self, PackedFc};
use crate::kernels::fixedpoint::{quantize_multiplier, OutputStage, Rescale};
use crate::kernels::gemm_f32::{Epilogue, PackedF32};
use crate::kernels::int8::conv::{self as conv_i8, Dense, PreparedConv, PreparedDense};
use crate::kernels::int8::depthwise::{self as depthwise_i8, PreparedDepthwise};
use crate::kernels::quant;
use crate::ops::{conv_shape, dense_rows, Fact};

use crate::exec::plan::Target;

/// Which layer an int8 requantization is for (FULLY_CONNECTED's differs between TFLite builds).
#[derive(Clone, Copy, PartialEq)]
enum Layer {
    Conv,
    Dense,
}

/// Requantization of an int8 convolution-like layer, as TFLite prepares it.
///
/// CONV_2D and DEPTHWISE_CONV_2D use a fixed-point multiplier per channel from the double product
/// `in_scale · w_scale / out_scale`. FULLY_CONNECTED differs between TFLite's builds: LiteRT's
/// reference kernel rescales the accumulator in double precision and rounds (`Rescale::Double`),
/// while its optimized kernels and TFLite Micro use a fixed-point multiplier (from the float product
/// of the two input scales when per-tensor). [`Target`] picks which one to reproduce.
fn output_stage(
    cx: &LowerCx,
    x: &Fact,
    w: &Fact,
    oc: usize,
    axis: usize,
    act: Activation,
    layer: Layer,
) -> Result<OutputStage> {
    let n = cx.node;
    let (s_in, _) = n.act_qparams(x, "input")?;
    let (s_out, zp_out) = n.out_qparams()?;
    let per_tensor = w.quant.as_ref().is_some_and(|q| q.channel_axis().is_none());
    let scales = n
        .weight_scales(w, oc, axis)?
        .iter()
        .map(|&ws| {
            let exact = s_in as f64 * ws as f64 / s_out as f64;
            match (layer, cx.target) {
                (Layer::Dense, Target::Litert) => Rescale::Double(exact),
                (Layer::Dense, Target::Tflm) if per_tensor => {
                    Rescale::Fixed(quantize_multiplier((s_in * ws) as f64 / s_out as f64))
                }
                _ => Rescale::Fixed(quantize_multiplier(exact)),
            }
        })
        .collect();
    let (min, max) = n.clamp_i8(act, s_out, zp_out)?;
    Ok(OutputStage::new(scales, zp_out, min, max))
}

/// Hybrid activations quantized per row (`rows` rows), as LiteRT's hybrid kernels do.
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

/// Float weights packed for their kernel (the GEMM's panels for CONV_2D, [`PackedFc`] for
/// FULLY_CONNECTED), and the bias.
struct FloatGemm<W> {
    w: W,
    bias: Option<Vec<f32>>,
}

/// Int8 weights as stored (hybrid kernels read them directly), and the float bias.
struct HybridWeights {
    w: Vec<i8>,
    bias: Option<Vec<f32>>,
}

fn hybrid_weights(operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
    let w = const_i8(operands, 1, "weights")?.to_vec();
    Ok(Some(Box::new(HybridWeights { w, bias: opt_f32(operands, 2)? })))
}

fn clamp(cx: &LowerCx, act: Activation) -> Result<(f32, f32)> {
    cx.node.clamp(act)
}

fn shape_of<'a>(cx: &LowerCx<'a>) -> Result<(ConvShape, &'a Fact, &'a Fact)> {
    let (x, w) = (cx.node.input(0, "input")?, cx.node.input(1, "weights")?);
    let s = conv_shape(&cx.node.node.op, &x.shape, &w.shape).ok_or_else(|| cx.node.err("window does not fit"))?;
    Ok((s, x, w))
}

pub(super) fn conv2d(c: &Conv2D, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let (s, x, w) = shape_of(cx)?;
    let k = s.patch_len();
    Ok(match (x.dtype, w.dtype) {
        (DType::I8, _) => {
            let stage = output_stage(cx, x, w, s.out_c, 0, c.activation, Layer::Conv)?;
            let (_, in_zp) = cx.node.act_qparams(x, "input")?;
            Box::new(ConvI8 { s, stage, in_zp })
        }
        (_, DType::I8) => {
            let w_scale = cx.node.weight_scales(w, s.out_c, 0)?;
            // LiteRT quantizes inputs asymmetrically only when the channel scales differ.
            let asymmetric = w_scale.iter().any(|&v| v != w_scale[0]);
            let (min, max) = clamp(cx, c.activation)?;
            Box::new(ConvHybrid { s, w_scale, min, max, asymmetric })
        }
        _ => {
            let (min, max) = clamp(cx, c.activation)?;
            Box::new(ConvF32 { s, k, min, max })
        }
    })
}

struct ConvF32 {
    s: ConvShape,
    k: usize,
    min: f32,
    max: f32,
}

impl Kernel for ConvF32 {
    fn name(&self) -> &'static str {
        "conv2d-f32"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let w = PackedF32::pack(const_f32(operands, 1, "weights")?, self.s.out_c, self.k);
        Ok(Some(Box::new(FloatGemm { w, bias: opt_f32(operands, 2)? })))
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<FloatGemm<PackedF32>>()?);
        let ep = Epilogue { bias: p.bias.as_deref(), min: self.min, max: self.max };
        conv::conv2d_f32(&self.s, x, &p.w, ep, out_f32(cx.out)?, &mut cx.scratch.pad_f32);
        Ok(())
    }
}

struct ConvHybrid {
    s: ConvShape,
    w_scale: Vec<f32>,
    min: f32,
    max: f32,
    asymmetric: bool,
}

impl Kernel for ConvHybrid {
    fn name(&self) -> &'static str {
        "conv2d-hybrid"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        hybrid_weights(operands)
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<HybridWeights>()?);
        let params = quantize_rows(x, self.s.batch, self.asymmetric, &mut cx.scratch.i8);
        let ep = Epilogue { bias: p.bias.as_deref(), min: self.min, max: self.max };
        let q = QuantizedInput { values: &cx.scratch.i8, params: &params };
        conv::conv2d_hybrid(&self.s, q, &p.w, &self.w_scale, self.asymmetric, ep, out_f32(cx.out)?);
        Ok(())
    }
}

struct ConvI8 {
    s: ConvShape,
    stage: OutputStage,
    in_zp: i32,
}

impl Kernel for ConvI8 {
    fn name(&self) -> &'static str {
        "conv2d-i8"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let w = const_i8(operands, 1, "weights")?;
        let bias = const_i32(operands, 2)?;
        Ok(Some(Box::new(PreparedConv::new(w, &self.s, bias, -self.in_zp, self.stage.clone()))))
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, g) = (cx.i8_in(0)?, cx.packed::<PreparedConv>()?);
        conv_i8::conv2d(&self.s, self.in_zp as i8, x, g, out_i8(cx.out)?, &mut cx.scratch.int8);
        Ok(())
    }
}

pub(super) fn depthwise(c: &DepthwiseConv2D, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let (s, x, w) = shape_of(cx)?;
    Ok(match (x.dtype, w.dtype) {
        (DType::I8, _) => {
            let stage = output_stage(cx, x, w, s.out_c, 3, c.activation, Layer::Conv)?;
            let (_, in_zp) = cx.node.act_qparams(x, "input")?;
            Box::new(DepthwiseI8 { s, stage, in_zp })
        }
        (_, DType::I8) => {
            let w_scale = cx.node.weight_scales(w, s.out_c, 3)?;
            let (min, max) = clamp(cx, c.activation)?;
            Box::new(DepthwiseHybrid { s, w_scale, min, max })
        }
        _ => {
            let (min, max) = clamp(cx, c.activation)?;
            Box::new(DepthwiseF32 { s, min, max })
        }
    })
}

struct DepthwiseF32 {
    s: ConvShape,
    min: f32,
    max: f32,
}

/// Float depthwise weights as stored, and the bias.
struct FloatWeights {
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Kernel for DepthwiseF32 {
    fn name(&self) -> &'static str {
        "depthwise-f32"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let w = const_f32(operands, 1, "weights")?.to_vec();
        Ok(Some(Box::new(FloatWeights { w, bias: opt_f32(operands, 2)? })))
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<FloatWeights>()?);
        let ep = Epilogue { bias: p.bias.as_deref(), min: self.min, max: self.max };
        conv::depthwise_f32(&self.s, x, &p.w, ep, out_f32(cx.out)?, &mut cx.scratch.pad_f32);
        Ok(())
    }
}

struct DepthwiseHybrid {
    s: ConvShape,
    w_scale: Vec<f32>,
    min: f32,
    max: f32,
}

impl Kernel for DepthwiseHybrid {
    fn name(&self) -> &'static str {
        "depthwise-hybrid"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        hybrid_weights(operands)
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<HybridWeights>()?);
        let params = quantize_rows(x, self.s.batch, true, &mut cx.scratch.i8);
        let ep = Epilogue { bias: p.bias.as_deref(), min: self.min, max: self.max };
        let q = QuantizedInput { values: &cx.scratch.i8, params: &params };
        conv::depthwise_hybrid(&self.s, q, &p.w, &self.w_scale, ep, out_f32(cx.out)?);
        Ok(())
    }
}

struct DepthwiseI8 {
    s: ConvShape,
    stage: OutputStage,
    in_zp: i32,
}

impl Kernel for DepthwiseI8 {
    fn name(&self) -> &'static str {
        "depthwise-i8"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let w = const_i8(operands, 1, "weights")?;
        let bias = const_i32(operands, 2)?;
        Ok(Some(Box::new(PreparedDepthwise::for_shape(w, &self.s, bias, -self.in_zp, self.stage.clone()))))
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, d) = (cx.i8_in(0)?, cx.packed::<PreparedDepthwise>()?);
        depthwise_i8::depthwise(&self.s, x, d, out_i8(cx.out)?, &mut cx.scratch.depthwise);
        Ok(())
    }
}

pub(super) fn fully_connected(f: &FullyConnected, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let (x, w) = (cx.node.input(0, "input")?, cx.node.input(1, "weights")?);
    let (units, k) = (w.shape[0], w.shape[1]);
    let rows = dense_rows(x.len(), k).ok_or_else(|| cx.node.err("input is not a whole number of rows"))?;
    Ok(match (x.dtype, w.dtype) {
        (DType::I8, _) => {
            let stage = output_stage(cx, x, w, units, 0, f.activation, Layer::Dense)?;
            let (_, in_zp) = cx.node.act_qparams(x, "input")?;
            Box::new(DenseI8 { rows, units, k, stage, in_zp })
        }
        (_, DType::I8) => {
            let w_scale = cx.node.weight_scales(w, units, 0)?;
            let (min, max) = clamp(cx, f.activation)?;
            Box::new(DenseHybrid { rows, k, w_scale, min, max, asymmetric: f.asymmetric_quantize_inputs })
        }
        _ => {
            let (min, max) = clamp(cx, f.activation)?;
            Box::new(DenseF32 { rows, units, k, min, max })
        }
    })
}

struct DenseF32 {
    rows: usize,
    units: usize,
    k: usize,
    min: f32,
    max: f32,
}

impl Kernel for DenseF32 {
    fn name(&self) -> &'static str {
        "fully-connected-f32"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let w = PackedFc::pack(const_f32(operands, 1, "weights")?, self.units, self.k, self.rows);
        Ok(Some(Box::new(FloatGemm { w, bias: opt_f32(operands, 2)? })))
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<FloatGemm<PackedFc>>()?);
        let ep = Epilogue { bias: p.bias.as_deref(), min: self.min, max: self.max };
        fc::fc_f32(self.rows, x, &p.w, ep, out_f32(cx.out)?);
        Ok(())
    }
}

struct DenseHybrid {
    rows: usize,
    k: usize,
    w_scale: Vec<f32>,
    min: f32,
    max: f32,
    asymmetric: bool,
}

impl Kernel for DenseHybrid {
    fn name(&self) -> &'static str {
        "fully-connected-hybrid"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        hybrid_weights(operands)
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, p) = (cx.f32_in(0)?, cx.packed::<HybridWeights>()?);
        let params = quantize_rows(x, self.rows, self.asymmetric, &mut cx.scratch.i8);
        let ep = Epilogue { bias: p.bias.as_deref(), min: self.min, max: self.max };
        let q = QuantizedInput { values: &cx.scratch.i8, params: &params };
        fc::fc_hybrid(self.rows, self.k, q, &p.w, &self.w_scale, ep, out_f32(cx.out)?);
        Ok(())
    }
}

struct DenseI8 {
    rows: usize,
    units: usize,
    k: usize,
    stage: OutputStage,
    in_zp: i32,
}

impl Kernel for DenseI8 {
    fn name(&self) -> &'static str {
        "fully-connected-i8"
    }

    fn pack(&self, operands: &[Option<&Buffer>]) -> Result<Option<Packed>> {
        let w = const_i8(operands, 1, "weights")?;
        let bias = const_i32(operands, 2)?;
        let stage = self.stage.clone();
        let d = Dense { weights: w, n: self.units, k: self.k, bias, input_offset: -self.in_zp };
        Ok(Some(Box::new(PreparedDense::new(self.rows, d, stage))))
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, g) = (cx.i8_in(0)?, cx.packed::<PreparedDense>()?);
        conv_i8::fully_connected(self.rows, x, g, out_i8(cx.out)?, &mut cx.scratch.int8);
        Ok(())
    }
}
