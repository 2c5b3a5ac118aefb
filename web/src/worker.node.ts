/** Node worker-thread entry: serves API requests with the wasm engine read from the package (or,
 * with role 'task', runs tasks for another worker's pool). */
import { fileURLToPath } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';
import { serve } from './handlers.js';
import type { TaskReply } from './pool.js';
import { readWasmAt } from './wasm-file.js';

if (!parentPort) throw new Error('worker.node.js must run in a worker thread');
const port = parentPort;

const onMessage = serve({
  post: (msg, transfer) => port.postMessage(msg, transfer),
  readWasm: readWasmAt,
  spawnTaskWorker: (init, onReply, onFailure) => {
    const w = new Worker(fileURLToPath(import.meta.url));
    let terminated = false;
    w.on('message', (m) => onReply(m as TaskReply));
    w.on('error', (e) => onFailure(e));
    w.on('exit', (code) => {
      if (!terminated) onFailure(new Error(`a task worker stopped unexpectedly (exit code ${code})`));
    });
    w.postMessage(init);
    return {
      post: (msg, transfer) => w.postMessage(msg, transfer),
      terminate: () => {
        terminated = true;
        void w.terminate();
      },
    };
  },
});
port.on('message', (msg) => onMessage(msg));
