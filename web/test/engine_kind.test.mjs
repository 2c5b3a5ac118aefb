// Which wasm the package downloads: `createOptimizer()` starts on the inference-only core, a session
// that only loads, runs, profiles and benchmarks never fetches the full engine, and the first call
// that needs it fetches it once, keeps the loaded models and gives the same bytes as an optimizer
// on the full engine from the start. The wasm is served over HTTP here, so every download is
// counted (the worker fetches non-file URLs).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { createOptimizer } from '../dist/node.js';
import { CORE_METHODS, needsFull } from '../dist/core-engine.js';
import { fixture, leb128, root, wasmSections } from './helpers.mjs';

/** An HTTP server for web/wasm/ that counts the requests per path. */
async function wasmServer() {
  const hits = new Map();
  const server = createServer((req, res) => {
    hits.set(req.url, (hits.get(req.url) ?? 0) + 1);
    try {
      const body = readFileSync(join(root, 'web/wasm', req.url.replace(/^\/+/, '')));
      res.writeHead(200, { 'content-type': 'application/wasm' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${server.address().port}/`, hits, close: () => server.close() };
}

const fetched = (hits) => [...hits.keys()].sort();
const model = fixture('cnn/model_float.tflite');
const inputs = fixture('cnn/inputs.npy');
const calibration = fixture('data/patterns_calib.npy');
const isCode = (code, re) => (e) => e.code === code && re.test(e.message);

/** Output bytes of a run, a quantization with calibration and the quantized model's run. */
async function session(opt, m) {
  const [y] = await m.run(inputs);
  const { model: q } = await m.quantize({ mode: 'static', calibrationData: calibration });
  const [yq] = await q.run(inputs, { raw: true });
  return { y, q: await q.toBytes(), yq };
}

test("engine 'auto': load/run/profile/benchmark on the core only; the first quantize fetches the full engine once, and its task worker starts from that module", async () => {
  const srv = await wasmServer();
  const full = createOptimizer({ engine: 'full', threads: 1 });
  const opt = createOptimizer({ wasmPaths: srv.base, threads: 2 });
  try {
    const m = await opt.loadModel(model);
    assert.ok(m.summary.macs > 0, 'the summary comes from the core');
    const [y] = await m.run(inputs);
    assert.ok((await m.profile(inputs, 1)).length > 0);
    assert.ok((await m.benchmark(inputs, 2)).meanMs >= 0);
    const info = await opt.info();
    assert.equal(info.engine, 'core');
    assert.deepEqual(fetched(srv.hits), [`/core/${info.flavor}/tinyml_optimizer_bg.wasm`], 'only the core was downloaded');

    const want = await session(full, await full.loadModel(model));
    assert.deepEqual(Buffer.from(y), Buffer.from(want.y), 'the core runs as the full engine');
    const got = await session(opt, m);
    assert.deepEqual(Buffer.from(got.q), Buffer.from(want.q), 'quantized bytes as on the full engine');
    assert.deepEqual(Buffer.from(got.yq), Buffer.from(want.yq));
    assert.equal((await opt.info()).engine, 'full');
    // The model loaded on the core is still there, re-opened in the full engine.
    const [again] = await m.run(inputs);
    assert.deepEqual(Buffer.from(again), Buffer.from(y));
    await m.prune({ sparsity: 0.5 });
    assert.deepEqual(
      [...srv.hits].sort(),
      [
        [`/${info.flavor}/tinyml_optimizer_bg.wasm`, 1],
        [`/core/${info.flavor}/tinyml_optimizer_bg.wasm`, 1],
      ].sort(),
      'the core once; the full engine once, by the switch: the one task worker (threads: 2) is given its compiled module and fetches nothing',
    );
  } finally {
    opt.terminate();
    full.terminate();
    srv.close();
  }
});

test("engine 'core' never fetches the full engine: calls that need it reject; 'full' never fetches the core", async () => {
  const srv = await wasmServer();
  const core = createOptimizer({ wasmPaths: srv.base, engine: 'core' });
  try {
    const m = await core.loadModel(model);
    await m.run(inputs);
    await assert.rejects(m.quantize({ mode: 'dynamic' }), isCode('invalid_argument', /needs the full engine.*engine: 'core'/));
    await assert.rejects(m.run(inputs, { streaming: true }), isCode('invalid_argument', /run needs the full engine/));
    await m.run(inputs);
    assert.ok(fetched(srv.hits).every((p) => p.startsWith('/core/')), `fetched ${fetched(srv.hits)}`);
  } finally {
    core.terminate();
  }
  srv.hits.clear();
  const full = createOptimizer({ wasmPaths: srv.base, engine: 'full', threads: 1 });
  try {
    await (await full.loadModel(model)).run(inputs);
    assert.equal((await full.info()).engine, 'full');
    assert.ok(fetched(srv.hits).every((p) => !p.startsWith('/core/')), `fetched ${fetched(srv.hits)}`);
  } finally {
    full.terminate();
    srv.close();
  }
  assert.throws(() => createOptimizer({ engine: 'small' }), isCode('invalid_argument', /engine must be/));
});

test("the TFLM report: the core's summary has none; tflm() and inspect() fetch the full engine for it ('auto'), 'core' refuses", async () => {
  const srv = await wasmServer();
  const full = createOptimizer({ engine: 'full', threads: 1 });
  const opt = createOptimizer({ wasmPaths: srv.base, threads: 1 });
  const core = createOptimizer({ wasmPaths: srv.base, engine: 'core' });
  try {
    const want = (await full.loadModel(model)).summary.tflm;
    assert.equal(typeof want?.supported, 'boolean', "the full engine's summary carries the report");
    assert.deepEqual(await (await full.loadModel(model)).tflm(), want, 'tflm() on the full engine is summary.tflm');

    const m = await opt.loadModel(model);
    assert.equal(m.summary.tflm, undefined, "the core's summary has no TFLM report");
    assert.equal((await opt.info()).engine, 'core');
    assert.deepEqual(await m.tflm(), want, 'the report as the full engine computes it');
    assert.equal((await opt.info()).engine, 'full', 'tflm() loaded the full engine');
    assert.deepEqual((await opt.inspect(model)).tflm, want);
    const wasm = fetched(srv.hits).filter((p) => !p.startsWith('/core/'));
    assert.equal(wasm.length, 1, `the full engine fetched once: ${wasm}`);

    const c = await core.loadModel(model);
    await assert.rejects(c.tflm(), isCode('invalid_argument', /tflm needs the full engine.*engine: 'core'/));
    const inspected = await core.inspect(model);
    assert.equal(inspected.tflm, undefined, "'core': inspect gives the summary without the report");
    assert.equal(inspected.macs, m.summary.macs);
  } finally {
    opt.terminate();
    core.terminate();
    full.terminate();
    srv.close();
  }
});

test('the methods the core answers find their exports in both core builds, and not the optimizer', () => {
  for (const flavor of ['simd', 'relaxed']) {
    const bytes = readFileSync(join(root, `web/wasm/core/${flavor}/tinyml_optimizer_bg.wasm`));
    // (WebAssembly.Module.exports needs a compiled module; the relaxed build may not compile in
    // Node 20, so the export names are read from the binary's export section.)
    const exports = exportNames(bytes);
    for (const [method, names] of Object.entries(CORE_METHODS)) {
      for (const name of names) assert.ok(exports.includes(name), `core/${flavor} lacks ${name}, which ${method} calls`);
    }
    for (const name of ['model_quantize', 'model_toBytes', 'model_prunejob', 'model_tflm', 'tflmFirmware', 'model_runjob']) {
      assert.ok(!exports.some((e) => e.toLowerCase() === name.toLowerCase()), `core/${flavor} exports ${name}`);
    }
  }
});

test('needsFull: a method goes to the full engine when the core lacks one of its exports, or is not a core method', () => {
  const all = new Set(Object.values(CORE_METHODS).flat());
  assert.equal(needsFull('load', { bytes: new Uint8Array() }, all), false);
  assert.equal(needsFull('run', { streaming: false }, all), false);
  assert.equal(needsFull('run', { streaming: true }, all), true);
  assert.equal(needsFull('quantize', {}, all), true);
  assert.equal(needsFull('toString', {}, all), true);
  const noSummary = new Set([...all].filter((n) => n !== 'model_summary'));
  assert.equal(needsFull('load', { bytes: new Uint8Array() }, noSummary), true, 'a core built without the summary cannot load');
  assert.equal(needsFull('profile', {}, noSummary), false);
});

test("worker: false: the core and the full engine share the thread; models carry over", async () => {
  const opt = createOptimizer({ worker: false });
  const m = await opt.loadModel(model);
  const [y] = await m.run(inputs);
  assert.equal((await opt.info()).engine, 'core');
  const { model: q } = await m.quantize({ mode: 'dynamic' });
  assert.equal((await opt.info()).engine, 'full');
  const [again] = await m.run(inputs);
  assert.deepEqual(Buffer.from(again), Buffer.from(y));
  assert.equal(q.summary.precision, 'hybrid');
  opt.terminate();
});

/** Names in a wasm binary's export section (id 7). */
function exportNames(bytes) {
  const section = wasmSections(bytes).find((s) => s.id === 7);
  if (!section) return [];
  const names = [];
  let [count, i] = leb128(bytes, section.body);
  for (; count > 0; count--) {
    const [len, at] = leb128(bytes, i);
    names.push(new TextDecoder().decode(bytes.subarray(at, at + len)));
    [, i] = leb128(bytes, at + len + 1); // after the name: the kind byte, then the index
  }
  return names;
}
