/** Node entry: the API on a worker thread. */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Optimizer, type OptimizerOptions, type SpawnWorker } from './client.js';
import { OptimizerError } from './types.js';

const spawn: SpawnWorker = ({ message, failure }) => {
  const w = new Worker(new URL('./worker.node.js', import.meta.url));
  let terminated = false;
  w.on('message', message);
  w.on('error', (e) => failure(e));
  w.on('exit', (code) => {
    if (!terminated) failure(new OptimizerError('internal', `the worker stopped unexpectedly (exit code ${code})`));
  });
  w.unref();
  return {
    post: (msg, transfer) => w.postMessage(msg, transfer),
    terminate: () => {
      terminated = true;
      void w.terminate();
    },
    setBusy: (busy) => (busy ? w.ref() : w.unref()),
  };
};

/** The engine in a worker thread; long operations use every core unless `threads` says otherwise. */
export function createOptimizer(options?: OptimizerOptions): Optimizer {
  return new Optimizer(spawn, { threads: Math.min(availableParallelism(), 16), ...options });
}

export * from './index.js';
