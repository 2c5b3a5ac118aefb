// The web app in a real browser: the sample flow end to end (prune + quantize, results, downloads
// checked by the package in Node), images with folder labels, a reference model, a corrupt file's
// message, no network traffic beyond the app itself during all of it, and the start on the
// inference-only core (one .wasm: the core build).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { createOptimizer } from '../../web/dist/node.js';
import { outDir, root, startApp } from './harness.mjs';

let app;
/** The .wasm files the app fetched until its engine answered, before any model was opened. */
let startWasm;
let startEngine;
const opt = createOptimizer();
before(async () => {
  app = await startApp();
  await app.page.goto(app.url);
  await app.page.locator('#engine-info').filter({ hasText: 'WebAssembly' }).waitFor();
  startWasm = app.requests.filter((u) => u.endsWith('.wasm'));
  startEngine = await app.page.locator('#engine-info').innerText();
});
after(async () => {
  opt.terminate();
  await app?.close();
});

const refModels = join(root, '..', 'shared', 'reference', 'models');

/** A minimal RGB PNG (no filtering), so the test needs no image library. */
function png(w, h, pixel) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const raw = Buffer.alloc(h * (1 + w * 3));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set(pixel(x, y), y * (1 + w * 3) + 1 + x * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

test('the app starts on the inference-only core: its one .wasm download is the core build', async () => {
  const flavor = /relaxed-simd/.test(startEngine) ? 'relaxed' : 'simd';
  assert.equal(startWasm.length, 1, `fetched ${startWasm.join(', ')}`);
  const served = Buffer.from(await (await fetch(startWasm[0])).arrayBuffer());
  assert.ok(served.equals(readFileSync(join(root, `web/wasm/core/${flavor}/tinyml_optimizer_bg.wasm`))), `${startWasm[0]} is not core/${flavor}`);
});

test('the sample flow: load, prune + quantize, see results, download a valid int8 model and header', async () => {
  const { page } = app;
  await page.getByRole('button', { name: 'Try the sample model' }).click();
  await page.locator('#layers tbody tr').first().waitFor();
  assert.match(await page.locator('#model-ops').innerText(), /CONV_2D ×6/);
  assert.match(await page.locator('#data-status').innerText(), /1000 sample test images .*; labels for 10 classes/);
  assert.match(await page.locator('#engine-info').innerText(), /WebAssembly (relaxed-simd|simd128)/);
  // The graph view is one keypress away.
  await page.locator('#tab-layers').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.locator('#view-graph svg .node').count(), await page.locator('#layers tbody tr').count());
  assert.ok((await page.locator('#view-graph svg path.skip').count()) >= 2, 'residual connections are drawn');
  // The core's summary has no TFLM report: the cards fill in once the full engine (loading in the
  // background) has computed it.
  await page.waitForFunction(() => /TFLite Micro\s+runs as is/.test(document.getElementById('model-cards').innerText), null, { timeout: 60_000 });
  assert.match(await page.locator('#model-cards').innerText(), /TFLM tensor arena\s+[\d.]+ [kKMG]?B/);
  // Dynamic-range models do not run on TFLite Micro: the app warns before the choice is run.
  await page.locator('#quant-mode').selectOption('dynamic');
  assert.match(await page.locator('#tflm-warning').innerText(), /TensorFlow Lite Micro cannot run dynamic-range/);
  await page.locator('#quant-mode').selectOption('static');
  assert.equal(await page.locator('#tflm-warning').isHidden(), true);
  await page.getByRole('button', { name: 'Optimize', exact: true }).click();
  await page.locator('#results').waitFor({ state: 'visible', timeout: 60_000 });
  const cards = await page.locator('#result-cards').innerText();
  assert.match(cards, /float → int8/);
  assert.match(cards, /accuracy\s+100\.0% → (9\d|100)\.\d%/);
  assert.match(cards, /latency \(this browser\)/);
  assert.ok(await page.locator('#chart-sparsity svg rect.bar').count() >= 6);
  assert.ok(await page.locator('#chart-sqnr svg rect.bar').count() >= 6);
  await page.screenshot({ path: `${outDir}app-results.png`, fullPage: true });

  const [modelDl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download .tflite' }).click()]);
  const modelPath = join(outDir, modelDl.suggestedFilename());
  await modelDl.saveAs(modelPath);
  const bytes = readFileSync(modelPath);
  const summary = await opt.inspect(bytes);
  assert.equal(summary.precision, 'int8');
  assert.equal(summary.inputs[0].dtype, 'i8');
  assert.ok(summary.layers.filter((l) => l.weights).every((l) => l.weights.dtype === 'i8'));

  // Firmware files for TFLite Micro: the .h, then the .cc with the model array.
  const downloads = [];
  page.on('download', (d) => downloads.push(d));
  await page.getByRole('button', { name: 'Download firmware files (.h, .cc)' }).click();
  for (let i = 0; downloads.length < 2 && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
  const fw = Object.fromEntries(await Promise.all(downloads.map(async (d) => [d.suggestedFilename(), readFileSync(await d.path(), 'utf8')])));
  assert.deepEqual(Object.keys(fw).sort(), ['sample_resnet_optimized.cc', 'sample_resnet_optimized.h']);
  assert.match(fw['sample_resnet_optimized.h'], /constexpr int kTensorArenaSize = \d+;/);
  assert.match(fw['sample_resnet_optimized.h'], /AddConv2D/);
  assert.match(fw['sample_resnet_optimized.cc'], /alignas\(16\) const unsigned char g_sample_resnet_optimized\[\]/);
  assert.match(fw['sample_resnet_optimized.cc'], new RegExp(`_len = ${bytes.length};`));
  // TFLite Micro facts before and after: arena and flash shrink with int8.
  assert.match(cards, /TFLM tensor arena\s+[\d.]+ [kKMG]?B → [\d.]+ [kKMG]?B/);
  assert.match(cards, /TFLM flash/);

  const [reportDl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download report (.json)' }).click()]);
  const report = JSON.parse(readFileSync(await reportDl.path(), 'utf8'));
  assert.equal(report.prune.method, 'global-magnitude');
  assert.equal(report.quantize.mode, 'static');
  assert.equal(report.sizeBytes, bytes.length);

  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.locator('#run-results tbody tr').first().waitFor();
  assert.equal(await page.locator('#run-results tbody tr').count(), 16);
});

test('cancel stops the work; the next run starts a fresh engine and succeeds', async () => {
  const { page } = app;
  await page.getByRole('button', { name: 'Optimize', exact: true }).click();
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.waitForFunction(() => /Cancelled/.test(document.querySelector('#progress-text')?.textContent ?? ''));
  assert.equal(await page.locator('#results').isVisible(), false);
  assert.equal(await page.locator('#error').isVisible(), false);
  await page.getByRole('button', { name: 'Optimize', exact: true }).click();
  await page.locator('#results').waitFor({ state: 'visible', timeout: 60_000 });
  assert.match(await page.locator('#result-cards').innerText(), /float → int8/);
});

test('training: gradual pruning then quantization-aware training, a live loss chart, a valid download', async () => {
  const { page } = app;
  await page.locator('#train-on').check();
  await page.locator('#train-epochs').fill('1');
  await page.getByRole('button', { name: 'Optimize', exact: true }).click();
  await page.locator('#train-chart svg polyline.train').waitFor({ timeout: 120_000 });
  await page.locator('#results').waitFor({ state: 'visible', timeout: 300_000 });
  const cards = await page.locator('#result-cards').innerText();
  assert.match(cards, /pruning while training\s+1 epoch\(s\), kept epoch 1 \(validation accuracy \d+\.\d%\)/);
  assert.match(cards, /quantization-aware training\s+1 epoch\(s\)/);
  assert.match(cards, /float → int8/);
  assert.match(await page.locator('#train-status').innerText(), /quantization-aware training: step \d+ of \d+/);

  const [reportDl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download report (.json)' }).click()]);
  const report = JSON.parse(readFileSync(await reportDl.path(), 'utf8'));
  assert.deepEqual(report.training.map((t) => t.phase), ['pruning while training', 'quantization-aware training']);
  assert.ok(Math.abs(report.prune.achievedSparsity - report.options.prune.sparsity) < 0.02, `sparsity ${report.prune.achievedSparsity}`);
  const [modelDl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download .tflite' }).click()]);
  const modelPath = await modelDl.path();
  const loaded = await opt.loadModel(readFileSync(modelPath));
  assert.equal(loaded.summary.precision, 'int8');
  await loaded.release();
  // The fine-tuned download runs in LiteRT (pip ai-edge-litert, installed by scripts/setup.sh --tests).
  const litert = spawnSync('python3', ['-c', RUN_IN_LITERT, modelPath], { encoding: 'utf8' });
  assert.equal(litert.status, 0, `LiteRT did not run the trained download: ${litert.stderr}`);
  assert.match(litert.stdout, /^int8 /);
});

// Loads a .tflite in LiteRT, runs it on zeros and prints the output's dtype and shape.
const RUN_IN_LITERT = `
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1])
it.allocate_tensors()
i = it.get_input_details()[0]
it.set_tensor(i['index'], np.zeros(i['shape'], i['dtype']))
it.invoke()
o = it.get_output_details()[0]
print(np.dtype(o['dtype']).name, it.get_tensor(o['index']).shape)
`;

test('cancel during training keeps the weights so far, skips the other training and still quantizes', async () => {
  const { page } = app;
  await page.locator('#train-epochs').fill('20');
  await page.getByRole('button', { name: 'Optimize', exact: true }).click();
  await page.waitForFunction(() => /prune while training: step [1-9]/.test(document.querySelector('#train-status')?.textContent ?? ''), null, { timeout: 120_000 });
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('#results').waitFor({ state: 'visible', timeout: 120_000 });
  const cards = await page.locator('#result-cards').innerText();
  assert.match(cards, /pruning while training/);
  assert.doesNotMatch(cards, /quantization-aware training/);
  assert.match(cards, /float → int8/);
  assert.match(await page.locator('#result-summary').innerText(), /stopped by the user/);
  await page.locator('#train-on').uncheck();
});

test('images in class folders become a labelled batch', async () => {
  const { page } = app;
  const dir = join(outDir, 'images');
  for (const [cls, draw] of [['hbar', (x, y) => (y >= 7 && y <= 8 ? 230 : 10)], ['vbar', (x) => (x >= 7 && x <= 8 ? 230 : 10)]]) {
    mkdirSync(join(dir, cls), { recursive: true });
    for (let i = 0; i < 6; i++) writeFileSync(join(dir, cls, `${i}.png`), png(32, 32, (x, y) => Array(3).fill(draw(x >> 1, y >> 1))));
  }
  await page.locator('#data-folder').setInputFiles(dir);
  await page.waitForFunction(() => /12 images in 2 class folders/.test(document.querySelector('#data-status')?.textContent ?? ''));
  assert.match(await page.locator('#data-status').innerText(), /resized to 16×16×1; labels for 2 classes \(hbar, vbar\)/);
});

test("a user's own model from the reference set goes through the flow", async (t) => {
  const path = join(refModels, 'mlperftiny_vww_mobilenetv1_025_96_float32.tflite');
  if (!existsSync(path)) {
    t.skip(`${refModels} not found: the reference-model flow is SKIPPED`);
    return;
  }
  const { page } = app;
  await page.locator('#model-file').setInputFiles(path);
  await page.waitForFunction(() => /mobilenet/.test(document.querySelector('#model-title')?.textContent ?? ''));
  // Twenty random 96×96 RGB images as calibration data.
  const n = 20, per = 96 * 96 * 3;
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (20, 96, 96, 3), }";
  const h = header + ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const data = new Float32Array(n * per).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  const npy = Buffer.concat([Buffer.from([0x93, 78, 85, 77, 80, 89, 1, 0, h.length & 255, h.length >> 8]), Buffer.from(h), Buffer.from(data.buffer)]);
  await page.locator('#data-file').setInputFiles({ name: 'random.npy', mimeType: 'application/octet-stream', buffer: npy });
  await page.waitForFunction(() => /random\.npy: 20 samples/.test(document.querySelector('#data-status')?.textContent ?? ''));
  await page.locator('#prune-on').uncheck();
  await page.getByRole('button', { name: 'Optimize', exact: true }).click();
  await page.waitForFunction(() => /float → int8/.test(document.querySelector('#result-cards')?.textContent ?? ''), null, { timeout: 60_000 });
  assert.match(await page.locator('#result-cards').innerText(), /top-1 agreement/);
});

test('a corrupt file shows a readable error, not a blank page', async () => {
  const { page } = app;
  await page.locator('#model-file').setInputFiles({ name: 'broken.tflite', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a model at all') });
  const err = page.locator('#error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.innerText(), /invalid model file: missing the TFLite identifier/);
  assert.equal(await page.locator('h1').innerText(), 'tinyml-optimizer');
});

test('no request leaves the local server', async () => {
  const origin = new URL(app.url).origin;
  const foreign = app.requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, []);
  assert.ok(app.requests.some((u) => u.endsWith('.wasm')), 'the engine was fetched from the app');
  assert.deepEqual(app.consoleErrors, []);
});
