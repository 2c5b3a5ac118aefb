/**
 * Where the CLI's output goes: the result (text, or the JSON envelope with --json) on stdout, or on
 * stderr when the model itself goes to stdout (`-o -`); progress and info on stderr unless --quiet.
 * Inputs named `-` are read from stdin (one at most); `-o -` writes the model to stdout.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { FileError, reasonOf, sameFile, writeFilesAtomically, type OutFile } from '../files.js';
import type { LoadedModel } from '../client.js';
import type { Progress, TrainMetrics } from '../types.js';
import { UsageError, type Values } from './args.js';

/** The path that means stdin (for an input) or stdout (for `-o`). */
export const STDIO = '-';

let version: string | undefined;

/** The package's version (from its package.json). */
export function packageVersion(): string {
  version ??= JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  return version;
}

/** The JSON every command prints with --json: `{ command, version, ...body }`. */
export function envelope(command: string, body: object): object {
  return { command, version: packageVersion(), ...body };
}

export interface Bar {
  update(p: Progress): void;
  done(): void;
}

const silent: Bar = { update() {}, done() {} };

/** The output channels of one command run. */
export class Io {
  /** Set by `-o -`: the model goes to stdout, everything else to stderr. */
  modelToStdout = false;

  constructor(
    readonly command: string,
    readonly json: boolean,
    readonly quiet: boolean,
  ) {}

  /** Where results and JSON errors go. */
  get resultStream(): NodeJS.WriteStream {
    return this.modelToStdout ? process.stderr : process.stdout;
  }

  /** The command's result: the JSON envelope with --json, else the text (not with --quiet if it would go to stderr). */
  result(body: object, text: () => string): void {
    if (this.json) this.resultStream.write(JSON.stringify(envelope(this.command, body), null, 2) + '\n');
    else if (!(this.quiet && this.modelToStdout)) this.resultStream.write(text());
  }

  /** A line of information on stderr, unless --quiet. */
  info(line: string): void {
    if (!this.quiet) process.stderr.write(line + '\n');
  }

  /** A progress bar on stderr for interactive terminals; silent otherwise and with --quiet. */
  bar(label: string): Bar {
    return this.quiet ? silent : progressBar(label);
  }

  /** Live training figures: a line per epoch on interactive terminals, unless --quiet. */
  trainReporter(label: string): { bar: Bar; onMetrics(m: TrainMetrics): void } {
    const bar = this.bar(label);
    let epochs = 0;
    const show = process.stderr.isTTY && !this.quiet;
    return {
      bar,
      onMetrics(m) {
        if (show && m.epochs.length > epochs) {
          bar.done();
          process.stderr.write(epochLine(m.epochs[m.epochs.length - 1]) + '\n');
        }
        epochs = m.epochs.length;
      },
    };
  }
}

function epochLine(e: TrainMetrics['epochs'][number]): string {
  const acc = e.valAccuracy ?? e.accuracy;
  return (
    `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}${e.valLoss != null ? `, validation loss ${e.valLoss.toFixed(4)}` : ''}` +
    `${acc != null ? `, accuracy ${(acc * 100).toFixed(1)}%` : ''}${e.sparsity > 0 ? `, sparsity ${(e.sparsity * 100).toFixed(1)}%` : ''}`
  );
}

/** A progress bar on stderr for interactive terminals; silent otherwise (logs stay clean). */
export function progressBar(label: string): Bar {
  const tty = process.stderr.isTTY;
  let last = 0;
  let shown = false;
  return {
    update(p) {
      if (!tty || p.total <= 1) return;
      const now = Date.now();
      if (now - last < 80 && p.done < p.total) return;
      last = now;
      const width = 28;
      const filled = Math.round((p.done / p.total) * width);
      const pct = Math.floor((p.done / p.total) * 100);
      process.stderr.write(`\r${label} ${p.stage} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${p.done}/${p.total}`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs

let stdinReader: string | undefined;

/** Reads all of stdin, once per process: a second input naming `-` is a usage error. */
async function readStdin(what: string): Promise<Uint8Array> {
  if (stdinReader) throw new UsageError(`only one input can be read from stdin ('-'): the ${stdinReader} and the ${what} both name it`);
  stdinReader = what;
  if (process.stdin.isTTY) {
    throw new UsageError(`the ${what} is '-' (stdin), but stdin is a terminal: pipe the file in, e.g. 'cat model.tflite | tinyml-optimizer inspect -'`);
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  } catch (e) {
    throw new FileError(STDIO, reasonOf(e), 'read', `${what} from stdin`);
  }
  return Buffer.concat(chunks);
}

/** The bytes of an input file, or of stdin for `-`. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  if (path === STDIO) return readStdin(what);
  try {
    return await readFile(path);
  } catch (e) {
    throw new FileError(path, reasonOf(e), 'read', what);
  }
}

/** An optional input: undefined when its flag is not given. */
export function readOptional(path: string | boolean | undefined, what: string): Promise<Uint8Array | undefined> {
  return typeof path === 'string' ? readInput(path, what) : Promise.resolve(undefined);
}

// ---------------------------------------------------------------------------------------------
// Outputs

export interface Named {
  flag: string;
  path: string;
}

/** The named inputs among `flags` that are given (for the output checks). */
export function namedInputs(values: Values, flags: string[]): Named[] {
  return flags.filter((f) => typeof values[f] === 'string').map((f) => ({ flag: `--${f}`, path: values[f] as string }));
}

/**
 * Refuses outputs that would overwrite each other or an input: only `-o` may replace the model it
 * reads (it is written atomically, so the input survives any failure). Only `-o` may be `-`.
 */
export async function checkOutputs(inputs: Named[], outputs: Named[]): Promise<void> {
  for (const o of outputs) {
    if (o.path === STDIO && o.flag !== '-o') throw new UsageError(`${o.flag} cannot be '-': only -o writes to stdout (the model)`);
  }
  const files = outputs.filter((o) => o.path !== STDIO);
  const sources = inputs.filter((i) => i.path !== STDIO);
  for (const [i, o] of files.entries()) {
    for (const other of files.slice(i + 1)) {
      if (await sameFile(o.path, other.path)) {
        throw new UsageError(`${other.flag} and ${o.flag} name the same file '${o.path}': one would replace the other`);
      }
    }
    for (const input of sources) {
      if ((o.flag !== '-o' || input.flag !== 'MODEL') && (await sameFile(o.path, input.path))) {
        throw new UsageError(`${o.flag} names the input ${input.flag} '${input.path}': writing it would replace the input`);
      }
    }
  }
}

/** The `.cc` beside a `--header` path: `fw/model.h` → `fw/model.cc`. */
export function sourceBeside(header: string): string {
  return header.replace(/\.(h|hh|hpp)$/i, '') + '.cc';
}

/** Checks the outputs of a model-writing command (-o, --header and its .cc, --report) against its inputs. */
export async function checkModelOutputs(io: Io, values: Values, model: string, extraInputs: Named[] = []): Promise<void> {
  if (!values.output) throw new UsageError('-o OUT.tflite is required (or -o - to write the model to stdout)');
  const outputs: Named[] = [{ flag: '-o', path: values.output as string }];
  if (values.header) {
    outputs.push({ flag: '--header', path: values.header as string });
    outputs.push({ flag: '--header (its .cc)', path: sourceBeside(values.header as string) });
  }
  if (values.report) outputs.push({ flag: '--report', path: values.report as string });
  await checkOutputs([{ flag: 'MODEL', path: model }, ...extraInputs], outputs);
  io.modelToStdout = values.output === STDIO;
  if (io.modelToStdout && process.stdout.isTTY) {
    throw new UsageError("-o - writes the binary model to stdout, which is a terminal: redirect it ('> out.tflite') or pipe it");
  }
}

/** What a command wrote: the model (path `-` for stdout) and the other files. */
export interface Written {
  output: { path: string; bytes: number };
  files: { path: string; bytes: number }[];
}

/** The C name of the firmware files: the model file's name, else the header's, else `model`. */
function firmwareName(values: Values): string {
  const out = values.output as string;
  if (out !== STDIO) return basename(out);
  return values.header ? basename(values.header as string).replace(/\.(h|hh|hpp)$/i, '') : 'model';
}

/** The firmware files of --header: the header and the `.cc` beside it that includes it. */
async function firmwareFiles(values: Values, model: LoadedModel): Promise<OutFile[]> {
  const header = values.header as string;
  const fw = await model.firmware(firmwareName(values));
  // The .cc includes the header by the name it is written under.
  const source = fw.source.replace(`#include "${fw.headerName}"`, `#include "${basename(header)}"`);
  return [
    { path: header, data: fw.header },
    { path: sourceBeside(header), data: source },
  ];
}

/**
 * Writes the model to -o (a file, or stdout for `-`) and, with --header and --report, its TFLite
 * Micro firmware files and the report. Files are written all or none, before anything goes to stdout.
 */
export async function writeModel(values: Values, model: LoadedModel, bytes: Uint8Array, report?: unknown): Promise<Written> {
  const out = values.output as string;
  const files: OutFile[] = out === STDIO ? [] : [{ path: out, data: bytes }];
  if (values.header) files.push(...(await firmwareFiles(values, model)));
  if (values.report !== undefined && report !== undefined) {
    files.push({ path: values.report as string, data: JSON.stringify(report, null, 2) + '\n' });
  }
  await writeFilesAtomically(files);
  if (out === STDIO) await writeStdout(bytes);
  const size = (d: Uint8Array | string) => (typeof d === 'string' ? Buffer.byteLength(d) : d.length);
  return {
    output: { path: out, bytes: bytes.length },
    files: files.filter((f) => f.path !== out).map((f) => ({ path: f.path, bytes: size(f.data) })),
  };
}

/** Writes bytes to stdout, binary-safe; a closed pipe is a file error, not a crash. */
function writeStdout(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      const reason = e.code === 'EPIPE' ? 'the reading end of the pipe is closed' : reasonOf(e);
      reject(new FileError('stdout', reason, 'write', 'the model to'));
    };
    // The stream may report an error more than once (callback and event): keep listening.
    process.stdout.on('error', onError);
    process.stdout.write(bytes, (e) => (e ? onError(e) : resolve()));
  });
}

/** Stops training gracefully on Ctrl-C: the best model so far is kept. */
export function stopOnInterrupt(io: Io): { signal: AbortSignal; release(): void } {
  const ac = new AbortController();
  const handler = () => {
    io.info('\nstopping after the current step (Ctrl-C again to abort)...');
    process.off('SIGINT', handler);
    ac.abort();
  };
  process.on('SIGINT', handler);
  return { signal: ac.signal, release: () => process.off('SIGINT', handler) };
}
