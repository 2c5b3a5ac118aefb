/**
 * Loads the Rust code compiled to WebAssembly. It comes in two kinds: the full engine (inference,
 * quantize, prune, train, evaluate, export) and the inference-only core (read a model, its summary,
 * run, profile, benchmark: under half the download), and each in two builds: `simd` (simd128) and
 * `relaxed` (simd128 + relaxed SIMD, whose int8 dot products map to VNNI on x86). The best build
 * the engine validates is picked at load time; an engine without simd128 gets a clear error.
 *
 * Both builds of a kind come from the same Rust code, so they share one JavaScript glue module;
 * only the `.wasm` differs. The core and the full engine each have their own glue: a glue module
 * holds one instance for good, so the two can live in one thread (the core first, the full engine
 * when a call needs it). The glue is imported statically so that bundlers put it in the worker's
 * own chunk.
 */
import * as coreGlue from '../wasm/core/simd/tinyml_optimizer.js';
import * as glue from '../wasm/simd/tinyml_optimizer.js';
import { OptimizerError } from './types.js';

export type Wasm = typeof glue;
export type Flavor = 'relaxed' | 'simd';
/** 'core': the inference-only engine; 'full': everything. */
export type EngineKind = 'core' | 'full';

/** Where the engine's wasm comes from, per build: a URL to fetch, or a compiled module. */
export interface EngineAssets {
  urls?: Partial<Record<Flavor, string>>;
  /** The core's URLs; without them (and with `urls` or `modules` given) only the full engine is used. */
  coreUrls?: Partial<Record<Flavor, string>>;
  modules?: Partial<Record<Flavor, WebAssembly.Module>>;
}

/** A module whose one function uses `i8x16.splat`: valid only where simd128 is supported. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 15, 11,
]);
/** The same with `i8x16.relaxed_swizzle`: valid only where relaxed SIMD is supported. */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 0, 253, 15, 65, 0, 253, 15, 253,
  128, 2, 11,
]);

function validates(bytes: Uint8Array): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/**
 * Whether relaxed SIMD may be used under this V8 (`process.versions.v8` in Node; elsewhere
 * undefined: browsers ship it from Chrome 114 on). V8 before 11.4, e.g. Node 20's 11.3, had it only
 * behind `--experimental-wasm-relaxed-simd`, and there an accumulating
 * `i32x4.relaxed_dot_i8x16_i7x16_add` of 127·127 over zero gave 32,258 instead of 16,129, which the
 * engine's start-up probe does not catch: the simd128 build runs there instead.
 */
export function relaxedTrusted(v8: string | undefined): boolean {
  if (typeof v8 !== 'string') return true;
  const [major, minor] = v8.split('.').map(Number);
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return false;
  return major > 11 || (major === 11 && minor >= 4);
}

/** The best build this engine runs, or null without simd128. `prefer` caps it (e.g. force 'simd'). */
export function detectFlavor(prefer?: Flavor): Flavor | null {
  if (!validates(SIMD_PROBE)) return null;
  if (prefer === 'simd') return 'simd';
  const v8 = (globalThis as { process?: { versions?: { v8?: string } } }).process?.versions?.v8;
  return validates(RELAXED_PROBE) && relaxedTrusted(v8) ? 'relaxed' : 'simd';
}

/** The package's own files (bundlers see these `new URL` literals and emit the files). */
const URLS: Record<EngineKind, Record<Flavor, URL>> = {
  full: {
    simd: new URL('../wasm/simd/tinyml_optimizer_bg.wasm', import.meta.url),
    relaxed: new URL('../wasm/relaxed/tinyml_optimizer_bg.wasm', import.meta.url),
  },
  core: {
    simd: new URL('../wasm/core/simd/tinyml_optimizer_bg.wasm', import.meta.url),
    relaxed: new URL('../wasm/core/relaxed/tinyml_optimizer_bg.wasm', import.meta.url),
  },
};

/**
 * Whether the core can be used with these assets: always with the package's own files; with
 * caller-given files only when they include the core's (`coreUrls`), never with compiled modules
 * (those are the full engine's).
 */
export function coreAvailable(assets: EngineAssets = {}): boolean {
  if (assets.modules) return false;
  return !assets.urls || assets.coreUrls !== undefined;
}

/** The build to use when compiled modules are given: the best one the engine runs among them. */
function flavorWithModules(best: Flavor, modules: Partial<Record<Flavor, WebAssembly.Module>>): Flavor {
  if (modules[best]) return best;
  if (best === 'relaxed' && modules.simd) return 'simd';
  throw new OptimizerError(
    'invalid_argument',
    `wasmModule has no compiled module for the '${best}' build this engine needs (give { ${best}: module }${best === 'relaxed' ? ' or { simd: module }' : ''})`,
  );
}

/**
 * Loads the engine of kind `kind`: a compiled module when given, else the wasm bytes `readWasm`
 * returns for a URL. The core is returned with the full engine's type: only the methods its build
 * exports may be called on it (see `CORE_METHODS` in core-engine.ts).
 */
export async function loadEngine(
  readWasm: (url: URL) => Promise<BufferSource>,
  prefer?: Flavor,
  assets: EngineAssets = {},
  kind: EngineKind = 'full',
): Promise<{ wasm: Wasm; flavor: Flavor; kind: EngineKind; exports: Set<string>; module: WebAssembly.Module }> {
  const best = detectFlavor(prefer);
  if (!best) {
    throw new OptimizerError(
      'no_simd',
      'This JavaScript engine does not support WebAssembly SIMD (simd128), which @tinyml/optimizer needs. ' +
        'Use Chrome/Edge 91+, Firefox 89+, Safari 16.4+ or Node.js 20+.',
    );
  }
  if (kind === 'core' && !coreAvailable(assets)) throw new OptimizerError('invalid_argument', 'the inference-only core is not among the given wasm files');
  const flavor = assets.modules && kind === 'full' ? flavorWithModules(best, assets.modules) : best;
  const url = (kind === 'core' ? assets.coreUrls : assets.urls)?.[flavor];
  const module = (kind === 'full' ? assets.modules?.[flavor] : undefined) ??
    (await WebAssembly.compile(await readWasm(url ? new URL(url) : URLS[kind][flavor])));
  const g = kind === 'core' ? (coreGlue as unknown as Wasm) : glue;
  const exports = new Set(Object.keys(g.initSync({ module })));
  return { wasm: g, flavor, kind, exports, module };
}
