//! The tasks quantization hands to workers: observe a chunk of calibration samples with the float
//! model, score a candidate on a chunk of held-out samples, measure per-layer SQNR on a chunk.

use serde::{Deserialize, Serialize};

use super::observe::Observed;
use super::report::SqnrAcc;
use crate::error::Result;
use crate::exec::{Buffer, Interpreter};
use crate::ir::TensorId;
use crate::parallel::{encode, ResourceId, Samples, Worker};

/// Float values per sample of the model's input.
fn per_sample(w: &mut Worker, model: ResourceId) -> Result<usize> {
    let m = w.model(model)?;
    let g = m.main();
    Ok(g.inputs.first().map_or(1, |&t| g.tensors[t].num_elements().max(1)))
}

/// The samples `range` of a data resource (only their bytes are decoded).
fn samples(w: &mut Worker, data: ResourceId, per: usize, range: (usize, usize)) -> Result<Vec<f32>> {
    w.float_rows(data, per, range)
}

/// Observe samples with the float model (calibration).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibrate {
    pub model: ResourceId,
    pub data: ResourceId,
    pub samples: (usize, usize),
    /// Also sum the weighted layers' inputs (for bias correction).
    pub means: bool,
    pub histograms: bool,
}

impl Calibrate {
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let m = w.model(self.model)?;
        let per = per_sample(w, self.model)?;
        let x = samples(w, self.data, per, self.samples)?;
        // The job's own data check: the first value that is not finite, in sample order.
        if let Some(pos) = crate::kernels::quant::first_non_finite(&x) {
            return Ok(encode(&Observed::non_finite(self.samples.0 + pos / per, pos % per, x[pos])));
        }
        let mut o = Observed::new(m.main(), self.histograms);
        w.forward_checked(self.model, x, per, |it, _, rows| {
            o.observe(m.main(), it, rows, self.means);
            Ok(())
        })?;
        Ok(encode(&o))
    }
}

/// Output SQNR of a quantized candidate against the float outputs recorded in calibration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Score {
    pub model: ResourceId,
    pub data: ResourceId,
    /// The float outputs of every calibration sample, `[sample][output]`.
    pub reference: ResourceId,
    pub samples: (usize, usize),
}

impl Score {
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let per = per_sample(w, self.model)?;
        let reference = w.value::<Vec<Vec<Vec<f32>>>>(self.reference)?;
        let mut acc: Vec<SqnrAcc> = Vec::new();
        let visit = |it: &Interpreter, first: usize, rows: usize| {
            let outs = it.outputs().len();
            acc.resize(outs, SqnrAcc::default());
            for (k, a) in acc.iter_mut().enumerate() {
                let q = it.output_f32(k).unwrap_or_default();
                let each = q.len() / rows.max(1);
                for r in 0..rows {
                    if let Some(f) = reference.get(self.samples.0 + first + r).and_then(|o| o.get(k)) {
                        a.add(f, &q[r * each..(r + 1) * each]);
                    }
                }
            }
            Ok(())
        };
        // Candidates share their input parameters: a worker quantizes each chunk once for all.
        let x = w.quantized_rows(self.model, self.data, per, self.samples)?;
        match x.as_deref() {
            Some(Buffer::I8(v)) => w.forward_input(self.model, Samples::I8(v), per, visit)?,
            Some(Buffer::U8(v)) => w.forward_input(self.model, Samples::U8(v), per, visit)?,
            _ => {
                let x = samples(w, self.data, per, self.samples)?;
                w.forward(self.model, &x, per, visit)?
            }
        }
        Ok(encode(&acc))
    }
}

/// Per-layer and per-output SQNR of the quantized model against the float one, side by side.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measure {
    pub float: ResourceId,
    pub quant: ResourceId,
    pub data: ResourceId,
    pub samples: (usize, usize),
    /// (float tensor, its quantized twin) per reported layer.
    pub pairs: Vec<Option<(TensorId, TensorId)>>,
}

/// The float values of `tensors` (and of every output) after each run of `rows` of the `total`
/// samples, concatenated over runs (dequantized straight into the slots, each sized for every
/// sample at its first run).
fn collect(
    it: &Interpreter,
    tensors: impl Iterator<Item = Option<TensorId>>,
    into: &mut [Vec<f32>],
    (rows, total): (usize, usize),
) {
    let outs = it.output_tensors().iter().map(|&t| Some(t));
    for (slot, t) in into.iter_mut().zip(tensors.chain(outs)) {
        if let Some(t) = t {
            if slot.capacity() == 0 {
                let per_row = it.tensor(t).map_or(0, |b| b.len() / rows.max(1));
                slot.reserve_exact(per_row.saturating_mul(total));
            }
            it.append_tensor_f32(t, slot);
        }
    }
}

impl Measure {
    /// Returns the layers' accumulators followed by the outputs'.
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let per = per_sample(w, self.float)?;
        let x = samples(w, self.data, per, self.samples)?;
        let outputs = w.model(self.float)?.main().outputs.len();
        let slots = self.pairs.len() + outputs;
        let (mut f, mut q) = (vec![Vec::new(); slots], vec![Vec::new(); slots]);
        // The quantized model first: it checks the values (they are finite when it accepts them),
        // and the float model then takes them as its input without a copy.
        let total = x.len() / per.max(1);
        w.forward(self.quant, &x, per, |it, _, rows| {
            collect(it, self.pairs.iter().map(|p| p.map(|p| p.1)), &mut q, (rows, total));
            Ok(())
        })?;
        w.forward_checked(self.float, x, per, |it, _, rows| {
            collect(it, self.pairs.iter().map(|p| p.map(|p| p.0)), &mut f, (rows, total));
            Ok(())
        })?;
        let acc: Vec<SqnrAcc> = f
            .iter()
            .zip(&q)
            .map(|(a, b)| {
                let mut s = SqnrAcc::default();
                if a.len() == b.len() {
                    s.add(a, b);
                }
                s
            })
            .collect();
        Ok(encode(&acc))
    }
}
