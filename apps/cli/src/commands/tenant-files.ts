/**
 * The files of `keyfold tenant rotate --reencrypt FILE... | DIR... --recursive | --stdin-list`: a tenant's envelope
 * files as an `EnvelopeSource` for `@keyfold/rotation`'s `reencryptTenant`, and what happened to each file.
 *
 * Files are looked at header first (as `keyfold rewrap` does): a walk skips files that are not envelopes, envelopes
 * under other keys (another tenant, the installation's KEK) are left alone, and only the tenant's envelopes become
 * rows of the source (one file a row, one at a time: a file is held in memory while it is re-wrapped).
 *
 * Rules, and why they hold:
 * - A row's replacement is written only over the very file that was read (same device, inode, size and time,
 *   checked just before the atomic rename by `replaceFile`), with the same body bytes (checked here), so a file
 *   changed meanwhile is left with its new content and reported, never overwritten: the source's compare-and-swap.
 * - Every file that could not be read, named on the command line but not an envelope, or not replaced is reported
 *   as failed with its code, and makes `blocked` true or stays under the old version: either way the old key
 *   version is not destroyed.
 * @module
 */
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import {
  DEFAULT_LIMITS,
  KeyfoldError,
  LimitExceededError,
  dearmor,
  looksArmored,
  skipAsciiWhitespace,
} from '@keyfold/envelope-core';
import type { EnvelopeReplacement, EnvelopeRow, EnvelopeSource, TenantSourceReport } from '@keyfold/rotation';
import { CliError, errorCodeFor } from '../exit-codes.js';
import { ioError } from '../input.js';
import { kekLabel } from './rewrap-audit.js';
import { MAX_ENVELOPE_FILE_BYTES, bodyOf, parseFile, readHead, type FileItem, type FileOutcome, type Item } from './rewrap-files.js';
import { replaceFile } from './rewrap-replace.js';

/** A tenant envelope file, as last read. */
interface Candidate {
  readonly item: FileItem;
  /** Wrapped keys when first looked at (`tenant:acme@1`). */
  readonly versions: readonly string[];
  /** The file's state and the text around an armored envelope, from the last `list`. */
  read?: { readonly stat: Stats; readonly armored: boolean; readonly prefix: string; readonly suffix: string };
}

function failed(path: string, err: unknown, extra: Partial<FileOutcome> = {}): FileOutcome {
  return { path, status: 'failed', ...extra, code: errorCodeFor(err), reason: err instanceof Error ? err.message : String(err) };
}

/** The tenant's files as a source, and the report of each file once the run is over. */
export interface TenantFiles {
  readonly source: EnvelopeSource;
  /** Some file failed before anything was re-wrapped (unreadable, or named but not an envelope). */
  readonly blocked: boolean;
  /** One outcome per path, in order, given the run's report for this source and the version it moved to. */
  outcomes(report: TenantSourceReport | undefined, version: number): FileOutcome[];
}

async function openFile(item: FileItem): Promise<FileHandle> {
  try {
    // O_NOFOLLOW: a walked file swapped for a link since the walk is not followed.
    return await open(item.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw ioError('read', item.display, err);
  }
}

/** First look at one file: the tenant's envelope (a candidate), or its outcome. Never throws. */
async function classify(item: FileItem, tenant: string): Promise<Candidate | FileOutcome> {
  let handle: FileHandle | undefined;
  try {
    handle = await openFile(item);
    const st = await handle.stat();
    if (!st.isFile()) {
      if (item.walked) return { path: item.display, status: 'skipped', reason: 'not a regular file' };
      throw new CliError('IO_ERROR', `cannot read ${item.display}: not a regular file`);
    }
    const head = await readHead(handle, Math.min(st.size, DEFAULT_LIMITS.maxHeaderBytes));
    let wrapped;
    try {
      wrapped = (await parseFile(handle, head, st.size)).info.wrappedKeys;
    } catch (err) {
      if (item.walked) return { path: item.display, status: 'skipped', reason: 'not a Keyfold envelope' };
      throw err;
    }
    const versions = wrapped.map((w) => kekLabel({ kind: w.kind, keyId: w.keyId, version: w.keyVersion }));
    if (!wrapped.some((w) => w.kind === 'tenant' && w.keyId === tenant)) {
      return { path: item.display, status: 'skipped', versions, reason: `not sealed for tenant ${tenant}: left as it is` };
    }
    return { item, versions };
  } catch (err) {
    return failed(item.display, err);
  } finally {
    await handle?.close();
  }
}

/** Reads a candidate whole: the envelope (armored text without the whitespace around it, or bytes). */
async function readWhole(c: Candidate): Promise<Uint8Array | string> {
  const handle = await openFile(c.item);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new CliError('IO_ERROR', `cannot read ${c.item.display}: not a regular file`);
    if (stat.size > MAX_ENVELOPE_FILE_BYTES) throw new LimitExceededError(`${c.item.display} is larger than ${MAX_ENVELOPE_FILE_BYTES} bytes: too large to re-wrap in memory`);
    const data = await readHead(handle, stat.size);
    if (data.length !== stat.size) throw new CliError('IO_ERROR', `${c.item.display} changed while it was read; it was left as it is: run again`);
    if (!looksArmored(data)) {
      c.read = { stat, armored: false, prefix: '', suffix: '' };
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    const text = data.toString('utf8');
    const start = skipAsciiWhitespace(data);
    const end = text.trimEnd().length;
    c.read = { stat, armored: true, prefix: text.slice(0, start), suffix: text.slice(end) };
    return text.slice(start, end);
  } finally {
    await handle.close();
  }
}

/**
 * Looks at every item (header only) and returns the tenant's envelope files as a source.
 * @example
 * ```ts
 * const files = await tenantFiles(await collectFiles(paths, options), 'acme');
 * ```
 */
export async function tenantFiles(items: readonly Item[], tenant: string): Promise<TenantFiles> {
  const slots: (Candidate | FileOutcome)[] = [];
  for (const item of items) slots.push(item.kind === 'outcome' ? item.outcome : await classify(item, tenant));
  const candidates = slots.filter((s): s is Candidate => 'item' in s);
  const indexOf = new Map(candidates.map((c, i) => [c, i]));
  const blocked = slots.some((s) => 'status' in s && s.status === 'failed');
  /** Failures of reading or replacing a candidate, by index (the row id). */
  const errors = new Map<number, FileOutcome>();
  const applied = new Set<number>();

  const source: EnvelopeSource = {
    name: 'files',
    batchLimit: 1,
    list: async (after, limit) => {
      const rows: EnvelopeRow[] = [];
      for (let i = after === undefined ? 0 : Number(after) + 1; i < candidates.length && rows.length < limit; i++) {
        const c = candidates[i] as Candidate;
        try {
          rows.push({ id: i, envelope: await readWhole(c) });
        } catch (err) {
          errors.set(i, failed(c.item.display, err, { versions: c.versions }));
          // An empty row fails to parse: the run counts it as failed and keeps the old version.
          rows.push({ id: i, envelope: new Uint8Array(0) });
        }
      }
      return rows;
    },
    replace: async (replacements: readonly EnvelopeReplacement[]) => {
      const done: number[] = [];
      for (const r of replacements) {
        const i = Number(r.id);
        const c = candidates[i];
        if (!c?.read) continue;
        try {
          const before = typeof r.expected === 'string' ? dearmor(r.expected) : r.expected;
          const after = typeof r.next === 'string' ? dearmor(r.next) : r.next;
          if (!bodyOf(after).equals(bodyOf(before))) {
            throw new KeyfoldError('INTEGRITY_FAILED', 'the re-wrapped envelope does not have the same body; the file was left as it is');
          }
          const data = c.read.armored ? Buffer.from(c.read.prefix + String(r.next) + c.read.suffix, 'utf8') : after;
          await replaceFile(c.item.path, c.read.stat, data);
          applied.add(i);
          done.push(i);
        } catch (err) {
          errors.set(i, failed(c.item.display, err, { versions: c.versions, armored: c.read.armored }));
        }
      }
      return done;
    },
  };

  return {
    source,
    blocked,
    outcomes: (report, version) => {
      const failedRows = new Map((report?.failed ?? []).map((f) => [Number(f.id), f.code]));
      const target = kekLabel({ kind: 'tenant', keyId: tenant, version: String(version) });
      return slots.map((s) => {
        if ('status' in s) return s;
        const i = indexOf.get(s) ?? -1;
        const base = { path: s.item.display, versions: s.versions, ...(s.read ? { armored: s.read.armored } : {}) };
        const error = errors.get(i);
        if (error) return error;
        const code = failedRows.get(i);
        if (code !== undefined) return { ...base, status: 'failed' as const, code, reason: 'could not be re-encrypted (a damaged or tampered envelope, or its key is gone)' };
        if (applied.has(i)) return { ...base, status: 'rewrapped' as const };
        if (s.versions.length === 1 && s.versions[0] === target) return { ...base, status: 'current' as const };
        return { ...base, status: 'stale' as const, reason: 'still under an old key version (changed meanwhile, or the run stopped): run again' };
      });
    },
  };
}
