#!/usr/bin/env node
// One thread against every core, in Node and in headless Chromium, on MLPerf Tiny's VWW float model:
//   * static int8 quantization with 200 calibration samples (`auto` calibration, the default);
//   * `evaluate` of the quantized model over 1000 samples with labels, the float model as reference.
// Each is timed (wall time of the package call, best of REPEATS (default 5) after one untimed warm-up
// call on the same optimizer) with `threads: 1` and with `threads: <all cores>`, the two optimizers' calls
// interleaved. The quantized model bytes
// and the evaluation figures (everything but the latency, which is timed) must be identical for both
// thread counts: the script exits with 1 if they differ. A speed-up under 1.6× is printed, not
// failed, beside the load average and the cores each call really had (its CPU time, worker threads
// and browser processes included, over its wall time: on a shared machine other work may hold the
// cores, and this column says so), and the CPU time of the busiest threads in that call (the
// serving worker and the task workers: how evenly the work was split, and how much was serial). The TF converter quantizes the same
// model (from its Keras source) with the same calibration samples in the same run (Python,
// tensorflow-cpu; the time of `converter.convert()` alone, as tests/bench/quantize_bench.py does).
//
// Data are pseudo-random pixels in [0, 1) and random labels: the time does not depend on what the
// pixels show, and the same bytes go to every runtime (and to the TF converter).
//
// Needs ../shared/reference (the script says so loudly and exits when it is absent), the built
// package (scripts/setup.sh), /usr/bin/chromium, and python3 with tensorflow-cpu for the converter.
// Run: node tests/bench/threads_bench.mjs [--repeats N] [--no-tf] [--only node|chromium] [--quantize-only]
// (`--quantize-only` skips `evaluate`, for quick A/B work on quantization; `--tasks` lists each
// engine's tasks in the rounds of the best calls: the task's index in the round, then its ms.)
// The timed calls hand their data over with `transfer: true` (no copy in the caller). The header gives the
// machine's own ceiling: how much faster independent one-thread copies run on all cores than one
// (tests/bench/cores_ceiling.mjs); a split job cannot beat it. It is also measured with our own
// workload in each runtime (the same quantize or evaluate call made by ALL one-thread optimizers at
// once), and the CPU time a split adds is divided into that contention (the copies' CPU time grows
// as much, with nothing split or done twice) and ours (the rest).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { referenceDir, root, startPackagePage } from '../e2e/harness.mjs';
import { coresCeiling, jobsCeiling } from './cores_ceiling.mjs';

const CALIBRATION = 200;
const EVALUATION = 1000;
const args = process.argv.slice(2);
const REPEATS = Number(args[args.indexOf('--repeats') + 1]) || 5;
const ALL = Math.min(availableParallelism(), 16);
const TASKS = args.includes('--quantize-only') ? ['quantize'] : ['quantize', 'evaluate'];
const EACH_TASK = args.includes('--tasks');
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
if (ONLY !== undefined && ONLY !== 'node' && ONLY !== 'chromium') {
  console.error(`--only takes node or chromium, not ${ONLY}`);
  process.exit(2);
}

const refModels = join(referenceDir, 'models');
if (!existsSync(refModels)) {
  console.error(`\n!!! SKIPPED: ${refModels} not found; the threads benchmark needs MLPerf Tiny's VWW model !!!\n`);
  process.exit(0);
}
const vwwName = readdirSync(refModels).find((f) => /^mlperftiny_vww_.*float.*\.tflite$/.test(f));
if (!vwwName) {
  console.error(`\n!!! SKIPPED: no mlperftiny_vww_*float*.tflite in ${refModels} !!!\n`);
  process.exit(0);
}
const vwwPath = join(refModels, vwwName);
const keras = join(referenceDir, 'keras', 'mlperftiny_vww_96.h5');

/** A float32 `.npy` of `shape` filled by a seeded linear congruential generator in [0, 1). */
function npy(shape, seed, scale = 1, whole = false) {
  const count = shape.reduce((a, b) => a * b, 1);
  const data = whole ? new Int32Array(count) : new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = (s >>> 8) / 16777216;
    data[i] = whole ? Math.floor(u * scale) : u * scale;
  }
  const descr = whole ? '<i4' : '<f4';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0, header.length & 255, header.length >> 8])]);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]);
}

const tmp = mkdtempSync(join(tmpdir(), 'tinyml-threads-'));
const files = {
  model: vwwPath,
  calibration: join(tmp, 'calibration.npy'),
  x: join(tmp, 'x.npy'),
  y: join(tmp, 'y.npy'),
};
writeFileSync(files.calibration, npy([CALIBRATION, 96, 96, 3], 1));
writeFileSync(files.x, npy([EVALUATION, 96, 96, 3], 2));
writeFileSync(files.y, npy([EVALUATION], 3, 2, true));

/**
 * The measurement, the same code in Node and in the page: `createOptimizer` and `load(name)` (the
 * bytes of one of `files`) are the runtime's. Returns per thread count the best times, the SHA-256 of
 * the quantized model and the evaluation figures without latencies.
 */
const measure = async (createOptimizer, load, threads, repeats, sha256, cpu, perThread, tasks) => {
  /** CPU ms per thread since `before` (a map from thread id), the busiest first: the engines' workers. */
  const busy = (before, after) =>
    Object.entries(after)
      .map(([t, ms]) => ms - (before[t] ?? 0))
      .filter((ms) => ms >= 20)
      .sort((a, b) => b - a);
  const [modelBytes, calibrationData, x, labels] = await Promise.all(['model', 'calibration', 'x', 'y'].map(load));
  const strip = ({ latency, reference, ...rest }) => {
    const { latency: _, ...ref } = reference;
    return { ...rest, reference: ref };
  };
  // One optimizer per thread count, all alive at once, and their calls interleaved (one thread,
  // then all, then one again...): a slow spell of the machine then touches both sides of the
  // ratio, not the one measured while it lasted.
  const runs = [];
  for (const n of threads) {
    const opt = createOptimizer({ threads: n });
    const float = await opt.loadModel(modelBytes);
    runs.push({
      n, opt, float, quantize: [], evaluate: [],
      cpuOf: { quantize: [], evaluate: [] },
      busyOf: { quantize: [], evaluate: [] },
      // The quantization's own phase times (from its report): calibration, selection, measuring.
      phasesOf: [],
      // Per round of the quantization (and of the evaluation): the serving worker's serial work
      // and each engine's tasks.
      roundsOf: [], evalRoundsOf: [],
      // Per call: the serving worker's serial work around the rounds (making and finishing the job).
      serialOf: [], evalSerialOf: [],
      bytes: undefined, report: undefined,
    });
  }
  /** One quantization (and evaluation) call of `r`'s optimizer; timed unless it is the warm-up. */
  const call = async (r, timed) => {
    const { opt, float } = r;
    // The data are handed over (`transfer: true`), as a caller that has just read them does; the
    // copy that lets this loop reuse them is made before the timing.
    const calibration = new Uint8Array(calibrationData);
    let [c, th] = [await cpu(), await perThread()];
    let t = performance.now();
    const q = await float.quantize({ calibrationData: calibration }, { transfer: true });
    if (timed) {
      r.quantize.push(performance.now() - t);
      r.cpuOf.quantize.push((await cpu()) - c);
      r.busyOf.quantize.push(busy(th, await perThread()));
      r.phasesOf.push([q.report.calibrationMs, q.report.rewriteMs, q.report.reportMs]);
      r.roundsOf.push((await opt.info()).lastJob);
      r.serialOf.push((await opt.info()).lastJobSerial);
    }
    r.bytes ??= await sha256(await q.model.toBytes());
    if (!tasks.includes('evaluate')) return q.model.release();
    const [samples, answers] = [new Uint8Array(x), new Uint8Array(labels)];
    [c, th] = [await cpu(), await perThread()];
    t = performance.now();
    const e = await q.model.evaluate(samples, { labels: answers, reference: float }, { transfer: true });
    if (timed) {
      r.evaluate.push(performance.now() - t);
      r.cpuOf.evaluate.push((await cpu()) - c);
      r.busyOf.evaluate.push(busy(th, await perThread()));
      r.evalRoundsOf.push((await opt.info()).lastJob);
      r.evalSerialOf.push((await opt.info()).lastJobSerial);
    }
    r.report ??= e;
    await q.model.release();
  };
  for (let i = 0; i <= repeats; i++) for (const r of runs) await call(r, i > 0);
  const out = {};
  for (const r of runs) {
    const info = await r.opt.info();
    r.opt.terminate();
    const { quantize, evaluate, cpuOf, busyOf } = r;
    if (!evaluate.length) evaluate.push(NaN);
    const bestQ = quantize.indexOf(Math.min(...quantize));
    const bestE = evaluate.indexOf(Math.min(...evaluate));
    out[r.n] = {
      quantize: quantize[bestQ],
      evaluate: evaluate[bestE],
      // Every timed call, in order: the calls of the thread counts alternate, so call i of one and
      // call i of another ran back to back.
      calls: { quantize, evaluate },
      // CPU time of the call whose wall time is the best: how many cores the call really had.
      cores: { quantize: cpuOf.quantize[bestQ] / quantize[bestQ], evaluate: cpuOf.evaluate[bestE] / evaluate[bestE] },
      // CPU ms of the busiest threads in that call (the engines' workers first).
      busy: { quantize: busyOf.quantize[bestQ], evaluate: busyOf.evaluate[bestE] },
      phases: r.phasesOf[bestQ],
      rounds: r.roundsOf[bestQ],
      evalRounds: r.evalRoundsOf[bestE],
      serial: r.serialOf[bestQ],
      evalSerial: r.evalSerialOf[bestE],
      modelSha256: r.bytes,
      figures: r.report ? JSON.stringify(strip(r.report)) : '',
      report: r.report,
      engine: `${info.simd} / ${info.int8Kernel}`,
    };
  }
  return out;
};

/** CPU time (ms) per thread of the processes `pids` (from /proc), keyed `pid/tid`. */
function threadsCpu(pids) {
  const out = {};
  for (const pid of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // the process ended meanwhile
    }
    for (const tid of tids) {
      try {
        const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        out[`${pid}/${tid}`] = (Number(f[11]) + Number(f[12])) * 10;
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
  return out;
}

/** The ids of this process's descendants (the browser's processes). */
function descendants() {
  const parent = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(Number(pid), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // The process ended meanwhile.
    }
  }
  const ours = (pid) => {
    for (let p = parent.get(pid), hops = 0; p > 1 && hops < 64; p = parent.get(p), hops++) {
      if (p === process.pid) return true;
    }
    return false;
  };
  return [...parent.keys()].filter(ours);
}

/** CPU time (ms) of this process's descendants (the browser's processes, all their threads). */
function childrenCpu() {
  const stats = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(pid), { parent: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * 10 });
    } catch {
      // The process ended meanwhile.
    }
  }
  const ours = (pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = stats.get(p)?.parent ?? 0, hops++) {
      if (p === process.pid) return true;
    }
    return false;
  };
  let ms = 0;
  for (const [pid, st] of stats) if (pid !== process.pid && ours(pid)) ms += st.ms;
  return ms;
}

const hex = (b) => [...new Uint8Array(b)].map((v) => v.toString(16).padStart(2, '0')).join('');

async function inNode() {
  const { createOptimizer } = await import(join(root, 'web/dist/node.js'));
  const load = async (name) => readFileSync(files[name]);
  const sha = async (b) => createHash('sha256').update(b).digest('hex');
  // The process's CPU time, worker threads included (ms).
  const cpu = async () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  return measure(createOptimizer, load, [1, ALL], REPEATS, sha, cpu, async () => threadsCpu([process.pid]), TASKS);
}

/**
 * `jobsCeiling` for `task`: `n` one-thread optimizers quantizing (or evaluating) at once, the same
 * code in Node and in the page (`load(name)` gives the bytes of one of `files`).
 */
const sameWork = async (jobsCeiling, createOptimizer, load, cpu, task, n, repeats) => {
  const [modelBytes, calibrationData, x, labels] = await Promise.all(['model', 'calibration', 'x', 'y'].map(load));
  const prepare = async (opt) => {
    const float = await opt.loadModel(modelBytes);
    return { float, q: task === 'evaluate' ? (await float.quantize({ calibrationData })).model : null };
  };
  const call =
    task === 'quantize'
      ? async (s) => (await s.float.quantize({ calibrationData })).model.release()
      : (s) => s.q.evaluate(x, { labels, reference: s.float });
  return jobsCeiling(createOptimizer, prepare, call, cpu, n, repeats);
};

async function nodeJobsCeiling(task) {
  const { createOptimizer } = await import(join(root, 'web/dist/node.js'));
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  return sameWork(jobsCeiling, createOptimizer, async (name) => readFileSync(files[name]), cpu, task, ALL, REPEATS + 1);
}

/** Engine ms per round (all engines summed) of a call's trace. */
const engineMs = (rounds) => (rounds ?? []).map((t) => t.engines.reduce((s, e) => s + e.ms, 0));

/**
 * Where the CPU time a split adds comes from, per round: the same tasks run slower when the other
 * cores are busy with the same work (contention: the same-work ceiling's copies against one alone),
 * and the rest is ours (work duplicated per engine, serial work, imbalance does not count here).
 */
function printGap(task, ceil, r) {
  const rounds = (x) => (task === 'quantize' ? x.rounds : x.evalRounds);
  const [one, all] = [engineMs(rounds(r[1])), engineMs(rounds(r[ALL]))];
  const speedup = r[1][task] / r[ALL][task];
  console.log(`  ${task}: ${ceil.ceiling.toFixed(2)}× (${(ceil.one / 1000).toFixed(2)} s alone, ${(ceil.all / 1000).toFixed(2)} s for ${ALL} at once); ` +
    `split over ${ALL} threads: ${speedup.toFixed(2)}×, ${((100 * speedup) / ceil.ceiling).toFixed(0)}% of that ceiling ` +
    `(the rest: serial work, idle engines at the ends of rounds, work done twice)`);
  const pct = (v) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(0)}%`;
  // CPU time (from the OS: time other processes take does not count) of the whole call.
  const [cpuOne, cpuAll] = [r[1].cores[task] * r[1][task], r[ALL].cores[task] * r[ALL][task]];
  const [cont, split] = [ceil.cpuEach / ceil.cpuOne - 1, cpuAll / cpuOne - 1];
  console.log(`    CPU s: copies ${(ceil.cpuOne / 1000).toFixed(2)} alone, ${(ceil.cpuEach / 1000).toFixed(2)} each at once (${pct(cont)}) | ` +
    `split ${(cpuOne / 1000).toFixed(2)} on 1, ${(cpuAll / 1000).toFixed(2)} on ${ALL} (${pct(split)}) → contention ${pct(cont)}, ours ${pct(split - cont)}`);
  console.log('    engine ms per round (wall time of the tasks: on a loaded machine it includes waiting for other processes):');
  const [sumOne, sumAll] = [one.reduce((a, b) => a + b, 0), all.reduce((a, b) => a + b, 0)];
  const [cAlone, cTogether] = [ceil.rounds.reduce((a, t) => a + t.alone, 0), ceil.rounds.reduce((a, t) => a + t.together, 0)];
  const rows = ceil.rounds.map((t, i) => [t.stage, t.alone, t.together, one[i], all[i]]);
  rows.push(['all rounds', cAlone, cTogether, sumOne, sumAll]);
  for (const [stage, alone, together, a, b] of rows) {
    const [cont, split] = [together / alone - 1, b / a - 1];
    console.log(`    ${stage.padEnd(10)} copies: ${alone.toFixed(0).padStart(5)} alone, ${together.toFixed(0).padStart(5)} each at once (${pct(cont)}) | ` +
      `split: ${a.toFixed(0).padStart(5)} on 1, ${b.toFixed(0).padStart(5)} on ${ALL} (${pct(split)})`);
  }
}

async function inChromium() {
  const names = Object.keys(files);
  const script = `
import { createOptimizer } from '/web/dist/browser.js';
const names = ${JSON.stringify(names)};
const load = async (name) => new Uint8Array(await (await fetch('/file/' + names.indexOf(name))).arrayBuffer());
const hex = ${hex.toString()};
const sha = async (b) => hex(await crypto.subtle.digest('SHA-256', b));
const measure = ${measure.toString()};
window.measure = (threads, repeats, tasks) => measure(createOptimizer, load, threads, repeats, sha, window.browserCpu, window.browserThreads, tasks);
const jobsCeiling = ${jobsCeiling.toString()};
const sameWork = ${sameWork.toString()};
window.sameWork = (task, n, repeats) => sameWork(jobsCeiling, createOptimizer, load, window.browserCpu, task, n, repeats);
window.ready = true;
`;
  const page = await startPackagePage(script, names.map((n) => files[n]));
  try {
    await page.tab.exposeFunction('browserCpu', childrenCpu);
    await page.tab.exposeFunction('browserThreads', () => threadsCpu(descendants()));
    const r = await page.tab.evaluate(([t, n, k]) => window.measure(t, n, k), [[1, ALL], REPEATS, TASKS]);
    const ceilings = {};
    for (const task of TASKS) {
      ceilings[task] = await page.tab.evaluate(([k, n, m]) => window.sameWork(k, n, m), [task, ALL, REPEATS + 1]);
    }
    if (page.errors.length) console.warn('page errors:', page.errors);
    return { ...r, ceilings, browser: page.browserVersion };
  } finally {
    await page.close();
  }
}

/** The TF converter's `convert()` time on the same model and calibration samples, in seconds. */
function tfConverter() {
  if (args.includes('--no-tf')) return { skipped: '--no-tf' };
  if (!existsSync(keras)) return { skipped: `${keras} not found` };
  const py = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(root, 'tests', 'bench'))})
import numpy as np
import quantize_bench as q
calib = np.load(${JSON.stringify(files.calibration)})
model = q.load_keras(${JSON.stringify(keras)})
times = [q.tf_convert(model, calib)[1] for _ in range(2)]
print(json.dumps({"first": times[0], "best": min(times)}))
`;
  const p = spawnSync('python3', ['-c', py], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  if (p.status !== 0) return { skipped: `python failed: ${(p.stderr || '').trim().split('\n').slice(-2).join(' ')}` };
  return JSON.parse(p.stdout.trim().split('\n').at(-1));
}

function cpuName() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1] : 'unknown CPU';
  } catch {
    return 'unknown CPU (no /proc/cpuinfo)';
  }
}

/** The speed-ups of back-to-back calls (`one[i] / all[i]`): their median and range. */
function pairs(one, all) {
  const r = one.map((t, i) => t / all[i]).filter(Number.isFinite).sort((x, y) => x - y);
  if (!r.length) return '-';
  const mid = r.length % 2 ? r[r.length >> 1] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
  return `${mid.toFixed(2)}× (${r[0].toFixed(2)}-${r[r.length - 1].toFixed(2)})`;
}

const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
console.log(`Threads benchmark: ${vwwName}`);
console.log(`CPU: ${cpuName()}, ${availableParallelism()} cores; "all cores" = ${ALL} threads; best of ${REPEATS} after a warm-up`);
console.log(`load average before: ${load()}`);
// What the machine gives: independent copies of one-thread work, with nothing shared (cores_ceiling.mjs).
const ceiling = await coresCeiling(ALL);
console.log(`machine ceiling: ${ALL} independent one-thread copies of an int8 inference loop run ${ceiling.ceiling.toFixed(2)}× ` +
  `the throughput of one (${ceiling.all.toFixed(0)} ms for ${ALL} against ${ceiling.one.toFixed(0)} ms for one, best of 7): no split of a job can beat that here\n`);

const results = {};
let failed = false;
try {
  // Per runtime and task, the same-work ceiling.
  const ceilings = {};
  if (ONLY !== 'chromium') {
    results.Node = await inNode();
    ceilings.Node = {};
    for (const task of TASKS) ceilings.Node[task] = await nodeJobsCeiling(task);
  }
  if (ONLY !== 'node') {
    const { ceilings: c, ...r } = await inChromium();
    [results.Chromium, ceilings.Chromium] = [r, c];
  }
  const tf = ONLY ? { skipped: `--only ${ONLY}` } : tfConverter();
  const rows = [['runtime', 'engine', 'task', '1 thread s', `${ALL} threads s`, 'speed-up', 'pairs: median (range)', 'cores used (1 / all)', 'CPU s (1 / all)', 'outputs']];
  const slow = [];
  for (const [runtime, r] of Object.entries(results)) {
    for (const task of TASKS) {
      const [a, b] = [r[1], r[ALL]];
      const same = task === 'quantize' ? a.modelSha256 === b.modelSha256 : a.figures === b.figures;
      if (!same) failed = true;
      const speedup = a[task] / b[task];
      if (speedup < 1.6) slow.push(`${runtime} ${task} ${speedup.toFixed(2)}×`);
      const label = task === 'quantize' ? `static int8, ${CALIBRATION} samples` : `evaluate, ${EVALUATION} samples`;
      const cores = `${a.cores[task].toFixed(2)} / ${b.cores[task].toFixed(2)}`;
      const cpu = `${((a.cores[task] * a[task]) / 1000).toFixed(2)} / ${((b.cores[task] * b[task]) / 1000).toFixed(2)}`;
      rows.push([runtime, a.engine, label, (a[task] / 1000).toFixed(2), (b[task] / 1000).toFixed(2),
        `${speedup.toFixed(2)}×`, pairs(a.calls[task], b.calls[task]), cores, cpu, same ? 'identical' : 'DIFFER']);
    }
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((c, k) => (k >= 3 && k <= 8 ? c.padStart(w[k]) : c.padEnd(w[k]))).join('  '));
  console.log(`"speed-up": best one-thread call over best all-core call; "pairs": each one-thread call over the all-core call run right after it`);
  console.log('\nbusiest threads, CPU s in the best call (1 thread | all cores): the engines\' workers, then the rest');
  const fmt = (ms) => (ms ?? []).slice(0, ALL + 2).map((v) => (v / 1000).toFixed(2)).join(' ');
  for (const [runtime, r] of Object.entries(results)) {
    for (const task of TASKS) {
      console.log(`  ${runtime} ${task}: ${fmt(r[1].busy[task])} | ${fmt(r[ALL].busy[task])}`);
    }
  }
  console.log('\nquantization phases, s in the best call (1 thread | all cores): calibrate, select (build and score candidates), measure');
  const ph = (v) => (v ?? []).map((ms) => (ms / 1000).toFixed(2)).join(' ');
  for (const [runtime, r] of Object.entries(results)) console.log(`  ${runtime}: ${ph(r[1].phases)} | ${ph(r[ALL].phases)}`);
  console.log('\nrounds in the best calls: wall ms (serial: making the round + merging its results) | per engine (serving worker first): tasks × ms (the round\'s wall time outside its tasks)');
  const rnd = (t) => `  ${t.stage.padEnd(9)} ${String(t.tasks).padStart(3)} tasks ${t.wallMs.toFixed(0).padStart(5)} ms ` +
    `(${t.nextMs.toFixed(0)} + ${t.acceptMs.toFixed(0)}) | ${t.engines.map((e) => `${e.tasks}×${e.ms.toFixed(0)} (idle ${(t.wallMs - e.ms).toFixed(0)})`).join(' ')}`;
  // The call's wall time outside the rounds: making the job, finishing it, and the rest (messages
  // and copies between the caller and the serving worker).
  const outside = (r, n, task) => {
    const [rounds, serial] = task === 'quantize' ? [r[n].rounds, r[n].serial] : [r[n].evalRounds, r[n].evalSerial];
    if (!rounds || !serial) return '';
    const inRounds = rounds.reduce((s, t) => s + t.wallMs, 0);
    const rest = r[n][task] - serial.makeMs - inRounds - serial.finishMs;
    return `  ${task} ${r[n][task].toFixed(0)} ms = make ${serial.makeMs.toFixed(0)} + rounds ${inRounds.toFixed(0)} + finish ${serial.finishMs.toFixed(0)} + rest ${rest.toFixed(0)} (caller ↔ worker)`;
  };
  for (const [runtime, r] of Object.entries(results)) {
    for (const n of [1, ALL]) {
      console.log(`  ${runtime}, ${n} thread(s):`);
      for (const task of TASKS) console.log(outside(r, n, task));
      for (const t of r[n].rounds ?? []) {
        console.log(rnd(t));
        if (!EACH_TASK) continue;
        for (const e of t.engines) console.log(`      ${(e.each ?? []).map(([i, ms]) => `${i}:${ms.toFixed(1)}`).join(' ')}`);
      }
      for (const t of r[n].evalRounds ?? []) console.log(rnd(t));
    }
  }
  console.log(`\nsame-work ceiling: ${ALL} one-thread optimizers making the same call at once, against one alone;`);
  console.log(`per round, engine ms in the best call (summed over engines for the split) and how much each grew:`);
  for (const [runtime, r] of Object.entries(results)) {
    console.log(`  ${runtime}:`);
    for (const task of TASKS) printGap(task, ceilings[runtime][task], r);
  }
  console.log(`\n"cores used": CPU time of the Node process (worker threads included) or of the browser's processes, over the wall time of the call;`);
  console.log(`on an idle machine it is near 1 with one thread and near ${ALL} with all: lower means other work had the cores.`);
  console.log('"CPU s": the CPU time itself; equal figures mean splitting the work across threads cost nothing extra.');
  if (results.Chromium) console.log(`Chromium ${results.Chromium.browser}`);
  const first = results.Node ?? results.Chromium;
  const e = first[1].report;
  if (e) console.log(`evaluation: accuracy ${e.accuracy} (random labels), top-1 agreement ${e.reference.top1Agreement}, ` +
    `output SQNR ${e.reference.outputSqnrDb.map((v) => v?.toFixed(2)).join(', ')} dB`);
  if (results.Node && results.Chromium) {
    const crossModel = results.Node[1].modelSha256 === results.Chromium[1].modelSha256;
    const crossFigures = results.Node[1].figures === results.Chromium[1].figures;
    const figures = TASKS.includes('evaluate') ? `, evaluation figures ${crossFigures ? 'identical' : 'differ'}` : '';
    console.log(`Node and Chromium: quantized model ${crossModel ? 'identical' : 'differs'}${figures} ` +
      `(engines: ${results.Node[1].engine} / ${results.Chromium[1].engine})`);
  }
  if (tf.skipped) {
    console.log(`TF converter: NOT MEASURED (${tf.skipped})`);
  } else {
    const ours = results.Chromium[ALL].quantize / 1000;
    console.log(`TF converter (convert() only, same calibration samples): first ${tf.first.toFixed(2)} s, best ${tf.best.toFixed(2)} s; ` +
      `ours in Chromium, ${ALL} threads: ${ours.toFixed(2)} s (${(tf.best / ours).toFixed(1)}× faster)`);
  }
  console.log(`load average after: ${load()}`);
  if (slow.length) {
    console.log(`NOTE: under 1.6× with all cores: ${slow.join(', ')} (load average ${load()}: the cores may be busy with other work; ` +
      `${ALL} independent copies got ${ceiling.ceiling.toFixed(2)}× here` +
      Object.entries(ceilings)
        .flatMap(([rt, c]) => Object.entries(c).map(([t, v]) => `, ${v.ceiling.toFixed(2)}× with the same ${t} calls in ${rt}`))
        .join('') + ')');
  }
  if (failed) console.error('FAIL: outputs differ between 1 thread and all cores');
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
