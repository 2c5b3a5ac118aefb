/**
 * The Promise-based API. All work happens in a worker (a Web Worker in browsers, a worker thread in
 * Node), so the page or event loop never blocks. Cancelling terminates the worker: running wasm
 * cannot be interrupted, and a fresh worker starts on the next call.
 */
import { buffersIn, spansItsBuffer, type Args, type Method, type Response, type Result, type WorkerInit } from './protocol.js';
import type {
  Bytes,
  EvalReport,
  Input,
  FirmwareFiles,
  FinetuneReport,
  Latency,
  ModelSummary,
  NpyInfo,
  Progress,
  PruneDuring,
  PruneOptions,
  PruneReport,
  QatReport,
  QuantizeOptions,
  QuantizeSettings,
  QuantReport,
  TflmReport,
  TrainMetrics,
  TrainOptions,
} from './types.js';
import { OptimizerError, QAT_LEARNING_RATE } from './types.js';
import type { AssetOptions } from './assets.js';
import type { JobSerial, RoundTrace } from './pool.js';
import { readNpy, writeNpy } from './npy.js';
import { isTensor, type Tensor } from './tensor.js';

/** @internal The minimal worker interface the client needs; browser.ts and node.ts adapt their workers to it. */
export interface WorkerPort {
  post(msg: unknown, transfer: ArrayBuffer[]): void;
  terminate(): void;
  /** Keep the host process alive while work is pending (Node); no-op in browsers. */
  setBusy(busy: boolean): void;
}

/** @internal */
export type SpawnWorker = (handlers: {
  message(msg: Response): void;
  /** The worker died or failed to start (an error event, an unexpected exit). */
  failure(err: Error): void;
}) => WorkerPort;

/** What a call's `signal` needs: an `AbortSignal` (typed structurally, so no DOM lib is needed). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface CallOptions {
  onProgress?: (p: Progress) => void;
  /** Cancels this call only: removed from the queue if it has not started, or, if it is running,
   * by restarting the engine (running wasm cannot be interrupted). Training calls stop after their
   * current step instead and resolve with the best model so far. */
  signal?: AbortSignalLike;
  /**
   * Hand the call's `.npy` inputs to the engine instead of copying them: each one given as an
   * ArrayBuffer, or as a Uint8Array spanning its whole buffer, is moved to the engine's worker and
   * becomes detached (length 0) for the caller. Saves a copy of large data (1000 VWW samples are
   * 110 MB). Other inputs (tensors, views into a larger buffer) are still copied. Default `false`.
   */
  transfer?: boolean;
}

/** Options of training calls: progress also carries the live figures. */
export interface TrainCallOptions extends CallOptions {
  onMetrics?: (m: TrainMetrics) => void;
}

export interface OptimizerOptions extends AssetOptions {
  /**
   * `false` runs the engine in the calling thread instead of a worker: for code that is already in
   * a worker, or where workers are unavailable. The API is the same; calls block the thread while
   * wasm runs, `threads` is ignored (one engine), and every main-thread optimizer of a thread shares
   * one engine instance. Default `true`.
   */
  worker?: boolean;
  /** Use the plain simd128 build even where relaxed SIMD is available. */
  prefer?: 'simd' | 'relaxed';
  /** Memory budget of the engine per model, in bytes; a model that needs more is refused with
   * `resource_limit` before anything is allocated. Default: the engine's (1 GiB). */
  maxMemory?: number;
  /** Cores long operations use (calibration, scoring, runs, gradients, training): the engine's
   * worker and `threads - 1` more. Results are identical whatever the number. Default: all cores. */
  threads?: number;
  /** Whose int8 arithmetic the engine reproduces, bit for bit: 'tflm' (TensorFlow Lite Micro, what
   * the microcontroller runs; the default) or 'litert' (LiteRT's reference kernels). They differ by
   * one step on rare outputs of int8 FULLY_CONNECTED, TANH, LOGISTIC, MUL, SUB and LSTM. */
  target?: 'tflm' | 'litert';
  /**
   * Which wasm engine to download. 'auto' (default): the inference-only core (about 285 KB
   * gzipped: load a model, its summary without the TFLM report, run, profile, benchmark), then the
   * full engine (about 625 KB gzipped) once, on the first call that needs it (quantize, prune,
   * fine-tune, QAT, evaluate, export, firmware, the TFLM report, inspect, streaming runs); loaded
   * models carry over. 'full': the full engine
   * from the start (one download; runs use every core). 'core': the core only; other calls reject
   * with `invalid_argument`. On the core, `run` uses this engine alone (no task workers).
   */
  engine?: 'auto' | 'core' | 'full';
}

/** The number of cores, where the platform says (browsers: navigator.hardwareConcurrency). */
export function defaultThreads(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return typeof n === 'number' && n > 0 ? Math.min(n, 16) : 1;
}

/** A call waiting for, or running in, the engine. */
interface Pending {
  id: number;
  method: Method;
  args: unknown;
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: Progress) => void;
  onMetrics?: (m: TrainMetrics) => void;
  /** Training calls: an abort asks the engine to stop after the current step. */
  graceful?: boolean;
  /** The engine generation whose loaded models this call uses (calls on a LoadedModel). */
  needs?: number;
  /** Detaches the abort listener. */
  detach(): void;
}

/** Input bytes: copied once into a buffer that is then transferred to the worker. */
export type { Bytes };

/** Data for the engine: `.npy` bytes, or a tensor (`{ data: TypedArray, shape }`). */
export type { Input };

/** What `engine.info()` says. */
export interface EngineInfo {
  version: string;
  /** 'simd128' or 'relaxed-simd'. */
  simd: string;
  /** The int8 matrix-product kernel in use. */
  int8Kernel: string;
  flavor: 'simd' | 'relaxed';
  /** The engine answering now: the inference-only 'core', or the 'full' engine (see `engine`). */
  engine: 'core' | 'full';
  /** Models loaded now. */
  models: number;
  /** Where the time of the last long operation (quantize, evaluate, ...) went, round by round: the
   * serving worker's own serial work, and each engine's tasks and time running them (for
   * benchmarks; the format may change). */
  lastJob: RoundTrace[];
  /** The serving worker's serial work before and after those rounds (making and finishing the job). */
  lastJobSerial: JobSerial;
}

/** Options of `run`. */
export interface RunOptions extends CallOptions {
  /** Outputs in the model's own type (e.g. int8) instead of float32. */
  raw?: boolean;
  streaming?: boolean;
  /** The form of the outputs; default: tensors for a tensor input, `.npy` bytes for bytes. */
  output?: 'npy' | 'tensor';
}

/** A fresh buffer holding exactly these bytes (Node's Buffer#slice would share memory, even the
 * buffer pool, so copy explicitly), or with `give`, the caller's own buffer when it holds exactly
 * these bytes (it is then transferred to the worker: see `CallOptions.transfer`). */
function ownedCopy(b: Bytes, give = false): ArrayBuffer {
  if (!(b instanceof Uint8Array) && !(b instanceof ArrayBuffer)) {
    throw new OptimizerError('invalid_argument', 'data must be .npy bytes (Uint8Array or ArrayBuffer) or a tensor { data, shape }');
  }
  const view = b instanceof Uint8Array ? b : new Uint8Array(b);
  if (give && spansItsBuffer(view)) return view.buffer as ArrayBuffer;
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return copy.buffer;
}

/** Data as a `.npy` buffer for the engine: fresh, or with `give` the caller's own where it can be. */
function npyBuffer(x: Input, give = false): ArrayBuffer {
  if (isTensor(x)) return writeNpy(x).buffer as ArrayBuffer;
  if ((x instanceof Uint8Array || x instanceof ArrayBuffer) && x.byteLength === 0) {
    // Most often a buffer an earlier call with `transfer: true` moved: say so.
    throw new OptimizerError('invalid_npy', '.npy data is empty (0 bytes); a buffer given to an earlier call with transfer: true is detached');
  }
  return ownedCopy(x, give);
}

const RELOAD = 'the next call starts a fresh engine, and models loaded before must be loaded again';

/**
 * The engine behind a promise API. Calls run one at a time, in order: the client keeps the queue
 * and posts the next call when the previous one settles, so it always knows which call is running.
 * After a trap the worker is replaced on the next call; every model it held is gone.
 */
export class Optimizer {
  private port: WorkerPort | null = null;
  private generation = 0;
  private nextId = 1;
  private running: Pending | null = null;
  private queue: Pending[] = [];
  /** Why each ended engine generation ended, for the error a stale LoadedModel gives. */
  private ended = new Map<number, OptimizerError>();

  /** @internal Use `createOptimizer()`. */
  constructor(
    private readonly spawn: SpawnWorker,
    private readonly options: OptimizerOptions = {},
    /** Resolved asset locations, from the entry point. */
    private readonly wasm?: WorkerInit['wasm'],
  ) {
    const m = options.maxMemory;
    if (m !== undefined && !(Number.isSafeInteger(m) && m > 0)) {
      throw new OptimizerError('invalid_argument', `maxMemory must be a positive whole number of bytes, got ${m}`);
    }
    const t = options.threads;
    if (t !== undefined && !(Number.isSafeInteger(t) && t >= 1 && t <= 64)) {
      throw new OptimizerError('invalid_argument', `threads must be a whole number from 1 to 64, got ${t}`);
    }
    const engine = options.engine;
    if (engine !== undefined && engine !== 'auto' && engine !== 'core' && engine !== 'full') {
      throw new OptimizerError('invalid_argument', `engine must be 'auto', 'core' or 'full', got '${String(engine)}'`);
    }
    const target = options.target;
    if (target !== undefined && target !== 'tflm' && target !== 'litert') {
      throw new OptimizerError('invalid_argument', `target must be 'tflm' or 'litert', got '${String(target)}'`);
    }
  }

  /** The number of engines long operations use. */
  get threads(): number {
    return this.options.threads ?? defaultThreads();
  }

  private ensurePort(): WorkerPort {
    if (this.port) return this.port;
    const generation = this.generation;
    const port = this.spawn({
      message: (msg) => {
        if (generation === this.generation) this.onMessage(msg);
      },
      failure: (err) => {
        if (generation !== this.generation) return;
        const why = err instanceof OptimizerError ? err.message : `the engine's worker failed: ${err.message}`;
        this.crash(new OptimizerError('engine_crashed', `${why}; ${RELOAD}`));
      },
    });
    const init: WorkerInit = {
      type: 'init',
      prefer: this.options.prefer,
      maxMemory: this.options.maxMemory,
      threads: this.threads,
      target: this.options.target,
      engine: this.options.engine,
      wasm: this.wasm,
      role: 'api',
    };
    port.post(init, []);
    this.port = port;
    return port;
  }

  private onMessage(msg: Response) {
    const p = this.running;
    if (!p || p.id !== msg.id) return;
    if (msg.type === 'progress') {
      p.onProgress?.({ stage: msg.stage, done: msg.done, total: msg.total });
      if (msg.metrics) p.onMetrics?.(msg.metrics);
      return;
    }
    if (!msg.ok && msg.fatal) {
      this.crash(new OptimizerError('engine_crashed', `${msg.error.message}; ${RELOAD}`));
      return;
    }
    this.running = null;
    p.detach();
    if (msg.ok) p.resolve(msg.value);
    else {
      const { code, message, ...where } = msg.error;
      p.reject(new OptimizerError(code, message, where));
    }
    this.pump();
  }

  /** Posts the next queued call when none is running. */
  private pump() {
    if (this.running) return;
    const p = this.queue.shift();
    if (!p) {
      this.port?.setBusy(false);
      return;
    }
    if (p.needs !== undefined && p.needs !== this.generation) {
      p.detach();
      p.reject(this.staleError(p.needs));
      this.pump();
      return;
    }
    const port = this.ensurePort();
    this.running = p;
    port.setBusy(true);
    port.post({ id: p.id, method: p.method, args: p.args }, buffersIn(p.args));
  }

  /** Ends the current engine generation: terminates its worker and remembers why. */
  private endGeneration(why: OptimizerError) {
    const port = this.port;
    this.port = null;
    this.ended.set(this.generation, why);
    this.generation++;
    port?.terminate();
  }

  /** The engine trapped or its worker died: the running call and every queued one reject with
   * `err`; the next call starts a fresh engine. */
  private crash(err: OptimizerError) {
    const all = [...(this.running ? [this.running] : []), ...this.queue];
    this.running = null;
    this.queue = [];
    this.endGeneration(err);
    for (const p of all) {
      p.detach();
      p.reject(err);
    }
  }

  /** The error of a call on a model from an engine generation that has ended. */
  private staleError(generation: number): OptimizerError {
    const why = this.ended.get(generation);
    if (why?.code === 'engine_crashed') {
      return new OptimizerError('engine_crashed', 'this model was lost when the engine crashed; load it again');
    }
    return new OptimizerError('cancelled', 'this model was unloaded when its worker was cancelled or restarted; load it again');
  }

  /** Cancels one call: dropped from the queue, or, when it is running, by restarting the engine. */
  private abort(p: Pending) {
    const i = this.queue.indexOf(p);
    if (i >= 0) {
      this.queue.splice(i, 1);
      p.detach();
      p.reject(new OptimizerError('cancelled', `${p.method}: cancelled before it started`));
      return;
    }
    if (this.running !== p) return;
    if (p.graceful) {
      // Training stops after its current step and resolves with the best model so far.
      this.port?.post({ type: 'stop', id: p.id }, []);
      return;
    }
    this.running = null;
    this.endGeneration(new OptimizerError('cancelled', 'restarted to cancel a running call'));
    p.detach();
    p.reject(new OptimizerError('cancelled', `${p.method}: cancelled; the engine was restarted, so models loaded before must be loaded again`));
    // Queued calls on models of the old engine reject in pump(); the others run on a fresh one.
    this.pump();
  }

  /**
   * Queues one request for the engine. `needs` is the engine generation whose loaded models the
   * call uses; if that engine is gone by the time the call runs, it rejects instead.
   */
  /** @internal */
  call<M extends Method>(
    method: M,
    args: Args<M>,
    opts: TrainCallOptions & { graceful?: boolean } = {},
    needs?: number,
  ): Promise<Result<M>> {
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(new OptimizerError('cancelled', `${method}: cancelled before it started`));
    return new Promise<Result<M>>((resolve, reject) => {
      const onAbort = () => this.abort(p);
      const p: Pending = {
        id: this.nextId++,
        method,
        args,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: opts.onProgress,
        onMetrics: opts.onMetrics,
        graceful: opts.graceful,
        needs,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(p);
      this.pump();
    });
  }

  /** @internal The worker generation; models loaded in an earlier generation are gone. */
  get workerGeneration(): number {
    return this.generation;
  }

  /** @internal Why the engine generation `generation` ended, if it has. */
  endedBecause(generation: number): OptimizerError | undefined {
    return generation === this.generation ? undefined : this.staleError(generation);
  }

  /** Stops all work: the worker is terminated and every pending call rejects with 'cancelled'. */
  cancel(): void {
    const all = [...(this.running ? [this.running] : []), ...this.queue];
    this.running = null;
    this.queue = [];
    this.endGeneration(new OptimizerError('cancelled', 'cancelled'));
    for (const p of all) {
      p.detach();
      p.reject(new OptimizerError('cancelled', 'cancelled'));
    }
  }

  /** Terminates the worker and frees everything it holds. */
  terminate(): void {
    this.cancel();
  }

  /** Engine version and the SIMD build in use. */
  info(): Promise<EngineInfo> {
    return this.call('info', {}) as Promise<EngineInfo>;
  }

  /**
   * Loads the full engine now, if this optimizer is still on the inference-only core (`engine:
   * 'auto'`), so that the first optimizing call does not wait for its download: e.g. once a page
   * shows a model the user will likely optimize. Loaded models carry over.
   */
  async loadFullEngine(opts: CallOptions = {}): Promise<void> {
    await this.call('fullEngine', {}, opts);
  }

  /** Reads a .tflite model into the engine. */
  async loadModel(bytes: Bytes, opts: CallOptions = {}): Promise<LoadedModel> {
    const r = await this.call('load', { bytes: ownedCopy(bytes) }, opts);
    return new LoadedModel(this, r.handle, this.generation, r.summary);
  }

  /**
   * The summary of a .tflite model (operators, tensors, parameters, MACs, quantization), with its
   * `tflm` report: on the inference-only core that loads the full engine (`engine: 'auto'`), and
   * with `engine: 'core'` the summary comes without it.
   */
  async inspect(bytes: Bytes, opts: CallOptions = {}): Promise<ModelSummary> {
    const m = await this.loadModel(bytes, opts);
    try {
      if (m.summary.tflm || this.options.engine === 'core') return m.summary;
      return { ...m.summary, tflm: await m.tflm(opts) };
    } finally {
      await m.release();
    }
  }

  /** Shape and type of a .npy file (or use `readNpy`, which needs no engine). */
  npyInfo(bytes: Bytes, opts: CallOptions = {}): Promise<NpyInfo> {
    return this.call('npyInfo', { bytes: ownedCopy(bytes) }, opts);
  }

  /** A float32 .npy file from values and a shape (e.g. images turned into a batch). */
  async npyFromF32(shape: number[], data: Float32Array, opts: CallOptions = {}): Promise<Uint8Array> {
    return (await this.call('npyFromF32', { shape, data: new Float32Array(data) }, opts)).bytes;
  }

  /**
   * Test hook: makes the engine trap ('unreachable': a wasm trap, as a panic or an out-of-memory
   * abort gives; 'stack-overflow': unbounded recursion). Only for tests of crash recovery.
   */
  testHookTrap(kind: 'unreachable' | 'stack-overflow', opts: CallOptions = {}): Promise<never> {
    return this.call('testHookTrap', { kind }, opts) as Promise<never>;
  }
}

/** A model held by the engine. Release it when done to free the worker's memory. */
export class LoadedModel {
  /** @internal */
  constructor(
    private readonly optimizer: Optimizer,
    readonly handle: number,
    /** The engine generation holding this model. */
    readonly generation: number,
    readonly summary: ModelSummary,
  ) {}

  /** @internal Throws if the model's engine is gone (cancelled, or crashed). */
  check() {
    const why = this.optimizer.endedBecause(this.generation);
    if (why) throw why;
  }

  /** Calls the engine on this model; rejects if the engine holding it is gone by then. */
  private call<M extends Method>(
    method: M,
    args: Args<M>,
    opts: TrainCallOptions & { graceful?: boolean } = {},
  ): Promise<Result<M>> {
    this.check();
    return this.optimizer.call(method, args, opts, this.generation);
  }

  /**
   * Runs a batch: `input` is a .npy file of shape [N, ...input shape] (float32, or the model's own
   * integer type). Returns one .npy file per model output, shaped [N, ...output shape]: float32, or
   * the model's own output type with `raw`.
   */
  run(input: Tensor, opts?: RunOptions & { output?: 'tensor' }): Promise<Tensor[]>;
  run(input: Bytes, opts?: RunOptions & { output?: 'npy' }): Promise<Uint8Array[]>;
  run(input: Input, opts: RunOptions & { output: 'tensor' }): Promise<Tensor[]>;
  run(input: Input, opts: RunOptions & { output: 'npy' }): Promise<Uint8Array[]>;
  async run(input: Input, opts: RunOptions = {}): Promise<Uint8Array[] | Tensor[]> {
    const args = { handle: this.handle, input: npyBuffer(input, opts.transfer), raw: opts.raw ?? false, streaming: opts.streaming ?? false };
    const r = await this.call('run', args, opts);
    const asTensors = (opts.output ?? (isTensor(input) ? 'tensor' : 'npy')) === 'tensor';
    return asTensors ? r.outputs.map((o) => readNpy(o)) : r.outputs;
  }

  /**
   * Fine-tunes the model on `data` (.npy [N, ...input shape]) against `labels` (class indices,
   * one-hot rows, or targets shaped like the outputs for other losses). Weights that are zero (a
   * pruned model) stay exactly zero. With `prune`, weights are pruned gradually during training on
   * TFMOT's schedules. An abort stops after the current step and resolves with the best model.
   */
  async finetune(
    options: TrainOptions & { data: Input; labels: Input; prune?: PruneDuring },
    opts: TrainCallOptions = {},
  ): Promise<{ model: LoadedModel; report: FinetuneReport }> {
    const { data, labels, prune, ...train } = options;
    const args = { handle: this.handle, x: npyBuffer(data, opts.transfer), y: npyBuffer(labels, opts.transfer), options: train, prune };
    const r = await this.call('finetune', args, { ...opts, graceful: true });
    return { model: new LoadedModel(this.optimizer, r.handle, this.generation, r.summary), report: r.report };
  }

  /**
   * Quantizes the model. Static mode (the default) needs `calibrationData`: a .npy batch of
   * representative inputs, [N, ...input shape] with N >= 10. Returns the new model (still loaded in
   * the engine) and the report.
   */
  async quantize(
    options: QuantizeOptions,
    opts: CallOptions = {},
  ): Promise<{ model: LoadedModel; report: QuantReport }> {
    const { calibrationData, ...rest } = options;
    if ('qat' in rest) {
      throw new OptimizerError('invalid_argument', 'quantization-aware training is quantizeAware(), not quantize()');
    }
    const r = await this.call(
      'quantize',
      { handle: this.handle, calibration: calibrationData ? npyBuffer(calibrationData, opts.transfer) : undefined, options: rest },
      opts,
    );
    return { model: new LoadedModel(this.optimizer, r.handle, this.generation, r.summary), report: r.report };
  }

  /**
   * Quantization-aware training: static quantization starts the ranges, then `epochs` of training
   * with fake quantization, then the same full-int8 export as `quantize`. Static quantization
   * calibrates on `calibrationData` when given (with the `calibration` method: the model `quantize`
   * gives with the same data and options), otherwise on the first 200 training samples. `data` and
   * `labels` as for `finetune`. With a validation split (the default), the result is never worse on
   * the validation samples than that static model: when no epoch beats it, it is returned exactly
   * (`report.train.kept === 'start'`). The learning rate defaults to 2e-4 here (a fifth of
   * fine-tuning's, as the CLI and the app use: QAT adjusts a trained model).
   */
  async quantizeAware(
    options: QuantizeSettings & { data: Input; labels: Input; calibrationData?: Input; train?: TrainOptions },
    opts: TrainCallOptions = {},
  ): Promise<{ model: LoadedModel; report: QatReport }> {
    const { data, labels, calibrationData, train, ...quantize } = options;
    const args = {
      handle: this.handle,
      x: npyBuffer(data, opts.transfer),
      y: npyBuffer(labels, opts.transfer),
      calibration: calibrationData ? npyBuffer(calibrationData, opts.transfer) : undefined,
      train: { learningRate: QAT_LEARNING_RATE, ...train },
      options: quantize,
    };
    const r = await this.call('qat', args, { ...opts, graceful: true });
    return { model: new LoadedModel(this.optimizer, r.handle, this.generation, r.summary), report: r.report };
  }

  /**
   * Prunes the model. Gradient methods need `data`: a .npy batch of representative inputs
   * [N, ...input shape]; `labels` (.npy class indices or one-hot) are optional (without them the
   * loss is taken against the model's own predictions). Returns the new model (still loaded in the
   * engine) and the report.
   */
  async prune(
    options: PruneOptions = {},
    opts: CallOptions = {},
  ): Promise<{ model: LoadedModel; report: PruneReport }> {
    const { data, labels, ...rest } = options;
    const r = await this.call(
      'prune',
      {
        handle: this.handle,
        data: data ? npyBuffer(data, opts.transfer) : undefined,
        labels: labels ? npyBuffer(labels, opts.transfer) : undefined,
        options: rest,
      },
      opts,
    );
    return { model: new LoadedModel(this.optimizer, r.handle, this.generation, r.summary), report: r.report };
  }

  /**
   * Evaluates the model on `data` (.npy [N, ...input shape]): accuracy with `labels` (.npy class
   * indices [N] or one-hot [N, C]); top-1 agreement and output SQNR against `reference` (another
   * loaded model, e.g. the float original); size; latency with the engine.
   */
  async evaluate(
    data: Input,
    options: { labels?: Input; reference?: LoadedModel } = {},
    opts: CallOptions = {},
  ): Promise<EvalReport> {
    options.reference?.check();
    if (options.reference && options.reference.generation !== this.generation) {
      throw new OptimizerError('invalid_argument', 'the reference model was loaded by another engine or before a restart; load both again');
    }
    return this.call(
      'evaluate',
      {
        handle: this.handle,
        data: npyBuffer(data, opts.transfer),
        labels: options.labels ? npyBuffer(options.labels, opts.transfer) : undefined,
        reference: options.reference?.handle,
      },
      opts,
    );
  }

  /** Per-layer time (ms) of one inference with the engine, averaged over `iterations` runs. */
  async profile(input: Input, iterations = 20): Promise<{ node: number; op: string; ms: number }[]> {
    return this.call('profile', { handle: this.handle, input: npyBuffer(input), iterations });
  }

  /**
   * Inference latency with the engine on the first sample of `input` (a `.npy` batch): mean,
   * median and minimum over `runs` timed runs after a short warm-up.
   */
  async benchmark(input: Input, runs = 100): Promise<Latency> {
    return this.call('benchmark', { handle: this.handle, input: npyBuffer(input), runs });
  }

  /**
   * Firmware files for TensorFlow Lite Micro: a `.h` (extern declarations, `kTensorArenaSize` from
   * the arena prediction with a margin, `kOpCount` and `RegisterOps` for a
   * `MicroMutableOpResolver` with exactly the model's operators) and a `.cc` (the 16-byte aligned
   * model array). `name` (default 'model') becomes the C identifier.
   */
  async firmware(name = 'model'): Promise<FirmwareFiles> {
    return this.call('firmware', { handle: this.handle, name });
  }

  /**
   * What deploying the model with TensorFlow Lite Micro takes: whether TFLM runs it (and why not),
   * the predicted tensor arena, the flash, the operators to register. It is `summary.tflm` when the
   * full engine loaded the model; a model loaded by the inference-only core has no `summary.tflm`,
   * and this call loads the full engine (`engine: 'auto'`) to compute it.
   */
  async tflm(opts: CallOptions = {}): Promise<TflmReport> {
    if (this.summary.tflm) return this.summary.tflm;
    return this.call('tflm', { handle: this.handle }, opts);
  }

  /** The model serialized as .tflite bytes. */
  async toBytes(): Promise<Uint8Array> {
    return (await this.call('export', { handle: this.handle })).bytes;
  }

  async release(): Promise<void> {
    if (this.optimizer.endedBecause(this.generation)) return;
    await this.call('release', { handle: this.handle });
  }
}
