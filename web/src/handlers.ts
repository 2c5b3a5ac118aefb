/**
 * The worker side: loads the wasm engine once, keeps loaded models by handle, and answers requests.
 * Runs inside a Web Worker (worker.browser.ts) or a Node worker thread (worker.node.ts).
 */
import { loadEngine, type Flavor, type Wasm } from './engine.js';
import { buffersIn, type Request, type Response, type WireError, type WorkerInit } from './protocol.js';
import type { EvalReport, Latency, ModelSummary, NpyInfo, PruneOptions, PruneReport, QuantizeOptions, QuantReport } from './types.js';
import { OptimizerError } from './types.js';

export interface Host {
  post(msg: Response, transfer: ArrayBuffer[]): void;
  readWasm(url: URL): Promise<BufferSource>;
  /** Ends the worker (after a trap the wasm instance cannot be trusted). */
  exit(): void;
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
  };
}

export type Handlers = ReturnType<typeof makeHandlers>;

function wireError(e: unknown, s: State | null): { error: WireError; fatal: boolean } {
  if (e instanceof WebAssembly.RuntimeError) {
    const panic = s?.wasm.takePanicMessage();
    return {
      error: { code: 'internal', message: `internal error in the engine: ${panic ?? e.message}. Please report it with the model that caused it.` },
      fatal: true,
    };
  }
  if (e && typeof e === 'object' && 'message' in e) {
    const o = e as { code?: string; message: string; node?: number; op?: string; tensor?: number; tensorName?: string };
    const known = ['invalid_model', 'unsupported', 'invalid_input', 'invalid_argument', 'invalid_npy', 'cancelled', 'no_simd'];
    const code = (o.code && known.includes(o.code) ? o.code : 'internal') as WireError['code'];
    const { node, op, tensor, tensorName } = o;
    return { error: { code, message: String(o.message), node, op, tensor, tensorName }, fatal: false };
  }
  return { error: { code: 'internal', message: String(e) }, fatal: false };
}

/** Starts serving; returns the function to call with each incoming message. */
export function serve(host: Host): (msg: Request | WorkerInit) => void {
  let prefer: Flavor | undefined;
  let state: Promise<State> | null = null;
  let ready: State | null = null;
  let queue = Promise.resolve();

  const start = () =>
    (state ??= loadEngine(host.readWasm, prefer).then(({ wasm, flavor }) => {
      ready = { wasm, flavor, models: new Map(), next: 1 };
      return ready;
    }));

  const handle = async (req: Request) => {
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
      host.post({ id: req.id, type: 'result', ok: false, error }, []);
      if (fatal) host.exit();
      if (error.code === 'no_simd') state = null;
    }
  };

  return (msg) => {
    if ((msg as WorkerInit).type === 'init') {
      prefer = (msg as WorkerInit).prefer;
      return;
    }
    // One request at a time: the engine is single-threaded, and order is what callers expect.
    queue = queue.then(() => handle(msg as Request));
  };
}
