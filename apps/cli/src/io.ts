/**
 * Input and output for the data commands: files or stdin/stdout, and output files that are replaced only on success
 * (temporary file in the same directory, renamed into place; removed on failure). Armor detection is the core's
 * `looksArmored`.
 * @module
 */
import { unlinkSync } from 'node:fs';
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CommandContext } from './command.js';
import { CliError, UsageError } from './exit-codes.js';
import { onInterrupt } from './interrupt.js';
import { stdoutClosedError } from './output.js';
import { removeStaleTempFiles, tempFileName } from './temp-file-names.js';

/** True when `path` means the standard stream (`-` or absent). */
export function isStdio(path: string | undefined): path is undefined | '-' {
  return path === undefined || path === '-';
}

function describeErrno(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'ENOSPC':
      return 'no space left on device';
    default:
      return e.code ?? (err instanceof Error ? err.message : String(err));
  }
}

/** Wraps a file system error as IO_ERROR with the path and a short reason (no data, no stack). */
export function ioError(action: string, path: string, err: unknown): CliError {
  return new CliError('IO_ERROR', `cannot ${action} ${path}: ${describeErrno(err)}`, { cause: err });
}

/** An input: the stream and, for files, the size (for inspect's body length without reading into memory). */
export interface Input {
  readonly stream: Readable;
  readonly size: number | undefined;
  /** For messages: the path or `stdin`. */
  readonly name: string;
  /** Releases a file input (no-op for stdin and for a stream already consumed). */
  close(): void;
}

/** Opens `--in` (a file, or stdin for `-`/absent). Errors surface here, not later inside a pipeline. */
export async function openInput(ctx: CommandContext, path: string | undefined): Promise<Input> {
  if (isStdio(path)) return { stream: ctx.stdin, size: undefined, name: 'stdin', close: () => undefined };
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw ioError('read', path, err);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CliError('IO_ERROR', `cannot read ${path}: not a regular file`);
    const stream = handle.createReadStream();
    return { stream, size: st.size, name: path, close: () => stream.destroy() };
  } catch (err) {
    await handle.close();
    throw err instanceof CliError ? err : ioError('read', path, err);
  }
}

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
    // Imported here: io.ts is loaded by commands (attest) that must start without @keyfold/envelope-core.
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

/**
 * Reads a whole stream into one buffer. The chunks are wiped after they are copied (they may be plaintext).
 * @throws RangeError (after destroying the stream) when it holds more than `maxBytes`.
 */
export async function readAll(stream: Readable, maxBytes = Infinity): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      chunks.push(buf);
      total += buf.length;
      if (total > maxBytes) {
        stream.destroy();
        throw new RangeError(`the input is larger than ${maxBytes} bytes`);
      }
    }
    return Buffer.concat(chunks);
  } finally {
    for (const c of chunks) c.fill(0);
  }
}

/** Writes one buffer to `sink` and ends it, waiting for the data to be flushed. */
export async function writeAll(sink: Writable, data: Uint8Array | string): Promise<void> {
  await pipeline(Readable.from([typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)]), sink);
}

/** A stream's first bytes, and a stream that yields all of it (those bytes first) for the real work. */
export interface Peeked {
  readonly head: Buffer;
  readonly ended: boolean;
  readonly stream: Readable;
}

/**
 * Reads from `source` until `enough(head)` holds or the input ends, without losing anything: the returned stream
 * replays `head` and then the rest of `source`. Destroying the returned stream ends the source iteration too.
 */
export async function peek(source: Readable, enough: (head: Buffer) => boolean): Promise<Peeked> {
  const iterator = (source as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let head: Buffer = Buffer.alloc(0);
  let ended = false;
  while (!enough(head)) {
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    chunks.push(typeof next.value === 'string' ? Buffer.from(next.value, 'utf8') : next.value);
    head = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  }
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        yield typeof next.value === 'string' ? Buffer.from(next.value, 'utf8') : next.value;
      }
    } finally {
      if (!ended) await iterator.return?.();
    }
  }
  return { head, ended, stream: Readable.from(replay(), { objectMode: false }) };
}

/** Parses repeated `--context k=v` values into a context object. */
export function parseContext(values: readonly string[], command: string): Record<string, string> {
  const context: Record<string, string> = {};
  for (const entry of values) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`--context expects k=v with a non-empty key; got ${JSON.stringify(entry)}`, command);
    const key = entry.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(context, key)) {
      throw new UsageError(`--context ${JSON.stringify(key)} is given twice`, command);
    }
    context[key] = entry.slice(eq + 1);
  }
  return context;
}

/** A pass-through that counts the bytes flowing through it. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
