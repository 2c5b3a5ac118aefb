/**
 * What every command shares: its shape, the engine it runs on, training with progress and Ctrl-C,
 * and errors as the JSON envelope carries them.
 */
import { createOptimizer } from '../node.js';
import type { Optimizer } from '../client.js';
import { FileError } from '../files.js';
import { OptimizerError, type Progress, type TrainMetrics } from '../types.js';
import { engineOptions, UsageError, type Options, type Values } from './args.js';
import { stopOnInterrupt, type Io } from './io.js';

export const EXIT_OK = 0;
export const EXIT_USER = 1;
export const EXIT_INTERNAL = 2;

export interface Ctx {
  values: Values;
  positionals: string[];
  io: Io;
}

export interface Command {
  summary: string;
  usage: string;
  help: string;
  options: Options;
  /** How many file arguments: exactly this many, or at least one with 'some'. */
  positionals: number | 'some';
  /** Runs the command; resolves with the exit code when it is not 0 without throwing (inspect of several models). */
  run(ctx: Ctx): Promise<number | void>;
}

/**
 * Runs `fn` on an engine set up by --max-memory, --threads and --target, then stops the engine. The
 * full engine from the start: most commands optimize, and runs use every core on it.
 */
export async function withEngine<T>(values: Values, fn: (opt: Optimizer) => Promise<T>): Promise<T> {
  const opt = createOptimizer({ engine: 'full', ...engineOptions(values) });
  try {
    return await fn(opt);
  } finally {
    opt.terminate();
  }
}

type TrainCall<T> = (opts: { onProgress: (p: Progress) => void; onMetrics: (m: TrainMetrics) => void; signal: AbortSignal }) => Promise<T>;

/**
 * Runs a training call with progress, epoch lines and Ctrl-C stopping it gracefully (the best model
 * so far is the result; `onInterrupt` then runs).
 */
export async function training<T>(io: Io, label: string, call: TrainCall<T>, onInterrupt?: () => void): Promise<T> {
  const r = io.trainReporter(label);
  const stop = stopOnInterrupt(io);
  try {
    return await call({ onProgress: (p) => r.bar.update(p), onMetrics: (m) => r.onMetrics(m), signal: stop.signal });
  } finally {
    r.bar.done();
    stop.release();
    if (stop.signal.aborted) onInterrupt?.();
  }
}

export interface ErrorJson {
  code: string;
  message: string;
  [detail: string]: unknown;
}

/** An error as JSON (`{ code, message, ...details }`) and the exit code it means. */
export function describeError(e: unknown): { error: ErrorJson; exit: number } {
  if (e instanceof OptimizerError) {
    const { code, message, node, op, tensor, tensorName, requested, limit } = e;
    return { error: { code, message, node, op, tensor, tensorName, requested, limit }, exit: e.isUserError ? EXIT_USER : EXIT_INTERNAL };
  }
  if (e instanceof FileError) return { error: { code: 'file_error', message: e.message, path: e.path, reason: e.reason }, exit: EXIT_USER };
  if (e instanceof UsageError) return { error: { code: 'invalid_argument', message: e.message }, exit: EXIT_USER };
  return { error: { code: 'internal', message: (e as Error)?.message ?? String(e) }, exit: EXIT_INTERNAL };
}

/** An error on stderr: the message, and how to get past a memory budget. */
export function printError(error: ErrorJson, prefix = ''): void {
  process.stderr.write(`error: ${prefix}${error.message}\n`);
  if (error.code === 'resource_limit') process.stderr.write('(raise the budget with --max-memory SIZE if this machine has the memory)\n');
}
