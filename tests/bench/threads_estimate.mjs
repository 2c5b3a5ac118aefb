#!/usr/bin/env node
// What threads_bench.mjs's quantization would take on two idle cores, estimated on a busy machine.
// Wall times mean little when other work holds the cores; CPU times of single steps still do. This
// script runs the quantization job (VWW float model, `auto`, 200 samples, the threads benchmark's
// data) through two engine instances in this one thread: the serving worker's (the job) and a task
// worker's, and takes the CPU time of every step: the job's own serial work (set-up, nextRound,
// accept, the result), the task worker's `put`s, and every task of a round on both engines (each in
// the order it takes them in the pool: the task worker from the front, the serving worker from the
// back). Each round is then scheduled as the pool runs it (whichever engine is free takes its next
// task), and the estimate is the serial work plus the rounds' spans, against the CPU time of the
// job with one thread. Messages between workers and the copies JavaScript makes are not counted.
//
// Run: node tests/bench/threads_estimate.mjs [--repeats N] [--web DIR] (a web/ folder with built
// wasm, e.g. another checkout's, for A/B)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { referenceDir, root } from '../e2e/harness.mjs';

const args = process.argv.slice(2);
const REPEATS = Number(args[args.indexOf('--repeats') + 1]) || 3;
const web = args.includes('--web') ? args[args.indexOf('--web') + 1] : join(root, 'web');
const refModels = join(referenceDir, 'models');
const vwwName = existsSync(refModels) && readdirSync(refModels).find((f) => /^mlperftiny_vww_.*float.*\.tflite$/.test(f));
if (!vwwName) {
  console.error(`\n!!! SKIPPED: no mlperftiny_vww_*float*.tflite in ${refModels} !!!\n`);
  process.exit(0);
}

/** The threads benchmark's calibration data: a float32 `.npy` from its generator. */
function npy(shape, seed) {
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s >>> 8) / 16777216;
  }
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 255, header.length >> 8]);
  return new Uint8Array(Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]));
}

const calibration = npy([200, 96, 96, 3], 1);
const model = new Uint8Array(readFileSync(join(refModels, vwwName)));
const wasmBytes = readFileSync(join(web, 'wasm/simd/tinyml_optimizer_bg.wasm'));
// Two instances of the engine: the glue module keeps one, so it is imported twice.
const glue = join(web, 'wasm/simd/tinyml_optimizer.js');
const serving = await import(`${glue}?serving`);
const taskSide = await import(`${glue}?task`);
serving.initSync({ module: wasmBytes });
taskSide.initSync({ module: wasmBytes });

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** `f()` and the CPU ms it took. */
const timed = (f) => {
  const t = cpu();
  const r = f();
  return [r, cpu() - t];
};

/** The job's result: its model's summary, as the package's quantize call makes it. */
function finish(job) {
  const q = job.finishModel().takeModel();
  q.summary();
  q.free();
}

/** CPU ms of the whole job on one engine (no task worker). */
function oneThread() {
  const m = new serving.Model(model);
  const [, ms] = timed(() => {
    const job = m.quantizeJob(calibration, {});
    for (let r = job.nextRound(false); r; r = job.nextRound(false)) {
      job.accept(r.tasks.map((_, i) => job.runLocal(i)));
    }
    finish(job);
  });
  m.free();
  return ms;
}

/** Two engines: the estimated wall ms, the serial ms, and each round's span. */
function twoThreads() {
  const m = new serving.Model(model);
  const helper = new taskSide.TaskWorker();
  const rounds = [];
  let [job, serial] = timed(() => m.quantizeJob(calibration, {}));
  let spans = 0;
  for (;;) {
    const [r, ms] = timed(() => job.nextRound(true));
    serial += ms;
    if (!r) break;
    const n = r.tasks.length;
    let put = 0;
    for (const res of r.resources) put += timed(() => helper.put(res.id, res.bytes ?? calibration))[1];
    const [local, remote, results] = [new Array(n), new Array(n), new Array(n)];
    for (let i = n - 1; i >= 0; i--) [results[i], local[i]] = timed(() => job.runLocal(i));
    for (let i = 0; i < n; i++) remote[i] = timed(() => helper.run(r.tasks[i]))[1];
    let [tLocal, tRemote, next, last] = [0, put, 0, n];
    while (next < last) {
      if (tRemote <= tLocal) tRemote += remote[next++];
      else tLocal += local[--last];
    }
    const span = Math.max(tLocal, tRemote);
    rounds.push(`${r.stage}, ${n} tasks: ${span.toFixed(0)} ms (serving worker ${tLocal.toFixed(0)}, task worker ${tRemote.toFixed(0)})`);
    spans += span;
    serial += timed(() => job.accept(results))[1];
  }
  serial += timed(() => finish(job))[1];
  helper.free();
  m.free();
  return { wall: serial + spans, serial, rounds };
}

console.log(`Estimated quantization time on two idle cores: ${vwwName}, auto, 200 samples (${web})`);
oneThread(); // warm-up
const one = [];
const two = [];
for (let k = 0; k < REPEATS; k++) {
  one.push(oneThread());
  two.push(twoThreads());
}
const best = two.reduce((a, b) => (b.wall < a.wall ? b : a));
const fmt = (v) => v.map((x) => x.toFixed(0)).join(' ');
console.log(`1 thread: CPU ${fmt(one)} ms`);
console.log(`2 threads: estimated ${fmt(two.map((t) => t.wall))} ms; best: ${best.serial.toFixed(0)} ms serial, then rounds:`);
for (const r of best.rounds) console.log(`  ${r}`);
console.log(`estimated speed-up (best against best): ${(Math.min(...one) / best.wall).toFixed(2)}×`);
