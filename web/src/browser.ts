/** Browser entry: the API on a module Web Worker. */
import { Optimizer, type OptimizerOptions, type SpawnWorker } from './client.js';

const spawn: SpawnWorker = ({ message, failure }) => {
  const w = new Worker(new URL('./worker.browser.js', import.meta.url), { type: 'module' });
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

export function createOptimizer(options?: OptimizerOptions): Optimizer {
  return new Optimizer(spawn, options);
}

export * from './index.js';
