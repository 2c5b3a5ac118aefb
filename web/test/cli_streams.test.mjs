// '-' for stdin and stdout, several models in inspect, and --quiet.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { calib, cli, cliRaw, json, model, tempDir, testX, testY } from './cli_helpers.mjs';

const tmp = tempDir('streams');
const modelBytes = readFileSync(model);
const isTflite = (b) => b.length > 1000 && b.subarray(4, 8).toString('latin1') === 'TFL3';

test('inspect - reads the model from stdin', () => {
  const r = cliRaw(['inspect', '-', '--json'], modelBytes);
  assert.equal(r.status, 0, r.stderr);
  const fromStdin = json(r).models[0];
  assert.equal(fromStdin.path, '-');
  assert.deepEqual(fromStdin.summary, json(cli('inspect', model, '--json')).models[0].summary);
  const text = cliRaw(['inspect', '-'], modelBytes);
  assert.match(text.stdout.toString(), /^stdin: 8,576 bytes, float/);
});

test('quantize - -o -: the model goes to stdout byte for byte, the report to stderr', () => {
  const file = join(tmp, 'q.tflite');
  assert.equal(cli('quantize', model, '-o', file, '--calibration', calib).status, 0);
  const r = cliRaw(['quantize', '-', '-o', '-', '--calibration', calib], modelBytes);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(isTflite(r.stdout));
  assert.ok(Buffer.compare(r.stdout, readFileSync(file)) === 0, 'the same bytes as written to a file');
  assert.match(r.stderr, /wrote stdout: [\d,]+ bytes/);
  // --json: the envelope goes to stderr too, stdout is only the model.
  const j = cliRaw(['quantize', '-', '-o', '-', '--calibration', calib, '--json'], modelBytes);
  assert.equal(j.status, 0, j.stderr);
  assert.ok(Buffer.compare(j.stdout, r.stdout) === 0);
  const e = JSON.parse(j.stderr);
  assert.deepEqual([e.command, e.input.path, e.output.path, e.output.bytes], ['quantize', '-', '-', r.stdout.length]);
});

test('pipes chain: convert -o - | inspect -, and optimize -o - with firmware files beside', () => {
  const c = cliRaw(['convert', model, '-o', '-']);
  assert.equal(c.status, 0, c.stderr);
  const i = cliRaw(['inspect', '-', '--json'], c.stdout);
  assert.equal(json(i).models[0].summary.macs, 37024);
  const header = join(tmp, 'net.h');
  const o = cliRaw(['optimize', '-', '-o', '-', '--calibration', calib, '--header', header], modelBytes);
  assert.equal(o.status, 0, o.stderr);
  assert.ok(isTflite(o.stdout));
  const cc = readFileSync(join(tmp, 'net.cc'), 'utf8');
  assert.match(cc, /#include "net.h"/);
  assert.match(cc, new RegExp(`g_net_len = ${o.stdout.length};`), 'the firmware array is the model on stdout');
});

test('with -o -, errors never reach stdout; only -o may be -, and stdin feeds one input', () => {
  let r = cliRaw(['quantize', '-', '-o', '-', '--json'], modelBytes);
  assert.equal(r.status, 1);
  assert.equal(r.stdout.length, 0, 'nothing on stdout');
  assert.equal(JSON.parse(r.stderr.slice(0, r.stderr.indexOf('\n}\n') + 2)).error.code, 'invalid_argument');
  r = cliRaw(['quantize', '-', '-o', '-', '--calibration', join(tmp, 'missing.npy')], modelBytes);
  assert.equal(r.status, 1);
  assert.equal(r.stdout.length, 0);
  assert.match(r.stderr, /cannot read calibration data/);
  r = cli('convert', model, '-o', join(tmp, 'x.tflite'), '--header', '-');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--header cannot be '-': only -o writes to stdout/);
  r = cliRaw(['evaluate', '-', '--data', '-'], modelBytes);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /only one input can be read from stdin/);
  r = cliRaw(['inspect', '-', '--json'], Buffer.alloc(0));
  assert.equal(r.status, 1);
  assert.equal(json(r).error.code, 'invalid_model');
});

test('inspect of several models: each printed; --json is one document with a list; a bad one fails alone', () => {
  const int8 = model.replace('model_float', 'model_int8_tf');
  const bad = join(tmp, 'bad.tflite');
  writeFileSync(bad, modelBytes.subarray(0, 100));
  let r = cli('inspect', model, int8);
  assert.equal(r.status, 0, r.stderr);
  assert.equal([...r.stdout.matchAll(/^\S+\.tflite: [\d,]+ bytes, (\w+)/gm)].map((m) => m[1]).join(), 'float,int8');
  r = cli('inspect', model, bad, int8, '--json');
  assert.equal(r.status, 1);
  const j = json(r);
  assert.deepEqual(j.models.map((m) => m.path), [model, bad, int8]);
  assert.deepEqual(j.models.map((m) => m.summary?.precision ?? m.error.code), ['float', 'invalid_model', 'int8']);
  assert.equal(j.error.code, 'invalid_model');
  assert.match(j.error.message, /^1 of 3 models failed; .*bad\.tflite: /);
  r = cli('inspect', model, bad);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /model_float\.tflite: 8,576 bytes/, 'the good model is still printed');
  assert.match(r.stderr, /^error: .*bad\.tflite: /m);
  assert.equal(cli('inspect').status, 1);
});

test('--quiet: no progress or information on stderr, the result still on stdout, errors still on stderr', () => {
  const args = ['optimize', model, '-o', join(tmp, 'quiet.tflite'), '--sparsity', '0.3', '--data', testX, '--labels', testY];
  const loud = cli(...args);
  assert.equal(loud.status, 0, loud.stderr);
  assert.match(loud.stderr, /^prune: global-magnitude, sparsity 0.3\nquantize: static int8\nevaluate: /);
  const quiet = cli(...args, '--quiet');
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stderr, '');
  const timeless = (text) => text.replace(/[\d.]+ s\b/g, 'T').replace(/^latency.*$/m, '');
  assert.equal(timeless(quiet.stdout), timeless(loud.stdout), 'the same report (times aside)');
  const piped = cliRaw(['quantize', '-', '-o', '-', '--calibration', calib, '-q'], modelBytes);
  assert.equal(piped.status, 0);
  assert.equal(piped.stderr, '', 'with -o - the text report is information: --quiet drops it');
  assert.ok(isTflite(piped.stdout));
  const failed = cli('inspect', join(tmp, 'missing.tflite'), '--quiet');
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /cannot read model/);
});

test('-o - into a pipe closed by its reader: exit 1 with a message, no stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const { cliPath, root } = await import('./helpers.mjs');
  const child = spawn(process.execPath, [cliPath, 'convert', model, '-o', '-'], { cwd: root });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 1, stderr);
  assert.match(stderr, /^error: cannot write the model to 'stdout': the reading end of the pipe is closed\n$/);
});

test('on a terminal, progress bars show; --quiet hides them', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { cliPath } = await import('./helpers.mjs');
  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) {
    t.diagnostic('util-linux script(1) not installed: the terminal case is SKIPPED');
    return;
  }
  // script(1) runs the CLI on a pseudo-terminal and copies what it shows.
  const onTerminal = (...flags) => {
    const command = [process.execPath, cliPath, 'optimize', model, '-o', join(tmp, 'tty.tflite'), '--calibration', calib, ...flags].join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout);
    return r.stdout;
  };
  const bar = /quantize calibrate \[#+\.*\] \d+% \d+\/200/;
  const loud = onTerminal();
  assert.match(loud, bar);
  assert.match(loud, /^quantize: static int8/m);
  const quiet = onTerminal('--quiet');
  assert.doesNotMatch(quiet, bar);
  assert.doesNotMatch(quiet, /^quantize: static int8/m);
  assert.match(quiet, /^wrote .*tty\.tflite/m, 'the report is still shown');
  const binary = spawnSync('script', ['-qec', `${process.execPath} ${cliPath} convert ${model} -o -`, '/dev/null'], { encoding: 'utf8' });
  assert.match(binary.stdout, /-o - writes the binary model to stdout, which is a terminal/);
  assert.doesNotMatch(binary.stdout, /TFL3/, 'no model bytes on the terminal');
});
