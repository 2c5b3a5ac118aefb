//! Element-wise activations. Int8 RELU, RELU6, LEAKY_RELU and HARD_SWISH use TFLite's integer
//! arithmetic; int8 LOGISTIC and TANH a 256-entry table (of the rounded float function for
//! LiteRT, of gemmlowp's fixed-point function for TFLite Micro).

use super::LowerCx;
use crate::error::Result;
use crate::exec::kernel::{out_f32, out_i8, Kernel, RunCx};
use crate::exec::plan::Target;
use crate::ir::DType;
use crate::kernels::elementwise;
use crate::kernels::int8::pointwise::{
    self as pw_i8, lut, HardSwishParams, LeakyReluParams, Relu6TflmParams, ReluParams, SigmoidTflmParams,
};
use crate::ops::UnaryKind;

pub(super) fn unary(kind: UnaryKind, cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let n = cx.node;
    let x = n.input(0, "input")?;
    if x.dtype != DType::I8 {
        return Ok(Box::new(UnaryF32(kind)));
    }
    let (si, zi) = n.act_qparams(x, "input")?;
    let (so, zo) = n.out_qparams()?;
    let tflm = cx.target == Target::Tflm;
    let k: Box<dyn Kernel> = match kind {
        UnaryKind::Relu => Box::new(ReluI8(ReluParams::new(si, zi, so, zo, 0.0, f32::INFINITY))),
        // TFLite Micro clamps RELU6 in the input's scale (the quantizer gives in and out one scale).
        UnaryKind::Relu6 if tflm => {
            let p = Relu6TflmParams::new(si, zi);
            Box::new(LutI8(Box::new(std::array::from_fn(|i| p.apply(i as u8 as i8)))))
        }
        UnaryKind::Relu6 => Box::new(ReluI8(ReluParams::new(si, zi, so, zo, 0.0, 6.0))),
        UnaryKind::LeakyRelu(alpha) => Box::new(LeakyReluI8(LeakyReluParams::new(si, zi, so, zo, alpha))),
        UnaryKind::HardSwish => Box::new(HardSwishI8(
            HardSwishParams::new(si, zi, so, zo)
                .ok_or_else(|| n.unsupported("HARD_SWISH whose output scale is too small for its input"))?,
        )),
        UnaryKind::Logistic if tflm => Box::new(LutI8(Box::new(SigmoidTflmParams::logistic(si, zi).table()))),
        UnaryKind::Tanh if tflm => Box::new(LutI8(Box::new(SigmoidTflmParams::tanh(si, zi).table()))),
        UnaryKind::Logistic => Box::new(LutI8(Box::new(lut(si, zi, so, zo, pw_i8::logistic)))),
        UnaryKind::Tanh => Box::new(LutI8(Box::new(lut(si, zi, so, zo, f32::tanh)))),
    };
    Ok(k)
}

fn map_i8(cx: &mut RunCx, f: impl Fn(i8) -> i8) -> Result<()> {
    let x = cx.i8_in(0)?;
    for (o, &v) in out_i8(cx.out)?.iter_mut().zip(x) {
        *o = f(v);
    }
    Ok(())
}

struct UnaryF32(UnaryKind);

impl Kernel for UnaryF32 {
    fn name(&self) -> &'static str {
        match self.0 {
            UnaryKind::Logistic => "logistic-f32",
            UnaryKind::Tanh => "tanh-f32",
            UnaryKind::Relu => "relu-f32",
            UnaryKind::Relu6 => "relu6-f32",
            UnaryKind::LeakyRelu(_) => "leaky-relu-f32",
            UnaryKind::HardSwish => "hard-swish-f32",
        }
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let x = cx.f32_in(0)?;
        let o = out_f32(cx.out)?;
        let mut apply = |f: &dyn Fn(f32) -> f32| o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
        match self.0 {
            UnaryKind::Logistic => apply(&elementwise::logistic),
            UnaryKind::Tanh => apply(&f32::tanh),
            UnaryKind::Relu => apply(&|v: f32| v.max(0.0)),
            UnaryKind::Relu6 => apply(&|v: f32| v.clamp(0.0, 6.0)),
            UnaryKind::LeakyRelu(a) => apply(&|v| elementwise::leaky_relu(v, a)),
            UnaryKind::HardSwish => apply(&elementwise::hard_swish),
        }
        Ok(())
    }
}

struct ReluI8(ReluParams);

impl Kernel for ReluI8 {
    fn name(&self) -> &'static str {
        "relu-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        map_i8(cx, |v| self.0.apply(v))
    }
}

struct LeakyReluI8(LeakyReluParams);

impl Kernel for LeakyReluI8 {
    fn name(&self) -> &'static str {
        "leaky-relu-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        map_i8(cx, |v| self.0.apply(v))
    }
}

struct HardSwishI8(HardSwishParams);

impl Kernel for HardSwishI8 {
    fn name(&self) -> &'static str {
        "hard-swish-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        map_i8(cx, |v| self.0.apply(v))
    }
}

/// LOGISTIC and TANH through a 256-entry table.
struct LutI8(Box<[i8; 256]>);

impl Kernel for LutI8 {
    fn name(&self) -> &'static str {
        "lut-i8"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        map_i8(cx, |v| self.0[(v as u8) as usize])
    }
}
