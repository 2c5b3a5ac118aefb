//! Calibration: observe every float activation over the calibration data with bounded memory, then
//! choose each tensor's quantization range with one of four methods.
//!
//! Each tensor keeps its exact min/max and a 2048-bin histogram over a symmetric range `[-R, R]`.
//! `R` starts at the first sample's largest magnitude (rounded up to a power of two) and doubles
//! when a value falls outside, merging bin pairs, so the histogram never needs a second pass and
//! its size never grows, however many samples are observed.

use serde::{Deserialize, Serialize};

/// How a tensor's range is chosen from its observations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum CalibrationMethod {
    /// Tries min/max, percentile and MSE ranges without bias correction, then the winner with bias
    /// correction, and keeps the one whose quantized model tracks the float model best on held-out
    /// calibration samples (output SQNR). Min/max without bias correction is what the TF converter
    /// does, and another candidate must beat it by a margin, so this is never worse than the
    /// converter on that data.
    #[default]
    Auto,
    /// The observed minimum and maximum.
    MinMax,
    /// Clip to the given percentile of the value distribution (e.g. 99.99), per side.
    Percentile { percentile: f64 },
    /// The clipping range that minimises the KL divergence between the histogram and its 8-bit
    /// quantized version (TensorRT's method, applied to asymmetric int8 ranges).
    Entropy,
    /// The clipping range that minimises the expected squared quantization error.
    Mse,
}

impl CalibrationMethod {
    pub fn name(&self) -> String {
        match self {
            CalibrationMethod::Auto => "auto".into(),
            CalibrationMethod::MinMax => "minmax".into(),
            CalibrationMethod::Percentile { percentile } => format!("percentile({percentile})"),
            CalibrationMethod::Entropy => "entropy".into(),
            CalibrationMethod::Mse => "mse".into(),
        }
    }
}

pub const BINS: usize = 2048;

/// Streaming statistics of one tensor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Observer {
    pub min: f32,
    pub max: f32,
    pub count: u64,
    /// Half-width of the histogram's range; 0 before any non-zero value.
    pub range: f32,
    #[serde(with = "sparse")]
    pub hist: Vec<u64>,
    /// Non-finite values seen (skipped).
    pub non_finite: u64,
    /// Whether the histogram is kept (min/max calibration does not need it).
    pub histogram: bool,
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new(true)
    }
}

impl Observer {
    pub fn new(histogram: bool) -> Self {
        Observer {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            range: 0.0,
            hist: if histogram { vec![0; BINS] } else { Vec::new() },
            non_finite: 0,
            histogram,
        }
    }

    /// Adds a batch of values.
    pub fn observe(&mut self, values: &[f32]) {
        let (lo, hi, non_finite) = finite_min_max(values);
        self.non_finite += non_finite as u64;
        if lo > hi {
            return;
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        let finite = (values.len() - non_finite) as u64;
        self.count += finite;
        if !self.histogram {
            return;
        }
        let need = lo.abs().max(hi.abs());
        if need > 0.0 {
            if self.range == 0.0 {
                self.range = 2f32.powi(need.log2().ceil() as i32).max(f32::MIN_POSITIVE);
                while self.range < need {
                    self.range *= 2.0;
                }
            }
            while self.range < need {
                self.grow();
            }
        }
        let range = if self.range > 0.0 { self.range } else { 1.0 };
        let scale = BINS as f32 / (2.0 * range);
        let bin = |v: f32| (((v + range) * scale) as isize).clamp(0, BINS as isize - 1) as usize;
        if non_finite == 0 {
            histogram_into(values, range, scale, &mut self.hist);
        } else {
            for &v in values.iter().filter(|v| v.is_finite()) {
                self.hist[bin(v)] += 1;
            }
        }
    }

    /// Adds the statistics of values observed after this observer's (another chunk of samples):
    /// both histograms are brought to the wider range by the same doublings observation makes.
    pub fn merge(&mut self, mut other: Observer) {
        self.non_finite += other.non_finite;
        if other.count == 0 {
            return;
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count += other.count;
        if !(self.histogram && other.histogram) {
            return;
        }
        let target = self.range.max(other.range);
        for h in [&mut *self, &mut other] {
            if h.range == 0.0 {
                h.range = target; // only zeros so far: they sit in the middle bin at any range
            }
            while h.range < target {
                h.grow();
            }
        }
        self.hist.iter_mut().zip(&other.hist).for_each(|(a, b)| *a += b);
    }

    /// Doubles the range: bin pairs merge into the middle half of the histogram.
    fn grow(&mut self) {
        let mut h = vec![0u64; BINS];
        for (i, &c) in self.hist.iter().enumerate() {
            h[BINS / 4 + i / 2] += c;
        }
        self.hist = h;
        self.range *= 2.0;
    }

    fn edge(&self, i: usize) -> f32 {
        -self.range + 2.0 * self.range * i as f32 / BINS as f32
    }

    /// The range `[lo, hi]` (always containing 0) that `method` chooses.
    pub fn range_for(&self, method: CalibrationMethod) -> (f32, f32) {
        if self.count == 0 || self.min > self.max {
            return (0.0, 0.0);
        }
        let (lo, hi) = match method {
            _ if !self.histogram => (self.min, self.max),
            CalibrationMethod::MinMax | CalibrationMethod::Auto => (self.min, self.max),
            CalibrationMethod::Percentile { percentile } => self.percentile(percentile),
            CalibrationMethod::Entropy => self.entropy(),
            CalibrationMethod::Mse => self.mse(),
        };
        // Never wider than what was observed, and always including zero.
        (lo.max(self.min).min(0.0), hi.min(self.max).max(0.0))
    }

    fn percentile(&self, p: f64) -> (f32, f32) {
        let cut = ((100.0 - p.clamp(0.0, 100.0)) / 200.0 * self.count as f64).max(0.0);
        let mut acc = 0.0;
        let mut lo = self.min;
        for (i, &c) in self.hist.iter().enumerate() {
            acc += c as f64;
            if acc > cut {
                lo = self.edge(i);
                break;
            }
        }
        acc = 0.0;
        let mut hi = self.max;
        for (i, &c) in self.hist.iter().enumerate().rev() {
            acc += c as f64;
            if acc > cut {
                hi = self.edge(i + 1);
                break;
            }
        }
        (lo, hi)
    }

    /// The clipping range whose 8-bit quantization loses the least information. Each side shrinks
    /// independently from the observed range (a geometric grid of 24 steps per side, one step for a
    /// side at zero, as for ReLU outputs), so asymmetric int8 ranges keep all 255 levels; each
    /// window is scored by the KL divergence between the histogram inside it (outliers folded into
    /// the edge bins) and its 255-level quantized version.
    fn entropy(&self) -> (f32, f32) {
        const LEVELS: usize = 255;
        let bin = |x: f32| ((((x + self.range) / (2.0 * self.range)) * BINS as f32) as usize).min(BINS);
        let (lo0, hi0) = (self.min.min(0.0), self.max.max(0.0));
        let steps = |end: f32| -> Vec<f32> {
            if end == 0.0 {
                vec![0.0]
            } else {
                (0..24).map(|k| end * 0.85f32.powi(k)).collect()
            }
        };
        let mut best = (f64::INFINITY, (lo0, hi0));
        for &lo in &steps(lo0) {
            for &hi in &steps(hi0) {
                let (a, b) = (bin(lo), bin(hi));
                if b < a + LEVELS {
                    continue; // narrower than the quantization grid: nothing more to gain
                }
                let mut p: Vec<f64> = self.hist[a..b].iter().map(|&c| c as f64).collect();
                p[0] += self.hist[..a].iter().sum::<u64>() as f64;
                let last = p.len() - 1;
                p[last] += self.hist[b..].iter().sum::<u64>() as f64;
                let q = quantize_distribution(&self.hist[a..b], LEVELS);
                let kl = kl_divergence(&p, &q);
                if kl < best.0 {
                    best = (kl, (lo, hi));
                }
            }
        }
        best.1
    }

    /// The clipping range that minimises the expected squared error of 8-bit quantization on the
    /// histogram (clipping error outside the range, step²/12 inside). Each side is searched on its
    /// own grid (coordinate descent, two rounds), so one-sided outliers do not drag the other side.
    /// Each cost comes from prefix sums over the non-empty bins ([`MseCost`]), in O(log bins).
    fn mse(&self) -> (f32, f32) {
        let table = MseCost::new(&self.centers());
        self.mse_search(&|lo, hi| table.cost(lo, hi))
    }

    /// The MSE grid search with the cost function `cost(lo, hi)`.
    fn mse_search(&self, cost: &dyn Fn(f32, f32) -> f64) -> (f32, f32) {
        let (lo0, hi0) = (self.min.min(0.0), self.max.max(0.0));
        let grid = |end: f32| (0..100).map(move |k| end * (1.0 - k as f32 * 0.01));
        // The first point of least cost (as `min_by` picks it), each cost computed once.
        let least = |points: &mut dyn Iterator<Item = f32>, cost: &dyn Fn(f32) -> f64, or: f32| {
            let mut best: Option<(f32, f64)> = None;
            for x in points {
                let c = cost(x);
                if best.is_none_or(|(_, b)| c.total_cmp(&b).is_lt()) {
                    best = Some((x, c));
                }
            }
            best.map_or(or, |(x, _)| x)
        };
        // A side at zero (ReLU outputs) has a grid of zeros: every point costs the same, and the
        // first, zero itself, is kept without computing any.
        let search =
            |end: f32, cost: &dyn Fn(f32) -> f64| if end == 0.0 { end } else { least(&mut grid(end), cost, end) };
        let (mut lo, mut hi) = (lo0, hi0);
        for _ in 0..2 {
            hi = search(hi0, &|a| cost(lo, a));
            lo = search(lo0, &|a| cost(a, hi));
        }
        (lo, hi)
    }

    /// The centre and count of every non-empty histogram bin, in ascending order of centre (the
    /// range is a power of two, so the edges are exact).
    fn centers(&self) -> Vec<(f32, f64)> {
        self.hist
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| ((self.edge(i) + self.edge(i + 1)) / 2.0, c as f64))
            .collect()
    }
}

/// The expected squared error of 8-bit quantization to `[lo, hi]` of values at histogram bin
/// centres (see [`mse_cost`]) in O(log bins): the bins below `lo` and above `hi` are found by binary
/// search, and their clipping error `Σ c·(lo − x)²` comes from prefix sums of `c`, `c·d` and `c·d²`,
/// with `d` the distance from the lowest centre (from the highest for the sums above `hi`), so that
/// clipping a few outliers sums small terms. Equal to [`mse_cost`] up to f64 rounding.
struct MseCost {
    /// The centres, ascending.
    x: Vec<f32>,
    /// `below[i]`: the sums over centres `0..i` of `(c, c·d, c·d²)`, `d = x − x[0]`.
    below: Vec<[f64; 3]>,
    /// `above[i]`: the sums over centres `i..` of `(c, c·d, c·d²)`, `d = x − x[last]`.
    above: Vec<[f64; 3]>,
}

impl MseCost {
    fn new(centers: &[(f32, f64)]) -> MseCost {
        let x: Vec<f32> = centers.iter().map(|&(x, _)| x).collect();
        let moments = |origin: f32, c: &[(f32, f64)]| -> Vec<[f64; 3]> {
            let mut acc = [0.0; 3];
            let mut v = vec![acc];
            for &(x, n) in c {
                let d = x as f64 - origin as f64;
                acc = [acc[0] + n, acc[1] + n * d, acc[2] + n * d * d];
                v.push(acc);
            }
            v
        };
        let below = moments(x.first().copied().unwrap_or(0.0), centers);
        let rev: Vec<(f32, f64)> = centers.iter().rev().copied().collect();
        let mut above = moments(x.last().copied().unwrap_or(0.0), &rev);
        above.reverse();
        MseCost { x, below, above }
    }

    fn cost(&self, lo: f32, hi: f32) -> f64 {
        if hi - lo <= 0.0 {
            return f64::INFINITY;
        }
        let step2 = ((hi - lo) as f64 / 255.0).powi(2);
        let (a, b) = (self.x.partition_point(|&x| x < lo), self.x.partition_point(|&x| x <= hi));
        // Σ c·(t − x)² = C·e² − 2·e·Σc·d + Σc·d² with d = x − origin, e = t − origin.
        let clipped = |[c, cd, cd2]: [f64; 3], e: f64| (c * e * e - 2.0 * e * cd + cd2).max(0.0);
        let below = clipped(self.below[a], lo as f64 - self.x.first().map_or(0.0, |&x| x as f64));
        let above = clipped(self.above[b], hi as f64 - self.x.last().map_or(0.0, |&x| x as f64));
        let inside = self.below[self.x.len()][0] - self.below[a][0] - self.above[b][0];
        below + above + inside * (step2 / 12.0)
    }
}

/// The expected squared error of 8-bit quantization to `[lo, hi]` of values at `centers` (centre,
/// count): the clipping error outside the range, step²/12 inside. The plain twin of [`MseCost`].
#[cfg(test)]
fn mse_cost(centers: &[(f32, f64)], lo: f32, hi: f32) -> f64 {
    if hi - lo <= 0.0 {
        return f64::INFINITY;
    }
    let step2 = ((hi - lo) as f64 / 255.0).powi(2);
    centers
        .iter()
        .map(|&(x, c)| {
            let e = if x < lo {
                (lo - x) as f64
            } else if x > hi {
                (x - hi) as f64
            } else {
                0.0
            };
            c * if e > 0.0 { e * e } else { step2 / 12.0 }
        })
        .sum()
}

/// The histogram between workers: its length and its non-empty bins as (index, count). Most of
/// the 2048 bins of an activation are empty (a ReLU's outputs fill half at most), and decoding
/// every chunk's histograms is serial work between rounds.
mod sparse {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(hist: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let bins: Vec<(u16, u64)> =
            hist.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, &c)| (i as u16, c)).collect();
        (hist.len() as u32, bins).serialize(s)
    }

    /// Only the two lengths an observer has (none, or [`super::BINS`]), and bins within it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let (len, bins) = <(u32, Vec<(u16, u64)>)>::deserialize(d)?;
        if len != 0 && len as usize != super::BINS {
            return Err(D::Error::custom(format!("a histogram of {len} bins")));
        }
        let mut hist = vec![0; len as usize];
        for (i, c) in bins {
            *hist.get_mut(i as usize).ok_or_else(|| D::Error::custom(format!("histogram bin {i} of {len}")))? = c;
        }
        Ok(hist)
    }
}

/// Minimum and maximum of the finite values, and how many are not finite.
fn finite_min_max(values: &[f32]) -> (f32, f32, usize) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let (lo, hi, nan) = simd128::min_max(values);
        if lo.is_finite() && hi.is_finite() {
            return (lo, hi, nan);
        }
    }
    let (mut lo, mut hi, mut bad) = (f32::INFINITY, f32::NEG_INFINITY, 0);
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        } else {
            bad += 1;
        }
    }
    (lo, hi, bad)
}

/// Adds finite `values` to `hist`: bin `⌊(v + range)·scale⌋`, clamped to the histogram.
fn histogram_into(values: &[f32], range: f32, scale: f32, hist: &mut [u64]) {
    let last = hist.len() - 1;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let values = {
        let head = values.len() / 4 * 4;
        simd128::histogram(&values[..head], range, scale, hist);
        &values[head..]
    };
    for &v in values {
        hist[(((v + range) * scale) as isize).clamp(0, last as isize) as usize] += 1;
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    //! wasm simd128 versions of the observer's two passes over each activation tensor.
    use core::arch::wasm32::*;

    fn lanes(v: v128) -> [f32; 4] {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
    }

    /// Min and max ignoring NaN (`pmin`/`pmax` keep the accumulator when the value is NaN), and
    /// the NaN count. Infinities are included; the caller falls back when the result is infinite.
    pub fn min_max(values: &[f32]) -> (f32, f32, usize) {
        let (mut lo, mut hi, mut nan) = (f32x4_splat(f32::INFINITY), f32x4_splat(f32::NEG_INFINITY), i32x4_splat(0));
        let chunks = values.chunks_exact(4);
        let tail = chunks.remainder();
        for c in chunks {
            // SAFETY: `c` holds exactly 4 floats.
            let v = unsafe { v128_load(c.as_ptr() as *const v128) };
            lo = f32x4_pmin(lo, v);
            hi = f32x4_pmax(hi, v);
            nan = i32x4_sub(nan, f32x4_ne(v, v));
        }
        let mut l = lanes(lo).into_iter().fold(f32::INFINITY, f32::min);
        let mut h = lanes(hi).into_iter().fold(f32::NEG_INFINITY, f32::max);
        let mut count = (0..4).map(|k| i32x4_extract_lane_dyn(nan, k)).sum::<i32>() as usize;
        for &v in tail {
            if v.is_nan() {
                count += 1;
            } else {
                l = l.min(v);
                h = h.max(v);
            }
        }
        (l, h, count)
    }

    fn i32x4_extract_lane_dyn(v: v128, k: usize) -> i32 {
        match k {
            0 => i32x4_extract_lane::<0>(v),
            1 => i32x4_extract_lane::<1>(v),
            2 => i32x4_extract_lane::<2>(v),
            _ => i32x4_extract_lane::<3>(v),
        }
    }

    /// Values from which [`histogram`] counts in four lane copies: below, zeroing and adding the
    /// copies would cost more than the waits they save.
    const LANE_COPIES_FROM: usize = 16 * 1024;

    /// Bins four values at a time; `values.len()` is a multiple of 4 and every value is finite.
    /// Long inputs count each lane into its own copy of the histogram (interleaved: bin `b` of
    /// lane `l` at `4b + l`, 32-bit), added into `hist` at the end: a run of equal values (a
    /// ReLU's zeros, a RELU6's sixes) then makes four independent chains of increments instead of
    /// one, whose every increment waits for the previous one's store.
    pub fn histogram(values: &[f32], range: f32, scale: f32, hist: &mut [u64]) {
        let (r, s) = (f32x4_splat(range), f32x4_splat(scale));
        let (zero, last) = (i32x4_splat(0), i32x4_splat(hist.len() as i32 - 1));
        let bins = |c: &[f32]| {
            // SAFETY: `c` holds exactly 4 floats.
            let v = unsafe { v128_load(c.as_ptr() as *const v128) };
            i32x4_min(i32x4_max(i32x4_trunc_sat_f32x4(f32x4_mul(f32x4_add(v, r), s)), zero), last)
        };
        if values.len() < LANE_COPIES_FROM {
            for c in values.chunks_exact(4) {
                let b = bins(c);
                hist[i32x4_extract_lane::<0>(b) as usize] += 1;
                hist[i32x4_extract_lane::<1>(b) as usize] += 1;
                hist[i32x4_extract_lane::<2>(b) as usize] += 1;
                hist[i32x4_extract_lane::<3>(b) as usize] += 1;
            }
            return;
        }
        // Fewer than 2^32 values per lane: wasm32 memory holds at most 2^30 floats.
        let mut copies = vec![0u32; 4 * hist.len()];
        let lane = i32x4(0, 1, 2, 3);
        for c in values.chunks_exact(4) {
            let at = i32x4_add(i32x4_shl(bins(c), 2), lane);
            copies[i32x4_extract_lane::<0>(at) as usize] += 1;
            copies[i32x4_extract_lane::<1>(at) as usize] += 1;
            copies[i32x4_extract_lane::<2>(at) as usize] += 1;
            copies[i32x4_extract_lane::<3>(at) as usize] += 1;
        }
        for (h, c) in hist.iter_mut().zip(copies.chunks_exact(4)) {
            *h += c.iter().map(|&n| n as u64).sum::<u64>();
        }
    }
}

/// Merges `hist` into `levels` groups and spreads each group's mass evenly over its non-empty bins.
fn quantize_distribution(hist: &[u64], levels: usize) -> Vec<f64> {
    let n = hist.len();
    let mut q = vec![0.0; n];
    for l in 0..levels {
        let (a, b) = (l * n / levels, ((l + 1) * n / levels).max(l * n / levels + 1).min(n));
        let total: f64 = hist[a..b].iter().map(|&c| c as f64).sum();
        let nonzero = hist[a..b].iter().filter(|&&c| c > 0).count();
        if nonzero > 0 {
            for i in a..b {
                if hist[i] > 0 {
                    q[i] = total / nonzero as f64;
                }
            }
        }
    }
    q
}

/// KL(P || Q) of two unnormalized distributions, skipping bins where P is zero; a bin where P has
/// mass and Q none costs as if Q held a tiny epsilon.
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if sp == 0.0 || sq == 0.0 {
        return f64::INFINITY;
    }
    let mut kl = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if a > 0.0 {
            let pa = a / sp;
            let qb = (b / sq).max(1e-12);
            kl += pa * (pa / qb).ln();
        }
    }
    kl
}

pub use crate::kernels::quant::int8_params;

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::Rng;

    #[test]
    fn non_finite_values_are_counted_and_skipped() {
        let mut rng = crate::rng::Rng::new(5);
        let mut v: Vec<f32> = (0..1003).map(|_| rng.normal() * 3.0).collect();
        let (lo, hi) = v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
        let mut clean = Observer::default();
        clean.observe(&v);
        assert_eq!((clean.min, clean.max, clean.count, clean.non_finite), (lo, hi, 1003, 0));
        assert_eq!(clean.hist.iter().sum::<u64>(), 1003);
        // The same values with NaN and infinities among them (the vector path's fallbacks).
        v[17] = f32::NAN;
        v[500] = f32::INFINITY;
        v[1002] = f32::NEG_INFINITY;
        let mut dirty = Observer::default();
        dirty.observe(&v);
        assert_eq!((dirty.count, dirty.non_finite), (1000, 3));
        assert_eq!(dirty.hist.iter().sum::<u64>(), 1000);
        assert!(dirty.min.is_finite() && dirty.max.is_finite() && dirty.min >= lo && dirty.max <= hi);
        let mut nan_only = Observer::default();
        nan_only.observe(&[f32::NAN; 9]);
        assert_eq!((nan_only.count, nan_only.non_finite), (0, 9));
    }

    #[test]
    fn histogram_grows_without_losing_counts() {
        let mut o = Observer::default();
        o.observe(&[0.1, -0.2, 0.3]);
        let r0 = o.range;
        o.observe(&[5.0, -7.5]);
        assert!(o.range >= 7.5 && o.range > r0);
        assert_eq!(o.hist.iter().sum::<u64>(), 5);
        assert_eq!((o.min, o.max), (-7.5, 5.0));
        assert_eq!(o.range_for(CalibrationMethod::MinMax), (-7.5, 5.0));
    }

    #[test]
    fn long_inputs_bin_every_value_as_a_plain_loop_does() {
        // Long enough for the wasm build's lane copies, with runs of zeros and of one other value
        // (a RELU6's output) and values on both sides and at the ends of the range.
        let mut rng = Rng::new(7);
        let values: Vec<f32> = (0..40_003)
            .map(|i| match i % 7 {
                0..=2 => 0.0,
                3 => 6.0,
                _ => rng.uniform() * 12.0 - 6.0,
            })
            .collect();
        let mut o = Observer::default();
        o.observe(&values);
        let scale = BINS as f32 / (2.0 * o.range);
        let mut want = vec![0u64; BINS];
        for &v in &values {
            want[(((v + o.range) * scale) as isize).clamp(0, BINS as isize - 1) as usize] += 1;
        }
        assert_eq!(o.hist, want);
    }

    /// The plain twin of [`Observer::observe`]: finite min and max, then each finite value binned
    /// on its own (after growing the range as observation does).
    fn observe_plain(o: &mut Observer, values: &[f32]) {
        let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        o.non_finite += (values.len() - finite.len()) as u64;
        let Some(&first) = finite.first() else { return };
        let (lo, hi) = finite.iter().fold((first, first), |(l, h), &v| (l.min(v), h.max(v)));
        (o.min, o.max, o.count) = (o.min.min(lo), o.max.max(hi), o.count + finite.len() as u64);
        let need = lo.abs().max(hi.abs());
        if need > 0.0 && o.range == 0.0 {
            o.range = 2f32.powi(need.log2().ceil() as i32).max(f32::MIN_POSITIVE);
            while o.range < need {
                o.range *= 2.0;
            }
        }
        while o.range < need {
            o.grow();
        }
        let range = if o.range > 0.0 { o.range } else { 1.0 };
        let scale = BINS as f32 / (2.0 * range);
        for v in finite {
            o.hist[(((v + range) * scale) as isize).clamp(0, BINS as isize - 1) as usize] += 1;
        }
    }

    /// Batches of generated values: ReLU-like runs of zeros (and negative zeros), RELU6's sixes,
    /// values on bin edges and just beside them, at ±range, NaN and infinities, values that grow
    /// the range; lengths around the vector width and the lane-copies threshold.
    fn observe_batches() -> Vec<Vec<f32>> {
        let mut rng = Rng::new(13);
        let lens = [0, 1, 3, 4, 5, 17, 1000, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 3, 40_003];
        let mut out = Vec::new();
        let mut range = 2.0f32;
        for (k, &n) in lens.iter().cycle().take(44).enumerate() {
            if k % 5 == 4 {
                range *= 2.0; // values beyond the range reached so far: it grows
            }
            let edge = |i: u32| -range + 2.0 * range * (i % (BINS as u32 + 1)) as f32 / BINS as f32;
            let v: Vec<f32> = (0..n)
                .map(|i| match (i * 7 + k) % 13 {
                    0..=3 => 0.0,
                    4 => -0.0,
                    5 => 6.0f32.min(range),
                    6 => edge(rng.next_u64() as u32),
                    7 => f32::from_bits(edge(rng.next_u64() as u32).to_bits() + 1),
                    8 => [range, -range, range * 0.999_999_9, 1e-40][i % 4],
                    _ => (rng.uniform() * 2.0 - 1.0) * range,
                })
                .collect();
            out.push(v);
        }
        let mut bad = out[10].clone(); // a long batch with NaN and infinities in it
        (bad[0], bad[4099], bad[40_002]) = (f32::NAN, f32::INFINITY, f32::NEG_INFINITY);
        out.insert(20, bad);
        out.insert(30, vec![f32::NAN, 1.0, 2.0, -0.5, f32::NAN]);
        out
    }

    #[test]
    fn observation_counts_what_the_plain_twin_counts() {
        let (mut fast, mut plain) = (Observer::default(), Observer::default());
        for (k, v) in observe_batches().iter().enumerate() {
            fast.observe(v);
            observe_plain(&mut plain, v);
            let stats = |o: &Observer| (o.min, o.max, o.count, o.non_finite, o.range);
            assert_eq!(stats(&fast), stats(&plain), "batch {k}");
            assert!(fast.hist == plain.hist, "batch {k}: histograms differ");
        }
        assert!(fast.non_finite == 5 && fast.range >= 2f32.powi(9), "{} {}", fast.non_finite, fast.range);
        assert_eq!(fast.hist.iter().sum::<u64>(), fast.count);
    }

    #[test]
    fn clipping_methods_cut_outliers() {
        let mut rng = Rng::new(1);
        let mut o = Observer::default();
        let mut v: Vec<f32> = (0..200_000).map(|_| rng.normal()).collect();
        v.push(40.0); // one outlier
        o.observe(&v);
        let (_, mm) = o.range_for(CalibrationMethod::MinMax);
        assert_eq!(mm, 40.0);
        for m in [CalibrationMethod::Percentile { percentile: 99.99 }, CalibrationMethod::Entropy] {
            let (lo, hi) = o.range_for(m);
            // The histogram spans [-64, 64] in 1/16 steps, so a 255-level window is at least 16 wide.
            assert!(hi < 20.0 && hi > 2.0, "{m:?}: {hi}");
            assert!(lo > -16.0 && lo < -2.0, "{m:?}: {lo}");
        }
        // MSE weighs the one far outlier's squared error against everyone's rounding error: it
        // clips part of the way, and leaves the side without outliers alone.
        let (lo, hi) = o.range_for(CalibrationMethod::Mse);
        assert!(hi < 39.0 && hi > 10.0, "mse: {hi}");
        assert!(lo < -3.0, "mse: {lo}");
    }

    /// The plain twin of the MSE search: `min_by` over each grid (every cost computed twice), each
    /// cost a pass over every non-empty bin ([`mse_cost`]).
    fn mse_by_min_by(o: &Observer) -> (f32, f32) {
        let centers = o.centers();
        let cost = |lo: f32, hi: f32| mse_cost(&centers, lo, hi);
        let (lo0, hi0) = (o.min.min(0.0), o.max.max(0.0));
        let grid = |end: f32| (0..100).map(move |k| end * (1.0 - k as f32 * 0.01));
        let (mut lo, mut hi) = (lo0, hi0);
        for _ in 0..2 {
            hi = grid(hi0).min_by(|&a, &b| cost(lo, a).total_cmp(&cost(lo, b))).unwrap_or(hi0);
            lo = grid(lo0).min_by(|&a, &b| cost(a, hi).total_cmp(&cost(b, hi))).unwrap_or(lo0);
        }
        (lo, hi)
    }

    /// Observers of generated data: normal with outliers on both sides, ReLU-like, RELU6-like,
    /// two-sided integers, all zeros, one value only (a single non-empty bin), one-sided negative,
    /// and ranges from 1e-3 to 1e3.
    fn mse_cases() -> Vec<Observer> {
        let mut rng = Rng::new(7);
        let mut cases: Vec<Vec<f32>> = vec![
            (0..50_000).map(|_| rng.normal()).chain([40.0, -3.0]).collect(),
            (0..50_000).map(|_| rng.normal().max(0.0) * 6.0).collect(),
            (0..50_000).map(|_| (rng.normal() * 3.0).clamp(0.0, 6.0)).collect(),
            (0..20_000).map(|i| (i % 7) as f32 - 2.0).collect(),
            vec![0.0; 100],
            vec![1.7; 333],
            vec![-0.25; 10],
            (0..20_000).map(|_| -rng.normal().abs() * 3.0).collect(),
            (0..20_000).map(|_| rng.normal().abs().min(6.0)).chain([-0.0]).collect(),
        ];
        for scale in [1e-3f32, 0.1, 10.0, 1e3] {
            let far = rng.uniform() * 30.0 * scale;
            cases.push((0..30_000).map(|_| rng.normal() * scale).chain([far, -far / 3.0]).collect());
        }
        cases
            .iter()
            .map(|v| {
                let mut o = Observer::default();
                o.observe(v);
                o
            })
            .collect()
    }

    /// Histograms of random sparse counts (up to 10^9 per bin) over random power-of-two ranges.
    fn random_histograms() -> Vec<Observer> {
        let mut rng = Rng::new(11);
        (0..40)
            .map(|k| {
                let mut o = Observer { range: 2f32.powi(k % 9 - 4), ..Observer::default() };
                let fill = [0.002, 0.05, 0.5, 1.0][k as usize % 4];
                for c in o.hist.iter_mut() {
                    if rng.uniform() < fill {
                        *c = (rng.uniform() as f64).powi(6).mul_add(1e9, 1.0) as u64;
                    }
                }
                let used: Vec<usize> = (0..BINS).filter(|&i| o.hist[i] > 0).collect();
                let (first, last) =
                    (used.first().copied().unwrap_or(BINS / 2), used.last().copied().unwrap_or(BINS / 2));
                (o.min, o.max) = (o.edge(first), o.edge(last + 1));
                o.count = o.hist.iter().sum();
                o
            })
            .collect()
    }

    /// [`mse_cost`] with the clipping distances in f64 (the plain twin rounds them to f32 first).
    fn mse_cost_f64(centers: &[(f32, f64)], lo: f32, hi: f32) -> f64 {
        if hi - lo <= 0.0 {
            return f64::INFINITY;
        }
        let step2 = ((hi - lo) as f64 / 255.0).powi(2);
        let e = |x: f32| (lo as f64 - x as f64).max(x as f64 - hi as f64).max(0.0);
        centers.iter().map(|&(x, c)| c * if e(x) > 0.0 { e(x) * e(x) } else { step2 / 12.0 }).sum()
    }

    /// The prefix-sum costs are the f64 costs to 1e-9 (and the plain twin's, whose distances are
    /// rounded to f32, to 1e-6).
    #[test]
    fn mse_prefix_costs_match_the_plain_costs() {
        let mut rng = Rng::new(3);
        for o in mse_cases().iter().chain(&random_histograms()) {
            let centers = o.centers();
            let table = MseCost::new(&centers);
            let (lo0, hi0) = (o.min.min(0.0), o.max.max(0.0));
            let points = (0..300).map(|_| (lo0 * rng.uniform(), hi0 * rng.uniform()));
            // The ends, and an empty range too.
            for (lo, hi) in points.chain([(lo0, hi0), (lo0, 0.0), (0.0, hi0), (0.0, 0.0)]) {
                let (fast, exact, plain) =
                    (table.cost(lo, hi), mse_cost_f64(&centers, lo, hi), mse_cost(&centers, lo, hi));
                let near = |a: f64, b: f64, tol: f64| a == b || (a - b).abs() <= tol * b;
                assert!(near(fast, exact, 1e-9), "[{lo}, {hi}]: {fast} vs {exact} in f64");
                assert!(near(fast, plain, 1e-6), "[{lo}, {hi}]: {fast} vs {plain}");
            }
        }
    }

    #[test]
    fn the_mse_search_picks_what_the_plain_search_picks_or_a_tie() {
        let (mut same, mut all) = (0, 0);
        for (k, o) in mse_cases().iter().chain(&random_histograms()).enumerate() {
            let (a, b) = (o.mse(), mse_by_min_by(o));
            all += 1;
            if (a.0.to_bits(), a.1.to_bits()) == (b.0.to_bits(), b.1.to_bits()) {
                same += 1;
                continue;
            }
            // A near-tie: the fast pick costs what the plain one does, to 1e-9, in the plain cost.
            let centers = o.centers();
            let (ca, cb) = (mse_cost(&centers, a.0, a.1), mse_cost(&centers, b.0, b.1));
            assert!(ca <= cb * (1.0 + 1e-9), "case {k}: {a:?} costs {ca}, {b:?} costs {cb}");
        }
        // Ties are rare: nearly every case picks the very same point.
        assert!(same + 2 >= all, "{same} of {all} the same");
    }

    #[test]
    fn relu_outputs_keep_zero_as_minimum() {
        let mut o = Observer::default();
        o.observe(&[0.0, 0.5, 1.0, 2.0, 0.0]);
        for m in [CalibrationMethod::MinMax, CalibrationMethod::Entropy, CalibrationMethod::Mse] {
            assert_eq!(o.range_for(m).0, 0.0);
        }
        assert_eq!(int8_params(0.0, 2.55), (2.55 / 255.0, -128));
        let (s, zp) = int8_params(-1.0, 1.0);
        assert!((s - 2.0 / 255.0).abs() < 1e-9);
        assert_eq!(zp, 0); // both ends are equally far: the max end wins, 127 - 127.5 rounds to 0
    }

    /// Observers cross between workers with their histograms sparse: they come back equal, and a
    /// histogram of another length or with a bin out of range is refused.
    #[test]
    fn observers_cross_between_workers_unchanged_and_malformed_histograms_are_refused() {
        use crate::parallel::{decode, encode};
        let mut o = Observer::new(true);
        o.observe(&[0.0, 0.0, 1.5, -3.0, 7.25, f32::NAN, 1e-3]);
        let mut empty = Observer::new(true);
        empty.observe(&[0.0]);
        for o in [o, empty, Observer::new(false)] {
            let back: Observer = decode(&encode(&o), "observer").unwrap();
            assert_eq!(
                (back.hist, back.min.to_bits(), back.count, back.range),
                (o.hist, o.min.to_bits(), o.count, o.range)
            );
        }
        let bad = |len: u32, bins: Vec<(u16, u64)>| {
            let mut b = encode(&(1.0f32, 2.0f32, 3u64, 4.0f32));
            b.extend(encode(&(len, bins)));
            b.extend(encode(&(0u64, true)));
            decode::<Observer>(&b, "observer").map(|_| ())
        };
        assert!(bad(BINS as u32, vec![(3, 9)]).is_ok(), "the hand-made encoding is an observer's");
        assert!(bad(5, vec![]).is_err() && bad(BINS as u32, vec![(BINS as u16, 1)]).is_err());
    }
}
