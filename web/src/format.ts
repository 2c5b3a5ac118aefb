/** Plain-text renderings of summaries and reports, for the CLI. */
import type { EvalReport, ModelSummary, PruneReport, QuantParams, QuantReport, TrainReport } from './types.js';
import type { OptimizeReport } from './cli/optimize.js';

const n = (v: number) => v.toLocaleString('en-US');
const shape = (s: number[]) => `[${s.join(', ')}]`;

function fmtNum(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e4 ? Number(v.toPrecision(6)).toString() : v.toExponential(4);
}

/** Quantization parameters in one line: "scale 0.0039 zp -128", or a per-channel range. */
export function formatQuant(q?: QuantParams): string {
  if (!q || q.scale.length === 0) return '';
  if (q.scale.length === 1) return `scale ${fmtNum(q.scale[0])} zp ${q.zeroPoint[0] ?? 0}`;
  const lo = Math.min(...q.scale);
  const hi = Math.max(...q.scale);
  const zps = new Set(q.zeroPoint);
  const zp = zps.size === 1 ? `zp ${[...zps][0]}` : 'zp varies';
  return `per-channel(${q.scale.length}, axis ${q.axis}) scale ${fmtNum(lo)}..${fmtNum(hi)} ${zp}`;
}

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd())
    .join('\n');
}

export function formatSummary(name: string, s: ModelSummary): string {
  const out: string[] = [];
  out.push(`${name}: ${n(s.sizeBytes)} bytes, ${s.precision}, ${s.subgraphs} subgraph${s.subgraphs === 1 ? '' : 's'}`);
  if (s.description) out.push(`description: ${s.description}`);
  for (const [label, list] of [['input', s.inputs], ['output', s.outputs]] as const) {
    for (const io of list) out.push(`${label}: ${io.name} ${io.dtype} ${shape(io.shape)} ${formatQuant(io.quant)}`.trimEnd());
  }
  out.push(`parameters: ${n(s.parameters)} (${n(s.parameterBytes)} bytes)`);
  out.push(`MACs: ${n(s.macs)}`);
  out.push(`operators: ${s.operators.map((o) => `${o.op} x${o.count}`).join(', ')}`);
  if (s.unsupportedOps.length) out.push(`not executable by the engine yet: ${s.unsupportedOps.join(', ')}`);
  out.push('', 'layers:');
  const layerRows = [['#', 'op', 'output', 'shape', 'dtype', 'params', 'MACs', 'weights']];
  for (const l of s.layers) {
    const w = l.weights ? `${l.weights.dtype} ${shape(l.weights.shape)} ${l.weights.quantization === 'none' ? '' : l.weights.quantization}` : '';
    layerRows.push([
      String(l.index),
      l.op + (l.activation ? `+${l.activation}` : '') + (l.executable ? '' : ' (opaque)'),
      l.name.length > 40 ? '…' + l.name.slice(-39) : l.name,
      shape(l.outputShape),
      l.dtype,
      n(l.params),
      n(l.macs),
      w.trimEnd(),
    ]);
  }
  out.push(table(layerRows, ['r', 'l', 'l', 'l', 'l', 'r', 'r', 'l']));
  out.push('', 'tensors:');
  const tensorRows = [['#', 'name', 'dtype', 'shape', 'kind', 'quantization']];
  for (const t of s.tensors) {
    tensorRows.push([
      String(t.index),
      t.name.length > 48 ? '…' + t.name.slice(-47) : t.name,
      t.dtype,
      shape(t.shape),
      t.constant ? `const ${n(t.bytes)} B` : '',
      formatQuant(t.quant),
    ]);
  }
  out.push(table(tensorRows, ['r', 'l', 'l', 'l', 'l', 'l']));
  return out.join('\n') + '\n';
}

const db = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v === Infinity ? 'exact' : `${v.toFixed(1)} dB`);

/** The quantization report in a few lines and a per-layer table. */
export function formatQuantReport(path: string, bytes: number, ms: number, r: QuantReport): string {
  const out: string[] = [];
  const ratio = r.sizeBefore > 0 ? ` (${((bytes / r.sizeBefore) * 100).toFixed(0)}% of ${n(r.sizeBefore)})` : '';
  out.push(`wrote ${path}: ${n(bytes)} bytes${ratio}, ${r.mode} int8 in ${ms.toFixed(0)} ms`);
  if (r.mode === 'static') {
    out.push(
      `calibration: ${r.calibration}, ${r.calibrationSamples} samples; weights ${r.granularity}; io ${r.io}; bias correction ${r.biasCorrection ? 'on' : 'off'}`,
    );
    out.push(`output SQNR vs float (${r.reportSamples} samples): ${r.outputSqnrDb.map(db).join(', ')}`);
  }
  for (const note of r.notes) out.push(`note: ${note}`);
  for (const k of r.keptFloat) out.push(`kept in float: ${k}`);
  const rows = [['#', 'op', 'output', 'scale', 'zp', 'weights', 'SQNR']];
  for (const l of r.layers) {
    rows.push([
      String(l.index),
      l.op + (l.keptFloat ? ' (float)' : ''),
      l.name.length > 40 ? '…' + l.name.slice(-39) : l.name,
      l.outputScale !== undefined ? fmtNum(l.outputScale) : '',
      l.outputZeroPoint !== undefined ? String(l.outputZeroPoint) : '',
      l.weights ?? '',
      db(l.sqnrDb),
    ]);
  }
  out.push('', table(rows, ['r', 'l', 'l', 'r', 'r', 'l', 'r']));
  return out.join('\n') + '\n';
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

/** An evaluation report in a few lines. */
export function formatEvalReport(name: string, r: EvalReport, refName?: string): string {
  const out: string[] = [];
  out.push(`${name}: ${r.samples} samples, ${n(r.sizeBytes)} bytes`);
  if (r.accuracy !== undefined) out.push(`accuracy: ${pct(r.accuracy)}`);
  out.push(`latency (our engine): mean ${r.latency.meanMs.toFixed(3)} ms, median ${r.latency.medianMs.toFixed(3)} ms, min ${r.latency.minMs.toFixed(3)} ms`);
  if (r.reference) {
    const ref = r.reference;
    out.push(`reference ${refName ?? ''}: ${n(ref.sizeBytes)} bytes${ref.accuracy !== undefined ? `, accuracy ${pct(ref.accuracy)}` : ''}, latency mean ${ref.latency.meanMs.toFixed(3)} ms`);
    out.push(`top-1 agreement with the reference: ${pct(ref.top1Agreement)}`);
    out.push(`output SQNR vs the reference: ${ref.outputSqnrDb.map(db).join(', ')}`);
  }
  return out.join('\n') + '\n';
}

/** A pruning report: before/after totals, the evaluation when data was given, and per layer. */
export function formatPruneReport(path: string, r: PruneReport, evaluation?: EvalReport): string {
  const out: string[] = [];
  const kind = r.structured ? 'structured (whole channels)' : 'unstructured (zeroed weights)';
  out.push(
    `wrote ${path}: ${r.method}, ${kind}; ${pct(r.achievedSparsity)} of ${n(r.prunableWeights)} prunable weights removed (requested ${pct(r.requestedSparsity)})`,
  );
  if (r.channels) out.push(`channels: ${n(r.channels[0])} -> ${n(r.channels[1])}`);
  if (r.gradientLoss !== undefined) out.push(`gradients: mean loss ${r.gradientLoss.toFixed(4)} over ${r.gradientSamples} samples`);
  const { before: b, after: a } = r;
  const rows = [
    ['', 'before', 'after'],
    ['parameters', n(b.params), n(a.params)],
    ['non-zero parameters', n(b.nonzeroParams), n(a.nonzeroParams)],
    ['compression ratio', `${b.compressionRatio.toFixed(2)}x`, `${a.compressionRatio.toFixed(2)}x`],
    ['MACs', n(b.macs), n(a.macs)],
    ['effective MACs', n(b.effectiveMacs), n(a.effectiveMacs)],
    ['file bytes', n(b.sizeBytes), n(a.sizeBytes)],
    ['gzip bytes', n(b.gzipBytes), n(a.gzipBytes)],
  ];
  if (evaluation) {
    const ref = evaluation.reference;
    if (evaluation.accuracy !== undefined && ref?.accuracy !== undefined) rows.push(['accuracy', pct(ref.accuracy), pct(evaluation.accuracy)]);
    if (ref) rows.push(['latency ms (median)', ref.latency.medianMs.toFixed(3), evaluation.latency.medianMs.toFixed(3)]);
  }
  out.push('', table(rows, ['l', 'r', 'r']));
  if (evaluation?.reference) {
    out.push(
      '',
      `on ${evaluation.samples} samples: top-1 agreement with the original ${pct(evaluation.reference.top1Agreement)}, output SQNR ${evaluation.reference.outputSqnrDb.map(db).join(', ')}`,
    );
  }
  for (const note of r.notes) out.push(`note: ${note}`);
  const layers = [['#', 'op', 'output', 'params', 'non-zero', 'sparsity', 'units', 'MACs', 'effective MACs']];
  const before = new Map(b.layers.map((l) => [l.node, l]));
  for (const l of a.layers) {
    const o = before.get(l.node);
    const sparsity = o && o.params > 0 ? 1 - l.nonzeroParams / o.params : 0;
    layers.push([
      String(l.node),
      l.op,
      l.name.length > 36 ? '…' + l.name.slice(-35) : l.name,
      o && o.params !== l.params ? `${n(o.params)}->${n(l.params)}` : n(l.params),
      n(l.nonzeroParams),
      pct(sparsity),
      o && o.units !== l.units ? `${o.units}->${l.units}` : String(l.units),
      n(l.macs),
      n(l.effectiveMacs),
    ]);
  }
  out.push('', table(layers, ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r']));
  return out.join('\n') + '\n';
}

/** A path as the CLI shows it: `-` is stdout (or stdin, for an input). */
export function shownPath(path: string, std: 'stdout' | 'stdin' = 'stdout'): string {
  return path === '-' ? std : path;
}

/** A trained model in a line: epochs, time per epoch, the kept accuracy and sparsity. */
export function formatTrained(output: { path: string; bytes: number }, ms: number, t: TrainReport): string {
  const last = t.epochs[t.epochs.length - 1];
  const acc = last ? (last.valAccuracy ?? last.accuracy) : null;
  return (
    `wrote ${shownPath(output.path)} (${n(output.bytes)} bytes) after ${t.epochs.length} epoch(s), ` +
    `${(t.msPerEpoch / 1000).toFixed(2)} s/epoch, ${(ms / 1000).toFixed(1)} s in all` +
    (acc != null ? `; ${last.valAccuracy != null ? 'validation ' : ''}accuracy ${pct(acc)}` : '') +
    (last && last.sparsity > 0 ? `; sparsity ${(last.sparsity * 100).toFixed(1)}%` : '') +
    (t.stopped ? `\n(stopped: ${t.stopped})` : '') +
    (t.kept === 'start' ? '\n(kept the starting model: no epoch beat it on the validation samples)' : '') +
    '\n'
  );
}

const STEP_NAMES: Record<OptimizeReport['steps'][number]['step'], string> = {
  prune: 'prune',
  'prune-while-training': 'prune while training',
  finetune: 'fine-tune',
  quantize: 'quantize',
  'quantize-aware-training': 'quantization-aware training',
  evaluate: 'evaluate',
};

/** What each step did, a line each. */
function optimizeSteps(r: OptimizeReport): string[] {
  const out = [`steps: ${r.steps.map((s) => `${STEP_NAMES[s.step]} (${(s.ms / 1000).toFixed(1)} s)`).join(' -> ')}`];
  const p = r.prune;
  if (p) {
    const kind = p.structured ? 'structured (whole channels)' : 'unstructured (zeroed weights)';
    out.push(`pruning: ${p.method}${p.gradual ? ' while training' : ''}, ${kind}; ${pct(p.achievedSparsity)} of the prunable weights (requested ${pct(p.requestedSparsity)})`);
  }
  for (const t of r.training) {
    const best = t.train.epochs.find((e) => e.epoch === t.train.bestEpoch);
    const acc = best?.valAccuracy ?? null;
    out.push(`${STEP_NAMES[t.step]}: ${t.train.epochs.length} epoch(s)${best ? `, kept epoch ${best.epoch}` : ''}${acc === null ? '' : ` (validation accuracy ${pct(acc)})`}${t.train.stopped ? `; stopped: ${t.train.stopped}` : ''}`);
  }
  const q = r.quantize;
  if (q) {
    const calib = q.mode === 'dynamic' ? '' : `, calibration ${q.calibration ?? '-'} (${q.calibrationSamples} samples)`;
    out.push(`quantization: ${q.mode} int8${calib}, weights ${q.granularity}, io ${q.io}; output SQNR vs float ${q.outputSqnrDb.map(db).join(', ')}`);
    for (const note of q.notes) out.push(`note: ${note}`);
  }
  return out;
}

/** Before and after, side by side: size, precision, parameters, MACs, TFLite Micro facts, accuracy and latency. */
function optimizeTable(r: OptimizeReport): string {
  const { before: b, after: a, evaluation: e } = r;
  const arena = (v: number | null) => (v === null ? '-' : `${n(v)} B`);
  const rows = [
    ['', 'original', 'optimized'],
    ['file bytes', n(b.bytes), n(a.bytes)],
    ['precision', b.precision, a.precision],
    ['parameters', n(b.parameters), n(a.parameters)],
    ['MACs', n(b.macs), n(a.macs)],
    ['TFLM runs it', b.tflm.supported ? 'yes' : 'no', a.tflm.supported ? 'yes' : 'no'],
    ['TFLM arena', arena(b.tflm.arenaBytes), arena(a.tflm.arenaBytes)],
    ['TFLM flash', `${n(b.tflm.flashBytes)} B`, `${n(a.tflm.flashBytes)} B`],
  ];
  const ref = e?.reference;
  if (e?.accuracy !== undefined && ref?.accuracy !== undefined) rows.push(['accuracy', pct(ref.accuracy), pct(e.accuracy)]);
  if (e && ref) rows.push(['latency ms (median)', ref.latency.medianMs.toFixed(3), e.latency.medianMs.toFixed(3)]);
  return table(rows, ['l', 'r', 'r']);
}

/** The report of `optimize`: the output, what each step did, and the model before and after. */
export function formatOptimizeReport(output: { path: string; bytes: number }, ms: number, r: OptimizeReport): string {
  const ratio = r.before.bytes > 0 ? ` (${((output.bytes / r.before.bytes) * 100).toFixed(0)}% of ${n(r.before.bytes)})` : '';
  const out = [`wrote ${shownPath(output.path)}: ${n(output.bytes)} bytes${ratio} in ${(ms / 1000).toFixed(1)} s`, ...optimizeSteps(r), '', optimizeTable(r)];
  const ref = r.evaluation?.reference;
  if (ref) out.push('', `on ${r.evaluation!.samples} samples: top-1 agreement with the original ${pct(ref.top1Agreement)}, output SQNR ${ref.outputSqnrDb.map(db).join(', ')}`);
  for (const u of r.after.tflm.unsupported) out.push(`TFLM cannot run node ${u.node} (${u.op}): ${u.reason}`);
  return out.join('\n') + '\n';
}
