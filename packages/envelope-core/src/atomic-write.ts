/**
 * The one atomic file writer of the project: replace a file so that a reader, and a crash, sees either the old
 * content or the new one, never a mix, and no temporary file is left behind by a failure.
 *
 * It lives in the core because the three places that write key material or secrets to disk (the CLI, the local
 * provider's KEK files, the secrets files rewritten by the CLI) all depend on the core already, and the core already
 * touches the file system (`assertPrivatePath`): no package gains a dependency, and the durability rule is written
 * once. Node built-ins only; the core keeps no runtime dependencies.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Suffix of every temporary file the atomic writer creates (so stale ones are recognisable). */
export const ATOMIC_TEMP_SUFFIX = '.keyfold-tmp';

/** Error codes of file systems that cannot fsync a directory: the rename is still atomic there. */
const NO_DIRECTORY_SYNC = new Set(['EINVAL', 'ENOTSUP', 'EISDIR']);

/**
 * Flushes a directory's entries to disk, so that a rename (or link, or unlink) done in it survives a crash. File
 * systems that cannot fsync a directory (EINVAL, ENOTSUP, ...) and Windows, which cannot open a directory for sync,
 * are tolerated: the rename is still atomic there, only its durability is the file system's.
 * @throws Error (the `node:fs` error, with its `code`) when the directory cannot be opened or flushed otherwise.
 * @example
 * ```ts
 * await rename(temp, path);
 * await syncDirectory(dirname(path));
 * ```
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await handle.sync();
  } catch (err) {
    if (!NO_DIRECTORY_SYNC.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle?.close();
  }
}

/** A fresh temporary name next to `path`: `.<name>.<random>.keyfold-tmp` in the same directory. */
export function atomicTempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}${ATOMIC_TEMP_SUFFIX}`);
}

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of the new file (reduced by the umask at creation). Default `0o600`: key material and secrets. */
  readonly mode?: number;
  /** The temporary file to use (must be in the same directory as the target); default {@link atomicTempPath}. */
  readonly tempPath?: string;
}

async function writeFully(handle: FileHandle, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) {
    const { bytesWritten } = await handle.write(data, offset, data.byteLength - offset);
    offset += bytesWritten;
  }
}

/**
 * Replaces (or creates) the file at `path` with `data`, atomically and durably: the data goes to a new temporary file
 * in the same directory (created exclusively, mode `0600` unless given), the file is fsynced, renamed over `path`,
 * and then the directory is fsynced so the rename itself survives a crash. On any failure before the rename the
 * temporary file is removed and `path` is untouched.
 *
 * Why it is in `@keyfold/envelope-core`: see the module comment (every writer of key material already depends on the
 * core; one rule, no new dependency).
 * @throws Error (the `node:fs` error, with its `code`: ENOSPC, EACCES, EROFS, EISDIR, ...) when the file cannot be
 *   written or renamed (then nothing changed), or when the directory cannot be flushed after the rename (then `path`
 *   holds the new data, but its durability is not known).
 * @example
 * ```ts
 * await writeFileAtomic('/etc/keyfold/keyring.json', new TextEncoder().encode(json), { mode: 0o600 });
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temp = options.tempPath ?? atomicTempPath(path);
  if (dirname(temp) !== dirname(path)) throw new RangeError('tempPath must be in the same directory as path');
  // Exclusive creation: a file already at the temporary name is someone else's, and is neither used nor removed.
  let handle: FileHandle | undefined = await open(temp, 'wx', options.mode ?? 0o600);
  try {
    await writeFully(handle, bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dirname(path));
}
