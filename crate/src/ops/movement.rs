//! Operators that move values without computing on them: RESHAPE, SQUEEZE, TRANSPOSE, PAD and
//! STRIDED_SLICE. Their int8 outputs share the input's parameters. On integer shape values known
//! during inference, RESHAPE, SQUEEZE and STRIDED_SLICE fold.

use super::cx::{same_qparams, NodeCx};
use super::{Fact, Gradient, Int8Rule, OpSpec};
use crate::error::Result;
use crate::ir::{DType, StridedSlice, TensorData};
use crate::kernels::layout::{strided_slice, strided_slice_spec, SliceSpec};

pub struct Reshape<'a>(pub Option<&'a [i32]>);
pub struct Squeeze<'a>(pub &'a [i32]);
pub struct Transpose;
pub struct Pad;
pub struct Slice<'a>(pub &'a StridedSlice);

/// Integer values as a tensor of `dtype` (i32 or i64) and `shape`.
pub(super) fn int_data(dtype: DType, shape: &[usize], values: Vec<i64>) -> Option<TensorData> {
    match dtype {
        DType::I64 => ndarray::ArrayD::from_shape_vec(shape, values).ok().map(TensorData::I64),
        DType::I32 => TensorData::from_i32(shape, values.into_iter().map(|v| v as i32).collect()),
        _ => None,
    }
}

/// The known value of operand 0 with a new shape (RESHAPE and SQUEEZE of shape values).
fn fold_copy(cx: &NodeCx, out: &Fact) -> Option<TensorData> {
    int_data(out.dtype, &out.shape, cx.value(0)?.to_i64_vec()?)
}

/// Resolves a RESHAPE target (with at most one -1) against the element count.
pub fn resolve_reshape(spec: &[i64], elements: usize) -> std::result::Result<Vec<usize>, String> {
    let mut unknown = None;
    let mut known: usize = 1;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if unknown.is_none() => unknown = Some(i),
            d if d >= 0 => {
                let d = usize::try_from(d).map_err(|_| format!("invalid reshape target {spec:?}"))?;
                known = known.checked_mul(d).ok_or("reshape target too large")?;
            }
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

impl Reshape<'_> {
    /// The target shape: the shape operand, the attribute, or the declared output, in that order.
    /// With a batch override, a leading 1 in a constant target follows the input's batch.
    fn target(&self, cx: &NodeCx, x: &Fact) -> Result<Vec<i64>> {
        let mut spec: Vec<i64> = if cx.is_known(1) {
            cx.value_i64(1, "shape")?
        } else if let Some(s) = self.0 {
            s.iter().map(|&d| d as i64).collect()
        } else if !cx.declared()?.shape.is_empty() {
            cx.declared()?.shape.iter().map(|&d| d as i64).collect()
        } else {
            return Err(cx.unsupported("RESHAPE with a shape computed at run time"));
        };
        if let (Some(b), Some(first)) = (cx.batch, spec.first_mut()) {
            if *first == 1 && x.shape.first() == Some(&b) && !cx.is_known(0) {
                *first = b as i64;
            }
        }
        Ok(spec)
    }
}

impl OpSpec for Reshape<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let spec = self.target(cx, x)?;
        let shape = resolve_reshape(&spec, x.len()).map_err(|m| cx.err(m))?;
        Ok(vec![cx.output_with(x.dtype, shape, cx.out_quant().or(x.quant.clone()))?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SameAsInput
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }

    fn fold(&self, cx: &NodeCx, out: &Fact) -> Result<Option<TensorData>> {
        Ok(fold_copy(cx, out))
    }
}

impl OpSpec for Squeeze<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let rank = x.shape.len() as i64;
        let mut drop = vec![false; x.shape.len()];
        if self.0.is_empty() {
            for (d, &s) in x.shape.iter().enumerate() {
                drop[d] = s == 1;
            }
        }
        for &d in self.0 {
            let a = if d < 0 { d as i64 + rank } else { d as i64 };
            if a < 0 || a >= rank || x.shape[a as usize] != 1 {
                return Err(cx.err(format!("cannot squeeze dimension {d} of shape {:?}", x.shape)));
            }
            drop[a as usize] = true;
        }
        let shape = x.shape.iter().zip(&drop).filter(|(_, &d)| !d).map(|(&s, _)| s).collect();
        Ok(vec![cx.output_with(x.dtype, shape, cx.out_quant().or(x.quant.clone()))?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SameAsInput
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }

    fn fold(&self, cx: &NodeCx, out: &Fact) -> Result<Option<TensorData>> {
        Ok(fold_copy(cx, out))
    }
}

/// The permutation operand of TRANSPOSE, checked against the input's rank.
pub fn permutation(cx: &NodeCx, rank: usize) -> Result<Vec<usize>> {
    let perm = cx.value_i64(1, "permutation")?;
    let bad = || cx.err(format!("{perm:?} is not a permutation of {rank} dimensions"));
    let mut seen = vec![false; rank];
    let mut p = Vec::with_capacity(rank);
    for &v in &perm {
        let v = if v < 0 { v + rank as i64 } else { v };
        if v < 0 || v as usize >= rank || seen[v as usize] {
            return Err(bad());
        }
        seen[v as usize] = true;
        p.push(v as usize);
    }
    if p.len() != rank {
        return Err(bad());
    }
    Ok(p)
}

impl OpSpec for Transpose {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let p = permutation(cx, x.shape.len())?;
        Ok(vec![cx.output(x.dtype, p.iter().map(|&d| x.shape[d]).collect())?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SameAsInput
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}

/// The amounts of PAD (operand 1) per dimension, before and after.
pub fn paddings(cx: &NodeCx, rank: usize) -> Result<Vec<(usize, usize)>> {
    let p = cx.value_i64(1, "paddings")?;
    if p.len() != rank * 2 || p.iter().any(|&v| !(0..=1 << 24).contains(&v)) {
        return Err(
            cx.err(format!("paddings {p:?} do not fit a rank-{rank} input (need {rank}x2 values in [0, 2^24])"))
        );
    }
    Ok(p.chunks(2).map(|c| (c[0] as usize, c[1] as usize)).collect())
}

impl OpSpec for Pad {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let pads = paddings(cx, x.shape.len())?;
        let shape = x.shape.iter().zip(&pads).map(|(s, (a, b))| s + a + b).collect();
        if x.dtype != DType::F32 && !same_qparams(&x.quant, &cx.out_quant()) {
            return Err(cx.unsupported("PAD that changes quantization parameters"));
        }
        Ok(vec![cx.output(x.dtype, shape)?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SameAsInput
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }
}

/// The resolved STRIDED_SLICE of an input of `shape`, from the begin, end and strides operands.
pub fn slice_spec(cx: &NodeCx, o: &StridedSlice, shape: &[usize]) -> Result<SliceSpec> {
    let begin = cx.value_i64(1, "begin")?;
    let end = cx.value_i64(2, "end")?;
    let strides = cx.value_i64(3, "strides")?;
    strided_slice_spec(shape, &begin, &end, &strides, o).map_err(|m| cx.unsupported(m))
}

impl OpSpec for Slice<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let x = cx.input(0, "input")?;
        let spec = slice_spec(cx, self.0, &x.shape)?;
        Ok(vec![cx.output(x.dtype, spec.out_shape)?])
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::SameAsInput
    }

    fn gradient(&self) -> Gradient {
        Gradient::Flows
    }

    fn fold(&self, cx: &NodeCx, out: &Fact) -> Result<Option<TensorData>> {
        let (Some(x), Some(values)) = (cx.opt_input(0), cx.value(0).and_then(TensorData::to_i64_vec)) else {
            return Ok(None);
        };
        let spec = slice_spec(cx, self.0, &x.shape)?;
        let mut o = vec![0i64; out.len()];
        strided_slice(&values, &x.shape, &spec, &mut o);
        Ok(int_data(out.dtype, &out.shape, o))
    }
}
