/**
 * The SQLite dialect (better-sqlite3) under the key store logic.
 *
 * Rules, and why they hold:
 * - better-sqlite3 is synchronous and the store has one connection. A write transaction is `BEGIN IMMEDIATE` (the
 *   database's one write lock, taken up front, so it never fails half-way for a lock) and the logic awaits between
 *   its statements, so the dialect lets one transaction run at a time on the connection: a statement or transaction
 *   that arrives meanwhile waits until it ends, and never sees its uncommitted changes. With nothing running, a
 *   statement runs at once (the hot path pays no wait).
 * - Write transactions of every store open on the same file in this process also take turns (a gate per file): a
 *   second connection's `BEGIN IMMEDIATE` would otherwise wait for the write lock inside SQLite's busy handler,
 *   blocking the thread that has to finish the first transaction, until the busy timeout. Other processes wait in
 *   the busy handler as before (their thread is not the one holding the lock). Reads of other connections need no
 *   turn: in WAL mode they read the last committed state without waiting.
 * - Statements are prepared once and cached by their text (a bounded cache: filters make a few variants).
 * - A lease is a plain read: SQLite has no row locks, so the commit relies on compare-and-swap on the revision, in
 *   one `BEGIN IMMEDIATE` transaction with the checkpoint and the audit entry.
 * @module
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { closedError } from '../records.js';
import type { RewrapUpdate } from '../types.js';
import { DuplicateRowError, type DataKeyRow, type Dialect, type DialectLease, type Row, type SqlRunner, type Transaction } from './dialect.js';
import { buf } from './rows.js';
import { isConstraint, mapSqliteError } from './sqlite-errors.js';

type Db = Database.Database;

/** Prepared statements kept per connection. */
const STATEMENT_CACHE = 256;

/** The shard of a data key id: FNV-1a (32-bit) of its UTF-16 code units, modulo `count`. */
export function shardOf(id: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

const INSERT_DATA_KEY =
  'INSERT INTO keyfold_data_keys (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ' +
  'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

const REWRAP_DATA_KEY =
  'UPDATE keyfold_data_keys SET kek_kind = ?, kek_key_id = ?, kek_version = ?, wrapped = ?, revision = revision + 1, updated_at = ? ' +
  "WHERE id = ? AND revision = ? AND state <> 'destroyed'";

/** Where the write transactions of the stores open on one database file take turns. */
interface WriteGate {
  /** Set while one of them runs a write transaction; resolves when it ends. */
  turn: Promise<void> | undefined;
  /** Dialects open on the file. */
  users: number;
}

/** Write gates by file identity (device and inode: the same file under any path). */
const writeGates = new Map<string, WriteGate>();

function fileIdentity(path: string): string {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return `path:${path}`;
  }
}

/** A {@link Dialect} on one better-sqlite3 connection. */
export class SqliteDialect implements Dialect {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly forUpdate = '';
  readonly shardCondition = 'keyfold_shard(id, ?) = ?';
  #db: Db | undefined;
  readonly #stmts = new Map<string, Database.Statement>();
  /** Set while a transaction runs on this connection; resolves when it ends. */
  #busy: Promise<void> | undefined;
  readonly #gateKey: string;
  readonly #gate: WriteGate;
  readonly #tx: Transaction;
  /** A read-only connection: it never writes, not even the journal mode on close. */
  readonly #readOnly: boolean;

  constructor(db: Db, location: string, readOnly = false) {
    this.#db = db;
    this.location = location;
    this.#readOnly = readOnly;
    this.#gateKey = fileIdentity(location);
    let gate = writeGates.get(this.#gateKey);
    if (!gate) {
      gate = { turn: undefined, users: 0 };
      writeGates.set(this.#gateKey, gate);
    }
    gate.users++;
    this.#gate = gate;
    db.function('keyfold_shard', { deterministic: true }, (id: unknown, count: unknown) => shardOf(String(id), Number(count)));
    const stmt = (sql: string): Database.Statement => this.#stmt(sql);
    // Inside a transaction statements run at once (the transaction holds the connection); the transaction maps errors.
    this.#tx = {
      all: (sql, params = []) => settle(() => stmt(sql).all(...params) as Row[]),
      get: (sql, params = []) => settle(() => stmt(sql).get(...params) as Row | undefined),
      run: (sql, params = []) => settle(() => stmt(sql).run(...params).changes),
      // BEGIN IMMEDIATE already holds the database's one write lock: no table lock can add to it.
      lockTables: () => Promise.resolve(),
      insertDataKeys: (rows) => settle(() => insertRows(stmt(INSERT_DATA_KEY), rows)),
      rewrapDataKeys: (updates, time) => settle(() => rewrapRows(stmt(REWRAP_DATA_KEY), updates, time)),
    };
  }

  #conn(): Db {
    if (!this.#db) throw closedError(this.location);
    return this.#db;
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#conn().prepare(sql);
      if (this.#stmts.size >= STATEMENT_CACHE) this.#stmts.delete(this.#stmts.keys().next().value as string);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` on the connection when no transaction holds it, mapping SQLite errors. */
  #read<T>(fn: () => T): Promise<T> {
    if (this.#busy) return this.#idle().then(() => this.#read(fn));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(mapSqliteError(err, this.location));
    }
  }

  /** Resolves when no transaction runs. Callers re-check: another may have started before they resume. */
  async #idle(): Promise<void> {
    while (this.#busy) await this.#busy;
  }

  all(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.#read(() => this.#stmt(sql).all(...params) as Row[]);
  }

  get(sql: string, params: readonly unknown[] = []): Promise<Row | undefined> {
    return this.#read(() => this.#stmt(sql).get(...params) as Row | undefined);
  }

  /** A write statement: it takes the file's write turn like a transaction. */
  run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.transaction((tx) => tx.run(sql, params));
  }

  /**
   * Runs `fn` between `begin` and `COMMIT` (`ROLLBACK` when it throws), alone on the connection and, for a write
   * transaction, alone among the writers of the file in this process.
   */
  async #exclusive<T>(begin: string, write: boolean, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    // Check and claim in one synchronous step: no other transaction can start in between.
    const blocker = (): Promise<void> | undefined => this.#busy ?? (write ? this.#gate.turn : undefined);
    for (let wait = blocker(); wait; wait = blocker()) await wait;
    let done: () => void = () => undefined;
    const turn = new Promise<void>((resolve) => (done = resolve));
    this.#busy = turn;
    if (write) this.#gate.turn = turn;
    try {
      const db = this.#conn();
      this.#stmt(begin).run();
      try {
        const result = await fn(this.#tx);
        this.#stmt('COMMIT').run();
        return result;
      } catch (err) {
        if (db.open && db.inTransaction) {
          try {
            db.exec('ROLLBACK');
          } catch {
            // the connection is gone: SQLite rolled the transaction back itself
          }
        }
        throw err;
      }
    } catch (err) {
      throw mapSqliteError(err, this.location);
    } finally {
      this.#busy = undefined;
      if (this.#gate.turn === turn) this.#gate.turn = undefined;
      done();
    }
  }

  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#exclusive('BEGIN IMMEDIATE', true, fn);
  }

  snapshot<T>(fn: (reader: SqlRunner) => Promise<T>): Promise<T> {
    // A deferred transaction reads one snapshot of a WAL database and takes no write lock.
    return this.#exclusive('BEGIN DEFERRED', false, fn);
  }

  async lease(where: string, params: readonly unknown[], limit: number): Promise<DialectLease> {
    const rows = await this.all(`SELECT * FROM keyfold_data_keys WHERE ${where} ORDER BY id LIMIT ?`, [...params, limit]);
    return {
      rows,
      locked: undefined,
      commit: (fn) => this.transaction(fn),
      release: () => Promise.resolve(),
    };
  }

  /** Closes the connection once the running transaction (if any) has ended. */
  close(): Promise<void> {
    if (this.#busy) return this.#idle().then(() => this.close());
    const db = this.#db;
    if (!db) return Promise.resolve();
    this.#db = undefined;
    this.#stmts.clear();
    if (--this.#gate.users === 0) writeGates.delete(this.#gateKey);
    if (db.open) {
      if (!this.#readOnly) {
        // Back to a rollback journal (after a checkpoint), so the store can be read from a read-only directory.
        // Another connection still open makes this busy: then the last one to close does it.
        try {
          db.pragma('busy_timeout = 0');
          db.pragma('journal_mode = DELETE');
        } catch {
          // busy, or the disk refused: the store stays in WAL mode, which is as safe
        }
      }
      db.close();
    }
    return Promise.resolve();
  }
}

/** The result of a synchronous call as a promise (its exception as a rejection). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function insertRows(ins: Database.Statement, rows: readonly DataKeyRow[]): void {
  for (const r of rows) {
    try {
      ins.run(
        r.id,
        r.owner,
        r.version,
        r.state,
        r.kekKind,
        r.kekKeyId,
        r.kekVersion,
        r.wrapped ? buf(r.wrapped) : null,
        r.keyCheck ? buf(r.keyCheck) : null,
        r.revision,
        r.createdAt,
        r.updatedAt,
      );
    } catch (err) {
      if (isConstraint(err)) throw new DuplicateRowError(r, err);
      throw err;
    }
  }
}

function rewrapRows(upd: Database.Statement, updates: readonly RewrapUpdate[], time: string): boolean[] {
  return updates.map(
    (u) => upd.run(u.wrapped.kind, u.wrapped.keyId, u.wrapped.keyVersion, buf(u.wrapped.ciphertext), time, u.id, u.revision).changes === 1,
  );
}
