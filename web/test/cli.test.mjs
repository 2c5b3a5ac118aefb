// The CLI: commands, JSON output, exit codes, and hostile files.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cliPath, fixture, maxAbsDiff, parseNpy, root } from './helpers.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'tinyml-cli-'));
const cli = (...args) => spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', cwd: root });
/** The summary of one model, from `inspect --json`. */
const summaryOf = (path) => JSON.parse(cli('inspect', path, '--json').stdout).models[0].summary;
const model = join(root, 'tests/fixtures/cnn/model_float.tflite');

test('help for the tool and each command', () => {
  const r = cli('--help');
  assert.equal(r.status, 0);
  for (const c of ['inspect', 'run', 'convert']) {
    assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
    const h = cli(c, '--help');
    assert.equal(h.status, 0, c);
    assert.match(h.stdout, /Usage: tinyml-optimizer/);
  }
  assert.equal(cli('nonsense').status, 1);
});

test('inspect prints operators, layers, tensors and totals', () => {
  const r = cli('inspect', model);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /CONV_2D x2/);
  assert.match(r.stdout, /MACs: 37,024/);
  assert.match(r.stdout, /layers:/);
  assert.match(r.stdout, /tensors:/);
  const j = summaryOf(model);
  assert.equal(j.macs, 37024);
  assert.equal(j.layers.length, 6);
});

test('inspect shows quantization parameters of int8 models', () => {
  const r = cli('inspect', join(root, 'tests/fixtures/cnn/model_int8_tf.tflite'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /int8/);
  assert.match(r.stdout, /per-channel\(8, axis 0\)/);
  assert.match(r.stdout, /input: \S+ i8 \[1, 16, 16, 1\] scale [0-9.e-]+ zp -?\d+/);
});

test('run writes outputs that match LiteRT', () => {
  const out = join(tmp, 'y.npy');
  const r = cli('run', model, '--input', join(root, 'tests/fixtures/cnn/inputs.npy'), '--output', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ran 8 samples/);
  const got = parseNpy(readFileSync(out));
  const want = parseNpy(fixture('cnn/outputs_float.npy'));
  assert.ok(maxAbsDiff(got.data, want.data) < 1e-5);
});

test('convert writes a model that reads back the same', () => {
  const out = join(tmp, 'copy.tflite');
  assert.equal(cli('convert', model, '-o', out).status, 0);
  const a = summaryOf(model);
  const b = summaryOf(out);
  assert.equal(a.layers.length, 6);
  assert.deepEqual(b.layers, a.layers);
});

test('usage and input errors exit 1 with a message; JSON mode reports the code', () => {
  let r = cli('run', model);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--input X.npy is required/);
  r = cli('inspect', join(tmp, 'missing.tflite'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no such file/);
  r = cli('run', model, '--input', model, '--output', join(tmp, 'z.npy'), '--json');
  assert.equal(r.status, 1);
  assert.equal(JSON.parse(r.stdout).error.code, 'invalid_npy');
  r = cli('inspect', model, '--bogus');
  assert.equal(r.status, 1);
});

test('hostile model files are user errors, never crashes', () => {
  const good = readFileSync(model);
  const cases = {
    empty: new Uint8Array(0),
    tiny: good.subarray(0, 6),
    truncated: good.subarray(0, good.length / 2),
    random: Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24),
    hugeOffset: (() => {
      const b = new Uint8Array(good);
      new DataView(b.buffer).setUint32(0, 0x7fffffff, true);
      return b;
    })(),
    bitFlipped: (() => {
      const b = new Uint8Array(good);
      for (let i = 8; i < b.length; i += 97) b[i] ^= 0x5a;
      return b;
    })(),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const p = join(tmp, `${name}.tflite`);
    writeFileSync(p, bytes);
    const r = cli('inspect', p, '--json');
    assert.equal(r.status, 1, `${name}: ${r.stderr}`);
    const err = JSON.parse(r.stdout).error;
    assert.equal(err.code, 'invalid_model', `${name}: ${err.message}`);
    assert.ok(err.message.length > 20, name);
  }
});

test('quantize, prune and evaluate write models and reports; bad options are usage errors', () => {
  const calib = join(root, 'tests/fixtures/data/patterns_calib.npy');
  const x = join(root, 'tests/fixtures/data/patterns_test_x.npy');
  const y = join(root, 'tests/fixtures/data/patterns_test_y.npy');
  const pruned = join(tmp, 'pruned.tflite');
  let r = cli('prune', model, '-o', pruned, '--method', 'layer-magnitude', '--sparsity', '0.3', '--data', x, '--labels', y,
    '--report', join(tmp, 'prune.json'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /layer-magnitude, unstructured/);
  assert.match(r.stdout, /accuracy/);
  const pr = JSON.parse(readFileSync(join(tmp, 'prune.json'), 'utf8'));
  assert.ok(Math.abs(pr.achievedSparsity - 0.3) < 0.01);
  assert.equal(pr.evaluation.samples, 1000);
  const quantized = join(tmp, 'pruned_int8.tflite');
  r = cli('quantize', pruned, '-o', quantized, '--calibration', calib, '--calibration-method', 'minmax', '--json');
  assert.equal(r.status, 0, r.stderr);
  const q = JSON.parse(r.stdout);
  assert.equal(q.report.calibration, 'minmax');
  assert.equal(summaryOf(quantized).precision, 'int8');
  r = cli('evaluate', quantized, '--data', x, '--labels', y, '--reference', model, '--json');
  assert.equal(r.status, 0, r.stderr);
  const e = JSON.parse(r.stdout).report;
  assert.ok(e.accuracy > 0.5 && e.reference.top1Agreement > 0.5, r.stdout);
  r = cli('prune', model, '-o', pruned, '--sparsity', '0.5', '--method', 'global-gradient');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /needs --data/);
  r = cli('prune', model, '-o', pruned, '--sparsity', '2');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /fraction in \[0, 1\)/);
  r = cli('prune', model, '-o', pruned, '--sparsity', '0.5', '--method', 'biggest');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--method must be one of/);
  r = cli('quantize', model, '-o', quantized);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /needs --calibration/);
});

test('--header writes TFLite Micro firmware files (.h and .cc) that a C++ compiler builds and links', (t) => {
  const out = join(tmp, 'copy.tflite');
  const header = join(tmp, 'fw-copy.h');
  const r = cli('convert', model, '-o', out, '--header', header);
  assert.equal(r.status, 0, r.stderr);
  const h = readFileSync(header, 'utf8');
  const cc = readFileSync(join(tmp, 'fw-copy.cc'), 'utf8');
  const size = readFileSync(out).length;
  assert.match(h, /extern const unsigned char g_copy\[\];/);
  assert.match(h, /constexpr int kTensorArenaSize = \d+;/);
  assert.match(h, /inline bool RegisterOps\(Resolver& resolver\)/);
  assert.match(cc, /#include "fw-copy.h"/, 'the .cc includes the header by the name it was written under');
  assert.match(cc, /alignas\(16\) const unsigned char g_copy\[\] = \{/);
  assert.match(cc, new RegExp(`g_copy_len = ${size};`));
  const main = join(tmp, 'main.cc');
  writeFileSync(main, `#include "fw-copy.h"
#include <cstdint>
int main() {
  if (g_copy_len != ${size} || copy::kTensorArenaSize < 1024) return 1;
  if (reinterpret_cast<std::uintptr_t>(g_copy) % 16 != 0) return 2;
  return g_copy[4] == 'T' && g_copy[5] == 'F' && g_copy[6] == 'L' && g_copy[7] == '3' ? 0 : 3;
}
`);
  if (spawnSync('sh', ['-c', 'command -v c++']).status !== 0) {
    t.diagnostic('c++ not installed: compiling the firmware files SKIPPED');
    return;
  }
  const exe = join(tmp, 'main_fw');
  const c = spawnSync('c++', ['-std=c++17', '-Wall', '-Werror', '-o', exe, main, join(tmp, 'fw-copy.cc')], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.equal(spawnSync(exe).status, 0, 'the array is misaligned, mis-sized or not the model');
});

/** A float32 .npy of `shape` with values `f(i)`. */
function npyF32(shape, f) {
  const n = shape.reduce((a, b) => a * b, 1);
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0, header.length & 255, header.length >> 8]), Buffer.from(header, 'latin1')]);
  return Buffer.concat([head, Buffer.from(Float32Array.from({ length: n }, (_, i) => f(i)).buffer)]);
}

test('--target picks whose int8 arithmetic runs; a bad target is refused', () => {
  const int8 = join(root, 'tests/fixtures/mlp/model_int8_tf.tflite');
  const x = join(root, 'tests/fixtures/mlp/inputs.npy');
  const outs = {};
  for (const target of ['tflm', 'litert']) {
    const o = join(tmp, `target_${target}.npy`);
    const r = cli('run', int8, '--input', x, '--output', o, '--raw', '--target', target);
    assert.equal(r.status, 0, r.stderr);
    outs[target] = readFileSync(o);
  }
  // The stored LiteRT outputs equal the litert target's, byte for byte.
  const want = parseNpy(readFileSync(join(root, 'tests/fixtures/mlp/outputs_int8_tf.npy')));
  assert.deepEqual(parseNpy(outs.litert).data, want.data);
  // On a model with TANH, LOGISTIC, MUL and SUB quantized by us, the two arithmetics differ.
  const calib = join(tmp, 'ops_calib.npy');
  let seed = 7;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 6 - 3;
  writeFileSync(calib, npyF32([500, 8, 8, 3], () => uniform() + uniform()));
  const q = join(tmp, 'ops_q.tflite');
  const qr = cli('quantize', join(root, 'tests/fixtures/ops/model_float.tflite'), '-o', q, '--calibration', calib);
  assert.equal(qr.status, 0, qr.stderr);
  const runs = ['tflm', 'litert'].map((target) => {
    const o = join(tmp, `ops_${target}.npy`);
    assert.equal(cli('run', q, '--input', calib, '--output', o, '--raw', '--target', target).status, 0);
    return parseNpy(readFileSync(o)).data;
  });
  assert.ok(runs[0].some((v, i) => v !== runs[1][i]), 'TFLM and LiteRT arithmetic give identical outputs here');
  const r = cli('run', int8, '--input', x, '--output', join(tmp, 't.npy'), '--target', 'tpu');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--target must be one of tflm, litert; got 'tpu'/);
});

test('--header or --report naming -o or the input is refused; nothing is written', () => {
  const copy = join(tmp, 'refuse.tflite');
  writeFileSync(copy, readFileSync(model));
  const before = readFileSync(copy);
  let r = cli('convert', copy, '-o', copy, '--header', copy);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--header and -o name the same file/);
  assert.deepEqual(readFileSync(copy), before, 'the model is untouched');
  const out = join(tmp, 'refuse_out.tflite');
  r = cli('convert', copy, '-o', out, '--header', copy);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--header names the input MODEL/);
  assert.deepEqual(readFileSync(copy), before);
  assert.equal(existsSync(out), false, '-o was not written either');
  r = cli('prune', copy, '-o', out, '--sparsity', '0.5', '--report', copy);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--report names the input MODEL/);
  r = cli('run', copy, '--input', join(root, 'tests/fixtures/cnn/inputs.npy'), '--output', copy);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--output names the input MODEL/);
  assert.deepEqual(readFileSync(copy), before);
});

test('-o may replace the model it reads, atomically', () => {
  const copy = join(tmp, 'inplace.tflite');
  writeFileSync(copy, readFileSync(model));
  const r = cli('convert', copy, '-o', copy, '--header', join(tmp, 'inplace.h'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cli('inspect', copy).status, 0);
  assert.deepEqual(readdirSync(tmp).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
});

test('a CLI killed while it replaces its input never leaves a truncated or missing model', async () => {
  const copy = join(tmp, 'killed.tflite');
  writeFileSync(copy, readFileSync(model));
  const valid = (bytes) => bytes.length > 1000 && String.fromCharCode(...bytes.subarray(4, 8)) === 'TFL3';
  // Kill at staggered moments of `convert X -o X` (start-up, reading, writing, renaming).
  for (const delay of [30, 80, 150, 220, 300, 380, 460, 550]) {
    const child = spawn(process.execPath, [cliPath, 'convert', copy, '-o', copy], { cwd: root, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await exited;
    const bytes = readFileSync(copy);
    assert.ok(valid(bytes), `after a kill at ${delay} ms the model is ${bytes.length} bytes`);
    assert.equal(cli('inspect', copy).status, 0, `after a kill at ${delay} ms the model reads`);
  }
  for (const n of readdirSync(tmp).filter((n) => n.startsWith('.killed.tflite.'))) unlinkSync(join(tmp, n));
});

test('file-system errors exit 1 with the path and the reason, without a stack trace', () => {
  const notADir = join(tmp, 'plain-file');
  writeFileSync(notADir, 'x');
  const cases = [
    [['convert', model, '-o', join(tmp, 'no/such/dir/out.tflite')], /cannot write '.*no\/such\/dir\/out\.tflite': no such file or directory/],
    [['convert', model, '-o', join(notADir, 'out.tflite')], /cannot write '.*plain-file\/out\.tflite': a parent of it is not a directory/],
    [['convert', model, '-o', tmp], /cannot write '.*': it is a directory/],
    [['inspect', tmp], /cannot read model '.*': it is a directory/],
    [['run', model, '--input', join(tmp, 'missing.npy'), '--output', join(tmp, 'o.npy')], /cannot read input '.*missing\.npy': no such file or directory/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const j = JSON.parse(cli(...args, '--json').stdout);
    assert.equal(j.error.code, 'file_error');
    assert.ok(j.error.path && j.error.reason, JSON.stringify(j.error));
  }
});
