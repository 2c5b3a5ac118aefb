// "Fits any JS stack", in Node: tensors in and out, the engine in this thread (worker: false),
// wasm from another folder (wasmPaths) or compiled by the caller (wasmModule), and one glue
// module for both wasm builds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createOptimizer, OptimizerError, readNpy, writeNpy } from '../dist/node.js';
import { fixture, maxAbsDiff, root } from './helpers.mjs';

const opt = createOptimizer({ threads: 1 });
after(() => opt.terminate());

const isCode = (code, pattern) => (e) => {
  assert.ok(e instanceof OptimizerError, String(e));
  assert.equal(e.code, code);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

test('run takes a tensor and gives tensors; npy bytes still give npy bytes', async () => {
  const m = await opt.loadModel(fixture('dwcnn/model_float.tflite'));
  const x = readNpy(fixture('dwcnn/inputs.npy'));
  const [y] = await m.run(x);
  assert.ok(y.data instanceof Float32Array);
  const want = readNpy(fixture('dwcnn/outputs_float.npy'));
  assert.deepEqual(y.shape, want.shape);
  assert.ok(maxAbsDiff(y.data, want.data) < 1e-5);
  const [bytes] = await m.run(fixture('dwcnn/inputs.npy'));
  assert.ok(bytes instanceof Uint8Array);
  assert.deepEqual(readNpy(bytes), y);
  const [asNpy] = await m.run(x, { output: 'npy' });
  assert.deepEqual(readNpy(asNpy), y);
  const [asTensor] = await m.run(fixture('dwcnn/inputs.npy'), { output: 'tensor' });
  assert.deepEqual(asTensor, y);
  await assert.rejects(m.run({ data: new Float32Array(3), shape: [2, 2] }), isCode('invalid_argument', /4 elements but its data has 3/));
  await m.release();
});

test('quantize and evaluate take tensors: the same report as with npy bytes', async () => {
  const m = await opt.loadModel(fixture('cnn/model_float.tflite'));
  const calib = readNpy(fixture('data/patterns_calib.npy'));
  const x = readNpy(fixture('data/patterns_test_x.npy'));
  const y = readNpy(fixture('data/patterns_test_y.npy'));
  const options = { calibration: { method: 'minmax' } };
  const a = await m.quantize({ ...options, calibrationData: calib });
  const b = await m.quantize({ ...options, calibrationData: fixture('data/patterns_calib.npy') });
  assert.deepEqual(await a.model.toBytes(), await b.model.toBytes());
  const small = { data: x.data.subarray(0, 64 * 256), shape: [64, 16, 16, 1] };
  const e1 = await a.model.evaluate(small, { labels: { data: y.data.subarray(0, 64), shape: [64] }, reference: m });
  const e2 = await a.model.evaluate(writeNpy(small), { labels: writeNpy({ data: y.data.subarray(0, 64), shape: [64] }), reference: m });
  assert.equal(e1.accuracy, e2.accuracy);
  assert.ok(e1.accuracy > 0.5, `accuracy ${e1.accuracy}`);
  await assert.rejects(m.quantize({ calibrationData: 'x.npy' }), isCode('invalid_argument', /npy bytes .* or a tensor/));
});

test('worker: false runs the engine in this thread with the same results', async () => {
  const local = createOptimizer({ worker: false });
  const m = await local.loadModel(fixture('cnn/model_float.tflite'));
  const info = await local.info();
  assert.match(info.simd, /simd/);
  const { model: q, report } = await m.quantize({ calibrationData: fixture('data/patterns_calib.npy'), calibration: { method: 'minmax' } });
  assert.equal(q.summary.precision, 'int8');
  assert.ok(report);
  const w = await (await opt.loadModel(fixture('cnn/model_float.tflite'))).quantize({
    calibrationData: fixture('data/patterns_calib.npy'),
    calibration: { method: 'minmax' },
  });
  assert.deepEqual(await q.toBytes(), await w.model.toBytes(), 'main thread and worker give the same model');
  // A second main-thread optimizer shares the thread's instance: it must ask for the same options.
  assert.throws(() => createOptimizer({ worker: false, target: 'litert' }), isCode('invalid_argument', /share one engine instance/));
  const again = createOptimizer({ worker: false });
  assert.equal((await again.loadModel(fixture('mlp/model_float.tflite'))).summary.precision, 'float');
  // Cancelling a running call rejects it; the models of that optimizer are gone, the next call works.
  const controller = new AbortController();
  const running = m.quantize({ calibrationData: fixture('data/patterns_calib.npy') }, { signal: controller.signal, onProgress: () => controller.abort() });
  await assert.rejects(running, isCode('cancelled'));
  await assert.rejects(m.toBytes(), isCode('cancelled'));
  const fresh = await local.loadModel(fixture('cnn/model_float.tflite'));
  assert.equal(fresh.summary.precision, 'float');
  local.terminate();
  again.terminate();
});

test('wasmPaths loads the wasm from another folder; a wrong folder is a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tinyml-wasm-'));
  cpSync(join(root, 'web/wasm'), dir, { recursive: true });
  const moved = createOptimizer({ wasmPaths: dir + '/', threads: 1 });
  assert.match((await moved.info()).simd, /simd/);
  moved.terminate();
  const perBuild = createOptimizer({ wasmPaths: { simd: join(dir, 'simd/tinyml_optimizer_bg.wasm') }, prefer: 'simd', threads: 1 });
  assert.equal((await perBuild.info()).flavor, 'simd');
  perBuild.terminate();
  const missing = createOptimizer({ wasmPaths: join(dir, 'nowhere'), threads: 1 });
  await assert.rejects(missing.info(), /no such file|ENOENT/);
  missing.terminate();
  assert.throws(() => createOptimizer({ wasmPaths: { fast: 'x' } }), isCode('invalid_argument', /unknown build 'fast'/));
  assert.throws(() => createOptimizer({ wasmPaths: 42 }), isCode('invalid_argument'));
});

test('wasmModule: a compiled module is used as given, in a worker and in this thread', async () => {
  const simd = await WebAssembly.compile(readFileSync(join(root, 'web/wasm/simd/tinyml_optimizer_bg.wasm')));
  const viaWorker = createOptimizer({ wasmModule: { simd }, threads: 2 });
  const info = await viaWorker.info();
  assert.equal(info.flavor, 'simd', 'only the simd build was given, so it is used');
  assert.equal(info.int8Kernel, 'dot-i16');
  // Task workers get the module too: a parallel run works.
  const m = await viaWorker.loadModel(fixture('cnn/model_float.tflite'));
  const [y] = await m.run(readNpy(fixture('cnn/inputs.npy')));
  assert.ok(maxAbsDiff(y.data, readNpy(fixture('cnn/outputs_float.npy')).data) < 1e-5);
  viaWorker.terminate();
  assert.throws(() => createOptimizer({ wasmModule: { simd: new Uint8Array(4) } }), isCode('invalid_argument', /WebAssembly.Module/));
  assert.throws(() => createOptimizer({ wasmModule: {} }), isCode('invalid_argument', /no module/));
});

test('both wasm builds of each kind share one glue module: the generated glue files agree outside comments', () => {
  const code = (flavor) =>
    readFileSync(join(root, `web/wasm/${flavor}/tinyml_optimizer.js`), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
  assert.equal(code('relaxed'), code('simd'));
  assert.equal(code('core/relaxed'), code('core/simd'));
});

test('worker: false after an engine crash: calls reject with engine_crashed, not a broken engine', () => {
  // In a child process: the crash poisons that thread's one engine instance for good.
  const script = `
import { readFileSync } from 'node:fs';
import { createOptimizer } from ${JSON.stringify(new URL('../dist/node.js', import.meta.url).href)};
const opt = createOptimizer({ worker: false });
const model = readFileSync(${JSON.stringify(join(root, 'tests/fixtures/mlp/model_float.tflite'))});
await opt.loadModel(model);
const codes = [];
for (const call of [() => opt.testHookTrap('unreachable'), () => opt.loadModel(model), () => createOptimizer({ worker: false }).info()]) {
  try { await call(); codes.push('ok'); } catch (e) { codes.push(e.code + ': ' + e.message); }
}
console.log(JSON.stringify(codes));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const [trap, after, other] = JSON.parse(r.stdout);
  assert.match(trap, /^engine_crashed: the engine crashed/);
  assert.match(after, /^engine_crashed: .*cannot be replaced in the same thread/);
  assert.match(other, /^engine_crashed: .*cannot be replaced in the same thread/);
});
