/**
 * `SqliteKeyStore`: the embedded default. One file (mode 0600, WAL journal while open), opened with better-sqlite3.
 * This file opens and inspects the file; the store's methods are the one key store logic (`store/logic.ts`) on the
 * SQLite dialect (`store/sqlite-dialect.ts`).
 *
 * Security rules, and why they hold:
 * - Only `create: true` creates a store, and only where no file exists (an exclusive create, mode 0600, before
 *   SQLite opens it; SQLite gives its `-wal` / `-shm` files the same mode). An existing file is never re-created:
 *   in production a file, `-wal` or `-shm` readable by group or other is refused (core `assertPrivatePath`).
 * - An existing file is first inspected by reading its header (no SQLite connection, so no side file) and then
 *   through a read-only connection: an empty, truncated, damaged or foreign file, or one without the Keyfold tables
 *   (`INTEGRITY_FAILED`), or one with a newer schema (`FORMAT_UNSUPPORTED`) is refused before any write, so it is
 *   never modified. Only then is it opened for writing (WAL, `synchronous=FULL`) and migrated.
 * - `readOnly` keeps that read-only connection and never writes (no migration). The last writer to close a store
 *   checkpoints it back to a rollback journal, because a WAL database cannot be read from a read-only directory
 *   (its `-shm` file cannot be created there) and `immutable` reads are unsafe while another process may write.
 * - Every change is one `BEGIN IMMEDIATE` transaction, so a killed process leaves either all of it or none.
 * @module
 */
import { closeSync, existsSync, openSync, readSync, rmSync, statSync, unlinkSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError, KeyfoldError, assertPrivatePath, resolveSecurityMode, type SecurityMode } from '@keyfold/envelope-core';
import { IntegrityError, StoreUpgradeRequiredError } from './errors.js';
import { now } from './records.js';
import { SCHEMA_VERSION, SQLITE_APPLICATION_ID, assertKnownSchema, pendingMigrations } from './schema.js';
import { SqlKeyStore } from './store/logic.js';
import { SqliteDialect } from './store/sqlite-dialect.js';
import { mapSqliteError, readOnlyStore, sqliteCode } from './store/sqlite-errors.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/**
 * Options of {@link openSqliteKeyStore}.
 * @example
 * ```ts
 * const options: SqliteKeyStoreOptions = { path: './.keyfold/store.db', create: true, securityMode: 'production' };
 * ```
 */
export interface SqliteKeyStoreOptions {
  /** The store file. Its directory must exist. */
  path: string;
  /**
   * Create a new store when no file exists at `path`. Default false: a missing file is refused. An existing file
   * is never re-created, whatever this says: it must be a Keyfold store.
   */
  create?: boolean;
  /**
   * Open for reading only: nothing is ever written (no migration, no journal change), so a store in a read-only
   * directory or file can be read; every write method fails with `CONFIG_INVALID`. Default false.
   */
  readOnly?: boolean;
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
  /** Opened with `readOnly`: every write fails with `CONFIG_INVALID`. */
  readonly readOnly: boolean;

  /** @internal Use {@link openSqliteKeyStore}. */
  constructor(db: Db, location: string, readOnly: boolean) {
    super(new SqliteDialect(db, location, readOnly));
    this.readOnly = readOnly;
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

/** The tables every Keyfold store has had since schema version 1: a file without one of them is not a Keyfold store. */
const REQUIRED_TABLES = [
  'keyfold_meta',
  'keyfold_install_lock',
  'keyfold_kek_versions',
  'keyfold_data_keys',
  'keyfold_checkpoints',
  'keyfold_audit',
  'keyfold_audit_head',
] as const;

/** The refusal of an existing file that is not a whole Keyfold store (it is never re-created or repaired). */
function notAStore(path: string, what: string, cause?: unknown): IntegrityError {
  return new IntegrityError(
    `the key store ${path} ${what}: it is not a usable Keyfold key store; restore it from a backup (keyfold restore) ` +
      'or move it away. Nothing was written.',
    cause === undefined ? {} : { cause },
  );
}

/**
 * Reads the 100-byte SQLite header directly (no SQLite connection, so no `-wal` / `-shm` file is created) and
 * refuses, before anything else touches the file: an empty file, a file that is not an SQLite database, an SQLite
 * database of another application (a Keyfold store carries its `application_id` from the transaction that creates
 * it), a newer schema, and a file shorter than its own header says (truncated).
 * @returns whether the file is in WAL mode.
 */
function inspectHeader(path: string): { wal: boolean } {
  const size = statSync(path).size;
  if (size === 0) throw notAStore(path, 'is empty (0 bytes)');
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (read < 100 || header.toString('latin1', 0, 16) !== SQLITE_MAGIC) {
    throw notAStore(path, 'is not an SQLite database (damaged, or another kind of file)');
  }
  // Pages not yet checkpointed live in the -wal file. While another connection has such pages (a store just created
  // or migrated by a process that still has it open), the header on disk may predate them: application_id and
  // user_version are then checked through the read-only connection instead (openChecked), which sees the WAL.
  const walPending = existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0;
  if (!walPending) {
    if (header.readUInt32BE(68) !== SQLITE_APPLICATION_ID) {
      throw notAStore(path, 'is an SQLite database of another application');
    }
    const version = header.readUInt32BE(60);
    assertKnownSchema(version, path);
    if (version === 0) throw notAStore(path, 'records no Keyfold schema');
  }
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) throw notAStore(path, 'has a damaged header');
  // Without pending WAL pages the file must hold every page its header counts.
  if (!walPending) {
    const pages = header.readUInt32BE(28);
    const sizeValid = pages > 0 && header.readUInt32BE(92) === header.readUInt32BE(24);
    if (size % pageSize !== 0 || (sizeValid && pages * pageSize > size)) {
      throw notAStore(path, `is truncated (${size} bytes${sizeValid ? ` of ${pages * pageSize}` : ''})`);
    }
  }
  return { wal: header[18] === 2 || header[19] === 2 };
}

/**
 * Opens an existing file through a read-only connection and checks it is a whole Keyfold store: every Keyfold
 * table is there and (when `integrityCheck`) SQLite's `quick_check` passes. Returns that connection.
 * A read-only connection to a WAL database in a writable directory creates `-wal` / `-shm` files: on refusal the
 * ones it created are removed, so a refused file is left exactly as it was found.
 */
function openChecked(path: string, wal: boolean, integrityCheck: boolean, busy: number): Db {
  const created = ['-wal', '-shm'].filter((suffix) => !existsSync(path + suffix));
  let db: Db | undefined;
  try {
    let tables: Set<string>;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true, timeout: busy });
      tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Row[]).map((r) => String(r.name)));
    } catch (err) {
      if (wal && sqliteCode(err)?.startsWith('SQLITE_CANTOPEN') === true && !existsSync(`${path}-shm`)) {
        // A WAL database needs its -shm file, which a read-only directory cannot hold; reading it anyway
        // (`immutable`) would be unsafe while another process may write it through a writable path.
        throw new ConfigError(
          `the key store ${path} was left in WAL mode and its directory cannot be written, so SQLite cannot read it ` +
            'safely here: run any keyfold command on it once where its directory is writable (that leaves it readable ' +
            'from read-only directories), then retry. Nothing was written.',
          { cause: err },
        );
      }
      throw err;
    }
    // Through the connection (the WAL applied): the header on disk may predate pages another connection wrote.
    if (Number(db.pragma('application_id', { simple: true })) !== SQLITE_APPLICATION_ID) {
      throw notAStore(path, 'is an SQLite database of another application');
    }
    const version = Number(db.pragma('user_version', { simple: true }));
    assertKnownSchema(version, path);
    if (version === 0) throw notAStore(path, 'records no Keyfold schema');
    const missing = REQUIRED_TABLES.filter((t) => !tables.has(t));
    if (missing.length > 0) throw notAStore(path, `lacks the tables ${missing.join(', ')}`);
    if (integrityCheck) {
      const result = db.pragma('quick_check', { simple: true });
      if (result !== 'ok') throw notAStore(path, `is damaged (quick_check: ${String(result)})`);
    }
    return db;
  } catch (err) {
    db?.close();
    for (const suffix of created) {
      try {
        if (suffix === '-shm' || statSync(path + suffix).size === 0) unlinkSync(path + suffix);
      } catch {
        // already gone
      }
    }
    throw mapSqliteError(err, path);
  }
}

/**
 * Opens the SQLite key store at `options.path`, applying schema migrations (none with `readOnly`).
 *
 * Only `create: true` creates a store, and only where no file exists: an existing file is always inspected first
 * and must be a whole Keyfold store (empty, truncated, damaged or foreign files are refused and never re-created).
 *
 * @throws PolicyError `INSECURE_PERMISSIONS` in production when the file (or its `-wal` / `-shm`) is readable by
 *   group or other; IntegrityError `INTEGRITY_FAILED` for a file that is empty, truncated, damaged, not an SQLite
 *   database, the SQLite database of another application, or lacks the Keyfold tables; UnsupportedFormatError
 *   `FORMAT_UNSUPPORTED` for a store written by a newer schema ({@link StoreUpgradeRequiredError} for an older one
 *   with `readOnly`); ConfigError `CONFIG_INVALID` when the file is missing (without `create`) or cannot be written
 *   (without `readOnly`). In each case nothing is written.
 * @example
 * ```ts
 * import { openSqliteKeyStore } from '@keyfold/keystore';
 *
 * const store = await openSqliteKeyStore({ path: './.keyfold/store.db', create: true });
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
  const create = options.create ?? false;
  const readOnly = options.readOnly ?? false;
  if (typeof create !== 'boolean') throw new TypeError('create must be a boolean');
  if (typeof readOnly !== 'boolean') throw new TypeError('readOnly must be a boolean');
  if (create && readOnly) throw new TypeError('create and readOnly exclude each other');
  const busy = options.busyTimeoutMs ?? 10_000;
  if (!Number.isSafeInteger(busy) || busy < 0) throw new RangeError('busyTimeoutMs must be a non-negative integer');
  const sync = options.synchronous ?? 'full';
  if (sync !== 'full' && sync !== 'normal') throw new TypeError('synchronous must be "full" or "normal"');
  const integrityCheck = options.integrityCheck ?? true;

  // Side files that exist before this call: a store this call creates and then fails to set up is removed with
  // the side files it made, never with ones it found.
  const preexisting = ['-wal', '-shm', '-journal'].filter((suffix) => existsSync(path + suffix));
  let fresh = false;
  if (!existsSync(path)) {
    if (!create) {
      throw new ConfigError(`the key store ${path} does not exist (only a new installation creates one: keyfold init, or create: true)`);
    }
    // A -wal or -journal left by an earlier store at this path would be replayed into the new one by SQLite.
    const leftover = preexisting.find((suffix) => suffix !== '-shm');
    if (leftover !== undefined) {
      throw new KeyfoldError(
        'ALREADY_EXISTS',
        `the key store ${path} does not exist but ${path}${leftover} does (left by an earlier store): SQLite would apply it to a ` +
          'new store; move it away first. Nothing was written.',
      );
    }
    try {
      // Created 0600 before SQLite touches it; SQLite gives its -wal / -shm files the same mode.
      closeSync(openSync(path, 'wx', 0o600));
      fresh = true;
    } catch (err) {
      // EEXIST: another process created it meanwhile, so it is an existing file like any other.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ConfigError(`the key store ${path} cannot be created: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
      }
    }
  }
  try {
    assertPrivateStoreFiles(path, securityMode);
    if (!fresh) {
      const { wal } = inspectHeader(path);
      const checked = openChecked(path, wal, integrityCheck, busy);
      if (!readOnly) {
        checked.close();
      } else {
        try {
          const version = Number(checked.pragma('user_version', { simple: true }));
          if (version < SCHEMA_VERSION) throw new StoreUpgradeRequiredError(path, version);
          return new SqliteKeyStore(checked, path, true);
        } catch (err) {
          checked.close();
          throw err;
        }
      }
    }
    return openWritable(path, fresh, sync, busy, securityMode);
  } catch (err) {
    if (fresh) {
      for (const suffix of ['', '-wal', '-shm', '-journal']) {
        if (!preexisting.includes(suffix)) rmSync(path + suffix, { force: true });
      }
    }
    throw err;
  }
}

/** The read-write connection: WAL journal, migrations applied in one `BEGIN IMMEDIATE` transaction. */
function openWritable(path: string, fresh: boolean, sync: 'full' | 'normal', busy: number, securityMode: SecurityMode): SqliteKeyStore {
  let db: Db | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: busy });
    // SQLite keeps the old journal mode, without an error, when it cannot write the file.
    if (String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase() !== 'wal') throw readOnlyStore(path);
    db.pragma(`synchronous = ${sync.toUpperCase()}`);
    // A page cache large enough for a million keys' index pages keeps rotation from re-reading them from disk.
    db.pragma('cache_size = -65536');
    const conn = db;
    conn
      .transaction(() => {
        // Re-read under the write lock: another process may have migrated meanwhile.
        const version = Number(conn.pragma('user_version', { simple: true }));
        assertKnownSchema(version, path);
        if (version === 0 && !fresh) throw notAStore(path, 'records no Keyfold schema');
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
    return new SqliteKeyStore(db, path, false);
  } catch (err) {
    db?.close();
    const code = sqliteCode(err);
    if (code !== undefined && (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM'))) {
      throw readOnlyStore(path, err);
    }
    throw mapSqliteError(err, path);
  }
}
