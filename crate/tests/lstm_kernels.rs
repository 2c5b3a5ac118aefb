//! The LSTM kernels (`kernels::lstm`, `kernels::int8::lstm`) against LiteRT's reference kernels and
//! TFLite Micro, one UNIDIRECTIONAL_SEQUENCE_LSTM node at a time.
//!
//! A model is read with `tflite::read`; an adapter below builds the kernels' configuration,
//! operands and quantization from the LSTM node's tensors and options (the engine's lowering does
//! the same; this checks the kernels alone, node by node). Each
//! dump holds, for a few invokes run one after another without a reset, the node's input, output
//! and both states before and after (written by `tests/fixtures/make_fixtures.py` for the committed
//! fixture, by `tests/conformance/lstm_nodes.py` for the reference models). The kernels start from
//! the dumped state and must give LiteRT's output and states: int8 bit for bit, float within 1e-5
//! of the tensor's largest magnitude. TFLite Micro dumps start from zero and chain the invokes.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tinyml_optimizer::ir::{Activation, Graph, Model, Node, Op, TensorData};
use tinyml_optimizer::kernels::int8::lstm::{self as int8, Int8Operands, LstmArithmetic, LstmQuantization, Quant};
use tinyml_optimizer::kernels::lstm::{self, FloatOperands, LstmConfig, LstmNodeFacts, LstmParts, LstmState};
use tinyml_optimizer::npy::{self, NpyArray};
use tinyml_optimizer::tflite;

#[macro_use]
mod common;

// ------------------------------------------------------------------------------------------------
// Adapter: an LSTM node of a read model -> the kernels' inputs
// ------------------------------------------------------------------------------------------------

/// The UNIDIRECTIONAL_SEQUENCE_LSTM nodes of the main graph, by node index.
fn lstm_nodes(model: &Model) -> Vec<usize> {
    let graph = model.main();
    (0..graph.nodes.len()).filter(|&i| matches!(graph.nodes[i].op, Op::UnidirectionalSequenceLstm(_))).collect()
}

/// The node's configuration: shapes from its tensors, options from its `builtin_options`.
fn config_of(graph: &Graph, node: &Node) -> LstmConfig {
    let Op::UnidirectionalSequenceLstm(options) = &node.op else { panic!("not an LSTM node") };
    let activation = match options.activation {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::ReluN1To1 => 2,
        Activation::Relu6 => 3,
        Activation::Tanh => 4,
        Activation::SignBit => 5,
    };
    let shape = |i: usize| graph.tensor(node.inputs[i].expect("operand present")).shape.clone();
    let present: Vec<bool> = node.inputs.iter().map(Option::is_some).collect();
    let (input, wx, wh) = (shape(0), shape(4), shape(8));
    let facts = LstmNodeFacts {
        input_shape: &input,
        input_to_output_weights_shape: &wx,
        recurrent_to_output_weights_shape: &wh,
        present: &present,
        activation,
        cell_clip: options.cell_clip,
        proj_clip: options.proj_clip,
        time_major: options.time_major,
        diagonal_recurrent_tensors: false,
    };
    LstmConfig::from_tflite(&facts).unwrap()
}

/// Element types of constant tensors the kernels read.
trait Element: Sized {
    fn slice(data: &TensorData) -> Option<&[Self]>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            fn slice(data: &TensorData) -> Option<&[$t]> {
                match data {
                    TensorData::$variant(a) => a.as_slice(),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(i8, I8);
element!(i16, I16);
element!(i32, I32);

/// The constant data of operand `index`, if the node has it.
fn operand<'g, T: Element>(graph: &'g Graph, node: &Node, index: usize) -> Option<&'g [T]> {
    let id = (*node.inputs.get(index)?)?;
    let data = graph.tensor(id).data.as_ref().unwrap_or_else(|| panic!("operand {index} has no constant data"));
    Some(T::slice(data).unwrap_or_else(|| panic!("operand {index} has an unexpected type")))
}

/// The 21 constant operands, typed `W` (weights), `C` (peephole, layer norm), `B` (biases).
fn operands<'g, W: Element, C: Element, B: Element>(
    graph: &'g Graph,
    node: &Node,
) -> LstmParts<&'g [W], &'g [C], &'g [B]> {
    let (w, c, b) =
        (|i| operand::<W>(graph, node, i), |i| operand::<C>(graph, node, i), |i| operand::<B>(graph, node, i));
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

fn quant_of(graph: &Graph, id: usize) -> Option<Quant> {
    let q = graph.tensor(id).quant.as_ref()?;
    assert!(q.scale.len() <= 1, "tensor {id}: the LSTM kernels take per-tensor scales");
    Some(Quant { scale: *q.scale.first()?, zero_point: *q.zero_point.first().unwrap_or(&0) as i32 })
}

/// The node's scales and zero points, including its intermediate tensors'.
fn quantization_of(graph: &Graph, node: &Node) -> LstmQuantization {
    let q = |i: usize| node.inputs.get(i).copied().flatten().and_then(|id| quant_of(graph, id));
    let s = |i: usize| q(i).map(|q| q.scale);
    let mut intermediates = [None; 5];
    for (slot, &id) in intermediates.iter_mut().zip(&node.intermediates) {
        *slot = quant_of(graph, id);
    }
    LstmQuantization {
        input: q(0).expect("quantized input"),
        output_state: q(18).expect("quantized output state"),
        cell_state_scale: s(19).expect("quantized cell state"),
        output: quant_of(graph, node.outputs[0]).expect("quantized output"),
        weight_scales: LstmParts {
            input_to_input_weights: s(1),
            input_to_forget_weights: s(2),
            input_to_cell_weights: s(3),
            input_to_output_weights: s(4),
            recurrent_to_input_weights: s(5),
            recurrent_to_forget_weights: s(6),
            recurrent_to_cell_weights: s(7),
            recurrent_to_output_weights: s(8),
            cell_to_input_weights: s(9),
            cell_to_forget_weights: s(10),
            cell_to_output_weights: s(11),
            projection_weights: s(16),
            input_layer_norm_coefficients: s(20),
            forget_layer_norm_coefficients: s(21),
            cell_layer_norm_coefficients: s(22),
            output_layer_norm_coefficients: s(23),
            ..Default::default()
        },
        intermediates,
    }
}

// ------------------------------------------------------------------------------------------------
// Dumps and checks
// ------------------------------------------------------------------------------------------------

/// One node's dump: each array stacked over the invokes. `*_before` are absent in TFLite Micro
/// dumps (its invokes chain from a zero state).
struct Dump {
    input: NpyArray,
    output: NpyArray,
    output_state_before: Option<NpyArray>,
    cell_state_before: Option<NpyArray>,
    output_state_after: NpyArray,
    cell_state_after: NpyArray,
}

impl Dump {
    fn invokes(&self) -> usize {
        self.input.shape[0]
    }
}

/// Row `k` of an array stacked along its first dimension.
fn row<T: Copy>(data: &[T], invokes: usize, k: usize) -> &[T] {
    let n = data.len() / invokes;
    &data[k * n..(k + 1) * n]
}

fn f32s(a: &NpyArray) -> Vec<f32> {
    match &a.data {
        npy::NpyData::F32(v) => v.clone(),
        other => panic!("expected float32 data, got {}", other.type_name()),
    }
}

fn i8s(a: &NpyArray) -> Vec<i8> {
    match &a.data {
        npy::NpyData::I8(v) => v.clone(),
        other => panic!("expected int8 data, got {}", other.type_name()),
    }
}

fn i16s(a: &NpyArray) -> Vec<i16> {
    match &a.data {
        npy::NpyData::I32(v) => v.iter().map(|&x| i16::try_from(x).expect("an int16 cell state")).collect(),
        other => panic!("expected int16 data stored as int32, got {}", other.type_name()),
    }
}

/// How far the float kernel is from the dump: the largest error over output and states, relative
/// to each tensor's largest magnitude.
fn check_float(model: &Model, node: usize, dump: &Dump) -> f32 {
    let graph = model.main();
    let n = &graph.nodes[node];
    let config = config_of(graph, n);
    let ops: FloatOperands = operands(graph, n);
    let s = dump.invokes();
    let (input, want_out) = (f32s(&dump.input), f32s(&dump.output));
    let (want_h, want_c) = (f32s(&dump.output_state_after), f32s(&dump.cell_state_after));
    let mut worst = 0f32;
    for k in 0..s {
        let mut h = row(&f32s(dump.output_state_before.as_ref().unwrap()), s, k).to_vec();
        let mut c = row(&f32s(dump.cell_state_before.as_ref().unwrap()), s, k).to_vec();
        let mut out = vec![0f32; row(&want_out, s, k).len()];
        let state = LstmState { output_state: &mut h, cell_state: &mut c };
        lstm::run_f32(&config, &ops, row(&input, s, k), state, &mut out).unwrap();
        for (got, want) in [(&out[..], row(&want_out, s, k)), (&h, row(&want_h, s, k)), (&c, row(&want_c, s, k))] {
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
            let err = got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            worst = worst.max(err / scale);
        }
    }
    worst
}

/// Differences of the integer kernel from a dump: (differing values, values compared, largest
/// difference) over the outputs and both states of every invoke.
fn check_int8(model: &Model, node: usize, dump: &Dump, arithmetic: LstmArithmetic) -> (usize, usize, i32) {
    let graph = model.main();
    let n = &graph.nodes[node];
    let config = config_of(graph, n);
    let ops: Int8Operands = operands(graph, n);
    let prepared = int8::prepare(&config, &quantization_of(graph, n), &ops, arithmetic).unwrap();
    let s = dump.invokes();
    let (input, want_out) = (i8s(&dump.input), i8s(&dump.output));
    let (want_h, want_c) = (i8s(&dump.output_state_after), i16s(&dump.cell_state_after));
    let zero_point = quantization_of(graph, n).output_state.zero_point as i8;
    let (mut h, mut c) = (vec![zero_point; want_h.len() / s], vec![0i16; want_c.len() / s]);
    let (mut count, mut total, mut worst) = (0, 0, 0);
    for k in 0..s {
        if let (Some(hb), Some(cb)) = (&dump.output_state_before, &dump.cell_state_before) {
            h = row(&i8s(hb), s, k).to_vec();
            c = row(&i16s(cb), s, k).to_vec();
        }
        let mut out = vec![0i8; row(&want_out, s, k).len()];
        let state = LstmState { output_state: &mut h, cell_state: &mut c };
        int8::run(prepared.config(), &prepared, &ops, row(&input, s, k), state, &mut out).unwrap();
        let diffs = out
            .iter()
            .zip(row(&want_out, s, k))
            .chain(h.iter().zip(row(&want_h, s, k)))
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .chain(c.iter().zip(row(&want_c, s, k)).map(|(&a, &b)| (a as i32 - b as i32).abs()));
        for d in diffs {
            count += (d != 0) as usize;
            total += 1;
            worst = worst.max(d);
        }
    }
    (count, total, worst)
}

fn read_npy(bytes: &[u8]) -> NpyArray {
    npy::read(bytes).unwrap()
}

/// A dump compiled in from tests/fixtures/lstm, by file prefix.
macro_rules! fixture_dump {
    (tflm $prefix:expr) => {
        Dump {
            input: read_npy(fixture!("lstm", concat!($prefix, "_tflm_input.npy"))),
            output: read_npy(fixture!("lstm", concat!($prefix, "_tflm_output.npy"))),
            output_state_before: None,
            cell_state_before: None,
            output_state_after: read_npy(fixture!("lstm", concat!($prefix, "_tflm_output_state_after.npy"))),
            cell_state_after: read_npy(fixture!("lstm", concat!($prefix, "_tflm_cell_state_after.npy"))),
        }
    };
    ($prefix:expr) => {
        Dump {
            input: read_npy(fixture!("lstm", concat!($prefix, "_input.npy"))),
            output: read_npy(fixture!("lstm", concat!($prefix, "_output.npy"))),
            output_state_before: Some(read_npy(fixture!("lstm", concat!($prefix, "_output_state_before.npy")))),
            cell_state_before: Some(read_npy(fixture!("lstm", concat!($prefix, "_cell_state_before.npy")))),
            output_state_after: read_npy(fixture!("lstm", concat!($prefix, "_output_state_after.npy"))),
            cell_state_after: read_npy(fixture!("lstm", concat!($prefix, "_cell_state_after.npy"))),
        }
    };
}

fn only_lstm_node(model: &Model) -> usize {
    let nodes = lstm_nodes(model);
    assert_eq!(nodes.len(), 1, "one LSTM node expected");
    nodes[0]
}

fn assert_float(name: &str, model: &[u8], dump: Dump) {
    let model = tflite::read(model).unwrap();
    let worst = check_float(&model, only_lstm_node(&model), &dump);
    println!("{name}: float kernel within {worst:e} of LiteRT (relative to the largest magnitude)");
    assert!(worst <= 1e-5, "{name}: float kernel {worst:e} from LiteRT");
}

fn assert_int8(name: &str, model: &[u8], dump: Dump, arithmetic: LstmArithmetic) {
    let model = tflite::read(model).unwrap();
    let (count, _, worst) = check_int8(&model, only_lstm_node(&model), &dump, arithmetic);
    println!("{name}: {arithmetic:?} arithmetic, {count} differing values (largest {worst})");
    assert_eq!((count, worst), (0, 0), "{name}: {arithmetic:?} integer kernel differs from its reference");
}

// ------------------------------------------------------------------------------------------------
// The committed fixture: the Keras classifier and the LSTM-only variants
// ------------------------------------------------------------------------------------------------

#[test]
fn keras_lstm_float_matches_litert() {
    assert_float("lstm float", fixture!("lstm", "model_float.tflite"), fixture_dump!("lstm_float"));
}

#[test]
fn keras_lstm_int8_is_bit_exact_with_litert() {
    let model = fixture!("lstm", "model_int8_tf.tflite");
    assert_int8("lstm int8", model, fixture_dump!("lstm_int8_tf"), LstmArithmetic::LiteRt);
}

#[test]
fn keras_lstm_int8_tflm_arithmetic_is_bit_exact_with_tflite_micro() {
    let model = fixture!("lstm", "model_int8_tf.tflite");
    assert_int8("lstm int8 (TFLM)", model, fixture_dump!(tflm "lstm_int8_tf"), LstmArithmetic::Tflm);
}

macro_rules! variant_tests {
    ($($float:ident, $int8:ident: $name:literal;)*) => {$(
        #[test]
        fn $float() {
            let model = fixture!("lstm", concat!("variant_", $name, "_float.tflite"));
            assert_float(concat!($name, " float"), model, fixture_dump!(concat!("variant_", $name, "_float")));
        }

        #[test]
        fn $int8() {
            let model = fixture!("lstm", concat!("variant_", $name, "_int8.tflite"));
            let dump = fixture_dump!(concat!("variant_", $name, "_int8"));
            assert_int8(concat!($name, " int8"), model, dump, LstmArithmetic::LiteRt);
        }
    )*};
}

variant_tests! {
    cifg_peephole_projection_float, cifg_peephole_projection_int8: "cifg_peephole_projection";
    layer_norm_peephole_time_major_float, layer_norm_peephole_time_major_int8: "layer_norm_peephole_time_major";
    layer_norm_cifg_projection_float, layer_norm_cifg_projection_int8: "layer_norm_cifg_projection";
    plain_time_major_clip_float, plain_time_major_clip_int8: "plain_time_major_clip";
}

#[test]
fn plain_time_major_int8_tflm_arithmetic_is_bit_exact_with_tflite_micro() {
    let model = fixture!("lstm", "variant_plain_time_major_clip_int8.tflite");
    let dump = fixture_dump!(tflm "variant_plain_time_major_clip_int8");
    assert_int8("plain time-major int8 (TFLM)", model, dump, LstmArithmetic::Tflm);
}

/// The two references really differ on these models, so each arithmetic test above can fail.
#[test]
fn litert_and_tflite_micro_differ_and_each_arithmetic_tells_them_apart() {
    let model = tflite::read(fixture!("lstm", "model_int8_tf.tflite")).unwrap();
    let node = only_lstm_node(&model);
    let (count, _, _) = check_int8(&model, node, &fixture_dump!(tflm "lstm_int8_tf"), LstmArithmetic::LiteRt);
    assert!(count > 0, "LiteRT's arithmetic reproduces TFLite Micro's dump: the TFLM test proves nothing");
    let (count, _, _) = check_int8(&model, node, &fixture_dump!("lstm_int8_tf"), LstmArithmetic::Tflm);
    assert!(count > 0, "TFLite Micro's arithmetic reproduces LiteRT's dump: the LiteRT test proves nothing");
}

#[test]
fn tflm_refuses_what_tflite_micro_refuses() {
    let model = tflite::read(fixture!("lstm", "variant_cifg_peephole_projection_int8.tflite")).unwrap();
    let graph = model.main();
    let n = &graph.nodes[only_lstm_node(&model)];
    let ops: Int8Operands = operands(graph, n);
    let e = int8::prepare(&config_of(graph, n), &quantization_of(graph, n), &ops, LstmArithmetic::Tflm).unwrap_err();
    assert!(e.to_string().contains("TFLite Micro's LSTM has no CIFG"), "{e}");
}

// ------------------------------------------------------------------------------------------------
// The reference models: dumps made by tests/conformance/lstm_nodes.py
// ------------------------------------------------------------------------------------------------

/// Runs when `LSTM_NODE_DUMPS` names the folder `tests/conformance/lstm_nodes.py` wrote (that
/// script sets it and prints the table); otherwise says loudly that it skipped.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn reference_model_nodes() {
    let Ok(dir) = std::env::var("LSTM_NODE_DUMPS") else {
        println!("!! reference_model_nodes SKIPPED: run tests/conformance/lstm_nodes.py (it sets LSTM_NODE_DUMPS)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest.tsv in LSTM_NODE_DUMPS");
    let mut failures = Vec::new();
    println!(
        "{:<30} {:>4}  {:<6} {:<10} {:<7} {:>16} {:>8}  bit-exact",
        "model", "node", "kind", "reference", "kernel", "differing", "max diff"
    );
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, path, node, kind, reference, prefix] = fields[..] else { panic!("bad manifest line {line:?}") };
        let model = tflite::read(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"));
        let node: usize = node.parse().unwrap();
        let file = |what: &str| read_npy(&std::fs::read(dir.join(format!("{prefix}_{what}.npy"))).unwrap());
        let optional = |what: &str| dir.join(format!("{prefix}_{what}.npy")).exists().then(|| file(what));
        let dump = Dump {
            input: file("input"),
            output: file("output"),
            output_state_before: optional("output_state_before"),
            cell_state_before: optional("cell_state_before"),
            output_state_after: file("output_state_after"),
            cell_state_after: file("cell_state_after"),
        };
        let print = |kernel: &str, differing: String, max: String, exact: bool, note: &str| {
            let exact = if exact { "yes" } else { "no" };
            println!(
                "{name:<30} {node:>4}  {kind:<6} {reference:<10} {kernel:<7} {differing:>16} {max:>8}  {exact}{note}"
            );
        };
        if kind == "float" {
            let worst = check_float(&model, node, &dump);
            print("float", "(relative)".into(), format!("{worst:.1e}"), worst <= 1e-5, "");
            if worst > 1e-5 {
                failures.push(format!("{name} node {node}: float {worst:e}"));
            }
            continue;
        }
        // Each arithmetic must equal its own reference; the other one is listed for comparison.
        for arithmetic in [LstmArithmetic::LiteRt, LstmArithmetic::Tflm] {
            let (count, total, worst) = check_int8(&model, node, &dump, arithmetic);
            let own =
                matches!((arithmetic, reference), (LstmArithmetic::LiteRt, "litert") | (LstmArithmetic::Tflm, "tflm"));
            let kernel = if arithmetic == LstmArithmetic::LiteRt { "litert" } else { "tflm" };
            let note = if own { "" } else { "  (other arithmetic)" };
            print(kernel, format!("{count} of {total}"), worst.to_string(), count == 0, note);
            if own && count != 0 {
                failures.push(format!("{name} node {node}: {arithmetic:?} vs {reference}: {count} values differ"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The whole fixture models through the engine (`run_batch` and the batched `RunJob`), against
/// LiteRT's reference kernels with the state reset before every sample: int8 bit for bit, float
/// within 1e-5 of the largest output.
#[test]
fn the_engine_runs_the_lstm_fixtures_as_litert_does() {
    use tinyml_optimizer::exec::{run_batch, Interpreter, RunJob, Target};
    let x = npy::read(fixture!("lstm", "inputs.npy")).unwrap();
    for (model, want, int8) in [
        (fixture!("lstm", "model_float.tflite"), fixture!("lstm", "outputs_float.npy"), false),
        (fixture!("lstm", "model_int8_tf.tflite"), fixture!("lstm", "outputs_int8_tf.npy"), true),
    ] {
        let m = tflite::read(model).unwrap();
        let want = npy::read(want).unwrap();
        // The batched job compiles for the default target (TFLite Micro); LiteRT's outputs are
        // compared with the `litert` target.
        let one = run_batch(&mut Interpreter::new(&m).unwrap(), &x, int8, |_, _| {}).unwrap();
        let mut job = RunJob::new(std::sync::Arc::new(m.clone()), &x, int8, false).unwrap();
        tinyml_optimizer::parallel::run(&mut job, 1, &mut |_, _, _| {}).unwrap();
        let batched = job.finish().unwrap();
        assert_eq!(one[0].data, batched[0].data, "batched and one-by-one runs differ");
        let mut it = Interpreter::for_target(&m, Target::Litert).unwrap();
        let one = run_batch(&mut it, &x, int8, |_, _| {}).unwrap();
        if int8 {
            assert_eq!(one[0].data, want.data, "int8 outputs differ from LiteRT");
        } else {
            let (a, b) = (one[0].to_f32(), want.to_f32());
            let max = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(worst <= 1e-5 * max.max(1.0), "float outputs off by {worst}");
        }
    }
}

/// Static quantization of the float LSTM fixture: the LSTM (no int8 rewrite yet) stays float
/// between DEQUANTIZE and QUANTIZE, its state tensors carried over as variables; the rest is int8,
/// the model writes and reads back, and its outputs stay close to the float model's.
#[test]
fn quantizing_an_lstm_model_keeps_the_lstm_float_and_runs() {
    use tinyml_optimizer::exec::{run_batch, Interpreter};
    use tinyml_optimizer::quantize::{quantize, sqnr_db, QuantizeOptions};
    let x = npy::read(fixture!("lstm", "inputs.npy")).unwrap();
    let float = tflite::read(fixture!("lstm", "model_float.tflite")).unwrap();
    // The fixture's 8 inputs, and scaled copies of them: enough samples for calibration.
    let v = x.to_f32();
    let calib: Vec<f32> = [1.0f32, 0.5, -0.75].iter().flat_map(|k| v.iter().map(move |a| a * k)).collect();
    let calib = NpyArray::new([&[3 * x.shape[0]], &x.shape[1..]].concat(), npy::NpyData::F32(calib)).unwrap();
    let (q, report) = quantize(&float, Some(&calib), &QuantizeOptions::default(), &mut |_, _, _| {}).unwrap();
    assert_eq!(report.kept_float.len(), 1, "{:?}", report.kept_float);
    assert!(report.kept_float[0].starts_with("UNIDIRECTIONAL_SEQUENCE_LSTM"), "{:?}", report.kept_float);
    let back = tflite::read(&tflite::write(&q).unwrap()).unwrap();
    let g = back.main();
    let lstm = lstm_nodes(&back)[0];
    for k in [18, 19] {
        let state = &g.tensors[g.nodes[lstm].input(k).unwrap()];
        assert!(state.is_variable && state.data.is_none(), "state operand {k} is a variable");
    }
    let run = |m: &Model| run_batch(&mut Interpreter::new(m).unwrap(), &x, false, |_, _| {}).unwrap()[0].to_f32();
    let sqnr = sqnr_db(&run(&float), &run(&back)).unwrap();
    assert!(sqnr > 20.0, "output SQNR {sqnr:.1} dB");
}
