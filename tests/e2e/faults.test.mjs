// Engine faults in headless Chromium: a trap in the Web Worker's engine (a wasm `unreachable`, as a
// panic or an out-of-memory abort gives, and a stack overflow, which V8 reports as a RangeError)
// rejects the running and queued calls with engine_crashed, and the next call works on a fresh
// engine. Also: a reused AbortController aborted after its call finished cancels nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { root, startPackagePage } from './harness.mjs';

const files = ['model_float.tflite', 'inputs.npy'].map((n) => join(root, 'tests/fixtures/cnn', n));

const script = `
import { createOptimizer } from '/web/dist/browser.js';
const get = async (i) => new Uint8Array(await (await fetch('/file/' + i)).arrayBuffer());
const outcome = (p) => p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, code: e.code, message: e.message }));
window.trapThenRecover = async (kind) => {
  const opt = createOptimizer();
  const [modelBytes, x] = [await get(0), await get(1)];
  const model = await opt.loadModel(modelBytes);
  const generation = opt.workerGeneration;
  const trap = outcome(opt.testHookTrap(kind));
  const queued = outcome(model.run(x));
  const r = { trap: await trap, queued: await queued, generationStep: opt.workerGeneration - generation };
  r.stale = await outcome(model.run(x));
  const again = await opt.loadModel(modelBytes);
  r.outputs = (await again.run(x)).length;
  r.info = (await opt.info()).simd;
  opt.terminate();
  return r;
};
window.reusedSignal = async () => {
  const opt = createOptimizer();
  const [modelBytes, x] = [await get(0), await get(1)];
  const ac = new AbortController();
  const model = await opt.loadModel(modelBytes, { signal: ac.signal });
  const generation = opt.workerGeneration;
  const running = outcome(model.run(x));
  ac.abort();
  const r = { running: await running, restarted: opt.workerGeneration !== generation };
  r.after = await outcome(model.run(x));
  opt.terminate();
  return r;
};
window.ready = true;
`;

let page;
before(async () => {
  page = await startPackagePage(script, files);
});
after(async () => {
  await page?.close();
});

for (const kind of ['unreachable', 'stack-overflow']) {
  test(`Chromium: a trap (${kind}) is followed by a working call`, async () => {
    const r = await page.tab.evaluate((k) => window.trapThenRecover(k), kind);
    assert.equal(r.trap.ok, false);
    assert.equal(r.trap.code, 'engine_crashed', r.trap.message);
    assert.match(r.trap.message, /must be loaded again/);
    if (kind === 'stack-overflow') assert.match(r.trap.message, /RangeError|call stack/i);
    assert.equal(r.queued.code, 'engine_crashed', 'the call queued behind the trap');
    assert.equal(r.generationStep, 1);
    assert.equal(r.stale.code, 'engine_crashed', 'a model of the crashed engine');
    assert.equal(r.outputs, 1, 'a model loaded again runs');
    assert.match(r.info, /simd/);
    assert.deepEqual(page.errors, []);
  });
}

test('Chromium: a reused AbortController aborted after its call finished cancels nothing', async () => {
  const r = await page.tab.evaluate(() => window.reusedSignal());
  assert.equal(r.running.ok, true, r.running.message);
  assert.equal(r.restarted, false);
  assert.equal(r.after.ok, true, r.after.message);
});
