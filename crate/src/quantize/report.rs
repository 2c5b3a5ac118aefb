//! What quantization did, layer by layer, and what it cost.

use serde::{Deserialize, Serialize};

/// Signal-to-quantization-noise ratio in dB: `10 log10(Σ f² / Σ (f − q)²)`. Infinite when the two
/// agree exactly; `None` for an all-zero reference.
pub fn sqnr_db(reference: &[f32], approx: &[f32]) -> Option<f64> {
    let mut acc = SqnrAcc::default();
    acc.add(reference, approx);
    acc.db()
}

/// Running sums for an SQNR over many samples.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct SqnrAcc {
    pub signal: f64,
    pub noise: f64,
}

impl SqnrAcc {
    pub fn merge(&mut self, o: &SqnrAcc) {
        self.signal += o.signal;
        self.noise += o.noise;
    }

    /// Adds the squares of `reference` and of its differences from `approx`. Four running sums
    /// per figure (element `i` into sum `i % 4`, added together at the end): independent chains
    /// the compiler can put in vector lanes, where one sum waits for every addition before.
    pub fn add(&mut self, reference: &[f32], approx: &[f32]) {
        let n = reference.len().min(approx.len());
        let (f4, q4) = (reference[..n].chunks_exact(4), approx[..n].chunks_exact(4));
        let (f_tail, q_tail) = (f4.remainder(), q4.remainder());
        let (mut signal, mut noise) = ([0.0f64; 4], [0.0f64; 4]);
        for (f, q) in f4.zip(q4) {
            for l in 0..4 {
                let (f, q) = (f[l] as f64, q[l] as f64);
                signal[l] += f * f;
                noise[l] += (f - q) * (f - q);
            }
        }
        for (l, (&f, &q)) in f_tail.iter().zip(q_tail).enumerate() {
            let (f, q) = (f as f64, q as f64);
            signal[l] += f * f;
            noise[l] += (f - q) * (f - q);
        }
        self.signal += (signal[0] + signal[1]) + (signal[2] + signal[3]);
        self.noise += (noise[0] + noise[1]) + (noise[2] + noise[3]);
    }

    pub fn db(&self) -> Option<f64> {
        if self.signal == 0.0 {
            None
        } else if self.noise == 0.0 {
            Some(f64::INFINITY)
        } else {
            Some(10.0 * (self.signal / self.noise).log10())
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "LayerQuantReport"))]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    /// Index of the node in the quantized model.
    pub index: usize,
    pub op: String,
    /// Output tensor name.
    pub name: String,
    /// True when the operator stayed in float (with DEQUANTIZE/QUANTIZE around it).
    pub kept_float: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub reason: Option<String>,
    /// Calibrated real range of the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub range: Option<(f32, f32)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub output_scale: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(as = "Option<f64>", optional))]
    pub output_zero_point: Option<i64>,
    /// "per-channel", "per-tensor" or absent for operators without weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(as = "Option<super::Granularity>", optional))]
    pub weights: Option<&'static str>,
    /// Largest bias change bias correction made, in real units.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub bias_correction: Option<f32>,
    /// SQNR of this layer's output against the float model, in dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub sqnr_db: Option<f64>,
    /// The output tensor in the float model this layer replaces.
    #[serde(skip)]
    pub source_tensor: Option<usize>,
}

/// One configuration `auto` calibration tried.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "CalibrationCandidate"))]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub calibration: String,
    pub bias_correction: bool,
    /// Mean output SQNR over the scoring samples, in dB.
    pub output_sqnr_db: Option<f64>,
    pub chosen: bool,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct QuantReport {
    #[cfg_attr(test, ts(as = "super::Mode"))]
    pub mode: &'static str,
    #[cfg_attr(test, ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    #[cfg_attr(test, ts(as = "super::Granularity"))]
    pub granularity: &'static str,
    #[cfg_attr(test, ts(as = "super::IoType"))]
    pub io: &'static str,
    pub bias_correction: bool,
    pub calibration_samples: usize,
    pub report_samples: usize,
    /// Nodes folded into constants before quantizing.
    pub folded_nodes: usize,
    pub layers: Vec<LayerReport>,
    /// Per model output: SQNR of the quantized model's output against the float model's.
    pub output_sqnr_db: Vec<Option<f64>>,
    /// Operators left in float, with the reason.
    pub kept_float: Vec<String>,
    /// What `auto` calibration compared (empty for an explicit method).
    #[cfg_attr(test, ts(as = "Option<_>", optional))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    pub notes: Vec<String>,
    pub size_before: usize,
    pub size_after: usize,
    pub calibration_ms: f64,
    /// Building and scoring the candidates (with `auto`, it includes measuring the last one, which
    /// shares its round).
    pub rewrite_ms: f64,
    pub report_ms: f64,
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn sqnr_of_known_noise() {
        let f = [1.0f32, -1.0, 1.0, -1.0];
        let q = [1.1f32, -0.9, 0.9, -1.1];
        let db = sqnr_db(&f, &q).unwrap();
        assert!((db - 20.0).abs() < 1e-4, "{db}"); // signal 4, noise 0.04
        assert_eq!(sqnr_db(&f, &f), Some(f64::INFINITY));
        assert_eq!(sqnr_db(&[0.0], &[1.0]), None);
        let mut acc = SqnrAcc::default();
        acc.add(&f[..2], &q[..2]);
        acc.add(&f[2..], &q[2..]);
        assert!((acc.db().unwrap() - db).abs() < 1e-9);
    }
}
