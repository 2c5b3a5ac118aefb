//! QUANTIZE (float → integer, and integer → integer requantization) and DEQUANTIZE.

use super::LowerCx;
use crate::error::Result;
use crate::exec::buffer::Buffer;
use crate::exec::int_range;
use crate::exec::kernel::{internal, out_f32, Kernel, RunCx};
use crate::ir::DType;
use crate::kernels::fixedpoint::{quantize_multiplier, Multiplier};
use crate::kernels::int8::pointwise as pw_i8;
use crate::kernels::quant;

pub(super) fn quantize(cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let out = cx.node.declared()?;
    let (so, zo) = out.quant.as_ref().map(|q| q.single()).ok_or_else(|| cx.node.err("no output parameters"))?;
    let range = int_range(out.dtype);
    if matches!(x.dtype, DType::I8 | DType::U8) {
        let (si, zi) = x.qparams().ok_or_else(|| cx.node.err("no input parameters"))?;
        let m = quantize_multiplier(si as f64 / so as f64);
        return Ok(Box::new(Requantize { in_zp: zi as i32, m, out_zp: zo as i32, range }));
    }
    Ok(Box::new(Quantize { scale: so, zero_point: zo as i32, range }))
}

/// Writes integer results into an integer output buffer of any width.
fn store(q: &[i32], out: &mut Buffer) -> Result<()> {
    match out {
        Buffer::I8(o) => o.iter_mut().zip(q).for_each(|(o, &v)| *o = v as i8),
        Buffer::U8(o) => o.iter_mut().zip(q).for_each(|(o, &v)| *o = v as u8),
        Buffer::I16(o) => o.iter_mut().zip(q).for_each(|(o, &v)| *o = v as i16),
        _ => return Err(internal("quantize output type")),
    }
    Ok(())
}

/// Integer values of any width, widened.
fn widen(x: &Buffer) -> Result<Vec<i32>> {
    Ok(match x {
        Buffer::I8(v) => v.iter().map(|&a| a as i32).collect(),
        Buffer::U8(v) => v.iter().map(|&a| a as i32).collect(),
        Buffer::I16(v) => v.iter().map(|&a| a as i32).collect(),
        _ => return Err(internal("integer input expected")),
    })
}

/// Float → integer with per-tensor parameters.
struct Quantize {
    scale: f32,
    zero_point: i32,
    range: (i32, i32),
}

impl Kernel for Quantize {
    fn name(&self) -> &'static str {
        "quantize"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let x = cx.f32_in(0)?;
        let mut q = vec![0i32; x.len()];
        quant::quantize_f32(x, self.scale, self.zero_point, self.range.0, self.range.1, &mut q);
        store(&q, cx.out)
    }
}

/// Integer → integer QUANTIZE.
struct Requantize {
    in_zp: i32,
    m: Multiplier,
    out_zp: i32,
    range: (i32, i32),
}

impl Kernel for Requantize {
    fn name(&self) -> &'static str {
        "requantize"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let vals = widen(cx.input(0)?)?;
        let mut q = vec![0i32; vals.len()];
        pw_i8::requantize(&vals, self.in_zp, self.m, self.out_zp, self.range.0, self.range.1, &mut q);
        store(&q, cx.out)
    }
}

pub(super) fn dequantize(cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    let x = cx.node.input(0, "input")?;
    let Some(q) = x.quant.as_ref().filter(|_| !x.dtype.is_float()) else {
        // float16 constants are widened when loaded, so their DEQUANTIZE is a copy.
        return Ok(Box::new(Dequantize { scale: vec![1.0], zero_point: vec![0], channels: 1, inner: 1 }));
    };
    let zero_point: Vec<i32> = (0..q.scale.len()).map(|i| q.zero_point_at(i) as i32).collect();
    let (channels, inner) = match q.channel_axis() {
        None => (1, 1),
        Some(a) => (x.shape[a], x.shape[a + 1..].iter().product()),
    };
    Ok(Box::new(Dequantize { scale: q.scale.clone(), zero_point, channels, inner }))
}

/// Integer → float; per-channel when `scale` has several entries (`inner` values per channel
/// step, `channels` channels).
struct Dequantize {
    scale: Vec<f32>,
    zero_point: Vec<i32>,
    channels: usize,
    inner: usize,
}

impl Kernel for Dequantize {
    fn name(&self) -> &'static str {
        "dequantize"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let x = cx.input(0)?;
        if let Buffer::F32(v) = x {
            out_f32(cx.out)?.copy_from_slice(v);
            return Ok(());
        }
        let vals = widen(x)?;
        let o = out_f32(cx.out)?;
        for (i, (o, v)) in o.iter_mut().zip(vals).enumerate() {
            let c = if self.channels > 1 { (i / self.inner) % self.channels } else { 0 };
            *o = pw_i8::dequantize_one(v, self.scale[c], self.zero_point[c]);
        }
        Ok(())
    }
}

pub(super) fn fake_quant(_cx: &LowerCx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(FakeQuant))
}

/// Float → int8 → float with the range of operands 1 and 2 (read at run time, so training can
/// update the range without lowering again).
struct FakeQuant;

impl Kernel for FakeQuant {
    fn name(&self) -> &'static str {
        "fake-quant"
    }

    fn run(&self, cx: &mut RunCx) -> Result<()> {
        let (x, lo, hi) = (cx.f32_in(0)?, cx.f32_in(1)?, cx.f32_in(2)?);
        let (scale, zp) = quant::int8_params(lo[0], hi[0]);
        quant::fake_quantize(x, scale, zp as i32, out_f32(cx.out)?);
        Ok(())
    }
}
