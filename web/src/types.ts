/**
 * Data types shared by the API, the worker and the CLI. They mirror the Rust core's serialized
 * structures (crate/src/summary.rs, crate/src/error.rs).
 */

export type DType =
  | 'f32' | 'f16' | 'bf16' | 'f64' | 'i4' | 'i8' | 'u8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'u64'
  | 'bool' | 'string' | 'complex64' | 'complex128' | 'resource' | 'variant' | 'i2' | 'u4' | 'f8e4m3' | 'f8e5m2';

/** Affine quantization: real = scale * (q - zero_point); per channel along `axis` when several scales. */
export interface QuantParams {
  scale: number[];
  zero_point: number[];
  axis: number;
  min?: number[];
  max?: number[];
}

export interface IoDetail {
  name: string;
  tensor: number;
  dtype: DType;
  shape: number[];
  quant?: QuantParams;
}

export interface LayerSummary {
  index: number;
  op: string;
  name: string;
  inputs: (number | null)[];
  outputs: number[];
  input_shape: number[];
  output_shape: number[];
  dtype: DType;
  params: number;
  macs: number;
  weights?: { tensor: number; dtype: DType; shape: number[]; quantization: 'per-channel' | 'per-tensor' | 'none' };
  activation?: string;
  executable: boolean;
}

export interface TensorSummary {
  index: number;
  name: string;
  dtype: DType;
  shape: number[];
  constant: boolean;
  bytes: number;
  quant?: QuantParams;
}

export interface ModelSummary {
  format: 'tflite';
  size_bytes: number;
  description: string;
  precision: 'float' | 'hybrid' | 'int8' | 'mixed';
  subgraphs: number;
  inputs: IoDetail[];
  outputs: IoDetail[];
  operators: { op: string; count: number }[];
  layers: LayerSummary[];
  tensors: TensorSummary[];
  parameters: number;
  parameter_bytes: number;
  macs: number;
  unsupported_ops: string[];
  /** Deploying with TensorFlow Lite Micro. */
  tflm: TflmReport;
}

/** One reason TensorFlow Lite Micro cannot run a model as it is. */
export interface TflmUnsupported {
  /** The operator's name (builtin name or custom code). */
  op: string;
  /** The operator's index in its subgraph. */
  node: number;
  /** The subgraph, when not the main one. */
  subgraph?: number;
  reason: string;
}

/** What deploying a model with TensorFlow Lite Micro takes (`inspect --json`'s `tflm`). */
export interface TflmReport {
  /** True when TFLM runs the model as it is (`unsupported` is empty). */
  supported: boolean;
  /** Operators TFLM lacks or refuses, hybrid (dynamic-range) weights, float operators in an int8 model. */
  unsupported: TflmUnsupported[];
  /** Predicted minimum tensor arena in bytes (TFLM's reference kernels); null when it cannot be planned. */
  arena_bytes: number | null;
  /** What the model costs in flash: the flatbuffer, read in place, uncompressed. */
  flash_bytes: number;
  /** The `MicroMutableOpResolver` methods the model needs (`AddConv2D`, ...), in order of use. */
  ops: string[];
  /** What `arena_bytes` only estimates (unmodelled kernels, control flow); empty when exact. */
  arena_estimated_for: string[];
}

/** Firmware files for TensorFlow Lite Micro (`LoadedModel.firmware`, the CLI's `--header`). */
export interface FirmwareFiles {
  /** `<id>.h`: extern declarations, `kTensorArenaSize`, `kOpCount` and `RegisterOps(resolver)`. */
  header_name: string;
  header: string;
  /** `<id>.cc`: the model as a 16-byte aligned array and its length. */
  source_name: string;
  source: string;
}

export type CalibrationMethod =
  | { method: 'auto' }
  | { method: 'minmax' }
  | { method: 'percentile'; percentile: number }
  | { method: 'entropy' }
  | { method: 'mse' };

/** Options of `LoadedModel.quantize`. Every field is optional; defaults in brackets. */
export interface QuantizeOptions {
  /** 'static' (full int8, needs calibration data) or 'dynamic' (int8 weights, float activations). ['static'] */
  mode?: 'static' | 'dynamic';
  /** How activation ranges are chosen. [{ method: 'auto' }] */
  calibration?: CalibrationMethod;
  /** Weight scales per output channel or per tensor. ['per-channel'] */
  granularity?: 'per-channel' | 'per-tensor';
  /** The quantized model's input/output type. ['int8'] */
  io?: 'int8' | 'float32';
  /** Correct each layer's bias for the mean shift weight rounding causes. [true] */
  biasCorrection?: boolean;
  /** Calibration samples also used to measure per-layer SQNR. [32] */
  reportSamples?: number;
}

export interface LayerQuantReport {
  index: number;
  op: string;
  name: string;
  kept_float: boolean;
  reason?: string;
  range?: [number, number];
  output_scale?: number;
  output_zero_point?: number;
  weights?: 'per-channel' | 'per-tensor';
  bias_correction?: number;
  sqnr_db?: number | null;
}

export interface QuantReport {
  mode: 'static' | 'dynamic';
  calibration?: string;
  granularity: string;
  io: string;
  bias_correction: boolean;
  calibration_samples: number;
  report_samples: number;
  folded_nodes: number;
  layers: LayerQuantReport[];
  output_sqnr_db: (number | null)[];
  kept_float: string[];
  /** With 'auto' calibration: every configuration tried, its held-out output SQNR, and the choice. */
  candidates?: { calibration: string; bias_correction: boolean; output_sqnr_db: number | null; chosen: boolean }[];
  notes: string[];
  size_before: number;
  size_after: number;
  calibration_ms: number;
  rewrite_ms: number;
  report_ms: number;
}

export type PruneMethod = 'global-magnitude' | 'layer-magnitude' | 'global-gradient' | 'layer-gradient' | 'random';

/** Options of `LoadedModel.prune`. Every field is optional; defaults in brackets. */
export interface PruneOptions {
  /** How weights are ranked: by |w| or |w·∂L/∂w|, across the model or per layer, or at random. ['global-magnitude'] */
  method?: PruneMethod;
  /** Fraction of the prunable weights to remove, in [0, 1). [0.5] */
  sparsity?: number;
  /** Remove whole output channels and neurons (the model shrinks) instead of zeroing weights. [false] */
  structured?: boolean;
  /** Also prune the last classifier layer (unstructured). [false] */
  includeLastLayer?: boolean;
  /** Also prune biases (unstructured). [false] */
  includeBias?: boolean;
  /** Also prune DEPTHWISE_CONV_2D kernels (unstructured; left whole by default, as TFMOT does). [false] */
  includeDepthwise?: boolean;
  /** Seed of the random method. [0] */
  seed?: number;
}

export interface LayerMetrics {
  node: number;
  op: string;
  name: string;
  params: number;
  nonzero_params: number;
  units: number;
  macs: number;
  effective_macs: number;
}

export interface ModelMetrics {
  params: number;
  nonzero_params: number;
  compression_ratio: number;
  macs: number;
  /** MACs whose weight is not zero. */
  effective_macs: number;
  size_bytes: number;
  gzip_bytes: number;
  layers: LayerMetrics[];
}

export interface PruneReport {
  method: PruneMethod;
  structured: boolean;
  requested_sparsity: number;
  /** Fraction of the prunable weights that are zero (unstructured) or gone (structured). */
  achieved_sparsity: number;
  prunable_weights: number;
  removed_weights: number;
  /** Structured: channels of the prunable channel groups, before and after. */
  channels?: [number, number];
  before: ModelMetrics;
  after: ModelMetrics;
  gradient_loss?: number;
  gradient_samples?: number;
  notes: string[];
  score_ms: number;
  prune_ms: number;
}

export interface Latency {
  mean_ms: number;
  median_ms: number;
  min_ms: number;
}

export interface EvalReport {
  samples: number;
  /** Top-1 accuracy against the labels, when labels were given. */
  accuracy?: number;
  reference?: {
    top1_agreement: number;
    output_sqnr_db: (number | null)[];
    accuracy?: number;
    size_bytes: number;
    latency: Latency;
  };
  size_bytes: number;
  /** Per-sample inference time: a short benchmark of the first sample, one at a time on one core,
   * after the evaluation (which runs the samples in batches on every core). */
  latency: Latency;
  outputs: IoDetail[];
}

export interface NpyInfo {
  shape: number[];
  dtype: 'float32' | 'float64' | 'int8' | 'uint8' | 'int32' | 'int64';
}

/**
 * Stable error codes: the first seven come from the core (crate/src/error.rs), the rest from the JS
 * layer. `resource_limit`: the model or data needs more memory than the budget (`maxMemory`)
 * allows. `engine_crashed`: the engine trapped (a bug, or memory exhausted) and was restarted;
 * models loaded before are gone and must be loaded again.
 */
export type ErrorCode =
  | 'invalid_model'
  | 'unsupported'
  | 'invalid_input'
  | 'invalid_argument'
  | 'invalid_npy'
  | 'cancelled'
  | 'resource_limit'
  | 'no_simd'
  | 'engine_crashed'
  | 'internal';

/** Codes the core (and the worker) may report; anything else from the engine becomes 'internal'. */
export const ERROR_CODES: readonly ErrorCode[] = [
  'invalid_model',
  'unsupported',
  'invalid_input',
  'invalid_argument',
  'invalid_npy',
  'cancelled',
  'resource_limit',
  'no_simd',
  'engine_crashed',
  'internal',
];

/** Where an error applies, and for resource_limit the figures. */
export interface ErrorDetails {
  node?: number;
  op?: string;
  tensor?: number;
  tensorName?: string;
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

/** How to train (fine-tuning, gradual pruning, quantization-aware training). */
export interface TrainOptions {
  /** Passes over the training data. [4] */
  epochs?: number;
  /** Samples per optimizer step. [32] */
  batchSize?: number;
  /** [0.001] */
  learningRate?: number;
  /** ['adam'] */
  optimizer?: 'adam' | 'sgd';
  /** SGD's momentum. [0.9] */
  momentum?: number;
  /** Decoupled weight decay for Adam, an L2 term for SGD; biases are not decayed. [0] */
  weightDecay?: number;
  /** [{ kind: 'constant' }] */
  lrSchedule?: { kind: 'constant' } | { kind: 'cosine' } | { kind: 'step'; every: number; factor: number };
  /** ['cross-entropy'] */
  loss?: 'cross-entropy' | 'binary-cross-entropy' | 'mean-squared-error';
  /** Fraction of the samples (taken from the end, as Keras does) held out for validation. [0.1] */
  validationSplit?: number;
  /** Stop after this many epochs without a better validation loss; 0 never stops early. [0] */
  earlyStopping?: number;
  /** Seeds shuffling and random scores. [0] */
  seed?: number;
}

/** TFMOT's pruning schedules. */
export type PruningSchedule =
  | {
      kind: 'polynomial';
      initialSparsity: number;
      finalSparsity: number;
      beginStep: number;
      /** The last step of training when null. */
      endStep: number | null;
      frequency: number;
      power: number;
    }
  | { kind: 'constant'; sparsity: number; beginStep: number; frequency: number };

/** Gradual pruning during training. */
export interface PruneDuring {
  method: PruneMethod;
  sparsity: number;
  /** When absent: TFMOT's polynomial schedule reaching `sparsity` two thirds of the way through
   * training, so the last third trains at the final sparsity. */
  schedule?: PruningSchedule;
  includeLastLayer?: boolean;
  /** Also prune DEPTHWISE_CONV_2D kernels (left whole by default, as TFMOT does). [false] */
  includeDepthwise?: boolean;
}

export interface EpochReport {
  epoch: number;
  loss: number;
  accuracy: number | null;
  valLoss: number | null;
  valAccuracy: number | null;
  learningRate: number;
  /** Fraction of the pruned layers' weights that are zero. */
  sparsity: number;
  ms: number;
}

export interface TrainReport {
  epochs: EpochReport[];
  /** The epoch whose weights the result has. */
  bestEpoch: number | null;
  steps: number;
  trainSamples: number;
  validationSamples: number;
  /** Why training ended before its last epoch (early stopping, a diverging loss, a stop). */
  stopped: string | null;
  /** The starting weights' validation loss and accuracy (with a validation split, without pruning);
   * `bestEpoch` is 0 when no epoch beat them. */
  startValLoss: number | null;
  startValAccuracy: number | null;
  sparsity: number;
  msPerEpoch: number;
}

/** Live training figures (progress events of training calls carry them). */
export interface TrainMetrics {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number | null;
  epochs: EpochReport[];
}

export interface FinetuneReport {
  train: TrainReport;
  /** Parameters, non-zero parameters, MACs and sizes before and after (as pruning reports them). */
  before: ModelMetrics;
  after: ModelMetrics;
}

export interface QatReport {
  train: TrainReport;
  /** The int8 export. */
  quantize: QuantReport;
  /** The static quantization the ranges started from. */
  staticQuantize: QuantReport | null;
}
