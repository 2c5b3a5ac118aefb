//! Batch inference over `.npy` arrays: `[N, ...input shape]` in, `[N, ...output shape]` out.

use super::{Buffer, Interpreter};
use crate::error::{Error, Result};
use crate::ir::DType;
use crate::npy::{NpyArray, NpyData};

/// How a batch array lines up with a model input of shape `shape`: the number of samples, or an
/// error that shows both shapes.
pub fn samples_in(x_shape: &[usize], shape: &[usize], what: &str) -> Result<usize> {
    let per_sample = if shape.first() == Some(&1) { &shape[1..] } else { shape };
    if x_shape.len() == per_sample.len() + 1 && &x_shape[1..] == per_sample {
        return Ok(x_shape[0]);
    }
    if x_shape.len() == shape.len() + 1 && &x_shape[1..] == shape {
        return Ok(x_shape[0]);
    }
    Err(Error::input(format!(
        "{what} has shape {x_shape:?}, but the model input is {shape:?}: expected [N, {}]",
        per_sample.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
    )))
}

/// Runs every sample of `x` (one model input) and returns one array per model output. With `raw`,
/// outputs keep the model's own type (e.g. int8); otherwise they are dequantized to f32. An integer
/// `x` of the input's own type is used as is; a float `x` is quantized when the model takes integers.
pub fn run_batch(
    interp: &mut Interpreter,
    x: &NpyArray,
    raw: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<NpyArray>> {
    let inputs = interp.inputs();
    if inputs.len() != 1 {
        return Err(Error::input(format!("the model has {} inputs; batch runs support one", inputs.len())));
    }
    let input = &inputs[0];
    let n = samples_in(&x.shape, &input.shape, "the input array")?;
    let per = input.shape.iter().product::<usize>();
    let floats = match (&x.data, input.dtype) {
        (NpyData::I8(_), DType::I8) | (NpyData::U8(_), DType::U8) => None,
        _ => Some(x.to_f32()),
    };
    let outputs = interp.outputs();
    let mut collected: Vec<Vec<Buffer>> = vec![Vec::with_capacity(n); outputs.len()];
    for i in 0..n {
        // Samples are independent: recurrent state (LSTM) starts from zero for each.
        interp.reset_state();
        match (&floats, &x.data) {
            (Some(f), _) => interp.set_input_f32(0, &f[i * per..(i + 1) * per]).map_err(|e| sample_err(e, i))?,
            (None, NpyData::I8(v)) => interp.set_input(0, Buffer::I8(v[i * per..(i + 1) * per].to_vec()))?,
            (None, NpyData::U8(v)) => interp.set_input(0, Buffer::U8(v[i * per..(i + 1) * per].to_vec()))?,
            (None, _) => unreachable!("integer input types are matched above"),
        }
        interp.invoke()?;
        for (o, c) in collected.iter_mut().enumerate() {
            let b = if raw {
                interp.output(o).cloned().unwrap_or_default()
            } else {
                Buffer::F32(interp.output_f32(o).unwrap_or_default())
            };
            c.push(b);
        }
        progress(i + 1, n);
    }
    outputs
        .iter()
        .zip(collected)
        .map(|(detail, bufs)| {
            let per_shape = if detail.shape.first() == Some(&1) { &detail.shape[1..] } else { &detail.shape[..] };
            let mut shape = vec![n];
            shape.extend_from_slice(per_shape);
            NpyArray::new(shape, concat(bufs)?)
        })
        .collect()
}

fn sample_err(e: Error, i: usize) -> Error {
    match e {
        Error::Input { message } => Error::input(format!("sample {i}: {message}")),
        other => other,
    }
}

pub(super) fn concat(bufs: Vec<Buffer>) -> Result<NpyData> {
    let kind = bufs.first().and_then(Buffer::dtype).unwrap_or(DType::F32);
    macro_rules! cat {
        ($variant:ident) => {
            NpyData::$variant(
                bufs.into_iter()
                    .flat_map(|b| match b {
                        Buffer::$variant(v) => v,
                        _ => Vec::new(),
                    })
                    .collect(),
            )
        };
    }
    Ok(match kind {
        DType::F32 => cat!(F32),
        DType::I8 => cat!(I8),
        DType::U8 => cat!(U8),
        DType::I32 => cat!(I32),
        DType::I64 => cat!(I64),
        other => {
            return Err(Error::unsupported(format!("writing outputs of type {other} to .npy"), Default::default()))
        }
    })
}
