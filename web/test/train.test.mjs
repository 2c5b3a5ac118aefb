// Every core and training through the package in Node: results identical on one and two threads,
// fine-tuning with gradual pruning (live figures, a graceful stop keeping the best model),
// quantization-aware training, and the CLI's training commands.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { createOptimizer } from '../dist/node.js';
import { cliPath, fixture, parseNpy } from './helpers.mjs';

const run = promisify(execFile);
const one = createOptimizer({ threads: 1 });
const two = createOptimizer({ threads: 2 });
after(() => {
  one.terminate();
  two.terminate();
});

const calib = fixture('data/patterns_calib.npy');
const testX = fixture('data/patterns_test_x.npy');
const testY = fixture('data/patterns_test_y.npy');

/** A .npy file of `data` (a typed array) with dtype `descr` and `shape`. */
function npy(descr, shape, data) {
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  h = h.padEnd(64 - 10 - 1) + '\n';
  const out = new Uint8Array(10 + h.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8]);
  out.set(new TextEncoder().encode(h), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + h.length);
  return out;
}

/** The first `n` samples of the fixture test set: images and int32 labels, as .npy files. */
function slice(n) {
  const x = parseNpy(testX);
  const y = new Uint8Array(testY);
  const body = 10 + (y[8] | (y[9] << 8));
  const labels = new Int32Array(y.slice(body, body + 4 * n).buffer);
  return { x: npy('<f4', [n, 16, 16, 1], x.data.subarray(0, n * 256)), y: npy('<i4', [n], labels) };
}

test('quantization and runs give identical bytes on one and two threads', async () => {
  const results = [];
  for (const opt of [one, two]) {
    const m = await opt.loadModel(fixture('cnn/model_float.tflite'));
    const { model: q, report } = await m.quantize({ calibrationData: calib });
    const outs = await q.run(slice(100).x);
    results.push({ bytes: await q.toBytes(), sqnr: report.outputSqnrDb, out: outs[0] });
    await Promise.all([m.release(), q.release()]);
  }
  assert.deepEqual(results[0].bytes, results[1].bytes);
  assert.deepEqual(results[0].sqnr, results[1].sqnr);
  assert.deepEqual(results[0].out, results[1].out);
});

test('gradual pruning while fine-tuning reaches the sparsity, reports figures live, and stops gracefully', async () => {
  const { x, y } = slice(320);
  const m = await two.loadModel(fixture('cnn/model_float.tflite'));
  const figures = [];
  const { report } = await m.finetune(
    { data: x, labels: y, epochs: 2, validationSplit: 0.25, prune: { method: 'global-magnitude', sparsity: 0.5 } },
    { onMetrics: (f) => figures.push(f) },
  );
  assert.equal(report.train.epochs.length, 2);
  assert.ok(Math.abs(report.train.sparsity - 0.5) < 0.01, `sparsity ${report.train.sparsity}`);
  assert.ok(figures.length >= 10 && figures.at(-1).epochs.length === 2, 'a figure per step');
  assert.ok(report.train.epochs.every((e) => e.valAccuracy !== null && e.loss > 0));
  // An abort stops training after the current step: the call resolves with the best model so far.
  const ac = new AbortController();
  const stopped = await m.finetune(
    { data: x, labels: y, epochs: 50, validationSplit: 0.25 },
    { signal: ac.signal, onMetrics: (f) => f.epochs.length >= 1 && ac.abort() },
  );
  assert.match(stopped.report.train.stopped, /stopped by the user/);
  assert.ok(stopped.report.train.epochs.length < 50);
  assert.ok((await stopped.model.run(x)).length === 1, 'the kept model runs');
  await m.release();
});

test('an explicit pruning schedule is read with its camelCase fields', async () => {
  const { x, y } = slice(64);
  const m = await one.loadModel(fixture('cnn/model_float.tflite'));
  // Constant sparsity from the first step (the CLI's --schedule constant); the fields were read
  // snake_case before, so this call was refused.
  const schedule = { kind: 'constant', sparsity: 0.6, beginStep: 0, frequency: 1 };
  const { report } = await m.finetune({ data: x, labels: y, epochs: 1, prune: { method: 'global-magnitude', sparsity: 0.6, schedule } });
  assert.ok(Math.abs(report.train.sparsity - 0.6) < 0.01, `sparsity ${report.train.sparsity}`);
  await assert.rejects(
    m.finetune({ data: x, labels: y, epochs: 1, prune: { method: 'global-magnitude', sparsity: 0.6, schedule: { kind: 'constant', sparsity: 0.6, begin_step: 0, frequency: 1 } } }),
    (e) => e.code === 'invalid_argument' && /beginStep/.test(e.message),
  );
  await m.release();
});

test('quantization-aware training exports a full-int8 model; bad training requests are refused', async () => {
  const { x, y } = slice(400);
  const m = await two.loadModel(fixture('mlp/model_float.tflite'));
  const { model: q, report } = await m.quantizeAware({ data: x, labels: y, train: { epochs: 1, validationSplit: 0 } });
  assert.equal(q.summary.precision, 'int8');
  assert.equal(report.quantize.mode, 'qat');
  assert.equal(report.train.epochs.length, 1);
  const e = await q.evaluate(testX, { labels: testY });
  assert.ok(e.accuracy > 0.9, `int8 accuracy after QAT ${e.accuracy}`);
  await assert.rejects(m.finetune({ data: x, labels: y, epochs: 0 }), (err) => err.code === 'invalid_argument' && /epochs/.test(err.message));
  await assert.rejects(m.finetune({ data: x, labels: slice(10).y, epochs: 1 }), (err) => err.code === 'invalid_input');
  await Promise.all([m.release(), q.release()]);
});

test('the CLI fine-tunes, prunes while training and trains quantization-aware', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tinyml-train-'));
  const { x, y } = slice(200);
  writeFileSync(join(dir, 'x.npy'), x);
  writeFileSync(join(dir, 'y.npy'), y);
  const model = new URL('../../tests/fixtures/cnn/model_float.tflite', import.meta.url).pathname;
  const train = ['--train', join(dir, 'x.npy'), '--train-labels', join(dir, 'y.npy'), '--threads', '2', '--json'];
  const p = JSON.parse(
    (await run('node', [cliPath, 'prune', model, '-o', join(dir, 'p.tflite'), '--sparsity', '0.6', '--finetune-epochs', '1', ...train])).stdout,
  );
  assert.ok(Math.abs(p.report.train.sparsity - 0.6) < 0.01);
  const f = JSON.parse((await run('node', [cliPath, 'finetune', join(dir, 'p.tflite'), '-o', join(dir, 'f.tflite'), '--epochs', '1', ...train])).stdout);
  assert.ok(f.report.train.sparsity === 0 || f.report.train.epochs.length === 1);
  const q = JSON.parse(
    (await run('node', [cliPath, 'quantize', join(dir, 'f.tflite'), '-o', join(dir, 'q.tflite'), '--qat-epochs', '1', ...train])).stdout,
  );
  assert.equal(q.report.quantize.mode, 'qat');
  const bad = await run('node', [cliPath, 'finetune', model, '-o', join(dir, 'z.tflite'), '--epochs', '1', '--train', join(dir, 'x.npy')]).catch((e) => e);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--train-labels/);
});

test('the CLI trains quantization-aware from the static model of --calibration, and keeps it when no epoch beats it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tinyml-qat-'));
  const { x, y } = slice(300);
  writeFileSync(join(dir, 'x.npy'), x);
  writeFileSync(join(dir, 'y.npy'), y);
  writeFileSync(join(dir, 'c.npy'), calib);
  const model = new URL('../../tests/fixtures/mlp/model_float.tflite', import.meta.url).pathname;
  const quantize = ['--calibration', join(dir, 'c.npy'), '--calibration-method', 'mse', '--threads', '2', '--json'];
  await run('node', [cliPath, 'quantize', model, '-o', join(dir, 'ptq.tflite'), ...quantize]);
  // A far too high learning rate: every epoch is worse than the start on the validation samples.
  const train = ['--train', join(dir, 'x.npy'), '--train-labels', join(dir, 'y.npy'), '--learning-rate', '0.5', '--validation-split', '0.3'];
  const q = JSON.parse(
    (await run('node', [cliPath, 'quantize', model, '-o', join(dir, 'qat.tflite'), ...quantize, '--qat-epochs', '2', ...train])).stdout,
  );
  assert.equal(q.report.train.kept, 'start', JSON.stringify(q.report.train.epochs));
  assert.equal(q.report.train.epochs.length, 2);
  assert.deepEqual(readFileSync(join(dir, 'qat.tflite')), readFileSync(join(dir, 'ptq.tflite')), 'not the model quantize alone writes');
});
