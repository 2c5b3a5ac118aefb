/** Web Worker entry: serves API requests with the wasm engine fetched from the package. */
import { serve } from './handlers.js';

interface WorkerScope {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
}
const scope = self as unknown as WorkerScope;

const onMessage = serve({
  post: (msg, transfer) => scope.postMessage(msg, transfer),
  readWasm: async (url) => {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`could not load the engine from ${url} (HTTP ${r.status})`);
    return r.arrayBuffer();
  },
});
scope.onmessage = (e) => onMessage(e.data);
