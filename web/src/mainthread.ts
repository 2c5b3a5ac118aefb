/**
 * Book-keeping for the engine in the calling thread (`worker: false`), kept apart from the engine
 * itself (inprocess.ts), which is imported only on first use. A thread has one copy of the wasm
 * glue, so all main-thread optimizers of a thread share one engine instance and must agree on the
 * options that set it up.
 */
import { Optimizer, type OptimizerOptions, type SpawnWorker } from './client.js';
import type { EngineAssets } from './engine.js';
import type { Host } from './handlers.js';
import { OptimizerError } from './types.js';

let realmKey: string | null = null;

/** Checks that these options agree with the thread's engine instance (throws invalid_argument). */
export function claimRealm(
  o: { prefer?: string; maxMemory?: number; target?: string },
  wasm: EngineAssets | undefined,
): void {
  const key = JSON.stringify([o.prefer, o.maxMemory, o.target, wasm?.urls, Object.keys(wasm?.modules ?? {})]);
  realmKey ??= key;
  if (realmKey !== key) {
    throw new OptimizerError(
      'invalid_argument',
      'main-thread optimizers (worker: false) in one thread share one engine instance, so their prefer, maxMemory, target, wasmPaths and wasmModule must be the same',
    );
  }
}

/** A SpawnWorker whose implementation is imported on first use; messages wait until it is. */
export function lazySpawner(load: () => Promise<SpawnWorker>): SpawnWorker {
  let ready: Promise<SpawnWorker> | null = null;
  return (handlers) => {
    ready ??= load();
    let port: ReturnType<SpawnWorker> | null = null;
    let ended = false;
    const waiting: Parameters<ReturnType<SpawnWorker>['post']>[] = [];
    ready.then(
      (spawn) => {
        if (ended) return;
        port = spawn(handlers);
        for (const args of waiting.splice(0)) port.post(...args);
      },
      (e: Error) => handlers.failure(e),
    );
    return {
      post: (msg, transfer) => {
        if (port) port.post(msg, transfer);
        else waiting.push([msg, transfer]);
      },
      terminate: () => {
        ended = true;
        port?.terminate();
      },
      setBusy: () => {},
    };
  };
}

/** An optimizer whose engine runs in this thread (`{ worker: false }`), reading the wasm builds
 * with `readWasm`; the engine module is imported on first use. */
export function mainThreadOptimizer(options: OptimizerOptions, wasm: EngineAssets | undefined, readWasm: Host['readWasm']): Optimizer {
  claimRealm(options, wasm);
  const spawn = lazySpawner(() => import('./inprocess.js').then((m) => m.inProcess(readWasm)));
  return new Optimizer(spawn, { ...options, threads: 1 }, wasm);
}
