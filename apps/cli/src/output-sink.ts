/**
 * Outputs of the data commands: `--out` as a file replaced only on success (temporary file in the same directory,
 * renamed into place; removed on failure) or a sink over stdout, and the helpers that write to them.
 * @module
 */
import { unlinkSync } from 'node:fs';
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CommandContext } from './command.js';
import { CliError, UsageError } from './exit-codes.js';
import { ioError, isStdio } from './input.js';
import { onInterrupt } from './interrupt.js';
import { stdoutClosedError } from './output.js';
import { removeStaleTempFiles, tempFileName } from './temp-file-names.js';

async function writeFully(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * An output file written under a temporary name in the same directory (so the rename is atomic) and created with
 * `mode` and O_EXCL: a failed run removes it and leaves any existing file at `path` untouched. The streaming form of
 * the core's `writeFileAtomic` (same rule: file fsynced, renamed, directory fsynced with the core's
 * `syncDirectory`), plus what only a CLI run needs. SIGINT, SIGTERM and
 * SIGHUP during the write remove it too; what SIGKILL leaves behind, the next write to the same `path` removes (see
 * `temp-file-names.ts` for which files count as leftovers).
 */
export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  readonly #handle: FileHandle;
  #settled = false;
  readonly #stopSignals: () => void;

  private constructor(path: string, tempPath: string, handle: FileHandle, stopSignals: () => void) {
    this.path = path;
    this.tempPath = tempPath;
    this.#handle = handle;
    this.#stopSignals = stopSignals;
  }

  #release(): void {
    this.#settled = true;
    this.#stopSignals();
  }

  /** Creates the temporary file next to `path` with `mode`. */
  static async create(path: string, mode: number): Promise<AtomicFile> {
    try {
      const existing = await stat(path);
      if (existing.isDirectory()) throw new CliError('IO_ERROR', `cannot write ${path}: is a directory`);
    } catch (err) {
      if (err instanceof CliError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('write', path, err);
    }
    await removeStaleTempFiles(dirname(path), basename(path));
    const tempPath = join(dirname(path), tempFileName(basename(path)));
    // Watching for signals before the file exists, so none can end the run between creating it and watching.
    const stopSignals = onInterrupt(`${path} was not written`, () => {
      try {
        unlinkSync(tempPath);
      } catch {
        // Not created yet, or already gone.
      }
    });
    try {
      const handle = await open(tempPath, 'wx', mode);
      return new AtomicFile(path, tempPath, handle, stopSignals);
    } catch (err) {
      stopSignals();
      throw ioError('write', path, err);
    }
  }

  /**
   * A write stream over the temporary file: every chunk is written in full, and finishing the stream flushes the
   * file to disk. It does not close the file (commit / abort do).
   */
  stream(): Writable {
    const handle = this.#handle;
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        writeFully(handle, chunk).then(() => callback(), callback);
      },
      final(callback) {
        handle.sync().then(() => callback(), callback);
      },
    });
  }

  /** Writes all of `data` to the temporary file and flushes it to disk (for output that is not streamed). */
  async write(data: Uint8Array): Promise<void> {
    await writeFully(this.#handle, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    await this.#handle.sync();
  }

  /**
   * Closes the (flushed) temporary file and moves it into place: renamed over `path`, or with `replace: false`
   * hard-linked to it, which fails with the `EEXIST` error itself (rethrown as is, for the caller to word) rather
   * than replace a file that appeared since `create`. Then the directory is flushed, so the rename survives a crash.
   * @throws CliError IO_ERROR (nothing changed) when the file cannot be moved into place; IO_ERROR after the rename
   *   only when the directory cannot be flushed.
   */
  async commit(options: { readonly replace?: boolean } = {}): Promise<void> {
    try {
      await this.#handle.close();
      if (options.replace === false) await link(this.tempPath, this.path);
      else await rename(this.tempPath, this.path);
    } catch (err) {
      await this.#removeTemp();
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
      throw ioError('write', this.path, err);
    } finally {
      this.#release();
    }
    if (options.replace === false) await unlink(this.tempPath).catch(() => undefined);
    const dir = dirname(this.path);
    // Imported here: output-sink.ts is loaded by commands (attest) that must start without @keyfold/envelope-core.
    const { syncDirectory } = await import('@keyfold/envelope-core');
    try {
      await syncDirectory(dir);
    } catch (err) {
      throw ioError('flush the directory of', dir, err);
    }
  }

  /** Closes and deletes the temporary file. Safe to call after commit (then a no-op). */
  async abort(): Promise<void> {
    if (this.#settled) return;
    try {
      await this.#removeTemp();
    } finally {
      this.#release();
    }
  }

  async #removeTemp(): Promise<void> {
    await this.#handle.close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }
}

/**
 * A sink that forwards to `stdout` one chunk at a time (the next only once the last was taken: back-pressure) and is
 * never `stdout` itself: `pipeline()` destroys its streams on failure, and a destroyed process.stdout would lose the
 * error line and crash the process. A write stdout refuses (EPIPE: the reader went away) fails the sink with
 * IO_ERROR.
 */
export function stdoutSink(stdout: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        stdout.write(chunk, (err) => callback(err === undefined || err === null ? undefined : stdoutClosedError(err)));
      } catch (err) {
        callback(stdoutClosedError(err));
      }
    },
  });
}

/**
 * Runs `write` against `--out` (a file replaced only on success, or stdout for `-`/absent). On failure the
 * temporary file is deleted and the error rethrown. A signal during the write ends the run with exit 128 + signal
 * and one coded line, after removing the temporary file.
 */
export async function withOutput<T>(
  ctx: CommandContext,
  path: string | undefined,
  mode: number,
  write: (sink: Writable) => Promise<T>,
): Promise<T> {
  if (isStdio(path)) {
    const stopSignals = onInterrupt('the output on stdout is incomplete');
    try {
      return await write(stdoutSink(ctx.stdout));
    } finally {
      stopSignals();
    }
  }
  const file = await AtomicFile.create(path, mode);
  try {
    const result = await write(file.stream());
    await file.commit();
    return result;
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** Refuses `--json` together with data on stdout: with `--json`, stdout carries only the JSON document. */
export function assertJsonOutput(ctx: CommandContext, out: string | undefined): void {
  if (ctx.out.json && isStdio(out)) {
    throw new UsageError('--json needs --out FILE: stdout carries the JSON result, not the data', ctx.name);
  }
}

/** Writes one buffer to `sink` and ends it, waiting for the data to be flushed. */
export async function writeAll(sink: Writable, data: Uint8Array | string): Promise<void> {
  await pipeline(Readable.from([typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)]), sink);
}

/** A pass-through that counts the bytes flowing through it. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
