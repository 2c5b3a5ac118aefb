/**
 * The CLI's options: the tables `parseArgs` reads and the one parser per group of options (engine,
 * pruning, quantization, training), shared by every command that takes them.
 */
import type { ParseArgsConfig } from 'node:util';
import type {
  CalibrationMethod,
  PruneMethod,
  PruneSettings,
  PruningSchedule,
  QuantizeSettings,
  TrainOptions,
} from '../types.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** A mistake in the command line: exit code 1, the message and the command's usage. */
export class UsageError extends Error {}

export function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!allowed.includes(value as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}; got '${value}'`);
  return value as T;
}

/** The number of `--flag`, checked by `ok`; `what` says what it must be. */
export function number(values: Values, flag: string, ok: (v: number) => boolean, what: string): number {
  const v = Number(values[flag]);
  if (values[flag] === undefined || values[flag] === '' || !ok(v)) throw new UsageError(`--${flag} must be ${what}; got '${values[flag] ?? ''}'`);
  return v;
}

const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;

/** A whole number of epochs (from 1) given by `--flag`. */
export function epochsOf(values: Values, flag: string): number {
  return number(values, flag, positiveInt, 'a positive whole number');
}

/** Sizes such as 512M, 1.5G, 2GiB or 1000000 (bytes); K, M, G, T are powers of 1024. */
export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  const unit = m ? 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : 0;
  const bytes = m ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!(bytes >= 1 && Number.isSafeInteger(bytes))) {
    throw new UsageError(`${flag} must be a size such as 512M, 2G or a number of bytes; got '${text}'`);
  }
  return bytes;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Options = {
  'max-memory': { type: 'string' },
  threads: { type: 'string' },
  target: { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
};

export const COMMON_USAGE = '[--json] [--quiet] [--max-memory SIZE] [--threads N] [--target tflm|litert]';

/** The engine settings of --max-memory, --threads and --target. */
export function engineOptions(values: Values): { maxMemory?: number; threads?: number; target?: 'tflm' | 'litert' } {
  const maxMemory = values['max-memory'] === undefined ? undefined : parseSize(values['max-memory'] as string, '--max-memory');
  const threads =
    values.threads === undefined ? undefined : number(values, 'threads', (v) => Number.isInteger(v) && v >= 1 && v <= 64, 'a whole number from 1 to 64');
  const target = values.target === undefined ? undefined : oneOf(values.target as string, ['tflm', 'litert'] as const, '--target');
  return { maxMemory, threads, target };
}

/** Options of the commands that write a model. */
export const MODEL_OUTPUT_OPTIONS: Options = {
  output: { type: 'string', short: 'o' },
  report: { type: 'string' },
  header: { type: 'string' },
};

/** Evaluation data (and, for pruning, the samples gradient methods score). */
export const DATA_OPTIONS: Options = {
  data: { type: 'string', short: 'd' },
  labels: { type: 'string', short: 'l' },
};

// ---------------------------------------------------------------------------------------------
// Training

/** Options of the commands that train (finetune, prune --finetune-epochs, quantize --qat-epochs, optimize). */
export const TRAIN_OPTIONS: Options = {
  train: { type: 'string' },
  'train-labels': { type: 'string' },
  'batch-size': { type: 'string', default: '32' },
  'learning-rate': { type: 'string' },
  optimizer: { type: 'string', default: 'adam' },
  'lr-schedule': { type: 'string', default: 'constant' },
  loss: { type: 'string', default: 'cross-entropy' },
  'validation-split': { type: 'string', default: '0.1' },
  'early-stopping': { type: 'string', default: '0' },
  seed: { type: 'string', default: '0' },
};

export const TRAIN_USAGE =
  '--train X.npy --train-labels Y.npy [--batch-size 32] [--learning-rate 1e-3] [--optimizer adam|sgd]\n' +
  '       [--lr-schedule constant|cosine] [--loss cross-entropy|binary-cross-entropy|mean-squared-error]\n' +
  '       [--validation-split 0.1] [--early-stopping EPOCHS] [--seed N]';

/** The training options of the command line, checked; `defaultRate` unless --learning-rate. */
export function parseTrain(values: Values, epochs: number, defaultRate: number): TrainOptions {
  if (!values.train || !values['train-labels']) {
    throw new UsageError('training needs --train X.npy (inputs) and --train-labels Y.npy (class indices, one-hot or targets)');
  }
  return {
    epochs,
    batchSize: number(values, 'batch-size', positiveInt, 'a positive whole number'),
    learningRate:
      values['learning-rate'] === undefined
        ? defaultRate
        : number(values, 'learning-rate', (v) => v > 0 && v < 10, 'a positive number below 10'),
    optimizer: oneOf(values.optimizer as string, ['adam', 'sgd'] as const, '--optimizer'),
    lrSchedule: { kind: oneOf(values['lr-schedule'] as string, ['constant', 'cosine'], '--lr-schedule') },
    loss: oneOf(values.loss as string, ['cross-entropy', 'binary-cross-entropy', 'mean-squared-error'] as const, '--loss'),
    validationSplit: number(values, 'validation-split', (v) => v >= 0 && v < 0.9, 'a fraction in [0, 0.9)'),
    earlyStopping: number(values, 'early-stopping', (v) => Number.isInteger(v) && v >= 0, 'a whole number'),
    seed: number(values, 'seed', (v) => Number.isInteger(v) && v >= 0, 'a non-negative whole number'),
  };
}

// ---------------------------------------------------------------------------------------------
// Pruning

export const PRUNE_METHODS: readonly PruneMethod[] = ['global-magnitude', 'layer-magnitude', 'global-gradient', 'layer-gradient', 'random'];

export const PRUNE_OPTIONS: Options = {
  method: { type: 'string', default: 'global-magnitude' },
  sparsity: { type: 'string' },
  structured: { type: 'boolean', default: false },
  seed: { type: 'string', default: '0' },
  'include-last-layer': { type: 'boolean', default: false },
  'include-depthwise': { type: 'boolean', default: false },
  'include-bias': { type: 'boolean', default: false },
  schedule: { type: 'string', default: 'polynomial' },
};

export const PRUNE_USAGE =
  '--sparsity F [--method global-magnitude|layer-magnitude|global-gradient|layer-gradient|random]\n' +
  '       [--structured] [--seed N] [--include-last-layer] [--include-bias] [--include-depthwise]\n' +
  '       [--schedule polynomial|constant]';

/** The pruning options, checked (--sparsity is required; --schedule applies when pruning while training). */
export function parsePrune(values: Values): PruneSettings & { method: PruneMethod; sparsity: number; schedule?: PruningSchedule } {
  if (values.sparsity === undefined) throw new UsageError('--sparsity F is required (a fraction in [0, 1), e.g. 0.5)');
  const sparsity = number(values, 'sparsity', (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const kind = oneOf(values.schedule as string, ['polynomial', 'constant'], '--schedule');
  return {
    method: oneOf(values.method as string, PRUNE_METHODS, '--method'),
    sparsity,
    structured: values.structured as boolean,
    seed: number(values, 'seed', (v) => Number.isInteger(v) && v >= 0, 'a non-negative whole number'),
    includeLastLayer: values['include-last-layer'] as boolean,
    includeDepthwise: values['include-depthwise'] as boolean,
    includeBias: values['include-bias'] as boolean,
    schedule: kind === 'constant' ? { kind, sparsity, beginStep: 0, frequency: 1 } : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Quantization

export const QUANTIZE_OPTIONS: Options = {
  mode: { type: 'string', default: 'static' },
  calibration: { type: 'string' },
  'calibration-method': { type: 'string', default: 'auto' },
  percentile: { type: 'string', default: '99.99' },
  granularity: { type: 'string', default: 'per-channel' },
  io: { type: 'string', default: 'int8' },
  'no-bias-correction': { type: 'boolean', default: false },
};

export const QUANTIZE_USAGE =
  '[--mode static|dynamic] [--calibration X.npy] [--calibration-method auto|minmax|percentile|entropy|mse]\n' +
  '       [--percentile P] [--granularity per-channel|per-tensor] [--io int8|float32] [--no-bias-correction]';

/** The quantization options, checked (whether static mode has its data is the command's to check). */
export function parseQuantize(values: Values): QuantizeSettings & { mode: 'static' | 'dynamic' } {
  const mode = oneOf(values.mode as string, ['static', 'dynamic'], '--mode');
  const granularity = oneOf(values.granularity as string, ['per-channel', 'per-tensor'], '--granularity');
  const io = oneOf(values.io as string, ['int8', 'float32'], '--io');
  const name = oneOf(values['calibration-method'] as string, ['auto', 'minmax', 'percentile', 'entropy', 'mse'], '--calibration-method');
  const calibration: CalibrationMethod =
    name === 'percentile'
      ? { method: 'percentile', percentile: number(values, 'percentile', (p) => p > 50 && p <= 100, 'in (50, 100]') }
      : ({ method: name } as CalibrationMethod);
  return { mode, granularity, io, calibration, biasCorrection: !values['no-bias-correction'] };
}
