/**
 * Size bounds on input the CLI must hold in memory whole. Binary envelopes are streamed frame by frame and have no
 * bound here; text armor (`kf1.<base64url>`) and `secrets` files are decoded in memory, so an unbounded input would
 * let a large (or hostile) file exhaust memory: 300 MB of armor took 1.5 GB. Over a bound the command stops with
 * LIMIT_EXCEEDED (exit 1) before reading further, naming the limit.
 * @module
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { LimitExceededError } from '@keyfold/envelope-core';
import { ioError, readAll, type Input } from './input.js';
import { formatCount } from './output.js';

const MiB = 1024 * 1024;

/** Most bytes of armored input (`decrypt`, `inspect`), whitespace included: 64 MiB. */
export const MAX_ARMOR_BYTES = 64 * MiB;

/**
 * Most plaintext `encrypt --armor` seals: 47 MiB, so that its armor (4/3 of the envelope, plus at most a 64 KiB
 * header and the per-frame overhead) stays within {@link MAX_ARMOR_BYTES} and `decrypt` reads it back.
 */
export const MAX_ARMOR_PLAINTEXT_BYTES = 47 * MiB;

/** Most bytes of a `secrets` file (read or written) and of a value given with `--stdin` / `--from-file`: 16 MiB. */
export const MAX_SECRETS_FILE_BYTES = 16 * MiB;

/** `67,108,864 bytes (64 MiB)`. */
export function describeLimit(bytes: number): string {
  return `${formatCount(bytes)} bytes (${bytes / MiB} MiB)`;
}

/**
 * Reads all of `stream` (`name` for messages) into memory, refusing more than `maxBytes`.
 * @throws LimitExceededError naming the limit and `what` to do instead, after destroying the stream.
 */
export async function readBounded(stream: Readable, name: string, maxBytes: number, advice: string): Promise<Buffer> {
  try {
    return await readAll(stream, maxBytes);
  } catch (err) {
    if (err instanceof RangeError) throw new LimitExceededError(`${name} is larger than the limit of ${describeLimit(maxBytes)}; ${advice}`);
    throw err;
  }
}

const ARMOR_ADVICE = 'armored envelopes are decoded in memory: seal large data as binary (encrypt without --armor)';

/**
 * The rest of an armored input as text (`stream` replays the bytes already peeked), at most {@link MAX_ARMOR_BYTES}.
 * A file input larger than that is refused from its size, before any read.
 * @throws LimitExceededError over the bound.
 */
export async function readArmor(input: Input, stream: Readable): Promise<string> {
  if (input.size !== undefined && input.size > MAX_ARMOR_BYTES) {
    stream.destroy();
    throw new LimitExceededError(`${input.name} is larger than the limit of ${describeLimit(MAX_ARMOR_BYTES)}; ${ARMOR_ADVICE}`);
  }
  return (await readBounded(stream, input.name, MAX_ARMOR_BYTES, ARMOR_ADVICE)).toString('utf8');
}

/**
 * Reads the file at `path` as UTF-8, at most `maxBytes` (a regular file larger than that is refused from its size,
 * anything else, a pipe included, after `maxBytes` + 1 bytes). The buffers read are wiped (they may hold plaintext).
 * @throws LimitExceededError over the bound; CliError IO_ERROR when the file cannot be read.
 */
export async function readTextFile(path: string, maxBytes: number, advice: string): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw ioError('read', path, err);
  }
  const tooLarge = (): LimitExceededError =>
    new LimitExceededError(`${path} is larger than the limit of ${describeLimit(maxBytes)}; ${advice}`);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const st = await handle.stat();
    if (st.isFile() && st.size > maxBytes) throw tooLarge();
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk);
      total += bytesRead;
      if (total > maxBytes) throw tooLarge();
      if (bytesRead < chunk.length) chunks[chunks.length - 1] = chunk.subarray(0, bytesRead);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (err) {
    throw err instanceof LimitExceededError ? err : ioError('read', path, err);
  } finally {
    for (const c of chunks) c.fill(0);
    await handle.close().catch(() => undefined);
  }
}

/**
 * Refuses to write a `secrets` file larger than {@link MAX_SECRETS_FILE_BYTES}: keyfold could not read it back.
 * @throws LimitExceededError naming the file and the limit.
 */
export function assertSecretsFileSize(path: string, content: string): void {
  const bytes = Buffer.byteLength(content, 'utf8');
  if (bytes > MAX_SECRETS_FILE_BYTES) {
    throw new LimitExceededError(
      `the new content of ${path} would be ${formatCount(bytes)} bytes, over the limit of ${describeLimit(MAX_SECRETS_FILE_BYTES)} ` +
        'that keyfold secrets reads: nothing was written',
    );
  }
}
