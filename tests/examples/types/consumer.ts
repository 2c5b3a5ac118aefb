// Compiled (not run) against the packed package's declarations with lib es2022 only: no DOM, no
// @types/node, skipLibCheck off. Type assertions below fail to compile if the API's types drift.
import {
  createOptimizer,
  OptimizerError,
  readNpy,
  writeNpy,
  type CallOptions,
  type ErrorCode,
  type LoadedModel,
  type OptimizerOptions,
  type Tensor,
} from '@tinyml/optimizer';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const check = <T extends true>(): T => true as T;

const options: OptimizerOptions = {
  threads: 2,
  target: 'tflm',
  wasmPaths: 'https://cdn.example.com/@tinyml/optimizer/wasm/',
  workerUrl: { href: 'https://cdn.example.com/@tinyml/optimizer/dist/worker.browser.js' },
  worker: true,
};

export async function use(model: Uint8Array, calib: Uint8Array, signal: CallOptions['signal']): Promise<ErrorCode | string> {
  const opt = createOptimizer(options);
  const m: LoadedModel = await opt.loadModel(model);
  const x: Tensor = readNpy(calib);
  const fromTensor = await m.run(x, { signal });
  const fromBytes = await m.run(writeNpy(x));
  check<Equal<typeof fromTensor, Tensor[]>>();
  check<Equal<typeof fromBytes, Uint8Array[]>>();
  const { model: q, report } = await m.quantize({ calibrationData: x });
  const ev = await q.evaluate({ data: new Float32Array(256), shape: [1, 16, 16, 1] }, { reference: m });
  try {
    await opt.loadModel(new Uint8Array(0));
  } catch (e) {
    if (e instanceof OptimizerError) return e.code;
  }
  opt.terminate();
  return `${report.mode} ${ev.accuracy ?? ''} ${q.summary.precision}`;
}
