/**
 * The inference-only core and the switch to the full engine. A worker (or main-thread engine)
 * started with `engine: 'auto'` loads the core (under half the full engine's download) and
 * answers from it every call the core's build exports the functions for; the first call that
 * needs more (quantize, prune, train, evaluate, export, firmware, streaming runs, ...) loads the
 * full engine of the same SIMD build, once, and re-opens every loaded model in it from the bytes
 * it was loaded from, under the same handle. The core's instance stays in its own glue module
 * (a glue module holds one instance for good), idle, its models freed.
 */
import type { EngineKind, Flavor, Wasm } from './engine.js';
import type { Method } from './protocol.js';
import { OptimizerError } from './types.js';

/**
 * The methods the core may answer, with the wasm exports each calls on it: it answers those whose
 * exports its build has (checked at run time, and against both core builds in
 * web/test/engine_kind.test.mjs). Every other method needs the full engine.
 */
export const CORE_METHODS: Partial<Record<Method, readonly string[]>> = {
  info: ['version', 'simdLevel', 'int8Kernel'],
  load: ['model_new', 'model_summary'],
  summary: ['model_summary'],
  run: ['model_run'],
  profile: ['model_profile'],
  benchmark: ['model_benchmark'],
  release: ['__wbg_model_free'],
  npyInfo: ['npyInfo'],
  npyFromF32: ['npyFromF32'],
  testHookTrap: ['testHookTrap'],
};

/**
 * Whether this call needs the full engine, given the core's `exports`: a method the core lacks an
 * export for, or a streaming run (its samples carry state across: a job of the full engine).
 */
export function needsFull(method: Method, args: unknown, exports: ReadonlySet<string>): boolean {
  const names = Object.prototype.hasOwnProperty.call(CORE_METHODS, method) ? CORE_METHODS[method] : undefined;
  if (!names || names.some((n) => !exports.has(n))) return true;
  return method === 'run' && (args as { streaming?: boolean }).streaming === true;
}

type WasmModel = InstanceType<Wasm['Model']>;

/** The part of a worker's state the switch changes. */
export interface EngineSlot {
  wasm: Wasm;
  flavor: Flavor;
  kind: EngineKind;
  /** The wasm exports of the engine in use. */
  exports: ReadonlySet<string>;
  models: Map<number, WasmModel>;
  /** On the core: the bytes each model was loaded from, to re-open it in the full engine. */
  sources: Map<number, Uint8Array>;
}

/** Moves `s` to the full engine `full` (loaded by the caller): every model re-opened under its handle. */
export function switchToFull(s: EngineSlot, full: { wasm: Wasm; flavor: Flavor; exports: ReadonlySet<string> }): void {
  const reopened = new Map<number, WasmModel>();
  try {
    for (const handle of s.models.keys()) {
      const bytes = s.sources.get(handle);
      if (!bytes) throw new OptimizerError('internal', `model ${handle} has no bytes to re-open in the full engine`);
      reopened.set(handle, new full.wasm.Model(bytes));
    }
  } catch (e) {
    for (const m of reopened.values()) m.free();
    throw e;
  }
  for (const m of s.models.values()) m.free();
  s.models.clear();
  for (const [handle, m] of reopened) s.models.set(handle, m);
  s.sources.clear();
  s.wasm = full.wasm;
  s.flavor = full.flavor;
  s.exports = full.exports;
  s.kind = 'full';
}

/** The error of a call the core cannot answer in an engine started with `engine: 'core'`. */
export function coreOnlyError(method: Method): OptimizerError {
  return new OptimizerError(
    'invalid_argument',
    `${method} needs the full engine, and this optimizer was created with { engine: 'core' } (use 'auto' or 'full')`,
  );
}
