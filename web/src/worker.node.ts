/** Node worker-thread entry: serves API requests with the wasm engine read from the package. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parentPort } from 'node:worker_threads';
import { serve } from './handlers.js';

if (!parentPort) throw new Error('worker.node.js must run in a worker thread');
const port = parentPort;
const onMessage = serve({
  post: (msg, transfer) => port.postMessage(msg, transfer),
  readWasm: async (url) => readFile(fileURLToPath(url)),
});
port.on('message', (msg) => onMessage(msg));
