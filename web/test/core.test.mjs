// The inference-only core builds (web/wasm/core/{simd,relaxed}, see scripts/build-wasm.sh): their
// own JavaScript glue loads them, they export the inference API and the summary and none of the
// optimizer, and they give the same output bytes and summaries as the full build of the same
// flavour on the fixture models — the summaries without the TFLM report, which only the full
// engine computes — and the same summaries of every reference model (../shared/reference/models:
// some have operators the engine cannot execute, whose options tables only the full engine copies).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { test } from 'node:test';
import { fixture, root } from './helpers.mjs';

const wasmOf = (dir) => readFileSync(join(root, `web/wasm/${dir}/tinyml_optimizer_bg.wasm`));
const glueOf = (dir) => pathToFileURL(join(root, `web/wasm/${dir}/tinyml_optimizer.js`)).href;

/** A separate instance of the glue in `dir` (a query string makes a new ES module) running `bytes`. */
async function engine(dir, bytes, tag) {
  const g = await import(`${glueOf(dir)}?${tag}`);
  g.initSync({ module: bytes });
  return g;
}

const refModels = join(root, '..', 'shared', 'reference', 'models');

/**
 * The summary of `bytes` as JSON, without its TFLM report: that report must be there when `full`
 * (the full engine), and absent in the core's.
 */
function summaryOf(g, bytes, full) {
  const m = new g.Model(bytes);
  try {
    const { tflm, ...rest } = m.summary();
    if (full) assert.equal(typeof tflm?.supported, 'boolean', "the full engine's summary carries the TFLM report");
    else assert.equal(tflm, undefined, "the core's summary has no TFLM report");
    return JSON.stringify(rest);
  } finally {
    m.free();
  }
}

/** Output `.npy` bytes and the summary (as JSON, see summaryOf) of each fixture model on its inputs. */
function outputs(g, full) {
  const runs = [];
  for (const [dir, model] of [
    ['cnn', 'model_int8_tf'],
    ['cnn', 'model_float'],
    ['cnn', 'model_dynamic'],
    ['dwcnn', 'model_int8_tf'],
    ['dwcnn', 'model_float'],
    ['mlp', 'model_int8_tf'],
    ['lstm', 'model_int8_tf'],
    ['lstm', 'model_float'],
    ['resnet', 'model_int8_tf'],
    // Eighteen operator kinds, each with its options table (the core copies only those it reads).
    ['ops', 'model_float'],
    ['ops', 'model_dynamic'],
  ]) {
    const m = new g.Model(fixture(`${dir}/${model}.tflite`));
    runs.push(...m.run(fixture(`${dir}/inputs.npy`), false, undefined).map((a) => Buffer.from(a)));
    m.free();
    runs.push(Buffer.from(summaryOf(g, fixture(`${dir}/${model}.tflite`), full)));
  }
  return runs;
}

for (const flavor of ['simd', 'relaxed']) {
  const name = `core ${flavor}: inference and summary exports only; outputs and summaries equal the full build's`;
  test(name, async () => {
    const core = wasmOf(`core/${flavor}`);
    if (flavor === 'relaxed' && !WebAssembly.validate(core)) {
      // Node 20 has relaxed SIMD behind a flag (on by default from Node 22).
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    }
    assert.ok(WebAssembly.validate(core), `core/${flavor} does not validate in this Node`);
    const exports = WebAssembly.Module.exports(new WebAssembly.Module(core)).map((e) => e.name);
    for (const name of ['model_new', 'model_run', 'model_profile', 'model_benchmark', 'model_summary', 'npyInfo', 'int8Kernel']) {
      assert.ok(exports.includes(name), `core/${flavor} exports ${name}`);
    }
    for (const name of ['model_quantize', 'model_prune', 'model_trainJob', 'model_toBytes', 'model_tflm', 'taskworker_run', 'tflmFirmware']) {
      assert.ok(!exports.includes(name), `core/${flavor} has no ${name}`);
    }
    const [full, small] = [await engine('simd', wasmOf(flavor), `full-${flavor}`), await engine('core/simd', core, `core-${flavor}`)];
    assert.equal(small.simdLevel(), full.simdLevel());
    assert.equal(small.int8Kernel(), full.int8Kernel());
    const [want, got] = [outputs(full, true), outputs(small, false)];
    assert.equal(got.length, want.length);
    got.forEach((g, i) => assert.ok(g.equals(want[i]), `output ${i} differs between core/${flavor} and ${flavor}`));
    if (flavor === 'simd') sameReferenceSummaries(full, small);
  });
}

/** The core reads every reference model to the same summary as the full engine. */
function sameReferenceSummaries(full, core) {
  if (!existsSync(refModels)) {
    console.log(`SKIP: ${refModels} not found: the reference-model summaries are not compared`);
    return;
  }
  const names = readdirSync(refModels).filter((n) => n.endsWith('.tflite'));
  assert.ok(names.length > 0, `no .tflite models in ${refModels}`);
  for (const name of names) {
    const bytes = readFileSync(join(refModels, name));
    assert.equal(summaryOf(core, bytes, false), summaryOf(full, bytes, true), `${name}: the core's summary differs`);
  }
}
