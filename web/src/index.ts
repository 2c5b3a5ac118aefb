/**
 * @tinyml/optimizer — prune and int8-quantize TinyML models entirely on your machine.
 *
 * `createOptimizer()` (from the browser or Node entry) starts an engine in a worker:
 *
 *   const opt = createOptimizer();
 *   const model = await opt.loadModel(bytes);
 *   console.log(model.summary.macs);
 *   const [y] = await model.run(npyBytes);
 */
export { Optimizer, LoadedModel } from './client.js';
export type { Bytes, CallOptions, OptimizerOptions } from './client.js';
export * from './types.js';
export { cIdentifier, toCHeader } from './export.js';
