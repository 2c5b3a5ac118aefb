/**
 * Data types shared by the API, the worker and the CLI. Every type the Rust core serializes
 * (reports, options, error codes) is generated from the Rust definitions into
 * `generated/core.ts` (crate/src/ts_bindings.rs; a Rust test fails when the two differ) and
 * re-exported here; this file adds what only JS has: the API's option types (every field
 * optional, data required where the method needs it), JS-side error codes and the error class.
 */

import type * as core from './generated/core.js';
import type { Tensor } from './tensor.js';

export type {
  CalibrationCandidate,
  CalibrationMethod,
  CoreErrorCode,
  DType,
  EpochReport,
  ErrorLocation,
  EvalReport,
  FirmwareFiles,
  Granularity,
  IoDetail,
  IoType,
  LayerMetrics,
  LayerQuantReport,
  LayerSummary,
  Latency,
  Loss,
  LrSchedule,
  ModelMetrics,
  ModelSummary,
  OpCount,
  OptimizerKind,
  PruneMethod,
  PruneReport,
  PruningSchedule,
  QuantizeMode,
  QuantParams,
  QuantReport,
  ReferenceComparison,
  TensorSummary,
  TflmReport,
  TflmUnsupported,
  TrainMetrics,
  TrainReport,
  WeightSummary,
} from './generated/core.js';

/** Model and data bytes: a `.tflite` file or a `.npy` array. */
export type Bytes = ArrayBuffer | Uint8Array;

/** Data for the engine: `.npy` bytes, or a tensor (`{ data: TypedArray, shape }`). */
export type Input = Bytes | Tensor;

/** Quantization settings as the core reads them; every field optional, defaults in brackets:
 * mode ['static'], calibration [{ method: 'auto' }], granularity ['per-channel'], io ['int8'],
 * biasCorrection [true], reportSamples [32], selectSamples [100]. */
export type QuantizeSettings = Partial<core.QuantizeOptions>;

/** Options of `LoadedModel.quantize`: static quantization (full int8, the default) needs
 * `calibrationData`, a `.npy` batch of representative inputs `[N, ...input shape]` with N >= 10;
 * dynamic quantization (int8 weights, float activations) needs none. */
export type QuantizeOptions =
  | (Omit<QuantizeSettings, 'mode'> & { mode?: 'static'; calibrationData: Input })
  | (Omit<QuantizeSettings, 'mode'> & { mode: 'dynamic'; calibrationData?: undefined });

/** Pruning methods that score weights by `|w · ∂L/∂w|` and so need data. */
export type GradientPruneMethod = Extract<core.PruneMethod, `${string}-gradient`>;

/** Pruning settings as the core reads them; every field optional, defaults in brackets: method
 * ['global-magnitude'], sparsity [0.5], structured [false], includeLastLayer [false],
 * includeBias [false], includeDepthwise [false: DEPTHWISE_CONV_2D kernels are left whole, as TFMOT
 * leaves them], seed [0]. */
export type PruneSettings = Partial<core.PruneOptions>;

/** Options of `LoadedModel.prune`: gradient methods need `data` (a `.npy` batch of representative
 * inputs); `labels` (class indices or one-hot) are optional, without them the loss is taken
 * against the model's own predictions. */
export type PruneOptions =
  | (Omit<PruneSettings, 'method'> & {
      method?: Exclude<core.PruneMethod, GradientPruneMethod>;
      data?: Input;
      labels?: Input;
    })
  | (Omit<PruneSettings, 'method'> & { method: GradientPruneMethod; data: Input; labels?: Input });

/** True for the methods whose `prune` options need `data`. */
export function needsData(method: core.PruneMethod | undefined): method is GradientPruneMethod {
  return method === 'global-gradient' || method === 'layer-gradient';
}

/** How to train (fine-tuning, gradual pruning, quantization-aware training); every field
 * optional, defaults in brackets: epochs [4], batchSize [32], learningRate [0.001], optimizer
 * ['adam'], momentum [0.9], weightDecay [0], lrSchedule [{ kind: 'constant' }], loss
 * ['cross-entropy'], validationSplit [0.1], earlyStopping [0], seed [0]. */
export type TrainOptions = Partial<core.TrainOptions>;

/** Quantization-aware training's learning rate unless given (`quantizeAware`, `quantize
 * --qat-epochs`, the app): a fifth of fine-tuning's, as QAT adjusts an already trained model. */
export const QAT_LEARNING_RATE = 2e-4;

/** Gradual pruning during training. Without `schedule`: TFMOT's polynomial schedule reaching
 * `sparsity` two thirds of the way through training, so the last third trains at the final
 * sparsity. */
export type PruneDuring = Omit<core.PruneDuring, 'schedule' | 'includeLastLayer' | 'includeDepthwise'> & {
  schedule?: core.PruningSchedule | null;
  includeLastLayer?: boolean;
  /** Also prune DEPTHWISE_CONV_2D kernels. [false] */
  includeDepthwise?: boolean;
};

/** The report of `LoadedModel.finetune`. */
export interface FinetuneReport {
  train: core.TrainReport;
  /** Parameters, non-zero parameters, MACs and sizes before and after (as pruning reports them). */
  before: core.ModelMetrics;
  after: core.ModelMetrics;
}

/** The report of `LoadedModel.quantizeAware`. */
export interface QatReport {
  train: core.TrainReport;
  /** The int8 export. */
  quantize: core.QuantReport;
  /** The static quantization the ranges started from. */
  staticQuantize: core.QuantReport | null;
}

export interface NpyInfo {
  shape: number[];
  dtype: 'float32' | 'float64' | 'int8' | 'uint8' | 'int32' | 'int64';
}

/** Codes only the JS layer reports. `no_simd`: the JS engine lacks WebAssembly SIMD.
 * `engine_crashed`: the engine trapped (a bug, or memory exhausted) and was restarted; models
 * loaded before are gone and must be loaded again. `internal`: a bug. */
export type JsErrorCode = 'no_simd' | 'engine_crashed' | 'internal';

/**
 * Stable error codes: the core's (`CoreErrorCode`, generated from crate/src/error.rs) and the JS
 * layer's. `resource_limit`: the model or data needs more memory than the budget (`maxMemory`)
 * allows.
 */
export type ErrorCode = core.CoreErrorCode | JsErrorCode;

/** Every code once; a code added in Rust (or here) without an entry fails to compile. */
const CODES: { [code in ErrorCode]: true } = {
  invalid_model: true,
  unsupported: true,
  invalid_input: true,
  invalid_argument: true,
  invalid_npy: true,
  cancelled: true,
  resource_limit: true,
  no_simd: true,
  engine_crashed: true,
  internal: true,
};

/** Codes the core (and the worker) may report; anything else from the engine becomes 'internal'. */
export const ERROR_CODES: readonly ErrorCode[] = Object.keys(CODES) as ErrorCode[];

/** Where an error applies (the core's `ErrorLocation`), and for resource_limit the figures. */
export interface ErrorDetails extends core.ErrorLocation {
  /** resource_limit: bytes asked (absent when beyond what 64-bit arithmetic counts). */
  requested?: number;
  /** resource_limit: the limit, in bytes. */
  limit?: number;
}

/** What a failed call rejects with. */
export class OptimizerError extends Error {
  readonly code: ErrorCode;
  readonly node?: number;
  readonly op?: string;
  readonly tensor?: number;
  readonly tensorName?: string;
  readonly requested?: number;
  readonly limit?: number;

  constructor(code: ErrorCode, message: string, where: ErrorDetails = {}) {
    super(message);
    this.name = 'OptimizerError';
    this.code = code;
    Object.assign(this, where);
  }

  /** True for errors caused by what the user gave (a bad file, data, option or budget), not by a bug. */
  get isUserError(): boolean {
    return this.code !== 'internal' && this.code !== 'engine_crashed';
  }
}

/** A progress report of long work. */
export interface Progress {
  stage: string;
  done: number;
  total: number;
}
