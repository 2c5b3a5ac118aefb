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
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { referenceDir as refDir, root, startPackagePage } from '../e2e/harness.mjs';

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

const script = `
import { createOptimizer } from '/web/dist/browser.js';
const optimizers = { relaxed: createOptimizer(), simd: createOptimizer({ prefer: 'simd' }) };
window.bench = async (url, runs, flavor) => {
  const opt = optimizers[flavor];
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const model = await opt.loadModel(bytes);
  const shape = model.summary.inputs[0].shape.map((d) => Math.max(d, 1));
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
  const latency = await model.benchmark(await opt.npyFromF32(shape, x), runs);
  await model.release();
  const info = await opt.info();
  return { ...latency, simd: info.simd + ' (' + info.int8Kernel + ')' };
};
// Both workers compile their module before any timing starts, so neither disturbs the other.
await Promise.all(Object.values(optimizers).map((o) => o.info()));
window.ready = true;
`;

const { tab, close } = await startPackagePage(script, models.map(([, path]) => path));
try {
  // Both builds: the one the package picks here (relaxed SIMD where the engine has it) and the
  // plain simd128 one that engines without relaxed SIMD get.
  // Untimed pass first: the engine tiers the wasm code up to its optimizing compiler in the background.
  for (const flavor of ['relaxed', 'simd']) await tab.evaluate(([u, n, f]) => window.bench(u, n, f), ['/file/0', runs, flavor]);
  const rows = [['model', 'build', 'median ms', 'min ms', 'XNNPACK ms']];
  for (const [i, [name]] of models.entries()) {
    for (const flavor of ['relaxed', 'simd']) {
      const r = await tab.evaluate(([u, n, f]) => window.bench(u, n, f), [`/file/${i}`, runs, flavor]);
      rows.push([flavor === 'relaxed' ? name : '', r.simd, r.median_ms.toFixed(3), r.min_ms.toFixed(3), flavor === 'relaxed' ? XNNPACK_MS[name]?.toFixed(2) ?? '' : '']);
    }
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(`Inference latency, headless Chromium, one thread, ${runs} runs after warm-up\n`);
  for (const r of rows) console.log(r.map((c, k) => (k > 1 ? c.padStart(w[k]) : c.padEnd(w[k]))).join('  '));
} finally {
  await close();
}
