// The inference-only core builds (web/wasm/core/{simd,relaxed}, see scripts/build-wasm.sh): their
// own JavaScript glue loads them, they export the inference API and the summary and none of the
// optimizer, and they give the same output bytes and summaries as the full build of the same
// flavour on the fixture models.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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

/** Output `.npy` bytes and the summary (as JSON) of each fixture model on its inputs. */
function outputs(g) {
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
  ]) {
    const m = new g.Model(fixture(`${dir}/${model}.tflite`));
    runs.push(...m.run(fixture(`${dir}/inputs.npy`), false, undefined).map((a) => Buffer.from(a)));
    runs.push(Buffer.from(JSON.stringify(m.summary())));
    m.free();
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
    for (const name of ['model_quantize', 'model_prune', 'model_trainJob', 'model_toBytes', 'taskworker_run', 'tflmFirmware']) {
      assert.ok(!exports.includes(name), `core/${flavor} has no ${name}`);
    }
    const [full, small] = [await engine('simd', wasmOf(flavor), `full-${flavor}`), await engine('core/simd', core, `core-${flavor}`)];
    assert.equal(small.simdLevel(), full.simdLevel());
    assert.equal(small.int8Kernel(), full.int8Kernel());
    const [want, got] = [outputs(full), outputs(small)];
    assert.equal(got.length, want.length);
    got.forEach((g, i) => assert.ok(g.equals(want[i]), `output ${i} differs between core/${flavor} and ${flavor}`));
  });
}
