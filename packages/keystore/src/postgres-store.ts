/**
 * `PostgresKeyStore`: the key store for several processes or machines, on PostgreSQL (node-postgres). This file
 * connects, names the store without its password, and creates or migrates its tables; the store's methods are the
 * one key store logic (`store/logic.ts`) on the PostgreSQL dialect (`store/postgres-dialect.ts`).
 *
 * Concurrency rules, and why they hold:
 * - Every change is one transaction. Audit appends lock the one head row (`FOR UPDATE`), always as the last lock a
 *   transaction takes, so the chain stays linear across processes and no two transactions wait on each other in a
 *   cycle.
 * - `leaseForRewrap` locks the rows it hands out with `FOR UPDATE SKIP LOCKED` inside an open transaction, so
 *   concurrent workers get disjoint batches; a worker that dies loses its connection, PostgreSQL rolls its
 *   transaction back and the rows become available again. Writes are still compare-and-swap on the revision.
 * - A store whose schema is newer than this build is refused after reading, before any statement that writes.
 * - Tables are created (or migrated) under an advisory lock, so several processes may open a new store at once.
 * @module
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ConfigError } from '@keyfold/envelope-core';
import { IntegrityError } from './errors.js';
import { now } from './records.js';
import { SCHEMA_VERSION, assertKnownSchema, pendingMigrations } from './schema.js';
import { SqlKeyStore } from './store/logic.js';
import { PostgresDialect, type PgClientLike, type PgPoolLike } from './store/postgres-dialect.js';
import { isConnectionError, mapPgError, passwordMissingError, pgCode } from './store/postgres-errors.js';
import { closeFailedConnection } from './pg-connection.js';

export type { PgClientLike, PgPoolLike } from './store/postgres-dialect.js';

/**
 * Options of {@link openPostgresKeyStore}.
 * @example
 * ```ts
 * const options: PostgresKeyStoreOptions = { connectionString: process.env.DATABASE_URL!, schema: 'keyfold' };
 * ```
 */
export interface PostgresKeyStoreOptions {
  /** `postgresql://user:password@host:port/db`. Either this or `pool`. */
  connectionString?: string;
  /** A pool to use instead (the store does not end it on close unless `ownPool`). */
  pool?: PgPoolLike;
  /** End `pool` on close. Default: true when the store created the pool. */
  ownPool?: boolean;
  /** Schema holding the `keyfold_*` tables (created with the store). Default `public`. */
  schema?: string;
  /**
   * Create the store (its tables, and the schema if missing) when the schema holds none. Default false: a schema
   * without a Keyfold store is refused with `CONFIG_INVALID`, so a store whose tables were dropped is never
   * silently re-created empty.
   */
  create?: boolean;
  /** Connections in the pool the store creates. Default 4. */
  maxConnections?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Whether node-postgres has any password to send for `connectionString`: in the URL (user info or `?password=`),
 * in PGPASSWORD, or possibly in a password file (PGPASSFILE or ~/.pgpass, which it reads itself).
 */
function passwordAvailable(connectionString: string): boolean {
  try {
    const url = new URL(connectionString);
    if (url.password !== '' || url.searchParams.has('password')) return true;
  } catch {
    return true; // not a URL (a keyword string): do not guess
  }
  if (process.env.PGPASSWORD) return true;
  return existsSync(process.env.PGPASSFILE ?? join(homedir(), '.pgpass'));
}

/** Query parameters node-postgres reads that hold secrets. */
const SECRET_PARAMS = ['password', 'sslpassword'];

/** The URL without its password (in the user-info part or as a query parameter). */
function redact(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    if (u.password) u.password = '***';
    for (const name of SECRET_PARAMS) if (u.searchParams.has(name)) u.searchParams.set(name, '***');
    return u.toString();
  } catch {
    return 'postgresql (connection string not shown)';
  }
}

/**
 * Refuses a connection string node-postgres cannot parse, before the driver throws its own `Invalid URL` (which
 * keeps the string, password included, on the error). The message does not repeat the string.
 * @throws ConfigError CONFIG_INVALID.
 */
function assertConnectionString(connectionString: string): void {
  if (connectionString.startsWith('/')) return; // a Unix socket directory
  try {
    // The same parse as pg-connection-string, relative to its own base.
    void new URL(connectionString, 'postgres://base');
  } catch {
    throw new ConfigError('the key store connection string is not a valid URL (not shown: it may hold a password); check its host, port and escaping');
  }
}

/**
 * The pool's connections. node-postgres keeps the socket of a connection attempt that failed on the client side
 * (the server asked for a password and there is none) open, and the pool forgets that client: the process would then
 * stay alive until the server's `authentication_timeout` (60 s by default) closes it. This client destroys its
 * socket as soon as connecting fails, so a failed open leaves nothing behind.
 */
class ClosingClient extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
  override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | undefined {
    if (callback === undefined) {
      return super.connect().catch((err: unknown) => {
        this.#abandon();
        throw err;
      });
    }
    const cb = callback as (err: Error | null, c?: pg.Client) => void;
    super.connect((err: Error | null, c?: pg.Client) => {
      if (err) this.#abandon();
      cb(err, c);
    });
    return undefined;
  }

  #abandon(): void {
    closeFailedConnection(this);
  }
}

/**
 * A {@link KeyStore} on PostgreSQL: the one key store logic on the PostgreSQL dialect. Create it with
 * {@link openPostgresKeyStore}. Several processes (on several machines) may share one; rotation workers lease
 * disjoint batches.
 * @example
 * ```ts
 * const store = await openPostgresKeyStore({ connectionString: process.env.DATABASE_URL! });
 * console.log(await store.countDataKeys());
 * await store.close();
 * ```
 */
export class PostgresKeyStore extends SqlKeyStore {
  readonly backend = 'postgres' as const;

  /** @internal Use {@link openPostgresKeyStore}. */
  constructor(pool: PgPoolLike, ownPool: boolean, schema: string, location: string) {
    super(new PostgresDialect(pool, ownPool, schema, location));
  }
}

/**
 * Opens the PostgreSQL key store, creating its tables (in `schema`) or applying pending migrations under an
 * advisory lock, so several processes may open it at once.
 *
 * A failed open leaves no connection behind (the pool it created is ended, and a login the driver gave up on has
 * its socket closed at once rather than when the server's `authentication_timeout` expires). Messages name the store
 * by its URL without the password.
 *
 * @throws UnsupportedFormatError `FORMAT_UNSUPPORTED` when the tables were written by a newer schema (nothing is
 *   written); ProviderError `UNAVAILABLE` when the server cannot be reached; StoreAccessError `ACCESS_DENIED` when
 *   it asks for a password and none was given (`reason: 'password-missing'`), refuses the login (`'login-refused'`)
 *   or the privileges (`'permission-denied'`); ConfigError `CONFIG_INVALID` when the database does not exist or the
 *   connection string does not parse; TypeError / RangeError for bad options.
 * @example
 * ```ts
 * import { openPostgresKeyStore } from '@keyfold/keystore';
 *
 * const store = await openPostgresKeyStore({ connectionString: process.env.DATABASE_URL! });
 * await store.ensureInstallLock(provider);
 * await store.close();
 * ```
 */
export async function openPostgresKeyStore(options: PostgresKeyStoreOptions): Promise<PostgresKeyStore> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const schema = options.schema ?? 'public';
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)');
  let pool: PgPoolLike;
  let own: boolean;
  let location: string;
  if (options.pool !== undefined) {
    pool = options.pool;
    own = options.ownPool ?? false;
    location = `postgresql (schema ${schema})`;
  } else {
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      throw new TypeError('connectionString (or pool) is required');
    }
    const max = options.maxConnections ?? 4;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('maxConnections must be a positive integer');
    assertConnectionString(options.connectionString);
    location = redact(options.connectionString);
    const p = new pg.Pool({ connectionString: options.connectionString, max, Client: ClosingClient as unknown as new () => pg.ClientBase });
    // An idle client losing its connection must not crash the process; the next query reports it.
    p.on('error', () => undefined);
    pool = p;
    own = options.ownPool ?? true;
  }
  const create = options.create ?? false;
  if (typeof create !== 'boolean') throw new TypeError('create must be a boolean');
  try {
    await migrate(pool, schema, location, create);
  } catch (err) {
    if (own) await pool.end().catch(() => undefined);
    // With the md5 and password methods the driver sends an empty password when it has none, and the server answers
    // 28P01 as for a wrong one: say what is really missing when no password was available at all.
    if (pgCode(err) === '28P01' && options.connectionString !== undefined && !passwordAvailable(options.connectionString)) {
      throw passwordMissingError(location, err);
    }
    throw mapPgError(err, location);
  }
  return new PostgresKeyStore(pool, own, schema, location);
}

async function readVersion(c: PgClientLike, schema: string): Promise<number> {
  const exists = (await c.query('SELECT to_regclass($1) AS t', [`"${schema}".keyfold_meta`])).rows[0]?.t;
  if (exists === null || exists === undefined) return 0;
  const r = (await c.query(`SELECT value FROM "${schema}".keyfold_meta WHERE key = 'schema_version'`)).rows[0];
  return r ? Number(r.value) : 0;
}

/** The tables every Keyfold store has had since schema version 1. */
const REQUIRED_TABLES = ['keyfold_meta', 'keyfold_install_lock', 'keyfold_kek_versions', 'keyfold_data_keys', 'keyfold_checkpoints', 'keyfold_audit', 'keyfold_audit_head'];

/**
 * Refuses, before anything is written, a schema that holds no store (unless `create`) or only part of one.
 * @throws ConfigError `CONFIG_INVALID` (no store, without `create`); IntegrityError `INTEGRITY_FAILED` (tables missing).
 */
async function assertStoreShape(c: PgClientLike, schema: string, location: string, found: number, create: boolean): Promise<void> {
  const r = await c.query('SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(format($2, t)) IS NULL', [REQUIRED_TABLES, `"${schema}".%I`]);
  const missing = r.rows.map((row) => String(row.t));
  if (missing.length === REQUIRED_TABLES.length && found === 0) {
    if (create) return;
    throw new ConfigError(
      `${location} holds no Keyfold key store in schema "${schema}" (only a new installation creates one: keyfold init, ` +
        'or create: true); restore it from a backup if it was there. Nothing was written.',
    );
  }
  if (missing.length > 0 || found === 0) {
    throw new IntegrityError(
      `the key store ${location} (schema "${schema}") is incomplete: ${missing.length > 0 ? `the tables ${missing.join(', ')} are missing` : 'it records no schema version'}; ` +
        'restore it from a backup (keyfold restore). Nothing was written.',
    );
  }
}

async function migrate(pool: PgPoolLike, schema: string, location: string, create: boolean): Promise<void> {
  const c = await pool.connect();
  let broken: Error | undefined;
  try {
    // Read first, write nothing: a newer store, a missing one (without create) or a partial one is refused untouched.
    const found = await readVersion(c, schema);
    assertKnownSchema(found, location);
    await assertStoreShape(c, schema, location, found, create);
    if (found === SCHEMA_VERSION) return;
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`keyfold-migrate:${schema}`]);
    const version = await readVersion(c, schema);
    assertKnownSchema(version, location);
    await assertStoreShape(c, schema, location, version, create);
    if (version < SCHEMA_VERSION) {
      await c.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await c.query(`CREATE TABLE IF NOT EXISTS "${schema}".keyfold_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
      for (const m of pendingMigrations(version)) {
        for (const stmt of m.postgres) await c.query(stmt.replaceAll('${s}', `"${schema}"`));
      }
      await c.query(
        `INSERT INTO "${schema}".keyfold_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        [String(SCHEMA_VERSION)],
      );
      if (version === 0) {
        await c.query(`INSERT INTO "${schema}".keyfold_meta (key, value) VALUES ('created_at', $1) ON CONFLICT DO NOTHING`, [now()]);
      }
    }
    await c.query('COMMIT');
  } catch (err) {
    broken = err as Error;
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release(broken && isConnectionError(broken) ? broken : undefined);
  }
}
