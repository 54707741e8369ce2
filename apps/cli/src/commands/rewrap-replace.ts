/**
 * Replacing one file's content in place for `keyfold rewrap`, through the CLI's {@link AtomicFile}: a temporary file
 * in the same directory (so the rename is atomic), given the old file's permission bits and owner, flushed to disk,
 * renamed over the file, then the directory flushed so the rename itself survives a crash (AtomicFile.commit, with
 * the core's `syncDirectory`).
 *
 * Rules, and why they hold:
 * - The file must still be the one that was read (same device, inode, size and modification time) just before the
 *   rename: a file another program changed meanwhile is left with that program's content, never overwritten with a
 *   re-wrap of the old one.
 * - A file the user may not write, or with no write bit at all (read-only on purpose, also for root), is refused
 *   even where the directory would allow the rename, and so is a file with several hard links (the rename would
 *   give only this name the new content).
 * - On any failure, and on SIGINT/SIGTERM while the temporary file exists (AtomicFile's handler), the temporary file
 *   is removed and the old file is untouched.
 * @module
 */
import { constants, type Stats } from 'node:fs';
import { access, chmod, chown, stat } from 'node:fs/promises';
import { CliError } from '../exit-codes.js';
import { ioError } from '../input.js';
import { AtomicFile } from '../output-sink.js';

/** True when `a` and `b` describe the same, unchanged file. */
function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * Replaces the file at `path` (a real path, not a symbolic link), whose state when it was read was `read`, with
 * `data`.
 * @throws CliError IO_ERROR (nothing changed) when the file is read-only, has several hard links, changed since it
 *   was read, or cannot be written; IO_ERROR after the rename only when the directory cannot be flushed.
 */
export async function replaceFile(path: string, read: Stats, data: Uint8Array): Promise<void> {
  // No write bit at all: read-only on purpose, also for root (whom access() would let through).
  if ((read.mode & 0o222) === 0) {
    throw new CliError('IO_ERROR', `cannot write ${path}: the file is read-only (mode ${(read.mode & 0o7777).toString(8).padStart(4, '0')}); chmod u+w it first`);
  }
  try {
    await access(path, constants.W_OK);
  } catch (err) {
    throw ioError('write', path, err);
  }
  if (read.nlink > 1) {
    throw new CliError('IO_ERROR', `cannot replace ${path}: it has ${read.nlink} hard links, and only this name would get the re-wrapped envelope`);
  }
  const file = await AtomicFile.create(path, read.mode & 0o777);
  try {
    // The owner first (only root, or an owner keeping a group it belongs to, can set it; chown clears set-id bits),
    // then the old permission bits exactly (the mode given at creation was reduced by the umask), then the data:
    // write() flushes the file, its metadata included, before the rename.
    if (read.uid !== process.getuid?.() || read.gid !== process.getgid?.()) await chown(file.tempPath, read.uid, read.gid);
    await chmod(file.tempPath, read.mode & 0o7777);
    await file.write(data);
    const now = await stat(path);
    if (!sameFile(read, now)) throw new CliError('IO_ERROR', `${path} changed while it was re-wrapped; it was left as it is now: run again`);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err instanceof CliError ? err : ioError('replace', path, err);
  }
}
