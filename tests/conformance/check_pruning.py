#!/usr/bin/env python3
"""Cross-checks `prune` (our wasm engine in Node, through the CLI) against the real LiteRT
interpreter: for every pruning method, unstructured and structured, at 50% sparsity,

  * the pruned model loads in LiteRT and our engine's outputs on it match LiteRT's reference
    kernels within 1e-4 relative or 1e-5 absolute;
  * unstructured pruning zeroes the requested fraction of the prunable weights within one weight
    per layer; structured pruning shrinks the weights and MACs and keeps the model runnable (for
    residual models that means both branches of every ADD kept the same channels);
  * gradient methods on a model that is not a classifier are refused with a clear message.

Models: the fixture float models (always), and the float models of ../shared/reference/models
(MLPerf Tiny VWW, ResNet-8, the AD autoencoder, hello-world sine) when that folder exists; without
it the script says loudly that they were skipped. Prints a table; exits non-zero on any failure.
"""
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_reference as cr  # noqa: E402

FIX = os.path.join(cr.ROOT, "tests", "fixtures")
METHODS = ["global-magnitude", "layer-magnitude", "global-gradient", "layer-gradient", "random"]
SPARSITY = 0.5


def models():
    test_x = np.load(os.path.join(FIX, "data", "patterns_test_x.npy"))
    test_y = np.load(os.path.join(FIX, "data", "patterns_test_y.npy"))
    out = [(f"fixture {m}", os.path.join(FIX, m, "model_float.tflite"), test_x[:64], test_y[:64]) for m in
           ("cnn", "dwcnn", "resnet", "mlp")]
    ref = os.path.join(cr.REF, "models")
    if not os.path.isdir(ref):
        print(f"!! {ref} not found: reference models SKIPPED (fixtures only)", flush=True)
        return out
    rng = np.random.default_rng(5)
    for name in ("mlperftiny_vww_mobilenetv1_025_96_float32.tflite", "mlperftiny_ic_resnet8_cifar10_float32.tflite",
                 "mlperftiny_ad_fc_autoencoder_toycar_float32.tflite", "tflm_hello_world_sine_float32.tflite"):
        path = os.path.join(ref, name)
        detail = cr.litert(path, reference=True).get_input_details()[0]
        out.append((name.replace(".tflite", ""), path, cr.calibration_for(name, detail, rng, n=24), None))
    return out


def check(label, path, x, y, tmp, failures):
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xp, x)
    if y is not None:
        np.save(yp, y.astype(np.int64))
    summary = json.loads(cr.cli("inspect", path, "--json")[1])["models"][0]["summary"]
    classifier = summary["outputs"][0]["shape"][-1] >= 2 and len(summary["outputs"][0]["shape"]) <= 2
    cells = []
    for structured in (False, True):
        for method in METHODS:
            out = os.path.join(tmp, "pruned.tflite")
            args = ["prune", path, "-o", out, "--method", method, "--sparsity", str(SPARSITY), "--json", "--data", xp]
            args += ["--structured"] if structured else []
            args += ["--labels", yp] if y is not None else []
            code, stdout, err = cr.cli(*args)
            tag = f"{'S' if structured else 'U'}:{method}"
            if method.endswith("gradient") and not classifier:
                ok = code == 1 and "classifier" in err
                cells.append(f"{tag} refused" if ok else f"{tag} WRONG")
                if not ok:
                    failures.append(f"{label} {tag}: expected a clear refusal, got exit {code}: {err.strip()}")
                continue
            if code != 0:
                failures.append(f"{label} {tag}: prune failed: {err.strip()}")
                cells.append(f"{tag} FAIL")
                continue
            report = json.loads(stdout)["report"]
            problems = []
            layers = len(report["before"]["layers"])
            if not structured and abs(report["removedWeights"] - SPARSITY * report["prunableWeights"]) > layers:
                problems.append(f"removed {report['removedWeights']} of {report['prunableWeights']}")
            if structured and not (report["after"]["macs"] < report["before"]["macs"]
                                   and report["after"]["params"] < report["before"]["params"]):
                problems.append("structured pruning did not shrink the model")
            try:
                it = cr.litert(out, reference=True)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{label} {tag}: LiteRT refuses the pruned model: {e}")
                cells.append(f"{tag} LiteRT refuses")
                continue
            sample = x[:4]
            sp, op = os.path.join(tmp, "s.npy"), os.path.join(tmp, "o.npy")
            np.save(sp, sample)
            code, _, err = cr.cli("run", out, "--input", sp, "--output", op)
            if code != 0:
                problems.append(f"our engine cannot run it: {err.strip()}")
            else:
                ok, worst = cr.close(np.load(op), cr.litert_run(it, sample)[0])
                if not ok:
                    problems.append(f"outputs differ from LiteRT by {worst:.2e}")
            macs = report["after"]["macs"] / max(report["before"]["macs"], 1)
            cells.append(f"{tag} {report['achievedSparsity']:.2f}" + (f"/{macs:.2f}" if structured else "")
                         + ("" if not problems else " FAIL"))
            failures.extend(f"{label} {tag}: {p}" for p in problems)
    return cells


def main():
    failures = []
    with tempfile.TemporaryDirectory(prefix="tinyml-prune-") as tmp:
        print(f"prune at {SPARSITY:.0%}: achieved sparsity (structured: /MACs after:before); "
              "every result loaded and run in LiteRT against our engine", flush=True)
        for label, path, x, y in models():
            cells = check(label, path, x, y, tmp, failures)
            print(f"{label}\n  " + "\n  ".join("  ".join(cells[i:i + 5]) for i in range(0, len(cells), 5)), flush=True)
    if failures:
        print("\nFAILURES:\n  " + "\n  ".join(failures))
        return 1
    print("\nall pruned models conform")
    return 0


if __name__ == "__main__":
    sys.exit(main())
