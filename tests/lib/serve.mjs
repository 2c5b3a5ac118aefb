// What the browser tests share: a static HTTP server for pages and package files, and Debian's
// Chromium launched through playwright-core (no tool downloads a browser).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
];
const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.map': 'application/json',
};

/** Headless Chromium from $CHROMIUM (default /usr/bin/chromium), with `extraArgs` added. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...extraArgs] });
}

/** The file `url` names under `mounts` (URL prefix → folder; a folder gives its index.html), or null. */
function mountedFile(url, mounts) {
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (!url.startsWith(prefix)) continue;
    let file = normalize(join(dir, url.slice(prefix.length)));
    if (file !== dir && !file.startsWith(normalize(dir) + sep)) return null;
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    return existsSync(file) && statSync(file).isFile() ? file : null;
  }
  return null;
}

/**
 * A static server on 127.0.0.1 (a free port). `routes` maps exact paths to a file path or to
 * `{ type, body }`; `mounts` maps URL prefixes to folders served read-only (never outside them);
 * `cors` adds `access-control-allow-origin: *`; `onServe(file)` sees every file served.
 * Returns `{ url, port, close }`.
 */
export async function serveStatic({ routes = {}, mounts = {}, cors = false, onServe = () => {} } = {}) {
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const headers = cors ? { 'access-control-allow-origin': '*' } : {};
    const route = routes[url];
    if (route !== undefined && typeof route !== 'string') {
      return res.writeHead(200, { ...headers, 'content-type': route.type }).end(route.body);
    }
    const file = route ?? mountedFile(url, mounts);
    if (!file || !existsSync(file)) return res.writeHead(404, headers).end();
    onServe(file);
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return { url: `http://127.0.0.1:${port}/`, port, close: () => new Promise((r) => server.close(r)) };
}
