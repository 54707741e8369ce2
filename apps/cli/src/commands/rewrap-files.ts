/**
 * `keyfold rewrap FILE... | DIR... --recursive | --stdin-list`: which files to look at, and what happens to each one.
 *
 * A file is read header first: a walk decides from at most the header size limit whether a file is an envelope at
 * all, so large files that are not envelopes are never read whole. An envelope under the installation's KEK on
 * another version is re-wrapped in memory (`envelope.rewrap`, which proves the body decrypts), checked (one wrapped
 * key, under the target version; the body bytes identical; it opens with the target alone), and only then replaces
 * the file (rewrap-replace.ts). Tenant envelopes are left for `keyfold tenant rotate`.
 *
 * Symbolic links: a walk never follows one (reported as skipped), so it cannot leave the tree it was given; a link
 * named on the command line is resolved to its file, which is re-wrapped (the link stays a link). Every file is
 * handled once, however many names reach it.
 * @module
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  DEFAULT_LIMITS,
  FormatError,
  KeyfoldError,
  LimitExceededError,
  armor,
  dearmor,
  inspectEnvelope,
  looksArmored,
  skipAsciiWhitespace,
  type Envelope,
  type EnvelopeInfo,
} from '@keyfold/envelope-core';
import type { KekRef } from '@keyfold/keystore';
import { errorCodeFor, CliError, UsageError } from '../exit-codes.js';
import { ioError } from '../input.js';
import { kekLabel } from './rewrap-audit.js';
import { replaceFile } from './rewrap-replace.js';

/** The largest file re-wrapped (held in memory twice while it is re-wrapped and checked). */
export const MAX_ENVELOPE_FILE_BYTES = 1024 * 1024 * 1024;

export type FileStatus = 'rewrapped' | 'current' | 'stale' | 'tenant' | 'skipped' | 'failed';

/** What happened to one path. `versions`: the envelope's wrapped keys before the run (`kind:keyId@version`). */
export interface FileOutcome {
  readonly path: string;
  readonly status: FileStatus;
  readonly armored?: boolean;
  readonly versions?: readonly string[];
  readonly code?: string;
  readonly reason?: string;
}

/** A file to look at: `path` is where it really is, `display` the name the user gave or the walk reached. */
export interface FileItem {
  readonly kind: 'file';
  readonly path: string;
  readonly display: string;
  /** Reached by a directory walk: a file that is not an envelope is skipped, not a failure. */
  readonly walked: boolean;
}

/** A file to look at, or what was already decided about a path (an unreadable one, a link a walk skips). */
export type Item = FileItem | { readonly kind: 'outcome'; readonly outcome: FileOutcome };

function failed(path: string, err: unknown): FileOutcome {
  return { path, status: 'failed', code: errorCodeFor(err), reason: err instanceof Error ? err.message : String(err) };
}

/**
 * Expands the paths given into the files to look at, in order. Directories need `recursive`.
 * @throws UsageError when a directory is named without `--recursive` (before anything is read).
 */
export async function collectFiles(paths: readonly string[], options: { cwd: string; recursive: boolean; command: string }): Promise<Item[]> {
  const items: Item[] = [];
  const seen = new Set<string>();
  const add = (path: string, display: string, st: Stats, walked: boolean): void => {
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    items.push({ kind: 'file', path, display, walked });
  };
  const walk = async (dir: string, display: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      items.push({ kind: 'outcome', outcome: failed(display, ioError('read the directory', display, err)) });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      const shown = join(display, e.name);
      if (e.isSymbolicLink()) {
        items.push({ kind: 'outcome', outcome: { path: shown, status: 'skipped', reason: 'symbolic link (not followed)' } });
      } else if (e.isDirectory()) {
        await walk(path, shown);
      } else if (e.isFile()) {
        try {
          add(path, shown, await lstat(path), true);
        } catch (err) {
          items.push({ kind: 'outcome', outcome: failed(shown, ioError('read', shown, err)) });
        }
      } else {
        items.push({ kind: 'outcome', outcome: { path: shown, status: 'skipped', reason: 'not a regular file' } });
      }
    }
  };
  for (const given of paths) {
    const abs = resolve(options.cwd, given);
    let st: Stats;
    let real: string;
    try {
      // A named symbolic link is followed to its file (or directory); the link itself is never replaced.
      real = await realpath(abs);
      st = await stat(real);
    } catch (err) {
      items.push({ kind: 'outcome', outcome: failed(given, ioError('read', given, err)) });
      continue;
    }
    if (st.isDirectory()) {
      if (!options.recursive) throw new UsageError(`${given} is a directory: add --recursive to re-wrap the envelopes in it`, options.command);
      await walk(real, given);
    } else if (st.isFile()) {
      add(real, given, st, false);
    } else {
      items.push({ kind: 'outcome', outcome: failed(given, new CliError('IO_ERROR', `cannot read ${given}: not a regular file`)) });
    }
  }
  return items;
}

/** Reads up to `length` bytes from the start of the file. */
export async function readHead(handle: FileHandle, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await handle.read(buf, off, length - off, off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return buf.subarray(0, off);
}

export interface Parsed {
  readonly info: EnvelopeInfo;
  readonly armored: boolean;
}

const ARMOR_START = /^kf1\.[A-Za-z0-9_-]*$/;

/**
 * Parses the header of a file whose first bytes are `head` (all of it when `head.length === size`). Armor needs the
 * whole text: it is read whole only when the head looks like the start of one (`kf1.` and base64url only) and the
 * file is within {@link MAX_ENVELOPE_FILE_BYTES}.
 * @returns the header and, when the whole file was read, its bytes.
 * @throws FormatError (and the parser's other coded errors) for anything that is not an envelope.
 */
export async function parseFile(handle: FileHandle, head: Buffer, size: number): Promise<Parsed & { data: Buffer | undefined }> {
  const whole = head.length === size;
  if (skipAsciiWhitespace(head) === head.length) throw new FormatError('empty: not a Keyfold envelope');
  if (!looksArmored(head)) return { info: inspectEnvelope(head), armored: false, data: whole ? head : undefined };
  if (!whole && !ARMOR_START.test(head.toString('latin1').trimStart())) throw new FormatError('not a Keyfold envelope');
  if (size > MAX_ENVELOPE_FILE_BYTES) throw new LimitExceededError(`an armored envelope file must be at most ${MAX_ENVELOPE_FILE_BYTES} bytes`);
  const data = whole ? head : await readHead(handle, size);
  return { info: inspectEnvelope(data.toString('utf8')), armored: true, data };
}

function labels(info: EnvelopeInfo): string[] {
  return info.wrappedKeys.map((w) => kekLabel({ kind: w.kind, keyId: w.keyId, version: w.keyVersion }));
}

/** The bytes after the header: what a re-wrap must leave identical. */
export function bodyOf(envelope: Uint8Array): Buffer {
  const { headerLength } = inspectEnvelope(envelope);
  return Buffer.from(envelope.buffer, envelope.byteOffset + headerLength, envelope.byteLength - headerLength);
}

/** What processing needs: the envelope over the target provider, the target version, and whether to write. */
export interface RewrapFileContext {
  readonly envelope: Envelope;
  readonly target: KekRef;
  readonly check: boolean;
}

/**
 * The new file content for `data` (armored text keeps the whitespace around it), checked: one wrapped key under the
 * target, the same body bytes, and it opens with the target alone.
 * @throws the envelope's coded errors (DECRYPT_FAILED, NO_PROVIDER, ...); INTEGRITY_FAILED when a check fails.
 */
async function rewrapped(ctx: RewrapFileContext, data: Buffer, armored: boolean): Promise<Buffer> {
  const { envelope, target } = ctx;
  let before: Uint8Array;
  let after: Uint8Array;
  let out: Buffer;
  if (armored) {
    const text = data.toString('utf8');
    const start = skipAsciiWhitespace(data);
    const end = text.trimEnd().length;
    const next = await envelope.rewrap(text.slice(start, end));
    before = dearmor(text.slice(start, end));
    after = dearmor(next);
    out = Buffer.from(text.slice(0, start) + armor(after) + text.slice(end), 'utf8');
  } else {
    before = data;
    after = await envelope.rewrap(data);
    out = Buffer.from(after.buffer, after.byteOffset, after.byteLength);
  }
  const w = inspectEnvelope(after).wrappedKeys;
  const onTarget = w.length === 1 && w[0]?.kind === target.kind && w[0].keyId === target.keyId && w[0].keyVersion === target.version;
  if (!onTarget || !bodyOf(after).equals(bodyOf(before))) {
    throw new KeyfoldError('INTEGRITY_FAILED', 'the re-wrapped envelope is not on the target version with the same body; the file was left as it is');
  }
  // Open with the target alone before anything is replaced; the plaintext is wiped at once.
  (await envelope.open(after)).fill(0);
  return out;
}

/** Looks at one file and, unless checking, re-wraps it. Never throws: failures are outcomes. */
export async function processFile(ctx: RewrapFileContext, item: FileItem): Promise<FileOutcome> {
  const { display } = item;
  let handle: FileHandle | undefined;
  try {
    try {
      // O_NOFOLLOW: a walked file swapped for a link since the walk is not followed.
      handle = await open(item.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      throw ioError('read', display, err);
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      if (item.walked) return { path: display, status: 'skipped', reason: 'not a regular file' };
      throw new CliError('IO_ERROR', `cannot read ${display}: not a regular file`);
    }
    const head = await readHead(handle, Math.min(st.size, DEFAULT_LIMITS.maxHeaderBytes));
    let parsed: Parsed & { data: Buffer | undefined };
    try {
      parsed = await parseFile(handle, head, st.size);
    } catch (err) {
      if (item.walked) return { path: display, status: 'skipped', reason: 'not a Keyfold envelope' };
      throw err;
    }
    const versions = labels(parsed.info);
    const base = { path: display, armored: parsed.armored, versions };
    if (parsed.info.wrappedKeys.some((w) => w.kind === 'tenant')) {
      return { ...base, status: 'tenant', reason: "tenant key: rotate with 'keyfold tenant rotate'" };
    }
    const t = ctx.target;
    const w = parsed.info.wrappedKeys;
    if (w.length === 1 && w[0]?.kind === t.kind && w[0].keyId === t.keyId && w[0].keyVersion === t.version) return { ...base, status: 'current' };
    if (ctx.check) return { ...base, status: 'stale' };
    try {
      if (st.size > MAX_ENVELOPE_FILE_BYTES) throw new LimitExceededError(`${display} is larger than ${MAX_ENVELOPE_FILE_BYTES} bytes: too large to re-wrap in memory`);
      const data = parsed.data ?? (await readHead(handle, st.size));
      if (data.length !== st.size) throw new CliError('IO_ERROR', `${display} changed while it was read; it was left as it is: run again`);
      await handle.close();
      handle = undefined;
      const next = await rewrapped(ctx, data, parsed.armored);
      await replaceFile(item.path, st, next);
      return { ...base, status: 'rewrapped' };
    } catch (err) {
      return { ...failed(display, err), armored: parsed.armored, versions };
    }
  } catch (err) {
    return failed(display, err);
  } finally {
    await handle?.close();
  }
}

/** Processes every item in order (stopping before the next file once `signal` fires). */
export async function processAll(ctx: RewrapFileContext, items: readonly Item[], signal: AbortSignal): Promise<{ outcomes: FileOutcome[]; aborted: boolean }> {
  const outcomes: FileOutcome[] = [];
  for (const item of items) {
    if (signal.aborted) return { outcomes, aborted: true };
    outcomes.push(item.kind === 'outcome' ? item.outcome : await processFile(ctx, item));
  }
  return { outcomes, aborted: false };
}
