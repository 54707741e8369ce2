/**
 * Inputs of the data commands: `--in` opened as a file or stdin, read whole or peeked at, and file system errors
 * worded as IO_ERROR.
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { CommandContext } from './command.js';
import { CliError } from './exit-codes.js';

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
