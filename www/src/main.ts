/**
 * The web app: drop a .tflite model and data, prune and quantize it, see what it costs, download
 * the result — all in this tab, with the engine in a Web Worker. Nothing is sent anywhere.
 */
import {
  createOptimizer,
  OptimizerError,
  type TflmReport,
  type EvalReport,
  type FinetuneReport,
  type Latency,
  type LoadedModel,
  type ModelSummary,
  needsData,
  type PruneMethod,
  type PruneOptions,
  type PruneReport,
  type QuantizeOptions,
  type QuantReport,
  type TrainMetrics,
  type TrainReport,
} from '@tinyml/optimizer';
import sampleModelUrl from '../../tests/fixtures/resnet/model_float.tflite?url';
import sampleDataUrl from '../../tests/fixtures/data/patterns_test_x.npy?url';
import sampleLabelsUrl from '../../tests/fixtures/data/patterns_test_y.npy?url';
import { barChart, lossChart } from './charts';
import { checkLabels, chosenFiles, droppedFiles, imagesToDataset, isImage, isNpy, npyToDataset, PRESETS, type Dataset, type PathedFile } from './data';
import { el, fmt, fmtBytes, shape } from './dom';
import { graphView } from './graph';
import { npyF32, parseNpyF32, readNpy, spread, takeRows } from './npy';

const SAMPLE_CLASSES = ['hbar', 'vbar', 'diag', 'antidiag', 'plus', 'cross', 'square', 'block', 'ring', 'dots'];
/** Samples used for calibration and for gradient scores (spread over the data). */
const CALIBRATION_SAMPLES = 200;
const GRADIENT_SAMPLES = 128;

const opt = createOptimizer();

interface Original {
  name: string;
  bytes: Uint8Array;
  summary: ModelSummary;
  /** Loaded in the current worker (null after a cancel restarts it). */
  model: LoadedModel | null;
}

interface Result {
  model: LoadedModel;
  bytes: Uint8Array;
  summary: ModelSummary;
  prune?: PruneReport;
  quant?: QuantReport;
  evaluation?: EvalReport;
  /** Each training phase: fine-tuning (with gradual pruning) and quantization-aware training. */
  training: { phase: string; report: TrainReport }[];
  latency: { before: Latency; after: Latency };
  gzip: { before: number; after: number };
  tflm: { before: TflmReport; after: TflmReport };
  options: Record<string, unknown>;
}

let original: Original | null = null;
let dataset: Dataset | null = null;
let result: Result | null = null;
let busy = false;
/** Aborts the training call in flight, which then stops after its step and keeps the best model. */
let trainAbort: AbortController | null = null;
/** Set when the user cancelled a training phase: later training phases are skipped (quantization
 * falls back to post-training), and the results show what the stopped phase kept. */
let trainCancelled = false;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const select = (id: string) => $<HTMLSelectElement>(id);

// ---------------------------------------------------------------------------------------------
// Errors and progress

function showError(e: unknown) {
  const box = $('error');
  const err = e as OptimizerError;
  const where = err.node !== undefined ? `\nat operator ${err.node}${err.op ? ` (${err.op})` : ''}` : '';
  box.textContent = `${err.message ?? String(e)}${where}`;
  box.hidden = false;
  box.focus();
}

function clearError() {
  $('error').hidden = true;
}

function progress(phase: string) {
  return (p: { stage: string; done: number; total: number }) => {
    const bar = $<HTMLProgressElement>('progress');
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
    $('progress-text').textContent = `${phase}: ${p.stage} ${p.done}/${p.total}`;
  };
}

function setBusy(on: boolean, text = '') {
  busy = on;
  for (const e of $('options').querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>('input, select, button')) {
    if (e.id !== 'cancel') e.disabled = on;
  }
  $<HTMLButtonElement>('cancel').disabled = !on;
  $('progress-box').hidden = !on && !text;
  $('progress-text').textContent = text;
  if (on) $<HTMLProgressElement>('progress').removeAttribute('value');
  else syncOptions();
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not load ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** The original model, loaded again if a cancel or a crash restarted the worker. */
async function originalModel(): Promise<LoadedModel> {
  if (!original) throw new Error('load a model first');
  const model = original.model ?? (await opt.loadModel(original.bytes));
  original.model = model;
  return model;
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

// ---------------------------------------------------------------------------------------------
// 1. Model

async function openModel(bytes: Uint8Array, name: string) {
  clearError();
  try {
    const model = await opt.loadModel(bytes);
    if (original?.model) await original.model.release().catch(() => {});
    if (result) await result.model.release().catch(() => {});
    const inputChanged = !original || shape(original.summary.inputs[0]?.shape ?? []) !== shape(model.summary.inputs[0]?.shape ?? []);
    original = { name, bytes, summary: model.summary, model };
    result = null;
    if (inputChanged) setDataset(null);
    renderModel(name, model.summary);
    // The summary came from the inference-only core, without its TFLM report; the full engine
    // (TFLM report, quantize, prune, ...) now downloads in the background while the user looks at
    // it, and the TFLM cards fill in when it is there.
    showTflm(model);
  } catch (e) {
    showError(e);
  }
}

/** The TFLM cards on show, to be replaced when the report arrives. */
let tflmShown: HTMLElement[] = [];

/** The TFLM cards with one placeholder value: while the report is computed, or when it failed. */
function tflmPlaceholders(value: string, why: string): HTMLElement[] {
  return ['TFLite Micro', 'TFLM tensor arena', 'TFLM flash'].map((label) => card(label, value, why));
}

/** Fills in the TFLM cards of `model` (loading the full engine if needed), unless another model is shown by then. */
function showTflm(model: LoadedModel) {
  model.tflm().then(
    (t) => {
      if (original?.model !== model) return;
      original.summary = { ...original.summary, tflm: t };
      replaceTflmCards(tflmCards(t));
    },
    (e) => {
      if (original?.model !== model) return;
      const why = e instanceof Error ? e.message : String(e);
      replaceTflmCards(tflmPlaceholders('–', `not available: ${why}`));
    },
  );
}

function replaceTflmCards(cards: HTMLElement[]) {
  tflmShown.forEach((old, i) => old.replaceWith(cards[i]));
  tflmShown = cards;
}

/** What TensorFlow Lite Micro needs for a model: its arena and flash, or why it cannot run it. */
function tflmCards(t: TflmReport): HTMLElement[] {
  const why = t.unsupported.map((u) => `node ${u.node} ${u.op}: ${u.reason}`).join('\n');
  const arena = t.arenaBytes === null ? '–' : fmtBytes(t.arenaBytes);
  const estimated = t.arenaEstimatedFor.length ? ` (estimated for ${t.arenaEstimatedFor.join(', ')})` : '';
  return [
    card('TFLite Micro', t.supported ? 'runs as is' : `cannot run it (${t.unsupported.length} issue(s))`, why || `${t.ops.length} operator kinds to register`),
    card('TFLM tensor arena', arena, `predicted minimum RAM for activations${estimated}`),
    card('TFLM flash', fmtBytes(t.flashBytes), 'the model read in place, uncompressed'),
  ];
}

function renderModel(name: string, s: ModelSummary) {
  $('model-title').textContent = `Model: ${name}`;
  const cards: [string, string][] = [
    ['size', fmtBytes(s.sizeBytes)],
    ['precision', s.precision],
    ['parameters', fmt(s.parameters)],
    ['MACs / inference', fmt(s.macs)],
    ['operators', fmt(s.layers.length)],
  ];
  tflmShown = s.tflm
    ? tflmCards(s.tflm)
    : tflmPlaceholders('…', 'computed by the full engine, which is loading in the background');
  $('model-cards').replaceChildren(...cards.map(([label, value]) => card(label, value)), ...tflmShown);
  $('model-io').replaceChildren(
    ...[...s.inputs.map((io) => ['input', io] as const), ...s.outputs.map((io) => ['output', io] as const)].map(([k, io]) =>
      el('p', {}, [`${k} `, el('code', {}, [io.name]), ` ${io.dtype} ${shape(io.shape)}`]),
    ),
  );
  $('model-ops').replaceChildren(
    ...s.operators.map((o) => {
      const bad = s.unsupportedOps.includes(o.op);
      return el('span', { class: bad ? 'chip unsupported' : 'chip', title: bad ? 'not executable by the engine yet' : '' }, [`${o.op} ×${o.count}`]);
    }),
  );
  const head = el('tr', {}, ['#', 'op', 'output shape', 'dtype', 'params', 'MACs', 'weights'].map((h, i) => el('th', { class: i === 0 || i === 4 || i === 5 ? 'num' : '' }, [h])));
  const rows = s.layers.map((l) =>
    el('tr', {}, [
      el('td', { class: 'num' }, [String(l.index)]),
      el('td', { title: l.name }, [l.op + (l.activation ? ` + ${l.activation}` : '')]),
      el('td', {}, [shape(l.outputShape)]),
      el('td', {}, [l.dtype]),
      el('td', { class: 'num' }, [fmt(l.params)]),
      el('td', { class: 'num' }, [fmt(l.macs)]),
      el('td', {}, [l.weights ? `${l.weights.dtype} ${shape(l.weights.shape)} ${l.weights.quantization === 'none' ? '' : l.weights.quantization}` : '']),
    ]),
  );
  $('layers').replaceChildren(el('thead', {}, [head]), el('tbody', {}, rows));
  $('view-graph').replaceChildren(graphView(s));
  for (const id of ['model', 'data', 'optimize', 'try']) $(id).hidden = false;
  $('results').hidden = true;
  $('run-status').textContent = '';
  $('run-results').replaceChildren();
  syncOptions();
}

function card(label: string, value: string, title = '') {
  return el('div', { class: 'card', title }, [el('div', { class: 'label' }, [label]), el('div', { class: 'value' }, [value])]);
}

function setupTabs() {
  const tabs = [$('tab-layers'), $('tab-graph')];
  const show = (i: number) => {
    tabs.forEach((t, k) => {
      t.setAttribute('aria-selected', String(k === i));
      t.tabIndex = k === i ? 0 : -1;
      $(t.getAttribute('aria-controls') ?? '').hidden = k !== i;
    });
    tabs[i].focus();
  };
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => show(i));
    t.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') show((i + 1) % tabs.length);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Data

function normalization() {
  const nums = (s: string) => s.split(',').map((v) => Number(v.trim())).filter((v) => Number.isFinite(v));
  const mean = nums(input('norm-mean').value);
  const std = nums(input('norm-std').value);
  if (mean.length === 0 || std.length === 0 || std.some((v) => v === 0)) throw new Error('mean and std must be numbers (one, or one per channel), std not zero');
  return { mean, std, order: select('norm-order').value as 'rgb' | 'bgr' };
}

function applyPreset() {
  const p = PRESETS[select('norm-preset').value];
  input('norm-mean').value = p.mean.join(', ');
  input('norm-std').value = p.std.map((v) => +v.toPrecision(6)).join(', ');
}

function setDataset(d: Dataset | null) {
  dataset = d;
  const status = $('data-status');
  if (!d) {
    status.textContent = 'No data: quantization can still be dynamic, magnitude and random pruning need none.';
  } else {
    const labels = d.labels
      ? d.classNames
        ? `labels for ${d.classNames.length} classes (${d.classNames.join(', ')})`
        : 'with labels'
      : 'no labels (accuracy needs them)';
    status.textContent = `${d.source}; ${labels}.`;
  }
  syncOptions();
}

async function openData(files: PathedFile[]) {
  if (!original) return;
  clearError();
  try {
    const inputShape = original.summary.inputs[0].shape;
    const npy = files.find(isNpy);
    if (npy) {
      setDataset(npyToDataset(new Uint8Array(await npy.file.arrayBuffer()), npy.path, inputShape));
    } else if (files.some(isImage)) {
      $('data-status').textContent = 'reading images…';
      const d = await imagesToDataset(files, inputShape, normalization(), (done, total) => ($('data-status').textContent = `reading images ${done}/${total}`));
      setDataset(d);
    } else {
      throw new Error('drop a .npy file, PNG/JPEG images, or a folder of them');
    }
  } catch (e) {
    setDataset(dataset);
    showError(e);
  }
}

async function openLabels(file: File) {
  clearError();
  try {
    if (!dataset) throw new Error('load the data first, then its labels');
    const labels = checkLabels(new Uint8Array(await file.arrayBuffer()), file.name, dataset.n);
    setDataset({ ...dataset, labels, classNames: undefined });
  } catch (e) {
    showError(e);
  }
}

function setupDrop(zone: HTMLElement, chooser: HTMLInputElement, open: (files: PathedFile[]) => void) {
  zone.addEventListener('click', (e) => {
    if ((e.target as HTMLElement).closest('button')) return;
    chooser.click();
  });
  zone.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && e.target === zone) {
      e.preventDefault();
      chooser.click();
    }
  });
  chooser.addEventListener('change', () => {
    if (chooser.files?.length) open(chosenFiles(chooser.files));
    chooser.value = '';
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer) open(await droppedFiles(e.dataTransfer));
  });
}

/** Up to `k` samples of the data, spread over it, with their labels. */
function subset(d: Dataset, k: number): { x: Uint8Array; labels?: Uint8Array } {
  if (d.n <= k) return { x: d.x, labels: d.labels };
  const rows = spread(d.n, k);
  return { x: takeRows(readNpy(d.x), rows), labels: d.labels ? takeRows(readNpy(d.labels), rows) : undefined };
}

// ---------------------------------------------------------------------------------------------
// 3. Optimize

/** Enables what makes sense for the loaded model and data, and says why not otherwise. */
function syncOptions() {
  if (!original || busy) return;
  const float = original.summary.precision === 'float';
  const hint: string[] = [];
  input('prune-on').disabled = !float;
  input('quant-on').disabled = !float;
  if (!float) {
    input('prune-on').checked = false;
    input('quant-on').checked = false;
    hint.push(`This model is ${original.summary.precision}: pruning and quantization start from the float model. You can still run and measure it.`);
  }
  const method = select('prune-method').value;
  if (input('prune-on').checked && method.endsWith('gradient') && !dataset) hint.push('Gradient pruning needs data.');
  const trainOn = input('train-on').checked;
  if (trainOn && !dataset?.labels) hint.push('Training needs labelled data (a folder per class, or a labels .npy).');
  for (const id of ['train-epochs', 'train-lr']) input(id).disabled = !trainOn;
  if (input('quant-on').checked && select('quant-mode').value === 'static' && !dataset) hint.push('Static quantization needs data for calibration (or choose dynamic).');
  if (dataset && dataset.n < 10 && input('quant-on').checked && select('quant-mode').value === 'static') hint.push('Calibration needs at least 10 samples.');
  for (const id of ['quant-method', 'quant-granularity', 'quant-io']) select(id).disabled = !input('quant-on').checked || (id !== 'quant-granularity' && select('quant-mode').value === 'dynamic');
  select('quant-mode').disabled = !input('quant-on').checked;
  for (const id of ['prune-method', 'prune-sparsity', 'prune-structured']) ($(id) as HTMLInputElement).disabled = !input('prune-on').checked;
  const nothing = !input('prune-on').checked && !input('quant-on').checked && !trainOn;
  $<HTMLButtonElement>('run-optimize').disabled = !float || hint.length > 0 || nothing;
  const warn = $('tflm-warning');
  const hybrid = input('quant-on').checked && select('quant-mode').value === 'dynamic';
  warn.hidden = !hybrid;
  warn.textContent = hybrid ? 'TensorFlow Lite Micro cannot run dynamic-range (hybrid) models: choose static quantization (it needs a few samples of data) to deploy on a microcontroller.' : '';
  $('progress-box').hidden = hint.length === 0;
  $('progress-text').textContent = hint.join(' ');
  $<HTMLProgressElement>('progress').hidden = true;
}

async function optimize() {
  if (!original || busy) return;
  clearError();
  const pruneOn = input('prune-on').checked;
  const quantOn = input('quant-on').checked;
  const sparsity = Number(input('prune-sparsity').value);
  const method = select('prune-method').value as PruneMethod;
  const mode = select('quant-mode').value as 'static' | 'dynamic';
  const calibrationName = select('quant-method').value;
  const options = {
    prune: pruneOn ? { method, sparsity, structured: input('prune-structured').checked } : undefined,
    quantize: quantOn
      ? {
          mode,
          calibration: calibrationName === 'percentile' ? { method: 'percentile' as const, percentile: 99.99 } : { method: calibrationName as 'auto' },
          granularity: select('quant-granularity').value as 'per-channel' | 'per-tensor',
          io: select('quant-io').value as 'int8' | 'float32',
        }
      : undefined,
  };
  const train = input('train-on').checked
    ? { epochs: Number(input('train-epochs').value), learningRate: Number(input('train-lr').value) }
    : null;
  if (pruneOn && !(sparsity >= 0 && sparsity < 1)) return showError(new Error('sparsity must be a fraction in [0, 1)'));
  if (train && !(Number.isInteger(train.epochs) && train.epochs >= 1 && train.learningRate > 0)) {
    return showError(new Error('epochs must be a whole number from 1, and the learning rate positive'));
  }
  setBusy(true);
  $('results').hidden = true;
  $('train-box').hidden = !train;
  $<HTMLProgressElement>('progress').hidden = false;
  if (result) {
    await result.model.release().catch(() => {});
    result = null;
  }
  const made: LoadedModel[] = [];
  const training: Result['training'] = [];
  trainCancelled = false;
  try {
    const base = await originalModel();
    let current = base;
    let prune: PruneReport | undefined;
    let quant: QuantReport | undefined;
    const labelled = train && dataset?.labels ? { data: dataset.x, labels: dataset.labels } : null;
    if (options.prune && labelled && !options.prune.structured) {
      const r = await trainPhase('prune while training', (o) =>
        current.finetune({ ...train, ...labelled, prune: { method, sparsity } }, o),
      );
      made.push(r.model);
      current = r.model;
      prune = gradualReport(method, sparsity, r.report);
      training.push({ phase: 'pruning while training', report: r.report.train });
    } else if (options.prune) {
      const p = options.prune;
      let pruneOptions: PruneOptions;
      if (needsData(p.method)) {
        // Unreachable from the form: the button stays disabled until there is data.
        if (!dataset) throw new Error('Gradient pruning needs data.');
        const g = subset(dataset, GRADIENT_SAMPLES);
        pruneOptions = { ...p, method: p.method, data: g.x, labels: g.labels };
      } else {
        pruneOptions = { ...p, method: p.method };
      }
      const r = await current.prune(pruneOptions, { onProgress: progress('prune') });
      made.push(r.model);
      current = r.model;
      prune = r.report;
    }
    if (labelled && !trainCancelled && !(options.prune && !options.prune.structured) && !(options.quantize?.mode === 'static')) {
      const r = await trainPhase('fine-tune', (o) => current.finetune({ ...train, ...labelled }, o));
      made.push(r.model);
      current = r.model;
      training.push({ phase: 'fine-tuning', report: r.report.train });
    }
    if (options.quantize && labelled && options.quantize.mode === 'static' && !trainCancelled) {
      const q = options.quantize;
      // Training starts from the model static quantization alone would give: the same calibration samples.
      const calibrationData = subset(dataset!, CALIBRATION_SAMPLES).x;
      const r = await trainPhase('quantization-aware training', (o) =>
        current.quantizeAware({ ...q, ...labelled, calibrationData, train: { epochs: train!.epochs, learningRate: train!.learningRate / 5 } }, o),
      );
      made.push(r.model);
      current = r.model;
      quant = r.report.quantize;
      training.push({ phase: 'quantization-aware training', report: r.report.train });
    } else if (options.quantize) {
      const q = options.quantize;
      let quantizeOptions: QuantizeOptions;
      if (q.mode === 'dynamic') {
        quantizeOptions = { ...q, mode: q.mode };
      } else {
        // Unreachable from the form: the button stays disabled until there is data.
        if (!dataset) throw new Error('Static quantization needs data for calibration.');
        quantizeOptions = { ...q, mode: q.mode, calibrationData: subset(dataset, CALIBRATION_SAMPLES).x };
      }
      const r = await current.quantize(quantizeOptions, { onProgress: progress('quantize') });
      made.push(r.model);
      current = r.model;
      quant = r.report;
    }
    const bytes = await current.toBytes();
    const evaluation = dataset
      ? await current.evaluate(dataset.x, { labels: dataset.labels, reference: base }, { onProgress: progress('evaluate') })
      : undefined;
    $('progress-text').textContent = 'measuring latency…';
    const one = dataset ? subset(dataset, 1).x : npyF32(original.summary.inputs[0].shape.map((d) => Math.max(d, 1)), new Float32Array(original.summary.inputs[0].shape.reduce((a, b) => a * Math.max(b, 1), 1)));
    const latency = { before: await base.benchmark(one, 200), after: await current.benchmark(one, 200) };
    const gzip = { before: await gzipSize(original.bytes), after: await gzipSize(bytes) };
    const tflm = { before: await base.tflm(), after: await current.tflm() };
    for (const m of made) if (m !== current) await m.release();
    result = { model: current, bytes, summary: current.summary, prune, quant, evaluation, training, latency, gzip, tflm, options };
    setBusy(false);
    renderResults();
  } catch (e) {
    for (const m of made) await m.release().catch(() => {});
    setBusy(false);
    if (e instanceof OptimizerError && e.code === 'cancelled') {
      if (original) original.model = null;
      $('progress-box').hidden = false;
      $('progress-text').textContent = 'Cancelled. The engine restarted; nothing was changed.';
    } else {
      // After a crash the engine restarts on the next call; the model is loaded again then.
      if (e instanceof OptimizerError && e.code === 'engine_crashed' && original) original.model = null;
      showError(e);
    }
  }
}

/** Cancels the work: training stops after its step and keeps the best model (the pipeline goes on
 * with it); anything else restarts the engine. */
function cancel() {
  if (trainAbort) {
    trainCancelled = true;
    trainAbort.abort();
    $('train-status').textContent = 'stopping after the current step…';
    return;
  }
  opt.cancel();
}

/** A training call with the live loss chart and a graceful cancel. */
async function trainPhase<T>(
  phase: string,
  call: (o: { onProgress: (p: { stage: string; done: number; total: number }) => void; onMetrics: (m: TrainMetrics) => void; signal: AbortSignal }) => Promise<T>,
): Promise<T> {
  trainAbort = new AbortController();
  const steps: [number, number][] = [];
  const val: [number, number][] = [];
  const onMetrics = (m: TrainMetrics) => {
    steps.push([m.step, m.loss]);
    const last = m.epochs.at(-1);
    if (last && m.epochs.length > val.length && last.valLoss !== null) val.push([m.step, last.valLoss]);
    $('train-chart').replaceChildren(
      lossChart(
        [
          { name: 'training loss (per step)', cls: 'train', points: steps },
          { name: 'validation loss (per epoch)', cls: 'val', points: val },
        ],
        { steps: m.steps, ariaLabel: `${phase}: loss per step` },
      ),
    );
    $('train-status').textContent =
      `${phase}: step ${m.step} of ${m.steps}, loss ${m.loss.toFixed(4)}` +
      (last ? `; epoch ${last.epoch}: validation accuracy ${last.valAccuracy === null ? '–' : pct(last.valAccuracy)}` : '');
  };
  try {
    return await call({ onProgress: progress(phase), onMetrics, signal: trainAbort.signal });
  } finally {
    trainAbort = null;
  }
}

/** One training phase in a line: epochs run, the kept epoch and its validation accuracy. */
function trainingText(t: TrainReport): string {
  if (t.kept === 'start') {
    const acc = t.startValAccuracy;
    return `${t.epochs.length} epoch(s), kept the starting model: no epoch beat it` + (acc == null ? '' : ` (validation accuracy ${pct(acc)})`);
  }
  const best = t.epochs.find((e) => e.epoch === t.bestEpoch);
  const acc = best?.valAccuracy ?? null;
  return `${t.epochs.length} epoch(s)` + (best ? `, kept epoch ${best.epoch}${acc === null ? '' : ` (validation accuracy ${pct(acc)})`}` : '');
}

/** Gradual pruning's figures in the shape of a pruning report (for the results and the download). */
function gradualReport(method: PruneMethod, sparsity: number, r: FinetuneReport): PruneReport {
  const prunable = r.before.layers.reduce((a, l) => a + l.params, 0);
  return {
    method,
    structured: false,
    requestedSparsity: sparsity,
    achievedSparsity: r.train.sparsity,
    prunableWeights: prunable,
    removedWeights: r.before.nonzeroParams - r.after.nonzeroParams,
    before: r.before,
    after: r.after,
    notes: [`pruned gradually while training ${r.train.epochs.length} epoch(s)${r.train.stopped ? ` (${r.train.stopped})` : ''}`],
    scoreMs: 0,
    pruneMs: r.train.msPerEpoch * r.train.epochs.length,
  };
}

// ---------------------------------------------------------------------------------------------
// 4. Results

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const change = (a: number, b: number) => (a > 0 ? ` (${b <= a ? '−' : '+'}${Math.abs((1 - b / a) * 100).toFixed(0)}%)` : '');

/** Arena and flash on TFLite Micro before → after, and what pruning saves there. */
function tflmResultCards(a: TflmReport, b: TflmReport, prune?: PruneReport): HTMLElement[] {
  const arena = (t: TflmReport) => (t.arenaBytes === null ? '–' : fmtBytes(t.arenaBytes));
  const cards = [
    card('TFLM tensor arena', `${arena(a)} → ${arena(b)}`, 'predicted minimum RAM on the microcontroller'),
    card('TFLM flash', `${fmtBytes(a.flashBytes)} → ${fmtBytes(b.flashBytes)}${change(a.flashBytes, b.flashBytes)}`, 'the model read in place, uncompressed'),
  ];
  if (!b.supported) cards.push(card('TFLite Micro', `cannot run it`, b.unsupported.map((u) => `node ${u.node} ${u.op}: ${u.reason}`).join('\n')));
  if (prune && !prune.structured) {
    cards.push(card('pruning on TFLM', 'zeros save no flash, RAM or time', 'TFLM reads the model uncompressed and has no sparse kernels: unstructured zeros only shrink a compressed download. Structured pruning removes channels and saves all three.'));
  }
  return cards;
}

function renderResults() {
  if (!original || !result) return;
  const before = original.summary;
  const r = result;
  const cards: HTMLElement[] = [
    card('file size', `${fmtBytes(before.sizeBytes)} → ${fmtBytes(r.bytes.length)}${change(before.sizeBytes, r.bytes.length)}`),
    card('gzip size', `${fmtBytes(r.gzip.before)} → ${fmtBytes(r.gzip.after)}${change(r.gzip.before, r.gzip.after)}`),
    card('precision', `${before.precision} → ${r.summary.precision}`),
    card('parameters', r.prune ? `${fmt(r.prune.before.nonzeroParams)} → ${fmt(r.prune.after.nonzeroParams)} non-zero` : fmt(r.summary.parameters)),
    card('MACs / inference', `${fmt(before.macs)} → ${fmt(r.summary.macs)}`),
    card('latency (this browser)', `${r.latency.before.medianMs.toFixed(3)} → ${r.latency.after.medianMs.toFixed(3)} ms`, 'median of batched runs of one sample, engine in a Web Worker'),
  ];
  const ev = r.evaluation;
  if (ev?.accuracy !== undefined && ev.reference?.accuracy !== undefined) cards.push(card('accuracy', `${pct(ev.reference.accuracy)} → ${pct(ev.accuracy)}`, `${ev.samples} samples`));
  if (ev?.reference) {
    cards.push(card('top-1 agreement', pct(ev.reference.top1Agreement), 'samples where the optimized model predicts the same class as the original'));
    const sq = ev.reference.outputSqnrDb[0];
    cards.push(card('output SQNR', sq === null || sq === undefined ? '–' : `${sq.toFixed(1)} dB`, 'signal-to-noise ratio of the output against the original'));
  }
  for (const t of r.training) cards.push(card(t.phase, trainingText(t.report), `${t.report.trainSamples} training and ${t.report.validationSamples} validation samples`));
  cards.push(...tflmResultCards(r.tflm.before, r.tflm.after, r.prune));
  $('result-cards').replaceChildren(...cards);
  const steps = [
    ...r.training.map((t) => `${t.phase} (${t.report.epochs.length} epoch(s)${t.report.stopped ? `, ${t.report.stopped}` : ''})`),
    r.prune ? `pruned (${r.prune.method}${r.prune.structured ? ', structured' : ''}, ${pct(r.prune.achievedSparsity)} of ${fmt(r.prune.prunableWeights)} weights)` : '',
    r.quant ? `quantized (${r.quant.mode}${r.quant.calibration ? `, ${r.quant.calibration}` : ''}, ${r.quant.granularity})` : '',
  ].filter(Boolean);
  $('result-summary').textContent = `${steps.join(', then ')}${ev ? `; measured on ${ev.samples} samples` : '; no data, so no accuracy'}.`;
  // Sparsity per layer.
  if (r.prune) {
    const beforeLayers = new Map(r.prune.before.layers.map((l) => [l.node, l]));
    const bars = r.prune.after.layers.map((l) => {
      const b = beforeLayers.get(l.node);
      const removed = b && b.params > 0 ? 1 - l.nonzeroParams / b.params : 0;
      return { label: `${l.node} ${l.op}`, value: removed * 100, title: l.name };
    });
    $('chart-sparsity').replaceChildren(barChart(bars, { max: 100, unit: '%', ariaLabel: 'weights removed per layer' }));
  }
  $('chart-sparsity-box').hidden = !r.prune;
  const sqnr = r.quant?.layers.filter((l) => l.sqnrDb !== undefined) ?? [];
  if (sqnr.length) {
    const max = Math.max(40, ...sqnr.map((l) => (l.sqnrDb === null || l.sqnrDb === undefined || !Number.isFinite(l.sqnrDb) ? 0 : l.sqnrDb)));
    const bars = sqnr.map((l) => ({
      label: `${l.index} ${l.op}`,
      value: l.sqnrDb ?? null,
      text: l.sqnrDb === null || l.sqnrDb === undefined ? '–' : Number.isFinite(l.sqnrDb) ? `${l.sqnrDb.toFixed(1)} dB` : 'exact',
      title: l.name,
    }));
    $('chart-sqnr').replaceChildren(barChart(bars, { max, unit: ' dB', ariaLabel: 'SQNR per layer' }));
  }
  $('chart-sqnr-box').hidden = sqnr.length === 0;
  const notes = [...(r.prune?.notes ?? []), ...(r.quant?.notes ?? []), ...(r.quant?.keptFloat ?? []).map((k) => `kept in float: ${k}`)];
  $('notes').replaceChildren(...notes.map((n) => el('li', {}, [n])));
  $('results').hidden = false;
  $('try-which').textContent = 'optimized model';
  $('results').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function baseName() {
  return (original?.name ?? 'model').replace(/\.tflite$/i, '');
}

function download(data: BlobPart, name: string, type: string) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function report() {
  if (!original || !result) return {};
  return {
    source: { name: original.name, sizeBytes: original.bytes.length, precision: original.summary.precision },
    options: result.options,
    prune: result.prune,
    quantize: result.quant,
    training: result.training,
    evaluation: result.evaluation,
    latency: { before: result.latency.before, after: result.latency.after },
    gzipBytes: result.gzip,
    sizeBytes: result.bytes.length,
  };
}

// ---------------------------------------------------------------------------------------------
// 5. Try it

async function tryIt() {
  if (!original) return;
  clearError();
  const status = $('run-status');
  try {
    const model = result?.model ?? (await originalModel());
    const d = dataset ?? null;
    if (!d) throw new Error('load data to run (a .npy batch or images)');
    const rows = Array.from({ length: Math.min(d.n, 16) }, (_, i) => i);
    const x = takeRows(readNpy(d.x), rows);
    status.textContent = 'running…';
    const t0 = performance.now();
    const [out] = await model.run(x);
    const ms = performance.now() - t0;
    const y = parseNpyF32(out);
    const labels = d.labels ? readNpy(d.labels) : null;
    const labelOf = (i: number): number | null => {
      if (!labels) return null;
      const dv = new DataView(labels.bytes.buffer, labels.bytes.byteOffset + labels.offset);
      if (labels.shape.length === 1) {
        return labels.descr === '<i8' ? Number(dv.getBigInt64(i * 8, true)) : labels.descr === '<i4' ? dv.getInt32(i * 4, true) : labels.descr === '|u1' ? dv.getUint8(i) : labels.descr === '|i1' ? dv.getInt8(i) : null;
      }
      return null;
    };
    const names = d.classNames ?? (d === sampleData ? SAMPLE_CLASSES : undefined);
    const width = y.data.length / Math.max(rows.length, 1);
    status.textContent = `${rows.length} samples in ${ms.toFixed(1)} ms (including the transfer to the worker)`;
    const body = rows.map((i) => {
      const row = y.data.subarray(i * width, (i + 1) * width);
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
      const label = labelOf(i);
      const name = (k: number) => names?.[k] ?? `class ${k}`;
      return el('tr', {}, [
        el('td', { class: 'num' }, [String(i)]),
        el('td', {}, [name(best)]),
        el('td', { class: 'num' }, [row[best].toFixed(4)]),
        el('td', {}, [label === null ? '' : `${name(label)} ${label === best ? '✓' : '✗'}`]),
      ]);
    });
    $('run-results').replaceChildren(
      el('thead', {}, [el('tr', {}, [el('th', { class: 'num' }, ['sample']), el('th', {}, ['top-1']), el('th', { class: 'num' }, ['score']), el('th', {}, ['label'])])]),
      el('tbody', {}, body),
    );
  } catch (e) {
    status.textContent = '';
    showError(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

let sampleData: Dataset | null = null;

async function openSample() {
  clearError();
  try {
    const [model, x, y] = await Promise.all([fetchBytes(sampleModelUrl), fetchBytes(sampleDataUrl), fetchBytes(sampleLabelsUrl)]);
    await openModel(model, 'sample-resnet.tflite');
    if (!original) return;
    sampleData = { ...npyToDataset(x, 'sample test images', original.summary.inputs[0].shape), labels: y, classNames: SAMPLE_CLASSES };
    sampleData.source = '1000 sample test images (16×16 shapes)';
    setDataset(sampleData);
    input('prune-on').checked = true;
    select('prune-method').value = 'global-magnitude';
    input('prune-sparsity').value = '0.5';
    input('quant-on').checked = true;
    select('quant-mode').value = 'static';
    syncOptions();
  } catch (e) {
    showError(e);
  }
}

function main() {
  for (const [key, p] of Object.entries(PRESETS)) select('norm-preset').append(el('option', { value: key }, [p.label]));
  applyPreset();
  select('norm-preset').addEventListener('change', applyPreset);
  setupTabs();
  setupDrop($('dropzone'), input('model-file'), async (files) => {
    const f = files[0];
    if (f) await openModel(new Uint8Array(await f.file.arrayBuffer()), f.file.name);
  });
  setupDrop($('data-drop'), input('data-file'), (files) => openData(files));
  $('choose-folder').addEventListener('click', () => input('data-folder').click());
  input('data-folder').addEventListener('change', () => {
    const list = input('data-folder').files;
    if (list?.length) openData(chosenFiles(list));
    input('data-folder').value = '';
  });
  input('labels-file').addEventListener('change', () => {
    const f = input('labels-file').files?.[0];
    if (f) openLabels(f);
    input('labels-file').value = '';
  });
  $('sample').addEventListener('click', openSample);
  $('options').addEventListener('change', syncOptions);
  $('options').addEventListener('submit', (e) => {
    e.preventDefault();
    optimize();
  });
  $('cancel').addEventListener('click', cancel);
  $('dl-model').addEventListener('click', () => result && download(result.bytes, `${baseName()}_optimized.tflite`, 'application/octet-stream'));
  $('dl-header').addEventListener('click', async () => {
    if (!result) return;
    try {
      const fw = await result.model.firmware(`${baseName()}_optimized`);
      download(fw.header, fw.headerName, 'text/x-c');
      download(fw.source, fw.sourceName, 'text/x-c');
    } catch (e) {
      showError(e);
    }
  });
  $('dl-report').addEventListener('click', () => result && download(JSON.stringify(report(), null, 2), `${baseName()}_report.json`, 'application/json'));
  $('run-try').addEventListener('click', tryIt);
  opt.info().then(
    (i) => ($('engine-info').textContent = `tinyml-optimizer ${i.version}, WebAssembly ${i.simd}`),
    (e) => {
      $('engine-info').textContent = 'unavailable';
      showError(e);
    },
  );
}

main();
