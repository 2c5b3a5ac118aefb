// How much faster this machine runs N independent copies of single-threaded engine work than one:
// the ceiling for any split of a job over N threads. Each copy is a Node worker thread with its own
// engine instance (the simd128 build) running the same int8 model on the same input a fixed number
// of times; nothing is shared between them. On N real, otherwise idle cores the ceiling is N; two
// vCPUs that share a physical core, its caches or its memory bandwidth give less.
// Used by threads_bench.mjs; run alone: node tests/bench/cores_ceiling.mjs [N]
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const RUNS = 60;

/** One copy: load the engine and the fixture model, warm up, then time RUNS inferences (ms). */
async function copy() {
  const { readFileSync } = await import('node:fs');
  const glue = await import(pathToFileURL(join(root, 'web/wasm/simd/tinyml_optimizer.js')).href);
  glue.initSync({ module: readFileSync(join(root, 'web/wasm/simd/tinyml_optimizer_bg.wasm')) });
  const model = new glue.Model(readFileSync(join(root, 'tests/fixtures/resnet/model_int8_tf.tflite')));
  const input = readFileSync(join(root, 'tests/fixtures/resnet/inputs.npy'));
  // Warm up for a second: V8 optimizes hot wasm functions in the background, after a while.
  for (const t = performance.now(); performance.now() - t < 1000; ) model.run(input, false, undefined);
  parentPort.postMessage('ready');
  await new Promise((go) => parentPort.once('message', go));
  const t = performance.now();
  for (let i = 0; i < RUNS; i++) model.run(input, false, undefined);
  parentPort.postMessage(performance.now() - t);
}

/** Wall ms for `n` copies started together (each warmed up first). */
async function together(n) {
  const workers = Array.from({ length: n }, () => new Worker(fileURLToPath(import.meta.url), { workerData: 'copy' }));
  const next = (w) => new Promise((done, fail) => (w.once('message', done), w.once('error', fail)));
  await Promise.all(workers.map(next));
  const t = performance.now();
  const finished = workers.map(next);
  workers.forEach((w) => w.postMessage('go'));
  await Promise.all(finished);
  const ms = performance.now() - t;
  await Promise.all(workers.map((w) => w.terminate()));
  return ms;
}

/** `{ one, all, ceiling }`: best wall ms of one copy and of `n` copies over `repeats` tries, and
 * the throughput ratio `n · one / all`. */
export async function coresCeiling(n = availableParallelism(), repeats = 7) {
  let [one, all] = [Infinity, Infinity];
  for (let r = 0; r < repeats; r++) {
    one = Math.min(one, await together(1));
    all = Math.min(all, await together(n));
  }
  return { one, all, ceiling: (n * one) / all };
}

/**
 * The ceiling with our own workload: `n` one-thread optimizers (each its own worker thread and
 * engine) run the same job at once, against one alone. `prepare(opt)` loads what a copy needs once
 * (a warm-up call runs too); `call(state)` runs the job once and resolves when it is done. Returns
 * the best wall ms alone and together, the throughput ratio, and per round the engine ms of the
 * best call alone and (mean over the copies) together: the same tasks, slower only because the
 * other cores were busy with the same kind of work (contention, no split, nothing duplicated).
 * `cpu()` gives (or resolves to) the CPU ms of the process (worker threads included) or of the
 * browser's processes: `cpuOne` is the CPU time of the
 * best call alone, `cpuEach` that of the best call together divided by `n` (time the other
 * engineers' processes take does not count in it, unlike wall times).
 */
// (Self-contained: threads_bench.mjs also runs its source in a page.)
export async function jobsCeiling(createOptimizer, prepare, call, cpu, n, repeats = 3) {
  const opts = Array.from({ length: n }, () => createOptimizer({ threads: 1 }));
  try {
    const states = await Promise.all(opts.map(prepare));
    const once = async (k) => {
      const t = performance.now();
      await call(states[k]);
      const ms = performance.now() - t;
      return { ms, rounds: (await opts[k].info()).lastJob ?? [] };
    };
    await Promise.all(states.map((_, k) => once(k)));
    let [alone, together] = [null, null];
    for (let r = 0; r < repeats; r++) {
      let c = await cpu();
      const a = await once(0);
      a.cpu = (await cpu()) - c;
      if (!alone || a.ms < alone.ms) alone = a;
      c = await cpu();
      const all = await Promise.all(states.map((_, k) => once(k)));
      const wall = Math.max(...all.map((x) => x.ms));
      if (!together || wall < together.ms) together = { ms: wall, copies: all, cpu: ((await cpu()) - c) / n };
    }
    const engineMs = (rounds) => rounds.map((t) => t.engines.reduce((s, e) => s + e.ms, 0));
    const each = together.copies.map((c) => engineMs(c.rounds));
    const rounds = alone.rounds.map((t, i) => ({
      stage: t.stage,
      alone: engineMs(alone.rounds)[i],
      together: each.reduce((s, ms) => s + (ms[i] ?? NaN), 0) / each.length,
    }));
    return { one: alone.ms, all: together.ms, ceiling: (n * alone.ms) / together.ms, cpuOne: alone.cpu, cpuEach: together.cpu, rounds };
  } finally {
    for (const o of opts) o.terminate();
  }
}

if (!isMainThread && workerData === 'copy') await copy();
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2]) || availableParallelism();
  const c = await coresCeiling(n);
  console.log(`${n} independent copies: ${c.all.toFixed(0)} ms against ${c.one.toFixed(0)} ms for one: ${c.ceiling.toFixed(2)}× the throughput`);
}
