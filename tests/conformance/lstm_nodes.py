#!/usr/bin/env python3
"""Our LSTM kernels against LiteRT's reference kernels and TFLite Micro, node by node, on the LSTM
models in ../shared/reference/models (or $TINYML_REFERENCE_DIR/models):

  * every UNIDIRECTIONAL_SEQUENCE_LSTM node of every model is dumped from LiteRT (reference kernels,
    every tensor kept) over a few random inputs run one after another without a reset: the node's
    input, output and both states before and after each invoke; int8 models also through TFLite
    Micro's Python interpreter. The dumps go to a temporary folder (--keep DIR keeps them there);
    they are never committed.
  * `cargo test --test lstm_kernels reference_model_nodes` then runs our kernels on each dump (the
    float kernel, and the integer kernel with both arithmetics) and prints the table: model, node,
    differing values, largest difference, bit-exact. Each arithmetic must equal its own reference;
    the other one is listed for comparison.
  * whole models: TFLite Micro's outputs against LiteRT's reference kernels on the int8 models, with
    the state reset before every input, and what resets the state in each.

Exits non-zero on any failure. Without the reference folder it says so loudly and exits 0.
Needs: pip install -r tests/fixtures/requirements.txt, and cargo.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = os.environ.get("TINYML_REFERENCE_DIR", os.path.join(ROOT, "..", "shared", "reference"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from make_fixtures import (lstm_dumps_litert, lstm_dumps_tflm, lstm_nodes, quantize_like,  # noqa: E402
                           save_dumps)

MODELS = ["tflm_mnist_lstm_float32", "tflm_mnist_lstm_int8", "tflm_dtln_noise_suppression",
          "tflm_xtensa_micro_speech_lstm"]
INVOKES = 6
WHOLE_MODEL_SAMPLES = 20


def litert(path, preserve=False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=preserve)
    it.allocate_tensors()
    return it


def tflm(model_bytes):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model_bytes, arena_size=8 << 20)


def random_inputs(detail, n, rng):
    """n random model inputs: float in [0, 1], integers over their whole range."""
    shape = (n,) + tuple(detail["shape"])
    if detail["dtype"] == np.float32:
        return rng.uniform(0, 1, shape).astype(np.float32)
    info = np.iinfo(detail["dtype"])
    return rng.integers(info.min, info.max + 1, shape).astype(detail["dtype"])


def dump_model(name, path, out_dir, rng):
    """Writes the node dumps of one model; returns its manifest lines."""
    model_bytes = open(path, "rb").read()
    it = litert(path)
    detail = it.get_input_details()[0]
    if len(it.get_input_details()) != 1:
        raise SystemExit(f"{name}: {len(it.get_input_details())} inputs; this script feeds one")
    samples = random_inputs(detail, INVOKES, rng)
    kind = "float" if detail["dtype"] == np.float32 else "int8"
    lines = []
    for node, dump in lstm_dumps_litert(model_bytes, samples).items():
        prefix = f"{name}_node{node}_litert"
        save_dumps(out_dir, prefix, dump)
        lines.append([name, path, str(node), kind, "litert", prefix])
    if kind == "int8":
        for node, dump in lstm_dumps_tflm(model_bytes, samples).items():
            prefix = f"{name}_node{node}_tflm"
            save_dumps(out_dir, prefix, dump)
            lines.append([name, path, str(node), kind, "tflm", prefix])
    return lines


def whole_model_tflm_vs_litert(path, samples, reset):
    """TFLite Micro against LiteRT's reference kernels on the samples, with the state reset before
    each (independent inputs) or carried from one to the next (a stream): (differing, total, max)."""
    model_bytes = open(path, "rb").read()
    it, tm = litert(path), tflm(model_bytes)
    detail = it.get_input_details()[0]
    differing, total, worst = 0, 0, 0
    for x in samples:
        if reset:
            it.reset_all_variables()
            tm.reset()
        it.set_tensor(detail["index"], x)
        it.invoke()
        tm.set_input(x, 0)
        tm.invoke()
        for k, o in enumerate(it.get_output_details()):
            a, b = it.get_tensor(o["index"]).astype(np.int32), np.asarray(tm.get_output(k)).astype(np.int32)
            differing += int((a != b).sum())
            total += a.size
            worst = max(worst, int(np.abs(a - b).max()))
    return differing, total, worst


def state_semantics(path):
    """What happens to an LSTM's state between invokes, seen in its output (the LSTM node's own
    output tensor) for the same input given twice, then after a reset."""
    from tflite_micro.python.tflite_micro import runtime

    model_bytes = open(path, "rb").read()
    _, ins, out = lstm_nodes(model_bytes)[0]
    it = litert(path, preserve=True)
    detail = it.get_input_details()[0]
    x = random_inputs(detail, 1, np.random.default_rng(5))[0]
    outputs = []
    for reset in (False, False, True):
        if reset:
            it.reset_all_variables()
            zeroed = not np.any(it.get_tensor(ins[18])) and not np.any(it.get_tensor(ins[19]))
        it.set_tensor(detail["index"], x)
        it.invoke()
        outputs.append(it.get_tensor(out).copy())
    tm = runtime.Interpreter.from_bytes(model_bytes, arena_size=8 << 20,
                                        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    tflm_outputs = []
    for reset in (False, False, True):
        if reset:
            tm.reset()
        tm.set_input(x, 0)
        tm.invoke()
        tflm_outputs.append(np.asarray(tm.GetTensor(out, 0)["tensor_data"]).copy())
    same = lambda a, b: "equals" if np.array_equal(a, b) else "differs from"  # noqa: E731
    kept = "kept across invoke()" if not np.array_equal(outputs[1], outputs[0]) else "not seen to carry over"
    return (f"LiteRT: the 2nd invoke of the same input {same(outputs[1], outputs[0])} the 1st (the state is "
            f"{kept}); reset_all_variables() {'zeroes' if zeroed else 'does not zero'} both states "
            f"and the next invoke {same(outputs[2], outputs[0])} the 1st. TFLite Micro: the 2nd invoke "
            f"{same(tflm_outputs[1], tflm_outputs[0])} the 1st; after reset() the next "
            f"{same(tflm_outputs[2], tflm_outputs[0])} the 1st.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", metavar="DIR", help="write the dumps to DIR and keep them")
    args = ap.parse_args()
    models_dir = os.path.join(REF, "models")
    if not os.path.isdir(models_dir):
        print(f"!! {models_dir} not found: LSTM reference models SKIPPED", flush=True)
        return 0
    rng = np.random.default_rng(2024)
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="lstm_nodes_")
    out_dir = args.keep or tmp.name
    os.makedirs(out_dir, exist_ok=True)
    manifest, failures = [], []
    for name in MODELS:
        path = os.path.join(models_dir, name + ".tflite")
        if not os.path.exists(path):
            print(f"!! {path} missing: SKIPPED", flush=True)
            continue
        manifest += dump_model(name, path, out_dir, rng)
    with open(os.path.join(out_dir, "manifest.tsv"), "w") as f:
        f.writelines("\t".join(line) + "\n" for line in manifest)
    print(f"node dumps in {out_dir}; running our kernels on them", flush=True)
    env = dict(os.environ, LSTM_NODE_DUMPS=os.path.abspath(out_dir))
    cmd = ["cargo", "test", "-q", "-p", "tinyml-optimizer", "--test", "lstm_kernels", "reference_model_nodes",
           "--", "--nocapture"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    print("\n".join(line for line in p.stdout.splitlines()
                    if line.strip(".") and not line.startswith(("running", "test "))))
    if p.returncode != 0:
        print(p.stderr[-3000:])
        failures.append("cargo test reference_model_nodes failed")

    print(f"\nwhole models, TFLite Micro vs LiteRT's reference kernels ({WHOLE_MODEL_SAMPLES} random inputs):")
    print(f"{'model':<32} {'state reset before each':>24} {'state carried (a stream)':>26}")
    for name in MODELS:
        path = os.path.join(models_dir, name + ".tflite")
        if not os.path.exists(path) or "float" in name:
            continue
        samples = random_inputs(litert(path).get_input_details()[0], WHOLE_MODEL_SAMPLES, rng)
        cells = []
        for reset in (True, False):
            differing, total, worst = whole_model_tflm_vs_litert(path, samples, reset)
            cells.append(f"{differing} of {total} (max {worst})")
        print(f"{name:<32} {cells[0]:>24} {cells[1]:>26}")
    for name in ("tflm_mnist_lstm_float32", "tflm_mnist_lstm_int8"):
        path = os.path.join(models_dir, name + ".tflite")
        if os.path.exists(path):
            print(f"\nstate, {name}: {state_semantics(path)}")
    if tmp:
        tmp.cleanup()
    if failures:
        print("FAILED:", *failures, sep="\n  ")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
