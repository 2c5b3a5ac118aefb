//! UNIDIRECTIONAL_SEQUENCE_LSTM: what the operator is made of (sizes, options, its operands, its
//! two state buffers), shared with the integer kernel in [`super::int8::lstm`], and the float
//! kernel, computed as LiteRT's reference float LSTM (`lstm_eval.cc`, `EvalFloat`) does.
//!
//! One time step, for every batch row (σ the logistic function, `act` the operator's activation,
//! `⊙` element-wise products, `W·x` matrix-vector products, rows of W being cells):
//!
//! ```text
//! i = σ(Wxi·x + Whi·h + wci ⊙ c + bi)          (absent with CIFG: i = 1 − f)
//! f = σ(Wxf·x + Whf·h + wcf ⊙ c + bf)
//! g = act(Wxc·x + Whc·h + bc)
//! c = clip(f ⊙ c + i ⊙ g, cell_clip)
//! o = σ(Wxo·x + Who·h + wco ⊙ c + bo)          (the peephole reads the updated c)
//! h = o ⊙ act(c), then with a projection: h = clip(Wp·h + bp, proj_clip)
//! ```
//!
//! With layer normalization a gate's sum (without its bias) is normalized to zero mean and unit
//! variance, scaled by the gate's coefficients, then the bias is added. `h` is written to the
//! output row of that step and kept for the next one.
//!
//! Layout: the input is `[batch, time, n_input]` (`[time, batch, n_input]` when time-major), the
//! output the same with `n_output`. Weights are row-major with one row per cell (per output for the
//! projection), as TFLite stores them.
//!
//! State: the output (hidden) state `[batch, n_output]` and the cell state `[batch, n_cell]` are
//! TFLite variable tensors. LiteRT updates them in place on every invoke and keeps them for the next
//! invoke (a fresh interpreter starts from zeros; `reset_all_variables()` zeroes them again), so a
//! caller that wants one independent sequence per invoke zeroes them first. The kernels here read
//! and update the buffers they are given, exactly like one invoke.
//!
//! Cost: each time step and batch row takes `4·n_cell·(n_input + n_output)` multiply-adds (3· with
//! CIFG), plus `n_output·n_cell` with a projection, and O(n_cell) element-wise work: a plain
//! reference loop, about 27k instructions per step on the MNIST LSTM (28 inputs, 20 cells) and
//! 450k on the micro-speech LSTM (257 inputs, 80 cells), native x86-64 release build (callgrind).

use crate::error::{Error, Location, Result};

/// The activation of the cell gate and of the cell state before the output gate (TFLite's fused
/// activation option of the operator; Keras LSTMs use `Tanh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LstmActivation {
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    SignBit,
}

impl LstmActivation {
    /// From TFLite's `ActivationFunctionType` code.
    pub fn from_tflite(code: i32) -> Option<LstmActivation> {
        Some(match code {
            0 => LstmActivation::None,
            1 => LstmActivation::Relu,
            2 => LstmActivation::ReluN1To1,
            3 => LstmActivation::Relu6,
            4 => LstmActivation::Tanh,
            5 => LstmActivation::SignBit,
            _ => return None,
        })
    }
}

/// Sizes, options and which optional parts the operator has.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmConfig {
    pub batch: usize,
    pub time_steps: usize,
    /// The input and output are `[time, batch, features]` rather than `[batch, time, features]`.
    pub time_major: bool,
    pub n_input: usize,
    pub n_cell: usize,
    /// The width of the output and output state: `n_cell` unless there is a projection.
    pub n_output: usize,
    pub activation: LstmActivation,
    /// Clips the cell state to ±`cell_clip` when positive.
    pub cell_clip: f32,
    /// Clips the projected output to ±`proj_clip` when positive.
    pub proj_clip: f32,
    /// Coupled input and forget gates: no input gate, `i = 1 − f`.
    pub cifg: bool,
    /// Peephole connections from the cell state to the input, forget and output gates.
    pub peephole: bool,
    /// A projection of the hidden state to `n_output` (with an optional bias).
    pub projection: bool,
    /// Layer normalization of the gates.
    pub layer_norm: bool,
}

/// The operator's constant operands, in TFLite's operand order (the number in each comment). The
/// remaining operands are the input (0) and the output and cell state (18, 19), which the kernels
/// take as arguments. `W` is the type of weight matrices, `C` of per-cell vectors (peephole weights
/// and layer-norm coefficients), `B` of biases. The same struct also carries per-operand facts, e.g.
/// the quantization scales of the integer kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LstmParts<W, C, B> {
    /// 1, `[n_cell, n_input]`, absent with CIFG.
    pub input_to_input_weights: Option<W>,
    /// 2, `[n_cell, n_input]`.
    pub input_to_forget_weights: Option<W>,
    /// 3, `[n_cell, n_input]`.
    pub input_to_cell_weights: Option<W>,
    /// 4, `[n_cell, n_input]`.
    pub input_to_output_weights: Option<W>,
    /// 5, `[n_cell, n_output]`, absent with CIFG.
    pub recurrent_to_input_weights: Option<W>,
    /// 6, `[n_cell, n_output]`.
    pub recurrent_to_forget_weights: Option<W>,
    /// 7, `[n_cell, n_output]`.
    pub recurrent_to_cell_weights: Option<W>,
    /// 8, `[n_cell, n_output]`.
    pub recurrent_to_output_weights: Option<W>,
    /// 9, `[n_cell]`, peephole without CIFG.
    pub cell_to_input_weights: Option<C>,
    /// 10, `[n_cell]`, peephole.
    pub cell_to_forget_weights: Option<C>,
    /// 11, `[n_cell]`, peephole.
    pub cell_to_output_weights: Option<C>,
    /// 12, `[n_cell]`, absent with CIFG.
    pub input_gate_bias: Option<B>,
    /// 13, `[n_cell]`.
    pub forget_gate_bias: Option<B>,
    /// 14, `[n_cell]`.
    pub cell_gate_bias: Option<B>,
    /// 15, `[n_cell]`.
    pub output_gate_bias: Option<B>,
    /// 16, `[n_output, n_cell]`, projection.
    pub projection_weights: Option<W>,
    /// 17, `[n_output]`, optional with a projection.
    pub projection_bias: Option<B>,
    /// 20, `[n_cell]`, layer norm without CIFG.
    pub input_layer_norm_coefficients: Option<C>,
    /// 21, `[n_cell]`, layer norm.
    pub forget_layer_norm_coefficients: Option<C>,
    /// 22, `[n_cell]`, layer norm.
    pub cell_layer_norm_coefficients: Option<C>,
    /// 23, `[n_cell]`, layer norm.
    pub output_layer_norm_coefficients: Option<C>,
}

impl<W, C, B> LstmParts<W, C, B> {
    /// Each part from its TFLite operand index: `w` gives weight matrices, `c` per-cell vectors
    /// (peephole weights, layer-norm coefficients), `b` biases.
    pub fn from_operands(
        w: impl Fn(usize) -> Option<W>,
        c: impl Fn(usize) -> Option<C>,
        b: impl Fn(usize) -> Option<B>,
    ) -> Self {
        LstmParts {
            input_to_input_weights: w(1),
            input_to_forget_weights: w(2),
            input_to_cell_weights: w(3),
            input_to_output_weights: w(4),
            recurrent_to_input_weights: w(5),
            recurrent_to_forget_weights: w(6),
            recurrent_to_cell_weights: w(7),
            recurrent_to_output_weights: w(8),
            cell_to_input_weights: c(9),
            cell_to_forget_weights: c(10),
            cell_to_output_weights: c(11),
            input_gate_bias: b(12),
            forget_gate_bias: b(13),
            cell_gate_bias: b(14),
            output_gate_bias: b(15),
            projection_weights: w(16),
            projection_bias: b(17),
            input_layer_norm_coefficients: c(20),
            forget_layer_norm_coefficients: c(21),
            cell_layer_norm_coefficients: c(22),
            output_layer_norm_coefficients: c(23),
        }
    }
}

impl<W, C, B> LstmParts<Vec<W>, Vec<C>, Vec<B>> {
    /// Borrows owned operands as the kernels take them.
    pub fn as_slices(&self) -> LstmOperands<'_, W, C, B> {
        LstmParts {
            input_to_input_weights: self.input_to_input_weights.as_deref(),
            input_to_forget_weights: self.input_to_forget_weights.as_deref(),
            input_to_cell_weights: self.input_to_cell_weights.as_deref(),
            input_to_output_weights: self.input_to_output_weights.as_deref(),
            recurrent_to_input_weights: self.recurrent_to_input_weights.as_deref(),
            recurrent_to_forget_weights: self.recurrent_to_forget_weights.as_deref(),
            recurrent_to_cell_weights: self.recurrent_to_cell_weights.as_deref(),
            recurrent_to_output_weights: self.recurrent_to_output_weights.as_deref(),
            cell_to_input_weights: self.cell_to_input_weights.as_deref(),
            cell_to_forget_weights: self.cell_to_forget_weights.as_deref(),
            cell_to_output_weights: self.cell_to_output_weights.as_deref(),
            input_gate_bias: self.input_gate_bias.as_deref(),
            forget_gate_bias: self.forget_gate_bias.as_deref(),
            cell_gate_bias: self.cell_gate_bias.as_deref(),
            output_gate_bias: self.output_gate_bias.as_deref(),
            projection_weights: self.projection_weights.as_deref(),
            projection_bias: self.projection_bias.as_deref(),
            input_layer_norm_coefficients: self.input_layer_norm_coefficients.as_deref(),
            forget_layer_norm_coefficients: self.forget_layer_norm_coefficients.as_deref(),
            cell_layer_norm_coefficients: self.cell_layer_norm_coefficients.as_deref(),
            output_layer_norm_coefficients: self.output_layer_norm_coefficients.as_deref(),
        }
    }
}

/// The operands as slices of their data.
pub type LstmOperands<'a, W, C, B> = LstmParts<&'a [W], &'a [C], &'a [B]>;

/// The float operator's operands.
pub type FloatOperands<'a> = LstmOperands<'a, f32, f32, f32>;

/// The two variable tensors, read at the start and updated in place: the output (hidden) state
/// `[batch, n_output]` (TFLite operand 18) and the cell state `[batch, n_cell]` (operand 19).
#[derive(Debug)]
pub struct LstmState<'a, H, S> {
    pub output_state: &'a mut [H],
    pub cell_state: &'a mut [S],
}

/// The four gates, in the order LiteRT computes them (the output gate after the cell update).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Input,
    Forget,
    Cell,
    Output,
}

/// One gate's operands.
#[derive(Clone, Copy, Debug)]
pub struct GateOperands<'a, W, C, B> {
    pub input_weights: &'a [W],
    pub recurrent_weights: &'a [W],
    pub bias: &'a [B],
    pub peephole: Option<&'a [C]>,
    pub layer_norm: Option<&'a [C]>,
}

impl<'a, W, C, B> LstmOperands<'a, W, C, B> {
    /// The operands of `gate`, or an error naming what is missing.
    pub fn gate(&self, gate: Gate) -> Result<GateOperands<'a, W, C, B>> {
        let (x, h, p, b, n) = match gate {
            Gate::Input => (
                self.input_to_input_weights,
                self.recurrent_to_input_weights,
                self.cell_to_input_weights,
                self.input_gate_bias,
                self.input_layer_norm_coefficients,
            ),
            Gate::Forget => (
                self.input_to_forget_weights,
                self.recurrent_to_forget_weights,
                self.cell_to_forget_weights,
                self.forget_gate_bias,
                self.forget_layer_norm_coefficients,
            ),
            Gate::Cell => (
                self.input_to_cell_weights,
                self.recurrent_to_cell_weights,
                None,
                self.cell_gate_bias,
                self.cell_layer_norm_coefficients,
            ),
            Gate::Output => (
                self.input_to_output_weights,
                self.recurrent_to_output_weights,
                self.cell_to_output_weights,
                self.output_gate_bias,
                self.output_layer_norm_coefficients,
            ),
        };
        let missing = || graph(format!("the {gate:?} gate's weights or bias are missing"));
        Ok(GateOperands {
            input_weights: x.ok_or_else(missing)?,
            recurrent_weights: h.ok_or_else(missing)?,
            bias: b.ok_or_else(missing)?,
            peephole: p,
            layer_norm: n,
        })
    }

    /// Each operand's TFLite index, name and length (`None` when absent).
    fn lengths(&self) -> [(usize, &'static str, Option<usize>); 21] {
        let w = |s: Option<&[W]>| s.map(<[W]>::len);
        let c = |s: Option<&[C]>| s.map(<[C]>::len);
        let b = |s: Option<&[B]>| s.map(<[B]>::len);
        [
            (1, "input_to_input_weights", w(self.input_to_input_weights)),
            (2, "input_to_forget_weights", w(self.input_to_forget_weights)),
            (3, "input_to_cell_weights", w(self.input_to_cell_weights)),
            (4, "input_to_output_weights", w(self.input_to_output_weights)),
            (5, "recurrent_to_input_weights", w(self.recurrent_to_input_weights)),
            (6, "recurrent_to_forget_weights", w(self.recurrent_to_forget_weights)),
            (7, "recurrent_to_cell_weights", w(self.recurrent_to_cell_weights)),
            (8, "recurrent_to_output_weights", w(self.recurrent_to_output_weights)),
            (9, "cell_to_input_weights", c(self.cell_to_input_weights)),
            (10, "cell_to_forget_weights", c(self.cell_to_forget_weights)),
            (11, "cell_to_output_weights", c(self.cell_to_output_weights)),
            (12, "input_gate_bias", b(self.input_gate_bias)),
            (13, "forget_gate_bias", b(self.forget_gate_bias)),
            (14, "cell_gate_bias", b(self.cell_gate_bias)),
            (15, "output_gate_bias", b(self.output_gate_bias)),
            (16, "projection_weights", w(self.projection_weights)),
            (17, "projection_bias", b(self.projection_bias)),
            (20, "input_layer_norm_coefficients", c(self.input_layer_norm_coefficients)),
            (21, "forget_layer_norm_coefficients", c(self.forget_layer_norm_coefficients)),
            (22, "cell_layer_norm_coefficients", c(self.cell_layer_norm_coefficients)),
            (23, "output_layer_norm_coefficients", c(self.output_layer_norm_coefficients)),
        ]
    }
}

/// What a TFLite UNIDIRECTIONAL_SEQUENCE_LSTM node says about its sizes and options, as plain
/// numbers read from the node's tensors and options; [`LstmConfig::from_tflite`] checks them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmNodeFacts<'a> {
    /// Operand 0's shape: `[batch, time, n_input]` (`[time, batch, n_input]` when time-major).
    pub input_shape: &'a [usize],
    /// Operand 4's shape, `[n_cell, n_input]`.
    pub input_to_output_weights_shape: &'a [usize],
    /// Operand 8's shape, `[n_cell, n_output]`.
    pub recurrent_to_output_weights_shape: &'a [usize],
    /// Which operands the node has, by TFLite operand index (20 or 24 entries).
    pub present: &'a [bool],
    /// The `fused_activation_function` option (TFLite's `ActivationFunctionType` code).
    pub activation: i32,
    pub cell_clip: f32,
    pub proj_clip: f32,
    pub time_major: bool,
    /// The `diagonal_recurrent_tensors` option (1-D recurrent weights), which is not supported.
    pub diagonal_recurrent_tensors: bool,
}

impl LstmConfig {
    /// The configuration of a TFLite node, or an error saying what does not fit.
    pub fn from_tflite(facts: &LstmNodeFacts) -> Result<LstmConfig> {
        let present = |i: usize| facts.present.get(i).copied().unwrap_or(false);
        if facts.present.len() != 20 && facts.present.len() != 24 {
            return Err(graph(format!("{} operands, expected 20 or 24", facts.present.len())));
        }
        if facts.diagonal_recurrent_tensors {
            return Err(unsupported("diagonal recurrent weights"));
        }
        let (time_major, input) = (facts.time_major, facts.input_shape);
        let &[outer, inner, n_input] = input else {
            return Err(graph(format!("the input has shape {input:?}, expected rank 3")));
        };
        let (batch, time_steps) = if time_major { (inner, outer) } else { (outer, inner) };
        let &[n_cell, weights_input] = facts.input_to_output_weights_shape else {
            return Err(graph(format!(
                "operand 4 has shape {:?}, expected [n_cell, n_input]",
                facts.input_to_output_weights_shape
            )));
        };
        let &[recurrent_cells, n_output] = facts.recurrent_to_output_weights_shape else {
            return Err(unsupported("recurrent weights that are not a [n_cell, n_output] matrix"));
        };
        if weights_input != n_input || recurrent_cells != n_cell {
            return Err(graph(format!(
                "operands 4 {:?} and 8 {:?} do not fit an input of width {n_input}",
                facts.input_to_output_weights_shape, facts.recurrent_to_output_weights_shape
            )));
        }
        let activation = LstmActivation::from_tflite(facts.activation)
            .ok_or_else(|| graph(format!("unknown activation code {}", facts.activation)))?;
        Ok(LstmConfig {
            batch,
            time_steps,
            time_major,
            n_input,
            n_cell,
            n_output,
            activation,
            cell_clip: facts.cell_clip,
            proj_clip: facts.proj_clip,
            cifg: !present(1),
            peephole: present(11),
            projection: present(16),
            layer_norm: present(21),
        })
    }
}

/// Element counts of the tensors a run reads and writes, computed without overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmSizes {
    pub input: usize,
    pub output: usize,
    pub output_state: usize,
    pub cell_state: usize,
}

/// Whether an operand must be there, and with how many elements.
enum Expect {
    Absent,
    Required(usize),
    Optional(usize),
}

/// One step of the sequence: `rows` batch rows starting at `state_row`, whose inputs start at
/// element `input` and whose outputs start at element `output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub rows: usize,
    pub state_row: usize,
    pub input: usize,
    pub output: usize,
}

fn graph(message: String) -> Error {
    Error::graph(format!("UNIDIRECTIONAL_SEQUENCE_LSTM: {message}"), Location::default())
}

fn unsupported(message: &str) -> Error {
    Error::unsupported(format!("UNIDIRECTIONAL_SEQUENCE_LSTM: {message}"), Location::default())
}

fn product(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| graph(format!("the {what} size {dims:?} overflows")))
}

impl LstmConfig {
    /// Checks the sizes and that the operands match the optional parts; returns the element
    /// counts of the input, output and states. Errors name the operand (by TFLite index).
    pub fn check<W, C, B>(&self, operands: &LstmOperands<W, C, B>) -> Result<LstmSizes> {
        if !(self.cell_clip >= 0.0 && self.proj_clip >= 0.0) {
            return Err(graph(format!(
                "clip values must not be negative (cell {}, projection {})",
                self.cell_clip, self.proj_clip
            )));
        }
        if !self.projection && self.n_output != self.n_cell {
            return Err(graph(format!(
                "without a projection n_output ({}) must equal n_cell ({})",
                self.n_output, self.n_cell
            )));
        }
        let sizes = LstmSizes {
            input: product(&[self.batch, self.time_steps, self.n_input], "input")?,
            output: product(&[self.batch, self.time_steps, self.n_output], "output")?,
            output_state: product(&[self.batch, self.n_output], "output state")?,
            cell_state: product(&[self.batch, self.n_cell], "cell state")?,
        };
        let input_weights = product(&[self.n_cell, self.n_input], "input weights")?;
        let recurrent_weights = product(&[self.n_cell, self.n_output], "recurrent weights")?;
        for (index, name, len) in operands.lengths() {
            let expect = self.expect(index, input_weights, recurrent_weights);
            match (expect, len) {
                (Expect::Absent, None) | (Expect::Optional(_), None) => {}
                (Expect::Required(_), None) => return Err(graph(format!("operand {index} ({name}) is missing"))),
                (Expect::Absent, Some(_)) => {
                    return Err(graph(format!(
                        "operand {index} ({name}) is given but the configuration has no use for it"
                    )))
                }
                (Expect::Required(n) | Expect::Optional(n), Some(len)) if len != n => {
                    return Err(graph(format!("operand {index} ({name}) has {len} elements, expected {n}")))
                }
                _ => {}
            }
        }
        Ok(sizes)
    }

    /// What operand `index` must be, given the optional parts.
    fn expect(&self, index: usize, input_weights: usize, recurrent_weights: usize) -> Expect {
        let n_cell = self.n_cell;
        let when = |present: bool, len: usize| if present { Expect::Required(len) } else { Expect::Absent };
        match index {
            1 => when(!self.cifg, input_weights),
            2..=4 => Expect::Required(input_weights),
            5 => when(!self.cifg, recurrent_weights),
            6..=8 => Expect::Required(recurrent_weights),
            9 => when(self.peephole && !self.cifg, n_cell),
            10 | 11 => when(self.peephole, n_cell),
            12 => when(!self.cifg, n_cell),
            13..=15 => Expect::Required(n_cell),
            // The size of the projection weights equals the recurrent weights' (n_output × n_cell).
            16 => when(self.projection, recurrent_weights),
            17 if self.projection => Expect::Optional(self.n_output),
            17 => Expect::Absent,
            20 => when(self.layer_norm && !self.cifg, n_cell),
            _ => when(self.layer_norm, n_cell),
        }
    }

    /// The steps of one invoke, in LiteRT's order: time-major runs all batch rows together at each
    /// time step; batch-major runs each row's whole sequence in turn.
    pub fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        let (batch, time) = (self.batch, self.time_steps);
        let (n_in, n_out) = (self.n_input, self.n_output);
        let (outer, inner) = if self.time_major { (time, 1) } else { (batch, time) };
        (0..outer).flat_map(move |a| {
            (0..inner).map(move |t| {
                if self.time_major {
                    Step { rows: batch, state_row: 0, input: a * batch * n_in, output: a * batch * n_out }
                } else {
                    let row = a * time + t;
                    Step { rows: 1, state_row: a, input: row * n_in, output: row * n_out }
                }
            })
        })
    }

    /// The largest number of batch rows a step takes.
    pub fn rows_per_step(&self) -> usize {
        if self.time_major {
            self.batch
        } else {
            self.batch.min(1)
        }
    }
}

/// Checks the lengths of the buffers a run is given.
pub(crate) fn check_buffers(sizes: &LstmSizes, input: usize, output: usize, hidden: usize, cell: usize) -> Result<()> {
    for (what, got, want) in [
        ("input", input, sizes.input),
        ("output", output, sizes.output),
        ("output state", hidden, sizes.output_state),
        ("cell state", cell, sizes.cell_state),
    ] {
        if got != want {
            return Err(graph(format!("the {what} has {got} elements, expected {want}")));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The float kernel
// ------------------------------------------------------------------------------------------------

/// Runs the float operator over the whole sequence, as one LiteRT invoke: reads `input`, writes
/// `output`, and updates `state` in place.
pub fn run_f32(
    config: &LstmConfig,
    operands: &FloatOperands,
    input: &[f32],
    state: LstmState<f32, f32>,
    output: &mut [f32],
) -> Result<()> {
    let sizes = config.check(operands)?;
    check_buffers(&sizes, input.len(), output.len(), state.output_state.len(), state.cell_state.len())?;
    if matches!(config.activation, LstmActivation::None | LstmActivation::SignBit) {
        // LiteRT leaves the gate buffer unwritten for these, so its result is not defined by the
        // model: refuse rather than guess.
        return Err(unsupported("float LSTM with activation NONE or SIGN_BIT"));
    }
    let gates = FloatGates::new(config, operands)?;
    let mut scratch = FloatScratch::new(config.rows_per_step(), config.n_cell);
    for step in config.steps() {
        let (n_in, n_out, n_cell) = (config.n_input, config.n_output, config.n_cell);
        let x = &input[step.input..step.input + step.rows * n_in];
        let h = &mut state.output_state[step.state_row * n_out..(step.state_row + step.rows) * n_out];
        let c = &mut state.cell_state[step.state_row * n_cell..(step.state_row + step.rows) * n_cell];
        step_f32(config, operands, &gates, step.rows, x, h, c, &mut scratch);
        output[step.output..step.output + step.rows * n_out].copy_from_slice(h);
    }
    Ok(())
}

/// The gates' operands, looked up once.
struct FloatGates<'a> {
    input: Option<GateOperands<'a, f32, f32, f32>>,
    forget: GateOperands<'a, f32, f32, f32>,
    cell: GateOperands<'a, f32, f32, f32>,
    output: GateOperands<'a, f32, f32, f32>,
}

impl<'a> FloatGates<'a> {
    fn new(config: &LstmConfig, operands: &FloatOperands<'a>) -> Result<FloatGates<'a>> {
        Ok(FloatGates {
            input: if config.cifg { None } else { Some(operands.gate(Gate::Input)?) },
            forget: operands.gate(Gate::Forget)?,
            cell: operands.gate(Gate::Cell)?,
            output: operands.gate(Gate::Output)?,
        })
    }
}

/// Per-step buffers, `rows × n_cell` each.
struct FloatScratch {
    input_gate: Vec<f32>,
    forget_gate: Vec<f32>,
    cell_gate: Vec<f32>,
    output_gate: Vec<f32>,
    hidden: Vec<f32>,
}

impl FloatScratch {
    fn new(rows: usize, n_cell: usize) -> FloatScratch {
        // rows·n_cell is at most the cell state's size, checked before.
        let n = rows * n_cell;
        FloatScratch {
            input_gate: vec![0.0; n],
            forget_gate: vec![0.0; n],
            cell_gate: vec![0.0; n],
            output_gate: vec![0.0; n],
            hidden: vec![0.0; n],
        }
    }
}

/// One time step for `rows` batch rows: `x` is `[rows, n_input]`, `h` `[rows, n_output]` and `c`
/// `[rows, n_cell]`; `h` and `c` are updated.
#[allow(clippy::too_many_arguments)]
fn step_f32(
    config: &LstmConfig,
    operands: &FloatOperands,
    gates: &FloatGates,
    rows: usize,
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    s: &mut FloatScratch,
) {
    let n = rows * config.n_cell;
    let sigmoid = FloatActivation::Sigmoid;
    let act = FloatActivation::Lstm(config.activation);
    if let Some(input_gate) = &gates.input {
        float_gate(config, input_gate, rows, x, h, Some(c), sigmoid, &mut s.input_gate[..n]);
    }
    float_gate(config, &gates.forget, rows, x, h, Some(c), sigmoid, &mut s.forget_gate[..n]);
    float_gate(config, &gates.cell, rows, x, h, None, act, &mut s.cell_gate[..n]);
    let input_gate = if config.cifg { None } else { Some(&s.input_gate[..n]) };
    update_cell_f32(c, input_gate, &s.forget_gate[..n], &s.cell_gate[..n], config.cell_clip);
    float_gate(config, &gates.output, rows, x, h, Some(c), sigmoid, &mut s.output_gate[..n]);
    update_hidden_f32(config, operands, rows, c, &s.output_gate[..n], &mut s.hidden[..n], h);
}

#[derive(Clone, Copy)]
enum FloatActivation {
    Sigmoid,
    Lstm(LstmActivation),
}

impl FloatActivation {
    #[inline]
    fn apply(self, v: f32) -> f32 {
        match self {
            FloatActivation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            FloatActivation::Lstm(LstmActivation::Tanh) => v.tanh(),
            FloatActivation::Lstm(LstmActivation::Relu) => v.max(0.0),
            FloatActivation::Lstm(LstmActivation::Relu6) => v.clamp(0.0, 6.0),
            FloatActivation::Lstm(LstmActivation::ReluN1To1) => v.clamp(-1.0, 1.0),
            FloatActivation::Lstm(LstmActivation::SignBit) => (v.is_sign_negative() as u8) as f32,
            FloatActivation::Lstm(LstmActivation::None) => v,
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// One gate for `rows` batch rows into `out` (`[rows, n_cell]`): the bias (unless layer norm),
/// the input and recurrent products, the peephole, the layer norm, the activation.
#[allow(clippy::too_many_arguments)]
fn float_gate(
    config: &LstmConfig,
    gate: &GateOperands<f32, f32, f32>,
    rows: usize,
    x: &[f32],
    h: &[f32],
    c: Option<&[f32]>,
    activation: FloatActivation,
    out: &mut [f32],
) {
    let (n_in, n_out, n_cell) = (config.n_input, config.n_output, config.n_cell);
    let peephole = gate.peephole.zip(c);
    for r in 0..rows {
        let (x, h) = (&x[r * n_in..(r + 1) * n_in], &h[r * n_out..(r + 1) * n_out]);
        for i in 0..n_cell {
            let start = if gate.layer_norm.is_some() { 0.0 } else { gate.bias[i] };
            let mut acc = start + dot(&gate.input_weights[i * n_in..(i + 1) * n_in], x);
            acc += dot(&gate.recurrent_weights[i * n_out..(i + 1) * n_out], h);
            if let Some((w, c)) = peephole {
                acc += w[i] * c[r * n_cell + i];
            }
            out[r * n_cell + i] = acc;
        }
        if let Some(coefficients) = gate.layer_norm {
            layer_norm_f32(&mut out[r * n_cell..(r + 1) * n_cell], coefficients, gate.bias);
        }
    }
    for v in out.iter_mut() {
        *v = activation.apply(*v);
    }
}

/// Normalizes one row to zero mean and unit variance (with 1e-8 added to the variance), then
/// scales by the coefficients and adds the bias (LiteRT's `MeanStddevNormalization`).
fn layer_norm_f32(row: &mut [f32], coefficients: &[f32], bias: &[f32]) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inverse_stddev = 1.0 / (variance + 1e-8).sqrt();
    for ((v, k), b) in row.iter_mut().zip(coefficients).zip(bias) {
        *v = (*v - mean) * inverse_stddev * k + b;
    }
}

/// `c = clip(f ⊙ c + i ⊙ g)`, with `i = 1 − f` under CIFG.
fn update_cell_f32(c: &mut [f32], input_gate: Option<&[f32]>, forget_gate: &[f32], cell_gate: &[f32], clip: f32) {
    for (k, c) in c.iter_mut().enumerate() {
        let i = input_gate.map_or(1.0 - forget_gate[k], |i| i[k]);
        *c = forget_gate[k] * *c + cell_gate[k] * i;
        if clip > 0.0 {
            *c = c.clamp(-clip, clip);
        }
    }
}

/// `h = o ⊙ act(c)`, projected and clipped when the operator has a projection.
fn update_hidden_f32(
    config: &LstmConfig,
    operands: &FloatOperands,
    rows: usize,
    c: &[f32],
    output_gate: &[f32],
    hidden: &mut [f32],
    h: &mut [f32],
) {
    let act = FloatActivation::Lstm(config.activation);
    for ((v, c), o) in hidden.iter_mut().zip(c).zip(output_gate) {
        *v = o * act.apply(*c);
    }
    let Some(weights) = operands.projection_weights else {
        h.copy_from_slice(hidden);
        return;
    };
    let (n_cell, n_out) = (config.n_cell, config.n_output);
    for r in 0..rows {
        for j in 0..n_out {
            let bias = operands.projection_bias.map_or(0.0, |b| b[j]);
            let mut v = bias + dot(&weights[j * n_cell..(j + 1) * n_cell], &hidden[r * n_cell..(r + 1) * n_cell]);
            if config.proj_clip > 0.0 {
                v = v.clamp(-config.proj_clip, config.proj_clip);
            }
            h[r * n_out + j] = v;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::Rng;

    /// Owned operands for tests.
    pub(crate) struct Owned {
        pub parts: LstmParts<Vec<f32>, Vec<f32>, Vec<f32>>,
    }

    impl Owned {
        pub(crate) fn random(config: &LstmConfig, rng: &mut Rng) -> Owned {
            let mut v = |n: usize, scale: f32| Some((0..n).map(|_| (rng.uniform() * 2.0 - 1.0) * scale).collect());
            let (ni, no, nc) = (config.n_input, config.n_output, config.n_cell);
            let not_cifg = !config.cifg;
            let mut p = LstmParts::<Vec<f32>, Vec<f32>, Vec<f32>>::default();
            for (slot, present) in [
                (&mut p.input_to_input_weights, not_cifg),
                (&mut p.input_to_forget_weights, true),
                (&mut p.input_to_cell_weights, true),
                (&mut p.input_to_output_weights, true),
            ] {
                *slot = if present { v(nc * ni, 0.5) } else { None };
            }
            for (slot, present) in [
                (&mut p.recurrent_to_input_weights, not_cifg),
                (&mut p.recurrent_to_forget_weights, true),
                (&mut p.recurrent_to_cell_weights, true),
                (&mut p.recurrent_to_output_weights, true),
            ] {
                *slot = if present { v(nc * no, 0.5) } else { None };
            }
            p.cell_to_input_weights = if config.peephole && not_cifg { v(nc, 0.5) } else { None };
            p.cell_to_forget_weights = if config.peephole { v(nc, 0.5) } else { None };
            p.cell_to_output_weights = if config.peephole { v(nc, 0.5) } else { None };
            p.input_gate_bias = if not_cifg { v(nc, 0.3) } else { None };
            p.forget_gate_bias = v(nc, 0.3);
            p.cell_gate_bias = v(nc, 0.3);
            p.output_gate_bias = v(nc, 0.3);
            p.projection_weights = if config.projection { v(no * nc, 0.5) } else { None };
            p.projection_bias = if config.projection { v(no, 0.2) } else { None };
            let ln = config.layer_norm;
            p.input_layer_norm_coefficients = if ln && not_cifg { v(nc, 1.0) } else { None };
            p.forget_layer_norm_coefficients = if ln { v(nc, 1.0) } else { None };
            p.cell_layer_norm_coefficients = if ln { v(nc, 1.0) } else { None };
            p.output_layer_norm_coefficients = if ln { v(nc, 1.0) } else { None };
            Owned { parts: p }
        }

        pub(crate) fn view(&self) -> FloatOperands<'_> {
            let p = &self.parts;
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
                input_layer_norm_coefficients: p.input_layer_norm_coefficients.as_deref(),
                forget_layer_norm_coefficients: p.forget_layer_norm_coefficients.as_deref(),
                cell_layer_norm_coefficients: p.cell_layer_norm_coefficients.as_deref(),
                output_layer_norm_coefficients: p.output_layer_norm_coefficients.as_deref(),
            }
        }
    }

    pub(crate) fn config(batch: usize, time: usize, flags: [bool; 5]) -> LstmConfig {
        let [cifg, peephole, projection, layer_norm, time_major] = flags;
        LstmConfig {
            batch,
            time_steps: time,
            time_major,
            n_input: 5,
            n_cell: 7,
            n_output: if projection { 4 } else { 7 },
            activation: LstmActivation::Tanh,
            cell_clip: if peephole { 0.9 } else { 0.0 },
            proj_clip: if projection { 0.4 } else { 0.0 },
            cifg,
            peephole,
            projection,
            layer_norm,
        }
    }

    /// The textbook equations in f64, one batch row and one time step at a time, written
    /// independently of the kernel's structure.
    fn reference(
        cfg: &LstmConfig,
        p: &LstmParts<Vec<f32>, Vec<f32>, Vec<f32>>,
        x: &[f32],
        h0: &[f32],
        c0: &[f32],
    ) -> Vec<f64> {
        let (ni, no, nc, t_n) = (cfg.n_input, cfg.n_output, cfg.n_cell, cfg.time_steps);
        let mut out = vec![0.0; cfg.batch * t_n * no];
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let row = |w: &Vec<f32>, i: usize, v: &[f64], n: usize| (0..n).map(|k| w[i * n + k] as f64 * v[k]).sum::<f64>();
        for b in 0..cfg.batch {
            let mut h: Vec<f64> = h0[b * no..(b + 1) * no].iter().map(|&v| v as f64).collect();
            let mut c: Vec<f64> = c0[b * nc..(b + 1) * nc].iter().map(|&v| v as f64).collect();
            for t in 0..t_n {
                let at = if cfg.time_major { (t * cfg.batch + b) * ni } else { (b * t_n + t) * ni };
                let xv: Vec<f64> = x[at..at + ni].iter().map(|&v| v as f64).collect();
                let pre = |wx: &Option<Vec<f32>>,
                           wh: &Option<Vec<f32>>,
                           wc: &Option<Vec<f32>>,
                           bias: &Option<Vec<f32>>,
                           ln: &Option<Vec<f32>>,
                           c: &[f64]| {
                    let mut z: Vec<f64> = (0..nc)
                        .map(|i| {
                            let mut s = row(wx.as_ref().unwrap(), i, &xv, ni) + row(wh.as_ref().unwrap(), i, &h, no);
                            if let Some(wc) = wc {
                                s += wc[i] as f64 * c[i];
                            }
                            s
                        })
                        .collect();
                    if let Some(k) = ln {
                        let mean = z.iter().sum::<f64>() / nc as f64;
                        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nc as f64;
                        for (i, v) in z.iter_mut().enumerate() {
                            *v = (*v - mean) / (var + 1e-8).sqrt() * k[i] as f64;
                        }
                    }
                    for (i, v) in z.iter_mut().enumerate() {
                        *v += bias.as_ref().unwrap()[i] as f64;
                    }
                    z
                };
                let f: Vec<f64> = pre(
                    &p.input_to_forget_weights,
                    &p.recurrent_to_forget_weights,
                    &p.cell_to_forget_weights,
                    &p.forget_gate_bias,
                    &p.forget_layer_norm_coefficients,
                    &c,
                )
                .into_iter()
                .map(sig)
                .collect();
                let i: Vec<f64> = if cfg.cifg {
                    f.iter().map(|f| 1.0 - f).collect()
                } else {
                    pre(
                        &p.input_to_input_weights,
                        &p.recurrent_to_input_weights,
                        &p.cell_to_input_weights,
                        &p.input_gate_bias,
                        &p.input_layer_norm_coefficients,
                        &c,
                    )
                    .into_iter()
                    .map(sig)
                    .collect()
                };
                let g: Vec<f64> = pre(
                    &p.input_to_cell_weights,
                    &p.recurrent_to_cell_weights,
                    &None,
                    &p.cell_gate_bias,
                    &p.cell_layer_norm_coefficients,
                    &c,
                )
                .into_iter()
                .map(f64::tanh)
                .collect();
                for k in 0..nc {
                    c[k] = f[k] * c[k] + i[k] * g[k];
                    if cfg.cell_clip > 0.0 {
                        c[k] = c[k].clamp(-cfg.cell_clip as f64, cfg.cell_clip as f64);
                    }
                }
                let o: Vec<f64> = pre(
                    &p.input_to_output_weights,
                    &p.recurrent_to_output_weights,
                    &p.cell_to_output_weights,
                    &p.output_gate_bias,
                    &p.output_layer_norm_coefficients,
                    &c,
                )
                .into_iter()
                .map(sig)
                .collect();
                let hidden: Vec<f64> = (0..nc).map(|k| o[k] * c[k].tanh()).collect();
                h = match &p.projection_weights {
                    None => hidden,
                    Some(w) => (0..no)
                        .map(|j| {
                            let v = p.projection_bias.as_ref().map_or(0.0, |b| b[j] as f64) + row(w, j, &hidden, nc);
                            if cfg.proj_clip > 0.0 {
                                v.clamp(-cfg.proj_clip as f64, cfg.proj_clip as f64)
                            } else {
                                v
                            }
                        })
                        .collect(),
                };
                let at = if cfg.time_major { (t * cfg.batch + b) * no } else { (b * t_n + t) * no };
                out[at..at + no].copy_from_slice(&h);
            }
        }
        out
    }

    #[test]
    fn float_kernel_matches_the_lstm_equations_for_every_variant() {
        let mut rng = Rng::new(17);
        for mask in 0..32u32 {
            let flags = [0, 1, 2, 3, 4].map(|k| mask & (1 << k) != 0);
            let cfg = config(2, 6, flags);
            let ops = Owned::random(&cfg, &mut rng);
            let x: Vec<f32> =
                (0..cfg.batch * cfg.time_steps * cfg.n_input).map(|_| rng.uniform() * 4.0 - 2.0).collect();
            let h0: Vec<f32> = (0..cfg.batch * cfg.n_output).map(|_| rng.uniform() - 0.5).collect();
            let c0: Vec<f32> = (0..cfg.batch * cfg.n_cell).map(|_| rng.uniform() - 0.5).collect();
            let want = reference(&cfg, &ops.parts, &x, &h0, &c0);
            let (mut h, mut c) = (h0.clone(), c0.clone());
            let mut out = vec![0.0; want.len()];
            let state = LstmState { output_state: &mut h, cell_state: &mut c };
            run_f32(&cfg, &ops.view(), &x, state, &mut out).unwrap();
            for (k, (a, b)) in out.iter().zip(&want).enumerate() {
                assert!((*a as f64 - b).abs() < 1e-5, "{flags:?} element {k}: {a} vs {b}");
            }
            // The state is the last step's: the last output row of each batch row.
            let last = |b: usize| {
                let t = cfg.time_steps - 1;
                let at = if cfg.time_major {
                    (t * cfg.batch + b) * cfg.n_output
                } else {
                    (b * cfg.time_steps + t) * cfg.n_output
                };
                out[at..at + cfg.n_output].to_vec()
            };
            assert_eq!(h, [last(0), last(1)].concat(), "{flags:?}: output state");
        }
    }

    #[test]
    fn operands_are_checked_against_the_configuration() {
        let mut rng = Rng::new(3);
        let cfg = config(1, 2, [false, true, true, false, false]);
        let ops = Owned::random(&cfg, &mut rng);
        assert!(cfg.check(&ops.view()).is_ok());
        let mut v = ops.view();
        v.cell_to_forget_weights = None;
        let e = cfg.check(&v).unwrap_err().to_string();
        assert!(e.contains("operand 10 (cell_to_forget_weights) is missing"), "{e}");
        let mut v = ops.view();
        v.input_to_cell_weights = Some(&v.input_to_cell_weights.unwrap()[1..]);
        let e = cfg.check(&v).unwrap_err().to_string();
        assert!(e.contains("operand 3") && e.contains("expected 35"), "{e}");
        let mut v = ops.view();
        v.projection_bias = None; // optional
        assert!(cfg.check(&v).is_ok());
        let no_peephole = config(1, 2, [false, false, true, false, false]);
        let e = no_peephole.check(&ops.view()).unwrap_err().to_string();
        assert!(e.contains("operand 9 (cell_to_input_weights) is given but"), "{e}");
    }

    #[test]
    fn hostile_sizes_are_errors_not_panics() {
        let mut rng = Rng::new(5);
        let mut cfg = config(1, 2, [false; 5]);
        let ops = Owned::random(&cfg, &mut rng);
        cfg.time_steps = usize::MAX / 2;
        assert!(cfg.check(&ops.view()).is_err());
        cfg.time_steps = 2;
        cfg.n_cell = usize::MAX;
        cfg.n_output = usize::MAX;
        assert!(cfg.check(&ops.view()).is_err());
        // Wrong buffer sizes.
        let cfg = config(1, 2, [false; 5]);
        let (mut h, mut c) = (vec![0.0; 7], vec![0.0; 6]);
        let mut out = vec![0.0; 14];
        let e =
            run_f32(&cfg, &ops.view(), &[0.0; 10], LstmState { output_state: &mut h, cell_state: &mut c }, &mut out);
        assert!(e.unwrap_err().to_string().contains("cell state has 6 elements"));
    }

    #[test]
    fn configuration_from_tflite_facts() {
        let mut present = [true; 24];
        for i in [1, 5, 9, 10, 11, 12, 16, 17, 20, 21, 22, 23] {
            present[i] = false; // a CIFG LSTM without the optional parts
        }
        let facts = LstmNodeFacts {
            input_shape: &[2, 28, 5],
            input_to_output_weights_shape: &[16, 5],
            recurrent_to_output_weights_shape: &[16, 16],
            present: &present,
            activation: 4,
            cell_clip: 10.0,
            proj_clip: 0.0,
            time_major: true,
            diagonal_recurrent_tensors: false,
        };
        let cfg = LstmConfig::from_tflite(&facts).unwrap();
        assert_eq!((cfg.batch, cfg.time_steps, cfg.n_input, cfg.n_cell, cfg.n_output), (28, 2, 5, 16, 16));
        assert!(cfg.cifg && !cfg.peephole && !cfg.projection && !cfg.layer_norm);
        assert_eq!(cfg.activation, LstmActivation::Tanh);
        let bad = |f: LstmNodeFacts| LstmConfig::from_tflite(&f).unwrap_err().to_string();
        assert!(bad(LstmNodeFacts { input_shape: &[28, 5], ..facts }).contains("rank 3"));
        assert!(bad(LstmNodeFacts { input_to_output_weights_shape: &[16, 6], ..facts }).contains("do not fit"));
        assert!(bad(LstmNodeFacts { recurrent_to_output_weights_shape: &[16], ..facts }).contains("unsupported"));
        assert!(bad(LstmNodeFacts { activation: 9, ..facts }).contains("activation code 9"));
        assert!(bad(LstmNodeFacts { present: &present[..21], ..facts }).contains("21 operands"));
        assert!(bad(LstmNodeFacts { diagonal_recurrent_tensors: true, ..facts }).contains("diagonal"));
        let mut negative = cfg.clone();
        negative.cell_clip = -1.0;
        let ops = Owned::random(&negative, &mut Rng::new(1));
        assert!(negative.check(&ops.view()).unwrap_err().to_string().contains("negative"));
    }

    #[test]
    fn empty_sizes_run_without_panicking() {
        for (batch, time, n_cell) in [(0, 3, 7), (2, 0, 7), (1, 2, 0)] {
            let mut cfg = config(batch, time, [false, true, false, true, false]);
            (cfg.n_cell, cfg.n_output) = (n_cell, n_cell);
            let ops = Owned::random(&cfg, &mut Rng::new(2));
            let x = vec![0.5; batch * time * cfg.n_input];
            let (mut h, mut c, mut out) =
                (vec![0.0; batch * n_cell], vec![0.0; batch * n_cell], vec![0.0; batch * time * n_cell]);
            run_f32(&cfg, &ops.view(), &x, LstmState { output_state: &mut h, cell_state: &mut c }, &mut out).unwrap();
        }
    }

    #[test]
    fn steps_follow_litert_order() {
        let mut cfg = config(2, 3, [false; 5]);
        let batch_major: Vec<_> = cfg.steps().map(|s| (s.rows, s.state_row, s.input / 5)).collect();
        assert_eq!(batch_major, [(1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 1, 3), (1, 1, 4), (1, 1, 5)]);
        cfg.time_major = true;
        let time_major: Vec<_> = cfg.steps().map(|s| (s.rows, s.state_row, s.input / 5)).collect();
        assert_eq!(time_major, [(2, 0, 0), (2, 0, 2), (2, 0, 4)]);
    }
}
