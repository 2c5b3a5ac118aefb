/**
 * The worker side: loads the wasm engine once, keeps loaded models by handle, and answers requests.
 * Runs inside a Web Worker (worker.browser.ts) or a Node worker thread (worker.node.ts).
 */
import { coreAvailable, loadEngine, type EngineKind, type Wasm } from './engine.js';
import { coreOnlyError, needsFull, switchToFull, type EngineSlot } from './core-engine.js';
import { Pool, type JobLike, type SpawnTaskWorker, type TaskMessage, type TaskReply } from './pool.js';
import { buffersIn, type Request, type Response, type StopRequest, type WireError, type WorkerInit } from './protocol.js';
import type {
  EvalReport,
  FirmwareFiles,
  FinetuneReport,
  Latency,
  ModelSummary,
  NpyInfo,
  PruneDuring,
  PruneSettings,
  PruneReport,
  QatReport,
  QuantizeSettings,
  QuantReport,
  TflmReport,
  TrainMetrics,
  TrainOptions,
} from './types.js';
import { ERROR_CODES, OptimizerError } from './types.js';

export interface Host {
  post(msg: Response | TaskReply, transfer: ArrayBuffer[]): void;
  readWasm(url: URL): Promise<BufferSource>;
  /** Starts a task worker for this worker's pool (the same script, with role 'task'). */
  spawnTaskWorker?(init: WorkerInit, onReply: (r: TaskReply) => void, onFailure: (e: Error) => void): ReturnType<SpawnTaskWorker>;
}

interface Ctx {
  progress(stage: string, done: number, total: number): void;
  /** Training figures for the caller's live display. */
  metrics(m: TrainMetrics): void;
  /** Whether the caller asked this call to stop (training keeps its best weights). */
  stopped(): boolean;
}

type WasmModel = InstanceType<Wasm['Model']>;

/** The engine in use, its models (core-engine.ts switches it), and the pool for its jobs. */
interface State extends EngineSlot {
  next: number;
  pool: Pool;
}

type WasmJob = Wasm['Job']['prototype'];

/** Runs a job's rounds on the pool. Training jobs report their figures after every step and stop
 * when asked (keeping the best weights). A failed job frees its task workers. */
async function drive(s: State, make: () => WasmJob, ctx: Ctx, training = false, input?: Uint8Array): Promise<WasmJob> {
  const t = performance.now();
  const job = make();
  s.pool.lastJobSerial = { makeMs: performance.now() - t, finishMs: 0 };
  const after = training
    ? () => {
        // Undefined while a QAT job still calibrates.
        const m = job.metrics() as TrainMetrics | undefined;
        if (m) ctx.metrics(m);
        if (ctx.stopped()) job.stop();
      }
    : undefined;
  try {
    await s.pool.drive(job as unknown as JobLike, (st, d, t) => ctx.progress(st, d, t), after, input);
  } catch (e) {
    try {
      job.free();
    } catch {
      // After a trap the instance is broken (and the job may still count as borrowed): the
      // original error says what happened.
    }
    s.pool.terminate();
    throw e;
  }
  return job;
}

/** `f()`, the end of a driven job (its report or model), timed for `info().lastJobSerial`. */
function finish<T>(s: State, f: () => T): T {
  const t = performance.now();
  try {
    return f();
  } finally {
    s.pool.lastJobSerial.finishMs = performance.now() - t;
  }
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
      return {
        version: s.wasm.version(),
        simd: s.wasm.simdLevel(),
        int8Kernel: s.wasm.int8Kernel(),
        flavor: s.flavor,
        engine: s.kind,
        models: s.models.size,
        lastJob: s.pool.lastJob,
        lastJobSerial: s.pool.lastJobSerial,
      };
    },
    async load(a: { bytes: ArrayBuffer | Uint8Array }) {
      const bytes = bytesOf(a.bytes);
      const m = new s.wasm.Model(bytes);
      const handle = s.next++;
      s.models.set(handle, m);
      if (s.kind === 'core') s.sources.set(handle, bytes);
      return { handle, summary: m.summary() as ModelSummary };
    },
    async summary(a: { handle: number }) {
      return model(s, a.handle).summary() as ModelSummary;
    },
    async tflm(a: { handle: number }) {
      return model(s, a.handle).tflm() as TflmReport;
    },
    async run(a: { handle: number; input: ArrayBuffer | Uint8Array; raw: boolean; streaming?: boolean }, ctx: Ctx) {
      if (s.kind === 'core') {
        // The core has no jobs: the batch runs in this engine alone (same kernels, same bytes).
        const outputs = model(s, a.handle).run(bytesOf(a.input), a.raw, (d: number, t: number) => ctx.progress('run', d, t));
        return { outputs: outputs as Uint8Array[] };
      }
      const job = await drive(s, () => model(s, a.handle).runJob(bytesOf(a.input), a.raw, a.streaming ?? false), ctx);
      return { outputs: finish(s, () => job.finishArrays() as Uint8Array[]) };
    },
    async quantize(a: { handle: number; calibration?: ArrayBuffer | Uint8Array; options: QuantizeSettings }, ctx: Ctx) {
      const m = model(s, a.handle);
      if (a.options.mode === 'dynamic' || !a.calibration) {
        const r = m.quantize(a.calibration ? bytesOf(a.calibration) : undefined, a.options, ctx.progress);
        return adopt(s, r, 'quantization') as { handle: number; summary: ModelSummary; report: QuantReport };
      }
      // The engine copies the calibration data; task workers get these bytes (the job's input).
      const calibration = bytesOf(a.calibration);
      const job = await drive(s, () => m.quantizeJob(calibration, a.options), ctx, false, calibration);
      return finish(s, () => adopt(s, job.finishModel(), 'quantization')) as { handle: number; summary: ModelSummary; report: QuantReport };
    },
    /** Quantization-aware training: static quantization (on `calibration` when given, else the
     * first 200 training samples) starts the ranges, then training, then the int8 export. */
    async qat(
      a: {
        handle: number;
        x: ArrayBuffer | Uint8Array;
        y: ArrayBuffer | Uint8Array;
        calibration?: ArrayBuffer | Uint8Array;
        train: TrainOptions;
        options: QuantizeSettings;
      },
      ctx: Ctx,
    ) {
      const calibration = a.calibration ? bytesOf(a.calibration) : undefined;
      const job = await drive(s, () => model(s, a.handle).qatJob(bytesOf(a.x), bytesOf(a.y), a.train, a.options, calibration), ctx, true);
      return adopt(s, job.finishModel(), 'quantization-aware training') as {
        handle: number;
        summary: ModelSummary;
        report: QatReport;
      };
    },
    async prune(
      a: { handle: number; data?: ArrayBuffer | Uint8Array; labels?: ArrayBuffer | Uint8Array; options: PruneSettings },
      ctx: Ctx,
    ) {
      const m = model(s, a.handle);
      const job = await drive(
        s,
        () => m.pruneJob(a.data ? bytesOf(a.data) : undefined, a.labels ? bytesOf(a.labels) : undefined, a.options),
        ctx,
      );
      return adopt(s, job.finishModel(), 'pruning') as { handle: number; summary: ModelSummary; report: PruneReport };
    },
    /** Fine-tuning (pruned weights stay zero), with gradual pruning when `prune` is given. */
    async finetune(
      a: { handle: number; x: ArrayBuffer | Uint8Array; y: ArrayBuffer | Uint8Array; options: TrainOptions; prune?: PruneDuring },
      ctx: Ctx,
    ) {
      const job = await drive(s, () => model(s, a.handle).trainJob(bytesOf(a.x), bytesOf(a.y), a.options, a.prune), ctx, true);
      return adopt(s, job.finishModel(), 'fine-tuning') as { handle: number; summary: ModelSummary; report: FinetuneReport };
    },
    async evaluate(
      a: { handle: number; data: ArrayBuffer | Uint8Array; labels?: ArrayBuffer | Uint8Array; reference?: number },
      ctx: Ctx,
    ) {
      const m = model(s, a.handle);
      const labels = a.labels ? bytesOf(a.labels) : undefined;
      // The engine copies the data; task workers get these bytes (the job's input).
      const data = bytesOf(a.data);
      const make = () =>
        a.reference === undefined ? m.evaluateJob(data, labels) : m.evaluateJobAgainst(data, labels, model(s, a.reference));
      const job = await drive(s, make, ctx, false, data);
      return finish(s, () => job.finishReport() as EvalReport);
    },
    async profile(a: { handle: number; input: ArrayBuffer | Uint8Array; iterations?: number }) {
      return model(s, a.handle).profile(bytesOf(a.input), a.iterations ?? 20) as { node: number; op: string; ms: number }[];
    },
    async benchmark(a: { handle: number; input: ArrayBuffer | Uint8Array; runs?: number }) {
      return model(s, a.handle).benchmark(bytesOf(a.input), a.runs ?? 100) as Latency;
    },
    async firmware(a: { handle: number; name: string }) {
      return s.wasm.tflmFirmware(model(s, a.handle).toBytes(), a.name) as FirmwareFiles;
    },
    async export(a: { handle: number }) {
      return { bytes: model(s, a.handle).toBytes() };
    },
    async release(a: { handle: number }) {
      const m = s.models.get(a.handle);
      if (m) {
        m.free();
        s.models.delete(a.handle);
        s.sources.delete(a.handle);
      }
      return { released: m !== undefined };
    },
    /** Loads the full engine (the switch happens before any method the core does not answer). */
    async fullEngine(_: Record<string, never>) {
      return { engine: s.kind };
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
export function serve(host: Host): (msg: Request | WorkerInit | StopRequest | TaskMessage) => void {
  let init: WorkerInit = { type: 'init' };
  let state: Promise<State> | null = null;
  let ready: State | null = null;
  let queue = Promise.resolve();
  /** Set after a trap: the wasm instance is not used again; the client replaces this worker. */
  let dead: WireError | null = null;
  /** Calls asked to stop (training keeps its best weights). */
  const stops = new Set<number>();
  let tasks: InstanceType<Wasm['TaskWorker']> | null = null;
  /** The full engine's compiled module, once this worker has loaded it: task workers start from it. */
  let fullModule: WebAssembly.Module | null = null;

  /** Loads an engine of kind `kind` and sets it up with the init options. */
  const load = async (kind: EngineKind) => {
    const e = await loadEngine(host.readWasm, init.prefer, init.wasm, kind);
    if (init.maxMemory !== undefined) e.wasm.setMaxMemory(init.maxMemory);
    if (init.target !== undefined) e.wasm.setTarget(init.target);
    return e;
  };
  /** Task workers and `engine: 'full'` start on the full engine, the others on the core (when given). */
  const firstKind = (): EngineKind =>
    init.role !== 'task' && init.engine !== 'full' && (init.engine === 'core' || coreAvailable(init.wasm)) ? 'core' : 'full';

  const start = () =>
    (state ??= load(firstKind()).then(({ wasm, flavor, kind, exports, module }) => {
      if (kind === 'full') fullModule = module;
      const spawn = host.spawnTaskWorker?.bind(host);
      // Task workers get the full engine's compiled module once this worker has it: they neither
      // fetch nor compile the engine, and the JavaScript engine shares the module's machine code
      // between them (V8 does, with the functions it has optimized since), so a task worker's first
      // tasks do not run unoptimized.
      const taskInit = (): WorkerInit => {
        const modules = fullModule ? { modules: { [flavor]: fullModule } } : {};
        return { ...init, engine: 'full', role: 'task', threads: 1, wasm: { ...init.wasm, ...modules } };
      };
      const pool = new Pool(spawn ? (reply, failure) => spawn(taskInit(), reply, failure) : null, init.threads ?? 1);
      ready = { wasm, flavor, kind, exports, models: new Map(), sources: new Map(), next: 1, pool };
      return ready;
    }));

  /** The engine for `req`: the full one (loaded now, once) when the core cannot answer it. */
  const engineFor = async (req: Request): Promise<State> => {
    const s = await start();
    if (s.kind === 'full' || !needsFull(req.method, req.args, s.exports)) return s;
    if (init.engine === 'core') throw coreOnlyError(req.method);
    const full = await load('full');
    fullModule = full.module;
    switchToFull(s, full);
    return s;
  };

  /** A task worker's side: shared inputs and tasks of another worker's jobs, in order. */
  const task = async (msg: TaskMessage) => {
    const seq = msg.type === 'task' ? msg.seq : 0;
    try {
      const s = await start();
      tasks ??= new s.wasm.TaskWorker();
      if (msg.type === 'put') {
        tasks.put(msg.id, msg.bytes);
        return;
      }
      const t = performance.now();
      const bytes = tasks.run(msg.bytes);
      const ms = performance.now() - t;
      host.post({ type: 'task-result', seq, ok: true, bytes, ms }, [bytes.buffer as ArrayBuffer]);
    } catch (e) {
      const { error, fatal } = wireError(e, ready);
      host.post({ type: 'task-result', seq, ok: false, error, fatal }, []);
    }
  };

  const handle = async (req: Request) => {
    if (dead) {
      host.post({ id: req.id, type: 'result', ok: false, error: dead, fatal: true }, []);
      return;
    }
    try {
      const s = await engineFor(req);
      const handlers = makeHandlers(s) as unknown as Record<string, (a: unknown, c: Ctx) => Promise<unknown>>;
      const fn = handlers[req.method];
      if (!fn) throw new OptimizerError('invalid_argument', `unknown method '${String(req.method)}'`);
      const ctx: Ctx = {
        progress: (stage, done, total) => host.post({ id: req.id, type: 'progress', stage, done, total }, []),
        metrics: (metrics) =>
          host.post({ id: req.id, type: 'progress', stage: 'train', done: metrics.step, total: metrics.steps, metrics }, []),
        stopped: () => stops.has(req.id),
      };
      const value = await fn(req.args, ctx);
      stops.delete(req.id);
      host.post({ id: req.id, type: 'result', ok: true, value }, buffersIn(value));
    } catch (e) {
      const { error, fatal } = wireError(e, ready);
      if (fatal) dead = error;
      host.post({ id: req.id, type: 'result', ok: false, error, fatal }, []);
      if (error.code === 'no_simd') state = null;
    }
  };

  return (msg) => {
    const type = (msg as { type?: string }).type;
    if (type === 'init') {
      init = msg as WorkerInit;
      return;
    }
    if (type === 'stop') {
      stops.add((msg as StopRequest).id);
      return;
    }
    if (type === 'put' || type === 'task') {
      queue = queue.then(() => task(msg as TaskMessage));
      return;
    }
    // One request at a time: the engine is single-threaded, and order is what callers expect.
    queue = queue.then(() => handle(msg as Request));
  };
}
