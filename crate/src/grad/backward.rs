//! The backward pass of each float kernel: from the gradient of a step's output, the gradients of
//! its non-constant inputs (added into `act`) and of its weights and bias (added into `wg`).
//!
//! Convolutions reuse the forward pass's layout: the input is padded once ([`pad_nhwc`]), so every
//! tap is in bounds; the input gradient is accumulated in the same padded layout and cropped.
//! Linear data movement (TRANSPOSE, PAD, CONCATENATION, STRIDED_SLICE, broadcasting) is inverted by
//! running the forward kernel on element indices and scattering the gradient back along them.

use crate::error::{Error, Location, Result};
use crate::exec::{BinOp, Interpreter, Kernel, Step, Unary};
use crate::ir::{Graph, TensorId};
use crate::kernels::conv::{pad_nhwc, tap_offsets, ConvShape};
use crate::kernels::{elementwise, layout};

/// Scratch reused across steps and samples.
#[derive(Default)]
pub(super) struct Workspace {
    padded: Vec<f32>,
    dpadded: Vec<f32>,
    cols: Vec<f32>,
    dcols: Vec<f32>,
}

fn internal(msg: &str) -> Error {
    Error::graph(format!("backward pass: {msg}"), Location::default())
}

fn values(it: &Interpreter, t: Option<TensorId>) -> Result<&[f32]> {
    t.and_then(|t| it.tensor(t)).and_then(|b| b.as_f32()).ok_or_else(|| internal("a float operand is missing"))
}

fn constant(g: &Graph, t: Option<TensorId>, len: usize, what: &str) -> Result<Vec<f32>> {
    let data = t.and_then(|t| g.tensors[t].data.as_ref()).and_then(|d| d.as_f32());
    match data {
        Some(a) if a.len() == len => Ok(a.iter().copied().collect()),
        _ => Err(internal(&format!("{what} is not a float constant of {len} values"))),
    }
}

/// Adds `v` into the gradient slot of `t` (created as zeros of `len`).
fn slot(act: &mut [Option<Vec<f32>>], t: TensorId, len: usize) -> &mut [f32] {
    act[t].get_or_insert_with(|| vec![0.0; len])
}

/// The gradient before a fused clamp activation: it passes where the output is strictly inside
/// `(min, max)` (ReLU passes where the output is positive, ReLU6 where it is in (0, 6)).
fn through_clamp(dy: &[f32], y: &[f32], min: f32, max: f32) -> Vec<f32> {
    if min == f32::NEG_INFINITY && max == f32::INFINITY {
        return dy.to_vec();
    }
    dy.iter().zip(y).map(|(&d, &v)| if v > min && v < max { d } else { 0.0 }).collect()
}

/// `dst += a · src`.
#[inline]
fn axpy(dst: &mut [f32], a: f32, src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// Backward of one step. `dy` is the gradient of its output.
#[allow(clippy::too_many_arguments)]
pub(super) fn step(
    g: &Graph,
    it: &Interpreter,
    step: &Step,
    dy: &[f32],
    needed: &[bool],
    act: &mut [Option<Vec<f32>>],
    wg: &mut [Option<Vec<f32>>],
    ws: &mut Workspace,
) -> Result<()> {
    let node = &g.nodes[step.node];
    let x0 = step.inputs.first().copied().flatten();
    let need = |t: Option<TensorId>| t.filter(|&t| needed.get(t).copied().unwrap_or(false));
    let y = values(it, Some(step.output))?;
    if y.len() != dy.len() {
        return Err(internal("output gradient has the wrong length"));
    }
    match &step.kernel {
        Kernel::ConvF32 { s, min, max, .. } => {
            let dz = through_clamp(dy, y, *min, *max);
            let (k, oc) = (s.patch_len(), s.out_c);
            let w = constant(g, node.input(1), oc * k, "CONV_2D weights")?;
            conv(s, values(it, x0)?, &w, &dz, need(x0).map(|t| slot(act, t, s.input_len())), ws, |dw, db| {
                add_weight_grads(wg, node.input(1), dw, node.input(2), db)
            })
        }
        Kernel::DepthwiseF32 { s, min, max, .. } => {
            let dz = through_clamp(dy, y, *min, *max);
            let taps = s.kh() * s.kw();
            let w = constant(g, node.input(1), taps * s.out_c, "DEPTHWISE_CONV_2D weights")?;
            let (dw, db) = depthwise(s, values(it, x0)?, &w, &dz, need(x0).map(|t| slot(act, t, s.input_len())), ws);
            add_weight_grads(wg, node.input(1), dw, node.input(2), db)
        }
        Kernel::FcF32 { rows, w: packed, min, max, .. } => {
            let dz = through_clamp(dy, y, *min, *max);
            let (rows, k, units) = (*rows, packed.k, packed.n);
            let w = constant(g, node.input(1), units * k, "FULLY_CONNECTED weights")?;
            let x = values(it, x0)?;
            if x.len() != rows * k || dz.len() != rows * units {
                return Err(internal("FULLY_CONNECTED shapes"));
            }
            let mut dw = vec![0.0f32; units * k];
            let mut db = vec![0.0f32; units];
            for r in 0..rows {
                for u in 0..units {
                    let d = dz[r * units + u];
                    if d != 0.0 {
                        axpy(&mut dw[u * k..(u + 1) * k], d, &x[r * k..(r + 1) * k]);
                        db[u] += d;
                    }
                }
            }
            if let Some(t) = need(x0) {
                let dx = slot(act, t, rows * k);
                for r in 0..rows {
                    for u in 0..units {
                        let d = dz[r * units + u];
                        if d != 0.0 {
                            axpy(&mut dx[r * k..(r + 1) * k], d, &w[u * k..(u + 1) * k]);
                        }
                    }
                }
            }
            add_weight_grads(wg, node.input(1), dw, node.input(2), db)
        }
        Kernel::PoolF32 { s, max_pool, min, max } => {
            let dz = through_clamp(dy, y, *min, *max);
            if let Some(t) = need(x0) {
                let x = values(it, x0)?;
                pool(s, x, &dz, *max_pool, slot(act, t, s.input_len()));
            }
            Ok(())
        }
        Kernel::BinaryF32 { op, a_shape, b_shape, out_shape, min, max } => {
            let dz = through_clamp(dy, y, *min, *max);
            let x1 = step.inputs.get(1).copied().flatten();
            let (na, nb) = (a_shape.iter().product::<usize>(), b_shape.iter().product::<usize>());
            let ia: Vec<u32> = (0..na as u32).collect();
            let ib: Vec<u32> = (0..nb as u32).collect();
            let mut pairs = vec![(0u32, 0u32); dz.len()];
            elementwise::binary(&ia, a_shape, &ib, b_shape, out_shape, &mut pairs, |p, q| (p, q));
            let (a, b) = (values(it, x0)?, values(it, x1)?);
            if let Some(t) = need(x0) {
                let da = slot(act, t, na);
                for (&(p, q), &d) in pairs.iter().zip(&dz) {
                    da[p as usize] += if *op == BinOp::Mul { d * b[q as usize] } else { d };
                }
            }
            if let Some(t) = need(x1) {
                let db = slot(act, t, nb);
                for (&(p, q), &d) in pairs.iter().zip(&dz) {
                    db[q as usize] += match op {
                        BinOp::Add => d,
                        BinOp::Sub => -d,
                        BinOp::Mul => d * a[p as usize],
                    };
                }
            }
            Ok(())
        }
        Kernel::UnaryF32(u) => {
            let Some(t) = need(x0) else { return Ok(()) };
            let x = values(it, x0)?;
            let dx = slot(act, t, x.len());
            for i in 0..dx.len() {
                let (v, o, d) = (x[i], y[i], dy[i]);
                dx[i] += d * match *u {
                    Unary::Logistic => o * (1.0 - o),
                    Unary::Tanh => 1.0 - o * o,
                    Unary::Relu => f32::from(v > 0.0),
                    Unary::Relu6 => f32::from(v > 0.0 && v < 6.0),
                    Unary::LeakyRelu(a) => {
                        if v > 0.0 {
                            1.0
                        } else {
                            a
                        }
                    }
                    Unary::HardSwish => {
                        if v < -3.0 {
                            0.0
                        } else if v > 3.0 {
                            1.0
                        } else {
                            (2.0 * v + 3.0) / 6.0
                        }
                    }
                };
            }
            Ok(())
        }
        Kernel::SoftmaxF32 { depth, beta } => {
            let Some(t) = need(x0) else { return Ok(()) };
            let dx = slot(act, t, y.len());
            for ((p, d), o) in y.chunks(*depth).zip(dy.chunks(*depth)).zip(dx.chunks_mut(*depth)) {
                let dot: f32 = p.iter().zip(d).map(|(a, b)| a * b).sum();
                for ((o, &p), &d) in o.iter_mut().zip(p).zip(d) {
                    *o += beta * p * (d - dot);
                }
            }
            Ok(())
        }
        Kernel::ReduceF32 { map, mean } => {
            let Some(t) = need(x0) else { return Ok(()) };
            let x = values(it, x0)?;
            if map.len() != x.len() || map.iter().any(|&o| o >= dy.len()) {
                return Err(internal("reduction map"));
            }
            let dx = slot(act, t, x.len());
            if *mean {
                let mut count = vec![0usize; dy.len()];
                for &o in map {
                    count[o] += 1;
                }
                for (i, &o) in map.iter().enumerate() {
                    dx[i] += dy[o] / count[o] as f32;
                }
            } else {
                // The gradient goes to the first element that attains each maximum.
                let mut taken = vec![false; dy.len()];
                for (i, &o) in map.iter().enumerate() {
                    if !taken[o] && x[i] == y[o] {
                        dx[i] += dy[o];
                        taken[o] = true;
                    }
                }
            }
            Ok(())
        }
        Kernel::Copy => {
            if let Some(t) = need(x0) {
                for (d, &v) in slot(act, t, dy.len()).iter_mut().zip(dy) {
                    *d += v;
                }
            }
            Ok(())
        }
        Kernel::Transpose { shape, perm } => scatter_through(need(x0), shape.iter().product(), dy, act, |idx, out| {
            layout::transpose(idx, shape, perm, out)
        }),
        Kernel::StridedSlice { shape, spec } => {
            scatter_through(need(x0), shape.iter().product(), dy, act, |idx, out| {
                layout::strided_slice(idx, shape, spec, out)
            })
        }
        Kernel::Pad { shape, pads } => scatter_through(need(x0), shape.iter().product(), dy, act, |idx, out| {
            layout::pad(idx, shape, pads, u32::MAX, out)
        }),
        Kernel::Concat { axis, shapes } => {
            // Indices tag their input in the high bits: (input << 32) | element.
            let ids: Vec<Vec<u64>> = shapes
                .iter()
                .enumerate()
                .map(|(j, s)| (0..s.iter().product::<usize>() as u64).map(|e| (j as u64) << 32 | e).collect())
                .collect();
            let refs: Vec<&[u64]> = ids.iter().map(Vec::as_slice).collect();
            let shape_refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
            let mut src = vec![0u64; dy.len()];
            layout::concat(&refs, &shape_refs, *axis, &mut src);
            for (j, input) in step.inputs.iter().enumerate() {
                let Some(t) = need(*input) else { continue };
                let dx = slot(act, t, ids[j].len());
                for (&s, &d) in src.iter().zip(dy) {
                    if (s >> 32) as usize == j {
                        dx[(s & 0xffff_ffff) as usize] += d;
                    }
                }
            }
            Ok(())
        }
        // Integer, hybrid and constant kernels: no gradient flows through them.
        _ => Ok(()),
    }
}

/// Backward of a data movement `forward` (run here on element indices): each output element's
/// gradient goes back to the input element it was copied from (`u32::MAX` marks padding).
fn scatter_through(
    target: Option<TensorId>,
    in_len: usize,
    dy: &[f32],
    act: &mut [Option<Vec<f32>>],
    forward: impl FnOnce(&[u32], &mut [u32]),
) -> Result<()> {
    let Some(t) = target else { return Ok(()) };
    let idx: Vec<u32> = (0..in_len as u32).collect();
    let mut src = vec![u32::MAX; dy.len()];
    forward(&idx, &mut src);
    let dx = slot(act, t, in_len);
    for (&s, &d) in src.iter().zip(dy) {
        if let Some(v) = dx.get_mut(s as usize) {
            *v += d;
        }
    }
    Ok(())
}

fn add_weight_grads(
    wg: &mut [Option<Vec<f32>>],
    w: Option<TensorId>,
    dw: Vec<f32>,
    b: Option<TensorId>,
    db: Vec<f32>,
) -> Result<()> {
    for (t, v) in [(w, dw), (b, db)] {
        let Some(t) = t else { continue };
        match &mut wg[t] {
            Some(acc) if acc.len() == v.len() => acc.iter_mut().zip(v).for_each(|(a, x)| *a += x),
            Some(_) => return Err(internal("weight gradient length")),
            slot @ None => *slot = Some(v),
        }
    }
    Ok(())
}

/// CONV_2D: `dW[oc][k] = Σ_p dz[p][oc]·cols[p][k]`, `db = Σ_p dz[p]`, and (when `dx` is given) the
/// input gradient scattered back from `dcols[p][k] = Σ_oc dz[p][oc]·W[oc][k]`.
fn conv(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    dx: Option<&mut [f32]>,
    ws: &mut Workspace,
    done: impl FnOnce(Vec<f32>, Vec<f32>) -> Result<()>,
) -> Result<()> {
    let (k, oc, c) = (s.patch_len(), s.out_c, s.in_c);
    if x.len() != s.input_len() || dz.len() != s.output_len() {
        return Err(internal("CONV_2D shapes"));
    }
    let (hp, wp) = pad_nhwc(s, x, 0.0, 1, c, &mut ws.padded);
    let per_image = s.out_h() * s.out_w();
    let pixels = s.batch * per_image;
    let run = if s.win.w.dilation == 1 { s.kw() * c } else { c };
    // The padded-input offset of row `ky`, run `j` of output pixel `p`.
    let at = |p: usize, ky: usize, j: usize| {
        let (b, rem) = (p / per_image, p % per_image);
        let (oy, ox) = (rem / s.out_w(), rem % s.out_w());
        let yy = b * hp + oy * s.win.h.stride + ky * s.win.h.dilation;
        (yy * wp + ox * s.win.w.stride + j * s.win.w.dilation) * c
    };
    ws.cols.clear();
    ws.cols.resize(k, 0.0);
    let mut dw = vec![0.0f32; oc * k];
    let mut db = vec![0.0f32; oc];
    let want_dx = dx.is_some();
    if want_dx {
        ws.dpadded.clear();
        ws.dpadded.resize(ws.padded.len(), 0.0);
        ws.dcols.clear();
        ws.dcols.resize(k, 0.0);
    }
    for p in 0..pixels {
        for ky in 0..s.kh() {
            for (j, dst) in ws.cols[ky * s.kw() * c..(ky + 1) * s.kw() * c].chunks_exact_mut(run).enumerate() {
                dst.copy_from_slice(&ws.padded[at(p, ky, j)..][..run]);
            }
        }
        let g = &dz[p * oc..(p + 1) * oc];
        if want_dx {
            ws.dcols.fill(0.0);
        }
        for (o, &d) in g.iter().enumerate() {
            if d == 0.0 {
                continue;
            }
            axpy(&mut dw[o * k..(o + 1) * k], d, &ws.cols);
            db[o] += d;
            if want_dx {
                axpy(&mut ws.dcols, d, &w[o * k..(o + 1) * k]);
            }
        }
        if want_dx {
            for ky in 0..s.kh() {
                for (j, src) in ws.dcols[ky * s.kw() * c..(ky + 1) * s.kw() * c].chunks_exact(run).enumerate() {
                    for (d, &v) in ws.dpadded[at(p, ky, j)..][..run].iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    }
    if let Some(dx) = dx {
        crop_into(s, &ws.dpadded, hp, wp, c, 1, dx);
    }
    done(dw, db)
}

/// DEPTHWISE_CONV_2D: weight, bias and (when `dx` is given) input gradients.
fn depthwise(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    dx: Option<&mut [f32]>,
    ws: &mut Workspace,
) -> (Vec<f32>, Vec<f32>) {
    let (in_c, out_c) = (s.in_c, s.out_c);
    let mult = out_c / in_c.max(1);
    let (hp, wp) = pad_nhwc(s, x, 0.0, mult, out_c, &mut ws.padded);
    let taps = tap_offsets(s, wp, out_c);
    let mut dw = vec![0.0f32; taps.len() * out_c];
    let mut db = vec![0.0f32; out_c];
    let want_dx = dx.is_some();
    if want_dx {
        ws.dpadded.clear();
        ws.dpadded.resize(ws.padded.len(), 0.0);
    }
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let base = ((b * hp + oy * s.win.h.stride) * wp + ox * s.win.w.stride) * out_c;
                let g = &dz[((b * s.out_h() + oy) * s.out_w() + ox) * out_c..][..out_c];
                for (c, &d) in g.iter().enumerate() {
                    db[c] += d;
                }
                for (t, &off) in taps.iter().enumerate() {
                    let xs = &ws.padded[base + off..][..out_c];
                    for ((dw, &d), &v) in dw[t * out_c..(t + 1) * out_c].iter_mut().zip(g).zip(xs) {
                        *dw += d * v;
                    }
                    if want_dx {
                        let dxs = &mut ws.dpadded[base + off..][..out_c];
                        for ((dx, &d), &wv) in dxs.iter_mut().zip(g).zip(&w[t * out_c..(t + 1) * out_c]) {
                            *dx += d * wv;
                        }
                    }
                }
            }
        }
    }
    if let Some(dx) = dx {
        crop_into(s, &ws.dpadded, hp, wp, out_c, mult, dx);
    }
    (dw, db)
}

/// Adds the interior of a padded gradient (`cp` channels, channel `c` from input channel
/// `c / mult`) into the unpadded `dx`.
fn crop_into(s: &ConvShape, padded: &[f32], hp: usize, wp: usize, cp: usize, mult: usize, dx: &mut [f32]) {
    let (ph, pw) = (s.win.h.pad_before, s.win.w.pad_before);
    for b in 0..s.batch {
        for yy in 0..s.in_h() {
            for xx in 0..s.in_w() {
                let src = &padded[((b * hp + yy + ph) * wp + xx + pw) * cp..][..s.in_c * mult];
                let dst = &mut dx[((b * s.in_h() + yy) * s.in_w() + xx) * s.in_c..][..s.in_c];
                for (i, &v) in src.iter().enumerate() {
                    dst[i / mult] += v;
                }
            }
        }
    }
}

/// AVERAGE_POOL_2D spreads each output gradient evenly over the valid taps; MAX_POOL_2D gives it
/// to the first tap holding the maximum.
fn pool(s: &ConvShape, x: &[f32], dz: &[f32], max_pool: bool, dx: &mut [f32]) {
    let c = s.in_c;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let taps: Vec<usize> = s
                    .win
                    .h
                    .valid_taps(oy)
                    .flat_map(|ky| {
                        let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                        s.win.w.valid_taps(ox).map(move |kx| {
                            let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                            ((b * s.in_h() + iy) * s.in_w() + ix) * c
                        })
                    })
                    .collect();
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
                        for &t in &taps {
                            dx[t + ch] += share;
                        }
                    }
                }
            }
        }
    }
}
