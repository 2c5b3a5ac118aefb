// Generated from the Rust definitions by ts-rs (crate/src/ts_bindings.rs): do not edit by hand.
// Regenerate with `UPDATE_TS_BINDINGS=1 cargo test -p tinyml-optimizer --lib ts_bindings`.

/**
 * Stable error codes, shared with the JS API and the CLI.
 */
export type CoreErrorCode = "invalid_model" | "unsupported" | "invalid_input" | "invalid_argument" | "invalid_npy" | "cancelled" | "resource_limit";

/**
 * Where in a model an error was found.
 */
export type ErrorLocation = { node?: number, op?: string, tensor?: number, tensorName?: string, };

/**
 * The element type of a tensor. The engine computes with `F32`, `I8`, `U8`, `I16`, `I32` and `I64`
 * (and reads `F16` constants); the rest exist so that any model can be read and written back unchanged.
 */
export type DType = "f32" | "f16" | "bf16" | "f64" | "i4" | "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "bool" | "string" | "complex64" | "complex128" | "resource" | "variant" | "i2" | "u4" | "f8e4m3" | "f8e5m2";

/**
 * Affine quantization: `real = scale * (q - zero_point)`.
 *
 * With one scale the parameters apply to the whole tensor. With several, element `i` along `axis`
 * uses `scale[i]` and `zero_point[i]` (per-channel quantization).
 */
export type QuantParams = { scale: Array<number>, zeroPoint: number[], 
/**
 * The dimension that per-channel parameters run along. Stored as the file had it even for
 * per-tensor parameters, so a round trip is exact; use [`QuantParams::channel_axis`] to ask.
 */
axis: number, 
/**
 * Optional recorded float range, kept for round trips (TFLite's `min`/`max`).
 */
min?: Array<number>, max?: Array<number>, };

/**
 * Name, type, shape and quantization of a model input or output.
 */
export type IoDetail = { name: string, tensor: number, dtype: DType, shape: Array<number>, quant?: QuantParams, };

export type OpCount = { op: string, count: number, };

export type WeightSummary = { tensor: number, dtype: DType, shape: Array<number>, 
/**
 * "per-channel", "per-tensor" or "none".
 */
quantization: 'per-channel' | 'per-tensor' | 'none', };

export type LayerSummary = { index: number, op: string, 
/**
 * The name of the layer's (first) output tensor.
 */
name: string, inputs: Array<number | null>, outputs: Array<number>, inputShape: Array<number>, outputShape: Array<number>, dtype: DType, 
/**
 * Elements of the constant operands (weights and bias).
 */
params: number, macs: number, weights?: WeightSummary, activation?: string, executable: boolean, };

export type TensorSummary = { index: number, name: string, dtype: DType, shape: Array<number>, constant: boolean, bytes: number, quant?: QuantParams, };

export type ModelSummary = { format: 'tflite', sizeBytes: number, description: string, 
/**
 * "float", "hybrid" (int8 weights, float activations), "int8" (full integer) or "mixed".
 */
precision: 'float' | 'hybrid' | 'int8' | 'mixed', subgraphs: number, inputs: Array<IoDetail>, outputs: Array<IoDetail>, operators: Array<OpCount>, layers: Array<LayerSummary>, tensors: Array<TensorSummary>, 
/**
 * Elements of the learned constants (weights, biases, other float or quantized constants);
 * integer shape, axis and padding operands are not parameters.
 */
parameters: number, 
/**
 * Bytes of those constants in the file.
 */
parameterBytes: number, 
/**
 * Multiply-accumulates of one inference (convolutions, FULLY_CONNECTED, LSTM matrices).
 */
macs: number, 
/**
 * Operators our engine cannot execute yet, by name (they still survive a round trip).
 */
unsupportedOps: Array<string>, 
/**
 * Deploying with TensorFlow Lite Micro: support, predicted arena, flash, resolver operators.
 * Only the full engine (the `optimizer` feature) computes it, always: the inference-only core
 * has no such field (the TFLM arena planner and its serialization would be 10 KB of its
 * download), and the package asks the full engine for it (`LoadedModel.tflm()`).
 */
tflm?: TflmReport, };

/**
 * One reason TFLM cannot run (or should not run) a model as it is.
 */
export type TflmUnsupported = { 
/**
 * The operator's name (builtin name or custom code).
 */
op: string, 
/**
 * The operator's index in its subgraph.
 */
node: number, 
/**
 * The subgraph, when not the main one.
 */
subgraph?: number, reason: string, };

/**
 * What deploying a model with TFLM takes: the `tflm` object of `inspect --json`.
 */
export type TflmReport = { 
/**
 * True when TFLM runs the model as it is (`unsupported` is empty).
 */
supported: boolean, 
/**
 * Operators TFLM lacks or refuses, hybrid weights, float operators in an int8 model.
 */
unsupported: Array<TflmUnsupported>, 
/**
 * The predicted minimum tensor arena in bytes (TFLM's reference kernels), or `None` when the
 * model is too large to plan.
 */
arenaBytes: number | null, 
/**
 * What the model costs in flash: TFLM reads the flatbuffer in place, uncompressed.
 */
flashBytes: number, 
/**
 * The `MicroMutableOpResolver` methods the model needs (`AddConv2D`, ...), in order of use.
 */
ops: Array<string>, 
/**
 * What `arena_bytes` only estimates (see [`ArenaPlan::estimated_for`]); empty when every
 * allocation is modelled.
 */
arenaEstimatedFor: Array<string>, };

/**
 * The two files, with the names the `.cc` expects (`#include "<header_name>"`).
 */
export type FirmwareFiles = { headerName: string, header: string, sourceName: string, source: string, };

export type QuantizeMode = "static" | "dynamic";

export type Granularity = "per-channel" | "per-tensor";

/**
 * The element type of the quantized model's inputs and outputs.
 */
export type IoType = "int8" | "float32";

/**
 * How a tensor's range is chosen from its observations.
 */
export type CalibrationMethod = { "method": "auto" } | { "method": "minmax" } | { "method": "percentile", percentile: number, } | { "method": "entropy" } | { "method": "mse" };

export type QuantizeOptions = { mode: QuantizeMode, calibration: CalibrationMethod, granularity: Granularity, io: IoType, biasCorrection: boolean, 
/**
 * Calibration samples also used to measure per-layer SQNR for the report (0 skips it).
 */
reportSamples: number, 
/**
 * Calibration samples `auto` scores each candidate on.
 */
selectSamples: number, };

export type LayerQuantReport = { 
/**
 * Index of the node in the quantized model.
 */
index: number, op: string, 
/**
 * Output tensor name.
 */
name: string, 
/**
 * True when the operator stayed in float (with DEQUANTIZE/QUANTIZE around it).
 */
keptFloat: boolean, reason?: string, 
/**
 * Calibrated real range of the output.
 */
range?: [number, number], outputScale?: number, outputZeroPoint?: number, 
/**
 * "per-channel", "per-tensor" or absent for operators without weights.
 */
weights?: Granularity, 
/**
 * Largest bias change bias correction made, in real units.
 */
biasCorrection?: number, 
/**
 * SQNR of this layer's output against the float model, in dB.
 */
sqnrDb?: number, };

/**
 * One configuration `auto` calibration tried.
 */
export type CalibrationCandidate = { calibration: string, biasCorrection: boolean, 
/**
 * Mean output SQNR over the scoring samples, in dB.
 */
outputSqnrDb: number | null, chosen: boolean, };

export type QuantReport = { mode: QuantizeMode, calibration?: string, granularity: Granularity, io: IoType, biasCorrection: boolean, calibrationSamples: number, reportSamples: number, 
/**
 * Nodes folded into constants before quantizing.
 */
foldedNodes: number, layers: Array<LayerQuantReport>, 
/**
 * Per model output: SQNR of the quantized model's output against the float model's.
 */
outputSqnrDb: Array<number | null>, 
/**
 * Operators left in float, with the reason.
 */
keptFloat: Array<string>, 
/**
 * What `auto` calibration compared (empty for an explicit method).
 */
candidates?: Array<CalibrationCandidate>, notes: Array<string>, sizeBefore: number, sizeAfter: number, calibrationMs: number, 
/**
 * Building and scoring the candidates (with `auto`, it includes measuring the last one, which
 * shares its round).
 */
rewriteMs: number, reportMs: number, };

export type PruneMethod = "global-magnitude" | "layer-magnitude" | "global-gradient" | "layer-gradient" | "random";

export type PruneOptions = { method: PruneMethod, 
/**
 * Fraction of the prunable weights to remove, in [0, 1).
 */
sparsity: number, 
/**
 * Remove whole output channels / neurons instead of single weights.
 */
structured: boolean, 
/**
 * Also prune the last classifier layer's weights (unstructured only).
 */
includeLastLayer: boolean, 
/**
 * Also prune biases (unstructured only; structured pruning removes a channel's bias with it).
 */
includeBias: boolean, 
/**
 * Also prune DEPTHWISE_CONV_2D kernels (unstructured only; see [`unstructured_layers`]).
 */
includeDepthwise: boolean, 
/**
 * Seed of the random method.
 */
seed: number, };

export type LayerMetrics = { node: number, op: string, 
/**
 * The layer's output tensor name.
 */
name: string, 
/**
 * Weights and bias values.
 */
params: number, nonzeroParams: number, 
/**
 * Output channels or neurons.
 */
units: number, macs: number, effectiveMacs: number, };

export type ModelMetrics = { 
/**
 * All learned constants (as `inspect` counts parameters).
 */
params: number, nonzeroParams: number, 
/**
 * `params / nonzero_params`.
 */
compressionRatio: number, macs: number, effectiveMacs: number, sizeBytes: number, 
/**
 * Size of the `.tflite` file after gzip (deflate level 6 plus the 18-byte gzip frame).
 */
gzipBytes: number, 
/**
 * Per weighted layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED).
 */
layers: Array<LayerMetrics>, };

/**
 * What pruning did, per layer and in total.
 */
export type PruneReport = { method: PruneMethod, structured: boolean, requestedSparsity: number, 
/**
 * Fraction of the prunable weights that are zero (unstructured) or removed (structured).
 */
achievedSparsity: number, prunableWeights: number, removedWeights: number, 
/**
 * Structured: output channels/neurons before and after over the prunable channel groups.
 */
channels?: [number, number], before: ModelMetrics, after: ModelMetrics, 
/**
 * Mean loss over the gradient batch (gradient methods).
 */
gradientLoss?: number, gradientSamples?: number, notes: Array<string>, scoreMs: number, pruneMs: number, };

export type Latency = { meanMs: number, medianMs: number, minMs: number, };

export type ReferenceComparison = { 
/**
 * Fraction of samples whose top-1 class equals the reference model's.
 */
top1Agreement: number, 
/**
 * Per output: SQNR of this model's output against the reference's, in dB.
 */
outputSqnrDb: Array<number | null>, accuracy?: number, sizeBytes: number, 
/**
 * The reference model's per-sample inference time, measured as [`EvalReport::latency`].
 */
latency: Latency, };

export type EvalReport = { samples: number, 
/**
 * Top-1 accuracy against the labels (output 0), when labels were given.
 */
accuracy?: number, reference?: ReferenceComparison, sizeBytes: number, 
/**
 * Per-sample inference time with our engine (wasm in the browser and Node): a short
 * benchmark of the first sample, one at a time on one core, as the last task of the
 * evaluation's round (the evaluation itself runs samples in batches on every core, which says
 * nothing about the latency of one inference).
 */
latency: Latency, outputs: Array<IoDetail>, };

/**
 * What a model is trained to minimise.
 */
export type Loss = "cross-entropy" | "binary-cross-entropy" | "mean-squared-error";

export type OptimizerKind = "adam" | "sgd";

/**
 * The learning rate over training.
 */
export type LrSchedule = { "kind": "constant" } | { "kind": "cosine" } | { "kind": "step", every: number, factor: number, };

/**
 * How sparse the pruned layers are at each step, as TFMOT defines it.
 */
export type PruningSchedule = { "kind": "polynomial", initialSparsity: number, finalSparsity: number, beginStep: number, endStep: number | null, frequency: number, power: number, } | { "kind": "constant", sparsity: number, beginStep: number, frequency: number, };

/**
 * How to train.
 */
export type TrainOptions = { epochs: number, batchSize: number, learningRate: number, optimizer: OptimizerKind, 
/**
 * SGD's momentum.
 */
momentum: number, 
/**
 * Weight decay (decoupled for Adam, an L2 term for SGD); biases are not decayed.
 */
weightDecay: number, lrSchedule: LrSchedule, loss: Loss, 
/**
 * The fraction of the samples, taken from the end as Keras does, kept for validation.
 */
validationSplit: number, 
/**
 * Stop after this many epochs without a better validation loss (0: never).
 */
earlyStopping: number, seed: number, };

/**
 * Pruning during training.
 */
export type PruneDuring = { method: PruneMethod, 
/**
 * TFMOT's default polynomial schedule to the target sparsity when absent.
 */
schedule: PruningSchedule | null, sparsity: number, includeLastLayer: boolean, 
/**
 * Also prune DEPTHWISE_CONV_2D kernels (left whole by default, as TFMOT does).
 */
includeDepthwise: boolean, };

/**
 * One epoch of a training run.
 */
export type EpochReport = { epoch: number, loss: number, accuracy: number | null, valLoss: number | null, valAccuracy: number | null, learningRate: number, 
/**
 * Fraction of the pruned layers' weights that are zero at the end of the epoch.
 */
sparsity: number, ms: number, };

/**
 * Which weights a run returns.
 */
export type Kept = "start" | "best" | "last";

/**
 * What a training run did.
 */
export type TrainReport = { epochs: Array<EpochReport>, 
/**
 * The epoch whose weights the result has (by validation loss, or training loss without a
 * validation split; QAT ranks by validation accuracy first). `Some(0)`: the starting weights,
 * which no epoch beat on the validation samples (fine-tuning and QAT never return a model
 * worse there than the one they started from).
 */
bestEpoch: number | null, steps: number, trainSamples: number, validationSamples: number, 
/**
 * Why training ended before its last epoch: early stopping, a diverging loss, or a stop.
 */
stopped: string | null, 
/**
 * The starting weights' validation loss and accuracy (with a validation split, without
 * pruning).
 */
startValLoss: number | null, startValAccuracy: number | null, 
/**
 * Which weights the result has.
 */
kept: Kept, 
/**
 * The pruned layers' sparsity in the result.
 */
sparsity: number, msPerEpoch: number, };

/**
 * Live figures for progress displays: the last step's and the epochs so far.
 */
export type TrainMetrics = { epoch: number, step: number, steps: number, loss: number, accuracy: number | null, epochs: Array<EpochReport>, };
