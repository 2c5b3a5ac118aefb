#!/usr/bin/env node
// Time to quantize in headless Chromium, one thread, as the web app does it: the package's browser
// build in a module Web Worker, static int8 with the default `auto` calibration over 200 samples.
// Prints the wall time of the quantize call (first and best of three) and its stages. The TF
// converter's time on the same model is printed by tests/bench/quantize_bench.py.
//
// Models: the float fixtures, and when ../shared/reference/models exists, MLPerf Tiny's VWW and
// ResNet-8 float models (say loudly when that folder is absent).
//
// Run: node tests/bench/browser_quantize_bench.mjs   (after scripts/setup.sh)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { referenceDir, root, startPackagePage } from '../e2e/harness.mjs';

const SAMPLES = 200;
const models = [
  ['fixture cnn', join(root, 'tests/fixtures/cnn/model_float.tflite')],
  ['fixture resnet', join(root, 'tests/fixtures/resnet/model_float.tflite')],
];
const refModels = join(referenceDir, 'models');
if (existsSync(refModels)) {
  models.push(['VWW (MobileNetV1 0.25, 96×96)', join(refModels, 'mlperftiny_vww_mobilenetv1_025_96_float32.tflite')]);
  models.push(['ResNet-8 (CIFAR-10)', join(refModels, 'mlperftiny_ic_resnet8_cifar10_float32.tflite')]);
} else {
  console.warn(`!! ${refModels} not found: MLPerf Tiny models SKIPPED, fixtures only`);
}

// Calibration data is pseudo-random in [0, 1): the time does not depend on what the pixels show.
const script = `
import { createOptimizer } from '/web/dist/browser.js';
const opt = createOptimizer();
window.quantizeTimes = async (url, samples) => {
  const model = await opt.loadModel(new Uint8Array(await (await fetch(url)).arrayBuffer()));
  const shape = [samples, ...model.summary.inputs[0].shape.slice(1)];
  let s = 1;
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s >>> 8) / 16777216;
  });
  const calibrationData = await opt.npyFromF32(shape, data);
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const q = await model.quantize({ mode: 'static', calibrationData });
    const r = q.report;
    runs.push({ ms: performance.now() - t, calibration: r.calibrationMs, rewrite: r.rewriteMs, report: r.reportMs, chosen: r.calibration });
    await q.model.release();
  }
  await model.release();
  return { runs, engine: (await opt.info()).simd };
};
window.ready = true;
`;

const page = await startPackagePage(script, models.map(([, p]) => p));
try {
  const rows = [['model', 'first ms', 'best ms', 'calibrate', 'rewrite+select', 'report', 'chosen', 'engine']];
  for (const [i, [name]] of models.entries()) {
    const { runs, engine } = await page.tab.evaluate(([u, n]) => window.quantizeTimes(u, n), [`/file/${i}`, SAMPLES]);
    const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    rows.push([
      name, runs[0].ms.toFixed(0), best.ms.toFixed(0), best.calibration.toFixed(0), best.rewrite.toFixed(0),
      best.report.toFixed(0), best.chosen, engine,
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(`Static int8 quantization in headless Chromium, one thread, ${SAMPLES} calibration samples (ms)\n`);
  for (const r of rows) console.log(r.map((c, k) => (k && k < 6 ? c.padStart(w[k]) : c.padEnd(w[k]))).join('  '));
} finally {
  await page.close();
}
