// Loaded by a page on one origin; the package is on another (a CDN, with CORS): the default worker,
// an explicit workerUrl, wasmModule, wasmPaths and worker: false must all work from there.
const cdn = window.CDN; // e.g. http://127.0.0.1:PORT/ (the package's root)
const { createOptimizer, readNpy } = await import(`${cdn}dist/browser.js`);

async function bytes(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function quantize(opt) {
  const model = await opt.loadModel(await bytes('/fixtures/cnn/model_float.tflite'));
  const calibrationData = readNpy(await bytes('/fixtures/data/patterns_calib.npy'));
  const { model: int8 } = await model.quantize({ calibrationData, calibration: { method: 'minmax' } });
  const reloaded = await opt.loadModel(await int8.toBytes());
  const info = await opt.info();
  opt.terminate();
  return { precision: reloaded.summary.precision, flavor: info.flavor };
}

async function attempt(f) {
  try {
    return await f();
  } catch (e) {
    return { error: `${e?.code ?? ''} ${e?.message ?? e}` };
  }
}

const simd = await WebAssembly.compileStreaming(fetch(`${cdn}wasm/simd/tinyml_optimizer_bg.wasm`));
window.result = {
  // The package's own worker, from the CDN: started through a same-origin blob.
  defaultWorker: await attempt(() => quantize(createOptimizer())),
  // An explicit cross-origin worker URL and a module compiled by the page.
  workerUrlAndModule: await attempt(() =>
    quantize(createOptimizer({ workerUrl: `${cdn}dist/worker.browser.js`, wasmModule: { simd } })),
  ),
  // The wasm from the page's own server (a relative URL, resolved against the page).
  wasmPaths: await attempt(() => quantize(createOptimizer({ wasmPaths: '/wasm-copy/' }))),
  // No worker: the engine on this page's thread, its code from the CDN.
  mainThread: await attempt(() => quantize(createOptimizer({ worker: false }))),
  // No worker of the package's own: the caller's worker runs the engine in its thread.
  inUserWorker: await attempt(
    () =>
      new Promise((resolve) => {
        const w = new Worker('./user-worker.js', { type: 'module' });
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => resolve({ error: e.message || 'the worker failed' });
        w.postMessage(cdn);
      }),
  ),
};
document.getElementById('out').textContent = JSON.stringify(window.result);
