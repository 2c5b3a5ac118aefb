/**
 * The Promise-based API. All work happens in a worker (a Web Worker in browsers, a worker thread in
 * Node), so the page or event loop never blocks. Cancelling terminates the worker: running wasm
 * cannot be interrupted, and a fresh worker starts on the next call.
 */
import { buffersIn, type Args, type Method, type Response, type Result, type WorkerInit } from './protocol.js';
import type {
  EvalReport,
  Latency,
  ModelSummary,
  NpyInfo,
  Progress,
  PruneOptions,
  PruneReport,
  QuantizeOptions,
  QuantReport,
} from './types.js';
import { OptimizerError } from './types.js';

/** The minimal worker interface the client needs; browser.ts and node.ts adapt their workers to it. */
export interface WorkerPort {
  post(msg: unknown, transfer: ArrayBuffer[]): void;
  terminate(): void;
  /** Keep the host process alive while work is pending (Node); no-op in browsers. */
  setBusy(busy: boolean): void;
}

export type SpawnWorker = (handlers: {
  message(msg: Response): void;
  failure(err: Error): void;
}) => WorkerPort;

export interface CallOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

export interface OptimizerOptions {
  /** Use the plain simd128 build even where relaxed SIMD is available. */
  prefer?: 'simd' | 'relaxed';
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: Progress) => void;
}

/** Input bytes: copied once into a buffer that is then transferred to the worker. */
export type Bytes = ArrayBuffer | Uint8Array;

/** A fresh buffer holding exactly these bytes. (Node's Buffer#slice would share memory, even the
 * buffer pool, so copy explicitly.) */
function ownedCopy(b: Bytes): ArrayBuffer {
  const view = b instanceof Uint8Array ? b : new Uint8Array(b);
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return copy.buffer;
}

export class Optimizer {
  private port: WorkerPort | null = null;
  private generation = 0;
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor(
    private readonly spawn: SpawnWorker,
    private readonly options: OptimizerOptions = {},
  ) {}

  private ensurePort(): WorkerPort {
    if (this.port) return this.port;
    const generation = ++this.generation;
    const port = this.spawn({
      message: (msg) => this.onMessage(msg),
      failure: (err) => {
        if (generation !== this.generation) return;
        this.port = null;
        this.rejectAll(err instanceof OptimizerError ? err : new OptimizerError('internal', `the worker failed: ${err.message}`));
      },
    });
    const init: WorkerInit = { type: 'init', prefer: this.options.prefer };
    port.post(init, []);
    this.port = port;
    return port;
  }

  private onMessage(msg: Response) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'progress') {
      p.onProgress?.({ stage: msg.stage, done: msg.done, total: msg.total });
      return;
    }
    this.pending.delete(msg.id);
    this.port?.setBusy(this.pending.size > 0);
    if (msg.ok) p.resolve(msg.value);
    else {
      const { code, message, ...where } = msg.error;
      p.reject(new OptimizerError(code, message, where));
    }
  }

  private rejectAll(err: Error) {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** Sends one request to the worker. */
  call<M extends Method>(method: M, args: Args<M>, opts: CallOptions = {}): Promise<Result<M>> {
    if (opts.signal?.aborted) return Promise.reject(new OptimizerError('cancelled', 'cancelled before it started'));
    const port = this.ensurePort();
    const id = this.nextId++;
    return new Promise<Result<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress: opts.onProgress });
      opts.signal?.addEventListener('abort', () => this.cancel(), { once: true });
      port.setBusy(true);
      port.post({ id, method, args }, buffersIn(args));
    });
  }

  /** The worker generation; models loaded in an earlier generation are gone. */
  get workerGeneration(): number {
    return this.generation;
  }

  /** Stops all running work: the worker is terminated and every pending call rejects with 'cancelled'. */
  cancel(): void {
    const port = this.port;
    this.port = null;
    this.generation++;
    port?.terminate();
    this.rejectAll(new OptimizerError('cancelled', 'cancelled'));
  }

  /** Terminates the worker and frees everything it holds. */
  terminate(): void {
    this.cancel();
  }

  /** Engine version and the SIMD build in use. */
  info(): Promise<Result<'info'>> {
    return this.call('info', {});
  }

  /** Reads a .tflite model into the engine. */
  async loadModel(bytes: Bytes, opts: CallOptions = {}): Promise<LoadedModel> {
    const r = await this.call('load', { bytes: ownedCopy(bytes) }, opts);
    return new LoadedModel(this, r.handle, this.generation, r.summary);
  }

  /** The summary of a .tflite model (operators, tensors, parameters, MACs, quantization). */
  async inspect(bytes: Bytes, opts: CallOptions = {}): Promise<ModelSummary> {
    const m = await this.loadModel(bytes, opts);
    await m.release();
    return m.summary;
  }

  /** Shape and type of a .npy file. */
  npyInfo(bytes: Bytes): Promise<NpyInfo> {
    return this.call('npyInfo', { bytes: ownedCopy(bytes) });
  }

  /** A float32 .npy file from values and a shape (e.g. images turned into a batch). */
  async npyFromF32(shape: number[], data: Float32Array): Promise<Uint8Array> {
    return (await this.call('npyFromF32', { shape, data: new Float32Array(data) })).bytes;
  }
}

/** A model held by the engine. Release it when done to free the worker's memory. */
export class LoadedModel {
  constructor(
    private readonly optimizer: Optimizer,
    readonly handle: number,
    private readonly generation: number,
    readonly summary: ModelSummary,
  ) {}

  /** Throws if the model's worker is gone. */
  check() {
    if (this.generation !== this.optimizer.workerGeneration) {
      throw new OptimizerError('cancelled', 'this model was unloaded when its worker was cancelled or restarted; load it again');
    }
  }

  /**
   * Runs a batch: `input` is a .npy file of shape [N, ...input shape] (float32, or the model's own
   * integer type). Returns one .npy file per model output, shaped [N, ...output shape]: float32, or
   * the model's own output type with `raw`.
   */
  async run(input: Bytes, opts: CallOptions & { raw?: boolean } = {}): Promise<Uint8Array[]> {
    this.check();
    const r = await this.optimizer.call('run', { handle: this.handle, input: ownedCopy(input), raw: opts.raw ?? false }, opts);
    return r.outputs;
  }

  /**
   * Quantizes the model. Static mode (the default) needs `calibrationData`: a .npy batch of
   * representative inputs, [N, ...input shape] with N >= 10. Returns the new model (still loaded in
   * the engine) and the report.
   */
  async quantize(
    options: QuantizeOptions & { calibrationData?: Bytes } = {},
    opts: CallOptions = {},
  ): Promise<{ model: LoadedModel; report: QuantReport }> {
    this.check();
    const { calibrationData, ...rest } = options;
    const r = await this.optimizer.call(
      'quantize',
      { handle: this.handle, calibration: calibrationData ? ownedCopy(calibrationData) : undefined, options: rest },
      opts,
    );
    return { model: new LoadedModel(this.optimizer, r.handle, this.optimizer.workerGeneration, r.summary), report: r.report };
  }

  /**
   * Prunes the model. Gradient methods need `data`: a .npy batch of representative inputs
   * [N, ...input shape]; `labels` (.npy class indices or one-hot) are optional (without them the
   * loss is taken against the model's own predictions). Returns the new model (still loaded in the
   * engine) and the report.
   */
  async prune(
    options: PruneOptions & { data?: Bytes; labels?: Bytes } = {},
    opts: CallOptions = {},
  ): Promise<{ model: LoadedModel; report: PruneReport }> {
    this.check();
    const { data, labels, ...rest } = options;
    const r = await this.optimizer.call(
      'prune',
      {
        handle: this.handle,
        data: data ? ownedCopy(data) : undefined,
        labels: labels ? ownedCopy(labels) : undefined,
        options: rest,
      },
      opts,
    );
    return { model: new LoadedModel(this.optimizer, r.handle, this.optimizer.workerGeneration, r.summary), report: r.report };
  }

  /**
   * Evaluates the model on `data` (.npy [N, ...input shape]): accuracy with `labels` (.npy class
   * indices [N] or one-hot [N, C]); top-1 agreement and output SQNR against `reference` (another
   * loaded model, e.g. the float original); size; latency with the engine.
   */
  async evaluate(
    data: Bytes,
    options: { labels?: Bytes; reference?: LoadedModel } = {},
    opts: CallOptions = {},
  ): Promise<EvalReport> {
    this.check();
    options.reference?.check();
    return this.optimizer.call(
      'evaluate',
      {
        handle: this.handle,
        data: ownedCopy(data),
        labels: options.labels ? ownedCopy(options.labels) : undefined,
        reference: options.reference?.handle,
      },
      opts,
    );
  }

  /** Per-layer time (ms) of one inference with the engine, averaged over `iterations` runs. */
  async profile(input: Bytes, iterations = 20): Promise<{ node: number; op: string; ms: number }[]> {
    this.check();
    return this.optimizer.call('profile', { handle: this.handle, input: ownedCopy(input), iterations });
  }

  /**
   * Inference latency with the engine on the first sample of `input` (a `.npy` batch): mean,
   * median and minimum over `runs` timed runs after a short warm-up.
   */
  async benchmark(input: Bytes, runs = 100): Promise<Latency> {
    this.check();
    return this.optimizer.call('benchmark', { handle: this.handle, input: ownedCopy(input), runs });
  }

  /** The model serialized as .tflite bytes. */
  async toBytes(): Promise<Uint8Array> {
    this.check();
    return (await this.optimizer.call('export', { handle: this.handle })).bytes;
  }

  async release(): Promise<void> {
    if (this.generation !== this.optimizer.workerGeneration) return;
    await this.optimizer.call('release', { handle: this.handle });
  }
}
