// Static quantization on every core in Node: the JavaScript pool (task workers take tasks from the
// front of a round, the serving worker from the back, so calibration's heavier chunks are dealt to
// both ends) gives the same model bytes and report as one thread; only the timings may differ.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createOptimizer } from '../dist/node.js';
import { fixture } from './helpers.mjs';

const one = createOptimizer({ threads: 1 });
const two = createOptimizer({ threads: 2 });
after(() => Promise.all([one.terminate(), two.terminate()]));

const calibrationData = fixture('data/patterns_calib.npy');

async function quantize(opt, model) {
  const m = await opt.loadModel(fixture(model));
  const t = performance.now();
  const q = await m.quantize({ calibrationData });
  const wall = performance.now() - t;
  const bytes = await q.model.toBytes();
  const { lastJob: rounds, lastJobSerial: serial } = await opt.info();
  // The serving worker's serial work around the rounds: making the job (reading the model and the
  // data) and finishing it (writing the model) both take time, and less than the whole call.
  assert.ok(serial.makeMs > 0 && serial.finishMs > 0 && serial.makeMs + serial.finishMs < wall, JSON.stringify({ serial, wall }));
  await Promise.all([m.release(), q.model.release()]);
  const { calibrationMs, rewriteMs, reportMs, ...report } = q.report;
  assert.ok(calibrationMs >= 0 && rewriteMs >= 0 && reportMs >= 0, JSON.stringify({ calibrationMs, rewriteMs, reportMs }));
  return { bytes: Buffer.from(bytes), report, rounds };
}

test('auto quantization gives identical bytes and report on one and two threads', async () => {
  for (const model of ['cnn/model_float.tflite', 'dwcnn/model_float.tflite']) {
    const a = await quantize(one, model);
    const b = await quantize(two, model);
    assert.ok(a.bytes.equals(b.bytes), `${model}: quantized models differ between 1 and 2 threads`);
    assert.deepEqual(a.report, b.report, model);
    // `auto`: three calibration methods, then bias correction on the winner (four candidates scored).
    assert.equal(a.report.candidates.length, 4, JSON.stringify(a.report.candidates));
    // 200 samples in chunks of 16 (the first 64, four chunks, also sum the layers' inputs), the
    // last 48 in chunks of 8: 4 + 6 (64..152, the last of 8) + 6 tasks.
    const calibrate = b.rounds.find((r) => r.stage === 'calibrate');
    assert.equal(calibrate.tasks, 16, JSON.stringify(calibrate));
    assert.equal(calibrate.engines.length, 2, JSON.stringify(calibrate));
    assert.equal(calibrate.engines.reduce((s, e) => s + e.tasks, 0), 16, JSON.stringify(calibrate));
    // The corrected candidate's round measures it too: no measure round when it wins.
    const stages = b.rounds.map((r) => r.stage);
    assert.deepEqual(stages, a.report.biasCorrection ? ['calibrate', 'select', 'select'] : ['calibrate', 'select', 'select', 'measure']);
  }
});
