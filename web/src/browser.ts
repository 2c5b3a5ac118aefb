/** Browser entry: the API on a module Web Worker (or, with `worker: false`, in this thread). */
import { engineAssets, workerHref } from './assets.js';
import { Optimizer, type OptimizerOptions, type SpawnWorker } from './client.js';
import { mainThreadOptimizer } from './mainthread.js';
import { fetchWasm } from './fetch-wasm.js';
import { isCrossOrigin, startModuleWorker } from './worker-url.js';

/** The worker's file beside this module, spelled so that no bundler takes it for a second entry. */
const WORKER_FILE = ['.', 'worker.browser.js'].join('/');

/**
 * The package's own worker. Bundlers (Vite, webpack, esbuild, Parcel) recognise the literal
 * `new Worker(new URL('./worker.browser.js', import.meta.url), …)` and bundle the worker; when this
 * module itself was loaded from another origin (a CDN), the worker is started through a blob.
 */
function packageWorker(): Worker {
  const here = new URL(import.meta.url);
  if (isCrossOrigin(here.href)) return startModuleWorker(new URL(WORKER_FILE, here).href);
  return new Worker(new URL('./worker.browser.js', import.meta.url), { type: 'module' });
}

function workerSpawner(workerUrl: string | undefined): SpawnWorker {
  return ({ message, failure }) => {
    const w = workerUrl ? startModuleWorker(workerUrl) : packageWorker();
    w.onmessage = (e) => message(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      failure(new Error(e.message || 'the worker could not start'));
    };
    return {
      post: (msg, transfer) => w.postMessage(msg, transfer),
      terminate: () => w.terminate(),
      setBusy: () => {},
    };
  };
}

const absolute = (s: string) => new URL(s, globalThis.location?.href).href;

/** The engine in a Web Worker (default), or in this thread with `{ worker: false }`. */
export function createOptimizer(options: OptimizerOptions = {}): Optimizer {
  const wasm = engineAssets(options, absolute);
  if (options.worker === false) return mainThreadOptimizer(options, wasm, fetchWasm);
  return new Optimizer(workerSpawner(workerHref(options)), options, wasm);
}

export * from './index.js';
