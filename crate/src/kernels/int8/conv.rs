//! Int8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, as TFLite's reference integer kernels
//! compute them: `acc = Σ w·(x + input_offset) + bias` over the taps inside the image, then
//! `clamp(out_zp + M_c · acc)`. The `*_reference` functions are those loops written out; the fast
//! versions reorganize the sums (im2col padded with the input zero point, the offset folded into a
//! per-channel constant) and must give identical bytes.

use super::super::conv::ConvShape;
pub use super::super::fixedpoint::OutputStage;
use super::super::gemm_i8::{self, PackedI8, Requant, KC};

/// Direct-loop int8 CONV_2D (TFLite's `ConvPerChannel`); weights `[oc, kh, kw, ic]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_reference(
    s: &ConvShape,
    input_offset: i32,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
) {
    let (c, kh, kw) = (s.in_c, s.kh(), s.kw());
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for oc in 0..s.out_c {
                    let mut acc = 0i32;
                    for ky in 0..kh {
                        let Some(iy) = s.win.h.tap(oy, ky) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = s.win.w.tap(ox, kx) else { continue };
                            for ic in 0..c {
                                let x = input[((b * s.in_h() + iy) * s.in_w() + ix) * c + ic] as i32;
                                let w = weights[((oc * kh + ky) * kw + kx) * c + ic] as i32;
                                acc = acc.wrapping_add(w * (x + input_offset));
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = os.apply(oc, acc);
                }
            }
        }
    }
}

/// Prepared int8 CONV_2D or FULLY_CONNECTED weights: packed, with the per-channel constant
/// `bias + input_offset · Σ w` folded in.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedGemm {
    pub weights: PackedI8,
    pub offset: Vec<i32>,
    pub stage: OutputStage,
}

impl PreparedGemm {
    pub fn new(
        weights: &[i8],
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        input_offset: i32,
        stage: OutputStage,
    ) -> Self {
        let packed = PackedI8::pack(weights, n, k);
        let offset = (0..n)
            .map(|j| bias.map_or(0, |b| b[j]).wrapping_add(input_offset.wrapping_mul(packed.row_sums[j])))
            .collect();
        PreparedGemm { weights: packed, offset, stage }
    }

    fn requant(&self) -> Requant<'_> {
        Requant { offset: &self.offset, stage: &self.stage }
    }
}

/// Output pixels per im2col block.
const BLOCK: usize = 64;

/// Fast int8 CONV_2D: im2col rows (padded with the input zero point, so padded taps contribute
/// nothing after the offset fold) fed to the int8 GEMM.
pub fn conv2d(s: &ConvShape, input_zp: i8, input: &[i8], g: &PreparedGemm, out: &mut [i8], scratch: &mut Vec<i8>) {
    let k = s.patch_len();
    let kp = g.weights.kp;
    debug_assert_eq!(g.weights.k, k);
    let pixels = s.batch * s.out_h() * s.out_w();
    let per_image = s.out_h() * s.out_w();
    scratch.clear();
    scratch.resize(BLOCK * kp, 0);
    for p0 in (0..pixels).step_by(BLOCK) {
        let n = BLOCK.min(pixels - p0);
        for (r, p) in (p0..p0 + n).enumerate() {
            let (b, rem) = (p / per_image, p % per_image);
            let (oy, ox) = (rem / s.out_w(), rem % s.out_w());
            let row = &mut scratch[r * kp..(r + 1) * kp];
            for ky in 0..s.kh() {
                let iy = s.win.h.tap(oy, ky);
                for kx in 0..s.kw() {
                    let dst = &mut row[(ky * s.kw() + kx) * s.in_c..(ky * s.kw() + kx + 1) * s.in_c];
                    match (iy, s.win.w.tap(ox, kx)) {
                        (Some(iy), Some(ix)) => {
                            let src = ((b * s.in_h() + iy) * s.in_w() + ix) * s.in_c;
                            dst.copy_from_slice(&input[src..src + s.in_c]);
                        }
                        _ => dst.fill(input_zp),
                    }
                }
            }
        }
        gemm_i8::gemm(n, scratch, kp, &g.weights, g.requant(), &mut out[p0 * s.out_c..(p0 + n) * s.out_c], s.out_c);
    }
}

/// Fast int8 FULLY_CONNECTED over `rows` rows of `k` inputs.
pub fn fully_connected(rows: usize, input: &[i8], g: &PreparedGemm, out: &mut [i8], scratch: &mut Vec<i8>) {
    let (k, kp, n) = (g.weights.k, g.weights.kp, g.weights.n);
    if k == kp && input.len() >= rows * k {
        gemm_i8::gemm(rows, input, k, &g.weights, g.requant(), out, n);
        return;
    }
    // Rows must be readable to the padded length: copy them into a zero-padded scratch.
    scratch.clear();
    scratch.resize(rows * kp, 0);
    for r in 0..rows {
        scratch[r * kp..r * kp + k].copy_from_slice(&input[r * k..(r + 1) * k]);
    }
    gemm_i8::gemm(rows, scratch, kp, &g.weights, g.requant(), out, n);
}

/// Direct-loop int8 FULLY_CONNECTED (TFLite's reference `FullyConnected`/`FullyConnectedPerChannel`).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_reference(
    rows: usize,
    k: usize,
    input_offset: i32,
    input: &[i8],
    weights: &[i8],
    weights_offset: i32,
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
) {
    let n = if k == 0 { 0 } else { weights.len() / k };
    for r in 0..rows {
        for j in 0..n {
            let mut acc = 0i32;
            for kk in 0..k {
                let x = input[r * k + kk] as i32 + input_offset;
                let w = weights[j * k + kk] as i32 + weights_offset;
                acc = acc.wrapping_add(w * x);
            }
            if let Some(b) = bias {
                acc = acc.wrapping_add(b[j]);
            }
            out[r * n + j] = os.apply(j, acc);
        }
    }
}

/// Direct-loop int8 DEPTHWISE_CONV_2D (TFLite's `DepthwiseConvPerChannel`); weights `[kh, kw, oc]`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_reference(
    s: &ConvShape,
    input_offset: i32,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
) {
    let mult = s.out_c / s.in_c;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for ic in 0..s.in_c {
                    for m in 0..mult {
                        let oc = ic * mult + m;
                        let mut acc = 0i32;
                        for ky in 0..s.kh() {
                            for kx in 0..s.kw() {
                                if let (Some(iy), Some(ix)) = (s.win.h.tap(oy, ky), s.win.w.tap(ox, kx)) {
                                    let x = input[((b * s.in_h() + iy) * s.in_w() + ix) * s.in_c + ic] as i32;
                                    let w = weights[(ky * s.kw() + kx) * s.out_c + oc] as i32;
                                    acc = acc.wrapping_add(w * (x + input_offset));
                                }
                            }
                        }
                        if let Some(bias) = bias {
                            acc = acc.wrapping_add(bias[oc]);
                        }
                        out[((b * s.out_h() + oy) * s.out_w() + ox) * s.out_c + oc] = os.apply(oc, acc);
                    }
                }
            }
        }
    }
}

/// Fast int8 DEPTHWISE_CONV_2D: per output pixel, accumulates tap by tap across all channels
/// (contiguous in NHWC), which vectorizes. Weights `[kh, kw, oc]` widened to i16.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    s: &ConvShape,
    input_offset: i32,
    input: &[i8],
    weights: &[i16],
    bias: Option<&[i32]>,
    os: &OutputStage,
    out: &mut [i8],
    acc: &mut Vec<i32>,
) {
    let (in_c, out_c) = (s.in_c, s.out_c);
    let mult = out_c / in_c;
    acc.clear();
    acc.resize(out_c, 0);
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                match bias {
                    Some(bias) => acc.copy_from_slice(&bias[..out_c]),
                    None => acc.fill(0),
                }
                for ky in s.win.h.valid_taps(oy) {
                    let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                    for kx in s.win.w.valid_taps(ox) {
                        let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                        let x = &input[((b * s.in_h() + iy) * s.in_w() + ix) * in_c..][..in_c];
                        let w = &weights[(ky * s.kw() + kx) * out_c..][..out_c];
                        if mult == 1 {
                            for ((a, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                                *a = a.wrapping_add(w as i32 * (x as i32 + input_offset));
                            }
                        } else {
                            for (oc, (a, &w)) in acc.iter_mut().zip(w).enumerate() {
                                *a = a.wrapping_add(w as i32 * (x[oc / mult] as i32 + input_offset));
                            }
                        }
                    }
                }
                let o = &mut out[((b * s.out_h() + oy) * s.out_w() + ox) * out_c..][..out_c];
                for (c, (o, &a)) in o.iter_mut().zip(acc.iter()).enumerate() {
                    *o = os.apply(c, a);
                }
            }
        }
    }
}

/// Pads `k` to the packed length used by [`conv2d`] scratch rows.
pub fn padded_k(k: usize) -> usize {
    k.div_ceil(KC) * KC
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::Padding;
    use crate::kernels::fixedpoint::{quantize_multiplier, Rescale};
    use crate::kernels::geometry::{Window, Window2D};
    use crate::rng::Rng;

    fn shape(
        hw: (usize, usize),
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        dil: usize,
        pad: Padding,
    ) -> ConvShape {
        let h = Window::new(pad, hw.0, k, stride, dil).unwrap();
        let w = Window::new(pad, hw.1, k, stride, dil).unwrap();
        ConvShape { batch: 1, in_c, out_c, win: Window2D { h, w } }
    }

    fn random_i8(rng: &mut Rng, n: usize, lo: i32) -> Vec<i8> {
        (0..n).map(|_| (rng.below((127 - lo + 1) as usize) as i32 + lo) as i8).collect()
    }

    fn stage(rng: &mut Rng, n: usize) -> OutputStage {
        let scales =
            (0..n).map(|_| Rescale::Fixed(quantize_multiplier(0.001 + rng.uniform() as f64 * 0.004))).collect();
        OutputStage::new(scales, 3, -128, 127)
    }

    #[test]
    fn conv_fast_equals_reference() {
        let mut rng = Rng::new(11);
        for s in [
            shape((6, 6), 3, 5, 3, 1, 1, Padding::Same),
            shape((7, 5), 8, 9, 3, 2, 1, Padding::Same),
            shape((9, 9), 4, 4, 3, 1, 2, Padding::Valid),
            shape((5, 5), 16, 8, 1, 1, 1, Padding::Same),
        ] {
            let input = random_i8(&mut rng, s.input_len(), -128);
            let w = random_i8(&mut rng, s.out_c * s.patch_len(), -127);
            let bias: Vec<i32> = (0..s.out_c).map(|_| rng.below(4000) as i32 - 2000).collect();
            let os = stage(&mut rng, s.out_c);
            let (zp, off) = (-7i8, 7);
            let mut want = vec![0i8; s.output_len()];
            conv2d_reference(&s, off, &input, &w, Some(&bias), &os, &mut want);
            let g = PreparedGemm::new(&w, s.out_c, s.patch_len(), Some(&bias), off, os.clone());
            let mut got = vec![0i8; s.output_len()];
            conv2d(&s, zp, &input, &g, &mut got, &mut Vec::new());
            assert_eq!(got, want, "{s:?}");
        }
    }

    #[test]
    fn depthwise_and_fc_fast_equal_reference() {
        let mut rng = Rng::new(12);
        for (s, _) in
            [(shape((6, 6), 4, 4, 3, 1, 1, Padding::Same), 1), (shape((7, 7), 3, 6, 3, 2, 1, Padding::Same), 2)]
        {
            let input = random_i8(&mut rng, s.input_len(), -128);
            let w = random_i8(&mut rng, s.kh() * s.kw() * s.out_c, -127);
            let os = stage(&mut rng, s.out_c);
            let mut want = vec![0i8; s.output_len()];
            depthwise_reference(&s, 20, &input, &w, None, &os, &mut want);
            let w16: Vec<i16> = w.iter().map(|&v| v as i16).collect();
            let mut got = vec![0i8; s.output_len()];
            depthwise(&s, 20, &input, &w16, None, &os, &mut got, &mut Vec::new());
            assert_eq!(got, want);
        }
        for &(rows, k, n) in &[(1, 10, 3), (3, 16, 17), (2, 33, 5)] {
            let input = random_i8(&mut rng, rows * k, -128);
            let w = random_i8(&mut rng, n * k, -127);
            let bias: Vec<i32> = (0..n).map(|_| rng.below(1000) as i32).collect();
            let os = OutputStage::new(vec![Rescale::Double(0.003)], -128, -128, 127);
            let mut want = vec![0i8; rows * n];
            fully_connected_reference(rows, k, 128, &input, &w, 0, Some(&bias), &os, &mut want);
            let g = PreparedGemm::new(&w, n, k, Some(&bias), 128, os.clone());
            let mut got = vec![0i8; rows * n];
            fully_connected(rows, &input, &g, &mut got, &mut Vec::new());
            assert_eq!(got, want, "rows={rows} k={k} n={n}");
        }
    }
}
