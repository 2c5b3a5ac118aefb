//! Backward of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on a batch, as matrix products:
//! with `cols` the im2col rows of the input (`[pixels][k]`) and `dz` the output gradient through
//! the fused clamp (`[pixels][out]`): `dW = dzᵀ·cols`, `db = Σ dz`, `dcols = dz·W`, and the input
//! gradient is `dcols` scattered back by col2im.

use super::{through_clamp, BackCx, OperandGrads};
use crate::error::Result;
use crate::ir::Activation;
use crate::kernels::im2col::{col2im, im2col};
use crate::kernels::matmul;
use crate::ops::conv_shape;

/// Output pixels per block of im2col rows: bounds the scratch on large batches.
const BLOCK: usize = 256;

fn column_sums(dz: &[f32], n: usize) -> Vec<f32> {
    let mut db = vec![0.0f32; n];
    for row in dz.chunks_exact(n) {
        db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
    }
    db
}

pub(super) fn conv2d(act: Activation, cx: &mut BackCx) -> Result<OperandGrads> {
    let (x, w) = (cx.value(0)?, cx.value(1)?);
    let (xf, wf) = (cx.node.input(0, "input")?, cx.node.input(1, "weights")?);
    let s = conv_shape(&cx.node.node.op, &xf.shape, &wf.shape).ok_or_else(|| cx.node.err("window"))?;
    let dz = through_clamp(cx, act)?;
    let (k, oc) = (s.patch_len(), s.out_c);
    let pixels = s.batch * s.out_h() * s.out_w();
    let mut grads = cx.empty();
    let mut dw = cx.need[1].then(|| vec![0.0f32; oc * k]);
    let mut dx = cx.need[0].then(|| vec![0.0f32; x.len()]);
    let ws = &mut *cx.ws;
    let mut part = Vec::new();
    for p0 in (0..pixels).step_by(BLOCK) {
        let n = BLOCK.min(pixels - p0);
        let dzb = &dz[p0 * oc..(p0 + n) * oc];
        if let Some(dw) = dw.as_mut() {
            ws.cols.resize(n * k, 0.0);
            im2col(&s, x, 0.0, p0, n, &mut ws.cols);
            part.resize(oc * k, 0.0);
            matmul::tn(oc, k, n, dzb, &ws.cols, &mut part, &mut ws.t0);
            dw.iter_mut().zip(&part).for_each(|(d, &v)| *d += v);
        }
        if let Some(dx) = dx.as_mut() {
            ws.dcols.resize(n * k, 0.0);
            matmul::nn(n, k, oc, dzb, w, &mut ws.dcols);
            col2im(&s, &ws.dcols, p0, n, dx);
        }
    }
    grads[0] = dx;
    grads[1] = dw;
    if cx.need.get(2) == Some(&true) {
        grads[2] = Some(column_sums(&dz, oc));
    }
    Ok(grads)
}

pub(super) fn depthwise(act: Activation, cx: &mut BackCx) -> Result<OperandGrads> {
    let (x, w) = (cx.value(0)?, cx.value(1)?);
    let (xf, wf) = (cx.node.input(0, "input")?, cx.node.input(1, "weights")?);
    let s = conv_shape(&cx.node.node.op, &xf.shape, &wf.shape).ok_or_else(|| cx.node.err("window"))?;
    let dz = through_clamp(cx, act)?;
    let (ic, oc) = (s.in_c, s.out_c);
    let mult = oc / ic.max(1);
    let mut dw = vec![0.0f32; s.kh() * s.kw() * oc];
    let mut dx = vec![0.0f32; x.len()];
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let g = &dz[((b * s.out_h() + oy) * s.out_w() + ox) * oc..][..oc];
                for ky in s.win.h.valid_taps(oy) {
                    let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                    for kx in s.win.w.valid_taps(ox) {
                        let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                        let base = ((b * s.in_h() + iy) * s.in_w() + ix) * ic;
                        let tap = (ky * s.kw() + kx) * oc;
                        for (c, &d) in g.iter().enumerate() {
                            dw[tap + c] += d * x[base + c / mult];
                            dx[base + c / mult] += d * w[tap + c];
                        }
                    }
                }
            }
        }
    }
    let mut grads = cx.empty();
    grads[0] = cx.need[0].then_some(dx);
    grads[1] = cx.need[1].then_some(dw);
    if cx.need.get(2) == Some(&true) {
        grads[2] = Some(column_sums(&dz, oc));
    }
    Ok(grads)
}

pub(super) fn dense(act: Activation, cx: &mut BackCx) -> Result<OperandGrads> {
    let (x, w) = (cx.value(0)?, cx.value(1)?);
    let wf = cx.node.input(1, "weights")?;
    let (units, k) = (wf.shape[0], wf.shape[1]);
    let rows = x.len() / k.max(1);
    let dz = through_clamp(cx, act)?;
    let mut grads = cx.empty();
    let ws = &mut *cx.ws;
    if cx.need[1] {
        let mut dw = vec![0.0f32; units * k];
        matmul::tn(units, k, rows, &dz, x, &mut dw, &mut ws.t0);
        grads[1] = Some(dw);
    }
    if cx.need[0] {
        let mut dx = vec![0.0f32; rows * k];
        matmul::nn(rows, k, units, &dz, w, &mut dx);
        grads[0] = Some(dx);
    }
    if cx.need.get(2) == Some(&true) {
        grads[2] = Some(column_sums(&dz, units));
    }
    Ok(grads)
}
