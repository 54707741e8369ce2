/**
 * Re-wrapping envelopes kept in the user's own tables: `rewrapEnvelopes` walks a table source (an id column and an
 * envelope column) and replaces each envelope's header with one whose data key is wrapped under the target; the body
 * bytes stay identical (no data is re-encrypted). Table sources for SQLite (better-sqlite3) and PostgreSQL (pg).
 *
 * Rules, and why they hold:
 * - An envelope already wrapped under exactly the target version is skipped by reading its header alone.
 * - `envelope.rewrap` proves the body decrypts before it re-commits a header; the new envelope is then opened with
 *   the target alone before it is written, so a row is only ever replaced by an envelope that opens.
 * - With `skipForeign`, an envelope none of whose wrapped keys belongs to the target's KEK or a `from` provider
 *   (a tenant envelope, another installation's) is counted as foreign and left alone instead of failing.
 * - Writes are compare-and-swap on the stored value (`WHERE id = ? AND envelope = <old>`): a row changed meanwhile
 *   by the application is left alone and counted as skipped.
 * @module
 */
import {
  createEnvelope,
  inspectEnvelope,
  wipe,
  type KeyProvider,
  type SecurityMode,
  assertKeyProvider,
} from '@keyfold/envelope-core';
import { kekName, type KekRef, type KeyStore } from '@keyfold/keystore';
import { envelopeStanding } from './envelope-check.js';
import { codeOf, mapLimit, targetOf, yieldToEventLoop, type RotationFailure } from './rotate.js';

/** A row of a table source. The envelope is binary (BLOB / bytea) or armored text (`kf1.`). */
export interface EnvelopeRow {
  readonly id: string | number;
  readonly envelope: Uint8Array | string;
}

/** One replacement: the row's id, the value read, and the new envelope (same representation). */
export interface EnvelopeReplacement {
  readonly id: string | number;
  readonly expected: Uint8Array | string;
  readonly next: Uint8Array | string;
}

/**
 * Where envelopes live. `list` pages by id; `replace` is compare-and-swap on the stored value.
 * @example
 * ```ts
 * const source: EnvelopeSource = sqliteTableSource({ db, table: 'documents', idColumn: 'id', envelopeColumn: 'body' });
 * ```
 */
export interface EnvelopeSource {
  /** For reports and audit entries (`sqlite:documents.body`). */
  readonly name: string;
  /** Rows with id greater than `after` (all when undefined), in id order, at most `limit`. */
  list(after: string | number | undefined, limit: number): Promise<EnvelopeRow[]>;
  /** Applies the replacements whose row still holds `expected`, atomically; returns the ids applied. */
  replace(replacements: readonly EnvelopeReplacement[]): Promise<(string | number)[]>;
  /**
   * The most rows `list` is asked for at once (a source of large items, such as whole files, sets it low);
   * `rewrapEnvelopes` and `checkEnvelopes` use the smaller of it and their `batchSize`. Default: no limit.
   */
  readonly batchLimit?: number;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function quoteIdent(name: unknown, what: string): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string`);
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw new TypeError(`${what} must be an SQL identifier (letters, digits, _; optionally schema.table); got ${JSON.stringify(name)}`);
  }
  return parts.map((p) => `"${p}"`).join('.');
}

function toValue(v: unknown): Uint8Array | string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) {
    const out = new Uint8Array(v.length);
    out.set(v);
    return out;
  }
  throw new TypeError('an envelope column must hold bytes or text');
}

function toParam(v: Uint8Array | string): Buffer | string {
  return typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** The few better-sqlite3 calls the SQLite source makes (a `Database` fits). */
export interface SqliteDatabaseLike {
  prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): { changes: number } };
  // better-sqlite3's transaction(fn) returns a function callable like fn.
  transaction(fn: (replacements: readonly EnvelopeReplacement[]) => (string | number)[]): (replacements: readonly EnvelopeReplacement[]) => (string | number)[];
}

/**
 * Options of {@link sqliteTableSource}.
 * @example
 * ```ts
 * const options: SqliteTableSourceOptions = { db, table: 'documents', idColumn: 'id', envelopeColumn: 'body' };
 * ```
 */
export interface SqliteTableSourceOptions {
  db: SqliteDatabaseLike;
  table: string;
  /** Default `id`. */
  idColumn?: string;
  /** Default `envelope`. */
  envelopeColumn?: string;
}

/**
 * A table in an SQLite database (better-sqlite3) as an {@link EnvelopeSource}.
 * @throws TypeError for identifiers that are not plain SQL names.
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * const source = sqliteTableSource({ db: new Database('app.db'), table: 'documents', envelopeColumn: 'body' });
 * ```
 */
export function sqliteTableSource(options: SqliteTableSourceOptions): EnvelopeSource {
  const t = quoteIdent(options.table, 'table');
  const id = quoteIdent(options.idColumn ?? 'id', 'idColumn');
  const col = quoteIdent(options.envelopeColumn ?? 'envelope', 'envelopeColumn');
  const { db } = options;
  const first = db.prepare(`SELECT ${id} AS id, ${col} AS env FROM ${t} WHERE ${col} IS NOT NULL ORDER BY ${id} LIMIT ?`);
  const next = db.prepare(`SELECT ${id} AS id, ${col} AS env FROM ${t} WHERE ${col} IS NOT NULL AND ${id} > ? ORDER BY ${id} LIMIT ?`);
  const upd = db.prepare(`UPDATE ${t} SET ${col} = ? WHERE ${id} = ? AND ${col} = ?`);
  const applyAll = db.transaction((rs: readonly EnvelopeReplacement[]) => {
    const applied: (string | number)[] = [];
    for (const r of rs) if (upd.run(toParam(r.next), r.id, toParam(r.expected)).changes === 1) applied.push(r.id);
    return applied;
  });
  return {
    name: `sqlite:${options.table}.${options.envelopeColumn ?? 'envelope'}`,
    list: (after, limit) => {
      const rows = (after === undefined ? first.all(limit) : next.all(after, limit)) as { id: string | number; env: unknown }[];
      return Promise.resolve(rows.map((r) => ({ id: r.id, envelope: toValue(r.env) })));
    },
    replace: (rs) => Promise.resolve(applyAll(rs)),
  };
}

/** The node-postgres call the PostgreSQL source makes (a `pg.Pool` or `pg.Client` fits). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * Options of {@link postgresTableSource}.
 * @example
 * ```ts
 * const options: PostgresTableSourceOptions = { db: pool, table: 'app.documents', envelopeColumn: 'body' };
 * ```
 */
export interface PostgresTableSourceOptions {
  db: PgQueryable;
  /** `table` or `schema.table`. */
  table: string;
  idColumn?: string;
  envelopeColumn?: string;
}

/**
 * A table in PostgreSQL as an {@link EnvelopeSource}. Replacements of one batch are applied by one statement.
 * @throws TypeError for identifiers that are not plain SQL names.
 * @example
 * ```ts
 * const source = postgresTableSource({ db: new pg.Pool({ connectionString }), table: 'documents', envelopeColumn: 'body' });
 * ```
 */
export function postgresTableSource(options: PostgresTableSourceOptions): EnvelopeSource {
  const t = quoteIdent(options.table, 'table');
  const id = quoteIdent(options.idColumn ?? 'id', 'idColumn');
  const col = quoteIdent(options.envelopeColumn ?? 'envelope', 'envelopeColumn');
  const { db } = options;
  return {
    name: `postgres:${options.table}.${options.envelopeColumn ?? 'envelope'}`,
    list: async (after, limit) => {
      const res =
        after === undefined
          ? await db.query(`SELECT ${id} AS id, ${col} AS env FROM ${t} WHERE ${col} IS NOT NULL ORDER BY ${id} LIMIT $1`, [limit])
          : await db.query(`SELECT ${id} AS id, ${col} AS env FROM ${t} WHERE ${col} IS NOT NULL AND ${id} > $1 ORDER BY ${id} LIMIT $2`, [after, limit]);
      return res.rows.map((r) => ({ id: r.id as string | number, envelope: toValue(r.env) }));
    },
    replace: async (rs) => {
      if (rs.length === 0) return [];
      const binary = typeof rs[0]?.next !== 'string';
      const type = binary ? 'bytea' : 'text';
      // Ids are compared as text so integer and text keys both work; the value comparison is the CAS.
      const res = await db.query(
        `UPDATE ${t} AS d SET ${col} = u.next FROM unnest($1::text[], $2::${type}[], $3::${type}[]) AS u(id, expected, next) ` +
          `WHERE d.${id}::text = u.id AND d.${col} = u.expected RETURNING d.${id} AS id`,
        [rs.map((r) => String(r.id)), rs.map((r) => toParam(r.expected)), rs.map((r) => toParam(r.next))],
      );
      return res.rows.map((r) => r.id as string | number);
    },
  };
}

/**
 * Options of {@link rewrapEnvelopes}.
 * @example
 * ```ts
 * const options: RewrapEnvelopesOptions = { source, to: provider, from: [oldProvider], batchSize: 200 };
 * ```
 */
export interface RewrapEnvelopesOptions {
  source: EnvelopeSource;
  /** The target: every envelope ends up with one wrapped key, under this provider's active version. */
  to: KeyProvider;
  /** Providers that can open the envelopes as they are now. Default `[to]`. */
  from?: readonly KeyProvider[];
  batchSize?: number;
  concurrency?: number;
  dryRun?: boolean;
  /**
   * Leave envelopes that no `from` provider (nor `to`) can open, judged from their header alone (tenant envelopes,
   * another KEK's), counting them in `foreign`, instead of listing them as failed. Default false.
   */
  skipForeign?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: { readonly scanned: number; readonly rewrapped: number; readonly failed: number; readonly elapsedMs: number }) => void;
  /** When given, one `envelope.rewrap` audit entry per batch goes to this store's log. */
  store?: KeyStore;
  actor?: string;
  /** Passed to the envelope (memory providers need `development`). */
  securityMode?: SecurityMode;
}

/**
 * What {@link rewrapEnvelopes} did. Failures carry the row id and the error code.
 * @example
 * ```ts
 * const { scanned, rewrapped, skipped, failed } = await rewrapEnvelopes({ source, to });
 * ```
 */
export interface RewrapEnvelopesReport {
  readonly source: string;
  readonly target: KekRef;
  readonly scanned: number;
  readonly rewrapped: number;
  readonly skipped: number;
  /** Envelopes left alone because `skipForeign` judged them foreign (always 0 without it). */
  readonly foreign: number;
  readonly failed: readonly (Omit<RotationFailure, 'id'> & { readonly id: string | number })[];
  readonly dryRun: boolean;
  readonly aborted: boolean;
  readonly durationMs: number;
}


/**
 * Re-wraps every envelope of `source` not yet wrapped under exactly `to`'s active version. Only headers change: the
 * body bytes of each envelope are identical before and after. Idempotent: a second run skips every row.
 * @returns the report; rows that failed (cannot be opened by `from`, malformed) are listed and left unchanged.
 * @throws source errors; TypeError / RangeError for bad options.
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import { rewrapEnvelopes, sqliteTableSource } from '@keyfold/rotation';
 *
 * const db = new Database('app.db');
 * const report = await rewrapEnvelopes({ source: sqliteTableSource({ db, table: 'documents', envelopeColumn: 'body' }), to: provider });
 * console.log(`${report.rewrapped} envelopes re-wrapped, ${report.skipped} already current`);
 * ```
 */
export async function rewrapEnvelopes(options: RewrapEnvelopesOptions): Promise<RewrapEnvelopesReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { source, to, signal, onProgress, store } = options;
  if (!source || typeof source.list !== 'function' || typeof source.replace !== 'function') throw new TypeError('source must be an EnvelopeSource');
  assertKeyProvider(to, 'to');
  const batchSize = options.batchSize ?? 500;
  const concurrency = options.concurrency ?? 16;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new RangeError('batchSize must be an integer from 1 to 10000');
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  const dryRun = options.dryRun ?? false;
  const batch = Math.min(batchSize, source.batchLimit ?? batchSize);
  const started = performance.now();
  const target = await targetOf(to);
  const policy = options.securityMode ? { securityMode: options.securityMode } : {};
  const reader = createEnvelope({ providers: options.from ?? [to], policy });
  const checker = createEnvelope({ providers: [to], policy });
  const owners = [to, ...(options.from ?? [])];
  let scanned = 0;
  let rewrapped = 0;
  let skipped = 0;
  let foreign = 0;
  let aborted = false;
  const failed: { id: string | number; code: string }[] = [];
  try {
    for (let after: string | number | undefined; ; ) {
      await yieldToEventLoop();
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const rows = await source.list(after, batch);
      if (rows.length === 0) break;
      scanned += rows.length;
      const replacements: EnvelopeReplacement[] = [];
      await mapLimit(rows, concurrency, async (row) => {
        try {
          const standing = envelopeStanding(inspectEnvelope(row.envelope), target, owners);
          if (standing === 'current') {
            skipped++;
            return;
          }
          if (standing === 'foreign' && options.skipForeign === true) {
            foreign++;
            return;
          }
          const next: Uint8Array | string =
            typeof row.envelope === 'string'
              ? await reader.rewrap(row.envelope, { to: [to] })
              : await reader.rewrap(row.envelope, { to: [to] });
          // Open the new envelope with the target alone before it replaces the row.
          wipe(await checker.open(next));
          if (dryRun) rewrapped++;
          else replacements.push({ id: row.id, expected: row.envelope, next });
        } catch (err) {
          failed.push({ id: row.id, code: codeOf(err) });
        }
      });
      if (!dryRun && replacements.length > 0) {
        const applied = await source.replace(replacements);
        rewrapped += applied.length;
        skipped += replacements.length - applied.length;
        if (store && applied.length > 0) {
          await store.appendAudit({
            actor: options.actor ?? 'rotation',
            event: 'envelope.rewrap',
            subject: source.name,
            details: { count: applied.length, first: String(applied[0]), last: String(applied[applied.length - 1]), target: kekName(target) },
          });
        }
      }
      after = (rows[rows.length - 1] as EnvelopeRow).id;
      onProgress?.({ scanned, rewrapped, failed: failed.length, elapsedMs: performance.now() - started });
      if (rows.length < batch) break;
    }
  } finally {
    await reader.close();
    await checker.close();
  }
  return { source: source.name, target, scanned, rewrapped, skipped, foreign, failed, dryRun, aborted, durationMs: performance.now() - started };
}
