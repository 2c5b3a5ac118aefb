// The caller's own module worker (same origin as the page) using the package from the CDN with
// the engine in this worker's thread: `worker: false`.
self.onmessage = async (e) => {
  const cdn = e.data;
  try {
    const { createOptimizer, readNpy } = await import(`${cdn}dist/browser.js`);
    const get = async (path) => new Uint8Array(await (await fetch(path)).arrayBuffer());
    const opt = createOptimizer({ worker: false });
    const model = await opt.loadModel(await get('/fixtures/cnn/model_float.tflite'));
    const calibrationData = readNpy(await get('/fixtures/data/patterns_calib.npy'));
    const { model: int8 } = await model.quantize({ calibrationData, calibration: { method: 'minmax' } });
    const reloaded = await opt.loadModel(await int8.toBytes());
    self.postMessage({ precision: reloaded.summary.precision, flavor: (await opt.info()).flavor });
  } catch (err) {
    self.postMessage({ error: `${err?.code ?? ''} ${err?.message ?? err}` });
  }
};
