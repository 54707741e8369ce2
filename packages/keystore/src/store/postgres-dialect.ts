/**
 * The PostgreSQL dialect (node-postgres) under the key store logic.
 *
 * Concurrency rules, and why they hold:
 * - Every transaction runs on one pooled connection from `BEGIN` to `COMMIT` (`ROLLBACK` when anything fails); a
 *   connection that broke is discarded, not handed back to the pool.
 * - Row locks (`forUpdate`) and table locks (`lockTables`) are what serialise writers across processes; the logic
 *   takes the audit head's row lock last in every transaction, so no two transactions wait on each other in a cycle.
 * - A lease locks the rows it hands out with `FOR UPDATE SKIP LOCKED` inside a transaction it keeps open, so
 *   concurrent workers get disjoint batches; a worker that dies loses its connection, PostgreSQL rolls its
 *   transaction back and the rows become available again.
 * @module
 */
import type { RewrapUpdate } from '../types.js';
import { closedError } from '../records.js';
import { DuplicateRowError, type DataKeyRow, type Dialect, type DialectLease, type Row, type SqlRunner, type Transaction } from './dialect.js';
import { isConnectionError, mapPgError, pgCode } from './postgres-errors.js';
import { buf } from './rows.js';

/** The few node-postgres calls the store makes (a `pg.Pool` fits). */
export interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  end(): Promise<void>;
}

/** A checked-out connection (a `pg.PoolClient` fits). */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[]; rowCount: number | null }>;
  release(err?: Error | boolean): void;
}

/** Rows per `unnest` insert statement. */
const INSERT_CHUNK = 5000;

/** Translated statements kept (a bounded cache: filters make a few variants). */
const TEXT_CACHE = 256;

/** A {@link Dialect} on a node-postgres pool, with the store's tables in one schema. */
export class PostgresDialect implements Dialect {
  readonly backend = 'postgres' as const;
  readonly location: string;
  readonly forUpdate = ' FOR UPDATE';
  readonly shardCondition = 'mod(abs(hashtext(id)::bigint), ?) = ?';
  #pool: PgPoolLike | undefined;
  readonly #ownPool: boolean;
  readonly #schema: string;
  readonly #texts = new Map<string, string>();

  /** `schema` must already be a checked identifier (it is quoted, not escaped). */
  constructor(pool: PgPoolLike, ownPool: boolean, schema: string, location: string) {
    this.#pool = pool;
    this.#ownPool = ownPool;
    this.#schema = `"${schema}"`;
    this.location = location;
  }

  /** The statement as PostgreSQL takes it: `$n` placeholders, every `keyfold_*` table in the store's schema. */
  #text(sql: string): string {
    let text = this.#texts.get(sql);
    if (text === undefined) {
      let n = 0;
      text = sql.replace(/\?/g, () => `$${++n}`).replace(/\bkeyfold_[a-z0-9_]+/g, (t) => `${this.#schema}.${t}`);
      if (this.#texts.size >= TEXT_CACHE) this.#texts.delete(this.#texts.keys().next().value as string);
      this.#texts.set(sql, text);
    }
    return text;
  }

  async #client(): Promise<PgClientLike> {
    const pool = this.#pool;
    if (!pool) throw closedError(this.location);
    try {
      return await pool.connect();
    } catch (err) {
      throw mapPgError(err, this.location);
    }
  }

  async #query(c: PgClientLike, sql: string, params: readonly unknown[] = []): Promise<{ rows: Row[]; rowCount: number | null }> {
    return c.query(this.#text(sql), params as unknown[]);
  }

  /** One statement on a connection of its own (auto-commit). */
  async #once(sql: string, params: readonly unknown[] | undefined): Promise<{ rows: Row[]; rowCount: number | null }> {
    const c = await this.#client();
    let broken: unknown;
    try {
      return await this.#query(c, sql, params);
    } catch (err) {
      broken = err;
      throw mapPgError(err, this.location);
    } finally {
      c.release(isConnectionError(broken) ? (broken as Error) : undefined);
    }
  }

  async all(sql: string, params?: readonly unknown[]): Promise<Row[]> {
    return (await this.#once(sql, params)).rows;
  }

  async get(sql: string, params?: readonly unknown[]): Promise<Row | undefined> {
    return (await this.#once(sql, params)).rows[0];
  }

  async run(sql: string, params?: readonly unknown[]): Promise<number> {
    return (await this.#once(sql, params)).rowCount ?? 0;
  }

  /** The statements of a transaction open on `c`. */
  #transactionOn(c: PgClientLike): Transaction {
    return {
      all: async (sql, params) => (await this.#query(c, sql, params)).rows,
      get: async (sql, params) => (await this.#query(c, sql, params)).rows[0],
      run: async (sql, params) => (await this.#query(c, sql, params)).rowCount ?? 0,
      lockTables: async (tables, mode) => {
        await c.query(`LOCK TABLE ${tables.map((t) => this.#text(t)).join(', ')} IN ${mode.toUpperCase()} MODE`);
      },
      insertDataKeys: (rows) => this.#insertDataKeys(c, rows),
      rewrapDataKeys: (updates, time) => this.#rewrapDataKeys(c, updates, time),
    };
  }

  /** Runs `fn` in the transaction open on `c`, commits, and hands `c` back (or discards it when it broke). */
  async #finish<T>(c: PgClientLike, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    let broken: unknown;
    try {
      const result = await fn(this.#transactionOn(c));
      await c.query('COMMIT');
      return result;
    } catch (err) {
      broken = err;
      await c.query('ROLLBACK').catch(() => undefined);
      throw mapPgError(err, this.location);
    } finally {
      c.release(isConnectionError(broken) ? (broken as Error) : undefined);
    }
  }

  async #begin(c: PgClientLike, begin: string): Promise<void> {
    try {
      await c.query(begin);
    } catch (err) {
      c.release(isConnectionError(err) ? (err as Error) : undefined);
      throw mapPgError(err, this.location);
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const c = await this.#client();
    await this.#begin(c, 'BEGIN');
    return this.#finish(c, fn);
  }

  async snapshot<T>(fn: (reader: SqlRunner) => Promise<T>): Promise<T> {
    const c = await this.#client();
    // A repeatable-read snapshot: every statement sees the database as of the first one.
    await this.#begin(c, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return this.#finish(c, fn);
  }

  async lease(where: string, params: readonly unknown[], limit: number): Promise<DialectLease> {
    const c = await this.#client();
    let rows: Row[];
    let locked: string[];
    try {
      await c.query('BEGIN');
      rows = (await this.#query(c, `SELECT * FROM keyfold_data_keys WHERE ${where} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, [...params, limit])).rows;
      // SKIP LOCKED passes over rows another transaction holds (another worker's batch, an application's
      // SELECT ... FOR UPDATE). Name the eligible ones in this lease's id range that it passed over, so the caller
      // can come back for them instead of taking "no more keys" for "every key done". The range ends at the last id
      // handed out when the batch is full, and is open when it is not (nothing unlocked is left after the cursor).
      // A count over the same range first: with one worker and no foreign locks (the usual case) it equals the
      // batch and the id list is not needed. The list query excludes the batch with a hashed anti-join
      // (NOT IN over a subquery), not `<> ALL(array)`, which compares every row with every id of the batch.
      const ids = rows.map((r) => r.id as string);
      const full = rows.length === limit;
      const range = full ? `${where} AND id <= ?` : where;
      const rangeParams = full ? [...params, ids[ids.length - 1]] : params;
      const inRange = Number((await this.#query(c, `SELECT count(*) AS n FROM keyfold_data_keys WHERE ${range}`, rangeParams)).rows[0]?.n ?? 0);
      locked =
        inRange <= rows.length
          ? []
          : (await this.#query(c, `SELECT id FROM keyfold_data_keys WHERE ${range} AND id NOT IN (SELECT unnest(?::text[])) ORDER BY id`, [
              ...rangeParams,
              ids,
            ])).rows.map((r) => r.id as string);
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release(isConnectionError(err) ? (err as Error) : undefined);
      throw mapPgError(err, this.location);
    }
    let open = true;
    return {
      rows,
      locked,
      commit: (fn) => {
        open = false;
        return this.#finish(c, fn);
      },
      release: async () => {
        if (!open) return;
        open = false;
        try {
          await c.query('ROLLBACK');
          c.release();
        } catch (err) {
          c.release(err as Error);
        }
      },
    };
  }

  async #insertDataKeys(c: PgClientLike, rows: readonly DataKeyRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      try {
        await this.#query(
          c,
          'INSERT INTO keyfold_data_keys (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ' +
            'SELECT * FROM unnest(?::text[], ?::text[], ?::int[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bytea[], ?::bytea[], ?::bigint[], ?::text[], ?::text[])',
          [
            chunk.map((r) => r.id),
            chunk.map((r) => r.owner),
            chunk.map((r) => r.version),
            chunk.map((r) => r.state),
            chunk.map((r) => r.kekKind),
            chunk.map((r) => r.kekKeyId),
            chunk.map((r) => r.kekVersion),
            chunk.map((r) => (r.wrapped ? buf(r.wrapped) : null)),
            chunk.map((r) => (r.keyCheck ? buf(r.keyCheck) : null)),
            chunk.map((r) => r.revision),
            chunk.map((r) => r.createdAt),
            chunk.map((r) => r.updatedAt),
          ],
        );
      } catch (err) {
        // One statement inserts the whole chunk: the server does not say which row it refused.
        if (pgCode(err) === '23505') throw new DuplicateRowError(undefined, err);
        throw err;
      }
    }
  }

  async #rewrapDataKeys(c: PgClientLike, updates: readonly RewrapUpdate[], time: string): Promise<boolean[]> {
    if (updates.length === 0) return [];
    const res = await this.#query(
      c,
      'UPDATE keyfold_data_keys AS d SET kek_kind = u.kind, kek_key_id = u.key_id, kek_version = u.kv, wrapped = u.ct, ' +
        'revision = d.revision + 1, updated_at = ? ' +
        'FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::bytea[]) AS u(id, rev, kind, key_id, kv, ct) ' +
        "WHERE d.id = u.id AND d.revision = u.rev AND d.state <> 'destroyed' RETURNING d.id",
      [
        time,
        updates.map((u) => u.id),
        updates.map((u) => u.revision),
        updates.map((u) => u.wrapped.kind),
        updates.map((u) => u.wrapped.keyId),
        updates.map((u) => u.wrapped.keyVersion),
        updates.map((u) => buf(u.wrapped.ciphertext)),
      ],
    );
    const done = new Set(res.rows.map((r) => r.id as string));
    return updates.map((u) => done.has(u.id));
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool && this.#ownPool) await pool.end();
  }
}
