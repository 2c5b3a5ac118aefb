// The package's two wasm builds, of its inference-only core (what it runs inference on by
// default) and of its full engine, in headless Chromium: the relaxed-SIMD build (its own int8 GEMM on
// i32x4.relaxed_dot_i8x16_i7x16_add: u8 inputs where this engine computes them exactly, x86 with
// AVX-VNNI; |w| with the weights' signs on the inputs, exact on every engine, elsewhere) and the
// plain simd128 build.
// Both must reproduce LiteRT's reference kernels bit for bit: on the fixture int8 models against
// the stored LiteRT outputs, and on every full-int8 reference model the engine runs, against each
// other (the simd128 build is checked against LiteRT itself by tests/conformance in Node). A second
// browser runs with V8's AVX-VNNI lowering switched off, as on CPUs without it (AMD before Zen 5):
// there the relaxed build must notice it and still give the same bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { fixture, parseNpy } from '../../web/test/helpers.mjs';
import { referenceDir, root, startPackagePage } from './harness.mjs';

const fixtures = ['cnn', 'dwcnn', 'resnet', 'mlp'];
const refModels = join(referenceDir, 'models');
const references = existsSync(refModels)
  ? readdirSync(refModels).filter((f) => /_int8(_\d+)?\.tflite$/.test(f)).sort()
  : [];

const files = [
  ...fixtures.flatMap((f) => ['model_int8_tf.tflite', 'inputs.npy'].map((n) => join(root, 'tests/fixtures', f, n))),
  ...references.map((f) => join(refModels, f)),
];

// In the page: run a model on a batch with one build, returning raw outputs (or the error).
const script = `
import { createOptimizer } from '/web/dist/browser.js';
// LiteRT's arithmetic: the fixtures' stored outputs come from its reference kernels.
// (By default the package runs inference on its inference-only core; the full engine's builds too.)
const builds = {
  relaxed: createOptimizer({ target: 'litert' }),
  simd: createOptimizer({ prefer: 'simd', target: 'litert' }),
  'full relaxed': createOptimizer({ target: 'litert', engine: 'full' }),
  'full simd': createOptimizer({ prefer: 'simd', target: 'litert', engine: 'full' }),
};
const get = async (i) => new Uint8Array(await (await fetch('/file/' + i)).arrayBuffer());
window.info = async () => ({ relaxed: await builds.relaxed.info(), simd: await builds.simd.info(), full: await builds['full relaxed'].info() });
window.runBoth = async (modelFile, inputFile, samples) => {
  const out = {};
  for (const [name, opt] of Object.entries(builds)) {
    let model;
    try {
      model = await opt.loadModel(await get(modelFile));
    } catch (e) {
      return { error: e.code + ': ' + e.message };
    }
    let x;
    if (inputFile !== null) x = await get(inputFile);
    else {
      // Random values spread over the int8 input's representable range (seeded, same for both).
      const io = model.summary.inputs[0];
      const q = io.quant ?? { scale: [1 / 128], zeroPoint: [0] };
      const shape = [samples, ...io.shape.slice(1)];
      let seed = 12345;
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return ((seed >>> 8) % 256 - 128 - q.zeroPoint[0]) * q.scale[0];
      });
      x = await opt.npyFromF32(shape, data);
    }
    try {
      out[name] = Array.from(await model.run(x, { raw: true }), (o) => Array.from(o));
    } catch (e) {
      return { error: e.code + ': ' + e.message };
    } finally {
      await model.release();
    }
  }
  return out;
};
window.ready = true;
`;

/** The page's optimizers: both builds of the inference-only core (the default) and of the full engine. */
const BUILDS = ['relaxed', 'simd', 'full relaxed', 'full simd'];

// The relaxed build's int8 kernel this CPU should get (gemm_dot4::kind): the u8 relaxed dot where V8
// lowers it to AVX-VNNI (Linux lists `avx_vnni` in /proc/cpuinfo; AVX-512 VNNI alone is not used),
// the i16 kernels on other x86 CPUs (the lowering there is slower), the sign-trick kernels elsewhere.
function expectedRelaxedKernel() {
  if (arch() !== 'x64') return 'relaxed-dot-s8';
  const flags = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  return /\bavx_vnni\b/.test(flags) ? 'relaxed-dot-u8' : 'dot-i16';
}
let page;
let noVnni;
before(async () => {
  page = await startPackagePage(script, files);
  noVnni = await startPackagePage(script, files, { args: ['--js-flags=--no-enable-avx-vnni'] });
});
after(async () => {
  await page?.close();
  await noVnni?.close();
});

test('both builds load; the relaxed one picks the int8 kernel meant for this CPU', async (t) => {
  const info = await page.tab.evaluate(() => window.info());
  assert.equal(info.simd.simd, 'simd128');
  assert.equal(info.simd.int8Kernel, 'dot-i16');
  assert.equal(info.relaxed.simd, 'relaxed-simd', 'Chromium validates relaxed SIMD, so the package picks that build');
  t.diagnostic(`relaxed build's int8 kernel here: ${info.relaxed.int8Kernel}`);
  assert.equal(info.relaxed.int8Kernel, expectedRelaxedKernel(), 'the kernel gemm_dot4::kind picks for this CPU');
  assert.deepEqual([info.relaxed.engine, info.simd.engine, info.full.engine], ['core', 'core', 'full']);
  assert.equal(info.full.int8Kernel, info.relaxed.int8Kernel);
  const without = await noVnni.tab.evaluate(() => window.info());
  // x86 without VNNI: the relaxed dot's lowering is slower than dot_i16x8 there, so that runs (the
  // sign-trick kernels themselves are tested in Chromium by the wasm-bindgen-test kernel tests).
  assert.equal(without.relaxed.int8Kernel, 'dot-i16', 'without VNNI the i16 kernels run');
});

for (const [i, name] of fixtures.entries()) {
  test(`fixture ${name}: both builds equal LiteRT's reference kernels, with and without VNNI`, async () => {
    const want = parseNpy(fixture(`${name}/outputs_int8_tf.npy`));
    for (const [where, p] of [['', page], [' without VNNI', noVnni]]) {
      const r = await p.tab.evaluate(([m, x]) => window.runBoth(m, x, 0), [2 * i, 2 * i + 1]);
      assert.equal(r.error, undefined, r.error);
      for (const build of BUILDS) {
        const got = parseNpy(Uint8Array.from(r[build][0]));
        assert.deepEqual(got.shape, want.shape);
        assert.deepEqual(got.data, want.data, `${name}: the ${build} build's int8 outputs differ from LiteRT's${where}`);
      }
    }
  });
}

test('full-int8 reference models: both builds give the same bytes', async (t) => {
  if (!references.length) {
    t.skip(`${refModels} not found: reference int8 models SKIPPED`);
    return;
  }
  let compared = 0;
  for (const [j, name] of references.entries()) {
    const r = await page.tab.evaluate(([m]) => window.runBoth(m, null, 2), [2 * fixtures.length + j]);
    // Every operator of the reference models runs (the LSTM ones included): an error fails.
    assert.equal(r.error, undefined, `${name}: ${r.error}`);
    for (const build of BUILDS) {
      assert.equal(r[build].length, r.simd.length);
      for (const [k, o] of r[build].entries()) assert.deepEqual(o, r.simd[k], `${name}: output ${k} differs between simd and ${build}`);
    }
    const i7 = await noVnni.tab.evaluate(([m]) => window.runBoth(m, null, 2), [2 * fixtures.length + j]);
    for (const build of ['relaxed', 'full relaxed']) {
      for (const [k, o] of i7[build].entries()) assert.deepEqual(o, r.simd[k], `${name}: ${build} output ${k} differs without VNNI`);
    }
    compared++;
  }
  t.diagnostic(`${compared} of ${references.length} reference int8 models compared`);
  assert.equal(compared, references.length, 'every reference int8 model was compared');
});
