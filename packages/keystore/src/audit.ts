/**
 * The audit log's hash chain: the canonical encoding of an entry, its SHA-256 hash, and the verification that
 * names the first edited, deleted, reordered or inserted entry. Shared by both stores and by backup/restore.
 *
 * Security rule: each entry's hash covers its sequence number, time, actor, event, subject, details and the hash of
 * the entry before it, so changing, removing, moving or adding one entry breaks the chain at that point. The store
 * also keeps a head pointer (sequence number and hash of the newest entry), updated in the same transaction as each
 * append, so a truncated or extended log is caught too. A writer who can rewrite the whole tail *and* the head is
 * beyond what a keyless chain can detect: anchor the head elsewhere (`keyfold audit verify --json` prints it).
 * @module
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, AuditHead, AuditInput, AuditVerification, JsonValue } from './types.js';

/**
 * `prevHash` of the first entry.
 * @example
 * ```ts
 * const first = entries[0]; if (first.prevHash !== GENESIS_HASH) throw new Error('not the start of the log');
 * ```
 */
export const GENESIS_HASH = '0'.repeat(64);

const LABEL = 'keyfold/audit/v1';
const MAX_FIELD = 1024;
const MAX_DETAILS_BYTES = 1024 * 1024;

/** JSON with object keys sorted at every level: one encoding per value. */
export function canonicalJson(value: JsonValue | undefined): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${(value as readonly JsonValue[]).map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as { readonly [k: string]: JsonValue };
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/**
 * The hash of an entry with the given fields (hex SHA-256 over a label and the canonical JSON of every field).
 * @throws nothing for JSON details.
 * @example
 * ```ts
 * const ok = auditHash(entry) === entry.hash;
 * ```
 */
export function auditHash(e: Omit<AuditEntry, 'hash'>): string {
  const body = canonicalJson({
    seq: e.seq,
    time: e.time,
    actor: e.actor,
    event: e.event,
    subject: e.subject,
    details: e.details,
    prev: e.prevHash,
  });
  return createHash('sha256').update(LABEL).update('\n').update(body).digest('hex');
}

function assertJson(value: unknown, path: string, depth: number): void {
  if (depth > 8) throw new RangeError(`${path} is nested too deeply`);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path} must be a finite number`);
    return;
  }
  if (value instanceof Uint8Array) {
    throw new TypeError(`${path} is bytes: audit details never hold key material or other binary data`);
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertJson(v, `${path}[${i}]`, depth + 1));
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) assertJson(v, `${path}.${k}`, depth + 1);
    return;
  }
  throw new TypeError(`${path} must be JSON (string, number, boolean, null, array or plain object)`);
}

/**
 * Validates an {@link AuditInput}.
 * @throws TypeError / RangeError naming the field.
 */
export function assertAuditInput(input: AuditInput): void {
  if (input === null || typeof input !== 'object') throw new TypeError('audit entry must be an object');
  for (const f of ['actor', 'event', 'subject'] as const) {
    const v = input[f];
    if (typeof v !== 'string' || v.length === 0) throw new TypeError(`audit.${f} must be a non-empty string`);
    if (v.length > MAX_FIELD) throw new RangeError(`audit.${f} is longer than ${MAX_FIELD} characters`);
  }
  if (input.details !== undefined) {
    assertJson(input.details, 'audit.details', 0);
    if (Array.isArray(input.details) || typeof input.details !== 'object' || input.details === null) {
      throw new TypeError('audit.details must be a plain object');
    }
    if (canonicalJson(input.details).length > MAX_DETAILS_BYTES) throw new RangeError(`audit.details is larger than ${MAX_DETAILS_BYTES} bytes`);
  }
}

/** Builds the next entry after `head`. */
export function nextAuditEntry(head: AuditHead, input: AuditInput, time: string): AuditEntry {
  const partial = {
    seq: head.seq + 1,
    time,
    actor: input.actor,
    event: input.event,
    subject: input.subject,
    details: input.details ?? {},
    prevHash: head.hash,
  };
  return { ...partial, hash: auditHash(partial) };
}

/** How far a moved entry is searched for its original position. */
const MOVE_WINDOW = 16;

/** The sequence number an entry's stored hash is valid for, near its current one; `undefined` if none (content edited). */
function originalSeq(e: AuditEntry): number | undefined {
  if (auditHash(e) === e.hash) return e.seq;
  for (let d = 1; d <= MOVE_WINDOW; d++) {
    for (const s of [e.seq - d, e.seq + d]) {
      if (s >= 1 && auditHash({ ...e, seq: s }) === e.hash) return s;
    }
  }
  return undefined;
}

function problem(entries: number, head: AuditHead, kind: NonNullable<AuditVerification['problem']>['kind'], seq: number, message: string): AuditVerification {
  return { ok: false, entries, head, problem: { kind, seq, message } };
}

/**
 * Verifies a whole log (entries in `seq` order, as stored) against the head pointer, and names the first problem:
 * - `edited`: an entry's content no longer matches its hash, or was replaced by one with a recomputed hash (the
 *   next entry still names the original);
 * - `deleted`: a sequence number is missing, entries were removed and the rest renumbered, or the log ends before
 *   the head;
 * - `reordered`: an entry sits at another entry's position;
 * - `inserted`: an entry the chain does not account for (between two entries, or after the head).
 * @example
 * ```ts
 * const result = verifyAuditChain(entries, head);
 * if (!result.ok) console.error(`${result.problem.kind} at #${result.problem.seq}: ${result.problem.message}`);
 * ```
 */
export function verifyAuditChain(entries: readonly AuditEntry[], head: AuditHead): AuditVerification {
  const n = entries.length;
  const orig = new Map<number, number | undefined>();
  const origOf = (i: number): number | undefined => {
    if (!orig.has(i)) orig.set(i, originalSeq(entries[i] as AuditEntry));
    return orig.get(i);
  };
  const placedElsewhere = (seq: number, notIndex: number): number | undefined => {
    // Is the entry that belongs at `seq` somewhere else in the log?
    for (let j = Math.max(0, notIndex - MOVE_WINDOW); j < Math.min(n, notIndex + MOVE_WINDOW + 1); j++) {
      if (j !== notIndex && origOf(j) === seq) return (entries[j] as AuditEntry).seq;
    }
    return undefined;
  };
  let expected = 1;
  let prevHash = GENESIS_HASH;
  for (let i = 0; i < n; i++) {
    const e = entries[i] as AuditEntry;
    if (e.seq > head.seq) {
      return problem(n, head, 'inserted', e.seq, `entry #${e.seq} comes after the head (#${head.seq}): it was added outside the store`);
    }
    if (e.seq !== expected) {
      if (e.seq < expected) return problem(n, head, 'inserted', e.seq, `entry #${e.seq} appears twice`);
      return problem(n, head, 'deleted', expected, `entr${e.seq - expected > 1 ? `ies #${expected}-#${e.seq - 1} are` : `y #${expected} is`} missing`);
    }
    const o = origOf(i);
    if (o === undefined) {
      // Content changed. If the next entry belongs here, this one was slipped in; else it was edited.
      if (i + 1 < n && origOf(i + 1) === e.seq) {
        return problem(n, head, 'inserted', e.seq, `entry #${e.seq} was inserted: the entries after it were renumbered`);
      }
      return problem(n, head, 'edited', e.seq, `entry #${e.seq} was modified: its content does not match its hash`);
    }
    if (o !== e.seq) {
      // The entry's hash is valid for another position. A uniform shift (the next entry moved by as much) means
      // entries were removed or added before it and the rest renumbered; anything else is a reordering.
      const offset = o - e.seq;
      const next = i + 1 < n ? origOf(i + 1) : undefined;
      const shifted =
        i + 1 < n ? next !== undefined && next - (entries[i + 1] as AuditEntry).seq === offset : placedElsewhere(e.seq, i) === undefined;
      if (!shifted) {
        return problem(n, head, 'reordered', e.seq, `entry #${o} was moved to position #${e.seq}: the log was reordered`);
      }
      if (offset > 0) {
        return problem(n, head, 'deleted', e.seq, `entr${offset > 1 ? `ies #${e.seq}-#${o - 1} were` : `y #${e.seq} was`} deleted and the rest renumbered`);
      }
      return problem(n, head, 'inserted', o, `entr${offset < -1 ? `ies #${o}-#${e.seq - 1} were` : `y #${o} was`} inserted: the entries after it were renumbered`);
    }
    if (e.prevHash !== prevHash) {
      if (i > 0) {
        return problem(n, head, 'edited', e.seq - 1, `entry #${e.seq - 1} was replaced: entry #${e.seq} names another predecessor`);
      }
      return problem(n, head, 'edited', e.seq, `entry #${e.seq} does not start the chain`);
    }
    prevHash = e.hash;
    expected++;
  }
  const last = expected - 1;
  if (last < head.seq) {
    return problem(n, head, 'deleted', last + 1, `entr${head.seq - last > 1 ? `ies #${last + 1}-#${head.seq} are` : `y #${head.seq} is`} missing from the end of the log`);
  }
  if (last > 0 && prevHash !== head.hash) {
    return problem(n, head, 'edited', last, `entry #${last} does not match the head: it was replaced`);
  }
  return { ok: true, entries: n, head };
}
