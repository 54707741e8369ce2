/**
 * The dialect layer: what the one key store logic (`logic.ts`) needs from a SQL driver, and nothing more.
 *
 * SQL text convention: the logic writes every statement once, in the SQL both engines accept, with `?` placeholders
 * and unqualified `keyfold_*` table names. A dialect binds it its own way (PostgreSQL: `$n` placeholders and the
 * store's schema in front of every table). What the engines do differently is named here, not written twice:
 * - transactions: {@link Dialect.transaction} is one write transaction (SQLite `BEGIN IMMEDIATE`: the database's
 *   one write lock for the whole transaction; PostgreSQL `BEGIN` with row and table locks taken as it goes);
 * - locking: {@link Dialect.forUpdate} (appended to a `SELECT` that locks the rows it reads) and
 *   {@link Transaction.lockTables} (no-ops on SQLite, which already holds the write lock);
 * - the hot paths as operations, so each keeps its driver's fast form: {@link Transaction.insertDataKeys},
 *   {@link Transaction.rewrapDataKeys} and {@link Dialect.lease} (`FOR UPDATE SKIP LOCKED` on PostgreSQL);
 * - error mapping: every driver error leaves a dialect as a coded Keyfold error naming the store by its location.
 * @module
 */
import type { DataKeyState, KeyStoreBackend, RewrapUpdate } from '../types.js';

/** A result row, column name to value as the driver returns it (see `rows.ts` for the conversions). */
export type Row = Record<string, unknown>;

/** Statements that run one at a time: outside a transaction each is its own (auto-commit), inside one they share it. */
export interface SqlRunner {
  /** Every row of a `SELECT` (or a statement with `RETURNING`). */
  all(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** The first row, or `undefined`. */
  get(sql: string, params?: readonly unknown[]): Promise<Row | undefined>;
  /** A statement without result rows. @returns how many rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** PostgreSQL table lock modes the logic takes (SQLite's write lock already covers each of them). */
export type TableLock = 'share' | 'share row exclusive' | 'exclusive';

/** A `keyfold_data_keys` row to insert, every column given. */
export interface DataKeyRow {
  readonly id: string;
  readonly owner: string;
  readonly version: number;
  readonly state: DataKeyState;
  readonly kekKind: string | null;
  readonly kekKeyId: string | null;
  readonly kekVersion: string | null;
  readonly wrapped: Uint8Array | null;
  readonly keyCheck: Uint8Array | null;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** An open write transaction. Its statements see each other's changes; nothing is visible to others before commit. */
export interface Transaction extends SqlRunner {
  /** Locks whole tables (`keyfold_*` names) until the end of the transaction. */
  lockTables(tables: readonly string[], mode: TableLock): Promise<void>;
  /**
   * Inserts data key rows (SQLite: one prepared statement per row; PostgreSQL: `unnest` batches).
   * @throws DuplicateRowError when an id, or an owner + version, exists.
   */
  insertDataKeys(rows: readonly DataKeyRow[]): Promise<void>;
  /**
   * The compare-and-swap write of a re-wrap batch: each update applies only where the key's revision is still the
   * leased one and it was not destroyed, bumping the revision and setting `updated_at` to `time`.
   * @returns for each update (same order), whether it applied.
   */
  rewrapDataKeys(updates: readonly RewrapUpdate[], time: string): Promise<boolean[]>;
}

/** A batch of data key rows handed out for re-wrapping: see `RewrapLease`. */
export interface DialectLease {
  readonly rows: readonly Row[];
  /** Eligible ids in the lease's range passed over because another transaction locks them; `undefined` without row locks. */
  readonly locked: readonly string[] | undefined;
  /** Runs `fn` in the transaction that writes the batch, commits it and ends the lease. */
  commit<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Ends the lease without writing. Idempotent. */
  release(): Promise<void>;
}

/** One SQL engine under the key store logic. */
export interface Dialect extends SqlRunner {
  readonly backend: KeyStoreBackend;
  /** A file path, or a PostgreSQL URL without its password: the name every error message uses. */
  readonly location: string;
  /** Appended to a `SELECT` to lock the rows it reads until commit: `' FOR UPDATE'`, or `''` (SQLite). */
  readonly forUpdate: string;
  /** A condition on `id` taking the parameters `[count, index]`: the key's shard (a stable hash modulo count) is index. */
  readonly shardCondition: string;
  /**
   * Runs `fn` in one write transaction: committed when it resolves, rolled back when it throws.
   * @throws what `fn` throws; driver errors as coded errors.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs `fn` in a read-only transaction that sees one consistent snapshot. */
  snapshot<T>(fn: (reader: SqlRunner) => Promise<T>): Promise<T>;
  /**
   * Hands out up to `limit` data key rows matching `where` (a condition on `keyfold_data_keys` with its `params`),
   * in id order. PostgreSQL locks them (`FOR UPDATE SKIP LOCKED`) in a transaction the lease keeps open.
   */
  lease(where: string, params: readonly unknown[], limit: number): Promise<DialectLease>;
  /** Closes the connection (or the pool the store owns). Idempotent; later calls fail with `PROVIDER_CLOSED`. */
  close(): Promise<void>;
}

/** An insert hit an existing id or owner + version. `row` names it when the driver can tell which. */
export class DuplicateRowError extends Error {
  readonly row: DataKeyRow | undefined;
  constructor(row: DataKeyRow | undefined, cause: unknown) {
    super('duplicate data key row', { cause });
    this.name = 'DuplicateRowError';
    this.row = row;
  }
}
