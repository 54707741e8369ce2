/**
 * The audit log's hash chain and MAC chain: the canonical encoding of an entry, its SHA-256 hash, the MACs under
 * the installation's audit key ({@link AuditKey}), and the verification that names the first edited, deleted,
 * reordered, inserted or unreadable entry, or a truncated log. Shared by both stores and by backup/restore; the
 * stores only persist the columns.
 *
 * Security rule: each entry's hash covers its sequence number, time, actor, event, subject, details and the hash of
 * the entry before it, so changing, removing, moving or adding one entry breaks the chain at that point; the store
 * also keeps a head record (sequence number and hash of the newest entry), updated in the same transaction as each
 * append. A keyless writer can recompute every hash and move the head, so a keyed log also MACs every entry and
 * the head record (see `audit-key.ts`): only a holder of the KEK can produce those. What no check inside the store
 * can catch is a rollback of the log and its head record together to a copy taken earlier (the whole store put back
 * to an older state): anchor the head MAC elsewhere (`keyfold audit verify --json` prints it) to catch that too.
 * @module
 */
import { createHash } from 'node:crypto';
import { auditKeyNotOpen, macEqual, type AuditKey } from './audit-key.js';
import { IntegrityError } from './errors.js';
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

/** What an append needs from the head record: its fields, and the MAC of the newest entry. */
export interface AuditAppendState extends AuditHead {
  /** The `mac` of entry `seq` (undefined when it has none). */
  readonly entryMac: string | undefined;
}

/**
 * Builds the next entry after `state` and the head record that goes with it. On a keyed log (the head carries a
 * MAC) the entry and the head are MAC'd with `key`.
 * @throws PolicyError `POLICY_VIOLATION` when the log is keyed and `key` is undefined (nothing is written).
 */
export function nextAuditEntry(
  state: AuditAppendState,
  input: AuditInput,
  time: string,
  key: AuditKey | undefined,
  location: string,
): { entry: AuditEntry; head: AuditHead } {
  if (state.mac !== undefined && key === undefined) throw auditKeyNotOpen(location);
  const partial = {
    seq: state.seq + 1,
    time,
    actor: input.actor,
    event: input.event,
    subject: input.subject,
    details: input.details ?? {},
    prevHash: state.hash,
  };
  const hash = auditHash(partial);
  if (key === undefined) return { entry: { ...partial, hash }, head: { seq: partial.seq, hash } };
  const mac = key.entryMac({ seq: partial.seq, hash }, partial.seq === key.record.keyedFrom ? undefined : state.entryMac);
  return { entry: { ...partial, hash, mac }, head: { seq: partial.seq, hash, mac: key.headMac({ seq: partial.seq, hash }, mac) } };
}

/** A stored audit row as the drivers return it (SQLite and PostgreSQL use the same column names). */
export type AuditRow = Readonly<Record<string, unknown>>;

function unreadable(seq: unknown, what: string): IntegrityError {
  const n = typeof seq === 'number' || typeof seq === 'bigint' || typeof seq === 'string' ? String(seq) : '?';
  return new IntegrityError(`audit entry #${n} is unreadable: ${what}; the row was modified outside Keyfold (restore the store from a backup)`);
}

/**
 * Decodes a stored audit row, checking every column's type.
 * @throws IntegrityError `INTEGRITY_FAILED` naming the entry when a column does not decode (details that are not
 *   a JSON object, a missing or mistyped field).
 */
export function parseAuditRow(row: AuditRow): AuditEntry {
  const seq = Number(row.seq);
  if (!Number.isSafeInteger(seq) || seq < 1) throw unreadable(row.seq, 'its sequence number is not a positive integer');
  const text = (name: string): string => {
    const v = row[name];
    if (typeof v !== 'string') throw unreadable(seq, `its ${name} is not text`);
    return v;
  };
  let details: unknown;
  try {
    details = JSON.parse(text('details'));
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw unreadable(seq, 'its details are not JSON');
  }
  if (details === null || typeof details !== 'object' || Array.isArray(details)) throw unreadable(seq, 'its details are not a JSON object');
  const mac = row.mac;
  if (mac !== null && mac !== undefined && typeof mac !== 'string') throw unreadable(seq, 'its mac is not text');
  const entry: AuditEntry = {
    seq,
    time: text('time'),
    actor: text('actor'),
    event: text('event'),
    subject: text('subject'),
    details: details as AuditEntry['details'],
    prevHash: text('prev_hash'),
    hash: text('hash'),
  };
  return typeof mac === 'string' ? { ...entry, mac } : entry;
}

/** A stored head row as an {@link AuditHead}. */
export function parseHeadRow(row: AuditRow | undefined): AuditHead {
  if (!row) throw new IntegrityError('the audit head record is missing: the store was modified outside Keyfold');
  const seq = Number(row.seq);
  if (!Number.isSafeInteger(seq) || seq < 0 || typeof row.hash !== 'string') {
    throw new IntegrityError('the audit head record is damaged: the store was modified outside Keyfold');
  }
  return typeof row.mac === 'string' ? { seq, hash: row.hash, mac: row.mac } : { seq, hash: row.hash };
}

/**
 * Verifies stored rows (in `seq` order) against the head record: decodes each row (the first that does not decode
 * is reported as `unreadable`, unless an earlier entry is already bad), then {@link verifyAuditChain}, and with
 * `key` {@link verifyAuditMacs}.
 */
export function verifyAuditRows(rows: readonly AuditRow[], head: AuditHead, key: AuditKey | undefined): AuditVerification {
  const entries: AuditEntry[] = [];
  for (const row of rows) {
    try {
      entries.push(parseAuditRow(row));
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      const last = entries[entries.length - 1];
      const before = verifyAuditChain(entries, last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS_HASH });
      if (!before.ok) return { ...before, entries: rows.length, head, keyed: key !== undefined };
      const seq = Number(row.seq);
      return {
        ok: false,
        keyed: key !== undefined,
        entries: rows.length,
        head,
        problem: { kind: 'unreadable', seq: Number.isSafeInteger(seq) ? seq : (last?.seq ?? 0) + 1, message: err.message },
      };
    }
  }
  return key === undefined ? verifyAuditChain(entries, head) : verifyAuditMacs(entries, head, key);
}

/**
 * Verifies a keyed log with its audit key: the hash chain ({@link verifyAuditChain}), the MAC of every entry from
 * `keyedFrom` on (chained through the previous MAC), and the head record's MAC. Reports the problem with the lowest
 * sequence number (the hash chain's, which names the kind more precisely, on a tie); a head that fails its MAC while
 * everything before it holds is `truncated`, naming the first entry after it.
 */
export function verifyAuditMacs(entries: readonly AuditEntry[], head: AuditHead, key: AuditKey): AuditVerification {
  const { keyedFrom, installation } = key.record;
  const keyed = { keyed: true, keyedFrom, installation } as const;
  const chain = verifyAuditChain(entries, head);
  let macProblem: AuditVerification['problem'];
  let prevMac: string | undefined;
  let lastMac: string | undefined;
  for (const e of entries) {
    if (e.seq < keyedFrom) continue;
    const expected = key.entryMac(e, e.seq === keyedFrom ? undefined : prevMac);
    if (!macEqual(expected, e.mac)) {
      macProblem = {
        kind: e.mac === undefined ? 'inserted' : 'edited',
        seq: e.seq,
        message:
          e.mac === undefined
            ? `entry #${e.seq} carries no MAC although the log is keyed from #${keyedFrom}: it was written or rewritten without the audit key`
            : `entry #${e.seq} does not carry this installation's MAC: it was modified, moved, added or re-chained by someone without the audit key`,
      };
      break;
    }
    prevMac = expected;
    if (e.seq === head.seq) lastMac = expected;
  }
  const first = [chain.problem, macProblem].filter((p) => p !== undefined).sort((a, b) => a.seq - b.seq)[0];
  if (first) return { ok: false, ...keyed, entries: entries.length, head, problem: first };
  if (keyedFrom > head.seq + 1 || !macEqual(key.headMac(head, head.seq >= keyedFrom ? lastMac : undefined), head.mac)) {
    return {
      ok: false,
      ...keyed,
      entries: entries.length,
      head,
      problem: {
        kind: 'truncated',
        seq: head.seq + 1,
        message:
          `the head record (#${head.seq}) does not carry this installation's MAC: it was moved by someone without the audit key, ` +
          `so entries from #${head.seq + 1} on were probably deleted (the log was truncated)`,
      },
    };
  }
  return { ok: true, ...keyed, entries: entries.length, head };
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
  return { ok: false, keyed: false, entries, head, problem: { kind, seq, message } };
}

/**
 * Verifies a whole log's hash chain (entries in `seq` order, as stored) against the head pointer, without a key
 * (`keyed: false`: a writer who recomputes every hash and moves the head passes it), and names the first problem:
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
  return { ok: true, keyed: false, entries: n, head };
}
