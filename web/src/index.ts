/**
 * @tinyml/optimizer — prune and int8-quantize TinyML models entirely on your machine.
 *
 * `createOptimizer()` (from the browser or Node entry) starts an engine in a worker
 * (`{ worker: false }`: in this thread):
 *
 *   const opt = createOptimizer();
 *   const model = await opt.loadModel(bytes);
 *   console.log(model.summary.macs);
 *   const [y] = await model.run({ data: new Float32Array(256), shape: [1, 16, 16, 1] });
 */
export { Optimizer, LoadedModel } from './client.js';
export type {
  AbortSignalLike,
  Bytes,
  CallOptions,
  EngineInfo,
  Input,
  OptimizerOptions,
  RunOptions,
  TrainCallOptions,
} from './client.js';
export type { AssetOptions, CompiledWasmModule, UrlLike } from './assets.js';
export type { RoundTrace } from './pool.js';
export type { DType, Tensor, TensorData } from './tensor.js';
export { isTensor } from './tensor.js';
export { readNpy, writeNpy } from './npy.js';
export * from './types.js';
export { cIdentifier, toCHeader } from './export.js';
