//! Static quantization's rewrite of the float graph into a full-int8 one, from a calibration.
//!
//! The rewrite walks the float graph in execution order and builds a new graph. Every float tensor
//! can have an int8 twin (`qt`) and a float twin (`ft`); operators that can run in int8 consume int8
//! twins (a QUANTIZE is inserted where only a float one exists), operators that cannot stay float
//! and consume float twins (a DEQUANTIZE is inserted). Output parameters come from calibration,
//! from the input (operators that move values without rescaling), or are fixed by the operator
//! (SOFTMAX, LOGISTIC, TANH), as TFLite's kernels require.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ndarray::{ArrayD, IxDyn};

use super::calibrate::int8_params;
use super::observe::{only_read_by, Calibration};
use super::report::LayerReport;
use super::{quantize_weights, CalibrationMethod, Granularity, IoType, QuantizeOptions};
use crate::error::{Error, Result};
use crate::ir::{values, DType, Graph, Model, Node, Op, QuantParams, Tensor, TensorData, TensorId};
use crate::ops::{self, Int8Rule, Role};

/// Weights of a weighted node as f32, dequantizing int8 (hybrid) weights.
fn float_weights(g: &Graph, t: TensorId) -> Option<Vec<f32>> {
    let w = &g.tensors[t];
    match (&w.data, &w.quant) {
        (Some(TensorData::F32(a)), _) => Some(values(a)),
        (Some(TensorData::I8(a)), Some(q)) => {
            let axis = q.channel_axis();
            let (channels, inner) = match axis {
                Some(ax) => (w.shape[ax], w.shape[ax + 1..].iter().product::<usize>()),
                None => (1, 1),
            };
            Some(
                a.iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let c = if channels > 1 { (i / inner) % channels } else { 0 };
                        q.scale[c] * (v as i64 - q.zero_point_at(c)) as f32
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// What every candidate built from one calibration shares, computed once: each weight tensor's
/// float values, int8 values and scales (they do not depend on the activation ranges), and each
/// tensor's observed range per calibration method (the MSE search is the costly part of a build).
#[derive(Default)]
pub(super) struct Shared {
    /// Per weight tensor and quantization axis (none: per tensor).
    weights: Mutex<HashMap<WeightsKey, Arc<QuantizedWeights>>>,
    ranges: Mutex<Vec<(CalibrationMethod, Arc<RangeSlots>)>>,
}

type WeightsKey = (TensorId, Option<usize>);

/// Per tensor, its range for one method once computed.
type RangeSlots = Vec<OnceLock<Option<(f32, f32)>>>;

/// A lock that a panic elsewhere cannot make unusable (what it guards is a cache).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A weight tensor as float values, and quantized symmetric int8 with its scales.
struct QuantizedWeights {
    float: Vec<f32>,
    int8: Vec<i8>,
    scales: Vec<f32>,
}

impl Shared {
    /// The weights of tensor `wt` quantized per slice along `axis` (or per tensor), made once.
    fn weights(&self, f: &Graph, wt: TensorId, axis: Option<usize>) -> Option<Arc<QuantizedWeights>> {
        let key = (wt, axis);
        if let Some(w) = locked(&self.weights).get(&key) {
            return Some(w.clone());
        }
        let float = float_weights(f, wt)?;
        let (int8, scales) = quantize_weights(&float, &f.tensors[wt].shape, axis);
        let w = Arc::new(QuantizedWeights { float, int8, scales });
        locked(&self.weights).insert(key, w.clone());
        Some(w)
    }

    /// The range `method` chooses for tensor `t` from its observations, computed once.
    fn observed_range(&self, calib: &Calibration, t: TensorId, method: CalibrationMethod) -> Option<(f32, f32)> {
        let slots = {
            let mut all = locked(&self.ranges);
            match all.iter().find(|(m, _)| *m == method) {
                Some((_, v)) => v.clone(),
                None => {
                    let v: Arc<RangeSlots> = Arc::new((0..calib.observers.len()).map(|_| OnceLock::new()).collect());
                    all.push((method, v.clone()));
                    v
                }
            }
        };
        let observed = || calib.observers.get(t)?.as_ref().filter(|o| o.count > 0).map(|o| o.range_for(method));
        slots.get(t).map_or_else(observed, |s| *s.get_or_init(observed))
    }
}

struct Rewriter<'a> {
    f: &'a Graph,
    opts: &'a QuantizeOptions,
    calib: &'a Calibration,
    shared: &'a Shared,
    q: Graph,
    qt: Vec<Option<TensorId>>,
    ft: Vec<Option<TensorId>>,
    layers: Vec<LayerReport>,
    kept: Vec<String>,
    notes: Vec<String>,
    /// Per float tensor: the input interval beyond which every consumer's int8 output saturates.
    saturating: Vec<Option<(f32, f32)>>,
}

/// Where TANH's int8 output (scale 1/128, zero point 0) stops changing: beyond these inputs the
/// exact result rounds to -128 or 127 with more than a third of a step to spare, so clipping the
/// input range there loses nothing and gives the rest of the range finer steps.
const TANH_SATURATES: (f32, f32) = (-3.75, 3.0);
/// The same for LOGISTIC (output scale 1/256, zero point -128).
const LOGISTIC_SATURATES: (f32, f32) = (-7.5, 5.4);

/// For every tensor read only by TANH and LOGISTIC (and not a model output): the input interval
/// outside which their int8 outputs are saturated.
fn saturating_ranges(f: &Graph) -> Vec<Option<(f32, f32)>> {
    only_read_by(
        f,
        |_, n| match n.op {
            Op::Tanh => Some(TANH_SATURATES),
            Op::Logistic => Some(LOGISTIC_SATURATES),
            _ => None,
        },
        |(a, b), (c, d)| (a.min(c), b.max(d)),
    )
}

fn params_of(t: &Tensor) -> (f32, i64) {
    t.quant.as_ref().map_or((0.0, 0), |q| q.single())
}

impl<'a> Rewriter<'a> {
    /// The calibrated range of a tensor. Model inputs always keep their observed range: their domain
    /// is the data's, and clipping it would discard input information no later layer can recover.
    /// A tensor read only by saturating functions is clipped to where they saturate.
    fn range(&self, old: TensorId) -> Option<(f32, f32)> {
        let method = if self.f.inputs.contains(&old) { CalibrationMethod::MinMax } else { self.opts.calibration };
        let (lo, hi) = self.shared.observed_range(self.calib, old, method)?;
        if self.calib.exact {
            return Some((lo, hi));
        }
        let (lo, hi) = match self.saturating[old] {
            Some((a, b)) => (lo.clamp(a, b), hi.clamp(a, b)),
            None => (lo, hi),
        };
        Some(match self.calib.softmax_floor[old] {
            Some(floor) if floor > lo && floor < hi => (floor, hi),
            _ => (lo, hi),
        })
    }

    fn add_tensor(&mut self, t: Tensor) -> TensorId {
        self.q.add_tensor(t)
    }

    /// A new tensor shaped like `old`.
    fn like(&mut self, old: TensorId, dtype: DType, quant: Option<QuantParams>, suffix: &str) -> TensorId {
        let o = &self.f.tensors[old];
        let mut t = Tensor::new(format!("{}{suffix}", o.name), dtype, o.shape.clone());
        t.shape_signature = o.shape_signature.clone();
        t.quant = quant;
        self.add_tensor(t)
    }

    fn push(&mut self, op: Op, inputs: Vec<Option<TensorId>>, outputs: Vec<TensorId>) -> usize {
        self.q.nodes.push(Node::new(op, inputs, outputs));
        self.q.nodes.len() - 1
    }

    /// A non-float operand (shape, axes, paddings, or an integer activation) carried over as is.
    fn passthrough(&mut self, old: TensorId) -> TensorId {
        if let Some(t) = self.ft[old] {
            return t;
        }
        let t = self.add_tensor(self.f.tensors[old].clone());
        self.ft[old] = Some(t);
        t
    }

    /// The int8 twin of a float tensor, quantizing its float twin (or constant data) if needed.
    fn ensure_q(&mut self, old: TensorId) -> Result<TensorId> {
        if let Some(t) = self.qt[old] {
            return Ok(t);
        }
        let src = &self.f.tensors[old];
        if src.dtype != DType::F32 {
            return Ok(self.passthrough(old));
        }
        if let Some(TensorData::F32(a)) = &src.data {
            // A float constant operand (e.g. of ADD or MUL): int8 with its own range.
            let (lo, hi) = a.iter().fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            let (scale, zp) = int8_params(lo, hi);
            let q: Vec<i8> = a.iter().map(|&v| ((v / scale).round() as i64 + zp).clamp(-128, 127) as i8).collect();
            let mut t = Tensor::constant(
                &src.name,
                DType::I8,
                src.shape.clone(),
                TensorData::from_i8(&src.shape, q).unwrap_or(TensorData::Raw(vec![])),
            );
            t.quant = Some(QuantParams::per_tensor(scale, zp));
            let id = self.add_tensor(t);
            self.qt[old] = Some(id);
            return Ok(id);
        }
        let Some((lo, hi)) = self.range(old) else {
            return Err(Error::graph(
                format!("no calibration range for tensor {old} '{}'", src.name),
                self.f.tensor_loc(old),
            ));
        };
        let (scale, zp) = int8_params(lo, hi);
        let f = self.ensure_f(old)?;
        let id = self.like(old, DType::I8, Some(QuantParams::per_tensor(scale, zp)), "");
        self.push(Op::Quantize, vec![Some(f)], vec![id]);
        self.qt[old] = Some(id);
        Ok(id)
    }

    /// The float twin of a tensor, dequantizing its int8 twin if needed.
    fn ensure_f(&mut self, old: TensorId) -> Result<TensorId> {
        if let Some(t) = self.ft[old] {
            return Ok(t);
        }
        let src = &self.f.tensors[old];
        if src.is_constant() || src.is_variable || src.dtype != DType::F32 {
            // Constants, variable (state) tensors and integer operands stay as they are.
            return Ok(self.passthrough(old));
        }
        let q = self.qt[old].ok_or_else(|| {
            Error::graph(format!("tensor {old} '{}' has no value yet", src.name), self.f.tensor_loc(old))
        })?;
        let id = self.like(old, DType::F32, None, "/dequantize");
        self.push(Op::Dequantize, vec![Some(q)], vec![id]);
        self.ft[old] = Some(id);
        Ok(id)
    }

    /// An int8 output tensor for `old` with parameters from calibration.
    fn calibrated_output(&mut self, old: TensorId) -> Option<(TensorId, (f32, f32))> {
        let (lo, hi) = self.range(old)?;
        let (scale, zp) = int8_params(lo, hi);
        let id = self.like(old, DType::I8, Some(QuantParams::per_tensor(scale, zp)), "");
        Some((id, (lo, hi)))
    }

    fn report(
        &mut self,
        ni: usize,
        old_out: TensorId,
        range: Option<(f32, f32)>,
        weights: Option<&'static str>,
        bias_corr: Option<f32>,
    ) {
        let out = self.q.nodes[ni].output().unwrap_or(0);
        let (scale, zp) = params_of(&self.q.tensors[out]);
        self.layers.push(LayerReport {
            index: ni,
            op: self.q.nodes[ni].op.name().to_string(),
            name: self.f.tensors[old_out].name.clone(),
            kept_float: false,
            reason: None,
            range,
            output_scale: Some(scale),
            output_zero_point: Some(zp),
            weights,
            bias_correction: bias_corr,
            sqnr_db: None,
            source_tensor: Some(old_out),
        });
    }

    /// Keeps node `ni` of the float graph in float, with DEQUANTIZE/QUANTIZE around it as needed.
    fn keep_float(&mut self, ni: usize, reason: &str) -> Result<()> {
        let n = &self.f.nodes[ni];
        let inputs = n.inputs.iter().map(|t| t.map(|t| self.ensure_f(t)).transpose()).collect::<Result<Vec<_>>>()?;
        let mut outputs = Vec::new();
        for &o in &n.outputs {
            let t = self.add_tensor(self.f.tensors[o].clone());
            self.ft[o] = Some(t);
            outputs.push(t);
        }
        let mut node = n.clone();
        node.inputs = inputs;
        node.outputs = outputs;
        node.intermediates = n.intermediates.iter().map(|&i| self.passthrough(i)).collect();
        self.q.nodes.push(node);
        let name = self.f.tensors[n.outputs.first().copied().unwrap_or(0)].name.clone();
        self.kept.push(format!("{} '{}': {reason}", n.op.name(), name));
        self.layers.push(LayerReport {
            index: self.q.nodes.len() - 1,
            op: n.op.name().to_string(),
            name,
            kept_float: true,
            reason: Some(reason.to_string()),
            range: None,
            output_scale: None,
            output_zero_point: None,
            weights: None,
            bias_correction: None,
            sqnr_db: None,
            source_tensor: n.outputs.first().copied(),
        });
        Ok(())
    }

    fn weighted(&mut self, ni: usize) -> Result<Option<String>> {
        let n = &self.f.nodes[ni];
        let (Some(x), Some(wt), Some(out)) = (n.input(0), n.input(1), n.output()) else {
            return Ok(Some("missing operands".into()));
        };
        let shape = self.f.tensors[wt].shape.clone();
        let Some(layout) = ops::weight_layout(&n.op) else { return Ok(Some("no weights".into())) };
        let (axis, oc) = (layout.out_axis, layout.units(&shape));
        let per_channel = self.opts.granularity == Granularity::PerChannel;
        let Some(quantized) = self.shared.weights(self.f, wt, per_channel.then_some(axis)) else {
            return Ok(Some("weights are not constant float".into()));
        };
        let (w, wq, w_scales) = (&quantized.float, &quantized.int8, &quantized.scales);
        if oc == 0 || w.len() != shape.iter().product::<usize>() {
            return Ok(Some("unexpected weight shape".into()));
        }
        let qx = self.ensure_q(x)?;
        let (s_in, _) = params_of(&self.q.tensors[qx]);
        let Some((qo, range)) = self.calibrated_output(out) else { return Ok(Some("no calibration range".into())) };
        // Float bias (or zeros), corrected for the mean shift weight rounding causes.
        let mut bias: Vec<f32> = match n.input(2).map(|b| &self.f.tensors[b].data) {
            Some(Some(TensorData::F32(a))) => values(a),
            Some(Some(_)) => return Ok(Some("bias is not float".into())),
            _ => vec![0.0; oc],
        };
        if bias.len() != oc {
            return Ok(Some("bias length differs from the output channels".into()));
        }
        let scale_of =
            |i: usize, inner: usize| if w_scales.len() > 1 { w_scales[(i / inner) % oc] } else { w_scales[0] };
        let mut max_corr = None;
        if self.opts.bias_correction {
            if let Some(m) = &self.calib.input_means[ni] {
                let mut corr = vec![0.0f64; oc];
                match n.op {
                    Op::DepthwiseConv2D(_) => {
                        // weights [1, kh, kw, oc]; means [(ky·kw + kx)·ic + c]; channel oc reads input oc / mult.
                        let in_c = self.f.tensors[x].shape.get(3).copied().unwrap_or(1).max(1);
                        let mult = (oc / in_c).max(1);
                        for (i, (&q, &f)) in wq.iter().zip(w).enumerate() {
                            let (tap, c) = (i / oc, i % oc);
                            let s = scale_of(i, 1);
                            corr[c] +=
                                (q as f64 * s as f64 - f as f64) * m.get(tap * in_c + c / mult).copied().unwrap_or(0.0);
                        }
                    }
                    _ => {
                        let k = w.len() / oc;
                        for (i, (&q, &f)) in wq.iter().zip(w).enumerate() {
                            let s = scale_of(i, k);
                            corr[i / k] += (q as f64 * s as f64 - f as f64) * m.get(i % k).copied().unwrap_or(0.0);
                        }
                    }
                }
                let mut worst = 0f32;
                for (b, c) in bias.iter_mut().zip(&corr) {
                    *b -= *c as f32;
                    worst = worst.max(c.abs() as f32);
                }
                max_corr = Some(worst);
            }
        }
        let bias_scales: Vec<f32> =
            (0..oc).map(|c| s_in * if w_scales.len() > 1 { w_scales[c] } else { w_scales[0] }).collect();
        let bq: Vec<i32> = bias
            .iter()
            .zip(&bias_scales)
            .map(|(&b, &s)| (b as f64 / s as f64).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32)
            .collect();
        let wname = self.f.tensors[wt].name.clone();
        let wquant = if per_channel {
            QuantParams::per_channel(w_scales.clone(), vec![0; w_scales.len()], axis)
        } else {
            QuantParams::per_tensor(w_scales[0], 0)
        };
        let wid = self.add_tensor(
            Tensor::constant(
                &wname,
                DType::I8,
                shape.clone(),
                TensorData::from_i8(&shape, wq.clone()).expect("shape checked"),
            )
            .with_quant(wquant),
        );
        let bias_name = n.input(2).map(|b| self.f.tensors[b].name.clone()).unwrap_or_else(|| format!("{wname}/bias"));
        let bquant = if per_channel {
            QuantParams::per_channel(bias_scales, vec![0; oc], 0)
        } else {
            QuantParams::per_tensor(bias_scales[0], 0)
        };
        let bid = self.add_tensor(
            Tensor::constant(bias_name, DType::I32, vec![oc], TensorData::from_i32(&[oc], bq).expect("length checked"))
                .with_quant(bquant),
        );
        let new = self.push(n.op.clone(), vec![Some(qx), Some(wid), Some(bid)], vec![qo]);
        self.qt[out] = Some(qo);
        self.report(new, out, Some(range), Some(if per_channel { "per-channel" } else { "per-tensor" }), max_corr);
        Ok(None)
    }

    /// Operators whose output shares the input's parameters (they move values, not rescale them).
    fn same_params(&mut self, ni: usize) -> Result<()> {
        let n = &self.f.nodes[ni];
        let (x, out) = (n.input(0).unwrap_or(0), n.output().unwrap_or(0));
        let qx = self.ensure_q(x)?;
        let quant = self.q.tensors[qx].quant.clone();
        let qo = self.like(out, DType::I8, quant, "");
        let mut inputs = vec![Some(qx)];
        for t in n.inputs.iter().skip(1) {
            inputs.push(t.map(|t| self.passthrough(t)));
        }
        let new = self.push(n.op.clone(), inputs, vec![qo]);
        self.qt[out] = Some(qo);
        self.report(new, out, self.range(out), None, None);
        Ok(())
    }

    /// Operators with an output range from calibration and int8 inputs.
    fn calibrated(&mut self, ni: usize, fixed: Option<(f32, i64)>) -> Result<Option<String>> {
        let n = &self.f.nodes[ni];
        let out = n.output().unwrap_or(0);
        let spec = ops::spec(&n.op);
        let mut inputs = Vec::new();
        for (k, t) in n.inputs.iter().enumerate() {
            inputs.push(match t {
                Some(t) if spec.role(k) == Role::Activation => Some(self.ensure_q(*t)?),
                Some(t) => Some(self.passthrough(*t)),
                None => None,
            });
        }
        let range = self.range(out);
        let qo = match (fixed, range) {
            (Some((s, z)), _) => self.like(out, DType::I8, Some(QuantParams::per_tensor(s, z)), ""),
            (None, Some((lo, hi))) => {
                let (s, z) = int8_params(lo, hi);
                self.like(out, DType::I8, Some(QuantParams::per_tensor(s, z)), "")
            }
            (None, None) => return Ok(Some("no calibration range".into())),
        };
        let new = self.push(n.op.clone(), inputs, vec![qo]);
        self.qt[out] = Some(qo);
        self.report(new, out, range, None, None);
        Ok(None)
    }

    /// CONCATENATION and PACK: int8 inputs must share the output's parameters, so inputs with other
    /// parameters are requantized first.
    fn concat(&mut self, ni: usize) -> Result<Option<String>> {
        let n = &self.f.nodes[ni];
        let out = n.output().unwrap_or(0);
        let Some((lo, hi)) = self.range(out) else { return Ok(Some("no calibration range".into())) };
        let (s, z) = int8_params(lo, hi);
        let mut inputs = Vec::new();
        for t in n.inputs.iter().flatten() {
            let qx = self.ensure_q(*t)?;
            if params_of(&self.q.tensors[qx]) == (s, z) {
                inputs.push(Some(qx));
            } else {
                let r = self.like(*t, DType::I8, Some(QuantParams::per_tensor(s, z)), "/requantize");
                self.push(Op::Quantize, vec![Some(qx)], vec![r]);
                inputs.push(Some(r));
            }
        }
        let qo = self.like(out, DType::I8, Some(QuantParams::per_tensor(s, z)), "");
        let new = self.push(n.op.clone(), inputs, vec![qo]);
        self.qt[out] = Some(qo);
        self.report(new, out, Some((lo, hi)), None, None);
        Ok(None)
    }

    fn node(&mut self, ni: usize) -> Result<()> {
        let n = &self.f.nodes[ni];
        // Anything not computing on float activations (shape arithmetic) is carried over as is.
        let float_in = n.input(0).is_some_and(|x| self.f.tensors[x].dtype == DType::F32);
        let act_ok = n.op.activation().is_none_or(|a| a.clamp_range().is_some());
        if let (Int8Rule::ShapeOnly, Some(x)) = (ops::spec(&n.op).int8(), n.input(0)) {
            // SHAPE reads only the shape: any twin of its input will do.
            let input = match self.qt[x] {
                Some(q) => q,
                None => self.ensure_f(x)?,
            };
            let outputs: Vec<TensorId> = n.outputs.iter().map(|&o| self.passthrough(o)).collect();
            self.push(n.op.clone(), vec![Some(input)], outputs);
            return Ok(());
        }
        let reason = if !float_in {
            if n.inputs.iter().flatten().all(|&t| self.f.tensors[t].dtype != DType::F32) {
                let inputs = n.inputs.iter().map(|t| t.map(|t| self.passthrough(t))).collect();
                let outputs: Vec<TensorId> = n.outputs.iter().map(|&o| self.passthrough(o)).collect();
                self.push(n.op.clone(), inputs, outputs);
                return Ok(());
            }
            Some("mixed operand types".to_string())
        } else if !act_ok {
            Some(format!("fused activation {:?} has no int8 form", n.op.activation()))
        } else {
            match ops::spec(&n.op).int8() {
                Int8Rule::Weighted => self.weighted(ni)?,
                Int8Rule::SameAsInput => {
                    self.same_params(ni)?;
                    None
                }
                Int8Rule::Calibrated => self.calibrated(ni, None)?,
                Int8Rule::Fixed { scale, zero_point } => self.calibrated(ni, Some((scale, zero_point)))?,
                Int8Rule::SharedWithInputs => self.concat(ni)?,
                Int8Rule::Boundary => Some("already a quantization boundary".into()),
                Int8Rule::ShapeOnly => None,
                Int8Rule::Float(why) => Some(format!("{} {why}", n.op.name())),
            }
        };
        if let Some(reason) = reason {
            self.keep_float(ni, &reason)?;
        }
        Ok(())
    }
}

/// A quantized model built for one calibration configuration.
pub(super) struct Built {
    pub model: Model,
    pub layers: Vec<LayerReport>,
    pub kept: Vec<String>,
    pub notes: Vec<String>,
    /// Per float tensor: its int8 and float twins in the quantized graph.
    pub qt: Vec<Option<TensorId>>,
    pub ft: Vec<Option<TensorId>>,
}

impl Built {
    /// Per float tensor, the real range its int8 twin represents (what quantization-aware
    /// training starts from).
    /// `model` is the built model (`self.model`, or the same model taken out of it).
    pub fn ranges(&self, model: &Model) -> Vec<Option<(f32, f32)>> {
        self.qt
            .iter()
            .map(|q| {
                let t = &model.main().tensors[(*q)?];
                let (s, z) = t.quant.as_ref()?.single();
                Some(((-128 - z) as f32 * s, (127 - z) as f32 * s))
            })
            .collect()
    }
}

/// Builds the int8 model of the folded float model `fm` for `calib` and `opts`, with `fm`'s
/// description, metadata and signatures (folding renumbers tensors, and its signatures with them).
/// `shared` holds what candidates of the same calibration and granularity share (give each
/// calibration its own).
pub(super) fn build(fm: &Model, calib: &Calibration, opts: &QuantizeOptions, shared: &Shared) -> Result<Built> {
    let f = fm.main();
    let mut rw = Rewriter {
        f,
        opts,
        calib,
        shared,
        q: Graph { name: f.name.clone(), ..Default::default() },
        qt: vec![None; f.tensors.len()],
        ft: vec![None; f.tensors.len()],
        layers: Vec::new(),
        kept: Vec::new(),
        notes: Vec::new(),
        saturating: saturating_ranges(f),
    };
    // Only the tensors with a bound can have been clipped (range_for can be a search: skip the rest).
    let narrowed = (0..f.tensors.len())
        .filter(|&t| rw.saturating[t].is_some() || calib.softmax_floor[t].is_some())
        .filter(|&t| {
            let observed = shared.observed_range(calib, t, opts.calibration);
            matches!((observed, rw.range(t)), (Some(o), Some(r)) if o != r)
        })
        .count();
    if narrowed > 0 {
        rw.notes.push(format!(
            "{narrowed} tensor(s) read only by TANH, LOGISTIC or SOFTMAX had their range clipped to where the \
             function's int8 output no longer changes (finer steps for the values that matter)"
        ));
    }
    if f.nodes.iter().any(|n| n.input(1).is_some_and(|w| f.tensors[w].dtype == DType::I8)) {
        rw.notes.push("the model had int8 (dynamic-range) weights: they were dequantized and requantized".into());
    }
    let input = f.inputs[0];
    match opts.io {
        IoType::Int8 => {
            let (lo, hi) = rw.range(input).ok_or_else(|| Error::input("the model input was never observed"))?;
            let (s, z) = int8_params(lo, hi);
            let id = rw.like(input, DType::I8, Some(QuantParams::per_tensor(s, z)), "");
            rw.qt[input] = Some(id);
            rw.q.inputs.push(id);
        }
        IoType::Float32 => {
            let id = rw.like(input, DType::F32, None, "");
            rw.ft[input] = Some(id);
            rw.q.inputs.push(id);
        }
    }
    for ni in 0..f.nodes.len() {
        rw.node(ni).map_err(|e| e.at(f.node_loc(ni)))?;
    }
    for &o in &f.outputs {
        let id = match opts.io {
            IoType::Int8 => rw.ensure_q(o)?,
            IoType::Float32 => rw.ensure_f(o)?,
        };
        rw.q.outputs.push(id);
    }
    let mut qm = Model {
        graphs: vec![rw.q],
        description: fm.description.clone(),
        metadata: fm.metadata.iter().filter(|(k, _)| k != "min_runtime_version").cloned().collect(),
        signatures: Vec::new(),
    };
    for sig in fm.signatures.iter().filter(|s| s.graph == 0) {
        let map = |list: &[(String, TensorId)], new: &[TensorId], old: &[TensorId]| {
            list.iter()
                .filter_map(|(name, t)| old.iter().position(|x| x == t).map(|i| (name.clone(), new[i])))
                .collect()
        };
        let g = &qm.graphs[0];
        let s = crate::ir::Signature {
            key: sig.key.clone(),
            graph: 0,
            inputs: map(&sig.inputs, &g.inputs, &f.inputs),
            outputs: map(&sig.outputs, &g.outputs, &f.outputs),
        };
        qm.signatures.push(s);
    }
    check_scales(qm.main())?;
    // The quantized model must satisfy every operator's spec: that checks the constraints TFLite
    // enforces (shared parameters, fixed output ranges, types) without preparing the engine.
    ops::infer(qm.main(), &ops::InferOptions::default()).map_err(|e| match e {
        Error::Graph { message, at } | Error::Unsupported { message, at } => {
            Error::graph(format!("the quantized model is inconsistent (please report this): {message}"), at)
        }
        other => other,
    })?;
    Ok(Built { model: qm, layers: rw.layers, kept: rw.kept, notes: rw.notes, qt: rw.qt, ft: rw.ft })
}

/// Refuses a quantized graph with a scale that is not a positive finite number (values near the
/// limits of f32 make ranges, or products of scales, overflow): such a file would not read back.
fn check_scales(g: &Graph) -> Result<()> {
    for (t, tensor) in g.tensors.iter().enumerate() {
        let Some(q) = &tensor.quant else { continue };
        if let Some(s) = q.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::unsupported(
                format!(
                    "int8 cannot represent this tensor: its quantization scale would be {s} (values or \
                     weights near the limits of float32)"
                ),
                g.tensor_loc(t),
            ));
        }
    }
    Ok(())
}

/// An all-constant helper for tests: a float tensor from values.
#[allow(dead_code)]
pub(super) fn f32_tensor(name: &str, shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::constant(
        name,
        DType::F32,
        shape.to_vec(),
        TensorData::F32(ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape")),
    )
}
