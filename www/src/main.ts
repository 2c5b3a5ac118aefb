/**
 * The web app: drop a .tflite model, see what is in it, run it on data — all in this tab, with the
 * engine in a Web Worker.
 */
import { createOptimizer, OptimizerError, type LoadedModel, type ModelSummary } from '@tinyml/optimizer';
import sampleModelUrl from '../../tests/fixtures/cnn/model_float.tflite?url';
import sampleDataUrl from '../../tests/fixtures/cnn/inputs.npy?url';
import { el, fmt, shape } from './dom';
import { parseNpyF32 } from './npy';

const CLASSES = ['hbar', 'vbar', 'diag', 'antidiag', 'plus', 'cross', 'square', 'block', 'ring', 'dots'];

const opt = createOptimizer();
let current: { model: LoadedModel; name: string; bytes: Uint8Array } | null = null;
let isSample = false;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function showError(e: unknown) {
  const box = $('error');
  const err = e as OptimizerError;
  const where = err.node !== undefined ? `\nat operator ${err.node}${err.op ? ` (${err.op})` : ''}` : '';
  box.textContent = `${err.message ?? String(e)}${where}`;
  box.hidden = false;
  box.focus?.();
}

function clearError() {
  $('error').hidden = true;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not load ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function openModel(bytes: Uint8Array, name: string, sample = false) {
  clearError();
  try {
    const model = await opt.loadModel(bytes);
    if (current) await current.model.release();
    current = { model, name, bytes };
    isSample = sample;
    renderModel(name, model.summary);
  } catch (e) {
    $('model').hidden = true;
    $('run').hidden = true;
    showError(e);
  }
}

function renderModel(name: string, s: ModelSummary) {
  $('model-title').textContent = `Model: ${name}`;
  const cards: [string, string][] = [
    ['size on disk', `${fmt(s.size_bytes)} B`],
    ['precision', s.precision],
    ['parameters', fmt(s.parameters)],
    ['MACs / inference', fmt(s.macs)],
    ['layers', fmt(s.layers.length)],
  ];
  $('model-cards').replaceChildren(
    ...cards.map(([label, value]) => el('div', { class: 'card' }, [el('div', { class: 'label' }, [label]), el('div', { class: 'value' }, [value])])),
  );
  $('model-io').replaceChildren(
    ...[...s.inputs.map((io) => ['input', io] as const), ...s.outputs.map((io) => ['output', io] as const)].map(([k, io]) =>
      el('p', {}, [`${k} `, el('code', {}, [io.name]), ` ${io.dtype} ${shape(io.shape)}`]),
    ),
  );
  $('model-ops').replaceChildren(
    ...s.operators.map((o) =>
      el('span', { class: s.unsupported_ops.includes(o.op) ? 'chip unsupported' : 'chip', title: s.unsupported_ops.includes(o.op) ? 'not executable by the engine yet' : '' }, [
        `${o.op} ×${o.count}`,
      ]),
    ),
  );
  const head = el('tr', {}, ['#', 'op', 'output shape', 'dtype', 'params', 'MACs', 'weights'].map((h, i) => el('th', { class: i >= 4 && i <= 5 ? 'num' : '' }, [h])));
  const rows = s.layers.map((l) =>
    el('tr', {}, [
      el('td', { class: 'num' }, [String(l.index)]),
      el('td', { title: l.name }, [l.op + (l.activation ? ` + ${l.activation}` : '')]),
      el('td', {}, [shape(l.output_shape)]),
      el('td', {}, [l.dtype]),
      el('td', { class: 'num' }, [fmt(l.params)]),
      el('td', { class: 'num' }, [fmt(l.macs)]),
      el('td', {}, [l.weights ? `${l.weights.dtype} ${shape(l.weights.shape)} ${l.weights.quantization === 'none' ? '' : l.weights.quantization}` : '']),
    ]),
  );
  $('layers').replaceChildren(el('thead', {}, [head]), el('tbody', {}, rows));
  $('model').hidden = false;
  $('run').hidden = false;
  $<HTMLButtonElement>('run-sample').hidden = !isSample;
  $('run-status').textContent = '';
  $('run-results').replaceChildren();
}

async function runBatch(npy: Uint8Array, label: string) {
  if (!current) return;
  clearError();
  const status = $('run-status');
  status.textContent = `running ${label}…`;
  try {
    const t0 = performance.now();
    const [out] = await current.model.run(npy, { onProgress: (p) => (status.textContent = `running ${label}: ${p.done}/${p.total}`) });
    const ms = performance.now() - t0;
    const y = parseNpyF32(out);
    const n = y.shape[0];
    const width = y.data.length / Math.max(n, 1);
    status.textContent = `${n} samples in ${ms.toFixed(1)} ms (${(ms / Math.max(n, 1)).toFixed(2)} ms each, including the transfer)`;
    const rows = [];
    for (let i = 0; i < n; i++) {
      const row = y.data.subarray(i * width, (i + 1) * width);
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
      const name = isSample && width === CLASSES.length ? CLASSES[best] : `class ${best}`;
      rows.push(el('tr', {}, [el('td', { class: 'num' }, [String(i)]), el('td', {}, [name]), el('td', { class: 'num' }, [row[best].toFixed(4)])]));
    }
    $('run-results').replaceChildren(
      el('thead', {}, [el('tr', {}, [el('th', { class: 'num' }, ['sample']), el('th', {}, ['top-1']), el('th', { class: 'num' }, ['score'])])]),
      el('tbody', {}, rows),
    );
  } catch (e) {
    status.textContent = '';
    showError(e);
  }
}

function setupDrop() {
  const zone = $('dropzone');
  const input = $<HTMLInputElement>('model-file');
  const pick = () => input.click();
  zone.addEventListener('click', pick);
  zone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      pick();
    }
  });
  input.addEventListener('change', async () => {
    const f = input.files?.[0];
    if (f) await openModel(new Uint8Array(await f.arrayBuffer()), f.name);
    input.value = '';
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) await openModel(new Uint8Array(await f.arrayBuffer()), f.name);
  });
}

function main() {
  setupDrop();
  $('sample').addEventListener('click', async () => openModel(await fetchBytes(sampleModelUrl), 'sample-cnn.tflite', true));
  $('run-sample').addEventListener('click', async () => runBatch(await fetchBytes(sampleDataUrl), 'the sample images'));
  const dataInput = $<HTMLInputElement>('data-file');
  dataInput.addEventListener('change', async () => {
    const f = dataInput.files?.[0];
    if (f) await runBatch(new Uint8Array(await f.arrayBuffer()), f.name);
    dataInput.value = '';
  });
  opt.info().then(
    (i) => ($('engine-info').textContent = `tinyml-optimizer ${i.version}, WebAssembly ${i.simd}`),
    (e) => {
      $('engine-info').textContent = 'unavailable';
      showError(e);
    },
  );
}

main();
