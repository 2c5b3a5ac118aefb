// Builds and runs the example projects against the PACKED package (npm pack of web/, extracted
// into tests/examples/node_modules): the package's files (source maps, declarations without the
// DOM lib), a plain Node script, a Vite app and a webpack 5 app (built with the bundlers from the
// root node_modules, then loaded in headless Chromium from a local static server), and the package
// loaded from another origin (a CDN). Each quantizes a fixture model end to end and checks the
// result. Needs `scripts/setup.sh` first (web/dist and web/wasm built). Offline: nothing is
// installed from a registry.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, relative, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { launchChromium, serveStatic } from '../lib/serve.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const fixtures = join(root, 'tests', 'fixtures');
const installed = join(here, 'node_modules', '@tinyml', 'optimizer');

const timings = [];
async function step(name, f) {
  const t0 = performance.now();
  process.stdout.write(`• ${name} … `);
  await f();
  const s = (performance.now() - t0) / 1000;
  timings.push([name, s]);
  console.log(`ok (${s.toFixed(1)} s)`);
}

/** npm pack of web/, extracted where the examples resolve `@tinyml/optimizer` from. */
function packAndInstall() {
  const dir = mkdtempSync(join(tmpdir(), 'tinyml-examples-'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(npm, ['pack', '--silent', '--pack-destination', dir], { cwd: join(root, 'web'), stdio: ['ignore', 'pipe', 'inherit'] });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack wrote a tarball');
  execFileSync('tar', ['xzf', join(dir, tgz), '-C', dir]);
  rmSync(installed, { recursive: true, force: true });
  mkdirSync(join(installed, '..'), { recursive: true });
  cpSync(join(dir, 'package'), installed, { recursive: true });
  rmSync(dir, { recursive: true, force: true });
}

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

/** sideEffects, and every source map's sources either in the package or inlined. */
function checkPackageFiles() {
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  assert.equal(pkg.sideEffects, false);
  const js = filesUnder(join(installed, 'dist')).filter((f) => f.endsWith('.js'));
  assert.ok(js.length > 5);
  for (const file of js) {
    const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(file, 'utf8'));
    assert.ok(m, `${relative(installed, file)} names its source map`);
    const mapFile = join(file, '..', m[1]);
    assert.ok(existsSync(mapFile), `${relative(installed, mapFile)} is in the package`);
    const map = JSON.parse(readFileSync(mapFile, 'utf8'));
    map.sources.forEach((src, i) => {
      const inPackage = normalize(join(mapFile, '..', map.sourceRoot ?? '', src)).startsWith(installed + sep) && existsSync(join(mapFile, '..', src));
      assert.ok(inPackage || typeof map.sourcesContent?.[i] === 'string', `${relative(installed, mapFile)}: source ${src} resolves`);
    });
  }
}

/** A consumer .ts compiles against the package's declarations with lib es2022 only. */
function checkTypes() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const config of ['tsconfig.json', 'tsconfig.bundler.json']) {
    const r = spawnSync(process.execPath, [tsc, '-p', join(here, 'types', config)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc -p types/${config}:\n${r.stdout}${r.stderr}`);
  }
}

function runNodeExample() {
  const r = spawnSync(
    process.execPath,
    ['main.mjs', join(fixtures, 'cnn/model_float.tflite'), join(fixtures, 'data/patterns_calib.npy')],
    { cwd: join(here, 'node'), encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.precision, 'int8');
  assert.equal(out.reportMode, 'static');
  assert.deepEqual(out.outputShape, [1, 10]);
  assert.equal(out.outputType, 'Float32Array');
}

let browser;
/** Loads `url` in Chromium and returns the page's window.result. */
async function resultOf(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.result !== undefined, null, { timeout: 120_000 }).catch(() => {});
    const result = await page.evaluate(() => window.result);
    assert.ok(result, `no result from ${url}; page errors: ${errors.join('; ') || 'none'}`);
    return result;
  } finally {
    await page.close();
  }
}

function checkAppResult(r) {
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.precision, 'int8');
  assert.equal(r.reportMode, 'static');
  assert.ok(r.progress > 0, 'progress was reported');
  assert.deepEqual(r.outputShape, [1, 10]);
  assert.equal(r.outputType, 'Float32Array');
}

async function runBrowserApp(dir) {
  const server = await serveStatic({ mounts: { '/fixtures/': fixtures, '/': dir } });
  try {
    checkAppResult(await resultOf(server.url));
  } finally {
    await server.close();
  }
}

async function buildVite() {
  const { build } = await import('vite');
  const dir = join(here, 'vite');
  await build({ root: dir, logLevel: 'warn', build: { outDir: join(dir, 'dist'), emptyOutDir: true } });
}

/** The Vite dev server (no build): the app from source, /fixtures/ served by a middleware. */
async function runViteDev() {
  const { createServer: viteServer } = await import('vite');
  const fixtureFiles = {
    name: 'fixtures',
    configureServer(server) {
      server.middlewares.use('/fixtures', (req, res) => {
        const file = normalize(join(fixtures, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
        if (!file.startsWith(fixtures + sep) || !existsSync(file)) return res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(file));
      });
    },
  };
  const server = await viteServer({ root: join(here, 'vite'), logLevel: 'warn', plugins: [fixtureFiles], server: { host: '127.0.0.1', port: 0 } });
  await server.listen();
  try {
    checkAppResult(await resultOf(server.resolvedUrls.local[0]));
  } finally {
    await server.close();
  }
}

async function buildWebpack() {
  const { default: webpack } = await import('webpack');
  const { default: config } = await import('./webpack/webpack.config.mjs');
  const stats = await new Promise((resolve, reject) => webpack(config, (err, s) => (err ? reject(err) : resolve(s))));
  assert.ok(!stats.hasErrors(), stats.toString({ all: false, errors: true }));
}

async function runCdn() {
  const cdn = await serveStatic({ mounts: { '/': installed }, cors: true });
  const page = await serveStatic({
    mounts: { '/fixtures/': fixtures, '/wasm-copy/': join(installed, 'wasm'), '/': join(here, 'cdn') },
    routes: { '/config.js': { type: 'text/javascript', body: '' } },
  });
  // The page's origin differs from the package's: other port, and "localhost" instead of the IP.
  const pageUrl = page.url.replace('127.0.0.1', 'localhost');
  try {
    const html = `${pageUrl}?cdn=${encodeURIComponent(cdn.url)}`;
    const pageObj = await browser.newPage();
    await pageObj.addInitScript((u) => (window.CDN = u), cdn.url);
    const errors = [];
    pageObj.on('pageerror', (e) => errors.push(String(e)));
    await pageObj.goto(html);
    await pageObj.waitForFunction(() => window.result !== undefined, null, { timeout: 240_000 }).catch(() => {});
    const r = await pageObj.evaluate(() => window.result);
    await pageObj.close();
    assert.ok(r, `no result; page errors: ${errors.join('; ') || 'none'}`);
    assert.deepEqual(Object.keys(r).sort(), ['defaultWorker', 'inUserWorker', 'mainThread', 'wasmPaths', 'workerUrlAndModule']);
    for (const [name, v] of Object.entries(r)) {
      assert.equal(v.error, undefined, `${name}: ${v.error}`);
      assert.equal(v.precision, 'int8', name);
    }
    assert.equal(r.workerUrlAndModule.flavor, 'simd', 'the simd module given was used');
  } finally {
    await cdn.close();
    await page.close();
  }
}

const t0 = performance.now();
await step('npm pack web/ → tests/examples/node_modules/@tinyml/optimizer', packAndInstall);
await step('package files: sideEffects, source maps resolve', checkPackageFiles);
await step('declarations compile with lib es2022 only (NodeNext and Bundler resolution)', checkTypes);
await step('plain Node script: quantize', runNodeExample);
await step('Vite build', buildVite);
await step('webpack 5 build', buildWebpack);
browser = await launchChromium();
try {
  await step('Vite app in Chromium: quantize', () => runBrowserApp(join(here, 'vite', 'dist')));
  await step('Vite dev server in Chromium: quantize', runViteDev);
  await step('webpack app in Chromium: quantize', () => runBrowserApp(join(here, 'webpack')));
  await step('from another origin (CDN) in Chromium: default worker, workerUrl + wasmModule, wasmPaths, worker: false on the page and in a worker', runCdn);
} finally {
  await browser.close();
}
console.log(`examples passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
