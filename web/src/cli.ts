#!/usr/bin/env node
/**
 * tinyml-optimizer: the command line. Every command runs the engine in a worker thread; the commands
 * are in cli/commands.ts and cli/optimize.ts, their options in cli/args.ts, output in cli/io.ts.
 *
 * Exit codes: 0 success, 1 user error (bad model, data, option or usage, a file that cannot be read or
 * written, a model over the memory budget), 2 internal error. Output files are written atomically.
 * With --json, stdout carries one JSON document, `{ command, version, ...result }`, or on failure
 * `{ command, version, error: { code, message, ... } }` (on stderr when `-o -` writes the model to stdout).
 */
import { parseArgs } from 'node:util';
import { OptimizerError } from './types.js';
import { COMMON_OPTIONS, COMMON_USAGE, UsageError, type Values } from './cli/args.js';
import { commands as single } from './cli/commands.js';
import { describeError, EXIT_INTERNAL, EXIT_OK, EXIT_USER, printError, type Command } from './cli/engine.js';
import { envelope, Io, packageVersion } from './cli/io.js';
import { optimize } from './cli/optimize.js';

const commands: Record<string, Command> = { optimize, ...single };

function mainHelp(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return (
    'tinyml-optimizer — prune and int8-quantize TinyML models on your machine\n\n' +
    'Usage: tinyml-optimizer <command> [options]\n\nCommands:\n' +
    lines.join('\n') +
    "\n\nRun 'tinyml-optimizer <command> --help' for a command's options.\n" +
    "A model argument '-' reads the model from stdin; -o - writes the output model to stdout (everything else\n" +
    'then goes to stderr).\n' +
    'optimize, prune, quantize, finetune and convert take --header OUT.h to also write TensorFlow Lite Micro firmware\n' +
    'files: OUT.h (kTensorArenaSize from the arena prediction, kOpCount, RegisterOps) and OUT.cc (the aligned model array).\n' +
    'Every command takes:\n' +
    '  --json             print one JSON document: { "command", "version", ...result }, or on failure\n' +
    '                     { "command", "version", "error": { "code", "message", ... } }\n' +
    '  --quiet, -q        no progress or information on stderr, only errors (and the requested output)\n' +
    '  --target tflm|litert  whose int8 arithmetic the engine reproduces bit for bit (default tflm): TensorFlow\n' +
    "                     Lite Micro (the device) or LiteRT's reference kernels; they differ by one step on rare outputs\n" +
    '  --max-memory SIZE  the engine\'s memory budget per model (e.g. 512M, 2G; default 1G); a model that needs\n' +
    '                     more is refused (error code resource_limit) before anything is allocated\n' +
    '  --threads N        engines that long work spreads over (default: all cores); results are identical whatever N\n' +
    'Output files are written to a temporary file and renamed, so an input is never left truncated.\n' +
    'Exit codes: 0 success, 1 user error (bad model, data, option or usage, a file that cannot be read or\n' +
    'written, a model over the memory budget), 2 internal error.\n'
  );
}

function commandHelp(c: Command): string {
  return `${c.summary}\n\nUsage: ${c.usage}\n       ${COMMON_USAGE}\n\n${c.help}\n`;
}

/** The command line parsed against the command's options and the common ones. */
function parse(cmd: Command, args: string[]): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const n = parsed.positionals.length;
  if (cmd.positionals === 'some' ? n === 0 : n !== cmd.positionals) {
    throw new UsageError(`expected ${cmd.positionals === 'some' ? 'one or more' : cmd.positionals} file argument(s), got ${n}`);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** Reports a failed command: the JSON error with --json, the message (and usage, hints) on stderr. */
function fail(io: Io, cmd: Command, e: unknown): number {
  const { error, exit } = describeError(e);
  if (io.json) io.resultStream.write(JSON.stringify(envelope(io.command, { error }), null, 2) + '\n');
  printError(error);
  if (e instanceof UsageError) process.stderr.write(`usage: ${cmd.usage}\n`);
  if (exit === EXIT_INTERNAL && e instanceof Error && e.stack && !(e instanceof OptimizerError)) process.stderr.write(e.stack + '\n');
  return exit;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name ? EXIT_OK : EXIT_USER;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`error: unknown command '${name}'\n\n${mainHelp()}`);
    return EXIT_USER;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandHelp(cmd));
    return EXIT_OK;
  }
  const io = new Io(name, rest.includes('--json'), rest.includes('--quiet') || rest.includes('-q'));
  // Before parsing: a usage error of `-o -` must not reach stdout either.
  io.modelToStdout = 'header' in cmd.options && rest.some((a, i) => (a === '-' && (rest[i - 1] === '-o' || rest[i - 1] === '--output')) || a === '--output=-');
  try {
    const code = await cmd.run({ ...parse(cmd, rest), io });
    return code ?? EXIT_OK;
  } catch (e) {
    return fail(io, cmd, e);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`internal error: ${e?.stack ?? e}\n`);
    process.exitCode = EXIT_INTERNAL;
  },
);
