#!/usr/bin/env node
// Inference latency of our engine in headless Chromium (Debian's, via playwright-core), one
// thread, as the web app and the npm package run it: the package's browser build in a module Web
// Worker. Prints a table of median and minimum milliseconds per model beside the published
// tfjs-tflite (TFLite + XNNPACK in wasm) figures for the same models.
//
// Models: the int8 fixtures of tests/fixtures, and when ../shared/reference/models exists, the
// MLPerf Tiny int8 models (say loudly when that folder is absent).
//
// Run: node tests/bench/inference_bench.mjs [--runs N]   (after scripts/setup.sh)
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('../../', import.meta.url));
const refDir = process.env.TINYML_REFERENCE_DIR ?? join(root, '..', 'shared', 'reference');
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 300;

// tfjs-tflite's single-thread figures in headless Chromium on this machine (see README).
const XNNPACK_MS = { 'VWW (MobileNetV1 0.25, 96×96)': 0.9, 'ResNet-8 (CIFAR-10)': 0.77 };

const models = [
  ['fixture cnn (int8)', join(root, 'tests/fixtures/cnn/model_int8_tf.tflite')],
  ['fixture dwcnn (int8)', join(root, 'tests/fixtures/dwcnn/model_int8_tf.tflite')],
  ['fixture resnet (int8)', join(root, 'tests/fixtures/resnet/model_int8_tf.tflite')],
];
const reference = [
  ['VWW (MobileNetV1 0.25, 96×96)', 'mlperftiny_vww_mobilenetv1_025_96_int8.tflite'],
  ['ResNet-8 (CIFAR-10)', 'mlperftiny_ic_resnet8_cifar10_int8.tflite'],
  ['KWS DS-CNN', 'mlperftiny_kws_dscnn_int8.tflite'],
  ['AD autoencoder', 'mlperftiny_ad_fc_autoencoder_toycar_int8.tflite'],
  ['VWW float32', 'mlperftiny_vww_mobilenetv1_025_96_float32.tflite'],
];
if (existsSync(join(refDir, 'models'))) {
  for (const [name, file] of reference) models.push([name, join(refDir, 'models', file)]);
} else {
  console.warn(`!! ${join(refDir, 'models')} not found: MLPerf Tiny models SKIPPED, fixtures only`);
}
for (const [name, path] of models) if (!existsSync(path)) throw new Error(`${name}: ${path} is missing (run scripts/setup.sh)`);

const page = `<!doctype html><meta charset="utf-8"><script type="module">
import { createOptimizer } from '/web/dist/browser.js';
const opt = createOptimizer();
function npy(shape, data) {
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape.join(', ') + (shape.length === 1 ? ',' : '') + "), }";
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 78, 85, 77, 80, 89, 1, 0, header.length & 255, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer), 10 + header.length);
  return out;
}
window.bench = async (url, runs) => {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const model = await opt.loadModel(bytes);
  const shape = model.summary.inputs[0].shape.map((d) => Math.max(d, 1));
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
  const latency = await model.benchmark(npy(shape, x), runs);
  await model.release();
  return { ...latency, simd: (await opt.info()).simd };
};
window.ready = true;
</script>`;

const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.tflite': 'application/octet-stream' };
const server = createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (url === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  let file;
  if (url.startsWith('/web/')) file = normalize(join(root, url));
  if (url.startsWith('/model/')) file = models[Number(url.slice(7))]?.[1];
  if (!file || !file.startsWith(root.replace(/\/$/, '')) && !file.startsWith(refDir) || !existsSync(file) || !statSync(file).isFile()) {
    return res.writeHead(404).end();
  }
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => console.error('page error:', e));
  await tab.goto(base);
  await tab.waitForFunction(() => window.ready);
  const rows = [['model', 'median ms', 'min ms', 'XNNPACK ms', 'engine']];
  for (const [i, [name]] of models.entries()) {
    const r = await tab.evaluate(([u, n]) => window.bench(u, n), [`/model/${i}`, runs]);
    rows.push([name, r.median_ms.toFixed(3), r.min_ms.toFixed(3), XNNPACK_MS[name]?.toFixed(2) ?? '', r.simd]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(`Inference latency, headless Chromium, one thread, ${runs} runs after warm-up\n`);
  for (const r of rows) console.log(r.map((c, k) => (k ? c.padStart(w[k]) : c.padEnd(w[k]))).join('  '));
} finally {
  await browser.close();
  server.close();
}
