/**
 * The engine in the calling thread, for code that is already in a worker (or wants none): the
 * same request/response protocol as a worker, answered in-process. The wasm glue is one module
 * per thread (JavaScript realm), so every main-thread optimizer of a realm shares one wasm
 * instance: they must agree on the engine options, and after a trap the instance cannot be
 * replaced in this thread (calls then reject with `engine_crashed`; use a worker, or reload).
 * Cancelling stops a running call at its next task boundary and frees the models it held.
 */
import type { SpawnWorker, WorkerPort } from './client.js';
import { serve, type Host } from './handlers.js';
import type { Request, Response, WireError } from './protocol.js';
import { OptimizerError } from './types.js';

/** Set when the realm's instance trapped. */
let poisoned: WireError | null = null;

const CRASHED: WireError = {
  code: 'engine_crashed',
  message: 'the main-thread engine crashed earlier and a WebAssembly instance cannot be replaced in the same thread; use the worker mode, or reload',
};

/** A SpawnWorker whose "worker" is the protocol served in this thread. */
export function inProcess(readWasm: Host['readWasm']): SpawnWorker {
  return ({ message }) => {
    let terminated = false;
    const handles = new Set<number>();
    const deliver = (msg: Response) => queueMicrotask(() => !terminated && message(msg));
    const onMessage = serve({
      readWasm,
      post: (msg) => {
        if (!('id' in msg)) return;
        if (terminated) {
          // A progress report of a cancelled call: throwing ends its job at this task boundary.
          if (msg.type === 'progress') throw new OptimizerError('cancelled', 'cancelled');
          return;
        }
        if (msg.type === 'result' && !msg.ok && msg.fatal) poisoned ??= msg.error;
        const handle = msg.type === 'result' && msg.ok ? (msg.value as { handle?: unknown } | null)?.handle : undefined;
        if (typeof handle === 'number') handles.add(handle);
        deliver(msg);
      },
    });
    const port: WorkerPort = {
      post: (msg) => {
        const req = msg as Request;
        if (poisoned && 'method' in req) {
          deliver({ id: req.id, type: 'result', ok: false, error: CRASHED, fatal: true });
          return;
        }
        if ('method' in req && req.method === 'release') handles.delete((req.args as { handle: number }).handle);
        onMessage(req);
      },
      terminate: () => {
        if (terminated) return;
        terminated = true;
        // Free what this engine's models hold in the shared instance (queued after any running call).
        for (const handle of handles) onMessage({ id: -handle, method: 'release', args: { handle } });
      },
      setBusy: () => {},
    };
    return port;
  };
}
