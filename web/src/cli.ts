#!/usr/bin/env node
/**
 * tinyml-optimizer: the command line. Every command runs the engine in a worker thread.
 *
 * Exit codes: 0 success, 1 user error (bad model, data, option or usage, a file that cannot be read or
 * written, a model over the memory budget), 2 internal error. Output files are written atomically.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createOptimizer } from './node.js';
import { FileError, reasonOf, sameFile, writeFilesAtomically, type OutFile } from './files.js';
import { formatEvalReport, formatPruneReport, formatQuantReport, formatSummary } from './format.js';
import {
  OptimizerError,
  type CalibrationMethod,
  type Progress,
  type PruneMethod,
  type PruningSchedule,
  type QuantizeOptions,
  type TrainMetrics,
  type TrainOptions,
} from './types.js';
import type { LoadedModel } from './client.js';

const EXIT_OK = 0;
const EXIT_USER = 1;
const EXIT_INTERNAL = 2;

type Values = Record<string, string | boolean | undefined>;

interface Command {
  summary: string;
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals: number;
  run(args: { values: Values; positionals: string[] }): Promise<void>;
}

class UsageError extends Error {}

function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!allowed.includes(value as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}; got '${value}'`);
  return value as T;
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new FileError(path, reasonOf(e), 'read', what);
  }
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

/** The engine for a command, with the memory budget of --max-memory and the cores of --threads. */
function engine(values: Values) {
  const maxMemory = values['max-memory'] === undefined ? undefined : parseSize(values['max-memory'] as string, '--max-memory');
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64)) {
      throw new UsageError(`--threads must be a whole number from 1 to 64, got '${values.threads}'`);
    }
  }
  const target = values.target === undefined ? undefined : oneOf(values.target as string, ['tflm', 'litert'] as const, '--target');
  return createOptimizer({ maxMemory, threads, target });
}

/** Options of the commands that train (finetune, prune --finetune-epochs, quantize --qat-epochs). */
const TRAIN_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
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

const TRAIN_USAGE =
  '--train X.npy --train-labels Y.npy [--batch-size 32] [--learning-rate 1e-3] [--optimizer adam|sgd]\n' +
  '       [--lr-schedule constant|cosine] [--loss cross-entropy|binary-cross-entropy|mean-squared-error]\n' +
  '       [--validation-split 0.1] [--early-stopping EPOCHS] [--seed N]';

function number(values: Values, flag: string, ok: (v: number) => boolean, what: string): number {
  const v = Number(values[flag]);
  if (!ok(v)) throw new UsageError(`--${flag} must be ${what}; got '${values[flag]}'`);
  return v;
}

/** The training options of the command line, checked. */
function trainOptions(values: Values, epochs: number, defaultRate: number): TrainOptions {
  return {
    epochs,
    batchSize: number(values, 'batch-size', (v) => Number.isInteger(v) && v >= 1, 'a positive whole number'),
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

/** The training data of --train and --train-labels. */
async function trainData(values: Values): Promise<{ data: Uint8Array; labels: Uint8Array }> {
  if (!values.train || !values['train-labels']) {
    throw new UsageError('training needs --train X.npy (inputs) and --train-labels Y.npy (class indices, one-hot or targets)');
  }
  const [data, labels] = await Promise.all([
    readInput(values.train as string, 'training data'),
    readInput(values['train-labels'] as string, 'training labels'),
  ]);
  return { data, labels };
}

/** Live training figures on stderr (a line per epoch), for interactive terminals. */
function trainReporter(label: string) {
  const bar = progressBar(label);
  let epochs = 0;
  return {
    bar,
    onMetrics(m: TrainMetrics) {
      if (process.stderr.isTTY && m.epochs.length > epochs) {
        const e = m.epochs[m.epochs.length - 1];
        bar.done();
        const acc = e.valAccuracy ?? e.accuracy;
        process.stderr.write(
          `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}${e.valLoss != null ? `, validation loss ${e.valLoss.toFixed(4)}` : ''}` +
            `${acc != null ? `, accuracy ${(acc * 100).toFixed(1)}%` : ''}${e.sparsity > 0 ? `, sparsity ${(e.sparsity * 100).toFixed(1)}%` : ''}\n`,
        );
      }
      epochs = m.epochs.length;
    },
  };
}

/** Stops training gracefully on Ctrl-C: the best model so far is written. */
function stopOnInterrupt(): { signal: AbortSignal; release(): void } {
  const ac = new AbortController();
  const handler = () => {
    process.stderr.write('\nstopping after the current step (Ctrl-C again to abort)...\n');
    process.off('SIGINT', handler);
    ac.abort();
  };
  process.on('SIGINT', handler);
  return { signal: ac.signal, release: () => process.off('SIGINT', handler) };
}

/** Runs a training call with progress, epoch lines and Ctrl-C stopping it gracefully. */
async function training<T>(label: string, call: (opts: { onProgress: (p: Progress) => void; onMetrics: (m: TrainMetrics) => void; signal: AbortSignal }) => Promise<T>): Promise<T> {
  const r = trainReporter(label);
  const stop = stopOnInterrupt();
  try {
    return await call({ onProgress: (p) => r.bar.update(p), onMetrics: (m) => r.onMetrics(m), signal: stop.signal });
  } finally {
    r.bar.done();
    stop.release();
  }
}

/** Writes a trained model and prints the training summary. */
function printTrained(values: Values, out: Uint8Array, ms: number, report: { train: { epochs: { epoch: number; loss: number; valLoss: number | null; accuracy: number | null; valAccuracy: number | null; sparsity: number }[]; stopped: string | null; msPerEpoch: number } }) {
  if (values.json) {
    process.stdout.write(JSON.stringify({ output: values.output, bytes: out.length, ms, report }) + '\n');
    return;
  }
  const t = report.train;
  const last = t.epochs[t.epochs.length - 1];
  const acc = last ? (last.valAccuracy ?? last.accuracy) : null;
  process.stdout.write(
    `wrote ${values.output} (${out.length.toLocaleString('en-US')} bytes) after ${t.epochs.length} epoch(s), ` +
      `${(t.msPerEpoch / 1000).toFixed(2)} s/epoch` +
      (acc != null ? `; ${last.valAccuracy != null ? 'validation ' : ''}accuracy ${(acc * 100).toFixed(2)}%` : '') +
      (last && last.sparsity > 0 ? `; sparsity ${(last.sparsity * 100).toFixed(1)}%` : '') +
      (t.stopped ? `\n(stopped: ${t.stopped})` : '') +
      '\n',
  );
}

interface Named {
  flag: string;
  path: string;
}

/**
 * Refuses outputs that would overwrite each other or an input: only `-o` may replace the model it
 * reads (it is written atomically, so the input survives any failure).
 */
async function checkOutputs(inputs: Named[], outputs: Named[]): Promise<void> {
  for (const [i, o] of outputs.entries()) {
    for (const other of outputs.slice(i + 1)) {
      if (await sameFile(o.path, other.path)) {
        throw new UsageError(`${other.flag} and ${o.flag} name the same file '${o.path}': one would replace the other`);
      }
    }
    for (const input of inputs) {
      if ((o.flag !== '-o' || input.flag !== 'MODEL') && (await sameFile(o.path, input.path))) {
        throw new UsageError(`${o.flag} names the input ${input.flag} '${input.path}': writing it would replace the input`);
      }
    }
  }
}

/** The `.cc` beside a `--header` path: `fw/model.h` → `fw/model.cc`. */
function sourceBeside(header: string): string {
  return header.replace(/\.(h|hh|hpp)$/i, '') + '.cc';
}

/**
 * Writes the model to -o and, with --header and --report, its TFLite Micro firmware files (the
 * header and the `.cc` beside it) and report: all or none.
 */
async function writeModel(values: Values, model: LoadedModel, bytes: Uint8Array, report?: unknown): Promise<void> {
  const files: OutFile[] = [{ path: values.output as string, data: bytes }];
  if (values.header) {
    const header = values.header as string;
    const fw = await model.firmware(basename(values.output as string));
    // The .cc includes the header by the name it is written under.
    const source = fw.source.replace(`#include "${fw.header_name}"`, `#include "${basename(header)}"`);
    files.push({ path: header, data: fw.header }, { path: sourceBeside(header), data: source });
  }
  if (values.report !== undefined && report !== undefined) {
    files.push({ path: values.report as string, data: JSON.stringify(report, null, 2) + '\n' });
  }
  await writeFilesAtomically(files);
}

/** The output paths of a model-writing command, checked against the model it reads. */
async function checkModelOutputs(values: Values, model: string, extraInputs: Named[] = []): Promise<void> {
  const outputs: Named[] = [{ flag: '-o', path: values.output as string }];
  if (values.header) {
    outputs.push({ flag: '--header', path: values.header as string });
    outputs.push({ flag: '--header (its .cc)', path: sourceBeside(values.header as string) });
  }
  if (values.report) outputs.push({ flag: '--report', path: values.report as string });
  await checkOutputs([{ flag: 'MODEL', path: model }, ...extraInputs], outputs);
}

/** A progress bar on stderr for interactive terminals; silent otherwise (logs stay clean). */
export function progressBar(label: string): { update(p: Progress): void; done(): void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  let shown = false;
  return {
    update(p) {
      if (!tty || p.total <= 1) return;
      const now = Date.now();
      if (now - last < 80 && p.done < p.total) return;
      last = now;
      const width = 28;
      const filled = Math.round((p.done / p.total) * width);
      const pct = Math.floor((p.done / p.total) * 100);
      process.stderr.write(`\r${label} ${p.stage} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${p.done}/${p.total}`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}

/** `prune --finetune-epochs`: gradual pruning during training (or structured, then fine-tuning). */
async function pruneDuringTraining(values: Values, modelPath: string): Promise<void> {
  const epochs = number(values, 'finetune-epochs', (v) => Number.isInteger(v) && v >= 1, 'a positive whole number');
  const method = oneOf(
    values.method as string,
    ['global-magnitude', 'layer-magnitude', 'global-gradient', 'layer-gradient', 'random'] as PruneMethod[],
    '--method',
  );
  const sparsity = number(values, 'sparsity', (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const kind = oneOf(values.schedule as string, ['polynomial', 'constant'], '--schedule');
  const schedule: PruningSchedule | undefined = kind === 'constant' ? { kind, sparsity, beginStep: 0, frequency: 1 } : undefined;
  const train = trainOptions(values, epochs, 1e-3);
  await checkModelOutputs(values, modelPath, [
    { flag: '--train', path: values.train as string },
    { flag: '--train-labels', path: values['train-labels'] as string },
  ]);
  const [modelBytes, { data, labels }] = await Promise.all([readInput(modelPath, 'model'), trainData(values)]);
  const opt = engine(values);
  try {
    let model: LoadedModel = await opt.loadModel(modelBytes);
    const start = performance.now();
    let pruneReport: unknown;
    if (values.structured) {
      const r = await model.prune({ method, sparsity, structured: true, data, labels });
      pruneReport = r.report;
      model = r.model;
    }
    const prune = values.structured ? undefined : {
      method,
      sparsity,
      schedule,
      includeLastLayer: values['include-last-layer'] as boolean,
      includeDepthwise: values['include-depthwise'] as boolean,
    };
    const { model: tuned, report } = await training('prune', (o) => model.finetune({ ...train, data, labels, prune }, o));
    const ms = performance.now() - start;
    const out = await tuned.toBytes();
    const full = { ...report, prune: pruneReport };
    await writeModel(values, tuned, out, full);
    printTrained(values, out, ms, full);
  } finally {
    opt.terminate();
  }
}

/** `quantize --qat-epochs`: quantization-aware training, then the int8 model. */
async function quantizeAware(values: Values, modelPath: string): Promise<void> {
  const epochs = number(values, 'qat-epochs', (v) => Number.isInteger(v) && v >= 1, 'a positive whole number');
  const train = trainOptions(values, epochs, 2e-4);
  const granularity = oneOf(values.granularity as string, ['per-channel', 'per-tensor'], '--granularity');
  const io = oneOf(values.io as string, ['int8', 'float32'], '--io');
  await checkModelOutputs(values, modelPath, [
    { flag: '--train', path: values.train as string },
    { flag: '--train-labels', path: values['train-labels'] as string },
  ]);
  const [modelBytes, { data, labels }] = await Promise.all([readInput(modelPath, 'model'), trainData(values)]);
  const opt = engine(values);
  try {
    const model = await opt.loadModel(modelBytes);
    const start = performance.now();
    const { model: q, report } = await training('quantize', (o) =>
      model.quantizeAware({ granularity, io, data, labels, train }, o),
    );
    const ms = performance.now() - start;
    const out = await q.toBytes();
    await writeModel(values, q, out, report);
    printTrained(values, out, ms, report);
  } finally {
    opt.terminate();
  }
}

const commands: Record<string, Command> = {
  inspect: {
    summary: 'show a model: operators, layers, tensors, parameters, MACs, quantization, I/O',
    usage: 'tinyml-optimizer inspect MODEL.tflite [--json]',
    help: 'Prints operators with counts, each layer (shapes, parameters, MACs, dtypes), every tensor with its\nquantization parameters, the size on disk, and the operators the engine cannot run yet.',
    options: { json: { type: 'boolean', default: false } },
    positionals: 1,
    async run({ values, positionals }) {
      const bytes = await readInput(positionals[0], 'model');
      const opt = engine(values);
      try {
        const summary = await opt.inspect(bytes);
        if (values.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        else process.stdout.write(formatSummary(basename(positionals[0]), summary));
      } finally {
        opt.terminate();
      }
    },
  },
  run: {
    summary: 'run a batch through the model with our engine',
    usage: 'tinyml-optimizer run MODEL.tflite --input X.npy --output Y.npy [--raw] [--streaming]',
    help:
      'X is [N, ...input shape]: float32 (quantized with the input parameters when the model takes int8),\n' +
      'or already in the model input type. Y is [N, ...output shape], float32 (dequantized), or with --raw\n' +
      "the model's own output type. A model with several outputs writes Y.npy, Y.1.npy, ...\n" +
      'Samples are independent: recurrent state (LSTM) starts from zero for each. With --streaming, samples run in\n' +
      'order and the state carries from one to the next (frames of a stream, e.g. noise suppression).',
    options: {
      input: { type: 'string', short: 'i' },
      output: { type: 'string', short: 'o' },
      raw: { type: 'boolean', default: false },
      streaming: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    positionals: 1,
    async run({ values, positionals }) {
      if (!values.input) throw new UsageError('--input X.npy is required');
      if (!values.output) throw new UsageError('--output Y.npy is required');
      const [modelBytes, x] = await Promise.all([
        readInput(positionals[0], 'model'),
        readInput(values.input as string, 'input'),
      ]);
      const inputs = [
        { flag: 'MODEL', path: positionals[0] },
        { flag: '--input', path: values.input as string },
      ];
      await checkOutputs(inputs, [{ flag: '--output', path: values.output as string }]);
      const opt = engine(values);
      const bar = progressBar('run');
      try {
        const model = await opt.loadModel(modelBytes);
        const start = performance.now();
        const outs = await model.run(x, {
          raw: values.raw as boolean,
          streaming: values.streaming as boolean,
          onProgress: (p) => bar.update(p),
        });
        const ms = performance.now() - start;
        bar.done();
        if (outs.length === 0) throw new OptimizerError('invalid_model', 'the model has no outputs: nothing to write');
        const out = values.output as string;
        const paths = outs.map((_, i) => (i === 0 ? out : out.replace(/(\.npy)?$/, `.${i}.npy`)));
        await checkOutputs(inputs, paths.map((p, i) => ({ flag: i === 0 ? '--output' : `output ${i}`, path: p })));
        const infos = await Promise.all(outs.map((o) => opt.npyInfo(o)));
        // All outputs or none.
        await writeFilesAtomically(outs.map((o, i) => ({ path: paths[i], data: o })));
        const n = infos[0]?.shape[0] ?? 0;
        if (values.json) {
          process.stdout.write(JSON.stringify({ samples: n, ms, outputs: paths.map((p, i) => ({ path: p, ...infos[i] })) }) + '\n');
        } else {
          const per = n > 0 ? ` (${(ms / n).toFixed(2)} ms/sample)` : '';
          process.stdout.write(`ran ${n} samples in ${ms.toFixed(1)} ms${per}\n`);
          paths.forEach((p, i) => process.stdout.write(`  ${p}: ${infos[i].dtype} [${infos[i].shape.join(', ')}]\n`));
        }
      } finally {
        bar.done();
        opt.terminate();
      }
    },
  },
  quantize: {
    summary: 'quantize a float model to int8 (static, with calibration data) or dynamic range',
    usage:
      'tinyml-optimizer quantize MODEL.tflite -o OUT.tflite [--mode static|dynamic] [--calibration X.npy]\n' +
      '       [--calibration-method auto|minmax|percentile|entropy|mse] [--percentile P] [--granularity per-channel|per-tensor]\n' +
      '       [--io int8|float32] [--no-bias-correction] [--report REPORT.json] [--header OUT.h] [--json]\n' +
      `       quantization-aware training: --qat-epochs N ${TRAIN_USAGE}`,
    help:
      'Static mode (default) needs --calibration: a .npy batch of representative inputs [N, ...input shape], N >= 10\n' +
      '(100-500 recommended). It writes a full-int8 model: int8 weights (per channel by default), int8 activations,\n' +
      'int32 biases, int8 inputs and outputs unless --io float32. Dynamic mode needs no data: int8 weights, float\n' +
      'activations. The report gives, per layer, the output parameters and the SQNR against the float model.\n' +
      "'auto' calibration (default) tries min/max, percentile and MSE ranges, then bias correction on the best, and\n" +
      'keeps the model that tracks the float one best on held-out calibration samples.\n' +
      'With --qat-epochs N, quantization-aware training follows: static quantization on the first 200 training\n' +
      'samples starts the ranges, N epochs train with fake quantization (learning rate 2e-4 unless given), and the\n' +
      'same full-int8 model is written. Ctrl-C stops training after the current step and keeps the best model.',
    options: {
      output: { type: 'string', short: 'o' },
      mode: { type: 'string', default: 'static' },
      calibration: { type: 'string' },
      'calibration-method': { type: 'string', default: 'auto' },
      percentile: { type: 'string', default: '99.99' },
      granularity: { type: 'string', default: 'per-channel' },
      io: { type: 'string', default: 'int8' },
      'no-bias-correction': { type: 'boolean', default: false },
      'qat-epochs': { type: 'string' },
      ...TRAIN_OPTIONS,
      report: { type: 'string' },
      header: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    positionals: 1,
    async run({ values, positionals }) {
      if (!values.output) throw new UsageError('-o OUT.tflite is required');
      if (values['qat-epochs'] !== undefined) return quantizeAware(values, positionals[0]);
      const mode = oneOf(values.mode as string, ['static', 'dynamic'], '--mode');
      const granularity = oneOf(values.granularity as string, ['per-channel', 'per-tensor'], '--granularity');
      const io = oneOf(values.io as string, ['int8', 'float32'], '--io');
      const methodName = oneOf(values['calibration-method'] as string, ['auto', 'minmax', 'percentile', 'entropy', 'mse'], '--calibration-method');
      let calibration: CalibrationMethod;
      if (methodName === 'percentile') {
        const p = Number(values.percentile);
        if (!(p > 50 && p <= 100)) throw new UsageError(`--percentile must be in (50, 100], got '${values.percentile}'`);
        calibration = { method: 'percentile', percentile: p };
      } else {
        calibration = { method: methodName } as CalibrationMethod;
      }
      if (mode === 'static' && !values.calibration) {
        throw new UsageError('static quantization needs --calibration X.npy (representative inputs); or use --mode dynamic');
      }
      await checkModelOutputs(values, positionals[0], values.calibration ? [{ flag: '--calibration', path: values.calibration as string }] : []);
      const [modelBytes, calib] = await Promise.all([
        readInput(positionals[0], 'model'),
        values.calibration && mode === 'static' ? readInput(values.calibration as string, 'calibration data') : Promise.resolve(undefined),
      ]);
      const options: QuantizeOptions = { mode, granularity, io, calibration, biasCorrection: !values['no-bias-correction'] };
      const opt = engine(values);
      const bar = progressBar('quantize');
      try {
        const model = await opt.loadModel(modelBytes);
        const start = performance.now();
        const { model: q, report } = await model.quantize({ ...options, calibrationData: calib }, { onProgress: (p) => bar.update(p) });
        const ms = performance.now() - start;
        bar.done();
        const out = await q.toBytes();
        await writeModel(values, q, out, report);
        if (values.json) process.stdout.write(JSON.stringify({ output: values.output, bytes: out.length, ms, report }) + '\n');
        else process.stdout.write(formatQuantReport(values.output as string, out.length, ms, report));
      } finally {
        bar.done();
        opt.terminate();
      }
    },
  },
  prune: {
    summary: 'prune a float model: zero the least important weights, or remove whole channels',
    usage:
      'tinyml-optimizer prune MODEL.tflite -o OUT.tflite --method global-magnitude|layer-magnitude|global-gradient|\n' +
      '       layer-gradient|random --sparsity F [--structured] [--data X.npy] [--labels Y.npy] [--seed N]\n' +
      '       [--include-last-layer] [--include-bias] [--include-depthwise] [--report REPORT.json] [--header OUT.h] [--json]\n' +
      `       gradual pruning while training: --finetune-epochs N [--schedule polynomial|constant] ${TRAIN_USAGE}`,
    help:
      'F is the fraction of the prunable weights to remove (CONV_2D and FULLY_CONNECTED kernels; DEPTHWISE_CONV_2D\n' +
      'kernels, as TFMOT, the last classifier layer and biases only when asked). Magnitude methods rank |w|, gradient methods\n' +
      '|w * dL/dw| averaged over --data (cross-entropy against --labels, or against the model\'s own predictions);\n' +
      "'global' ranks across the model (never emptying a channel), 'layer' within each layer; random is the baseline.\n" +
      'With --structured, whole output channels and neurons are removed (ranked by mean |w|, summed |w*g|, or at\n' +
      'random) until F of the weights are gone; the graph is rewritten so the model truly shrinks, and channels\n' +
      'joined by a residual ADD go together. With --data (and --labels), the report compares accuracy, agreement\n' +
      'and latency of the pruned model with the original. Prune the float model, then quantize the result.\n' +
      'With --finetune-epochs N, weights are pruned gradually while the model trains N epochs on --train (TFMOT\'s\n' +
      'polynomial schedule from 0 to F over all steps, or constant F): masks are updated at the schedule\'s steps and\n' +
      'pruned weights stay exactly zero. With --structured, channels are removed first, then the smaller model is\n' +
      'fine-tuned. Ctrl-C stops training after the current step and keeps the best model.',
    options: {
      output: { type: 'string', short: 'o' },
      method: { type: 'string', default: 'global-magnitude' },
      sparsity: { type: 'string' },
      structured: { type: 'boolean', default: false },
      data: { type: 'string', short: 'd' },
      labels: { type: 'string', short: 'l' },
      seed: { type: 'string', default: '0' },
      'include-last-layer': { type: 'boolean', default: false },
      'include-bias': { type: 'boolean', default: false },
      'include-depthwise': { type: 'boolean', default: false },
      'finetune-epochs': { type: 'string' },
      schedule: { type: 'string', default: 'polynomial' },
      ...TRAIN_OPTIONS,
      report: { type: 'string' },
      header: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    positionals: 1,
    async run({ values, positionals }) {
      if (!values.output) throw new UsageError('-o OUT.tflite is required');
      if (values.sparsity === undefined) throw new UsageError('--sparsity F is required (a fraction in [0, 1), e.g. 0.5)');
      if (values['finetune-epochs'] !== undefined) return pruneDuringTraining(values, positionals[0]);
      const method = oneOf(
        values.method as string,
        ['global-magnitude', 'layer-magnitude', 'global-gradient', 'layer-gradient', 'random'] as PruneMethod[],
        '--method',
      );
      const sparsity = Number(values.sparsity);
      if (!(sparsity >= 0 && sparsity < 1)) throw new UsageError(`--sparsity must be a fraction in [0, 1), got '${values.sparsity}'`);
      const seed = Number(values.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got '${values.seed}'`);
      if (method.endsWith('-gradient') && !values.data) {
        throw new UsageError(`--method ${method} needs --data X.npy (representative inputs; --labels optional)`);
      }
      if (values.labels && !values.data) throw new UsageError('--labels needs --data');
      const dataInputs = [
        ...(values.data ? [{ flag: '--data', path: values.data as string }] : []),
        ...(values.labels ? [{ flag: '--labels', path: values.labels as string }] : []),
      ];
      await checkModelOutputs(values, positionals[0], dataInputs);
      const [modelBytes, data, labels] = await Promise.all([
        readInput(positionals[0], 'model'),
        values.data ? readInput(values.data as string, 'data') : Promise.resolve(undefined),
        values.labels ? readInput(values.labels as string, 'labels') : Promise.resolve(undefined),
      ]);
      const opt = engine(values);
      const bar = progressBar('prune');
      try {
        const model = await opt.loadModel(modelBytes);
        const start = performance.now();
        const { model: pruned, report } = await model.prune(
          {
            method,
            sparsity,
            structured: values.structured as boolean,
            seed,
            includeLastLayer: values['include-last-layer'] as boolean,
            includeBias: values['include-bias'] as boolean,
            includeDepthwise: values['include-depthwise'] as boolean,
            data,
            labels,
          },
          { onProgress: (p) => bar.update(p) },
        );
        const ms = performance.now() - start;
        const evaluation = data ? await pruned.evaluate(data, { labels, reference: model }, { onProgress: (p) => bar.update(p) }) : undefined;
        bar.done();
        const out = await pruned.toBytes();
        const full = { ...report, evaluation };
        await writeModel(values, pruned, out, full);
        if (values.json) process.stdout.write(JSON.stringify({ output: values.output, bytes: out.length, ms, report: full }) + '\n');
        else process.stdout.write(formatPruneReport(values.output as string, report, evaluation));
      } finally {
        bar.done();
        opt.terminate();
      }
    },
  },
  finetune: {
    summary: 'train a model further on your data (pruned weights stay zero)',
    usage: `tinyml-optimizer finetune MODEL.tflite -o OUT.tflite --epochs N ${TRAIN_USAGE} [--report REPORT.json] [--header OUT.h] [--json]`,
    help:
      'Trains the float model N epochs on --train against --train-labels (class indices, one-hot rows, or targets\n' +
      'shaped like the outputs for --loss binary-cross-entropy or mean-squared-error), with Adam (or SGD), on every\n' +
      'core (--threads). Zero weights of a pruned model stay exactly zero. The last fraction --validation-split of the\n' +
      'samples is held out; the weights of the epoch with the best validation loss are written. Ctrl-C stops\n' +
      'after the current step and keeps the best model.',
    options: {
      output: { type: 'string', short: 'o' },
      epochs: { type: 'string' },
      ...TRAIN_OPTIONS,
      report: { type: 'string' },
      header: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    positionals: 1,
    async run({ values, positionals }) {
      if (!values.output) throw new UsageError('-o OUT.tflite is required');
      if (values.epochs === undefined) throw new UsageError('--epochs N is required');
      const epochs = number(values, 'epochs', (v) => Number.isInteger(v) && v >= 1, 'a positive whole number');
      const train = trainOptions(values, epochs, 1e-3);
      await checkModelOutputs(values, positionals[0], [
        { flag: '--train', path: (values.train as string) ?? '' },
        { flag: '--train-labels', path: (values['train-labels'] as string) ?? '' },
      ]);
      const [modelBytes, { data, labels }] = await Promise.all([readInput(positionals[0], 'model'), trainData(values)]);
      const opt = engine(values);
      try {
        const model = await opt.loadModel(modelBytes);
        const start = performance.now();
        const { model: tuned, report } = await training('finetune', (o) => model.finetune({ ...train, data, labels }, o));
        const ms = performance.now() - start;
        const out = await tuned.toBytes();
        await writeModel(values, tuned, out, report);
        printTrained(values, out, ms, report);
      } finally {
        opt.terminate();
      }
    },
  },
  evaluate: {
    summary: 'accuracy, agreement and SQNR against a reference, size and latency with our engine',
    usage: 'tinyml-optimizer evaluate MODEL.tflite --data X.npy [--labels Y.npy] [--reference FLOAT.tflite] [--json]',
    help:
      'X is [N, ...input shape] (float32, quantized for int8 models). Y holds class indices [N] or one-hot rows\n' +
      '[N, C]. With --reference, reports the top-1 agreement and output SQNR of MODEL against that model on X.',
    options: {
      data: { type: 'string', short: 'd' },
      labels: { type: 'string', short: 'l' },
      reference: { type: 'string', short: 'r' },
      json: { type: 'boolean', default: false },
    },
    positionals: 1,
    async run({ values, positionals }) {
      if (!values.data) throw new UsageError('--data X.npy is required');
      const [modelBytes, data, labels, refBytes] = await Promise.all([
        readInput(positionals[0], 'model'),
        readInput(values.data as string, 'data'),
        values.labels ? readInput(values.labels as string, 'labels') : Promise.resolve(undefined),
        values.reference ? readInput(values.reference as string, 'reference model') : Promise.resolve(undefined),
      ]);
      const opt = engine(values);
      const bar = progressBar('evaluate');
      try {
        const model = await opt.loadModel(modelBytes);
        const reference = refBytes ? await opt.loadModel(refBytes) : undefined;
        const report = await model.evaluate(data, { labels, reference }, { onProgress: (p) => bar.update(p) });
        bar.done();
        if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else process.stdout.write(formatEvalReport(basename(positionals[0]), report, values.reference ? basename(values.reference as string) : undefined));
      } finally {
        bar.done();
        opt.terminate();
      }
    },
  },
  convert: {
    summary: 'read a model and write it back with our writer (checks a round trip; dedups buffers)',
    usage: 'tinyml-optimizer convert MODEL.tflite -o OUT.tflite [--header OUT.h]',
    help: 'Writes the model as the engine holds it: same operators and values, constant buffers stored once and\n16-byte aligned. Operators the engine does not know are kept byte for byte.',
    options: { output: { type: 'string', short: 'o' }, header: { type: 'string' }, json: { type: 'boolean', default: false } },
    positionals: 1,
    async run({ values, positionals }) {
      if (!values.output) throw new UsageError('-o OUT.tflite is required');
      await checkModelOutputs(values, positionals[0]);
      const bytes = await readInput(positionals[0], 'model');
      const opt = engine(values);
      try {
        const model = await opt.loadModel(bytes);
        const out = await model.toBytes();
        await writeModel(values, model, out);
        if (values.json) process.stdout.write(JSON.stringify({ path: values.output, bytes: out.length, input_bytes: bytes.length }) + '\n');
        else process.stdout.write(`wrote ${values.output} (${out.length.toLocaleString('en-US')} bytes; input ${bytes.length.toLocaleString('en-US')})\n`);
      } finally {
        opt.terminate();
      }
    },
  },
};

function mainHelp(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return (
    'tinyml-optimizer — prune and int8-quantize TinyML models on your machine\n\n' +
    'Usage: tinyml-optimizer <command> [options]\n\nCommands:\n' +
    lines.join('\n') +
    "\n\nRun 'tinyml-optimizer <command> --help' for a command's options.\n" +
    'prune, quantize, finetune and convert take --header OUT.h to also write TensorFlow Lite Micro firmware files:\n' +
    'OUT.h (kTensorArenaSize from the arena prediction, kOpCount, RegisterOps) and OUT.cc (the aligned model array).\n' +
    'Every command takes --target tflm|litert (default tflm): whose int8 arithmetic the engine reproduces bit for\n' +
    'bit, TensorFlow Lite Micro (the device) or LiteRT\'s reference kernels; they differ by one step on rare outputs.\n' +
    'Every command takes --max-memory SIZE (e.g. 512M, 2G; default 1G): the engine\'s memory budget per model;\n' +
    'a model that needs more is refused (error code resource_limit) before anything is allocated.\n' +
    'Every command takes --threads N (default: all cores): engines that long operations (calibration, scoring,\n' +
    'runs, gradients, training) spread over; results are identical whatever N is.\n' +
    'Output files are written to a temporary file and renamed, so an input is never left truncated.\n' +
    'Exit codes: 0 success, 1 user error (bad model, data, option or usage, a file that cannot be read or\n' +
    'written, a model over the memory budget), 2 internal error.\n'
  );
}

function commandHelp(name: string, c: Command): string {
  return `${c.summary}\n\nUsage: ${c.usage} [--max-memory SIZE] [--threads N] [--target tflm|litert]\n\n${c.help}\n`;
}

/** Options every command takes. */
const COMMON: NonNullable<ParseArgsConfig['options']> = {
  'max-memory': { type: 'string' },
  threads: { type: 'string' },
  target: { type: 'string' },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name ? EXIT_OK : EXIT_USER;
  }
  if (name === '--version' || name === '-V') {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    process.stdout.write(`${pkg.version}\n`);
    return EXIT_OK;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`error: unknown command '${name}'\n\n${mainHelp()}`);
    return EXIT_USER;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandHelp(name, cmd));
    return EXIT_OK;
  }
  const json = rest.includes('--json');
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...COMMON, ...cmd.options }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (parsed.positionals.length !== cmd.positionals) {
      throw new UsageError(`expected ${cmd.positionals} file argument(s), got ${parsed.positionals.length}`);
    }
    await cmd.run({ values: parsed.values as Values, positionals: parsed.positionals });
    return EXIT_OK;
  } catch (e) {
    const usage = e instanceof UsageError;
    const file = e instanceof FileError;
    const user = usage || file || (e instanceof OptimizerError && e.isUserError);
    const err =
      e instanceof OptimizerError
        ? {
            code: e.code,
            message: e.message,
            node: e.node,
            op: e.op,
            tensor: e.tensor,
            tensorName: e.tensorName,
            requested: e.requested,
            limit: e.limit,
          }
        : file
          ? { code: 'file_error', message: e.message, path: e.path, reason: e.reason }
          : { code: usage ? 'invalid_argument' : 'internal', message: (e as Error).message ?? String(e) };
    if (json) process.stdout.write(JSON.stringify({ error: err }) + '\n');
    process.stderr.write(`error: ${err.message}\n`);
    if (usage) process.stderr.write(`usage: ${cmd.usage}\n`);
    if (!user && e instanceof Error && e.stack && !(e instanceof OptimizerError)) process.stderr.write(e.stack + '\n');
    if (e instanceof OptimizerError && e.code === 'resource_limit') {
      process.stderr.write('(raise the budget with --max-memory SIZE if this machine has the memory)\n');
    }
    return user ? EXIT_USER : EXIT_INTERNAL;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`internal error: ${e?.stack ?? e}\n`);
    process.exitCode = EXIT_INTERNAL;
  },
);
