//! UNIDIRECTIONAL_SEQUENCE_LSTM with int8 input, weights and output, an int16 cell state and int16
//! gates (TFLite's "8x8→16" integer LSTM). [`prepare`] turns the tensors' scales and zero points
//! into integer multipliers and effective biases once; [`run`] then uses integers only.
//!
//! Two arithmetics, picked at prepare time ([`LstmArithmetic`]):
//!
//! - `LiteRt`: LiteRT's reference kernel (`EvalInteger8x8_16` in `lstm_eval.cc`, prepared by
//!   `PopulateQuantizedLstmParams8x8_16` and `PopulatePrecomputedZPTimesWeightsWithBias`). Gate
//!   sums are Q3.12 (or the layer-norm intermediates' scales), sigmoid and tanh are gemmlowp's int16
//!   fixed-point functions, the cell update shifts by powers of two, and the hidden state is
//!   requantized to the node's fifth intermediate tensor ("effective hidden scale"). Needs that
//!   intermediate (and the first four with layer norm).
//! - `Tflm`: TFLite Micro's kernel (`micro/kernels/lstm_eval.h`). The same gate sums, but the input
//!   and recurrent products saturate separately before they are added; sigmoid and tanh are a
//!   table of sigmoid(i/24) with linear interpolation; the cell update multiplies by quantized
//!   multipliers (2^-15 and 2^-30/cell scale, rounded twice); the hidden state is requantized to the
//!   output state's own scale and zero point. No intermediates needed; no CIFG, peephole,
//!   projection or layer norm (TFLite Micro refuses them).
//!
//! Where the two differ, found by swapping one step of the LiteRT arithmetic for TFLite Micro's at a
//! time on the node dumps of the four LSTM reference models (`tests/conformance/lstm_nodes.py`):
//! the gates' sigmoid and tanh (gemmlowp against the table) cause most differences, the tanh of the
//! cell state most of the rest, and saturating the recurrent product on its own matters on one node
//! (DTLN's first LSTM). The cell update (a power-of-two shift against a multiplier rounded twice)
//! and the hidden multiplier (computed in float against double; the models' hidden intermediate
//! equals their output state) differ in principle but changed nothing there. With all five swapped
//! the result is TFLite Micro's, bit for bit.
//!
//! The step structure, operand layout and state semantics are those of [`crate::kernels::lstm`].
//! The loops are plain reference loops: per time step and batch row, `4·n_cell·(n_input +
//! n_output)` int32 multiply-adds and `5·n_cell` sigmoid/tanh evaluations. Measured with callgrind
//! (native x86-64 release build): 60k instructions per step for LiteRT's arithmetic on the MNIST
//! LSTM (28 inputs, 20 cells; gemmlowp's sigmoid and tanh are about 270 instructions each), 33k for
//! TFLite Micro's; 490k and 380k on the micro-speech LSTM (257 inputs, 80 cells).

use crate::error::{Error, Location, Result};
use crate::kernels::fixedpoint::{
    checked_log2, inv_sqrt_multiplier_exp, logistic_i16, logistic_lut_i16, mul_by_multiplier, quantize_multiplier,
    rdbpot, tanh_i16, tanh_lut_i16, LutInputScale, Multiplier,
};
use crate::kernels::lstm::{check_buffers, Gate, GateOperands, LstmConfig, LstmOperands, LstmParts, LstmState};

/// A tensor's scale and zero point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i32,
}

/// The integer operator's operands: int8 weights, int16 peephole weights and layer-norm
/// coefficients, int32 biases.
pub type Int8Operands<'a> = LstmOperands<'a, i8, i16, i32>;

/// The scales of the weight operands (one per tensor), in operand order; the bias entries are not
/// read (TFLite derives bias scales from the others).
pub type WeightScales = LstmParts<f32, f32, f32>;

/// Everything [`prepare`] needs to know about the node's quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmQuantization {
    /// The input (operand 0).
    pub input: Quant,
    /// The output state (operand 18): the hidden state fed back to the recurrent weights.
    pub output_state: Quant,
    /// The cell state's scale (operand 19, a power of two; its zero point is 0).
    pub cell_state_scale: f32,
    /// The node's output, whose scale quantizes `proj_clip`.
    pub output: Quant,
    pub weight_scales: WeightScales,
    /// The node's five intermediate tensors, in order: the input, forget, cell and output gates'
    /// pre-activation scales (read with layer norm only) and the hidden state before the projection
    /// (read by the LiteRT arithmetic). `None` for those without quantization parameters.
    pub intermediates: [Option<Quant>; 5],
}

/// Whose integer arithmetic to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LstmArithmetic {
    LiteRt,
    Tflm,
}

/// A gate's prepared arithmetic.
#[derive(Clone, Debug, PartialEq)]
struct GateParams {
    input_scale: Multiplier,
    /// The bias (unless layer norm) minus the input zero point times each weight row's sum.
    input_bias: Vec<i32>,
    recurrent_scale: Multiplier,
    /// Minus the output state's zero point times each recurrent weight row's sum.
    recurrent_bias: Vec<i32>,
    peephole_scale: Option<Multiplier>,
    layer_norm: Option<LayerNormParams>,
    /// tanh for the cell gate, sigmoid for the others.
    tanh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct LayerNormParams {
    scale: Multiplier,
    variance_guard: i32,
}

/// How the cell state is updated and squashed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CellParams {
    /// Power-of-two shifts; gemmlowp tanh with `15 + cell_scale` integer bits.
    LiteRt { cell_scale: i32, clip: i16 },
    /// Quantized multipliers; the table tanh with the cell state's input scaling.
    Tflm { forget_times_cell: Multiplier, input_times_cell_gate: Multiplier, clip: Option<i16>, tanh: LutInputScale },
}

/// `h = o ⊙ tanh(c)` requantized to int8.
#[derive(Clone, Copy, Debug, PartialEq)]
struct HiddenParams {
    scale: Multiplier,
    zero_point: i32,
}

#[derive(Clone, Debug, PartialEq)]
struct ProjectionParams {
    scale: Multiplier,
    /// The projection bias plus the hidden zero point times each weight row's sum.
    bias: Vec<i32>,
    output_zero_point: i32,
    clip: i8,
}

/// An integer LSTM ready to run: every scale turned into integers.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedLstm {
    config: LstmConfig,
    arithmetic: LstmArithmetic,
    /// Indexed by [`Gate`] (input, forget, cell, output); no input gate with CIFG.
    gates: [Option<GateParams>; 4],
    cell: CellParams,
    hidden: HiddenParams,
    projection: Option<ProjectionParams>,
}

impl PreparedLstm {
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    pub fn arithmetic(&self) -> LstmArithmetic {
        self.arithmetic
    }
}

fn graph(message: String) -> Error {
    Error::graph(format!("UNIDIRECTIONAL_SEQUENCE_LSTM: {message}"), Location::default())
}

fn unsupported(message: String) -> Error {
    Error::unsupported(format!("UNIDIRECTIONAL_SEQUENCE_LSTM: {message}"), Location::default())
}

/// A real multiplier the integer arithmetic can apply: finite, not negative, and small enough that
/// its left shift stays within 32 bits (TFLite's `QuantizeMultiplier`, checked).
fn multiplier(real: f64, what: &str) -> Result<Multiplier> {
    if !real.is_finite() || real < 0.0 {
        return Err(graph(format!("the {what} scale ({real}) is not a finite non-negative number")));
    }
    let m = quantize_multiplier(real);
    if m.shift > 30 {
        return Err(unsupported(format!("the {what} scale ({real}) is too large for 32-bit fixed point")));
    }
    Ok(m)
}

// ------------------------------------------------------------------------------------------------
// Prepare
// ------------------------------------------------------------------------------------------------

/// Precomputes every multiplier, shift and effective bias of the integer operator, as `arithmetic`
/// does it. Errors name what the model lacks or what the arithmetic cannot represent.
pub fn prepare(
    config: &LstmConfig,
    quant: &LstmQuantization,
    operands: &Int8Operands,
    arithmetic: LstmArithmetic,
) -> Result<PreparedLstm> {
    config.check(operands)?;
    if config.peephole && config.n_output > config.n_cell {
        // LiteRT's integer peephole walks n_output elements of n_cell-long vectors.
        return Err(unsupported("integer peephole connections with n_output > n_cell".into()));
    }
    match arithmetic {
        LstmArithmetic::LiteRt => prepare_litert(config, quant, operands),
        LstmArithmetic::Tflm => prepare_tflm(config, quant, operands),
    }
}

/// `bias + zero_point · Σ row` for every row of `weights` (`rows × cols`), wrapping like TFLite's
/// int32 arithmetic.
fn effective_bias(weights: &[i8], rows: usize, bias: Option<&[i32]>, zero_point: i32) -> Vec<i32> {
    let cols = weights.len().checked_div(rows).unwrap_or(0);
    (0..rows)
        .map(|r| {
            let row_sum = weights[r * cols..(r + 1) * cols].iter().fold(0i32, |s, &w| s.wrapping_add(w as i32));
            bias.map_or(0, |b| b[r]).wrapping_add(row_sum.wrapping_mul(zero_point))
        })
        .collect()
}

/// The scale a gate's sum is quantized to: Q3.12, or the gate's intermediate with layer norm.
fn gate_sum_scale(config: &LstmConfig, quant: &LstmQuantization, gate: Gate) -> Result<f32> {
    if !config.layer_norm {
        return Ok(2f32.powi(-12));
    }
    quant.intermediates[gate as usize].map(|q| q.scale).ok_or_else(|| {
        graph(format!("layer norm needs the {gate:?} gate's intermediate tensor (intermediate {})", gate as usize))
    })
}

/// The weight scales of a gate: input-to-gate, recurrent-to-gate, cell-to-gate, layer norm.
fn gate_weight_scales(s: &WeightScales, gate: Gate) -> [Option<f32>; 4] {
    match gate {
        Gate::Input => [
            s.input_to_input_weights,
            s.recurrent_to_input_weights,
            s.cell_to_input_weights,
            s.input_layer_norm_coefficients,
        ],
        Gate::Forget => [
            s.input_to_forget_weights,
            s.recurrent_to_forget_weights,
            s.cell_to_forget_weights,
            s.forget_layer_norm_coefficients,
        ],
        Gate::Cell => [s.input_to_cell_weights, s.recurrent_to_cell_weights, None, s.cell_layer_norm_coefficients],
        Gate::Output => [
            s.input_to_output_weights,
            s.recurrent_to_output_weights,
            s.cell_to_output_weights,
            s.output_layer_norm_coefficients,
        ],
    }
}

fn required(scale: Option<f32>, gate: Gate, what: &str) -> Result<f32> {
    scale.ok_or_else(|| graph(format!("the {gate:?} gate's {what} weights have no scale")))
}

/// One gate as LiteRT prepares it.
fn litert_gate(
    config: &LstmConfig,
    quant: &LstmQuantization,
    ops: &GateOperands<i8, i16, i32>,
    gate: Gate,
    cell_scale: i32,
) -> Result<GateParams> {
    let sum_scale = gate_sum_scale(config, quant, gate)?;
    let [wx, wh, wc, ln] = gate_weight_scales(&quant.weight_scales, gate);
    let (wx, wh) = (required(wx, gate, "input")?, required(wh, gate, "recurrent")?);
    // LiteRT computes these in float.
    let input_scale = multiplier((wx * quant.input.scale / sum_scale) as f64, "input-to-gate")?;
    let recurrent_scale = multiplier((wh * quant.output_state.scale / sum_scale) as f64, "recurrent-to-gate")?;
    let peephole_scale = match ops.peephole {
        Some(_) => {
            // In double, then stored as float.
            let real = (2f64.powi(cell_scale) * required(wc, gate, "peephole")? as f64 / sum_scale as f64) as f32;
            Some(multiplier(real as f64, "cell-to-gate")?)
        }
        None => None,
    };
    let layer_norm = match ops.layer_norm {
        Some(_) => {
            let scale = required(ln, gate, "layer-norm")?;
            let m = multiplier(scale as f64, "layer-norm")?;
            if m.shift + 12 > 30 {
                return Err(unsupported(format!("the {gate:?} gate's layer-norm scale {scale} is too large")));
            }
            Some(LayerNormParams { scale: m, variance_guard: ((10000.0 * scale) as i32).max(1) })
        }
        None => None,
    };
    let bias = if config.layer_norm { None } else { Some(ops.bias) };
    let n_cell = config.n_cell;
    Ok(GateParams {
        input_scale,
        input_bias: effective_bias(ops.input_weights, n_cell, bias, quant.input.zero_point.wrapping_neg()),
        recurrent_scale,
        recurrent_bias: effective_bias(
            ops.recurrent_weights,
            n_cell,
            None,
            quant.output_state.zero_point.wrapping_neg(),
        ),
        peephole_scale,
        layer_norm,
        tanh: gate == Gate::Cell,
    })
}

fn gates_present(config: &LstmConfig) -> [(Gate, bool); 4] {
    [(Gate::Input, !config.cifg), (Gate::Forget, true), (Gate::Cell, true), (Gate::Output, true)]
}

fn prepare_litert(config: &LstmConfig, quant: &LstmQuantization, ops: &Int8Operands) -> Result<PreparedLstm> {
    let cell_scale = checked_log2(quant.cell_state_scale)
        .ok_or_else(|| graph(format!("the cell state scale {} is not a power of two", quant.cell_state_scale)))?;
    if !(-15..=-9).contains(&cell_scale) {
        // LiteRT's tanh of the cell state takes 0 to 6 integer bits: 15 + cell_scale.
        return Err(unsupported(format!("a cell state scale of 2^{cell_scale} (LiteRT supports 2^-15 to 2^-9)")));
    }
    let hidden = quant.intermediates[4].ok_or_else(|| {
        graph("LiteRT's integer LSTM needs the hidden-state intermediate tensor (intermediate 4)".into())
    })?;
    let mut gates: [Option<GateParams>; 4] = Default::default();
    for (gate, present) in gates_present(config) {
        if present {
            gates[gate as usize] = Some(litert_gate(config, quant, &ops.gate(gate)?, gate, cell_scale)?);
        }
    }
    // In double, then stored as float.
    let hidden_real = (2f64.powi(-15) / hidden.scale as f64 * 2f64.powi(-15)) as f32;
    let projection = match ops.projection_weights {
        Some(weights) => {
            let w_scale = quant
                .weight_scales
                .projection_weights
                .ok_or_else(|| graph("the projection weights have no scale".into()))?;
            let real = w_scale * hidden.scale / quant.output_state.scale;
            let clip = clip_i8(config.proj_clip, quant.output.scale);
            Some(ProjectionParams {
                scale: multiplier(real as f64, "projection")?,
                bias: effective_bias(weights, config.n_output, ops.projection_bias, hidden.zero_point),
                output_zero_point: quant.output_state.zero_point,
                clip,
            })
        }
        None => None,
    };
    let clip = if config.cell_clip > 0.0 {
        // Float division, saturated, truncated toward zero.
        (config.cell_clip / quant.cell_state_scale).clamp(-32768.0, 32767.0) as i16
    } else {
        0
    };
    Ok(PreparedLstm {
        config: config.clone(),
        arithmetic: LstmArithmetic::LiteRt,
        gates,
        cell: CellParams::LiteRt { cell_scale, clip },
        hidden: HiddenParams { scale: multiplier(hidden_real as f64, "hidden")?, zero_point: hidden.zero_point },
        projection,
    })
}

fn clip_i8(clip: f32, scale: f32) -> i8 {
    if clip > 0.0 {
        (clip / scale).clamp(-128.0, 127.0) as i8
    } else {
        0
    }
}

/// One gate as TFLite Micro prepares it: fully connected layers into Q3.12.
fn tflm_gate(
    config: &LstmConfig,
    quant: &LstmQuantization,
    ops: &GateOperands<i8, i16, i32>,
    gate: Gate,
) -> Result<GateParams> {
    let [wx, wh, ..] = gate_weight_scales(&quant.weight_scales, gate);
    let (wx, wh) = (required(wx, gate, "input")?, required(wh, gate, "recurrent")?);
    let sum_scale = 2f32.powi(-12) as f64;
    // The product in float, the division in double (TFLite's GetQuantizedConvolutionMultipler).
    let input_scale = multiplier((quant.input.scale * wx) as f64 / sum_scale, "input-to-gate")?;
    let recurrent_scale = multiplier((quant.output_state.scale * wh) as f64 / sum_scale, "recurrent-to-gate")?;
    let n_cell = config.n_cell;
    Ok(GateParams {
        input_scale,
        input_bias: effective_bias(ops.input_weights, n_cell, Some(ops.bias), quant.input.zero_point.wrapping_neg()),
        recurrent_scale,
        recurrent_bias: effective_bias(
            ops.recurrent_weights,
            n_cell,
            None,
            quant.output_state.zero_point.wrapping_neg(),
        ),
        peephole_scale: None,
        layer_norm: None,
        tanh: gate == Gate::Cell,
    })
}

/// How TFLite Micro scales the cell state (`-power` fractional bits) for its tanh table, which reads
/// Q3.12 times three: times 3, shifted left by `12 + power` (right when negative, rounding).
fn tflm_tanh_scale(cell_scale_power: i32) -> Result<LutInputScale> {
    let left_shift = 15 + cell_scale_power - 3;
    if !(-31..=13).contains(&left_shift) {
        return Err(unsupported(format!("a cell state scale of 2^{cell_scale_power} in TFLite Micro's tanh")));
    }
    Ok(if left_shift < 0 {
        LutInputScale { multiplier: 3, left_shift: -left_shift }
    } else {
        LutInputScale { multiplier: 0, left_shift }
    })
}

fn prepare_tflm(config: &LstmConfig, quant: &LstmQuantization, ops: &Int8Operands) -> Result<PreparedLstm> {
    if config.cifg || config.peephole || config.projection || config.layer_norm {
        return Err(unsupported("TFLite Micro's LSTM has no CIFG, peephole, projection or layer norm".into()));
    }
    if config.activation != crate::kernels::lstm::LstmActivation::Tanh {
        return Err(unsupported(format!("TFLite Micro's integer LSTM with activation {:?}", config.activation)));
    }
    let mut gates: [Option<GateParams>; 4] = Default::default();
    for (gate, _) in gates_present(config) {
        gates[gate as usize] = Some(tflm_gate(config, quant, &ops.gate(gate)?, gate)?);
    }
    let cs = quant.cell_state_scale as f64;
    let q15 = 2f32.powi(-15) as f64;
    // TFLite Micro ignores whether the cell scale is an exact power of two.
    let power = (quant.cell_state_scale.ln() * (1.0f32 / 2.0f32.ln())).round();
    if !power.is_finite() {
        return Err(graph(format!("the cell state scale {} is not positive", quant.cell_state_scale)));
    }
    let clip = (config.cell_clip > 0.0).then(|| (config.cell_clip as f64 / cs).clamp(-32768.0, 32767.0) as i16);
    let cell = CellParams::Tflm {
        forget_times_cell: multiplier(q15 * cs / cs, "forget-times-cell")?,
        input_times_cell_gate: multiplier(q15 * q15 / cs, "input-times-cell-gate")?,
        clip,
        tanh: tflm_tanh_scale(power as i32)?,
    };
    let hidden_real = q15 * q15 / quant.output_state.scale as f64;
    Ok(PreparedLstm {
        config: config.clone(),
        arithmetic: LstmArithmetic::Tflm,
        gates,
        cell,
        hidden: HiddenParams { scale: multiplier(hidden_real, "hidden")?, zero_point: quant.output_state.zero_point },
        projection: None,
    })
}

// ------------------------------------------------------------------------------------------------
// Run
// ------------------------------------------------------------------------------------------------

/// Runs the prepared operator over the whole sequence, as one invoke: reads `input`, writes
/// `output`, updates `state` in place. `operands` must be the ones given to [`prepare`]; `config`
/// is this run's (its batch size and sequence length may differ from the one `prepared` was made
/// with: the prepared arithmetic depends only on the layer's sizes and scales).
pub fn run(
    config: &LstmConfig,
    prepared: &PreparedLstm,
    operands: &Int8Operands,
    input: &[i8],
    state: LstmState<i8, i16>,
    output: &mut [i8],
) -> Result<()> {
    let p = &prepared.config;
    if (config.n_input, config.n_output, config.n_cell) != (p.n_input, p.n_output, p.n_cell) {
        return Err(graph("the LSTM was prepared for other layer sizes".into()));
    }
    let sizes = config.check(operands)?;
    check_buffers(&sizes, input.len(), output.len(), state.output_state.len(), state.cell_state.len())?;
    let mut scratch = Scratch::new(config.rows_per_step() * config.n_cell);
    let (n_in, n_out, n_cell) = (config.n_input, config.n_output, config.n_cell);
    for step in config.steps() {
        let x = &input[step.input..step.input + step.rows * n_in];
        let h = &mut state.output_state[step.state_row * n_out..(step.state_row + step.rows) * n_out];
        let c = &mut state.cell_state[step.state_row * n_cell..(step.state_row + step.rows) * n_cell];
        step_i8(prepared, operands, step.rows, x, h, c, &mut scratch)?;
        output[step.output..step.output + step.rows * n_out].copy_from_slice(h);
    }
    Ok(())
}

/// Per-step buffers, `rows × n_cell` each.
struct Scratch {
    gates: [Vec<i16>; 4],
    recurrent: Vec<i16>,
    cell_tanh: Vec<i16>,
    hidden: Vec<i8>,
}

impl Scratch {
    fn new(n: usize) -> Scratch {
        Scratch {
            gates: [vec![0; n], vec![0; n], vec![0; n], vec![0; n]],
            recurrent: vec![0; n],
            cell_tanh: vec![0; n],
            hidden: vec![0; n],
        }
    }
}

/// One time step for `rows` batch rows: `x` `[rows, n_input]`, `h` `[rows, n_output]`, `c`
/// `[rows, n_cell]`; `h` and `c` are updated.
fn step_i8(
    p: &PreparedLstm,
    ops: &Int8Operands,
    rows: usize,
    x: &[i8],
    h: &mut [i8],
    c: &mut [i16],
    s: &mut Scratch,
) -> Result<()> {
    let n = rows * p.config.n_cell;
    let [input_gate, forget_gate, cell_gate, output_gate] = &mut s.gates;
    for (gate, out) in [(Gate::Input, &mut *input_gate), (Gate::Forget, forget_gate), (Gate::Cell, cell_gate)] {
        if let Some(params) = &p.gates[gate as usize] {
            gate_i8(p, params, &ops.gate(gate)?, rows, x, h, c, &mut out[..n], &mut s.recurrent[..n]);
        }
    }
    let input_gate = if p.config.cifg { None } else { Some(&input_gate[..n]) };
    update_cell(p.cell, c, input_gate, &forget_gate[..n], &cell_gate[..n]);
    if let Some(params) = &p.gates[Gate::Output as usize] {
        gate_i8(p, params, &ops.gate(Gate::Output)?, rows, x, h, c, &mut output_gate[..n], &mut s.recurrent[..n]);
    }
    update_hidden(p, ops, rows, c, &output_gate[..n], &mut s.cell_tanh[..n], &mut s.hidden[..n], h);
    Ok(())
}

/// `out = clamp(out + (bias + Σ x·w)·m)` for every row of `weights`, to int16 (LiteRT's
/// `MatrixBatchVectorMultiplyAccumulate` into an int16 gate; `out` zeroed first for a plain
/// product).
#[allow(clippy::too_many_arguments)]
fn matmul_accumulate_i16(
    x: &[i8],
    weights: &[i8],
    bias: &[i32],
    m: Multiplier,
    rows: usize,
    n_in: usize,
    n_cell: usize,
    out: &mut [i16],
) {
    for r in 0..rows {
        let x = &x[r * n_in..(r + 1) * n_in];
        for i in 0..n_cell {
            let w = &weights[i * n_in..(i + 1) * n_in];
            let acc = x.iter().zip(w).fold(bias[i], |acc, (&a, &b)| acc.wrapping_add(a as i32 * b as i32));
            let v = mul_by_multiplier(acc, m).wrapping_add(out[r * n_cell + i] as i32);
            out[r * n_cell + i] = v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        }
    }
}

/// One gate for `rows` batch rows into `out` (`[rows, n_cell]`), as the prepared arithmetic does:
/// input and recurrent products, peephole, layer norm, activation.
#[allow(clippy::too_many_arguments)]
fn gate_i8(
    p: &PreparedLstm,
    params: &GateParams,
    ops: &GateOperands<i8, i16, i32>,
    rows: usize,
    x: &[i8],
    h: &[i8],
    c: &[i16],
    out: &mut [i16],
    recurrent: &mut [i16],
) {
    let (n_in, n_out, n_cell) = (p.config.n_input, p.config.n_output, p.config.n_cell);
    out.fill(0);
    matmul_accumulate_i16(x, ops.input_weights, &params.input_bias, params.input_scale, rows, n_in, n_cell, out);
    let (w_h, b_h, m_h) = (ops.recurrent_weights, &params.recurrent_bias, params.recurrent_scale);
    match p.arithmetic {
        LstmArithmetic::LiteRt => matmul_accumulate_i16(h, w_h, b_h, m_h, rows, n_out, n_cell, out),
        LstmArithmetic::Tflm => {
            // Saturated on its own, then added with saturation.
            recurrent.fill(0);
            matmul_accumulate_i16(h, w_h, b_h, m_h, rows, n_out, n_cell, recurrent);
            for (o, r) in out.iter_mut().zip(recurrent.iter()) {
                *o = o.saturating_add(*r);
            }
        }
    }
    if let (Some(weights), Some(m)) = (ops.peephole, params.peephole_scale) {
        peephole_accumulate(weights, c, m, rows, n_out, out);
    }
    if let (Some(coefficients), Some(ln)) = (ops.layer_norm, params.layer_norm) {
        for r in 0..rows {
            layer_norm_i16(&mut out[r * n_cell..(r + 1) * n_cell], coefficients, ops.bias, ln);
        }
    }
    for v in out.iter_mut() {
        *v = match (p.arithmetic, params.tanh) {
            (LstmArithmetic::LiteRt, false) => logistic_i16(*v, 3),
            (LstmArithmetic::LiteRt, true) => tanh_i16(*v, 3),
            (LstmArithmetic::Tflm, false) => logistic_lut_i16(*v, LutInputScale { multiplier: 0, left_shift: 0 }),
            (LstmArithmetic::Tflm, true) => tanh_lut_i16(*v, LutInputScale { multiplier: 0, left_shift: 0 }),
        };
    }
}

/// `out[k] = clamp(out[k] + (w[k mod n_output]·c[k])·m)` for `k < rows·n_output`: LiteRT's
/// `VectorBatchVectorCwiseProductAccumulate` called with `n_output` as the vector length, so with a
/// projection the rows it walks are `n_output` long (without one `n_output` equals `n_cell`).
fn peephole_accumulate(weights: &[i16], c: &[i16], m: Multiplier, rows: usize, n_output: usize, out: &mut [i16]) {
    for k in 0..rows * n_output {
        let product = weights[k % n_output] as i32 * c[k] as i32;
        let v = mul_by_multiplier(product, m).wrapping_add(out[k] as i32);
        out[k] = v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    }
}

/// LiteRT's integer layer normalization of one gate row (`ApplyLayerNorm`): mean and variance in
/// fixed point (scaled by 2^10 and 2^20), the inverse standard deviation as a multiplier, then the
/// coefficient, the bias and the layer-norm scale.
fn layer_norm_i16(row: &mut [i16], coefficients: &[i16], bias: &[i32], ln: LayerNormParams) {
    const TWO_TO_20: i64 = 1 << 20;
    if row.is_empty() {
        return;
    }
    let n = row.len() as i64;
    let sum: i64 = row.iter().map(|&v| v as i64).sum();
    let sum_sq: i64 = row.iter().map(|&v| v as i64 * v as i64).sum();
    let mean = (sum * 1024 / n) as i32;
    let variance = sum_sq * (TWO_TO_20 / n) - mean as i64 * mean as i64;
    let mut variance = (variance / TWO_TO_20) as i32;
    if variance < 1 {
        variance = ln.variance_guard;
    }
    let inverse_stddev = inv_sqrt_multiplier_exp(variance, -1);
    let output_scale = Multiplier { multiplier: ln.scale.multiplier, shift: ln.scale.shift + 12 };
    for ((v, &k), &b) in row.iter_mut().zip(coefficients).zip(bias) {
        let shifted = (1024i32).wrapping_mul(*v as i32).wrapping_sub(mean);
        let rescaled = mul_by_multiplier(shifted, inverse_stddev);
        // int32 arithmetic in TFLite, widened afterwards.
        let weighted = rescaled.wrapping_mul(k as i32).wrapping_add(b) as i64;
        let rounded = ((if weighted > 0 { weighted + 512 } else { weighted - 512 }) / 1024) as i32;
        let scaled = mul_by_multiplier(rounded, output_scale);
        *v = scaled.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    }
}

/// `c = clip(f ⊙ c + i ⊙ g)` (`i = 1 − f` under CIFG), in the prepared arithmetic.
fn update_cell(params: CellParams, c: &mut [i16], input_gate: Option<&[i16]>, forget_gate: &[i16], cell_gate: &[i16]) {
    let clamp16 = |v: i32| v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    for (k, c) in c.iter_mut().enumerate() {
        let (f, g) = (forget_gate[k] as i32, cell_gate[k] as i32);
        // Under CIFG, 1 − f as LiteRT's int16 `Sub1Vector` computes it.
        let i = input_gate.map_or(i16::MAX.wrapping_sub(f as i16) as i32, |i| i[k] as i32);
        match params {
            CellParams::LiteRt { cell_scale, clip } => {
                // LiteRT casts these products to int16 without saturating.
                let kept = rdbpot(f * *c as i32, 15) as i16;
                let added = rdbpot(i * g, 30 + cell_scale) as i16;
                *c = kept.saturating_add(added);
                if clip > 0 {
                    *c = (*c).clamp(-clip, clip);
                }
            }
            CellParams::Tflm { forget_times_cell, input_times_cell_gate, clip, .. } => {
                let kept = clamp16(mul_by_multiplier(f * *c as i32, forget_times_cell));
                let added = clamp16(mul_by_multiplier(i * g, input_times_cell_gate));
                *c = kept.saturating_add(added);
                if let Some(clip) = clip {
                    *c = (*c).min(clip).max(clip.wrapping_neg());
                }
            }
        }
    }
}

/// `h = o ⊙ tanh(c)` requantized to int8, then projected when the operator has a projection.
#[allow(clippy::too_many_arguments)]
fn update_hidden(
    p: &PreparedLstm,
    ops: &Int8Operands,
    rows: usize,
    c: &[i16],
    output_gate: &[i16],
    cell_tanh: &mut [i16],
    hidden: &mut [i8],
    h: &mut [i8],
) {
    for (t, &c) in cell_tanh.iter_mut().zip(c) {
        *t = match p.cell {
            CellParams::LiteRt { cell_scale, .. } => tanh_i16(c, 15 + cell_scale),
            CellParams::Tflm { tanh, .. } => tanh_lut_i16(c, tanh),
        };
    }
    let HiddenParams { scale, zero_point } = p.hidden;
    let (Some(projection), Some(weights)) = (&p.projection, ops.projection_weights) else {
        for ((h, &o), &t) in h.iter_mut().zip(output_gate).zip(cell_tanh.iter()) {
            *h = mul_by_multiplier(o as i32 * t as i32, scale).wrapping_add(zero_point).clamp(-128, 127) as i8;
        }
        return;
    };
    // LiteRT subtracts the hidden zero point here and adds it back through the projection bias.
    for ((v, &o), &t) in hidden.iter_mut().zip(output_gate).zip(cell_tanh.iter()) {
        *v = mul_by_multiplier(o as i32 * t as i32, scale).wrapping_sub(zero_point).clamp(-128, 127) as i8;
    }
    let (n_cell, n_out) = (p.config.n_cell, p.config.n_output);
    for r in 0..rows {
        let hidden = &hidden[r * n_cell..(r + 1) * n_cell];
        for j in 0..n_out {
            let w = &weights[j * n_cell..(j + 1) * n_cell];
            let acc =
                hidden.iter().zip(w).fold(projection.bias[j], |acc, (&a, &b)| acc.wrapping_add(a as i32 * b as i32));
            let v = mul_by_multiplier(acc, projection.scale).wrapping_add(projection.output_zero_point).clamp(-128, 127)
                as i8;
            h[r * n_out + j] = if projection.clip > 0 { v.clamp(-projection.clip, projection.clip) } else { v };
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::lstm::tests::{config, Owned};
    use crate::kernels::lstm::{run_f32, LstmParts};
    use crate::rng::Rng;

    /// A float LSTM quantized the way the TF converter does it (per-tensor symmetric weights, int32
    /// biases at input·weight scale, int16 cell state at 2^-11), owned.
    struct Quantized {
        parts: LstmParts<Vec<i8>, Vec<i16>, Vec<i32>>,
        quant: LstmQuantization,
    }

    fn quantize_weights(w: &Option<Vec<f32>>) -> (Option<Vec<i8>>, Option<f32>) {
        let Some(w) = w else { return (None, None) };
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        (Some(w.iter().map(|v| (v / scale).round() as i8).collect()), Some(scale))
    }

    fn quantize(cfg: &LstmConfig, f: &LstmParts<Vec<f32>, Vec<f32>, Vec<f32>>, input: Quant) -> Quantized {
        let output_state = Quant { scale: 1.0 / 128.0, zero_point: 3 };
        let mut parts = LstmParts::<Vec<i8>, Vec<i16>, Vec<i32>>::default();
        let mut scales = WeightScales::default();
        macro_rules! weights {
            ($($field:ident),*) => {$( (parts.$field, scales.$field) = quantize_weights(&f.$field); )*};
        }
        weights!(input_to_input_weights, input_to_forget_weights, input_to_cell_weights, input_to_output_weights);
        weights!(recurrent_to_input_weights, recurrent_to_forget_weights, recurrent_to_cell_weights);
        weights!(recurrent_to_output_weights);
        let bias = |b: &Option<Vec<f32>>, w: Option<f32>| {
            b.as_ref().map(|b| b.iter().map(|v| (v / (input.scale * w.unwrap())).round() as i32).collect())
        };
        parts.input_gate_bias = bias(&f.input_gate_bias, scales.input_to_input_weights);
        parts.forget_gate_bias = bias(&f.forget_gate_bias, scales.input_to_forget_weights);
        parts.cell_gate_bias = bias(&f.cell_gate_bias, scales.input_to_cell_weights);
        parts.output_gate_bias = bias(&f.output_gate_bias, scales.input_to_output_weights);
        let peephole = |w: &Option<Vec<f32>>| {
            w.as_ref().map(|w| {
                let s = w.iter().fold(0f32, |m, v| m.max(v.abs())) / 32767.0;
                (w.iter().map(|v| (v / s).round() as i16).collect::<Vec<_>>(), s)
            })
        };
        for (src, dst, scale) in [
            (&f.cell_to_input_weights, &mut parts.cell_to_input_weights, &mut scales.cell_to_input_weights),
            (&f.cell_to_forget_weights, &mut parts.cell_to_forget_weights, &mut scales.cell_to_forget_weights),
            (&f.cell_to_output_weights, &mut parts.cell_to_output_weights, &mut scales.cell_to_output_weights),
        ] {
            if let Some((w, s)) = peephole(src) {
                (*dst, *scale) = (Some(w), Some(s));
            }
        }
        let hidden = Quant { scale: 1.0 / 128.0, zero_point: -2 };
        let out_state = if cfg.projection {
            (parts.projection_weights, scales.projection_weights) = quantize_weights(&f.projection_weights);
            let s = hidden.scale * scales.projection_weights.unwrap();
            parts.projection_bias =
                f.projection_bias.as_ref().map(|b| b.iter().map(|v| (v / s).round() as i32).collect());
            Quant { scale: 1.0 / 64.0, zero_point: -1 }
        } else {
            hidden
        };
        let _ = output_state;
        let quant = LstmQuantization {
            input,
            output_state: out_state,
            cell_state_scale: 2f32.powi(-11),
            output: out_state,
            weight_scales: scales,
            intermediates: [None, None, None, None, Some(hidden)],
        };
        Quantized { parts, quant }
    }

    fn view(q: &Quantized) -> Int8Operands<'_> {
        let p = &q.parts;
        LstmParts {
            input_to_input_weights: p.input_to_input_weights.as_deref(),
            input_to_forget_weights: p.input_to_forget_weights.as_deref(),
            input_to_cell_weights: p.input_to_cell_weights.as_deref(),
            input_to_output_weights: p.input_to_output_weights.as_deref(),
            recurrent_to_input_weights: p.recurrent_to_input_weights.as_deref(),
            recurrent_to_forget_weights: p.recurrent_to_forget_weights.as_deref(),
            recurrent_to_cell_weights: p.recurrent_to_cell_weights.as_deref(),
            recurrent_to_output_weights: p.recurrent_to_output_weights.as_deref(),
            cell_to_input_weights: p.cell_to_input_weights.as_deref(),
            cell_to_forget_weights: p.cell_to_forget_weights.as_deref(),
            cell_to_output_weights: p.cell_to_output_weights.as_deref(),
            input_gate_bias: p.input_gate_bias.as_deref(),
            forget_gate_bias: p.forget_gate_bias.as_deref(),
            cell_gate_bias: p.cell_gate_bias.as_deref(),
            output_gate_bias: p.output_gate_bias.as_deref(),
            projection_weights: p.projection_weights.as_deref(),
            projection_bias: p.projection_bias.as_deref(),
            ..Default::default()
        }
    }

    /// Runs the float kernel and both integer arithmetics on one random sequence; returns the
    /// largest differences (in output steps) of LiteRT's arithmetic from float and from TFLM's.
    fn compare(flags: [bool; 5], seed: u64) -> (f32, i32) {
        let mut rng = Rng::new(seed);
        let cfg = config(2, 8, flags);
        let f = Owned::random(&cfg, &mut rng);
        let input = Quant { scale: 4.0 / 255.0, zero_point: 5 };
        let xq: Vec<i8> =
            (0..cfg.batch * cfg.time_steps * cfg.n_input).map(|_| (rng.below(256) as i32 - 128) as i8).collect();
        let x: Vec<f32> = xq.iter().map(|&v| (v as i32 - input.zero_point) as f32 * input.scale).collect();
        let q = quantize(&cfg, &f.parts, input);
        let mut want = vec![0.0; cfg.batch * cfg.time_steps * cfg.n_output];
        let (mut h, mut c) = (vec![0.0; cfg.batch * cfg.n_output], vec![0.0; cfg.batch * cfg.n_cell]);
        run_f32(&cfg, &f.view(), &x, LstmState { output_state: &mut h, cell_state: &mut c }, &mut want).unwrap();
        let run_int = |arithmetic| {
            let zp = q.quant.output_state.zero_point as i8;
            let (mut h, mut c) = (vec![zp; cfg.batch * cfg.n_output], vec![0i16; cfg.batch * cfg.n_cell]);
            let mut out = vec![0i8; want.len()];
            let p = prepare(&cfg, &q.quant, &view(&q), arithmetic)?;
            run(&cfg, &p, &view(&q), &xq, LstmState { output_state: &mut h, cell_state: &mut c }, &mut out)?;
            Ok::<_, Error>(out)
        };
        let litert = run_int(LstmArithmetic::LiteRt).unwrap();
        let s = q.quant.output;
        let from_float = litert
            .iter()
            .zip(&want)
            .map(|(&a, &b)| ((a as i32 - s.zero_point) as f32 * s.scale - b).abs() / s.scale)
            .fold(0f32, f32::max);
        let from_tflm = match run_int(LstmArithmetic::Tflm) {
            Ok(tflm) => litert.iter().zip(&tflm).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap_or(0),
            Err(e) => {
                assert!(flags[..4].iter().any(|&f| f), "{flags:?}: {e}");
                assert!(e.to_string().contains("TFLite Micro's LSTM has no"), "{e}");
                -1
            }
        };
        (from_float, from_tflm)
    }

    #[test]
    fn integer_kernel_tracks_the_float_kernel() {
        // Every combination of CIFG, peephole, projection and time-major (no layer norm: its
        // scales come from calibration, checked against LiteRT in crate/tests/lstm_kernels.rs).
        for mask in 0..32u32 {
            let flags = [0, 1, 2, 3, 4].map(|k| mask & (1 << k) != 0);
            if flags[3] {
                continue;
            }
            let (from_float, from_tflm) = compare(flags, 100 + mask as u64);
            assert!(from_float <= 3.0, "{flags:?}: LiteRT arithmetic {from_float} steps from float");
            assert!(from_tflm <= 2, "{flags:?}: TFLM arithmetic {from_tflm} steps from LiteRT's");
        }
    }

    #[test]
    fn missing_or_unusable_quantization_is_an_error() {
        let mut rng = Rng::new(9);
        let cfg = config(1, 3, [false; 5]);
        let f = Owned::random(&cfg, &mut rng);
        let q = quantize(&cfg, &f.parts, Quant { scale: 0.02, zero_point: 0 });
        let ops = view(&q);
        let mut bad = q.quant.clone();
        bad.intermediates[4] = None;
        let e = prepare(&cfg, &bad, &ops, LstmArithmetic::LiteRt).unwrap_err().to_string();
        assert!(e.contains("intermediate 4"), "{e}");
        assert!(prepare(&cfg, &bad, &ops, LstmArithmetic::Tflm).is_ok(), "TFLM needs no intermediates");
        let mut bad = q.quant.clone();
        bad.cell_state_scale = 0.001;
        let e = prepare(&cfg, &bad, &ops, LstmArithmetic::LiteRt).unwrap_err().to_string();
        assert!(e.contains("not a power of two"), "{e}");
        bad.cell_state_scale = 2f32.powi(-4);
        let e = prepare(&cfg, &bad, &ops, LstmArithmetic::LiteRt).unwrap_err().to_string();
        assert!(e.contains("2^-4"), "{e}");
        for scale in [f32::NAN, f32::INFINITY, -1.0, 1e30] {
            let mut bad = q.quant.clone();
            bad.input.scale = scale;
            for arithmetic in [LstmArithmetic::LiteRt, LstmArithmetic::Tflm] {
                assert!(prepare(&cfg, &bad, &ops, arithmetic).is_err(), "input scale {scale}");
            }
        }
        let mut bad = q.quant.clone();
        bad.weight_scales.recurrent_to_cell_weights = None;
        let e = prepare(&cfg, &bad, &ops, LstmArithmetic::LiteRt).unwrap_err().to_string();
        assert!(e.contains("Cell gate's recurrent weights have no scale"), "{e}");
    }

    #[test]
    fn empty_sizes_run_without_panicking() {
        for (batch, time, n_cell, flags) in [
            (0, 3, 7, [false, true, true, false, false]),
            (2, 0, 7, [false; 5]),
            (1, 2, 0, [false, false, false, false, true]),
        ] {
            let mut cfg = config(batch, time, flags);
            cfg.n_cell = n_cell;
            if !cfg.projection {
                cfg.n_output = n_cell;
            }
            let f = Owned::random(&cfg, &mut Rng::new(4));
            let q = quantize(&cfg, &f.parts, Quant { scale: 0.02, zero_point: 1 });
            for arithmetic in [LstmArithmetic::LiteRt, LstmArithmetic::Tflm] {
                let Ok(p) = prepare(&cfg, &q.quant, &view(&q), arithmetic) else { continue };
                let (mut h, mut c) = (vec![0i8; batch * cfg.n_output], vec![0i16; batch * n_cell]);
                let mut out = vec![0i8; batch * time * cfg.n_output];
                let x = vec![1i8; batch * time * cfg.n_input];
                run(&cfg, &p, &view(&q), &x, LstmState { output_state: &mut h, cell_state: &mut c }, &mut out).unwrap();
            }
        }
    }

    #[test]
    fn hostile_zero_points_and_extreme_values_do_not_panic() {
        let mut rng = Rng::new(11);
        let cfg = config(1, 4, [false, true, true, false, false]);
        let f = Owned::random(&cfg, &mut rng);
        let mut q = quantize(&cfg, &f.parts, Quant { scale: 0.02, zero_point: i32::MIN });
        q.quant.output_state.zero_point = i32::MAX;
        q.quant.intermediates[4] = Some(Quant { scale: 1e-30, zero_point: i32::MIN });
        for w in q.parts.input_to_forget_weights.iter_mut().flatten() {
            *w = i8::MIN;
        }
        let ops = view(&q);
        if let Ok(p) = prepare(&cfg, &q.quant, &ops, LstmArithmetic::LiteRt) {
            let (mut h, mut c) = (vec![i8::MIN; cfg.n_output], vec![i16::MIN; cfg.n_cell]);
            let mut out = vec![0; cfg.time_steps * cfg.n_output];
            let x = vec![i8::MIN; cfg.time_steps * cfg.n_input];
            run(p.config(), &p, &ops, &x, LstmState { output_state: &mut h, cell_state: &mut c }, &mut out).unwrap();
        }
    }
}
