// The published declarations enforce what the options need (static quantization: calibration data;
// gradient pruning: data), camelCase report keys and the error-code union: types/options.ts is
// type-checked against dist/*.d.ts, where every `@ts-expect-error` line must be an error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const file = fileURLToPath(new URL('./types/options.ts', import.meta.url));

test('option, report and error-code types accept what is valid and reject what is not', () => {
  const args = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext'];
  const r = spawnSync(process.execPath, [tsc, ...args, '--lib', 'ES2022,DOM', '--types', 'node', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
