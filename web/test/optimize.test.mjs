// The optimizing API in Node: quantize, prune, evaluate, benchmark, on the fixture models and the
// fixture test set (1000 labelled samples).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createOptimizer, OptimizerError } from '../dist/node.js';
import { fixture, parseNpy } from './helpers.mjs';

const opt = createOptimizer();
after(() => opt.terminate());

const testX = fixture('data/patterns_test_x.npy');
const testY = fixture('data/patterns_test_y.npy');
const calib = fixture('data/patterns_calib.npy');

test('static quantization: a full-int8 model as accurate as the float one, with a per-layer report', async () => {
  const float = await opt.loadModel(fixture('dwcnn/model_float.tflite'));
  const progress = [];
  const { model: q, report } = await float.quantize({ calibrationData: calib }, { onProgress: (p) => progress.push(p.stage) });
  assert.equal(q.summary.precision, 'int8');
  assert.equal(q.summary.inputs[0].dtype, 'i8');
  assert.ok(q.summary.sizeBytes < float.summary.sizeBytes);
  assert.ok(q.summary.parameterBytes < float.summary.parameterBytes / 3, 'int8 weights');
  assert.equal(report.mode, 'static');
  assert.match(report.calibration, /^auto: /);
  assert.equal(report.candidates.filter((c) => c.chosen).length, 1);
  assert.ok(report.layers.length >= 6 && report.layers.every((l) => l.keptFloat === false));
  assert.ok(report.outputSqnrDb[0] > 15, `output SQNR ${report.outputSqnrDb[0]}`);
  assert.ok(progress.includes('calibrate') && progress.includes('select'));
  const e = await q.evaluate(testX, { labels: testY, reference: float });
  assert.ok(e.accuracy >= e.reference.accuracy - 0.01, `int8 ${e.accuracy} vs float ${e.reference.accuracy}`);
  assert.ok(e.reference.top1Agreement > 0.97);
  await Promise.all([q.release(), float.release()]);
});

test('dynamic quantization needs no data; static without data or on an int8 model is refused', async () => {
  const float = await opt.loadModel(fixture('mlp/model_float.tflite'));
  const { model: d, report } = await float.quantize({ mode: 'dynamic' });
  assert.equal(report.mode, 'dynamic');
  assert.equal(d.summary.precision, 'hybrid');
  await assert.rejects(float.quantize({}), (e) => e instanceof OptimizerError && /calibration data/.test(e.message));
  const int8 = await opt.loadModel(fixture('mlp/model_int8_tf.tflite'));
  await assert.rejects(int8.quantize({ calibrationData: calib }), (e) => e.code === 'invalid_argument' && /already quantized/.test(e.message));
  await Promise.all([d.release(), float.release(), int8.release()]);
});

test('magnitude pruning at 50% keeps accuracy within 2 points; random pruning does visibly worse', async () => {
  const m = await opt.loadModel(fixture('resnet/model_float.tflite'));
  const base = await m.evaluate(testX, { labels: testY });
  const results = {};
  for (const method of ['global-magnitude', 'layer-magnitude', 'random']) {
    const { model: p, report } = await m.prune({ method, sparsity: 0.5 });
    assert.ok(Math.abs(report.achievedSparsity - 0.5) < 0.001, `${method}: ${report.achievedSparsity}`);
    assert.equal(report.after.params, report.before.params, 'unstructured pruning keeps shapes');
    assert.ok(report.after.nonzeroParams < report.before.nonzeroParams * 0.6);
    assert.ok(report.after.gzipBytes < report.before.gzipBytes * 0.8, 'zeros compress');
    results[method] = (await p.evaluate(testX, { labels: testY })).accuracy;
    await p.release();
  }
  for (const method of ['global-magnitude', 'layer-magnitude']) {
    assert.ok(results[method] >= base.accuracy - 0.02, `${method}: ${results[method]} vs ${base.accuracy}`);
  }
  assert.ok(results.random < base.accuracy - 0.2, `random: ${results.random}`);
  await m.release();
});

test('structured pruning at 50% halves the MACs of the residual model, which still runs', async () => {
  const m = await opt.loadModel(fixture('resnet/model_float.tflite'));
  const { model: p, report } = await m.prune({ method: 'layer-magnitude', sparsity: 0.5, structured: true });
  const ratio = report.after.macs / report.before.macs;
  assert.ok(ratio > 0.4 && ratio < 0.6, `MACs ratio ${ratio}`);
  assert.ok(report.channels[1] < report.channels[0]);
  assert.ok(p.summary.sizeBytes < m.summary.sizeBytes * 0.6);
  // Both branches of every residual ADD kept the same channels.
  for (const l of p.summary.layers.filter((l) => l.op === 'ADD')) {
    const shapes = l.inputs.map((t) => p.summary.tensors[t].shape.join('x'));
    assert.equal(new Set(shapes).size, 1, `ADD ${l.index}: ${shapes}`);
  }
  const [y] = await p.run(fixture('resnet/inputs.npy'));
  assert.deepEqual(parseNpy(y).shape, [8, 10]);
  await Promise.all([p.release(), m.release()]);
});

test('gradient pruning uses data and labels; without data it is refused', async () => {
  const m = await opt.loadModel(fixture('cnn/model_float.tflite'));
  await assert.rejects(m.prune({ method: 'global-gradient', sparsity: 0.3 }), (e) => e.code === 'invalid_argument' && /needs data/.test(e.message));
  const progress = [];
  const { model: p, report } = await m.prune(
    { method: 'layer-gradient', sparsity: 0.3, data: fixture('cnn/grad_x.npy'), labels: fixture('cnn/grad_y.npy') },
    { onProgress: (x) => progress.push(x) },
  );
  assert.equal(report.gradientSamples, 16);
  assert.ok(Math.abs(report.gradientLoss - parseNpy(fixture('cnn/grad_loss.npy')).data[0]) < 1e-3);
  assert.equal(progress.at(-1).stage, 'gradients');
  await assert.rejects(m.prune({ sparsity: 1.5 }), (e) => e.code === 'invalid_argument');
  await Promise.all([p.release(), m.release()]);
});

test('benchmark reports latency of one inference', async () => {
  const m = await opt.loadModel(fixture('cnn/model_int8_tf.tflite'));
  const l = await m.benchmark(fixture('cnn/inputs.npy'), 50);
  assert.ok(l.minMs > 0 && l.minMs <= l.medianMs && l.medianMs < 50, JSON.stringify(l));
  await m.release();
});
