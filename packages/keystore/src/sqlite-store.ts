/**
 * `SqliteKeyStore`: the embedded default. One file (mode 0600, WAL journal), opened with better-sqlite3. This file
 * opens and inspects the file; the store's methods are the one key store logic (`store/logic.ts`) on the SQLite
 * dialect (`store/sqlite-dialect.ts`).
 *
 * Security rules, and why they hold:
 * - The file is created with mode 0600 before SQLite opens it (SQLite gives its `-wal` / `-shm` files the same
 *   mode); in production a file, `-wal` or `-shm` readable by group or other is refused (core `assertPrivatePath`).
 * - A store is first inspected through a read-only connection: a damaged file (`INTEGRITY_FAILED`), a file that
 *   is not a Keyfold store, or one with a newer schema (`FORMAT_UNSUPPORTED`) is refused before any write, so it
 *   is never modified. Only then is it opened for writing (WAL, `synchronous=FULL`) and migrated.
 * - Every change is one `BEGIN IMMEDIATE` transaction, so a killed process leaves either all of it or none.
 * @module
 */
import { closeSync, existsSync, openSync, readSync, statSync, unlinkSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError, assertPrivatePath, resolveSecurityMode, type SecurityMode } from '@keyfold/envelope-core';
import { IntegrityError } from './errors.js';
import { now } from './records.js';
import { SQLITE_APPLICATION_ID, assertKnownSchema, pendingMigrations } from './schema.js';
import { SqlKeyStore } from './store/logic.js';
import { SqliteDialect } from './store/sqlite-dialect.js';
import { mapSqliteError } from './store/sqlite-errors.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/**
 * Options of {@link openSqliteKeyStore}.
 * @example
 * ```ts
 * const options: SqliteKeyStoreOptions = { path: './.keyfold/store.db', securityMode: 'production' };
 * ```
 */
export interface SqliteKeyStoreOptions {
  /** The store file. Its directory must exist. */
  path: string;
  /** Create the store when the file does not exist. Default true. */
  create?: boolean;
  /** `production` (default, or `KEYFOLD_SECURITY_MODE`) refuses a store file readable by group or other. */
  securityMode?: SecurityMode;
  /** `PRAGMA synchronous`: `full` (default: a commit survives power loss) or `normal` (survives a process crash). */
  synchronous?: 'full' | 'normal';
  /** How long to wait for another process's write lock, in ms. Default 10,000. */
  busyTimeoutMs?: number;
  /** Run `PRAGMA quick_check` on open (cost grows with the store). Default true. */
  integrityCheck?: boolean;
}

/**
 * A {@link KeyStore} in one SQLite file: the one key store logic on the SQLite dialect. Create it with
 * {@link openSqliteKeyStore}. Methods throw as {@link KeyStore} documents; a damaged file surfaces as
 * `INTEGRITY_FAILED` from any method.
 * @example
 * ```ts
 * const store = await openSqliteKeyStore({ path: './.keyfold/store.db' });
 * console.log(await store.getInstallLock());
 * await store.close();
 * ```
 */
export class SqliteKeyStore extends SqlKeyStore {
  readonly backend = 'sqlite' as const;

  /** @internal Use {@link openSqliteKeyStore}. */
  constructor(db: Db, location: string) {
    super(new SqliteDialect(db, location));
  }
}

/** Permission check of the store file and its WAL companions. */
function assertPrivateStoreFiles(path: string, securityMode: SecurityMode): void {
  assertPrivatePath(path, { what: 'key store file', type: 'file', securityMode });
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(path + suffix)) assertPrivatePath(path + suffix, { what: 'key store file', type: 'file', securityMode });
  }
}

const SQLITE_MAGIC = 'SQLite format 3\u0000';

/**
 * Reads the 100-byte SQLite header directly (no SQLite connection, so no `-wal` / `-shm` file is created):
 * refuses a file that is not an SQLite database, a foreign database, and a newer schema.
 */
function inspectHeader(path: string): void {
  const size = statSync(path).size;
  if (size === 0) return;
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (read < 100 || header.toString('latin1', 0, 16) !== SQLITE_MAGIC) {
    throw new IntegrityError(
      `the key store ${path} is damaged: it is not an SQLite database any more; restore it from a backup (keyfold restore). Nothing was written.`,
    );
  }
  const version = header.readUInt32BE(60);
  const appId = header.readUInt32BE(68);
  if (appId !== SQLITE_APPLICATION_ID && appId !== 0) {
    throw new ConfigError(`${path} is an SQLite database but not a Keyfold key store; choose another path. It was not modified.`);
  }
  assertKnownSchema(version, path);
}

/** Inspects an existing file read-only: refuses a damaged, foreign or newer store without writing to it. */
function inspectReadOnly(path: string, integrityCheck: boolean): void {
  inspectHeader(path);
  // A read-only connection to a WAL database creates -wal / -shm files; remove the ones it created if we refuse.
  const created = ['-wal', '-shm'].filter((suffix) => !existsSync(path + suffix));
  let db: Db | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const version = Number(db.pragma('user_version', { simple: true }));
    const appId = Number(db.pragma('application_id', { simple: true }));
    const tables = Number((db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as Row).n);
    if (appId !== SQLITE_APPLICATION_ID && (tables > 0 || version !== 0)) {
      throw new ConfigError(`${path} is an SQLite database but not a Keyfold key store; choose another path. It was not modified.`);
    }
    assertKnownSchema(version, path);
    if (integrityCheck && tables > 0) {
      const result = db.pragma('quick_check', { simple: true });
      if (result !== 'ok') {
        throw new IntegrityError(`the key store ${path} is damaged (quick_check: ${String(result)}); restore it from a backup. Nothing was written.`);
      }
    }
  } catch (err) {
    db?.close();
    db = undefined;
    for (const suffix of created) {
      try {
        if (suffix === '-shm' || statSync(path + suffix).size === 0) unlinkSync(path + suffix);
      } catch {
        // already gone
      }
    }
    throw mapSqliteError(err, path);
  } finally {
    db?.close();
  }
}

/**
 * Opens (creating it when missing) the SQLite key store at `options.path`, applying schema migrations.
 *
 * @throws PolicyError `INSECURE_PERMISSIONS` in production when the file (or its `-wal` / `-shm`) is readable by
 *   group or other; IntegrityError `INTEGRITY_FAILED` for a damaged file; UnsupportedFormatError
 *   `FORMAT_UNSUPPORTED` for a store written by a newer schema; ConfigError `CONFIG_INVALID` when the file is
 *   missing (with `create: false`), is not a Keyfold store, or cannot be written. In each case nothing is written.
 * @example
 * ```ts
 * import { openSqliteKeyStore } from '@keyfold/keystore';
 *
 * const store = await openSqliteKeyStore({ path: './.keyfold/store.db' });
 * await store.ensureInstallLock(provider);
 * await store.close();
 * ```
 */
export function openSqliteKeyStore(options: SqliteKeyStoreOptions): Promise<SqliteKeyStore> {
  try {
    return Promise.resolve(openSync_(options));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function openSync_(options: SqliteKeyStoreOptions): SqliteKeyStore {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { path } = options;
  if (typeof path !== 'string' || path === '' || path === ':memory:') throw new TypeError('path must be the path of the store file');
  const securityMode = resolveSecurityMode(options.securityMode);
  const create = options.create ?? true;
  const busy = options.busyTimeoutMs ?? 10_000;
  if (!Number.isSafeInteger(busy) || busy < 0) throw new RangeError('busyTimeoutMs must be a non-negative integer');
  const sync = options.synchronous ?? 'full';
  if (sync !== 'full' && sync !== 'normal') throw new TypeError('synchronous must be "full" or "normal"');

  if (!existsSync(path)) {
    if (!create) throw new ConfigError(`the key store ${path} does not exist (run keyfold init)`);
    try {
      // Created 0600 before SQLite touches it; SQLite gives its -wal / -shm files the same mode.
      closeSync(openSync(path, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ConfigError(`the key store ${path} cannot be created: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
      }
    }
  }
  assertPrivateStoreFiles(path, securityMode);
  inspectReadOnly(path, options.integrityCheck ?? true);

  let db: Db | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: busy });
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sync.toUpperCase()}`);
    // A page cache large enough for a million keys' index pages keeps rotation from re-reading them from disk.
    db.pragma('cache_size = -65536');
    const conn = db;
    conn
      .transaction(() => {
        // Re-read under the write lock: another process may have migrated meanwhile.
        const version = Number(conn.pragma('user_version', { simple: true }));
        assertKnownSchema(version, path);
        for (const m of pendingMigrations(version)) {
          for (const stmt of m.sqlite) conn.exec(stmt);
          conn.pragma(`user_version = ${m.version}`);
        }
        if (version === 0) {
          conn.pragma(`application_id = ${SQLITE_APPLICATION_ID}`);
          const t = now();
          conn.prepare('INSERT INTO keyfold_meta (key, value) VALUES (?, ?)').run('created_at', t);
        }
      })
      .immediate();
    assertPrivateStoreFiles(path, securityMode);
    return new SqliteKeyStore(db, path);
  } catch (err) {
    db?.close();
    throw mapSqliteError(err, path);
  }
}
