/**
 * `optimize`: the app's Optimize button in one command. Prune (one-shot, or gradually while training
 * when training data is given and pruning is unstructured) → fine-tune (when training, unless pruning
 * or quantization-aware training already trains) → quantize (quantization-aware training when static
 * and training; else post-training static or dynamic) → evaluate against the original → export.
 */
import type { LoadedModel } from '../client.js';
import { formatOptimizeReport } from '../format.js';
import type { EvalReport, ModelSummary, PruneOptions, PruneReport, QuantizeOptions, QuantReport, TflmReport, TrainOptions, TrainReport } from '../types.js';
import { OptimizerError } from '../types.js';
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
import { readTrainData } from './commands.js';
import { training, withEngine, type Command, type Ctx } from './engine.js';
import { checkModelOutputs, namedInputs, readInput, readOptional, writeModel, type Io } from './io.js';
import { spreadRows } from './npy.js';

/** As the app: calibration on 200 samples spread over the data, gradients on 128. */
const CALIBRATION_SAMPLES = 200;
const GRADIENT_SAMPLES = 128;

export type StepName = 'prune' | 'prune-while-training' | 'finetune' | 'quantize' | 'quantize-aware-training' | 'evaluate';

/** A model's deployment facts, before and after. */
export interface ModelFacts {
  bytes: number;
  precision: ModelSummary['precision'];
  parameters: number;
  macs: number;
  tflm: TflmReport;
}

export interface OptimizeReport {
  steps: { step: StepName; ms: number }[];
  before: ModelFacts;
  after: ModelFacts;
  /** Pruning: one-shot (with its report) or gradual while training (its figures are in `training`). */
  prune: { gradual: boolean; method: PruneReport['method']; structured: boolean; requestedSparsity: number; achievedSparsity: number; report: PruneReport | null } | null;
  training: { step: StepName; train: TrainReport }[];
  quantize: QuantReport | null;
  /** The optimized model on --data against the original (float) model. */
  evaluation: EvalReport | null;
}

interface Plan {
  prune?: ReturnType<typeof parsePrune>;
  train?: TrainOptions;
  quantize?: ReturnType<typeof parseQuantize>;
}

/** What to do, from the options; refuses what cannot run before anything is read. */
function plan(values: Values): Plan {
  const p: Plan = {
    prune: values.sparsity !== undefined ? parsePrune(values) : undefined,
    train: values.epochs !== undefined ? parseTrain(values, epochsOf(values, 'epochs'), 1e-3) : undefined,
    quantize: values['no-quantize'] ? undefined : parseQuantize(values),
  };
  if (!p.prune && !p.train && !p.quantize) {
    throw new UsageError('nothing to do: give --sparsity F to prune, --epochs N to train, or leave out --no-quantize');
  }
  if (values.labels && !values.data) throw new UsageError('--labels needs --data');
  if ((values.train || values['train-labels']) && !p.train) throw new UsageError('--train and --train-labels are for training: give --epochs N too');
  const gradient = p.prune?.method.endsWith('-gradient') && !(p.train && !p.prune.structured);
  if (gradient && !values.data && !values.train) {
    throw new UsageError(`--method ${p.prune!.method} needs data to score weights: --data X.npy or --train X.npy`);
  }
  if (p.quantize?.mode === 'static' && !values.calibration && !values.train && !values.data) {
    throw new UsageError('static quantization needs calibration data: --calibration X.npy (or --train or --data, 200 samples of which are taken); or --mode dynamic');
  }
  return p;
}

/** The data a run reads: training, evaluation and calibration sets (each when given). */
interface Data {
  train?: { data: Uint8Array; labels: Uint8Array };
  eval?: { data: Uint8Array; labels?: Uint8Array };
  calibration?: Uint8Array;
}

async function readData(values: Values, p: Plan): Promise<Data> {
  const train = p.train ? await readTrainData(values) : undefined;
  const data = await readOptional(values.data, 'data');
  const labels = await readOptional(values.labels, 'labels');
  const calibration = p.quantize?.mode === 'static' ? await readOptional(values.calibration, 'calibration data') : undefined;
  return { train, eval: data ? { data, labels } : undefined, calibration };
}

/** The facts the report compares; the CLI runs the full engine, whose summaries carry `tflm`. */
function facts(s: ModelSummary, bytes: number): ModelFacts {
  if (!s.tflm) throw new OptimizerError('internal', 'a summary without its TFLM report: the CLI must run the full engine');
  return { bytes, precision: s.precision, parameters: s.parameters, macs: s.macs, tflm: s.tflm };
}

/** Runs the pipeline on a loaded model; returns the optimized model and the report (without `after`). */
class Pipeline {
  model: LoadedModel;
  /** Set when Ctrl-C stopped a training step: later steps do not train (as the app's Cancel). */
  interrupted = false;
  readonly report: Omit<OptimizeReport, 'after'>;

  constructor(
    readonly base: LoadedModel,
    readonly p: Plan,
    readonly d: Data,
    readonly io: Io,
    inputBytes: number,
  ) {
    this.model = base;
    this.report = { steps: [], before: facts(base.summary, inputBytes), prune: null, training: [], quantize: null, evaluation: null };
  }

  /** Times one step, with a line on stderr unless --quiet. */
  async step<T>(step: StepName, what: string, fn: () => Promise<T>): Promise<T> {
    this.io.info(`${step}: ${what}`);
    const start = performance.now();
    const r = await fn();
    this.report.steps.push({ step, ms: performance.now() - start });
    return r;
  }

  /** A call with a progress bar. */
  async withBar<T>(label: string, fn: (onProgress: (p: { stage: string; done: number; total: number }) => void) => Promise<T>): Promise<T> {
    const bar = this.io.bar(label);
    return fn((p) => bar.update(p)).finally(() => bar.done());
  }

  async run(): Promise<LoadedModel> {
    const { prune, train, quantize } = this.p;
    const gradual = !!(prune && train && !prune.structured);
    if (prune && gradual) await this.pruneWhileTraining();
    else if (prune) await this.pruneOnce();
    if (train && !gradual && quantize?.mode !== 'static' && !this.interrupted) await this.finetune();
    if (quantize?.mode === 'static' && train && !this.interrupted) await this.quantizeAware();
    else if (quantize) await this.quantize();
    if (this.d.eval) await this.evaluate();
    return this.model;
  }

  async pruneOnce() {
    const o = this.p.prune!;
    const source = this.d.eval ?? this.d.train;
    const scoring = o.method.endsWith('-gradient') && source ? source : undefined;
    const data = scoring && spreadRows(scoring.data, GRADIENT_SAMPLES);
    const labels = scoring?.labels && spreadRows(scoring.labels, GRADIENT_SAMPLES);
    const r = await this.step('prune', `${o.method}, sparsity ${o.sparsity}${o.structured ? ', structured' : ''}`, () =>
      this.withBar('prune', (onProgress) => this.model.prune({ ...o, data, labels } as PruneOptions, { onProgress })),
    );
    this.model = r.model;
    const rep = r.report;
    this.report.prune = { gradual: false, method: rep.method, structured: rep.structured, requestedSparsity: o.sparsity, achievedSparsity: rep.achievedSparsity, report: rep };
  }

  async pruneWhileTraining() {
    const o = this.p.prune!;
    const during = { method: o.method, sparsity: o.sparsity, schedule: o.schedule, includeLastLayer: o.includeLastLayer, includeDepthwise: o.includeDepthwise };
    const r = await this.step('prune-while-training', `${o.method} to sparsity ${o.sparsity} over ${this.p.train!.epochs} epoch(s)`, () =>
      this.train('prune', (c) => this.model.finetune({ ...this.p.train!, ...this.d.train!, prune: during }, c)),
    );
    this.model = r.model;
    this.report.training.push({ step: 'prune-while-training', train: r.report.train });
    this.report.prune = { gradual: true, method: o.method, structured: false, requestedSparsity: o.sparsity, achievedSparsity: r.report.train.sparsity, report: null };
  }

  /** A training call that Ctrl-C stops gracefully, marking the run interrupted. */
  train<T>(label: string, call: Parameters<typeof training<T>>[2]): Promise<T> {
    return training(this.io, label, call, () => (this.interrupted = true));
  }

  async finetune() {
    const r = await this.step('finetune', `${this.p.train!.epochs} epoch(s)`, () =>
      this.train('finetune', (c) => this.model.finetune({ ...this.p.train!, ...this.d.train! }, c)),
    );
    this.model = r.model;
    this.report.training.push({ step: 'finetune', train: r.report.train });
  }

  async quantizeAware() {
    const { mode: _m, ...q } = this.p.quantize!;
    const train = { ...this.p.train!, learningRate: this.p.train!.learningRate! / 5 };
    // Training starts from the model the quantize step would give: the same calibration data.
    const calibrationData = this.d.calibration ?? spreadRows(this.d.train!.data, CALIBRATION_SAMPLES);
    const r = await this.step('quantize-aware-training', `${train.epochs} epoch(s), learning rate ${train.learningRate}`, () =>
      this.train('quantize', (c) => this.model.quantizeAware({ ...q, ...this.d.train!, calibrationData, train }, c)),
    );
    this.model = r.model;
    this.report.training.push({ step: 'quantize-aware-training', train: r.report.train });
    this.report.quantize = r.report.quantize;
  }

  async quantize() {
    const q = this.p.quantize!;
    const fallback = this.d.train?.data ?? this.d.eval?.data;
    const calib = q.mode !== 'static' ? undefined : (this.d.calibration ?? spreadRows(fallback!, CALIBRATION_SAMPLES));
    const r = await this.step('quantize', `${q.mode} int8`, () =>
      this.withBar('quantize', (onProgress) => this.model.quantize({ ...q, calibrationData: calib } as QuantizeOptions, { onProgress })),
    );
    this.model = r.model;
    this.report.quantize = r.report;
  }

  async evaluate() {
    const { data, labels } = this.d.eval!;
    this.report.evaluation = await this.step('evaluate', 'against the original model', () =>
      this.withBar('evaluate', (onProgress) => this.model.evaluate(data, { labels, reference: this.base }, { onProgress })),
    );
  }
}

async function runOptimize({ values, positionals: [path], io }: Ctx): Promise<void> {
  const p = plan(values);
  await checkModelOutputs(io, values, path, namedInputs(values, ['train', 'train-labels', 'data', 'labels', 'calibration']));
  const bytes = await readInput(path, 'model');
  const d = await readData(values, p);
  await withEngine(values, async (opt) => {
    const base = await opt.loadModel(bytes);
    const pipeline = new Pipeline(base, p, d, io, bytes.length);
    const start = performance.now();
    const model = await pipeline.run();
    const ms = performance.now() - start;
    const out = await model.toBytes();
    const report: OptimizeReport = { ...pipeline.report, after: facts(model.summary, out.length) };
    const written = await writeModel(values, model, out, report);
    io.result({ input: { path, bytes: bytes.length }, ...written, ms, report }, () => formatOptimizeReport(written.output, ms, report));
  });
}

export const optimize: Command = {
  summary: "prune, fine-tune, quantize, evaluate and export in one go (the app's Optimize button)",
  usage:
    `tinyml-optimizer optimize MODEL.tflite|- -o OUT.tflite|- [--report REPORT.json] [--header OUT.h]\n` +
    `       pruning: ${PRUNE_USAGE}\n` +
    `       training: --epochs N ${TRAIN_USAGE}\n` +
    `       quantization: ${QUANTIZE_USAGE} [--no-quantize]\n` +
    '       evaluation: [--data X.npy] [--labels Y.npy]',
  help:
    'Runs what the web app runs on its Optimize button, with its defaults, and prints one report.\n' +
    '1. prune when --sparsity is given (options as for prune). With training (--epochs) and unstructured pruning,\n' +
    '   weights are pruned gradually while training; otherwise once, gradient methods scoring 128 samples of\n' +
    '   --data (or --train).\n' +
    '2. fine-tune N epochs on --train/--train-labels when --epochs is given, unless pruning trained already or\n' +
    '   quantization is static (then quantization-aware training trains, at a fifth of the learning rate).\n' +
    '3. quantize to int8 unless --no-quantize: static (default) calibrates on --calibration, or on 200 samples\n' +
    '   spread over --train or --data; --mode dynamic needs no data (TensorFlow Lite Micro cannot run it).\n' +
    '4. evaluate on --data (with --labels for accuracy) against the original model: agreement, SQNR, latency.\n' +
    '5. write -o (and --header firmware files, --report the report as JSON).',
  options: {
    ...MODEL_OUTPUT_OPTIONS,
    ...PRUNE_OPTIONS,
    epochs: { type: 'string' },
    ...TRAIN_OPTIONS,
    ...QUANTIZE_OPTIONS,
    'no-quantize': { type: 'boolean', default: false },
    ...DATA_OPTIONS,
  },
  positionals: 1,
  run: runOptimize,
};
