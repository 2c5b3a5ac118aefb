//! Backward of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on a batch, as matrix products:
//! with `cols` the im2col rows of the input (`[pixels][k]`) and `dz` the output gradient through
//! the fused clamp (`[pixels][out]`): `dW = dzᵀ·cols`, `db = Σ dz`, `dcols = dz·W`, and the input
//! gradient is `dcols` scattered back by col2im. Both products run on [`super::gemm`] straight from
//! these layouts; the scratch (`dz`, the im2col rows, `dcols`) lives in the [`super::Workspace`].

use super::gemm::{self, Dims};
use super::{through_clamp, through_clamp_into, BackCx, OperandGrads};
use crate::error::Result;
use crate::ir::Activation;
use crate::kernels::im2col::{col2im, im2col};
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
    let mut dz = std::mem::take(&mut cx.ws.dz);
    through_clamp_into(cx, act, &mut dz)?;
    let (k, oc) = (s.patch_len(), s.out_c);
    let pixels = s.batch * s.out_h() * s.out_w();
    let mut grads = cx.empty();
    let mut dw = cx.need[1].then(|| vec![0.0f32; oc * k]);
    let mut dx = cx.need[0].then(|| vec![0.0f32; x.len()]);
    let ws = &mut *cx.ws;
    for p0 in (0..pixels).step_by(BLOCK) {
        let n = BLOCK.min(pixels - p0);
        let dzb = &dz[p0 * oc..(p0 + n) * oc];
        if let Some(dw) = dw.as_mut() {
            ws.cols.resize(n * k, 0.0);
            im2col(&s, x, 0.0, p0, n, &mut ws.cols);
            // dW[o][j] += Σ_p dz[p][o] · cols[p][j]
            gemm::product(Dims { m: oc, n: k, k: n, lda: oc, ldb: k, ldc: k }, dzb, &ws.cols, dw, true);
        }
        if let Some(dx) = dx.as_mut() {
            gemm::transpose(dzb, n, oc, &mut ws.t0);
            ws.dcols.resize(n * k, 0.0);
            // dcols[p][j] = Σ_o dzᵀ[o][p] · W[o][j]
            gemm::product(Dims { m: n, n: k, k: oc, lda: n, ldb: k, ldc: k }, &ws.t0, w, &mut ws.dcols, false);
            col2im(&s, &ws.dcols, p0, n, dx);
        }
    }
    grads[0] = dx;
    grads[1] = dw;
    if cx.need.get(2) == Some(&true) {
        grads[2] = Some(column_sums(&dz, oc));
    }
    cx.ws.dz = dz;
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
        // dW[u][j] = Σ_r dz[r][u] · x[r][j]
        let mut dw = vec![0.0f32; units * k];
        gemm::product(Dims { m: units, n: k, k: rows, lda: units, ldb: k, ldc: k }, &dz, x, &mut dw, false);
        grads[1] = Some(dw);
    }
    if cx.need[0] {
        // dx[r][j] = Σ_u dzᵀ[u][r] · W[u][j]
        gemm::transpose(&dz, rows, units, &mut ws.t0);
        let mut dx = vec![0.0f32; rows * k];
        gemm::product(Dims { m: rows, n: k, k: units, lda: rows, ldb: k, ldc: k }, &ws.t0, w, &mut dx, false);
        grads[0] = Some(dx);
    }
    if cx.need.get(2) == Some(&true) {
        grads[2] = Some(column_sums(&dz, units));
    }
    Ok(grads)
}
