/**
 * The CLI's file output: every file is written to a temporary file in its own folder and renamed
 * over the target, so a kill, a full disk or a failed write never leaves a truncated or replaced
 * file. A group of files (a model, its header and report; the outputs of `run`) is committed
 * together: all temporary files are written first, and only then renamed.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** A file-system failure, with the path and the reason in plain words (exit code 1, no stack). */
export class FileError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    action: 'read' | 'write',
    what = '',
  ) {
    super(`cannot ${action} ${what ? what + ' ' : ''}'${path}': ${reason}`);
    this.name = 'FileError';
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a parent of it is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EFBIG: 'the file is too large',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EBUSY: 'the file is busy',
  ELOOP: 'too many symbolic links',
};

/** The reason of a Node file-system error, in words. */
export function reasonOf(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return (err?.code && REASONS[err.code]) || (err?.message ?? String(e));
}

/** The file a path names: symlinks resolved when it exists, else the absolute path. */
async function target(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/** Whether two paths name the same file (same path after resolving links, or same inode). */
export async function sameFile(a: string, b: string): Promise<boolean> {
  if ((await target(a)) === (await target(b))) return true;
  try {
    const [sa, sb] = await Promise.all([stat(a), stat(b)]);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

export interface OutFile {
  path: string;
  data: Uint8Array | string;
}

interface Staged {
  final: string;
  temp: string;
  shown: string;
}

/** Writes `data` to a new temporary file beside `final` and flushes it to disk. */
async function stage(file: OutFile): Promise<Staged> {
  const final = await target(file.path);
  const existing = await stat(final).catch(() => null);
  if (existing?.isDirectory()) throw new FileError(file.path, REASONS.EISDIR, 'write');
  const temp = join(dirname(final), `.${basename(final)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(temp, 'wx', 0o666);
  } catch (e) {
    throw new FileError(file.path, reasonOf(e), 'write');
  }
  try {
    await handle.writeFile(file.data);
    await handle.sync();
    await handle.close();
    // Keep the permissions of a file being replaced.
    if (existing) await chmod(temp, existing.mode & 0o7777);
  } catch (e) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw new FileError(file.path, reasonOf(e), 'write');
  }
  return { final, temp, shown: file.path };
}

/**
 * Writes every file or none: all are staged as temporary files first; if any fails, the others
 * are removed and the targets stay as they were. Then each is renamed over its target (atomic
 * within a folder).
 */
export async function writeFilesAtomically(files: OutFile[]): Promise<void> {
  const staged: Staged[] = [];
  try {
    for (const f of files) staged.push(await stage(f));
  } catch (e) {
    await Promise.all(staged.map((s) => unlink(s.temp).catch(() => {})));
    throw e;
  }
  for (const [i, s] of staged.entries()) {
    try {
      await rename(s.temp, s.final);
    } catch (e) {
      await Promise.all(staged.slice(i).map((r) => unlink(r.temp).catch(() => {})));
      throw new FileError(s.shown, reasonOf(e), 'write');
    }
  }
}
