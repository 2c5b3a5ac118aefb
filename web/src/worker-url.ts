/**
 * Starting module workers from any origin. Browsers refuse to construct a worker whose script is on
 * another origin (a CDN), but a same-origin `blob:` module may import a cross-origin module (with
 * CORS, which CDNs send). So a cross-origin script is started through a one-line blob module that
 * imports it; inside, the worker's `self.location` is that blob URL, which also starts its task
 * workers. The blob URLs are kept (not revoked) for that reason: one per distinct script.
 */

const blobs = new Map<string, string>();

function pageOrigin(): string | undefined {
  return (globalThis as { location?: { origin?: string } }).location?.origin;
}

function pageHref(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href;
}

/** Whether `href` (absolute) is on another origin than this page or worker. */
export function isCrossOrigin(href: string): boolean {
  const u = new URL(href);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  return u.origin !== pageOrigin();
}

/** A URL a module worker can be constructed from: `href` itself when same-origin, else a blob. */
function startableUrl(href: string): string {
  const absolute = new URL(href, pageHref()).href;
  if (!isCrossOrigin(absolute)) return absolute;
  let blob = blobs.get(absolute);
  if (!blob) {
    const source = `import ${JSON.stringify(absolute)};\n`;
    blob = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    blobs.set(absolute, blob);
  }
  return blob;
}

/** A module worker running `href`, from any origin. */
export function startModuleWorker(href: string): Worker {
  return new Worker(startableUrl(href), { type: 'module' });
}
