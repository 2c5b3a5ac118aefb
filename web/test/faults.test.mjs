// Engine faults and cancellation in Node: a trap rejects the running and queued calls with
// engine_crashed and the next call gets a fresh engine; a per-call signal cancels that call only;
// an abort listener is gone once its call has settled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, OptimizerError } from '../dist/node.js';
import { fixture } from './helpers.mjs';

const modelBytes = fixture('cnn/model_float.tflite');
const x = fixture('cnn/inputs.npy');

const crashed = (e) => {
  assert.ok(e instanceof OptimizerError, String(e));
  assert.equal(e.code, 'engine_crashed', e.message);
  assert.equal(e.isUserError, false);
  return true;
};

for (const kind of ['unreachable', 'stack-overflow']) {
  test(`a trap (${kind}) rejects the running and queued calls, and the next call works`, async () => {
    const opt = createOptimizer();
    try {
      const model = await opt.loadModel(modelBytes);
      const generation = opt.workerGeneration;
      const trap = opt.testHookTrap(kind);
      const queuedRun = model.run(x);
      const queuedInfo = opt.npyInfo(x);
      await assert.rejects(trap, (e) => crashed(e) && /must be loaded again/.test(e.message));
      await assert.rejects(queuedRun, crashed);
      await assert.rejects(queuedInfo, crashed);
      assert.equal(opt.workerGeneration, generation + 1);
      // The next call starts a fresh engine; the old model is gone, with an error that says why.
      assert.deepEqual((await opt.npyInfo(x)).shape, [8, 16, 16, 1]);
      await assert.rejects(model.run(x), (e) => crashed(e) && /load.* again/.test(e.message));
      const again = await opt.loadModel(modelBytes);
      assert.equal((await again.run(x)).length, 1);
    } finally {
      opt.terminate();
    }
  });
}

test('a reused AbortController aborted after its call finished cancels nothing', async () => {
  const opt = createOptimizer();
  try {
    const ac = new AbortController();
    const model = await opt.loadModel(modelBytes, { signal: ac.signal });
    const generation = opt.workerGeneration;
    const running = model.run(x);
    const queued = opt.npyInfo(x);
    ac.abort();
    assert.equal((await running).length, 1);
    assert.deepEqual((await queued).shape, [8, 16, 16, 1]);
    assert.equal(opt.workerGeneration, generation, 'the engine was not restarted');
    assert.equal((await model.run(x)).length, 1, 'the model is still loaded');
  } finally {
    opt.terminate();
  }
});

test('a signal cancels its call only while it is queued: the others run, models stay loaded', async () => {
  const opt = createOptimizer();
  try {
    const model = await opt.loadModel(modelBytes);
    const generation = opt.workerGeneration;
    const ac = new AbortController();
    const first = model.run(x);
    const second = model.run(x, { signal: ac.signal });
    const third = opt.npyInfo(x);
    ac.abort();
    await assert.rejects(second, (e) => e.code === 'cancelled' && /before it started/.test(e.message));
    assert.equal((await first).length, 1);
    assert.deepEqual((await third).shape, [8, 16, 16, 1]);
    assert.equal(opt.workerGeneration, generation);
    assert.equal((await model.run(x)).length, 1);
  } finally {
    opt.terminate();
  }
});

test('a signal cancels its running call by restarting the engine; only calls on its models fail', async () => {
  const opt = createOptimizer();
  try {
    const model = await opt.loadModel(modelBytes);
    const generation = opt.workerGeneration;
    const ac = new AbortController();
    const running = model.run(x, { signal: ac.signal });
    const onModel = model.run(x);
    const independent = opt.npyInfo(x);
    ac.abort();
    await assert.rejects(running, (e) => e.code === 'cancelled' && /engine was restarted/.test(e.message));
    await assert.rejects(onModel, (e) => e.code === 'cancelled' && /load it again/.test(e.message));
    assert.deepEqual((await independent).shape, [8, 16, 16, 1], 'a call that needs no loaded model runs on the fresh engine');
    assert.equal(opt.workerGeneration, generation + 1);
    const again = await opt.loadModel(modelBytes);
    assert.equal((await again.run(x)).length, 1);
  } finally {
    opt.terminate();
  }
});

test('maxMemory is validated and reaches the engine', async () => {
  assert.throws(() => createOptimizer({ maxMemory: -1 }), /maxMemory must be a positive whole number/);
  const small = createOptimizer({ maxMemory: 1024 });
  try {
    await assert.rejects(small.loadModel(modelBytes), (e) => {
      assert.equal(e.code, 'resource_limit');
      assert.equal(e.limit, 1024);
      assert.ok(e.requested > 1024);
      assert.equal(e.isUserError, true);
      return true;
    });
  } finally {
    small.terminate();
  }
});
