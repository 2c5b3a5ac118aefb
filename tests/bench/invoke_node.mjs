#!/usr/bin/env node
// Latency of our wasm engine in Node (no browser): interleaved A/B of this checkout's builds and,
// with `--baseline DIR`, another checkout's web/wasm, on the same input. Minimum and median over
// rounds of `--runs` inferences. A quick instrument for kernel work; the browser bench
// (inference_bench.mjs) is the one that compares with other engines.
//   node --experimental-wasm-relaxed-simd tests/bench/invoke_node.mjs MODEL.tflite [--runs 2000]
//        [--rounds 15] [--baseline DIR] [--build simd|relaxed] [--dir DIR (instead of web/wasm)]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '../../..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const model = readFileSync(process.argv[2]);
const runs = Number(arg('--runs', 2000));
const rounds = Number(arg('--rounds', 15));
const build = arg('--build', 'simd');
const dirs = [['this', join(arg('--dir', join(root, 'web/wasm')), build)]];
if (arg('--baseline')) dirs.push(['base', join(arg('--baseline'), build)]);

const engines = [];
for (const [name, dir] of dirs) {
  const glue = await import(join(dir, 'tinyml_optimizer.js') + `?${name}`);
  glue.initSync({ module: readFileSync(join(dir, 'tinyml_optimizer_bg.wasm')) });
  const m = new glue.Model(model);
  const io = m.summary().inputs[0];
  const shape = io.shape.map((d) => Math.max(d, 1));
  const n = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 256) / 256);
  m.setFirstSample(glue.npyFromF32(shape, x));
  m.invoke(runs);
  engines.push({ name, m, times: [], kernel: glue.int8Kernel() });
}
for (let r = 0; r < rounds; r++) {
  for (const e of r % 2 ? [...engines].reverse() : engines) {
    const t0 = performance.now();
    e.m.invoke(runs);
    e.times.push(((performance.now() - t0) * 1e3) / runs);
  }
}
for (const e of engines) {
  const t = e.times.sort((a, b) => a - b);
  console.log(`${e.name} (${build}, ${e.kernel}): min ${t[0].toFixed(2)} µs, median ${t[t.length >> 1].toFixed(2)} µs`);
}
