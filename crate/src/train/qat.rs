//! Quantization-aware training: the float model with a FAKE_QUANT node after every tensor the int8
//! model gives its own parameters (ranges started from static quantization, then moving
//! averages), weights fake-quantized per output channel in every step, gradients passed straight
//! through; the result is exported by the same rewrite as static quantization, with the learned
//! ranges exactly, so the int8 model computes what training saw. Static quantization calibrates
//! on the user's calibration data when given (so training starts from the model `quantize` gives),
//! otherwise on the first 200 training samples.

use super::{Kept, TrainJob, TrainMetrics, TrainOptions, TrainReport};
use crate::error::{Error, Result};
use crate::ir::{DType, Model, Node, Op, Tensor, TensorData, TensorId};
use crate::npy::{NpyArray, NpyData};
use crate::ops::{spec, Int8Rule};
use crate::parallel::{Job, Round};
use crate::quantize::{QuantReport, QuantizeJob, QuantizeOptions};

/// A fake-quant node: its input, its range tensors, initial range, and whether the range is fixed.
pub type FakeQuantNode = ((TensorId, TensorId, TensorId), (f32, f32), bool);

/// The range a fixed int8 output (SOFTMAX, LOGISTIC, TANH) represents.
fn fixed_range(scale: f32, zero_point: i64) -> (f32, f32) {
    ((-128 - zero_point) as f32 * scale, (127 - zero_point) as f32 * scale)
}

/// Which tensors of `m` get a fake-quant node, with their range and whether it is fixed: the
/// model's input and the outputs of operators whose int8 form has its own output parameters.
fn quantized_tensors(m: &Model, ranges: &[Option<(f32, f32)>]) -> Vec<(TensorId, (f32, f32), bool)> {
    let g = m.main();
    let readers = g.consumers();
    let mut out: Vec<(TensorId, (f32, f32), bool)> =
        g.inputs.iter().filter_map(|&t| ranges.get(t).copied().flatten().map(|r| (t, r, false))).collect();
    for n in &g.nodes {
        let Some(o) = n.output() else { continue };
        // A tensor read by nothing but the graph's outputs stays float: the loss reads it (and
        // needs SOFTMAX's or LOGISTIC's own output to seed the gradient at their input).
        if g.tensors[o].dtype != DType::F32 || readers[o].is_empty() {
            continue;
        }
        match spec(&n.op).int8() {
            Int8Rule::Fixed { scale, zero_point } => out.push((o, fixed_range(scale, zero_point), true)),
            Int8Rule::Weighted | Int8Rule::Calibrated | Int8Rule::SharedWithInputs => {
                if let Some(r) = ranges.get(o).copied().flatten() {
                    out.push((o, r, false));
                }
            }
            _ => {}
        }
    }
    out
}

fn scalar(g: &mut crate::ir::Graph, name: String, v: f32) -> TensorId {
    let data = TensorData::from_f32(&[1], vec![v]).unwrap_or(TensorData::Raw(Vec::new()));
    g.add_tensor(Tensor::constant(name, DType::F32, vec![1], data))
}

/// The training graph: `m` with a FAKE_QUANT after each quantized tensor, its readers rewired to
/// read the fake-quantized value. Tensor ids of `m` are kept (new tensors are appended).
pub fn insert_fake_quant(m: &Model, ranges: &[Option<(f32, f32)>]) -> Result<(Model, Vec<FakeQuantNode>)> {
    let targets = quantized_tensors(m, ranges);
    if targets.is_empty() {
        return Err(Error::argument("no tensor of the model has a quantization range"));
    }
    let mut out = m.clone();
    let g = out.main_mut();
    let mut replace: Vec<Option<TensorId>> = vec![None; g.tensors.len()];
    let mut nodes_after: Vec<Vec<Node>> = vec![Vec::new(); g.nodes.len() + 1];
    let mut list = Vec::new();
    let producer = g.producers();
    for (t, (lo, hi), fixed) in targets {
        let name = g.tensors[t].name.clone();
        let mut q = Tensor::new(format!("{name}/fake_quant"), DType::F32, g.tensors[t].shape.clone());
        q.shape_signature = g.tensors[t].shape_signature.clone();
        let q = g.add_tensor(q);
        let (min, max) =
            (scalar(g, format!("{name}/fake_quant/min"), lo), scalar(g, format!("{name}/fake_quant/max"), hi));
        replace.resize(g.tensors.len(), None);
        replace[t] = Some(q);
        let at = producer.get(t).copied().flatten().map_or(0, |p| p + 1);
        nodes_after[at].push(Node::new(Op::FakeQuant, vec![Some(t), Some(min), Some(max)], vec![q]));
        list.push(((t, min, max), (lo, hi), fixed));
    }
    let old = std::mem::take(&mut g.nodes);
    let mut nodes: Vec<Node> = nodes_after[0].drain(..).collect();
    for (i, mut n) in old.into_iter().enumerate() {
        for t in n.inputs.iter_mut().flatten() {
            if let Some(r) = replace.get(*t).copied().flatten() {
                *t = r;
            }
        }
        nodes.push(n);
        nodes.append(&mut nodes_after[i + 1]);
    }
    g.nodes = nodes;
    out.validate()?;
    Ok((out, list))
}

/// Starts training from static quantization's int8 model exactly: each weighted layer's float bias
/// becomes the int8 model's bias (bias correction, when static quantization chose it, shifts it by
/// the mean error weight rounding causes), so the fake-quantized start computes what the PTQ
/// model does, and the export of untrained weights is that model again. Layers without a float
/// bias, or whose int8 bias cannot be matched, keep theirs.
pub fn start_biases(float: &mut Model, int8: &Model, report: &QuantReport) {
    let producer = float.main().producers();
    let q = int8.main();
    for l in report.layers.iter().filter(|l| l.bias_correction.is_some()) {
        let Some(fnode) = l.source_tensor.and_then(|t| producer.get(t).copied().flatten()) else { continue };
        let Some(b) = float.main().nodes[fnode].input(2) else { continue };
        let Some(values) = q.nodes.get(l.index).and_then(|n| n.input(2)).and_then(|t| dequantized_bias(&q.tensors[t]))
        else {
            continue;
        };
        let t = &mut float.main_mut().tensors[b];
        if t.shape.iter().product::<usize>() == values.len() && t.data.as_ref().and_then(TensorData::as_f32).is_some() {
            t.data = TensorData::from_f32(&t.shape.clone(), values);
        }
    }
}

/// The real values of an int32 bias with per-tensor or per-channel scales (zero points 0).
fn dequantized_bias(t: &Tensor) -> Option<Vec<f32>> {
    let v = t.data.as_ref()?.as_i32()?;
    let scales = &t.quant.as_ref()?.scale;
    if scales.is_empty() || (scales.len() != 1 && scales.len() != v.len()) {
        return None;
    }
    Some(v.iter().enumerate().map(|(i, &b)| b as f32 * scales[if scales.len() == 1 { 0 } else { i }]).collect())
}

/// Quantization-aware training as one job: static quantization to start the ranges, training with
/// fake quantization, then the int8 export. With a validation split, the result is never worse on
/// the validation samples than the static model it started from: when no epoch beats it (by
/// accuracy, then loss), that model is returned exactly ([`Kept::Start`]).
pub struct QatJob {
    model: Model,
    x: NpyArray,
    y: NpyArray,
    opts: TrainOptions,
    qopts: QuantizeOptions,
    ptq: Option<QuantizeJob>,
    /// The static int8 model training starts from, and its report.
    start: Option<(Model, QuantReport)>,
    train: Option<TrainJob>,
}

/// Training samples static quantization calibrates on when no calibration data is given.
pub const CALIBRATION: usize = 200;

/// Where quantization-aware training's static quantization calibrates.
pub enum Calibration<'a> {
    /// The first [`CALIBRATION`] training samples.
    TrainingSamples,
    /// The user's calibration data (what `quantize` alone would calibrate on).
    Data(&'a NpyArray),
    /// The same, as a `.npy` file.
    Npy(Vec<u8>),
}

impl QatJob {
    /// Quantization-aware training of `model` on `x` against `y`; static quantization (with
    /// `qopts`, its calibration method included) calibrates on `calibration`.
    pub fn new(
        model: &Model,
        x: &NpyArray,
        y: &NpyArray,
        calibration: Calibration,
        opts: &TrainOptions,
        qopts: &QuantizeOptions,
    ) -> Result<QatJob> {
        opts.check()?;
        let ptq = match calibration {
            Calibration::TrainingSamples => crate::quantize::quantize_job(model, &first_samples(x)?, qopts)?,
            Calibration::Data(c) => crate::quantize::quantize_job(model, c, qopts)?,
            Calibration::Npy(bytes) => crate::quantize::quantize_job_npy(model, bytes, qopts)?,
        };
        Ok(QatJob {
            model: model.clone(),
            x: x.clone(),
            y: y.clone(),
            opts: opts.clone(),
            qopts: qopts.clone(),
            ptq: Some(ptq),
            start: None,
            train: None,
        })
    }

    /// The live training figures, once training has started.
    pub fn metrics(&self) -> Option<TrainMetrics> {
        self.train.as_ref().map(TrainJob::metrics)
    }

    pub fn stop(&mut self, why: &str) {
        if let Some(t) = self.train.as_mut() {
            t.stop(why);
        }
    }

    /// Static quantization is done: build the training graph from its ranges and start training.
    fn start_training(&mut self) -> Result<()> {
        let ptq = self.ptq.take().ok_or_else(|| Error::argument("no static quantization"))?;
        let (int8, report, ranges) = ptq.finish_with_ranges()?;
        let (mut folded, _) = crate::passes::fold_constants(&self.model)?;
        start_biases(&mut folded, &int8, &report);
        let (graph, nodes) = insert_fake_quant(&folded, &ranges)?;
        self.start = Some((int8, report));
        let per_channel = self.qopts.granularity == crate::quantize::Granularity::PerChannel;
        let mut job = TrainJob::new(&graph, &self.x, &self.y, &self.opts, None, nodes)?;
        job.quantize_weights(per_channel);
        job.keep_zeros();
        job.select_by_accuracy();
        self.train = Some(job);
        Ok(())
    }

    /// The int8 model, its report, the training report and the static quantization's report.
    /// When training kept the start ([`Kept::Start`]), the model and report are static
    /// quantization's, unchanged.
    pub fn finish(self) -> Result<(Model, QuantReport, TrainReport, Option<QuantReport>)> {
        let train = self.train.ok_or_else(|| Error::argument("quantization-aware training did not start"))?;
        let (start, start_report) = self.start.ok_or_else(|| Error::argument("no static quantization"))?;
        let nodes: Vec<TensorId> = train.fake_quant_inputs();
        let (trained, report, ranges) = train.finish()?;
        if report.kept == Kept::Start {
            return Ok((start, start_report.clone(), report, Some(start_report)));
        }
        let mut float = crate::passes::fold_constants(&self.model)?.0;
        for t in crate::grad::weight_tensors(float.main()) {
            float.main_mut().tensors[t].data = trained.main().tensors[t].data.clone();
        }
        let mut per_tensor = vec![None; float.main().tensors.len()];
        for (&t, &r) in nodes.iter().zip(&ranges) {
            per_tensor[t] = Some(r);
        }
        let (q, qreport) = crate::quantize::quantize_with_ranges(&float, &per_tensor, &self.qopts)?;
        Ok((q, qreport, report, Some(start_report)))
    }
}

/// The first [`CALIBRATION`] samples of `x` (at least the minimum static quantization accepts,
/// when there are that many).
fn first_samples(x: &NpyArray) -> Result<NpyArray> {
    let n = x.shape.first().copied().unwrap_or(0);
    let keep = n.min(CALIBRATION).max(crate::quantize::MIN_CALIBRATION_SAMPLES.min(n));
    let per = x.len() / n.max(1);
    let values = x.to_f32();
    let end = keep
        .checked_mul(per)
        .filter(|&e| e <= values.len())
        .ok_or_else(|| Error::input("the training data is shorter than its shape"))?;
    NpyArray::new([&[keep], x.shape.get(1..).unwrap_or(&[])].concat(), NpyData::F32(values[..end].to_vec()))
}

impl Job for QatJob {
    fn next(&mut self) -> Result<Option<Round>> {
        if let Some(p) = self.ptq.as_mut() {
            if let Some(r) = p.next()? {
                return Ok(Some(r));
            }
            self.start_training()?;
        }
        match self.train.as_mut() {
            Some(t) => t.next(),
            None => Ok(None),
        }
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        match (self.ptq.as_mut(), self.train.as_mut()) {
            (Some(p), _) => p.accept(results),
            (None, Some(t)) => t.accept(results),
            _ => Ok(()),
        }
    }
}
