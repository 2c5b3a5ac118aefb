// `optimize`: the app's pipeline in one command, the same model as the step commands, one report.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { calib, cli, firstSamples, json, model, tempDir, testX, testY } from './cli_helpers.mjs';

const tmp = tempDir('optimize');
const out = (name) => join(tmp, name);
const train = firstSamples(tmp, 120);
const trainArgs = ['--train', train.x, '--train-labels', train.y, '--threads', '2'];
const steps = (j) => j.report.steps.map((s) => s.step);

test('optimize writes the same model as prune then quantize, with one report, its file and firmware files', () => {
  const prune = ['--method', 'layer-magnitude', '--sparsity', '0.5'];
  assert.equal(cli('prune', model, '-o', out('p.tflite'), ...prune).status, 0);
  assert.equal(cli('quantize', out('p.tflite'), '-o', out('pq.tflite'), '--calibration', calib).status, 0);
  const r = cli('optimize', model, '-o', out('o.tflite'), ...prune, '--calibration', calib, '--data', testX, '--labels', testY,
    '--report', out('o.json'), '--header', out('o.h'), '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(readFileSync(out('o.tflite')).equals(readFileSync(out('pq.tflite'))), 'optimize and the step commands differ');
  const j = json(r);
  assert.deepEqual(steps(j), ['prune', 'quantize', 'evaluate']);
  const { before, after, prune: p, quantize: q, evaluation: e } = j.report;
  assert.deepEqual([before.precision, after.precision, after.bytes], ['float', 'int8', j.output.bytes]);
  assert.ok(after.tflm.supported && after.tflm.arenaBytes < before.tflm.arenaBytes);
  assert.deepEqual([p.gradual, p.method, p.requestedSparsity], [false, 'layer-magnitude', 0.5]);
  assert.ok(Math.abs(p.achievedSparsity - 0.5) < 0.01 && p.report.achievedSparsity === p.achievedSparsity);
  assert.equal(q.calibrationSamples, 200);
  assert.ok(e.samples === 1000 && e.accuracy > 0.5 && e.reference.top1Agreement > 0.5, JSON.stringify(e.reference));
  assert.deepEqual(JSON.parse(readFileSync(out('o.json'), 'utf8')), j.report, '--report holds the report');
  assert.deepEqual(j.files.map((f) => f.path), [out('o.h'), out('o.cc'), out('o.json')]);
  assert.match(readFileSync(out('o.cc'), 'utf8'), new RegExp(`g_o_len = ${after.bytes};`));
  const text = cli('optimize', model, '-o', out('o2.tflite'), ...prune, '--calibration', calib, '--data', testX, '--labels', testY);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^wrote .*o2\.tflite: [\d,]+ bytes \(\d+% of 8,576\)/);
  assert.match(text.stdout, /steps: prune \([\d.]+ s\) -> quantize \([\d.]+ s\) -> evaluate/);
  assert.match(text.stdout, /precision +float +int8\n/);
  assert.match(text.stdout, /accuracy +94\.00% +\d+\.\d\d%\n/);
});

test('without --calibration, 200 samples spread over --data calibrate (as in the app)', () => {
  const r = cli('optimize', model, '-o', out('d.tflite'), '--data', testX, '--calibration-method', 'minmax', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = json(r);
  assert.deepEqual(steps(j), ['quantize', 'evaluate']);
  assert.equal(j.report.quantize.calibrationSamples, 200);
  assert.equal(j.report.prune, null);
  const all = cli('quantize', model, '-o', out('all.tflite'), '--calibration', testX, '--calibration-method', 'minmax', '--json');
  assert.equal(json(all).report.calibrationSamples, 1000, 'the subset is not the whole set');
});

test('with training: unstructured pruning trains gradually, then quantization-aware training at a fifth of the rate', () => {
  const r = cli('optimize', model, '-o', out('t.tflite'), '--sparsity', '0.5', '--epochs', '1', ...trainArgs, '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = json(r);
  assert.deepEqual(steps(j), ['prune-while-training', 'quantize-aware-training']);
  assert.deepEqual(j.report.training.map((t) => t.step), steps(j));
  assert.equal(j.report.prune.gradual, true);
  assert.ok(Math.abs(j.report.prune.achievedSparsity - 0.5) < 0.01, String(j.report.prune.achievedSparsity));
  assert.equal(j.report.training[1].train.epochs[0].learningRate, 1e-3 / 5);
  assert.equal(j.report.quantize.mode, 'qat');
  assert.equal(j.report.after.precision, 'int8');
});

test('with training: structured pruning once, fine-tuning, then dynamic quantization (which TFLM cannot run)', () => {
  const r = cli('optimize', model, '-o', out('s.tflite'), '--sparsity', '0.3', '--structured', '--mode', 'dynamic', '--epochs', '1', ...trainArgs);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /steps: prune \([\d.]+ s\) -> fine-tune \([\d.]+ s\) -> quantize/);
  assert.match(r.stdout, /TFLM runs it +yes +no\n/);
  assert.match(r.stdout, /TFLM cannot run node \d+/);
  const tuned = cli('optimize', model, '-o', out('f.tflite'), '--no-quantize', '--epochs', '1', ...trainArgs, '--json');
  assert.deepEqual(steps(json(tuned)), ['finetune']);
  assert.equal(json(tuned).report.after.precision, 'float');
});

test('optimize refuses what cannot run, before reading anything', () => {
  const cases = [
    [['--no-quantize'], /nothing to do/],
    [['--sparsity', '0.5', '--method', 'global-gradient', '--mode', 'dynamic'], /--method global-gradient needs data/],
    [[], /static quantization needs calibration data/],
    [['--labels', testY, '--mode', 'dynamic'], /--labels needs --data/],
    [['--epochs', '1', '--train', train.x], /training needs --train X.npy .* and --train-labels/],
    [['--sparsity', '1'], /--sparsity must be a fraction in \[0, 1\)/],
    [['--train', train.x, '--train-labels', train.y], /--train and --train-labels are for training: give --epochs N too/],
  ];
  for (const [args, message] of cases) {
    const r = cli('optimize', model, '-o', out('never.tflite'), ...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, message);
    assert.match(r.stderr, /usage: tinyml-optimizer optimize/);
  }
  assert.equal(existsSync(out('never.tflite')), false);
});

test('Ctrl-C while training keeps the best model so far, skips later training and still quantizes', async () => {
  const { spawn } = await import('node:child_process');
  const { cliPath, root } = await import('./helpers.mjs');
  const args = ['optimize', model, '-o', out('int.tflite'), '--sparsity', '0.5', '--epochs', '50', '--train', testX, '--train-labels', testY,
    '--threads', '2', '--json'];
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: root });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  const started = new Promise((resolve) => child.stderr.on('data', (d) => (stderr += d) && /prune-while-training:/.test(stderr) && resolve()));
  await started;
  await new Promise((r) => setTimeout(r, 1500));
  child.kill('SIGINT');
  // Had a later step trained anyway, it would run its 50 epochs: stop it and fail.
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise((r) => child.on('exit', r));
  clearTimeout(guard);
  assert.equal(code, 0, stderr);
  const j = JSON.parse(stdout);
  assert.deepEqual(steps(j), ['prune-while-training', 'quantize'], 'quantization-aware training is skipped after Ctrl-C');
  assert.ok(j.report.training[0].train.epochs.length < 50);
  assert.equal(j.report.quantize.calibrationSamples, 200, 'calibrated on 200 samples of --train');
  assert.equal(j.report.after.precision, 'int8');
});

test('spreadRows takes k rows spread evenly, keeps the header but the count, and leaves small or foreign data alone', async () => {
  const { spreadRows } = await import('../dist/cli/npy.js');
  const { parseNpy } = await import('./helpers.mjs');
  const x = readFileSync(testX);
  const all = parseNpy(x);
  const sub = parseNpy(spreadRows(x, 200));
  assert.deepEqual(sub.shape, [200, 16, 16, 1]);
  const row = 256;
  for (const i of [0, 1, 57, 199]) {
    assert.deepEqual(sub.data.subarray(i * row, (i + 1) * row), all.data.subarray(i * 5 * row, (i * 5 + 1) * row), `row ${i}`);
  }
  assert.equal(spreadRows(x, 1000), x, 'no more rows than asked: the batch itself');
  const notNpy = Buffer.from('not a .npy file at all');
  assert.equal(spreadRows(notNpy, 2), notNpy);
});
