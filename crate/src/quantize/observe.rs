//! Calibration's observations: run the float model on a chunk of calibration samples and record,
//! per activation, its value distribution ([`Observer`]); per weighted layer, the sums of its
//! inputs (for bias correction); per tensor read only by SOFTMAX, its row maxima; and the float
//! outputs (for scoring candidates). Chunks merge in order into one [`Calibration`].

use serde::{Deserialize, Serialize};

use super::calibrate::Observer;
use crate::exec::Interpreter;
use crate::ir::{DType, Graph, Node, Op, TensorId};
use crate::kernels::conv::ConvShape;
use crate::ops;

/// Samples that the per-layer input means (for bias correction) are averaged over: the mean settles
/// long before the calibration set ends, and the sums cost as much as an im2col. They come from the
/// first half of the calibration set; `auto` scores candidates on the second half, so a correction
/// is never judged on the data it was fitted to.
pub const MEAN_SAMPLES: usize = 64;

/// How many of `samples` calibration samples the input means are taken from.
pub fn mean_samples(samples: usize) -> usize {
    MEAN_SAMPLES.min(samples.div_ceil(2))
}

/// What calibration learned.
pub struct Calibration {
    pub observers: Vec<Option<Observer>>,
    /// Per weighted node: the mean of each weight's input over all positions and samples (the mean
    /// im2col row for CONV_2D, per tap and channel for DEPTHWISE_CONV_2D, the mean input row for
    /// FULLY_CONNECTED).
    pub input_means: Vec<Option<Vec<f64>>>,
    /// The float model's outputs for every calibration sample: `outputs[sample][output]`.
    pub outputs: Vec<Vec<Vec<f32>>>,
    /// Per tensor read only by SOFTMAX: the lowest value it needs ([`softmax_floor`]).
    pub softmax_floor: Vec<Option<f32>>,
    /// The ranges are final (quantization-aware training learned them): use them as they are.
    pub exact: bool,
}

impl Calibration {
    /// A calibration that gives each tensor exactly the range listed for it.
    pub fn from_ranges(ranges: &[Option<(f32, f32)>]) -> Calibration {
        let observers = ranges
            .iter()
            .map(|r| {
                r.map(|(lo, hi)| {
                    let mut o = Observer::new(false);
                    o.observe(&[lo, hi]);
                    o
                })
            })
            .collect();
        Calibration {
            observers,
            input_means: vec![None; ranges.len()],
            outputs: Vec::new(),
            softmax_floor: vec![None; ranges.len()],
            exact: true,
        }
    }
}

/// The observations of one chunk of samples; chunks merge in order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    observers: Vec<Option<Observer>>,
    /// Per node: input sums and how many rows (pixels or batch rows) they cover.
    sums: Vec<Option<(Vec<f64>, u64)>>,
    row_max: Vec<Option<RowMax>>,
    outputs: Vec<Vec<Vec<f32>>>,
    /// The first value of the chunk's samples that is not finite: (sample, element, value). The
    /// chunk is not observed then (the job stops with an error naming it).
    pub non_finite: Option<(usize, usize, f32)>,
}

/// For every tensor read only by operators for which `per_reader` gives a value (and not a model
/// input or output): those values folded with `fold`.
pub fn only_read_by<T: Copy>(
    f: &Graph,
    per_reader: impl Fn(TensorId, &Node) -> Option<T>,
    fold: impl Fn(T, T) -> T,
) -> Vec<Option<T>> {
    f.consumers()
        .iter()
        .enumerate()
        .map(|(t, users)| {
            if f.outputs.contains(&t) || f.inputs.contains(&t) {
                return None;
            }
            let mut values = users.iter().map(|&ni| per_reader(t, &f.nodes[ni]));
            let first = values.next()??;
            values.try_fold(first, |acc, v| Some(fold(acc, v?)))
        })
        .collect()
}

/// Tensors read only by SOFTMAX: the smallest `beta` of their readers and the length of a row
/// (the last axis, over which SOFTMAX normalises).
pub fn softmax_inputs(f: &Graph) -> Vec<Option<(f32, usize)>> {
    only_read_by(
        f,
        |t, n| match n.op {
            Op::Softmax { beta } if beta > 0.0 && n.input(0) == Some(t) => {
                f.tensors[t].shape.last().copied().filter(|&r| r > 1).map(|row| (beta, row))
            }
            _ => None,
        },
        |(a, row), (b, _)| (a.min(b), row),
    )
}

/// The row maxima of a tensor SOFTMAX reads, over all calibration samples.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct RowMax {
    min: f32,
    n: f64,
    sum: f64,
    sum_sq: f64,
}

impl RowMax {
    fn new(m: f32) -> Self {
        RowMax { min: m, n: 0.0, sum: 0.0, sum_sq: 0.0 }
    }

    fn add(&mut self, m: f32) {
        self.min = self.min.min(m);
        self.n += 1.0;
        self.sum += m as f64;
        self.sum_sq += (m as f64) * (m as f64);
    }

    fn merge(&mut self, o: &RowMax) {
        self.min = self.min.min(o.min);
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }

    fn std(&self) -> f32 {
        let mean = self.sum / self.n.max(1.0);
        (self.sum_sq / self.n.max(1.0) - mean * mean).max(0.0).sqrt() as f32
    }
}

/// The lowest input a SOFTMAX-only tensor needs. A value `d / beta` below its row's maximum, with
/// `d = ln(512 · row) + 2`, has a probability under 1/(512 e²): its int8 output is 0 (the lowest
/// code) either way, and raising every such value of a row to that bound changes the row's sum so
/// little that every other output moves by under a tenth of a step. So for rows whose maximum is
/// at least `floor + d / beta`, clipping the range at `floor` costs nothing, and the logits the
/// layer before computes get finer steps. `floor` is the smallest row maximum seen in calibration
/// less one standard deviation of the row maxima: a new input whose maximum falls below every
/// calibration sample's by more than that is rare (and then loses only small probabilities).
fn softmax_floor(r: &RowMax, beta: f32, row: usize) -> f32 {
    r.min - r.std() - ((512.0 * row as f32).ln() + 2.0) / beta
}

/// Float tensors computed at run time (or given as input): what calibration observes.
pub fn is_activation(g: &Graph, t: TensorId) -> bool {
    let x = &g.tensors[t];
    x.dtype == DType::F32 && !x.is_constant()
}

/// Adds the column sums of the im2col rows of `input` (each filter tap's input per channel, 0 in
/// the padding; index `(ky · kw + kx) · in_c + c`) into `sums`; returns the rows (output pixels).
///
/// The rows are not built: for each tap, the input pixels it reads are listed in the order of the
/// output pixels that read them (padding, which adds zero, is skipped), and [`add_columns`] adds
/// them with each sum in a register, so every sum takes its terms in the order the im2col rows
/// would give them (the same f64 sums, bit for bit).
fn tap_sums(s: &ConvShape, input: &[f32], sums: &mut [f64]) -> u64 {
    let c = s.in_c;
    let reads = |outs: usize, k: usize, tap: &dyn Fn(usize, usize) -> Option<usize>| -> Vec<Vec<usize>> {
        (0..k).map(|t| (0..outs).filter_map(|o| tap(o, t)).collect()).collect()
    };
    let rows = reads(s.out_h(), s.kh(), &|oy, ky| s.win.h.tap(oy, ky));
    let cols = reads(s.out_w(), s.kw(), &|ox, kx| s.win.w.tap(ox, kx));
    let input = &input[..s.input_len()];
    let mut pixels = Vec::new();
    for ky in 0..s.kh() {
        for kx in 0..s.kw() {
            pixels.clear();
            for b in 0..s.batch {
                for &iy in &rows[ky] {
                    pixels.extend(cols[kx].iter().map(|&ix| ((b * s.in_h() + iy) * s.in_w() + ix) * c));
                }
            }
            add_columns(&mut sums[(ky * s.kw() + kx) * c..][..c], input, &pixels);
        }
    }
    (s.batch * s.out_h() * s.out_w()) as u64
}

/// `acc[j] += x[p + j] as f64` for each `p` of `starts` in order, for every `j < acc.len()`; each
/// `p + acc.len()` is at most `x.len()`. Each sum is kept in a register over all the starts (the
/// wasm build keeps blocks of eight channels in f64 pairs); every sum takes its terms in the order
/// of `starts`, as [`add_columns_reference`] does.
fn add_columns(acc: &mut [f64], x: &[f32], starts: &[usize]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (acc, x) = {
        let done = simd128::add_columns(acc, x, starts);
        (&mut acc[done..], &x[done.min(x.len())..])
    };
    for (j, a) in acc.iter_mut().enumerate() {
        *a = starts.iter().fold(*a, |s, &p| s + x[p + j] as f64);
    }
}

/// The plain twin of [`add_columns`]: one start at a time, every sum in memory.
#[cfg(test)]
fn add_columns_reference(acc: &mut [f64], x: &[f32], starts: &[usize]) {
    let c = acc.len();
    for &p in starts {
        acc.iter_mut().zip(&x[p..p + c]).for_each(|(d, &v)| *d += v as f64);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use core::arch::wasm32::*;

    /// The four f64 lanes of four widened floats.
    #[inline(always)]
    fn widen(v: v128) -> (v128, v128) {
        (f64x2_promote_low_f32x4(v), f64x2_promote_low_f32x4(i64x2_shuffle::<1, 1>(v, v)))
    }

    /// [`super::add_columns`] for the leading channels in blocks of eight (sums in registers over
    /// every start); returns how many channels it did.
    pub fn add_columns(acc: &mut [f64], x: &[f32], starts: &[usize]) -> usize {
        let mut j = 0;
        while j + 8 <= acc.len() {
            let a = &mut acc[j..j + 8];
            let mut r = [0, 2, 4, 6].map(|k| f64x2(a[k], a[k + 1]));
            for &p in starts {
                let px = &x[p + j..p + j + 8];
                // SAFETY: `px` holds 8 floats; wasm loads need no alignment.
                let (v, w) =
                    unsafe { (v128_load(px.as_ptr() as *const v128), v128_load(px[4..].as_ptr() as *const v128)) };
                let ((v0, v1), (w0, w1)) = (widen(v), widen(w));
                r = [f64x2_add(r[0], v0), f64x2_add(r[1], v1), f64x2_add(r[2], w0), f64x2_add(r[3], w1)];
            }
            for (k, v) in r.into_iter().enumerate() {
                (a[2 * k], a[2 * k + 1]) = (f64x2_extract_lane::<0>(v), f64x2_extract_lane::<1>(v));
            }
            j += 8;
        }
        j
    }
}

impl Observed {
    pub fn new(g: &Graph, histograms: bool) -> Observed {
        Observed {
            observers: (0..g.tensors.len()).map(|t| is_activation(g, t).then(|| Observer::new(histograms))).collect(),
            sums: vec![None; g.nodes.len()],
            row_max: vec![None; g.tensors.len()],
            outputs: Vec::new(),
            non_finite: None,
        }
    }

    /// The observations of a chunk whose data holds a value that is not finite (and nothing else).
    pub fn non_finite(sample: usize, element: usize, value: f32) -> Observed {
        Observed { non_finite: Some((sample, element, value)), ..Observed::default() }
    }

    /// Records one run of `rows` samples; with `means`, also the weighted layers' input sums.
    pub fn observe(&mut self, g: &Graph, it: &Interpreter, rows: usize, means: bool) {
        let softmax = softmax_inputs(g);
        for (t, obs) in self.observers.iter_mut().enumerate() {
            let (Some(o), Some(v)) = (obs.as_mut(), it.tensor(t).and_then(|b| b.as_f32())) else { continue };
            o.observe(v);
            if let Some((_, row)) = softmax[t] {
                for r in v.chunks_exact(row) {
                    let m = r.iter().copied().filter(|x| x.is_finite()).fold(f32::NEG_INFINITY, f32::max);
                    if m.is_finite() {
                        self.row_max[t].get_or_insert(RowMax::new(m)).add(m);
                    }
                }
            }
        }
        if means {
            self.add_means(g, it);
        }
        let outs: Vec<Vec<f32>> = (0..g.outputs.len()).map(|k| it.output_f32(k).unwrap_or_default()).collect();
        for r in 0..rows {
            self.outputs.push(outs.iter().map(|o| o[r * o.len() / rows..(r + 1) * o.len() / rows].to_vec()).collect());
        }
    }

    /// Input sums of every weighted layer fed by an activation.
    fn add_means(&mut self, g: &Graph, it: &Interpreter) {
        for (ni, n) in g.nodes.iter().enumerate() {
            let Some(layout) = ops::weight_layout(&n.op) else { continue };
            let (Some(x), Some(w)) = (n.input(0), n.input(layout.weights)) else { continue };
            let (Some(xv), Some(xf), Some(wf)) =
                (it.tensor(x).and_then(|b| b.as_f32()), it.tensor_info(x), it.tensor_info(w))
            else {
                continue;
            };
            if !is_activation(g, x) {
                continue;
            }
            match ops::conv_shape(&n.op, &xf.shape, &wf.shape) {
                Some(s) => {
                    let entry = self.sums[ni].get_or_insert_with(|| (vec![0.0; s.patch_len()], 0));
                    entry.1 += tap_sums(&s, xv, &mut entry.0);
                }
                None => {
                    let k = wf.shape.get(1).copied().unwrap_or(0);
                    let entry = self.sums[ni].get_or_insert_with(|| (vec![0.0; k], 0));
                    let rows: Vec<usize> = (0..xv.len() / k.max(1)).filter(|_| k > 0).map(|r| r * k).collect();
                    add_columns(&mut entry.0, xv, &rows);
                    entry.1 += rows.len() as u64;
                }
            }
        }
    }

    /// Appends a later chunk's observations.
    pub fn merge(&mut self, o: Observed) {
        for (a, b) in self.observers.iter_mut().zip(o.observers) {
            if let (Some(a), Some(b)) = (a.as_mut(), b) {
                a.merge(b);
            }
        }
        for (a, b) in self.sums.iter_mut().zip(o.sums) {
            match (a.as_mut(), b) {
                (Some((s, c)), Some((t, d))) => {
                    s.iter_mut().zip(t).for_each(|(x, y)| *x += y);
                    *c += d;
                }
                (None, b) => *a = b,
                _ => {}
            }
        }
        for (a, b) in self.row_max.iter_mut().zip(o.row_max) {
            match (a.as_mut(), b) {
                (Some(a), Some(b)) => a.merge(&b),
                (None, b) => *a = b,
                _ => {}
            }
        }
        self.outputs.extend(o.outputs);
    }

    /// The calibration of all chunks merged.
    pub fn finish(self, g: &Graph) -> Calibration {
        let input_means = self
            .sums
            .into_iter()
            .map(|s| s.filter(|(_, c)| *c > 0).map(|(v, c)| v.into_iter().map(|x| x / c as f64).collect()))
            .collect();
        let softmax_floor = softmax_inputs(g)
            .iter()
            .zip(&self.row_max)
            .map(|(s, m)| s.zip(m.as_ref()).map(|((beta, row), m)| softmax_floor(m, beta, row)))
            .collect();
        Calibration { observers: self.observers, input_means, outputs: self.outputs, softmax_floor, exact: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::geometry::{Window, Window2D};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The plain twin of [`tap_sums`]: build every im2col row and add it.
    fn tap_sums_by_rows(s: &ConvShape, input: &[f32], sums: &mut [f64]) -> u64 {
        let (pixels, k) = (s.batch * s.out_h() * s.out_w(), s.patch_len());
        let mut cols = vec![0.0; pixels * k];
        crate::kernels::im2col::im2col(s, input, 0.0, 0, pixels, &mut cols);
        for row in cols.chunks_exact(k) {
            sums.iter_mut().zip(row).for_each(|(d, &v)| *d += v as f64);
        }
        pixels as u64
    }

    #[test]
    fn tap_sums_are_the_im2col_column_sums_bit_for_bit() {
        let shapes =
            [(Padding::Same, 1, 1, 3), (Padding::Valid, 2, 1, 3), (Padding::Same, 2, 2, 3), (Padding::Same, 1, 1, 1)];
        // Channel counts on both sides of the SIMD widths (4 and 2 lanes) and their remainders.
        for ((pad, stride, dil, k), in_c) in shapes.into_iter().flat_map(|s| [1, 2, 3, 5, 8, 17].map(|c| (s, c))) {
            let win = Window2D {
                h: Window::new(pad, 7, k, stride, dil).unwrap(),
                w: Window::new(pad, 6, k, stride, dil).unwrap(),
            };
            let s = ConvShape { batch: 2, in_c, out_c: 1, win };
            // Values of very different magnitudes, so that the order of the additions shows.
            let x: Vec<f32> =
                (0..s.input_len()).map(|i| (i as f32 * 0.37).sin() * 10f32.powi(i as i32 % 9 - 4)).collect();
            let (mut fast, mut plain) = (vec![0.25; s.patch_len()], vec![0.25; s.patch_len()]);
            for _ in 0..2 {
                assert_eq!(tap_sums(&s, &x, &mut fast), tap_sums_by_rows(&s, &x, &mut plain));
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&plain), "{pad:?} stride {stride} dilation {dil} kernel {k} channels {in_c}");
        }
    }

    #[test]
    fn add_columns_adds_each_start_in_order_as_the_plain_loop_does() {
        // Channel counts around the blocks of 8 and their remainders; starts in any order,
        // repeated, overlapping, at the very end of the input.
        for c in [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 23, 33] {
            let x: Vec<f32> = (0..300).map(|i| (i as f32 * 0.71).cos() * 10f32.powi(i % 9 - 4)).collect();
            let last = x.len() - c;
            for starts in
                [vec![], vec![0], vec![5, 5, 0, last, 1, 77, 3], (0..40).map(|i| (i * 37) % (last + 1)).collect()]
            {
                let start: Vec<f64> = (0..c).map(|i| 1.0 / (i as f64 + 3.0)).collect();
                let (mut fast, mut plain) = (start.clone(), start.clone());
                add_columns(&mut fast, &x, &starts);
                add_columns_reference(&mut plain, &x, &starts);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&plain), "{c} channels, starts {starts:?}");
                assert!(starts.is_empty() || c == 0 || fast != start, "the sums took their terms");
            }
        }
    }
}
