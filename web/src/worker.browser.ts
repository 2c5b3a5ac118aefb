/** Web Worker entry: serves API requests with the wasm engine fetched from the package (or, with
 * role 'task', runs tasks for another worker's pool). */
import { fetchWasm } from './fetch-wasm.js';
import { serve } from './handlers.js';
import type { TaskReply } from './pool.js';

interface WorkerScope {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
  location: { href: string };
  importScripts(...urls: string[]): void;
}
const scope = self as unknown as WorkerScope;

/**
 * Whether this worker runs as a module or a classic script: bundlers may turn the package's module
 * worker into a classic one (webpack does), and task workers must start the same way.
 * `importScripts()` with no URL does nothing in a classic worker and throws in a module worker.
 */
function ownType(): 'module' | 'classic' {
  try {
    scope.importScripts();
    return 'classic';
  } catch {
    return 'module';
  }
}

const onMessage = serve({
  post: (msg, transfer) => scope.postMessage(msg, transfer),
  readWasm: fetchWasm,
  spawnTaskWorker: (init, onReply, onFailure) => {
    // This worker's own script: its URL at run time (bundlers rewrite import.meta.url), or the
    // same-origin blob it was started from when the package is on another origin.
    const w = new Worker(scope.location.href, { type: ownType() });
    w.onmessage = (e) => onReply(e.data as TaskReply);
    w.onerror = (e) => {
      e.preventDefault();
      onFailure(new Error(e.message || 'a task worker could not start'));
    };
    w.postMessage(init);
    return { post: (msg, transfer) => w.postMessage(msg, transfer), terminate: () => w.terminate() };
  },
});
scope.onmessage = (e) => onMessage(e.data);
