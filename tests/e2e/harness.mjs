// Shared set-up for browser tests: serve the built app (www/dist) with Vite's preview server and
// drive Debian's Chromium through playwright-core. No tool downloads a browser.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preview } from 'vite';
import { launchChromium as launch, serveStatic } from '../lib/serve.mjs';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const outDir = fileURLToPath(new URL('../out/', import.meta.url));
mkdirSync(outDir, { recursive: true });

export const referenceDir = process.env.TINYML_REFERENCE_DIR ?? join(root, '..', 'shared', 'reference');

/**
 * A bare page that runs `script` (an ES module) against the package's browser build, served from
 * web/dist on localhost; `/file/<i>` serves `files[i]`. For engine tests and benchmarks.
 * Options: `mounts` maps URL prefixes (`'/ort/'`) to directories served read-only, `args` adds
 * Chromium flags, and `served` (an array) receives the path of every file served.
 */
export async function startPackagePage(script, files = [], { mounts = {}, args = [], served = [] } = {}) {
  const page = `<!doctype html><meta charset="utf-8"><script type="module">${script}</script>`;
  const routes = { '/': { type: 'text/html', body: page } };
  files.forEach((file, i) => (routes[`/file/${i}`] = file));
  const server = await serveStatic({ routes, mounts: { ...mounts, '/web/': join(root, 'web') }, onServe: (f) => served.push(f) });
  const browser = await launch(args);
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  await tab.goto(server.url);
  await tab.waitForFunction(() => window.ready, null, { timeout: 60_000 });
  return {
    tab,
    errors,
    browserVersion: browser.version(),
    async close() {
      await browser.close();
      await server.close();
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
