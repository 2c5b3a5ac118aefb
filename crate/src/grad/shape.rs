//! Backward of pooling, reductions and data movement. A data movement is linear, so its backward
//! runs the forward kernel on element indices and sends each output gradient back to the input
//! element it was copied from.

use super::{through_clamp, BackCx, OperandGrads};
use crate::error::Result;
use crate::ir::{Pool2D, StridedSlice};
use crate::kernels::conv::ConvShape;
use crate::kernels::layout;
use crate::kernels::reduce::reduce_index_map;
use crate::ops::{normalize_axis, paddings, permutation, pool_shape, reduced_axes, slice_spec};

pub(super) fn pool(p: &Pool2D, max_pool: bool, cx: &mut BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    if !cx.need[0] {
        return Ok(grads);
    }
    let xf = cx.node.input(0, "input")?;
    let s = pool_shape(p, &xf.shape).ok_or_else(|| cx.node.err("window"))?;
    let dz = through_clamp(cx, p.activation)?;
    let x = cx.value(0)?;
    let mut dx = vec![0.0f32; x.len()];
    pool_into(&s, x, &dz, max_pool, &mut dx);
    grads[0] = Some(dx);
    Ok(grads)
}

/// AVERAGE_POOL_2D spreads each output gradient evenly over the valid taps; MAX_POOL_2D gives it
/// to the first tap holding the maximum.
fn pool_into(s: &ConvShape, x: &[f32], dz: &[f32], max_pool: bool, dx: &mut [f32]) {
    let c = s.in_c;
    let mut taps = Vec::new();
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                taps.clear();
                for ky in s.win.h.valid_taps(oy) {
                    let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                    for kx in s.win.w.valid_taps(ox) {
                        let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                        taps.push(((b * s.in_h() + iy) * s.in_w() + ix) * c);
                    }
                }
                if taps.is_empty() {
                    continue;
                }
                let base = ((b * s.out_h() + oy) * s.out_w() + ox) * c;
                for ch in 0..c {
                    let d = dz[base + ch];
                    if max_pool {
                        let best = taps.iter().copied().fold(taps[0], |m, t| if x[t + ch] > x[m + ch] { t } else { m });
                        dx[best + ch] += d;
                    } else {
                        let share = d / taps.len() as f32;
                        taps.iter().for_each(|&t| dx[t + ch] += share);
                    }
                }
            }
        }
    }
}

pub(super) fn reduce(mean: bool, cx: &mut BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    if !cx.need[0] {
        return Ok(grads);
    }
    let xf = cx.node.input(0, "input")?;
    let map = reduce_index_map(&xf.shape, &reduced_axes(cx.node, xf.shape.len())?);
    let (x, y, dy) = (cx.value(0)?, cx.y, cx.dy);
    let mut dx = vec![0.0f32; x.len()];
    if mean {
        let mut count = vec![0usize; dy.len()];
        map.iter().for_each(|&o| count[o] += 1);
        for (i, &o) in map.iter().enumerate() {
            dx[i] = dy[o] / count[o] as f32;
        }
    } else {
        // The gradient goes to the first element that attains each maximum.
        let mut taken = vec![false; dy.len()];
        for (i, &o) in map.iter().enumerate() {
            if !taken[o] && x[i] == y[o] {
                dx[i] = dy[o];
                taken[o] = true;
            }
        }
    }
    grads[0] = Some(dx);
    Ok(grads)
}

pub(super) fn copy(cx: &mut BackCx) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    grads[0] = cx.need[0].then(|| cx.dy.to_vec());
    Ok(grads)
}

/// The backward of a data movement `forward` of input 0 (`u32::MAX` marks padding).
fn scatter(cx: &mut BackCx, forward: impl FnOnce(&[u32], &mut [u32])) -> Result<OperandGrads> {
    let mut grads = cx.empty();
    if !cx.need[0] {
        return Ok(grads);
    }
    let len = cx.node.input(0, "input")?.len();
    let idx: Vec<u32> = (0..len as u32).collect();
    let mut src = vec![u32::MAX; cx.dy.len()];
    forward(&idx, &mut src);
    let mut dx = vec![0.0f32; len];
    for (&s, &d) in src.iter().zip(cx.dy) {
        if let Some(v) = dx.get_mut(s as usize) {
            *v += d;
        }
    }
    grads[0] = Some(dx);
    Ok(grads)
}

pub(super) fn transpose(cx: &mut BackCx) -> Result<OperandGrads> {
    let shape = cx.node.input(0, "input")?.shape.clone();
    let perm = permutation(cx.node, shape.len())?;
    scatter(cx, |idx, out| layout::transpose(idx, &shape, &perm, out))
}

pub(super) fn pad(cx: &mut BackCx) -> Result<OperandGrads> {
    let shape = cx.node.input(0, "input")?.shape.clone();
    let pads = paddings(cx.node, shape.len())?;
    scatter(cx, |idx, out| layout::pad(idx, &shape, &pads, u32::MAX, out))
}

pub(super) fn strided_slice(o: &StridedSlice, cx: &mut BackCx) -> Result<OperandGrads> {
    let shape = cx.node.input(0, "input")?.shape.clone();
    let spec = slice_spec(cx.node, o, &shape)?;
    scatter(cx, |idx, out| layout::strided_slice(idx, &shape, &spec, out))
}

/// CONCATENATION of inputs with `shapes` along `axis`: each input gets its part of the gradient.
fn join(cx: &mut BackCx, axis: usize, shapes: &[Vec<usize>]) -> Result<OperandGrads> {
    // Indices tag their input in the high bits: (input << 32) | element.
    let ids: Vec<Vec<u64>> = shapes
        .iter()
        .enumerate()
        .map(|(j, s)| (0..s.iter().product::<usize>() as u64).map(|e| (j as u64) << 32 | e).collect())
        .collect();
    let refs: Vec<&[u64]> = ids.iter().map(Vec::as_slice).collect();
    let shape_refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    let mut src = vec![0u64; cx.dy.len()];
    layout::concat(&refs, &shape_refs, axis, &mut src);
    let mut grads = cx.empty();
    for (j, slot) in grads.iter_mut().enumerate() {
        if !cx.need[j] {
            continue;
        }
        let mut dx = vec![0.0f32; ids[j].len()];
        for (&s, &d) in src.iter().zip(cx.dy) {
            if (s >> 32) as usize == j {
                dx[(s & 0xffff_ffff) as usize] += d;
            }
        }
        *slot = Some(dx);
    }
    Ok(grads)
}

pub(super) fn concat(axis: i32, cx: &mut BackCx) -> Result<OperandGrads> {
    let ins = cx.node.all_inputs("input")?;
    let shapes: Vec<Vec<usize>> = ins.iter().map(|f| f.shape.clone()).collect();
    let a = normalize_axis(cx.node, axis, shapes.first().map_or(0, Vec::len))?;
    join(cx, a, &shapes)
}

pub(super) fn pack(axis: i32, cx: &mut BackCx) -> Result<OperandGrads> {
    let ins = cx.node.all_inputs("input")?;
    let rank = ins.first().map_or(0, |f| f.shape.len());
    let a = normalize_axis(cx.node, axis, rank + 1)?;
    let shapes: Vec<Vec<usize>> = ins
        .iter()
        .map(|f| {
            let mut s = f.shape.clone();
            s.insert(a, 1);
            s
        })
        .collect();
    join(cx, a, &shapes)
}
