// Plain Node, no bundler: quantize a float model with calibration data and check the result.
// Usage: node main.mjs MODEL.tflite CALIBRATION.npy
import { readFileSync } from 'node:fs';
import { createOptimizer, readNpy } from '@tinyml/optimizer';

const [modelPath, calibPath] = process.argv.slice(2);
const opt = createOptimizer();
const model = await opt.loadModel(readFileSync(modelPath));
const calibrationData = readNpy(readFileSync(calibPath)); // a tensor { data, shape }
const { model: int8, report } = await model.quantize({ calibrationData, calibration: { method: 'minmax' } });
const reloaded = await opt.loadModel(await int8.toBytes());
const sample = { data: calibrationData.data.subarray(0, 256), shape: [1, 16, 16, 1] };
const [y] = await reloaded.run(sample);
console.log(
  JSON.stringify({
    precision: reloaded.summary.precision,
    reportMode: report.mode,
    outputShape: y.shape,
    outputType: y.data.constructor.name,
    flavor: (await opt.info()).flavor,
  }),
);
opt.terminate();
