/**
 * The message protocol between the API (main thread) and the worker. Requests carry an id and a
 * method name; the worker answers with progress events and exactly one result. Method argument and
 * result types are derived from the worker's handlers (see `Handlers` in handlers.ts), so the two
 * sides cannot drift apart.
 */
import type { ErrorCode, Progress, TrainMetrics } from './types.js';
import type { Handlers } from './handlers.js';
import type { EngineAssets } from './engine.js';

export type Method = keyof Handlers;
export type Args<M extends Method> = Parameters<Handlers[M]>[0];
export type Result<M extends Method> = Awaited<ReturnType<Handlers[M]>>;

export interface Request<M extends Method = Method> {
  id: number;
  method: M;
  args: Args<M>;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  node?: number;
  op?: string;
  tensor?: number;
  tensorName?: string;
  /** resource_limit: bytes asked (absent when beyond 64-bit arithmetic) and the limit. */
  requested?: number;
  limit?: number;
}

export type Response =
  | ({ id: number; type: 'progress' } & Progress & { metrics?: TrainMetrics })
  | { id: number; type: 'result'; ok: true; value: unknown }
  | { id: number; type: 'result'; ok: false; error: WireError; fatal?: boolean };

/** Options the worker is started with. */
export interface WorkerInit {
  type: 'init';
  /** Cap the SIMD build ('simd' forces the plain simd128 build even where relaxed SIMD exists). */
  prefer?: 'simd' | 'relaxed';
  /** Memory budget of the engine per model, in bytes (default: the engine's own, 1 GiB). */
  maxMemory?: number;
  /** Engines working on long operations: this worker and `threads - 1` task workers. */
  threads?: number;
  /** Whose int8 arithmetic the engine reproduces (default 'tflm'). */
  target?: 'tflm' | 'litert';
  /** Where the engine's wasm comes from (URLs resolved by the caller, or compiled modules). */
  wasm?: EngineAssets;
  /** Which engine answers: 'auto' (default) the inference-only core until a call needs the full
   * engine, 'full' the full engine from the start, 'core' the core only (task workers: always full). */
  engine?: 'auto' | 'core' | 'full';
  /** 'task': a task worker of another worker's pool (see pool.ts), not the API's worker. */
  role?: 'api' | 'task';
}

/** Ends a running training call after its current step, keeping the best weights so far. */
export interface StopRequest {
  type: 'stop';
  id: number;
}

/** Whether `view` covers the whole of an ArrayBuffer: moving that buffer moves exactly its bytes. */
export function spansItsBuffer(view: ArrayBufferView): boolean {
  return view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
}

/** ArrayBuffers inside a message (top level, arrays, plain objects), to transfer instead of copy. */
export function buffersIn(value: unknown, out: ArrayBuffer[] = [], depth = 0): ArrayBuffer[] {
  if (depth > 4 || value === null || typeof value !== 'object') return out;
  if (value instanceof ArrayBuffer) {
    if (!out.includes(value)) out.push(value);
  } else if (ArrayBuffer.isView(value)) {
    const b = value.buffer;
    if (spansItsBuffer(value) && !out.includes(b as ArrayBuffer)) out.push(b as ArrayBuffer);
  } else if (Array.isArray(value)) {
    for (const v of value) buffersIn(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) buffersIn(v, out, depth + 1);
  }
  return out;
}
