// One JSON shape for every command: { command, version, ...result } on success, and
// { command, version, error: { code, message } } with a non-zero exit on failure.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { calib, cli, firstSamples, json, model, tempDir, testX, testY, version } from './cli_helpers.mjs';

const tmp = tempDir('json');
const train = firstSamples(tmp, 120);
const trainArgs = ['--train', train.x, '--train-labels', train.y, '--threads', '2'];
const out = (name) => join(tmp, name);

/** Per command: a run that succeeds, what its result must hold, and a run that fails with its error code. */
const cases = {
  inspect: {
    ok: ['inspect', model],
    check: (j) => assert.equal(j.models[0].summary.macs, 37024),
    fail: ['inspect', out('missing.tflite')],
    code: 'file_error',
    // inspect reports each model, the failed ones too.
    failResult: (j) => assert.deepEqual(j.models.map((m) => m.error.code), ['file_error']),
  },
  run: {
    ok: ['run', model, '--input', testX, '--output', out('y.npy')],
    check: (j) => assert.deepEqual([j.samples, j.outputs[0].path, j.outputs[0].shape], [1000, out('y.npy'), [1000, 10]]),
    fail: ['run', model, '--input', model, '--output', out('z.npy')],
    code: 'invalid_npy',
  },
  quantize: {
    ok: ['quantize', model, '-o', out('q.tflite'), '--calibration', calib],
    check: (j) => assert.equal(j.report.mode, 'static'),
    fail: ['quantize', model, '-o', out('q2.tflite')],
    code: 'invalid_argument',
  },
  prune: {
    ok: ['prune', model, '-o', out('p.tflite'), '--sparsity', '0.4'],
    check: (j) => assert.ok(Math.abs(j.report.achievedSparsity - 0.4) < 0.01),
    fail: ['prune', model, '-o', out('p2.tflite'), '--sparsity', '1.5'],
    code: 'invalid_argument',
  },
  finetune: {
    ok: ['finetune', model, '-o', out('f.tflite'), '--epochs', '1', ...trainArgs],
    check: (j) => assert.equal(j.report.train.epochs.length, 1),
    fail: ['finetune', model, '-o', out('f2.tflite'), '--epochs', '1', '--train', train.x],
    code: 'invalid_argument',
  },
  evaluate: {
    ok: ['evaluate', model, '--data', testX, '--labels', testY],
    check: (j) => assert.ok(j.report.accuracy > 0.8 && j.report.samples === 1000),
    fail: ['evaluate', model, '--data', model],
    code: 'invalid_npy',
  },
  convert: {
    ok: ['convert', model, '-o', out('c.tflite')],
    check: (j) => assert.equal(j.report, null),
    fail: ['convert', out('missing.tflite'), '-o', out('c2.tflite')],
    code: 'file_error',
  },
  optimize: {
    ok: ['optimize', model, '-o', out('o.tflite'), '--mode', 'dynamic'],
    check: (j) => assert.deepEqual(j.report.steps.map((s) => s.step), ['quantize']),
    fail: ['optimize', model, '-o', out('o2.tflite'), '--no-quantize'],
    code: 'invalid_argument',
  },
};

test('every command of --help has a JSON case here', () => {
  const listed = [...cli('--help').stdout.matchAll(/^ {2}(\w+) {2,}/gm)].map((m) => m[1]);
  assert.deepEqual(listed.sort(), Object.keys(cases).sort());
});

for (const [command, c] of Object.entries(cases)) {
  test(`${command} --json: the envelope, the result, and errors in the same envelope`, () => {
    const r = cli(...c.ok, '--json');
    assert.equal(r.status, 0, r.stderr);
    const j = json(r);
    assert.equal(j.command, command);
    assert.equal(j.version, version);
    assert.equal(j.error, undefined);
    c.check(j);
    if (j.output) {
      assert.equal(j.input.path, model);
      assert.ok(existsSync(j.output.path) && j.output.bytes > 1000, JSON.stringify(j.output));
      assert.ok(j.ms > 0);
    }
    const f = cli(...c.fail, '--json');
    assert.equal(f.status, 1, f.stderr);
    const e = json(f);
    const { command: _c, version: _v, error: _e, ...result } = e;
    if (c.failResult) c.failResult(result);
    else assert.deepEqual(result, {}, 'a failure carries nothing but the error');
    assert.equal(e.command, command);
    assert.equal(e.version, version);
    assert.equal(e.error.code, c.code, e.error.message);
    assert.ok(e.error.message.length > 10);
    assert.match(f.stderr, /^error: /m, 'the message is on stderr too');
  });
}

test('without --json, no JSON is printed; failures exit 1 with the message', () => {
  const r = cli('convert', model, '-o', out('c3.tflite'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^wrote .*c3\.tflite \([\d,]+ bytes\)\n$/);
  const f = cli('optimize', model, '-o', out('o3.tflite'), '--no-quantize');
  assert.equal(f.status, 1);
  assert.equal(f.stdout, '');
  assert.match(f.stderr, /nothing to do/);
});
