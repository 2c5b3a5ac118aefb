#!/usr/bin/env python3
"""TensorFlow Lite Micro conformance: our int8 engine against the real TFLM interpreter (the pip
`tflite-micro` runtime), and our predicted tensor arena against TFLM's real minimum.

Models:
  * the fixtures' full-int8 models (tests/fixtures/*/model_int8_tf.tflite, from the TF converter);
  * int8 models our CLI quantizes from the fixtures' float models, and from the float reference
    models;
  * every full-int8 model in ../shared/reference/models (or $TINYML_REFERENCE_DIR/models); a loud
    SKIPPED line when that folder is missing;
  * one-operator sweeps: int8 TANH, LOGISTIC, MUL, SUB and RELU6 over every input code, with
    quantization parameters where TFLM's arithmetic differs from LiteRT's reference kernels;
  * the float reference models, for the arena prediction only.

For each model, on random inputs and, where the reference data has them, real inputs, the outputs
of TFLM and of our engine (`node web/dist/cli.js run MODEL --raw` with the TFLM target) must be
identical. Models our engine cannot run yet (LSTM) are reported as "engine: unsupported" without
failing. TFLM's minimum arena is found by binary search on `arena_size` (each probe in a forked
process, so a crash in TFLM on a too-small arena is just a failed probe) and printed beside
`inspect --json`'s `tflm.arenaBytes`: the prediction must never be below the minimum nor more than
25% above it.

Exit status: non-zero on any mismatch or arena prediction out of bounds.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from check_reference import REF, calibration_for, real_inputs  # noqa: E402

CLI = [os.environ.get("NODE", "node"), os.path.join(ROOT, "web", "dist", "cli.js")]
SAMPLES = int(os.environ.get("CHECK_TFLM_SAMPLES", "8"))
MAX_RATIO = 1.25


def cli(*args):
    p = subprocess.run(CLI + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


# ---------------------------------------------------------------------------------------------
# TFLM


def tflm_interpreter(path, arena_size):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_file(path, arena_size=arena_size)


def tflm_run(path, x, arena_size):
    """Runs every sample of `x` (batch first) from a fresh state; returns output 0 stacked."""
    it = tflm_interpreter(path, arena_size)
    outs = []
    for sample in x:
        it.reset()
        it.set_input(sample[None], 0)
        it.invoke()
        outs.append(np.array(it.get_output(0))[0])
    return np.stack(outs)


def tflm_input_detail(path, arena_size):
    d = tflm_interpreter(path, arena_size).get_input_details(0)
    return {"shape": np.array(d["shape"]), "dtype": d["dtype"],
            "quantization": (float(d["quantization_parameters"]["scales"][0]) if len(d["quantization_parameters"]["scales"]) else 0.0,
                             int(d["quantization_parameters"]["zero_points"][0]) if len(d["quantization_parameters"]["zero_points"]) else 0)}


def arena_ok(path, size):
    """Whether TFLM allocates and invokes `path` with an arena of `size` bytes, in a forked child."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            it = tflm_interpreter(path, size)
            d = it.get_input_details(0)
            it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            it.invoke()
            code = 0
        except BaseException:  # noqa: BLE001 - any failure is a failed probe
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def tflm_min_arena(path, guess):
    """The smallest arena_size with which TFLM runs `path` (allocation is monotone in the size)."""
    hi = max(int(guess or 4096), 64)
    while not arena_ok(path, hi):
        hi *= 2
        if hi > 1 << 31:
            return None
    lo = hi // 2
    while lo > 0 and arena_ok(path, lo):
        hi, lo = lo, lo // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if arena_ok(path, mid):
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------------------------
# Inputs and comparison


def random_batch(detail, n, rng):
    shape = tuple(int(s) for s in detail["shape"][1:])
    if detail["dtype"] == np.float32:
        return rng.normal(0, 1, (n,) + shape).astype(np.float32)
    info = np.iinfo(detail["dtype"])
    return rng.integers(info.min, info.max + 1, (n,) + shape).astype(detail["dtype"])


def compare(ours, theirs):
    """(mismatches, total, max abs difference)."""
    if ours.shape != theirs.shape:
        return None
    d = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    return int(np.count_nonzero(d)), int(d.size), float(d.max()) if d.size else 0.0


def run_ours(path, x, tmp, target="tflm"):
    """Our engine's raw outputs with TFLM's (or LiteRT's) int8 arithmetic, or (None, error)."""
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xp, x)
    code, _, err = cli("run", path, "--input", xp, "--output", yp, "--raw", "--target", target)
    if code != 0:
        return None, err.strip()
    return np.load(yp), None


def check_outputs(name, path, summary, rng, tmp, failures):
    """Bit-exactness against TFLM on random and real inputs: the table's "vs TFLM" cell."""
    detail = tflm_input_detail(path, 64 << 20)
    batches = [("random", random_batch(detail, SAMPLES, rng))]
    real = real_inputs(name, detail)
    if real is not None:
        batches.append(("real", real))
    mism, total, worst, litert_mism = 0, 0, 0.0, 0
    for label, x in batches:
        theirs = tflm_run(path, x, 64 << 20)
        ours, err = run_ours(path, x, tmp)
        if ours is None:
            if summary["unsupportedOps"] or "cannot be executed" in err:
                return "engine: unsupported (" + ", ".join(summary["unsupportedOps"]) + ")", ""
            failures.append(f"{name}: our engine failed on {label} inputs: {err}")
            return "engine FAILED", ""
        c = compare(ours, theirs)
        if c is None:
            failures.append(f"{name}: output {ours.dtype}{ours.shape} vs TFLM {theirs.dtype}{theirs.shape}")
            return "SHAPE MISMATCH", ""
        mism, total, worst = mism + c[0], total + c[1], max(worst, c[2])
        as_litert, _ = run_ours(path, x, tmp, target="litert")
        litert_mism += compare(as_litert, theirs)[0] if as_litert is not None else 0
    kinds = "+".join(label for label, _ in batches)
    litert = f"{litert_mism}/{total} differ"
    if mism:
        failures.append(f"{name}: {mism} of {total} outputs differ from TFLM (max {worst:g})")
        return f"DIFFERS {mism}/{total} max {worst:g} ({kinds})", litert
    return f"bit-exact {total} ({kinds})", litert


def check_arena(name, path, summary, failures):
    predicted = summary["tflm"]["arenaBytes"]
    minimum = tflm_min_arena(path, predicted)
    if minimum is None:
        failures.append(f"{name}: TFLM did not run with any arena up to 2 GiB")
        return minimum, predicted, None
    if predicted is None:
        failures.append(f"{name}: no arena prediction")
        return minimum, predicted, None
    ratio = predicted / minimum
    if predicted < minimum:
        failures.append(f"{name}: predicted arena {predicted} is below TFLM's minimum {minimum}")
    elif ratio > MAX_RATIO:
        failures.append(f"{name}: predicted arena {predicted} is {ratio:.2f}x TFLM's minimum {minimum}")
    return minimum, predicted, ratio


def check_model(name, source, path, rng, tmp, failures, rows, outputs=True):
    code, out, err = cli("inspect", path, "--json")
    if code != 0:
        failures.append(f"{name}: inspect failed: {err.strip()}")
        rows.append({"model": name, "source": source, "vs TFLM": "inspect FAILED"})
        return
    summary = json.loads(out)["models"][0]["summary"]
    if not outputs:
        row = {"vs TFLM": "arena only (float model)"}
    elif len(summary["inputs"]) != 1:
        print(f"*** {name}: {len(summary['inputs'])} inputs, the CLI runs one: outputs not compared ***")
        row = {"vs TFLM": "not compared (several inputs)"}
    else:
        exact, litert = check_outputs(name, path, summary, rng, tmp, failures)
        row = {"vs TFLM": exact, "LiteRT arithmetic vs TFLM": litert}
    minimum, predicted, ratio = check_arena(name, path, summary, failures)
    est = summary["tflm"]["arenaEstimatedFor"]
    rows.append(row | {
        "model": name, "source": source, "TFLM min arena": minimum, "predicted": predicted,
        "ratio": f"{ratio:.3f}" if ratio else "", "supported": summary["tflm"]["supported"],
        "estimated": ", ".join(est)})


# ---------------------------------------------------------------------------------------------
# Model sources


def fixture_models():
    base = os.path.join(ROOT, "tests", "fixtures")
    for d in sorted(os.listdir(base)):
        p = os.path.join(base, d, "model_int8_tf.tflite")
        if os.path.isfile(p):
            yield f"{d}/model_int8_tf", "TF converter", p


def reference_models():
    models = os.path.join(REF, "models")
    if not os.path.isdir(models):
        print(f"\n*** SKIPPED: reference models not found at {models} (set TINYML_REFERENCE_DIR) ***\n")
        return []
    return [(f, os.path.join(models, f)) for f in sorted(os.listdir(models)) if f.endswith(".tflite")]


def precision_of(path):
    code, out, _ = cli("inspect", path, "--json")
    return json.loads(out)["models"][0]["summary"]["precision"] if code == 0 else None


def quantized_by_us(tmp, rng, failures):
    """Int8 models our CLI makes from the fixtures' float models and the float reference models."""
    base = os.path.join(ROOT, "tests", "fixtures")
    patterns = os.path.join(base, "data", "patterns_calib.npy")
    sources = [(f"{d}/model_float", os.path.join(base, d, "model_float.tflite")) for d in sorted(os.listdir(base))
               if os.path.isfile(os.path.join(base, d, "model_float.tflite"))]
    sources += [(f, p) for f, p in reference_models() if precision_of(p) in ("float", "hybrid")]
    from ai_edge_litert.interpreter import Interpreter

    for name, src in sources:
        # LiteRT reads the sources, including hybrid ones TFLM refuses.
        detail = Interpreter(model_path=src).get_input_details()[0]
        shape = tuple(int(s) for s in detail["shape"][1:])
        calib = np.load(patterns) if np.load(patterns, mmap_mode="r").shape[1:] == shape else \
            calibration_for(os.path.basename(src), detail, rng)
        cp = os.path.join(tmp, "calib.npy")
        np.save(cp, calib)
        out = os.path.join(tmp, name.replace("/", "_").replace(".tflite", "") + "_ours_int8.tflite")
        code, _, err = cli("quantize", src, "-o", out, "--calibration", cp)
        if code != 0 and "cannot be executed yet" in err:
            print(f"*** {name}: not quantized, the engine cannot run it yet: {err.strip()} ***")
            continue
        if code != 0:
            failures.append(f"{name}: quantize failed: {err.strip()}")
            continue
        yield f"{name} -> int8", "our quantize", out


# ---------------------------------------------------------------------------------------------
# One-operator sweeps


def quantize_multiplier(m):
    """TFLite's QuantizeMultiplier: (Q31 multiplier, shift)."""
    if m == 0:
        return 0, 0
    q, shift = np.frexp(m)
    qf = int(np.floor(q * (1 << 31) + 0.5))  # TfLiteRound: half away from zero (q > 0)
    if qf == 1 << 31:
        qf, shift = qf // 2, shift + 1
    return qf, int(shift)


def litert_and_tflm(path, x):
    """Outputs of LiteRT's reference kernels and of TFLM on a one-input model."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = tflm_interpreter(path, 1 << 20)
    it.set_input(x, 0)
    it.invoke()
    lit = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    lit.allocate_tensors()
    lit.set_tensor(lit.get_input_details()[0]["index"], x)
    lit.invoke()
    return lit.get_tensor(lit.get_output_details()[0]["index"]), np.array(it.get_output(0))


def differing_binary(op, tmp, rng, tries=60):
    """A MUL or SUB model (and its scales) whose outputs differ between LiteRT and TFLM: scales
    where the multipliers differ (TFLM's MUL multiplies in double, LiteRT's in float; TFLM's SUB
    divides in float, LiteRT's in double) until a pair of codes lands on the other side of a
    rounding step. Falls back to the last candidate."""
    import oneop_models as om

    path, found = os.path.join(tmp, f"sweep_{op}.tflite"), None
    for _ in range(tries):
        s1, s2, so = (np.float32(10 ** rng.uniform(-3, -0.5)) for _ in range(3))
        if op == "MUL":
            differ = quantize_multiplier(float(np.float32(s1 * s2 / so))) != \
                quantize_multiplier(float(s1) * float(s2) / float(so))
        else:
            tm = np.float32(2) * max(s1, s2)
            differ = any(quantize_multiplier(float(np.float32(a / b))) != quantize_multiplier(float(a) / float(b))
                         for a, b in ((s1, tm), (s2, tm), (tm, np.float32(1 << 20) * so)))
        if not differ:
            continue
        found = (float(s1), float(s2), float(so))
        with open(path, "wb") as fh:
            fh.write(om.binary(op, found[0], 3, found[1], -7, found[2], 5))
        litert, tflm = litert_and_tflm(path, om.CODES[:, None])
        if np.count_nonzero(litert != tflm):
            break
    return path, found


def sweep_models(tmp, rng):
    """(name, path, input) of one-operator models covering every input code (every pair of codes
    for MUL and SUB), at parameters where TFLM's arithmetic differs from LiteRT's."""
    import oneop_models as om

    f = om.f32_from_bits
    unary = [("TANH", f(0x3C51F3C3), -49), ("TANH", f(0x3C867F03), 16), ("LOGISTIC", f(0x3BA00568), 41)]
    unary += [(op, float(np.float32(10 ** rng.uniform(-3, -0.7))), int(rng.integers(-100, 100)))
              for op in ("TANH", "LOGISTIC") for _ in range(6)]
    out = []
    for i, (op, s, zp) in enumerate(unary):
        p = os.path.join(tmp, f"sweep_{i}.tflite")
        with open(p, "wb") as fh:
            fh.write(om.unary(op, s, zp))
        out.append((f"{op} s={s:.6g} zp={zp}", p, om.CODES))
    p = os.path.join(tmp, "sweep_relu6.tflite")
    with open(p, "wb") as fh:
        fh.write(om.relu6(0.05, -10, 0.1, -128))
    out.append(("RELU6 in 0.05/-10, out 0.1/-128", p, om.CODES))
    for op in ("MUL", "SUB"):
        p, scales = differing_binary(op, tmp, rng)
        if scales is None:
            print(f"*** no scales found where TFLM's and LiteRT's {op} multipliers differ ***")
            continue
        out.append((f"{op} s={scales[0]:.4g},{scales[1]:.4g}->{scales[2]:.4g}", p, om.CODES[:, None]))
    return out


def check_sweeps(tmp, rng, failures, rows):
    for name, path, x in sweep_models(tmp, rng):
        litert, theirs = litert_and_tflm(path, x)
        row = {"model": name, "LiteRT vs TFLM": f"{compare(litert, theirs)[0]} of {theirs.size} differ"}
        ours, err = run_ours(path, x[None], tmp)
        if ours is None:
            failures.append(f"sweep {name}: our engine failed: {err}")
            row["vs TFLM"] = "engine FAILED"
        else:
            c = compare(ours[0], theirs)
            row["vs TFLM"] = "bit-exact" if c and c[0] == 0 else f"DIFFERS {c}"
            if not c or c[0]:
                failures.append(f"sweep {name}: our engine differs from TFLM: {c}")
        rows.append(row)


# ---------------------------------------------------------------------------------------------


def print_table(rows, cols):
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))


def main():
    rng = np.random.default_rng(2027)
    failures, rows, sweep_rows = [], [], []
    tmp = tempfile.mkdtemp(prefix="tinyml-tflm-")
    models = list(fixture_models())
    models += list(quantized_by_us(tmp, rng, failures))
    models += [(f, "reference", p) for f, p in reference_models() if precision_of(p) == "int8"]
    for name, source, path in models:
        check_model(name, source, path, rng, tmp, failures, rows)
        print(f"  checked {name}", file=sys.stderr, flush=True)
    # TFLM runs float models too: their arena predictions are checked as well.
    for name, path in reference_models():
        if precision_of(path) == "float":
            check_model(name, "reference float", path, rng, tmp, failures, rows, outputs=False)
    check_sweeps(tmp, rng, failures, sweep_rows)
    print()
    print_table(rows, ["model", "source", "vs TFLM", "LiteRT arithmetic vs TFLM", "TFLM min arena", "predicted", "ratio",
                       "supported", "estimated"])
    print()
    print_table(sweep_rows, ["model", "vs TFLM", "LiteRT vs TFLM"])
    if failures:
        print("\nFAILURES:")
        for f in failures:
            print("  " + f)
        return 1
    print(f"\nall {len(rows)} models and {len(sweep_rows)} operator sweeps conform to TFLM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
