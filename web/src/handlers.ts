/**
 * The worker side: loads the wasm engine once, keeps loaded models by handle, and answers requests.
 * Runs inside a Web Worker (worker.browser.ts) or a Node worker thread (worker.node.ts).
 */
import { loadEngine, type Flavor, type Wasm } from './engine.js';
import { buffersIn, type Request, type Response, type WireError, type WorkerInit } from './protocol.js';
import type { EvalReport, Latency, ModelSummary, NpyInfo, PruneOptions, PruneReport, QuantizeOptions, QuantReport } from './types.js';
import { ERROR_CODES, OptimizerError } from './types.js';

export interface Host {
  post(msg: Response, transfer: ArrayBuffer[]): void;
  readWasm(url: URL): Promise<BufferSource>;
}

interface Ctx {
  progress(stage: string, done: number, total: number): void;
}

type WasmModel = InstanceType<Wasm['Model']>;

interface State {
  wasm: Wasm;
  flavor: Flavor;
  models: Map<number, WasmModel>;
  next: number;
}

function bytesOf(b: ArrayBuffer | Uint8Array): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

function model(s: State, handle: number): WasmModel {
  const m = s.models.get(handle);
  if (!m) throw new OptimizerError('invalid_argument', `no loaded model with handle ${handle} (it was released, or the worker restarted)`);
  return m;
}

/** Keeps the model a quantize/prune call produced under a new handle; returns it with the report. */
function adopt(s: State, r: Wasm['ModelResult']['prototype'], what: string) {
  const m = r.takeModel();
  const report: unknown = r.report;
  r.free();
  if (!m) throw new OptimizerError('internal', `${what} returned no model`);
  const handle = s.next++;
  s.models.set(handle, m);
  return { handle, summary: m.summary() as ModelSummary, report };
}

function makeHandlers(s: State) {
  return {
    async info(_: Record<string, never>) {
      return { version: s.wasm.version(), simd: s.wasm.simdLevel(), int8Kernel: s.wasm.int8Kernel(), flavor: s.flavor, models: s.models.size };
    },
    async load(a: { bytes: ArrayBuffer | Uint8Array }) {
      const m = new s.wasm.Model(bytesOf(a.bytes));
      const handle = s.next++;
      s.models.set(handle, m);
      return { handle, summary: m.summary() as ModelSummary };
    },
    async summary(a: { handle: number }) {
      return model(s, a.handle).summary() as ModelSummary;
    },
    async run(a: { handle: number; input: ArrayBuffer | Uint8Array; raw: boolean }, ctx: Ctx) {
      const outs = model(s, a.handle).run(bytesOf(a.input), a.raw, (done: number, total: number) =>
        ctx.progress('run', done, total),
      ) as Uint8Array[];
      return { outputs: outs };
    },
    async quantize(a: { handle: number; calibration?: ArrayBuffer | Uint8Array; options: QuantizeOptions }, ctx: Ctx) {
      const r = model(s, a.handle).quantize(
        a.calibration ? bytesOf(a.calibration) : undefined,
        a.options,
        (stage: string, done: number, total: number) => ctx.progress(stage, done, total),
      );
      return adopt(s, r, 'quantization') as { handle: number; summary: ModelSummary; report: QuantReport };
    },
    async prune(
      a: { handle: number; data?: ArrayBuffer | Uint8Array; labels?: ArrayBuffer | Uint8Array; options: PruneOptions },
      ctx: Ctx,
    ) {
      const r = model(s, a.handle).prune(
        a.data ? bytesOf(a.data) : undefined,
        a.labels ? bytesOf(a.labels) : undefined,
        a.options,
        (stage: string, done: number, total: number) => ctx.progress(stage, done, total),
      );
      return adopt(s, r, 'pruning') as { handle: number; summary: ModelSummary; report: PruneReport };
    },
    async evaluate(
      a: { handle: number; data: ArrayBuffer | Uint8Array; labels?: ArrayBuffer | Uint8Array; reference?: number },
      ctx: Ctx,
    ) {
      const m = model(s, a.handle);
      const labels = a.labels ? bytesOf(a.labels) : undefined;
      const progress = (stage: string, done: number, total: number) => ctx.progress(stage, done, total);
      const r =
        a.reference === undefined
          ? m.evaluate(bytesOf(a.data), labels, progress)
          : m.evaluateAgainst(bytesOf(a.data), labels, model(s, a.reference), progress);
      return r as EvalReport;
    },
    async profile(a: { handle: number; input: ArrayBuffer | Uint8Array; iterations?: number }) {
      return model(s, a.handle).profile(bytesOf(a.input), a.iterations ?? 20) as { node: number; op: string; ms: number }[];
    },
    async benchmark(a: { handle: number; input: ArrayBuffer | Uint8Array; runs?: number }) {
      return model(s, a.handle).benchmark(bytesOf(a.input), a.runs ?? 100) as Latency;
    },
    async export(a: { handle: number }) {
      return { bytes: model(s, a.handle).toBytes() };
    },
    async release(a: { handle: number }) {
      const m = s.models.get(a.handle);
      if (m) {
        m.free();
        s.models.delete(a.handle);
      }
      return { released: m !== undefined };
    },
    async npyInfo(a: { bytes: ArrayBuffer | Uint8Array }) {
      return s.wasm.npyInfo(bytesOf(a.bytes)) as NpyInfo;
    },
    async npyFromF32(a: { shape: number[]; data: Float32Array }) {
      return { bytes: s.wasm.npyFromF32(Uint32Array.from(a.shape), a.data) };
    },
    /** Test hook: traps the engine on purpose, to test that the client recovers. */
    async testHookTrap(a: { kind: 'unreachable' | 'stack-overflow' }): Promise<never> {
      s.wasm.testHookTrap(a.kind);
      throw new OptimizerError('internal', `the test hook did not trap (kind '${a.kind}')`);
    },
  };
}

export type Handlers = ReturnType<typeof makeHandlers>;

/**
 * Whether `e` means the engine can no longer be trusted: a wasm trap (a panic aborts as
 * `unreachable`, so does running out of memory), a stack overflow (a RangeError in V8 and Safari,
 * an InternalError in Firefox), or a failed memory allocation (a RangeError).
 */
export function isTrap(e: unknown): boolean {
  if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) return true;
  const name = e && typeof e === 'object' && 'name' in e ? String((e as Error).name) : '';
  const message = e && typeof e === 'object' && 'message' in e ? String((e as Error).message) : '';
  return name === 'InternalError' || /out of memory|allocation failed|call stack/i.test(message);
}

function wireError(e: unknown, s: State | null): { error: WireError; fatal: boolean } {
  if (isTrap(e)) {
    let panic: string | undefined;
    try {
      panic = s?.wasm.takePanicMessage();
    } catch {
      // The instance is broken; the trap's own message will do.
    }
    const kind = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return {
      error: {
        code: 'engine_crashed',
        message: `the engine crashed (${panic ?? kind}). Please report it with the model that caused it`,
      },
      fatal: true,
    };
  }
  if (e && typeof e === 'object' && 'message' in e) {
    const o = e as WireError;
    const code = (o.code && ERROR_CODES.includes(o.code) ? o.code : 'internal') as WireError['code'];
    const { node, op, tensor, tensorName, requested, limit } = o;
    return { error: { code, message: String(o.message), node, op, tensor, tensorName, requested, limit }, fatal: false };
  }
  return { error: { code: 'internal', message: String(e) }, fatal: false };
}

/** Starts serving; returns the function to call with each incoming message. */
export function serve(host: Host): (msg: Request | WorkerInit) => void {
  let init: WorkerInit = { type: 'init' };
  let state: Promise<State> | null = null;
  let ready: State | null = null;
  let queue = Promise.resolve();
  /** Set after a trap: the wasm instance is not used again; the client replaces this worker. */
  let dead: WireError | null = null;

  const start = () =>
    (state ??= loadEngine(host.readWasm, init.prefer).then(({ wasm, flavor }) => {
      if (init.maxMemory !== undefined) wasm.setMaxMemory(init.maxMemory);
      ready = { wasm, flavor, models: new Map(), next: 1 };
      return ready;
    }));

  const handle = async (req: Request) => {
    if (dead) {
      host.post({ id: req.id, type: 'result', ok: false, error: dead, fatal: true }, []);
      return;
    }
    try {
      const s = await start();
      const handlers = makeHandlers(s) as unknown as Record<string, (a: unknown, c: Ctx) => Promise<unknown>>;
      const fn = handlers[req.method];
      if (!fn) throw new OptimizerError('invalid_argument', `unknown method '${String(req.method)}'`);
      const ctx: Ctx = {
        progress: (stage, done, total) => host.post({ id: req.id, type: 'progress', stage, done, total }, []),
      };
      const value = await fn(req.args, ctx);
      host.post({ id: req.id, type: 'result', ok: true, value }, buffersIn(value));
    } catch (e) {
      const { error, fatal } = wireError(e, ready);
      if (fatal) dead = error;
      host.post({ id: req.id, type: 'result', ok: false, error, fatal }, []);
      if (error.code === 'no_simd') state = null;
    }
  };

  return (msg) => {
    if ((msg as WorkerInit).type === 'init') {
      init = msg as WorkerInit;
      return;
    }
    // One request at a time: the engine is single-threaded, and order is what callers expect.
    queue = queue.then(() => handle(msg as Request));
  };
}
