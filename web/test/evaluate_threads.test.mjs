// Evaluation on every core in Node: the same report figures with one thread and with two (only
// the latency, timed, may differ), progress over both models' samples, and cancellation of a
// running evaluation.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createOptimizer } from '../dist/node.js';
import { fixture } from './helpers.mjs';

const one = createOptimizer({ threads: 1 });
const two = createOptimizer({ threads: 2 });
after(() => Promise.all([one.terminate(), two.terminate()]));

const testX = fixture('data/patterns_test_x.npy');
const testY = fixture('data/patterns_test_y.npy');

/** The report without its timings. */
function figures(r) {
  const { latency, reference, ...rest } = r;
  assert.ok(latency.minMs > 0 && latency.medianMs >= latency.minMs, JSON.stringify(latency));
  if (!reference) return rest;
  const { latency: rl, ...ref } = reference;
  assert.ok(rl.minMs > 0, JSON.stringify(rl));
  return { ...rest, reference: ref };
}

async function evaluate(opt, model, reference) {
  const m = await opt.loadModel(fixture(model));
  const r = reference ? await opt.loadModel(fixture(reference)) : undefined;
  const progress = [];
  const report = await m.evaluate(testX, { labels: testY, reference: r }, { onProgress: (p) => progress.push(p) });
  await Promise.all([m.release(), r?.release()]);
  return { report, progress };
}

test('evaluate gives identical figures on one and two threads, with progress over both models', async () => {
  for (const [model, reference] of [
    ['cnn/model_int8_tf.tflite', 'cnn/model_float.tflite'],
    ['mlp/model_int8_tf.tflite', undefined],
  ]) {
    const a = await evaluate(one, model, reference);
    const b = await evaluate(two, model, reference);
    assert.deepEqual(figures(a.report), figures(b.report), model);
    assert.equal(a.report.samples, 1000);
    assert.ok(a.report.accuracy > 0.9, `${model}: accuracy ${a.report.accuracy}`);
    const runs = reference ? 2000 : 1000;
    for (const { progress } of [a, b]) {
      assert.ok(progress.length >= 1 && progress.every((p) => p.stage === 'evaluate'), JSON.stringify(progress.slice(0, 3)));
      assert.deepEqual(progress.at(-1), { stage: 'evaluate', done: runs, total: runs });
    }
    if (reference) {
      assert.ok(a.report.reference.top1Agreement > 0.95, JSON.stringify(a.report.reference));
      assert.ok(a.report.reference.outputSqnrDb[0] > 15, JSON.stringify(a.report.reference));
    }
  }
});

test('a running evaluation on two threads cancels, and the engine works afterwards', async () => {
  const opt = createOptimizer({ threads: 2 });
  try {
    const m = await opt.loadModel(fixture('cnn/model_float.tflite'));
    let cancelled = false;
    const onProgress = () => {
      if (!cancelled) opt.cancel();
      cancelled = true;
    };
    const running = m.evaluate(testX, { labels: testY }, { onProgress });
    await assert.rejects(running, (e) => e.code === 'cancelled');
    const again = await opt.loadModel(fixture('mlp/model_int8_tf.tflite'));
    const r = await again.evaluate(testX, { labels: testY });
    assert.equal(r.samples, 1000);
  } finally {
    await opt.terminate();
  }
});

test('evaluation errors are unchanged on two threads', async () => {
  const m = await two.loadModel(fixture('cnn/model_int8_tf.tflite'));
  await assert.rejects(m.evaluate(testX, { labels: fixture('lstm/inputs.npy') }), (e) => e.code === 'invalid_input' && /labels for 1000 samples/.test(e.message));
  await assert.rejects(m.evaluate(fixture('lstm/inputs.npy')), (e) => e.code === 'invalid_input' && /the data has shape/.test(e.message));
  await m.release();
});
