#!/usr/bin/env node
// Inference latency of our engine beside tfjs-tflite (TFLite + XNNPACK, its single-threaded SIMD
// build) and onnxruntime-web (wasm, one thread), measured in the same run: one headless Chromium
// page (Debian's, via playwright-core), every engine on the main thread, the same input bytes,
// the same warm-up (at least 1 s each, interleaved), then interleaved timed passes (each pass runs
// one engine for about --pass-ms, the order rotating from pass to pass). Prints median and minimum
// milliseconds per inference, the ratio to tfjs-tflite (of the medians, and the median of each
// round's ratio), the CPU and our int8 kernel, the slowest layers of our engine (its per-layer
// profile), and the gzipped size of every runtime.
//
// ONNX versions of the models are converted here with tf2onnx into tests/out/onnx (never
// committed); a model that does not convert says so in the table. Nothing here is a constant
// copied from another run: every figure printed was measured now.
//
// Run (after scripts/setup.sh; tf2onnx from tests/bench/requirements.txt):
//   node tests/bench/inference_bench.mjs [--passes 15] [--pass-ms 25] [--warmup-ms 1000]
//        [--only vww] [--profile 4] [--js-flags=--no-enable-avx-vnni] [--baseline DIR] [--trace]
// `--baseline DIR` adds two more engines, `base relaxed` and `base simd`, loaded from DIR/relaxed
// and DIR/simd (a copy of another checkout's web/wasm): an A/B of two builds in the same page.
// `--js-flags` goes to Chromium's V8: `--no-enable-avx-vnni` makes V8 lower relaxed SIMD as on
// an x86 CPU without AVX-VNNI (AMD before Zen 5, older Intel), on this machine.
// `--trace` also prints every pass's ms per inference, per engine in pass order: whether a slow
// median came from a stretch of slow passes every engine met, or from one engine alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { referenceDir as refDir, root, startPackagePage } from '../e2e/harness.mjs';

const arg = (name, fallback) => {
  const eq = process.argv.find((a) => a.startsWith(`${name}=`));
  if (eq) return eq.slice(name.length + 1);
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const passes = Number(arg('--passes', 15));
const passMs = Number(arg('--pass-ms', 25));
const warmupMs = Math.max(1000, Number(arg('--warmup-ms', 1000)));
const only = arg('--only', '');
const profileTop = Number(arg('--profile', 4));
const jsFlags = arg('--js-flags', '');
const baseline = arg('--baseline', '');
const trace = process.argv.includes('--trace');

const models = [
  ['VWW int8', 'mlperftiny_vww_mobilenetv1_025_96_int8.tflite'],
  ['ResNet-8 int8', 'mlperftiny_ic_resnet8_cifar10_int8.tflite'],
  ['KWS int8', 'mlperftiny_kws_dscnn_int8.tflite'],
  ['AD int8', 'mlperftiny_ad_fc_autoencoder_toycar_int8.tflite'],
  ['VWW float32', 'mlperftiny_vww_mobilenetv1_025_96_float32.tflite'],
  ['ResNet-8 float32', 'mlperftiny_ic_resnet8_cifar10_float32.tflite'],
  ['KWS float32', 'mlperftiny_kws_dscnn_float32.tflite'],
  ['AD float32', 'mlperftiny_ad_fc_autoencoder_toycar_float32.tflite'],
  ['AD dynamic-range', 'mlperftiny_ad_fc_autoencoder_toycar_dynrange_quant.tflite'],
].filter(([name]) => name.toLowerCase().includes(only.toLowerCase()));

const modelDir = join(refDir, 'models');
if (!existsSync(modelDir)) {
  console.error(`!! ${modelDir} not found: the MLPerf Tiny models are needed, nothing to measure (SKIPPED)`);
  process.exit(0);
}
const paths = models.map(([, file]) => join(modelDir, file));
for (const p of paths) if (!existsSync(p)) throw new Error(`${p} is missing`);
for (const f of ['web/wasm/relaxed/tinyml_optimizer.js', 'web/wasm/simd/tinyml_optimizer.js']) {
  if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run scripts/setup.sh`);
}
const tfliteDir = join(root, 'node_modules/@tensorflow/tfjs-tflite/wasm');
const ortDir = join(root, 'node_modules/onnxruntime-web/dist');
for (const d of [tfliteDir, ortDir]) if (!existsSync(d)) throw new Error(`${d} is missing: run npm ci`);

/** ONNX versions of the models (tf2onnx), cached in tests/out/onnx: path, or the reason there is none. */
function convertToOnnx() {
  const dir = join(root, 'tests/out/onnx');
  mkdirSync(dir, { recursive: true });
  const probe = spawnSync('python3', ['-c', 'import tf2onnx'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.warn('!! tf2onnx is not installed (pip install -r tests/bench/requirements.txt): onnxruntime-web SKIPPED');
    return paths.map(() => ({ error: 'tf2onnx not installed' }));
  }
  return paths.map((p) => {
    const out = join(dir, p.split('/').pop().replace(/\.tflite$/, '.onnx'));
    if (existsSync(out)) return { path: out };
    const r = spawnSync('python3', ['-m', 'tf2onnx.convert', '--tflite', p, '--output', out], { encoding: 'utf8' });
    if (r.status === 0 && existsSync(out)) return { path: out };
    const last = (r.stderr || r.stdout || '').trim().split('\n').filter((l) => /error/i.test(l)).pop() ?? `exit ${r.status}`;
    return { error: `tf2onnx failed: ${last.slice(0, 120)}` };
  });
}

function cpuName() {
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
  const flags = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
  const has = (f) => new RegExp(`\\b${f}\\b`).test(flags);
  const isa = ['avx2', 'avx_vnni', 'avx512_vnni', 'asimddp'].filter(has).join(' ');
  return `${line ? line.split(':')[1].trim() : cpus()[0]?.model ?? 'unknown CPU'} (${isa || 'no avx2/vnni/dotprod flags'})`;
}

const gz = (file) => gzipSync(readFileSync(file), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
/** Raw and gzip -9 size of a core build's .wasm, e.g. `1205 KB raw, 397 KB gzipped`. */
const buildSize = (dir) => {
  const wasm = join(dir, 'tinyml_optimizer_bg.wasm');
  return `${kb(readFileSync(wasm).length)} raw, ${kb(gz(wasm))} gzipped`;
};

const onnx = convertToOnnx();
const files = [...paths, ...onnx.filter((o) => o.path).map((o) => o.path)];
const onnxIndex = onnx.map((o) => (o.path ? files.indexOf(o.path) : -1));

// The page: loads our two builds, tfjs-tflite and onnxruntime-web, and exposes per-model set-up,
// timed passes (one engine for `ms` milliseconds, returning ms per inference), outputs and profile.
const baseImports = baseline
  ? `import initBaseRelaxed, * as baseRelaxed from '/base/relaxed/tinyml_optimizer.js';
import initBaseSimd, * as baseSimd from '/base/simd/tinyml_optimizer.js';
await initBaseRelaxed();
await initBaseSimd();
const bases = [['base relaxed', baseRelaxed], ['base simd', baseSimd]];`
  : 'const bases = [];';
const script = `
import initRelaxed, * as relaxed from '/web/wasm/relaxed/tinyml_optimizer.js';
import initSimd, * as simd from '/web/wasm/simd/tinyml_optimizer.js';
import * as ort from '/ort/ort.wasm.min.mjs';
await initRelaxed();
await initSimd();
${baseImports}
window.exports = {}; // the tfjs-tflite client ends with a CommonJS export
await new Promise((ok, fail) => {
  const s = document.createElement('script');
  s.src = '/tfjs-tflite/tflite_web_api_client.js';
  s.onload = ok;
  s.onerror = fail;
  document.head.append(s);
});
tfweb.tflite_web_api.setWasmPath('/tfjs-tflite/');
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = '/ort/';
const get = async (i) => new Uint8Array(await (await fetch('/file/' + i)).arrayBuffer());
const engines = {};
const now = () => performance.now();

// Deterministic input bytes: int8 values over the whole range, or floats in [0, 1).
function makeInput(io) {
  const n = io.shape.reduce((a, b) => a * Math.max(b, 1), 1);
  let seed = 2024;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  if (io.dtype === 'i8') {
    const q = new Int8Array(n).map(() => (next() % 256) - 128);
    const [scale, zp] = [io.quant.scale[0], io.quant.zeroPoint[0]];
    return { q, f: Float32Array.from(q, (v) => (v - zp) * scale), shape: io.shape.map((d) => Math.max(d, 1)) };
  }
  const f = new Float32Array(n).map(() => (next() % 65536) / 65536);
  return { q: null, f, shape: io.shape.map((d) => Math.max(d, 1)) };
}

function parseNpy(u8) {
  const len = u8[8] | (u8[9] << 8);
  const descr = /'descr':\\s*'([^']+)'/.exec(new TextDecoder().decode(u8.subarray(10, 10 + len)))[1];
  const body = u8.slice(10 + len).buffer;
  return descr === '<f4' ? new Float32Array(body) : descr === '|i1' ? new Int8Array(body) : new Uint8Array(body);
}

window.setup = async (modelFile, onnxFile) => {
  for (const e of Object.values(engines)) e.release?.();
  for (const k of Object.keys(engines)) delete engines[k];
  const bytes = await get(modelFile);
  const probe = new relaxed.Model(bytes);
  const summary = probe.summary();
  probe.free();
  const io = summary.inputs[0];
  const x = makeInput(io);
  const npy = relaxed.npyFromF32(x.shape, x.f);
  for (const [name, mod] of [['ours relaxed', relaxed], ['ours simd', simd], ...bases]) {
    const m = new mod.Model(bytes);
    m.setFirstSample(npy);
    engines[name] = {
      run: (n) => m.invoke(n),
      output: () => parseNpy(m.run(npy, true)[0]),
      profile: (n) => m.profile(npy, n),
      release: () => m.free(),
    };
  }
  const runner = await tfweb.TFLiteWebModelRunner.create(bytes.slice().buffer, { numThreads: 1 });
  runner.getInputs()[0].data().set(x.q ?? x.f);
  engines['tfjs-tflite'] = {
    run: (n) => { for (let i = 0; i < n; i++) if (!runner.infer()) throw new Error('tfjs-tflite infer failed'); },
    output: () => runner.getOutputs()[0].data().slice(),
    release: () => runner.cleanUp(),
  };
  let ortNote = null;
  if (onnxFile >= 0) {
    try {
      const session = await ort.InferenceSession.create(await get(onnxFile), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      const feeds = { [session.inputNames[0]]: new ort.Tensor(x.q ? 'int8' : 'float32', x.q ?? x.f, x.shape) };
      const outName = session.outputNames[0];
      engines['onnxruntime-web'] = {
        run: async (n) => { for (let i = 0; i < n; i++) await session.run(feeds); },
        output: async () => (await session.run(feeds))[outName].data.slice(),
        release: () => session.release(),
      };
    } catch (e) {
      ortNote = 'onnxruntime-web could not load it: ' + String(e.message ?? e).split('\\n')[0].slice(0, 100);
    }
  }
  return { summary, ortNote, int8Kernel: relaxed.int8Kernel(), engines: Object.keys(engines) };
};

// One pass: runs engine \`name\` in batches until \`ms\` have passed; returns ms per inference.
window.pass = async (name, ms) => {
  const e = engines[name];
  let runs = 0, batch = 1;
  const t0 = now();
  for (;;) {
    await e.run(batch);
    runs += batch;
    const dt = now() - t0;
    if (dt >= ms) return dt / runs;
    if (dt < ms / 8) batch *= 2;
  }
};
window.outputs = async () => {
  const out = {};
  for (const [name, e] of Object.entries(engines)) out[name] = Array.from(await e.output());
  return out;
};
window.profile = (n) => engines['ours relaxed'].profile(n);
window.crossOriginIsolatedPage = () => self.crossOriginIsolated === true;
window.ready = true;
`;

const served = [];
const mounts = { '/tfjs-tflite/': tfliteDir, '/ort/': ortDir, ...(baseline ? { '/base/': baseline } : {}) };
const args = jsFlags ? [`--js-flags=${jsFlags}`] : [];
const { tab, close, browserVersion } = await startPackagePage(script, files, { mounts, args, served });

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const fmt = (ms) => (ms === undefined ? '' : ms < 0.1 ? ms.toFixed(4) : ms.toFixed(3));
const order = ['ours relaxed', 'ours simd', 'base relaxed', 'base simd', 'tfjs-tflite', 'onnxruntime-web'];

async function measure(i) {
  const setup = await tab.evaluate(([m, o]) => window.setup(m, o), [i, onnxIndex[i]]);
  const names = order.filter((n) => setup.engines.includes(n));
  // Warm-up: every engine at least `warmupMs`, in interleaved slices (the browser tiers wasm up
  // to its optimizing compiler in the background meanwhile).
  for (let spent = 0; spent < warmupMs; spent += 100) {
    for (const n of names) await tab.evaluate(([e, ms]) => window.pass(e, ms), [n, 100]);
  }
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let p = 0; p < passes; p++) {
    for (let j = 0; j < names.length; j++) {
      const n = names[(p + j) % names.length];
      times[n].push(await tab.evaluate(([e, ms]) => window.pass(e, ms), [n, passMs]));
    }
  }
  const outs = await tab.evaluate(() => window.outputs());
  const profile = profileTop > 0 ? await tab.evaluate((n) => window.profile(n), 200) : [];
  return { setup, names, times, outs, profile };
}

/**
 * Which of our .wasm files the package itself (web/dist/browser.js, `createOptimizer()` defaults,
 * engine in its Web Worker) downloads in this page for an inference-only session on model 0: load,
 * run, profile, benchmark. Read from what the server sent, not from the package's word.
 */
async function packageInferenceWasm() {
  const before = served.length;
  const info = await tab.evaluate(async () => {
    const { createOptimizer } = await import('/web/dist/browser.js');
    const opt = createOptimizer();
    try {
      const m = await opt.loadModel(new Uint8Array(await (await fetch('/file/0')).arrayBuffer()));
      const shape = m.summary.inputs[0].shape;
      const x = { data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape };
      await m.run(x);
      await m.profile(x, 1);
      await m.benchmark(x, 2);
      return await opt.info();
    } finally {
      opt.terminate();
    }
  });
  const wasm = [...new Set(served.slice(before).filter((f) => f.startsWith(join(root, 'web/wasm')) && f.endsWith('.wasm')))];
  const sizes = wasm.map((f) => `${f.slice(root.length)} (${kb(readFileSync(f).length)} raw, ${kb(gz(f))} gzipped)`);
  return `${sizes.join(' + ') || 'no wasm'}; info(): engine '${info.engine}', build '${info.flavor}'`;
}

/** The largest difference between our output and each peer's, in output units (int8 steps or floats). */
function agreement(outs) {
  const ours = outs['ours relaxed'];
  const diffs = Object.entries(outs)
    .filter(([n]) => n !== 'ours relaxed')
    .map(([n, o]) => {
      if (o.length !== ours.length) return `${n}: ${o.length} vs ${ours.length} values`;
      let m = 0;
      for (let k = 0; k < o.length; k++) m = Math.max(m, Math.abs(o[k] - ours[k]));
      return `${n.replace('ours ', '')} ${Number.isInteger(m) ? m : m.toExponential(1)}`;
    });
  return diffs.join(', ');
}

try {
  const coi = await tab.evaluate(() => window.crossOriginIsolatedPage());
  if (coi) throw new Error('the page is cross-origin isolated: tfjs-tflite would pick its threaded build');
  const results = [];
  for (let i = 0; i < models.length; i++) {
    process.stderr.write(`measuring ${models[i][0]}...\n`);
    results.push(await measure(i));
  }
  // tfjs-tflite must have run its single-threaded SIMD build (the page is not cross-origin
  // isolated, so it cannot start threads; this checks which file it actually loaded).
  const tfliteBuilds = [...new Set(served.filter((f) => f.startsWith(tfliteDir) && f.endsWith('.wasm')))];
  if (tfliteBuilds.length !== 1 || !tfliteBuilds[0].endsWith('tflite_web_api_cc_simd.wasm')) {
    throw new Error(`tfjs-tflite loaded ${tfliteBuilds.join(', ') || 'no wasm'}, not its single-threaded SIMD build`);
  }

  const int8Kernel = results[0]?.setup.int8Kernel ?? '?';
  console.log(`Inference latency, ms per inference, one thread, same page and input bytes`);
  console.log(`CPU: ${cpuName()}, ${cpus().length} logical cores`);
  console.log(`Browser: headless Chromium ${browserVersion}${jsFlags ? `, V8 flags ${jsFlags}` : ''}`);
  console.log(`Our int8Kernel (relaxed build): ${int8Kernel}; tfjs-tflite: tflite_web_api_cc_simd (single-threaded, XNNPACK)`);
  console.log(`Our builds: relaxed ${buildSize(join(root, 'web/wasm/relaxed'))}; simd128 ${buildSize(join(root, 'web/wasm/simd'))}`);
  console.log(`Each engine warmed up ${warmupMs} ms, then ${passes} interleaved passes of ~${passMs} ms; median (min) over passes;`);
  console.log(`ratios: of the medians, and (paired) the median over rounds of the two engines' passes in the same round\n`);

  const head = ['model', 'ours relaxed', 'ours simd128', 'tfjs-tflite', 'onnxruntime-web', 'relaxed/tfjs (paired)', 'simd/tfjs (paired)', 'max output diff vs ours'];
  const rows = [head];
  const baseRows = [];
  for (const [i, r] of results.entries()) {
    const cell = (n) => (r.times[n] ? `${fmt(median(r.times[n]))} (${fmt(Math.min(...r.times[n]))})` : '');
    // Ratio of the medians, then the median of each round's ratio (the two engines' passes of a
    // round ran back to back, so a slow spell of the machine touches both).
    const ratio = (n) => {
      const [a, t] = [r.times[n], r.times['tfjs-tflite']];
      if (!a || !t) return '';
      return `${(median(a) / median(t)).toFixed(2)}x (${median(a.map((v, p) => v / t[p])).toFixed(2)}x)`;
    };
    const ortCell = r.times['onnxruntime-web'] ? cell('onnxruntime-web') : onnx[i].error ?? r.setup.ortNote ?? 'failed';
    rows.push([models[i][0], cell('ours relaxed'), cell('ours simd'), cell('tfjs-tflite'), ortCell, ratio('ours relaxed'), ratio('ours simd'), agreement(r.outs)]);
    if (r.times['base relaxed']) {
      const vs = (a, b) => `${(median(r.times[a]) / median(r.times[b])).toFixed(3)}x`;
      baseRows.push(`  ${models[i][0]}: base relaxed ${cell('base relaxed')}, base simd ${cell('base simd')}; ours/base relaxed ${vs('ours relaxed', 'base relaxed')}, simd ${vs('ours simd', 'base simd')}, base relaxed/tfjs ${ratio('base relaxed')}, base simd/tfjs ${ratio('base simd')}`);
    }
  }
  const w = head.map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows) console.log(row.map((c, k) => (k > 0 && k < 7 ? c.padStart(w[k]) : c.padEnd(w[k]))).join('  '));
  if (baseRows.length) {
    console.log(`\nBaseline builds from ${baseline} (same page, interleaved):\n${baseRows.join('\n')}`);
    console.log(`  base sizes: relaxed ${buildSize(join(baseline, 'relaxed'))}; simd128 ${buildSize(join(baseline, 'simd'))}`);
  }

  if (trace) {
    console.log('\nEvery pass, ms per inference, in the order they ran:');
    for (const [i, r] of results.entries()) {
      for (const n of r.names) console.log(`  ${models[i][0]}, ${n}: ${r.times[n].map(fmt).join(' ')}`);
    }
  }

  if (profileTop > 0) {
    console.log(`\nSlowest layers of ours (relaxed build, per-layer profile, 200 runs):`);
    for (const [i, r] of results.entries()) {
      const layers = new Map(r.setup.summary.layers.map((l) => [l.index, l]));
      const total = r.profile.reduce((a, l) => a + l.ms, 0);
      const top = [...r.profile].sort((a, b) => b.ms - a.ms).slice(0, profileTop);
      const desc = top.map((p) => {
        const l = layers.get(p.node);
        const rate = l?.macs ? ` ${(l.macs / p.ms / 1e6).toFixed(1)} GMAC/s` : '';
        return `#${p.node} ${p.op} ${l ? l.inputShape.join('x') + '->' + l.outputShape.join('x') : ''} ${fmt(p.ms)} ms${rate}`;
      });
      console.log(`  ${models[i][0]} (${fmt(total)} ms in layers): ${desc.join('; ')}`);
    }
  }

  console.log(`\nThe package's inference-only session (load, run, profile, benchmark ${models[0][0]}) downloaded: ${await packageInferenceWasm()}`);
  console.log(`\nDownload size (gzip -9):`);
  for (const flavor of ['relaxed', 'simd']) {
    const js = join(root, `web/wasm/${flavor}/tinyml_optimizer.js`);
    console.log(`  ours ${flavor}: wasm ${buildSize(join(root, `web/wasm/${flavor}`))} (+ ${kb(gz(js))} glue)`);
  }
  for (const flavor of ['relaxed', 'simd']) {
    const dir = join(root, `web/wasm/core/${flavor}`);
    if (!existsSync(dir)) continue;
    const js = join(dir, 'tinyml_optimizer.js');
    const glue = existsSync(js) ? `+ ${kb(gz(js))} glue` : 'glue of the simd build';
    console.log(`  ours ${flavor}, inference-only core (what createOptimizer() loads first): wasm ${buildSize(dir)} (${glue})`);
  }
  const tfl = join(tfliteDir, 'tflite_web_api_cc_simd.wasm');
  console.log(`  tfjs-tflite simd: wasm ${kb(gz(tfl))} gzipped + client ${kb(gz(join(tfliteDir, 'tflite_web_api_client.js')))} + loader ${kb(gz(join(tfliteDir, 'tflite_web_api_cc_simd.js')))}`);
  const ortWasm = join(ortDir, 'ort-wasm-simd-threaded.wasm');
  console.log(`  onnxruntime-web: wasm ${kb(gz(ortWasm))} gzipped + ${kb(gz(join(ortDir, 'ort.wasm.min.mjs')))} js`);
  try {
    const v = execFileSync('python3', ['-c', "from importlib.metadata import version as v; print(v('tf2onnx'), v('onnx'))"], { encoding: 'utf8' });
    console.log(`\n(tf2onnx/onnx ${v.trim()}; onnxruntime-web ${JSON.parse(readFileSync(join(ortDir, '../package.json'))).version}; tfjs-tflite ${JSON.parse(readFileSync(join(tfliteDir, '../package.json'))).version})`);
  } catch {
    /* versions are informative only */
  }
} finally {
  await close();
}
