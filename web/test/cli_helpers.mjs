// Helpers of the CLI tests: running the CLI (text or binary, with stdin), fixtures and small .npy files.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, parseNpy, root } from './helpers.mjs';

export const version = JSON.parse(readFileSync(join(root, 'web/package.json'), 'utf8')).version;
export const model = join(root, 'tests/fixtures/cnn/model_float.tflite');
export const calib = join(root, 'tests/fixtures/data/patterns_calib.npy');
export const testX = join(root, 'tests/fixtures/data/patterns_test_x.npy');
export const testY = join(root, 'tests/fixtures/data/patterns_test_y.npy');

export const tempDir = (name) => mkdtempSync(join(tmpdir(), `tinyml-${name}-`));

/** Runs the CLI; `input` (bytes) is piped to stdin. stdout is a Buffer, stderr a string. */
export function cliRaw(args, input) {
  const r = spawnSync(process.execPath, [cliPath, ...args], { cwd: root, input, maxBuffer: 1 << 28 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** Runs the CLI with text output. */
export function cli(...args) {
  const r = cliRaw(args);
  return { ...r, stdout: r.stdout.toString('utf8') };
}

/** The JSON document a --json run printed on stdout. */
export function json(r) {
  try {
    return JSON.parse(r.stdout.toString());
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${r.status}): ${r.stdout.toString().slice(0, 300)}\n${r.stderr}`);
  }
}

function npyHeader(descr, shape) {
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  h += ' '.repeat(63 - ((10 + h.length) % 64)) + '\n';
  return Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0, h.length & 255, h.length >> 8]), Buffer.from(h, 'latin1')]);
}

/** The first `n` samples of the test set, written as X and Y .npy files in `dir`. */
export function firstSamples(dir, n) {
  const x = parseNpy(readFileSync(testX));
  const y = readFileSync(testY);
  const yHeader = y[8] | (y[9] << 8);
  const labels = new Int32Array(y.buffer.slice(y.byteOffset + 10 + yHeader, y.byteOffset + 10 + yHeader + n * 4));
  const row = x.data.length / x.shape[0];
  const paths = { x: join(dir, `x${n}.npy`), y: join(dir, `y${n}.npy`) };
  writeFileSync(paths.x, Buffer.concat([npyHeader('<f4', [n, ...x.shape.slice(1)]), Buffer.from(x.data.slice(0, n * row).buffer)]));
  writeFileSync(paths.y, Buffer.concat([npyHeader('<i4', [n]), Buffer.from(labels.buffer)]));
  return paths;
}
