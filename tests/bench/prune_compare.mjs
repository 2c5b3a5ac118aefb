#!/usr/bin/env node
// Accuracy against sparsity for the five pruning methods, unstructured and structured, on a fixture
// model with labels (default: the ResNet fixture), without fine-tuning. Prints a table and writes
// an SVG plot (default tests/bench/results/pruning.svg).
//
// Gradient methods score weights on the 200 unlabelled calibration samples (cross-entropy against
// the model's own predictions); accuracy is measured on the 1000 labelled test samples, all with
// our engine (the package's Node build, one worker thread).
//
// Run: node tests/bench/prune_compare.mjs [--model resnet|cnn|dwcnn|mlp] [--svg PATH]   (after scripts/setup.sh)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOptimizer } from '../../web/dist/node.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const arg = (flag, fallback) => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const name = arg('--model', 'resnet');
const svgPath = arg('--svg', join(root, 'tests/bench/results/pruning.svg'));
const fixture = (p) => readFileSync(join(root, 'tests/fixtures', p));

const METHODS = ['global-magnitude', 'layer-magnitude', 'global-gradient', 'layer-gradient', 'random'];
const SPARSITIES = [0.25, 0.5, 0.75, 0.9];
const COLORS = ['#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#7f7f7f'];

const opt = createOptimizer();
try {
  const model = await opt.loadModel(fixture(`${name}/model_float.tflite`));
  const testX = fixture('data/patterns_test_x.npy');
  const testY = fixture('data/patterns_test_y.npy');
  const calib = fixture('data/patterns_calib.npy');
  const base = (await model.evaluate(testX, { labels: testY })).accuracy;
  const results = {}; // results[structured][method] = [{ sparsity, accuracy, macs }]
  for (const structured of [false, true]) {
    results[structured] = {};
    for (const method of METHODS) {
      results[structured][method] = [];
      for (const sparsity of SPARSITIES) {
        const data = method.endsWith('gradient') ? calib : undefined;
        const { model: p, report } = await model.prune({ method, sparsity, structured, data });
        const e = await p.evaluate(testX, { labels: testY });
        results[structured][method].push({
          sparsity,
          achieved: report.achievedSparsity,
          accuracy: e.accuracy,
          macs: report.after.macs / report.before.macs,
          gzip: report.after.gzipBytes / report.before.gzipBytes,
        });
        await p.release();
      }
    }
  }

  const pct = (v) => `${(v * 100).toFixed(1)}%`;
  console.log(`Pruning without fine-tuning: fixture '${name}', ${model.summary.parameters.toLocaleString('en-US')} parameters, ` +
    `accuracy ${pct(base)} on 1000 test samples\n`);
  for (const structured of [false, true]) {
    console.log(structured
      ? 'Structured (whole channels removed until the fraction of weights is gone): accuracy / MACs left'
      : 'Unstructured (weights zeroed): accuracy / gzip size left');
    const rows = [['method', ...SPARSITIES.map((s) => `${s * 100}%`)]];
    for (const method of METHODS) {
      rows.push([method, ...results[structured][method].map((r) => `${pct(r.accuracy)} / ${pct(structured ? r.macs : r.gzip)}`)]);
    }
    const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const r of rows) console.log('  ' + r.map((cell, c) => (c ? cell.padStart(w[c]) : cell.padEnd(w[c]))).join('   '));
    console.log();
  }

  // Two panels, accuracy against sparsity, one line per method.
  const W = 360, H = 260, M = { l: 48, r: 12, t: 28, b: 40 };
  const panel = (structured, ox) => {
    const x = (s) => ox + M.l + ((s - 0.2) / 0.75) * (W - M.l - M.r);
    const y = (a) => M.t + (1 - a) * (H - M.t - M.b);
    const parts = [`<text x="${ox + W / 2}" y="16" text-anchor="middle" font-weight="bold">${structured ? 'structured' : 'unstructured'}</text>`];
    for (const a of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<line x1="${x(0.2)}" x2="${x(0.95)}" y1="${y(a)}" y2="${y(a)}" stroke="#ddd"/>`);
      parts.push(`<text x="${x(0.2) - 6}" y="${y(a) + 4}" text-anchor="end">${a * 100}%</text>`);
    }
    for (const s of SPARSITIES) parts.push(`<text x="${x(s)}" y="${H - M.b + 16}" text-anchor="middle">${s * 100}%</text>`);
    parts.push(`<text x="${ox + W / 2}" y="${H - 6}" text-anchor="middle">sparsity (fraction of weights removed)</text>`);
    parts.push(`<line x1="${x(0.2)}" x2="${x(0.95)}" y1="${y(base)}" y2="${y(base)}" stroke="#000" stroke-dasharray="4 3"/>`);
    METHODS.forEach((m, k) => {
      const pts = results[structured][m].map((r) => `${x(r.sparsity).toFixed(1)},${y(r.accuracy).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[k]}" stroke-width="2"/>`);
      for (const r of results[structured][m]) parts.push(`<circle cx="${x(r.sparsity)}" cy="${y(r.accuracy)}" r="2.5" fill="${COLORS[k]}"/>`);
    });
    return parts.join('\n');
  };
  const legend = METHODS.map((m, k) =>
    `<rect x="${20 + k * 142}" y="${H + 6}" width="12" height="3" fill="${COLORS[k]}"/><text x="${36 + k * 142}" y="${H + 11}">${m}</text>`,
  ).join('\n');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 40}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
${panel(false, 0)}
${panel(true, W)}
${legend}
<text x="20" y="${H + 30}" fill="#555">dashed line: the unpruned model, ${pct(base)}; fixture '${name}', no fine-tuning</text>
</svg>
`;
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(svgPath, svg);
  console.log(`plot written to ${svgPath}`);
} finally {
  opt.terminate();
}
