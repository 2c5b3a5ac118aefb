/** Node entry: the API on a worker thread (or, with `worker: false`, in this thread). */
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { engineAssets } from './assets.js';
import { Optimizer, type OptimizerOptions, type SpawnWorker } from './client.js';
import { mainThreadOptimizer } from './mainthread.js';
import { OptimizerError } from './types.js';
import { readWasmAt } from './wasm-file.js';

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

/** A URL as given, or a file path (relative to the working directory) as a file: URL. */
function absolute(s: string): string {
  if (/^[a-z][a-z0-9+.-]+:/i.test(s) && !(process.platform === 'win32' && /^[a-z]:[\\/]/i.test(s))) return new URL(s).href;
  const path = isAbsolute(s) ? s : resolve(s);
  const href = pathToFileURL(path).href;
  return /[\\/]$/.test(s) && !href.endsWith('/') ? `${href}/` : href;
}

/**
 * The engine in a worker thread (default), or in this thread with `{ worker: false }`. Long
 * operations use every core unless `threads` says otherwise (worker mode only).
 */
export function createOptimizer(options: OptimizerOptions = {}): Optimizer {
  const wasm = engineAssets(options, absolute);
  if (options.worker === false) return mainThreadOptimizer(options, wasm, readWasmAt);
  return new Optimizer(spawn, { threads: Math.min(availableParallelism(), 16), ...options }, wasm);
}

export * from './index.js';
