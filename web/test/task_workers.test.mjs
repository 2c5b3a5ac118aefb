// The serving worker's side of its task workers, in this thread (the package's handlers with a
// host whose task workers are handlers too): a task worker starts from the serving worker's
// compiled wasm module, never reading or compiling the engine itself, and a static quantization
// split across the two engines gives the bytes one engine gives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../dist/handlers.js';
import { readWasmAt } from '../dist/wasm-file.js';
import { fixture } from './helpers.mjs';

/** An API worker (handlers) with `threads` engines; `inits` collects its task workers' init messages. */
function apiWorker(threads, inits) {
  const waiting = new Map();
  const host = {
    post(msg) {
      if (msg.type === 'result') waiting.get(msg.id)?.(msg);
    },
    readWasm: readWasmAt,
    spawnTaskWorker(init, onReply) {
      inits.push(init);
      const task = serve({
        post: (msg) => setImmediate(() => onReply(msg)),
        readWasm: async () => {
          throw new Error('a task worker read the engine instead of using the module it was given');
        },
      });
      task(init);
      return { post: (msg) => setImmediate(() => task(msg)), terminate() {} };
    },
  };
  const api = serve(host);
  api({ type: 'init', threads, role: 'api' });
  let id = 1;
  return (method, args) =>
    new Promise((resolve, reject) => {
      const me = id++;
      waiting.set(me, (msg) => (msg.ok ? resolve(msg.value) : reject(new Error(msg.error.message))));
      api({ id: me, method, args });
    });
}

async function quantizedBytes(threads, inits) {
  const call = apiWorker(threads, inits);
  const { handle } = await call('load', { bytes: fixture('dwcnn/model_float.tflite') });
  const q = await call('quantize', { handle, calibration: fixture('data/patterns_calib.npy'), options: {} });
  const info = await call('info', {});
  return { bytes: (await call('export', { handle: q.handle })).bytes, rounds: info.lastJob };
}

test("task workers start from the serving worker's compiled module, and the result is one engine's", async () => {
  const inits = [];
  const two = await quantizedBytes(2, inits);
  assert.equal(inits.length, 1);
  const modules = Object.values(inits[0].wasm?.modules ?? {});
  assert.equal(modules.length, 1, JSON.stringify(inits[0].wasm));
  assert.ok(modules[0] instanceof WebAssembly.Module);
  assert.equal(inits[0].role, 'task');
  // The task worker did run tasks (with the module it was given), in every round.
  assert.ok(two.rounds.length >= 3, JSON.stringify(two.rounds));
  assert.ok(two.rounds.some((r) => r.engines[1]?.tasks > 0), JSON.stringify(two.rounds));
  const one = await quantizedBytes(1, []);
  assert.ok(Buffer.from(one.bytes).equals(Buffer.from(two.bytes)), 'the model quantized on two engines differs');
});
