// The browser examples' app: fetch the fixture model and calibration data from the page's server,
// quantize, load the output back, run it, and publish what happened as window.result.
import { readNpy } from '@tinyml/optimizer';

async function bytes(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

export async function quantizeAndCheck(opt, { tensors }) {
  try {
    const model = await opt.loadModel(await bytes('/fixtures/cnn/model_float.tflite'));
    const calibBytes = await bytes('/fixtures/data/patterns_calib.npy');
    const calibrationData = tensors ? readNpy(calibBytes) : calibBytes;
    let progress = 0;
    const { model: int8, report } = await model.quantize(
      { calibrationData, calibration: { method: 'minmax' } },
      { onProgress: () => progress++ },
    );
    const reloaded = await opt.loadModel(await int8.toBytes());
    const calib = readNpy(calibBytes);
    const [y] = await reloaded.run({ data: calib.data.subarray(0, 256), shape: [1, 16, 16, 1] });
    const info = await opt.info();
    window.result = {
      precision: reloaded.summary.precision,
      reportMode: report.mode,
      progress,
      outputShape: y.shape,
      outputType: y.data.constructor.name,
      flavor: info.flavor,
    };
  } catch (e) {
    window.result = { error: `${e?.code ?? ''} ${e?.message ?? e}` };
  }
  document.getElementById('out').textContent = JSON.stringify(window.result);
  opt.terminate();
}
