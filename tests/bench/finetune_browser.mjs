#!/usr/bin/env node
// Our fine-tuning in headless Chromium, for tests/bench/finetune_compare.py: the same calls its Node
// CLI rows make (gradual pruning at each sparsity, quantization-aware training), through the
// package's browser build, on all cores. Prints one JSON object: the browser's version and, per run,
// the engine's own milliseconds per epoch (`report.train.msPerEpoch`, as the CLI reports them).
//
//   node tests/bench/finetune_browser.mjs MODEL X.npy Y.npy --epochs 4 --batch 32 \
//     --sparsities 0.5,0.8,0.9 [--qat-learning-rate 2e-4] [--method layer-magnitude] \
//     [--calibration C.npy]
//
// With --calibration, quantization-aware training starts from the static model of C.npy (as the
// CLI's `quantize --calibration C.npy --qat-epochs N`); otherwise from the first training samples.
//
// Needs the built package (scripts/setup.sh) and /usr/bin/chromium.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { startPackagePage } from '../e2e/harness.mjs';

const argv = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const [model, x, y] = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
if (!y) {
  console.error('usage: finetune_browser.mjs MODEL X.npy Y.npy [--epochs N] [--batch N] [--sparsities a,b]');
  process.exit(2);
}
const settings = {
  epochs: Number(flag('epochs', '4')),
  batch: Number(flag('batch', '32')),
  sparsities: flag('sparsities', '0.5,0.8,0.9').split(',').filter(Boolean).map(Number),
  method: flag('method', 'layer-magnitude'),
  qatRate: Number(flag('qat-learning-rate', '2e-4')),
  calibration: flag('calibration', undefined) !== undefined,
  threads: Math.min(availableParallelism(), 16),
};

// Runs in the page: every fine-tuning call on one optimizer, its engine-reported time per epoch.
const measure = async (createOptimizer, load, s) => {
  const [modelBytes, data, labels, calibrationData] = await Promise.all((s.calibration ? [0, 1, 2, 3] : [0, 1, 2]).map(load));
  const train = { epochs: s.epochs, batchSize: s.batch, optimizer: 'adam', validationSplit: 0, seed: 1 };
  const opt = createOptimizer({ threads: s.threads });
  const model = await opt.loadModel(modelBytes);
  const pruning = [];
  for (const sparsity of s.sparsities) {
    const prune = { method: s.method, sparsity };
    const r = await model.finetune({ ...train, learningRate: 1e-3, data, labels, prune });
    pruning.push({ sparsity, msPerEpoch: r.report.train.msPerEpoch, achieved: r.report.train.sparsity });
    await r.model.release();
  }
  const q = await model.quantizeAware({ data, labels, calibrationData, train: { ...train, learningRate: s.qatRate } });
  const qat = { msPerEpoch: q.report.train.msPerEpoch };
  opt.terminate();
  return { pruning, qat };
};

const files = [model, x, y, ...(settings.calibration ? [flag('calibration')] : [])].map((f) => resolve(f));
const script = `
import { createOptimizer } from '/web/dist/browser.js';
const load = async (i) => new Uint8Array(await (await fetch('/file/' + i)).arrayBuffer());
const measure = ${measure.toString()};
window.measure = (s) => measure(createOptimizer, load, s);
window.ready = true;
`;
const page = await startPackagePage(script, files);
try {
  const r = await page.tab.evaluate((s) => window.measure(s), settings);
  if (page.errors.length) console.error('page errors:', page.errors);
  console.log(JSON.stringify({ browser: page.browserVersion, threads: settings.threads, ...r }));
} finally {
  await page.close();
}
