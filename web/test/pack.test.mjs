// The packed npm package installs in an empty folder (no network: it has no dependencies) and its
// CLI and API work there.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { root } from './helpers.mjs';

test('npm pack → install in a fresh folder → CLI and API work', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tinyml-pack-'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(npm, ['pack', '--silent', '--pack-destination', dir], { cwd: join(root, 'web'), stdio: ['ignore', 'pipe', 'inherit'] });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack wrote a tarball');
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--silent', join(dir, tgz)], { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] });
  const model = join(root, 'tests/fixtures/cnn/model_float.tflite');
  const cli = spawnSync(join(app, 'node_modules/.bin/tinyml-optimizer'), ['inspect', model, '--json'], { cwd: app, encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).models[0].summary.precision, 'float');
  writeFileSync(
    join(app, 'use.mjs'),
    `import { readFileSync } from 'node:fs';
import { createOptimizer, toCHeader } from '@tinyml/optimizer';
const opt = createOptimizer();
const m = await opt.loadModel(readFileSync(${JSON.stringify(model)}));
const { model: q } = await m.quantize({ mode: 'dynamic' });
const bytes = await q.toBytes();
console.log(JSON.stringify({ precision: q.summary.precision, simd: (await opt.info()).simd, header: toCHeader(bytes).length > bytes.length }));
opt.terminate();
`,
  );
  const api = spawnSync(process.execPath, ['use.mjs'], { cwd: app, encoding: 'utf8' });
  assert.equal(api.status, 0, api.stderr);
  const out = JSON.parse(api.stdout);
  assert.equal(out.precision, 'hybrid');
  assert.match(out.simd, /simd/);
  assert.equal(out.header, true);
});
