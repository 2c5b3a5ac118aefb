// Shared set-up for browser tests: serve the built app (www/dist) with Vite's preview server and
// drive Debian's Chromium through playwright-core. No tool downloads a browser.
import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { preview } from 'vite';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const outDir = fileURLToPath(new URL('../out/', import.meta.url));
mkdirSync(outDir, { recursive: true });

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
];

export const referenceDir = process.env.TINYML_REFERENCE_DIR ?? join(root, '..', 'shared', 'reference');

function launch(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...extraArgs] });
}

/**
 * A bare page that runs `script` (an ES module) against the package's browser build, served from
 * web/dist on localhost; `/file/<i>` serves `files[i]`. For engine tests and benchmarks.
 * Options: `mounts` maps URL prefixes (`'/ort/'`) to directories served read-only, `args` adds
 * Chromium flags, and `served` (an array) receives the path of every file served.
 */
export async function startPackagePage(script, files = [], { mounts = {}, args = [], served = [] } = {}) {
  const page = `<!doctype html><meta charset="utf-8"><script type="module">${script}</script>`;
  const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
  const webDir = join(root, 'web');
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (url === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    let file;
    if (url.startsWith('/web/')) file = normalize(join(root, url));
    if (url.startsWith('/file/')) file = files[Number(url.slice(6))];
    let mounted = false;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (!url.startsWith(prefix)) continue;
      file = normalize(join(dir, url.slice(prefix.length)));
      mounted = file.startsWith(normalize(dir) + '/');
    }
    const inWeb = file?.startsWith(webDir + '/');
    if (!file || (!inWeb && !mounted && !files.includes(file)) || !existsSync(file) || !statSync(file).isFile()) {
      return res.writeHead(404).end();
    }
    served.push(file);
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await launch(args);
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => window.ready, null, { timeout: 60_000 });
  return {
    tab,
    errors,
    browserVersion: browser.version(),
    async close() {
      await browser.close();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function startApp() {
  const server = await preview({ root: `${root}www`, logLevel: 'silent', preview: { port: 0, host: '127.0.0.1' } });
  const url = server.resolvedUrls.local[0];
  const browser = await launch();
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  return {
    url,
    page,
    requests,
    consoleErrors,
    async close() {
      await browser.close();
      await new Promise((r) => server.httpServer.close(r));
    },
  };
}
