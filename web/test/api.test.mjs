// The package API in Node: worker thread, typed errors, progress, cancellation.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createOptimizer, OptimizerError } from '../dist/node.js';
import { relaxedTrusted } from '../dist/engine.js';
import { fixture, maxAbsDiff, parseNpy } from './helpers.mjs';

const opt = createOptimizer();
after(() => opt.terminate());

test('loads a model and summarizes it', async () => {
  const m = await opt.loadModel(fixture('cnn/model_float.tflite'));
  const s = m.summary;
  assert.equal(s.precision, 'float');
  assert.deepEqual(s.inputs[0].shape, [1, 16, 16, 1]);
  assert.deepEqual(s.outputs[0].shape, [1, 10]);
  assert.equal(s.operators.find((o) => o.op === 'CONV_2D').count, 2);
  assert.equal(s.macs, s.layers.reduce((a, l) => a + l.macs, 0));
  assert.ok(s.parameters > 1000);
  await m.release();
});

test('runs a batch and matches LiteRT', async () => {
  const m = await opt.loadModel(fixture('dwcnn/model_float.tflite'));
  const progress = [];
  const [y] = await m.run(fixture('dwcnn/inputs.npy'), { onProgress: (p) => progress.push(p) });
  const got = parseNpy(y);
  const want = parseNpy(fixture('dwcnn/outputs_float.npy'));
  assert.deepEqual(got.shape, want.shape);
  assert.ok(maxAbsDiff(got.data, want.data) < 1e-5);
  assert.equal(progress.at(-1).done, 8);
  assert.equal(progress.at(-1).total, 8);
  await m.release();
});

test('the engine uses a SIMD build', async () => {
  const info = await opt.info();
  assert.match(info.simd, /^(simd128|relaxed-simd)$/);
  const plain = createOptimizer({ prefer: 'simd' });
  const plainInfo = await plain.info();
  assert.equal(plainInfo.simd, 'simd128');
  // The relaxed dot kernels exist only in the relaxed build.
  assert.equal(plainInfo.int8Kernel, 'dot-i16');
  if (info.simd === 'simd128') assert.equal(info.int8Kernel, 'dot-i16');
  else assert.match(info.int8Kernel, /^relaxed-dot-(u8|s8)$/);
  plain.terminate();
});

test('a corrupt model is an invalid_model error with a message', async () => {
  const bytes = new Uint8Array(fixture('cnn/model_float.tflite'));
  await assert.rejects(opt.loadModel(bytes.subarray(0, 100)), (e) => {
    assert.ok(e instanceof OptimizerError);
    assert.equal(e.code, 'invalid_model');
    assert.match(e.message, /invalid model file/);
    return true;
  });
  await assert.rejects(opt.loadModel(new Uint8Array(0)), /the file is empty/);
});

test('transfer: true hands whole buffers to the engine, still copies views, and gives the same outputs', async () => {
  const m = await opt.loadModel(fixture('dwcnn/model_float.tflite'));
  const [want] = await m.run(fixture('dwcnn/inputs.npy'));
  const given = new Uint8Array(fixture('dwcnn/inputs.npy'));
  const [got] = await m.run(given, { transfer: true });
  assert.equal(given.byteLength, 0, 'a whole buffer is moved, so the caller sees it detached');
  assert.deepEqual(got, want);
  // Giving it again is a clear error, not a parse failure of empty bytes.
  await assert.rejects(m.run(given), (e) => e.code === 'invalid_npy' && /transfer: true is detached/.test(e.message));
  // A view into a larger buffer cannot be moved without taking the rest: it is copied.
  const npy = fixture('dwcnn/inputs.npy');
  const big = new Uint8Array(npy.byteLength + 8);
  big.set(npy, 8);
  const view = big.subarray(8);
  const [again] = await m.run(view, { transfer: true });
  assert.equal(view.byteLength, npy.byteLength);
  assert.deepEqual(again, want);
  // Without the option the caller keeps its bytes.
  const kept = new Uint8Array(npy);
  await m.run(kept);
  assert.equal(kept.byteLength, npy.byteLength);
  await m.release();
});

test('wrong input shape names both shapes', async () => {
  const m = await opt.loadModel(fixture('cnn/model_float.tflite'));
  await assert.rejects(m.run(fixture('mlp/outputs_float.npy')), (e) => {
    assert.equal(e.code, 'invalid_input');
    assert.match(e.message, /\[8, 10\].*\[1, 16, 16, 1\]/);
    return true;
  });
});

test('cancel rejects pending work and the next call starts a fresh worker', async () => {
  const o = createOptimizer();
  const m = await o.loadModel(fixture('resnet/model_float.tflite'));
  const x = fixture('resnet/inputs.npy');
  const running = m.run(x);
  o.cancel();
  await assert.rejects(running, (e) => e.code === 'cancelled');
  await assert.rejects(m.run(x), /load it again/);
  const again = await o.loadModel(fixture('resnet/model_float.tflite'));
  assert.equal((await again.run(x)).length, 1);
  o.terminate();
});

test('an aborted signal cancels', async () => {
  const o = createOptimizer();
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(o.loadModel(fixture('cnn/model_float.tflite'), { signal: ac.signal }), (e) => e.code === 'cancelled');
  o.terminate();
});

test('the caller keeps its input buffer (inputs are copied once, then transferred)', async () => {
  const bytes = new Uint8Array(fixture('cnn/model_float.tflite'));
  const m = await opt.loadModel(bytes);
  assert.equal(bytes.byteLength > 0, true);
  const out = await m.toBytes();
  assert.equal(String.fromCharCode(...out.subarray(4, 8)), 'TFL3');
  await m.release();
});

test('relaxed SIMD is used only from V8 11.4 on (Node 20\'s flagged 11.3 computes the accumulating dot wrongly)', () => {
  assert.equal(relaxedTrusted(undefined), true); // a browser
  for (const v of ['11.4.183.29', '12.4.254.21-node.33', '13.0.1']) assert.equal(relaxedTrusted(v), true, v);
  for (const v of ['11.3.244.8-node.38', '10.2.154.26-node.36', 'x.y', '']) assert.equal(relaxedTrusted(v), false, v);
});
