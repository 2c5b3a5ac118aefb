//! UNIDIRECTIONAL_SEQUENCE_LSTM: input `[batch, time, n_input]` (time-major `[time, batch, ...]`),
//! output `[batch, time, n_output]`; 16 weight, peephole and bias operands, the output and cell
//! state (variable tensors the operator updates in place), optional layer-norm coefficients. Float,
//! or int8 with an int16 cell state (TFLite's 8x8→16 integer LSTM).

use super::cx::NodeCx;
use super::{Fact, Gradient, Int8Rule, OpSpec, Role};
use crate::error::Result;
use crate::ir::{Activation, DType, SequenceLstm};
use crate::kernels::lstm::{LstmConfig, LstmNodeFacts};

pub struct Lstm<'a>(pub &'a SequenceLstm);

/// TFLite's activation code (the kernels' configuration reads it).
fn activation_code(a: Activation) -> i32 {
    match a {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::ReluN1To1 => 2,
        Activation::Relu6 => 3,
        Activation::Tanh => 4,
        Activation::SignBit => 5,
    }
}

/// The kernels' configuration of the node, from its operands' shapes and its options.
pub fn lstm_config(cx: &NodeCx, o: &SequenceLstm) -> Result<LstmConfig> {
    let shape = |i: usize, what: &str| cx.input(i, what).map(|f| f.shape.clone());
    let (input, wx, wh) =
        (shape(0, "input")?, shape(4, "input-to-output weights")?, shape(8, "recurrent-to-output weights")?);
    let present: Vec<bool> = cx.node.inputs.iter().map(Option::is_some).collect();
    let facts = LstmNodeFacts {
        input_shape: &input,
        input_to_output_weights_shape: &wx,
        recurrent_to_output_weights_shape: &wh,
        present: &present,
        activation: activation_code(o.activation),
        cell_clip: o.cell_clip,
        proj_clip: o.proj_clip,
        time_major: o.time_major,
        diagonal_recurrent_tensors: false,
    };
    LstmConfig::from_tflite(&facts).map_err(|e| e.at(cx.loc()))
}

impl OpSpec for Lstm<'_> {
    fn infer(&self, cx: &NodeCx) -> Result<Vec<Fact>> {
        let c = lstm_config(cx, self.0)?;
        let x = cx.input(0, "input")?;
        let w = cx.input(4, "input-to-output weights")?;
        let (h, cell) = (cx.input(18, "output state")?, cx.input(19, "cell state")?);
        let want = [c.batch * c.n_output, c.batch * c.n_cell];
        if [h.len(), cell.len()] != want {
            return Err(cx.err(format!(
                "the states have {} and {} values, the operator needs {} and {}",
                h.len(),
                cell.len(),
                want[0],
                want[1]
            )));
        }
        let dtype = match (x.dtype, w.dtype, cell.dtype) {
            (DType::F32, DType::F32, DType::F32) => DType::F32,
            (DType::I8, DType::I8, DType::I16) => DType::I8,
            (a, b, s) => {
                return Err(cx.unsupported(format!("an LSTM with {a} input, {b} weights and a {s} cell state")))
            }
        };
        let shape = if c.time_major {
            vec![c.time_steps, c.batch, c.n_output]
        } else {
            vec![c.batch, c.time_steps, c.n_output]
        };
        Ok(vec![cx.output(dtype, shape)?])
    }

    fn role(&self, input: usize) -> Role {
        match input {
            0 => Role::Activation,
            12..=15 | 17 => Role::Bias,
            18 | 19 => Role::State,
            _ => Role::Weights,
        }
    }

    fn int8(&self) -> Int8Rule {
        Int8Rule::Float("has no int8 rewrite in this version (it stays float between DEQUANTIZE and QUANTIZE)")
    }

    fn gradient(&self) -> Gradient {
        Gradient::Unsupported("no backward in this version")
    }
}
