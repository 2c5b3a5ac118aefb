//! QUANTIZE (float → integer, or integer → integer requantization) and DEQUANTIZE (integer or
//! float16 → float32).

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;
use crate::ir::DType;

pub struct Quantize;
pub struct Dequantize;
pub struct FakeQuant;

impl OpSpec for Quantize {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let out = cx.declared()?;
        if !matches!(out.dtype, DType::I8 | DType::U8 | DType::I16) {
            return Err(cx.unsupported(format!("QUANTIZE to {}", out.dtype)));
        }
        let q = out.quant.as_ref().ok_or_else(|| cx.err("QUANTIZE output has no quantization parameters"))?;
        let (scale, zp) = q.single();
        if !(scale.is_finite() && scale > 0.0) {
            return Err(cx.err("QUANTIZE output scale must be positive"));
        }
        i32::try_from(zp).map_err(|_| cx.err("zero point out of range"))?;
        match x.dtype {
            DType::I8 | DType::U8 => {
                let xq = x.quant.as_ref().ok_or_else(|| cx.err("QUANTIZE input has no quantization parameters"))?;
                if xq.single().0.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    return Err(cx.err("QUANTIZE scales must be positive"));
                }
                if out.dtype == DType::I16 {
                    return Err(cx.unsupported("QUANTIZE from 8-bit to int16"));
                }
            }
            _ => cx.float_only(x, "input")?,
        }
        Ok(vec![cx.output(out.dtype, x.shape.clone())?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Boundary
    }

    fn gradient(&self) -> Gradient {
        Gradient::Unsupported("QUANTIZE rounds to integers (quantization-aware training models it instead)")
    }
}

impl OpSpec for Dequantize {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        match x.dtype {
            DType::F16 | DType::F32 => {}
            DType::I8 | DType::U8 | DType::I16 => {
                x.quant.as_ref().ok_or_else(|| cx.err("DEQUANTIZE input has no quantization parameters"))?;
            }
            other => return Err(cx.unsupported(format!("DEQUANTIZE from {other}"))),
        }
        Ok(vec![cx.output_with(DType::F32, x.shape.clone(), None)?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Boundary
    }

    fn gradient(&self) -> Gradient {
        Gradient::Unsupported("DEQUANTIZE reads integers")
    }
}

impl OpSpec for FakeQuant {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        cx.float_only(x, "input")?;
        for (i, what) in [(1, "minimum"), (2, "maximum")] {
            let f = cx.input(i, what)?;
            if f.dtype != DType::F32 || f.len() != 1 {
                return Err(cx.err(format!("FAKE_QUANT {what} must be one float, is {} {:?}", f.dtype, f.shape)));
            }
        }
        Ok(vec![cx.output_with(DType::F32, x.shape.clone(), None)?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Float("is a training-only operator")
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}
