/**
 * Where the package finds its files when they are not beside it (a CDN, a bundler's output
 * folder): the wasm builds, the worker script, or wasm modules compiled by the caller. Types are
 * structural (no DOM or Node types) so that the declarations compile with any `lib`.
 */
import type { EngineAssets, Flavor } from './engine.js';
import { OptimizerError } from './types.js';

/** A URL as a string, or any URL object (`{ href }`). */
export type UrlLike = string | { readonly href: string };

/** A compiled `WebAssembly.Module`, typed loosely so the declarations need no DOM or Node lib. */
export type CompiledWasmModule = object;

export interface AssetOptions {
  /**
   * Where the wasm builds are: the URL of a copy of the package's `wasm/` folder (the full engine's
   * builds are `simd/tinyml_optimizer_bg.wasm` and `relaxed/tinyml_optimizer_bg.wasm` under it, the
   * inference-only core's `core/simd/…` and `core/relaxed/…`), or one URL per build of the full
   * engine (`{ simd, relaxed }`; a missing build falls back to the package's own file; the core is
   * then not used: every call runs on the full engine). Relative URLs are resolved against the
   * page (browsers) or the working directory (Node, where a plain path also works).
   */
  wasmPaths?: UrlLike | { simd?: UrlLike; relaxed?: UrlLike };
  /**
   * Compiled `WebAssembly.Module`s of the full engine, per build: the engine uses the best build it
   * runs among those given (`{ simd }` alone forces the simd128 build) and fetches nothing (the
   * inference-only core is not used).
   */
  wasmModule?: { simd?: CompiledWasmModule; relaxed?: CompiledWasmModule };
  /**
   * The worker script (the package's `dist/worker.browser.js`, or your bundler's copy). A
   * cross-origin URL (a CDN) is started through a same-origin `blob:` module that imports it.
   * Browsers only; Node always uses the package's worker thread.
   */
  workerUrl?: UrlLike;
}

const FLAVORS: Flavor[] = ['simd', 'relaxed'];

function hrefOf(u: unknown, what: string): string {
  if (typeof u === 'string' && u !== '') return u;
  if (u && typeof u === 'object' && typeof (u as { href?: unknown }).href === 'string') return (u as { href: string }).href;
  throw new OptimizerError('invalid_argument', `${what} must be a URL (a string or a URL object), got ${String(u)}`);
}

type Urls = Partial<Record<Flavor, string>>;

/** The URL of each build from `wasmPaths` (and of the core's, from a folder), made absolute with `absolute`. */
function wasmUrls(paths: AssetOptions['wasmPaths'], absolute: (s: string) => string): { urls: Urls; coreUrls?: Urls } {
  if (typeof paths === 'string' || (paths && typeof paths === 'object' && 'href' in paths)) {
    let base = absolute(hrefOf(paths, 'wasmPaths'));
    if (!base.endsWith('/')) base += '/';
    const under = (dir: string): Urls => ({ simd: `${base}${dir}simd/tinyml_optimizer_bg.wasm`, relaxed: `${base}${dir}relaxed/tinyml_optimizer_bg.wasm` });
    return { urls: under(''), coreUrls: under('core/') };
  }
  if (!paths || typeof paths !== 'object') throw new OptimizerError('invalid_argument', 'wasmPaths must be a URL or { simd, relaxed }');
  const urls: Urls = {};
  for (const [key, value] of Object.entries(paths)) {
    if (!FLAVORS.includes(key as Flavor)) throw new OptimizerError('invalid_argument', `wasmPaths has an unknown build '${key}' (simd, relaxed)`);
    if (value !== undefined) urls[key as Flavor] = absolute(hrefOf(value, `wasmPaths.${key}`));
  }
  return { urls };
}

function wasmModules(given: AssetOptions['wasmModule']): Partial<Record<Flavor, WebAssembly.Module>> {
  if (!given || typeof given !== 'object') throw new OptimizerError('invalid_argument', 'wasmModule must be { simd?, relaxed? } of WebAssembly.Module');
  const modules: Partial<Record<Flavor, WebAssembly.Module>> = {};
  for (const [key, value] of Object.entries(given)) {
    if (!FLAVORS.includes(key as Flavor)) throw new OptimizerError('invalid_argument', `wasmModule has an unknown build '${key}' (simd, relaxed)`);
    if (value === undefined) continue;
    if (!(value instanceof WebAssembly.Module)) throw new OptimizerError('invalid_argument', `wasmModule.${key} must be a WebAssembly.Module`);
    modules[key as Flavor] = value;
  }
  if (Object.keys(modules).length === 0) throw new OptimizerError('invalid_argument', 'wasmModule gives no module');
  return modules;
}

/** @internal The engine's asset options from the caller's, checked; URLs made absolute with `absolute`. */
export function engineAssets(o: AssetOptions, absolute: (s: string) => string): EngineAssets | undefined {
  if (o.wasmPaths === undefined && o.wasmModule === undefined) return undefined;
  return {
    ...(o.wasmPaths === undefined ? {} : wasmUrls(o.wasmPaths, absolute)),
    modules: o.wasmModule === undefined ? undefined : wasmModules(o.wasmModule),
  };
}

/** @internal The worker URL option as a string, checked. */
export function workerHref(o: AssetOptions): string | undefined {
  return o.workerUrl === undefined ? undefined : hrefOf(o.workerUrl, 'workerUrl');
}
