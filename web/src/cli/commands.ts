/** The CLI's commands that do one thing: inspect, run, quantize, prune, finetune, evaluate, convert. */
import { basename } from 'node:path';
import type { LoadedModel } from '../client.js';
import { writeFilesAtomically } from '../files.js';
import { formatEvalReport, formatPruneReport, formatQuantReport, formatSummary, formatTrained, shownPath } from '../format.js';
import { OptimizerError, QAT_LEARNING_RATE, type EvalReport, type FinetuneReport, type ModelSummary, type PruneReport, type QatReport, type PruneOptions, type QuantizeOptions } from '../types.js';
import {
  DATA_OPTIONS,
  epochsOf,
  MODEL_OUTPUT_OPTIONS,
  parsePrune,
  parseQuantize,
  parseTrain,
  PRUNE_OPTIONS,
  PRUNE_USAGE,
  QUANTIZE_OPTIONS,
  QUANTIZE_USAGE,
  TRAIN_OPTIONS,
  TRAIN_USAGE,
  UsageError,
  type Values,
} from './args.js';
import { describeError, EXIT_OK, printError, training, withEngine, type Command, type Ctx, type ErrorJson } from './engine.js';
import { checkModelOutputs, checkOutputs, namedInputs, readInput, readOptional, writeModel, type Io, type Named, type Written } from './io.js';

const OUTPUT_USAGE = '-o OUT.tflite|- [--report REPORT.json] [--header OUT.h]';

/** How a model-writing command makes its model from the loaded one. */
interface Transform<R> {
  /** Input files besides the model (the outputs may not replace them). */
  inputs: Named[];
  apply(model: LoadedModel, io: Io): Promise<{ model: LoadedModel; report: R }>;
  text(w: Written, ms: number, report: R): string;
}

/** Loads MODEL, applies the transform, writes -o (and --header, --report) and prints the result. */
async function transformModel<R>({ values, positionals: [path], io }: Ctx, t: Transform<R>): Promise<void> {
  await checkModelOutputs(io, values, path, t.inputs);
  const bytes = await readInput(path, 'model');
  await withEngine(values, async (opt) => {
    const model = await opt.loadModel(bytes);
    const start = performance.now();
    const r = await t.apply(model, io);
    const ms = performance.now() - start;
    const out = await r.model.toBytes();
    const written = await writeModel(values, r.model, out, r.report ?? undefined);
    io.result({ input: { path, bytes: bytes.length }, ...written, ms, report: r.report }, () => t.text(written, ms, r.report));
  });
}

const TRAIN_INPUTS = ['train', 'train-labels'];

/** The training data of --train and --train-labels. */
export async function readTrainData(values: Values): Promise<{ data: Uint8Array; labels: Uint8Array }> {
  const [data, labels] = await Promise.all([
    readInput(values.train as string, 'training data'),
    readInput(values['train-labels'] as string, 'training labels'),
  ]);
  return { data, labels };
}

// ---------------------------------------------------------------------------------------------
// inspect

type Inspected = { path: string; summary: ModelSummary } | { path: string; error: ErrorJson };

/** Inspects each model in turn; a model that fails is reported and the others still are. */
async function inspectAll({ values, positionals, io }: Ctx): Promise<number> {
  const results: Inspected[] = [];
  let exit = EXIT_OK;
  await withEngine(values, async (opt) => {
    for (const path of positionals) {
      try {
        const summary = await opt.inspect(await readInput(path, 'model'));
        results.push({ path, summary });
        if (!io.json) process.stdout.write((results.length > 1 ? '\n' : '') + formatSummary(shownPath(path, 'stdin'), summary));
      } catch (e) {
        const d = describeError(e);
        results.push({ path, error: d.error });
        exit = Math.max(exit, d.exit);
        printError(d.error, positionals.length > 1 ? `${shownPath(path, 'stdin')}: ` : '');
      }
    }
  });
  if (io.json) io.result({ models: results, ...failures(results) }, () => '');
  return exit;
}

/** The top-level error of an inspect run where models failed: the first failure's code. */
function failures(results: Inspected[]): { error?: ErrorJson } {
  const failed = results.filter((r): r is { path: string; error: ErrorJson } => 'error' in r);
  if (failed.length === 0) return {};
  const first = failed[0];
  const message = results.length === 1 ? first.error.message : `${failed.length} of ${results.length} models failed; ${first.path}: ${first.error.message}`;
  return { error: { ...first.error, message } };
}

const inspect: Command = {
  summary: 'show models: operators, layers, tensors, parameters, MACs, quantization, I/O, TFLite Micro facts',
  usage: 'tinyml-optimizer inspect MODEL.tflite|- [MODEL.tflite ...]',
  help:
    'Prints operators with counts, each layer (shapes, parameters, MACs, dtypes), every tensor with its\n' +
    'quantization parameters, the size on disk, and the operators the engine cannot run yet; for each model\n' +
    "given ('-' reads one from stdin). A model that cannot be read is reported and the others still are\n" +
    '(exit code 1 then). --json prints one document: { command, version, models: [{ path, summary } | { path, error }] }.',
  options: {},
  positionals: 'some',
  run: inspectAll,
};

// ---------------------------------------------------------------------------------------------
// run

/** The paths `run` writes: Y.npy, then Y.1.npy, Y.2.npy, ... for further outputs. */
const outputPaths = (out: string, n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? out : out.replace(/(\.npy)?$/, `.${i}.npy`)));

const run: Command = {
  summary: 'run a batch through the model with our engine',
  usage: 'tinyml-optimizer run MODEL.tflite|- --input X.npy --output Y.npy [--raw] [--streaming]',
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
  },
  positionals: 1,
  async run({ values, positionals: [path], io }) {
    if (!values.input) throw new UsageError('--input X.npy is required');
    if (!values.output) throw new UsageError('--output Y.npy is required');
    const inputs = [{ flag: 'MODEL', path }, ...namedInputs(values, ['input'])];
    await checkOutputs(inputs, [{ flag: '--output', path: values.output as string }]);
    const [modelBytes, x] = await Promise.all([readInput(path, 'model'), readInput(values.input as string, 'input')]);
    await withEngine(values, async (opt) => {
      const model = await opt.loadModel(modelBytes);
      const bar = io.bar('run');
      const start = performance.now();
      const outs = await model.run(x, { raw: values.raw as boolean, streaming: values.streaming as boolean, onProgress: (p) => bar.update(p) });
      const ms = performance.now() - start;
      bar.done();
      if (outs.length === 0) throw new OptimizerError('invalid_model', 'the model has no outputs: nothing to write');
      const paths = outputPaths(values.output as string, outs.length);
      await checkOutputs(inputs, paths.map((p, i) => ({ flag: i === 0 ? '--output' : `output ${i}`, path: p })));
      const infos = await Promise.all(outs.map((o) => opt.npyInfo(o)));
      await writeFilesAtomically(outs.map((o, i) => ({ path: paths[i], data: o }))); // all outputs or none
      const samples = infos[0]?.shape[0] ?? 0;
      const outputs = paths.map((p, i) => ({ path: p, ...infos[i] }));
      io.result({ input: { path, bytes: modelBytes.length }, samples, ms, outputs }, () => {
        const per = samples > 0 ? ` (${(ms / samples).toFixed(2)} ms/sample)` : '';
        return `ran ${samples} samples in ${ms.toFixed(1)} ms${per}\n` + outputs.map((o) => `  ${o.path}: ${o.dtype} [${o.shape.join(', ')}]\n`).join('');
      });
    });
  },
};

// ---------------------------------------------------------------------------------------------
// quantize

/** `quantize --qat-epochs`: quantization-aware training, then the int8 model. */
function quantizeAware(values: Values): Transform<QatReport> {
  const { mode, ...quantize } = parseQuantize(values);
  if (mode !== 'static') throw new UsageError('--qat-epochs trains for the full-int8 (static) model: drop --mode dynamic');
  const train = parseTrain(values, epochsOf(values, 'qat-epochs'), QAT_LEARNING_RATE);
  return {
    inputs: namedInputs(values, [...TRAIN_INPUTS, 'calibration']),
    async apply(model, io) {
      const [{ data, labels }, calibrationData] = await Promise.all([readTrainData(values), readOptional(values.calibration, 'calibration data')]);
      return training(io, 'quantize', (o) => model.quantizeAware({ ...quantize, data, labels, calibrationData, train }, o));
    },
    text: (w, ms, report) => formatTrained(w.output, ms, report.train),
  };
}

const quantize: Command = {
  summary: 'quantize a float model to int8 (static, with calibration data) or dynamic range',
  usage:
    `tinyml-optimizer quantize MODEL.tflite|- ${OUTPUT_USAGE}\n       ${QUANTIZE_USAGE}\n` +
    `       quantization-aware training: --qat-epochs N ${TRAIN_USAGE}`,
  help:
    'Static mode (default) needs --calibration: a .npy batch of representative inputs [N, ...input shape], N >= 10\n' +
    '(100-500 recommended). It writes a full-int8 model: int8 weights (per channel by default), int8 activations,\n' +
    'int32 biases, int8 inputs and outputs unless --io float32. Dynamic mode needs no data: int8 weights, float\n' +
    'activations. The report gives, per layer, the output parameters and the SQNR against the float model.\n' +
    "'auto' calibration (default) tries min/max, percentile and MSE ranges, then bias correction on the best, and\n" +
    'keeps the model that tracks the float one best on held-out calibration samples.\n' +
    'With --qat-epochs N, quantization-aware training follows: static quantization starts the ranges (on\n' +
    '--calibration when given, as quantize alone would; otherwise on the first 200 training samples), N epochs\n' +
    'train with fake quantization (learning rate 2e-4 unless given), and the same full-int8 model is written.\n' +
    'With a validation split (default 0.1), an epoch is kept only if it beats the static model on the validation\n' +
    'samples (accuracy, then loss); otherwise the static model is written as quantize alone writes it.\n' +
    'Ctrl-C stops training after the current step and keeps the best model.',
  options: { ...MODEL_OUTPUT_OPTIONS, ...QUANTIZE_OPTIONS, 'qat-epochs': { type: 'string' }, ...TRAIN_OPTIONS },
  positionals: 1,
  async run(ctx) {
    const { values } = ctx;
    if (values['qat-epochs'] !== undefined) return transformModel(ctx, quantizeAware(values));
    const options = parseQuantize(values);
    if (options.mode === 'static' && !values.calibration) {
      throw new UsageError('static quantization needs --calibration X.npy (representative inputs); or use --mode dynamic');
    }
    return transformModel(ctx, {
      inputs: namedInputs(values, ['calibration']),
      async apply(model, io) {
        const calibrationData = options.mode === 'static' ? await readInput(values.calibration as string, 'calibration data') : undefined;
        const bar = io.bar('quantize');
        try {
          // (static mode without --calibration was refused above)
          return await model.quantize({ ...options, calibrationData } as QuantizeOptions, { onProgress: (p) => bar.update(p) });
        } finally {
          bar.done();
        }
      },
      text: (w, ms, report) => formatQuantReport(shownPath(w.output.path), w.output.bytes, ms, report),
    });
  },
};

// ---------------------------------------------------------------------------------------------
// prune

/** `prune --finetune-epochs`: gradual pruning during training (or structured, then fine-tuning). */
function pruneDuringTraining(values: Values): Transform<FinetuneReport & { prune?: PruneReport }> {
  const { schedule, ...prune } = parsePrune(values);
  const train = parseTrain(values, epochsOf(values, 'finetune-epochs'), 1e-3);
  return {
    inputs: namedInputs(values, TRAIN_INPUTS),
    async apply(model, io) {
      const { data, labels } = await readTrainData(values);
      const first = prune.structured ? await model.prune({ ...prune, data, labels }) : undefined;
      const during = prune.structured ? undefined : { method: prune.method, sparsity: prune.sparsity, schedule, includeLastLayer: prune.includeLastLayer, includeDepthwise: prune.includeDepthwise };
      const start = first?.model ?? model;
      const r = await training(io, 'prune', (o) => start.finetune({ ...train, data, labels, prune: during }, o));
      return { model: r.model, report: { ...r.report, prune: first?.report } };
    },
    text: (w, ms, report) => formatTrained(w.output, ms, report.train),
  };
}

/** One-shot pruning; with --data, the pruned model is evaluated against the original. */
function pruneOnce(values: Values): Transform<PruneReport & { evaluation?: EvalReport }> {
  const options = parsePrune(values);
  if (options.method.endsWith('-gradient') && !values.data) {
    throw new UsageError(`--method ${options.method} needs --data X.npy (representative inputs; --labels optional)`);
  }
  if (values.labels && !values.data) throw new UsageError('--labels needs --data');
  return {
    inputs: namedInputs(values, ['data', 'labels']),
    async apply(model, io) {
      const data = await readOptional(values.data, 'data');
      const labels = await readOptional(values.labels, 'labels');
      const bar = io.bar('prune');
      try {
        const onProgress = (p: Parameters<typeof bar.update>[0]) => bar.update(p);
        // (gradient methods without --data were refused above)
        const r = await model.prune({ ...options, data, labels } as PruneOptions, { onProgress });
        const evaluation = data ? await r.model.evaluate(data, { labels, reference: model }, { onProgress }) : undefined;
        return { model: r.model, report: { ...r.report, evaluation } };
      } finally {
        bar.done();
      }
    },
    text: (w, _ms, report) => formatPruneReport(shownPath(w.output.path), report, report.evaluation),
  };
}

const prune: Command = {
  summary: 'prune a float model: zero the least important weights, or remove whole channels',
  usage:
    `tinyml-optimizer prune MODEL.tflite|- ${OUTPUT_USAGE}\n       ${PRUNE_USAGE}\n       [--data X.npy] [--labels Y.npy]\n` +
    `       gradual pruning while training: --finetune-epochs N ${TRAIN_USAGE}`,
  help:
    'F is the fraction of the prunable weights to remove (CONV_2D and FULLY_CONNECTED kernels; DEPTHWISE_CONV_2D\n' +
    'kernels (as TFMOT), the last classifier layer and biases only when asked). Magnitude methods rank |w|, gradient methods\n' +
    "|w * dL/dw| averaged over --data (cross-entropy against --labels, or against the model's own predictions);\n" +
    "'global' ranks across the model (never emptying a channel), 'layer' within each layer; random is the baseline.\n" +
    'With --structured, whole output channels and neurons are removed (ranked by mean |w|, summed |w*g|, or at\n' +
    'random) until F of the weights are gone; the graph is rewritten so the model truly shrinks, and channels\n' +
    'joined by a residual ADD go together. With --data (and --labels), the report compares accuracy, agreement\n' +
    'and latency of the pruned model with the original. Prune the float model, then quantize the result.\n' +
    "With --finetune-epochs N, weights are pruned gradually while the model trains N epochs on --train (TFMOT's\n" +
    "polynomial schedule from 0 to F over all steps, or constant F): masks are updated at the schedule's steps and\n" +
    'pruned weights stay exactly zero. With --structured, channels are removed first, then the smaller model is\n' +
    'fine-tuned. Ctrl-C stops training after the current step and keeps the best model.',
  options: {
    ...MODEL_OUTPUT_OPTIONS,
    ...PRUNE_OPTIONS,
    ...DATA_OPTIONS,
    'finetune-epochs': { type: 'string' },
    ...TRAIN_OPTIONS,
  },
  positionals: 1,
  run(ctx) {
    const during = ctx.values['finetune-epochs'] !== undefined;
    return during ? transformModel(ctx, pruneDuringTraining(ctx.values)) : transformModel(ctx, pruneOnce(ctx.values));
  },
};

// ---------------------------------------------------------------------------------------------
// finetune

const finetune: Command = {
  summary: 'train a model further on your data (pruned weights stay zero)',
  usage: `tinyml-optimizer finetune MODEL.tflite|- ${OUTPUT_USAGE} --epochs N\n       ${TRAIN_USAGE}`,
  help:
    'Trains the float model N epochs on --train against --train-labels (class indices, one-hot rows, or targets\n' +
    'shaped like the outputs for --loss binary-cross-entropy or mean-squared-error), with Adam (or SGD), on every\n' +
    'core (--threads). Zero weights of a pruned model stay exactly zero. The last fraction --validation-split of the\n' +
    'samples is held out; the weights of the epoch with the best validation loss are written. Ctrl-C stops\n' +
    'after the current step and keeps the best model.',
  options: { ...MODEL_OUTPUT_OPTIONS, epochs: { type: 'string' }, ...TRAIN_OPTIONS },
  positionals: 1,
  run(ctx) {
    const { values } = ctx;
    if (values.epochs === undefined) throw new UsageError('--epochs N is required');
    const train = parseTrain(values, epochsOf(values, 'epochs'), 1e-3);
    return transformModel<FinetuneReport>(ctx, {
      inputs: namedInputs(values, TRAIN_INPUTS),
      async apply(model, io) {
        const { data, labels } = await readTrainData(values);
        return training(io, 'finetune', (o) => model.finetune({ ...train, data, labels }, o));
      },
      text: (w, ms, report) => formatTrained(w.output, ms, report.train),
    });
  },
};

// ---------------------------------------------------------------------------------------------
// evaluate and convert

const evaluate: Command = {
  summary: 'accuracy, agreement and SQNR against a reference, size and latency with our engine',
  usage: 'tinyml-optimizer evaluate MODEL.tflite|- --data X.npy [--labels Y.npy] [--reference FLOAT.tflite]',
  help:
    'X is [N, ...input shape] (float32, quantized for int8 models). Y holds class indices [N] or one-hot rows\n' +
    '[N, C]. With --reference, reports the top-1 agreement and output SQNR of MODEL against that model on X.',
  options: {
    ...DATA_OPTIONS,
    reference: { type: 'string', short: 'r' },
  },
  positionals: 1,
  async run({ values, positionals: [path], io }) {
    if (!values.data) throw new UsageError('--data X.npy is required');
    const [modelBytes, data, labels, refBytes] = await Promise.all([
      readInput(path, 'model'),
      readInput(values.data as string, 'data'),
      readOptional(values.labels, 'labels'),
      readOptional(values.reference, 'reference model'),
    ]);
    await withEngine(values, async (opt) => {
      const model = await opt.loadModel(modelBytes);
      const reference = refBytes ? await opt.loadModel(refBytes) : undefined;
      const bar = io.bar('evaluate');
      const report = await model.evaluate(data, { labels, reference }, { onProgress: (p) => bar.update(p) }).finally(() => bar.done());
      const refName = values.reference ? basename(values.reference as string) : undefined;
      const body = { input: { path, bytes: modelBytes.length }, reference: (values.reference as string) ?? null, report };
      io.result(body, () => formatEvalReport(shownPath(basename(path), 'stdin'), report, refName));
    });
  },
};

const convert: Command = {
  summary: 'read a model and write it back with our writer (checks a round trip; dedups buffers)',
  usage: 'tinyml-optimizer convert MODEL.tflite|- -o OUT.tflite|- [--header OUT.h]',
  help: 'Writes the model as the engine holds it: same operators and values, constant buffers stored once and\n16-byte aligned. Operators the engine does not know are kept byte for byte.',
  options: { output: { type: 'string', short: 'o' }, header: { type: 'string' } },
  positionals: 1,
  run(ctx) {
    return transformModel<null>(ctx, {
      inputs: [],
      apply: async (model) => ({ model, report: null }),
      text: (w) => `wrote ${shownPath(w.output.path)} (${w.output.bytes.toLocaleString('en-US')} bytes)\n`,
    });
  },
};

export const commands: Record<string, Command> = { inspect, run, quantize, prune, finetune, evaluate, convert };
