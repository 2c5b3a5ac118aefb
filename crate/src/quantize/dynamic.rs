//! Dynamic-range quantization: int8 weights for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED,
//! float activations and biases. LiteRT's hybrid kernels quantize activations on the fly.

use super::report::{LayerReport, QuantReport};
use super::{quantize_weights, Granularity, QuantizeOptions};
use crate::clock::now_ms;
use crate::error::Result;
use crate::ir::{DType, Model, Op, QuantParams, Tensor, TensorData};
use crate::{passes, tflite};

pub(super) fn quantize_dynamic(model: &Model, opts: &QuantizeOptions) -> Result<(Model, QuantReport)> {
    let t0 = now_ms();
    let size_before = tflite::write(model)?.len();
    let (mut m, folded) = passes::fold_constants(model)?;
    let g = m.main_mut();
    let mut layers = Vec::new();
    for ni in 0..g.nodes.len() {
        let n = &g.nodes[ni];
        let Some(layout) = crate::ops::weight_layout(&n.op) else { continue };
        let (Some(w), Some(out)) = (n.input(layout.weights), n.output()) else { continue };
        let wt = &g.tensors[w];
        let Some(TensorData::F32(a)) = &wt.data else { continue };
        // LiteRT's hybrid DEPTHWISE_CONV_2D needs one scale per channel.
        let per_channel = opts.granularity == Granularity::PerChannel || matches!(n.op, Op::DepthwiseConv2D(_));
        let axis = layout.out_axis;
        let shape = wt.shape.clone();
        let values: Vec<f32> = a.iter().copied().collect();
        let (q, scales) = quantize_weights(&values, &shape, per_channel.then_some(axis));
        let quant = if per_channel {
            QuantParams::per_channel(scales.clone(), vec![0; scales.len()], axis)
        } else {
            QuantParams::per_tensor(scales[0], 0)
        };
        let name = wt.name.clone();
        // A fresh tensor: the float one may be shared with another operator.
        let id = g.add_tensor(
            Tensor::constant(name, DType::I8, shape.clone(), TensorData::from_i8(&shape, q).expect("same shape"))
                .with_quant(quant),
        );
        let node = &mut g.nodes[ni];
        node.inputs[layout.weights] = Some(id);
        node.version = None;
        layers.push(LayerReport {
            index: ni,
            op: node.op.name().to_string(),
            name: g.tensors[out].name.clone(),
            kept_float: false,
            reason: None,
            range: None,
            output_scale: None,
            output_zero_point: None,
            weights: Some(if per_channel { "per-channel" } else { "per-tensor" }),
            bias_correction: None,
            sqnr_db: None,
            source_tensor: Some(out),
        });
    }
    m.validate()?;
    let size_after = tflite::write(&m)?.len();
    let mut notes = vec!["activations stay float; LiteRT quantizes them per batch row at run time".to_string()];
    if folded > 0 {
        notes.push(format!("{folded} operators computing constants were folded"));
    }
    let report = QuantReport {
        mode: "dynamic",
        calibration: None,
        granularity: if opts.granularity == Granularity::PerChannel { "per-channel" } else { "per-tensor" },
        io: "float32",
        bias_correction: false,
        calibration_samples: 0,
        report_samples: 0,
        folded_nodes: folded,
        layers,
        output_sqnr_db: vec![],
        kept_float: vec![],
        candidates: vec![],
        notes,
        size_before,
        size_after,
        calibration_ms: 0.0,
        rewrite_ms: now_ms() - t0,
        report_ms: 0.0,
    };
    Ok((m, report))
}
