/**
 * `PostgresKeyStore`: the key store for several processes or machines, on PostgreSQL (node-postgres).
 *
 * Concurrency rules, and why they hold:
 * - Every change is one transaction. Audit appends lock the one head row (`FOR UPDATE`), always as the last lock a
 *   transaction takes, so the chain stays linear across processes and no two transactions wait on each other in a
 *   cycle.
 * - `leaseForRewrap` locks the rows it hands out with `FOR UPDATE SKIP LOCKED` inside an open transaction, so
 *   concurrent workers get disjoint batches; a worker that dies loses its connection, PostgreSQL rolls its
 *   transaction back and the rows become available again. Writes are still compare-and-swap on the revision.
 * - A store whose schema is newer than this build is refused after reading, before any statement that writes.
 * @module
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  ConfigError,
  KeyfoldError,
  PolicyError,
  ProviderError,
  type KeyProvider,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { assertAuditInput, nextAuditEntry, parseHeadRow, verifyAuditRows } from './audit.js';
import { AuditKeyHolder, anchorEntry, auditKeyRowChanged, isKeyProvider, parseAuditKeyRow, type AuditKey, type AuditKeyStorage } from './audit-key.js';
import { IntegrityError, StoreAccessError } from './errors.js';
import {
  assertFilter,
  assertKekRef,
  assertLimit,
  assertName,
  assertNewDataKey,
  assertProviderRef,
  assertRevision,
  closedError,
  installLockMismatch,
  kekName,
  now,
  sameProvider,
  storeError,
} from './records.js';
import { SCHEMA_VERSION, assertKnownSchema, pendingMigrations } from './schema.js';
import {
  assertChange,
  assertCheckpoint,
  assertLease,
  assertUpdates,
  compareKek,
  rowToAudit,
  rowToCheckpoint,
  rowToDataKey,
  rowToKek,
} from './sqlite-store.js';
import type {
  AuditEntry,
  AuditHead,
  AuditInput,
  AuditKeyRecord,
  AuditQuery,
  AuditVerification,
  Checkpoint,
  CheckpointUpdate,
  DataKeyChange,
  DataKeyFilter,
  DataKeyRecord,
  InstallLock,
  KekRef,
  KekUsage,
  KekVersionRecord,
  KeyStore,
  LeaseRequest,
  NewDataKey,
  ProviderRef,
  RewrapLease,
  RewrapUpdate,
  StoreRecords,
} from './types.js';

type Row = Record<string, unknown>;

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

/** `Array.isArray` without narrowing a typed readonly array to `any[]`. */
function isArray(value: unknown): boolean {
  return Array.isArray(value);
}

function pgCode(err: unknown): string | undefined {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' ? (err as unknown as { code: string }).code : undefined;
}

/** Socket errors meaning the server cannot be reached (Node's happy eyeballs may wrap several in an AggregateError). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'ENOENT']);

function unreachableCode(err: unknown): string | undefined {
  const code = pgCode(err);
  if (code !== undefined && UNREACHABLE.has(code)) return code;
  if (err instanceof AggregateError) {
    for (const e of err.errors) {
      const inner = pgCode(e);
      if (inner !== undefined && UNREACHABLE.has(inner)) return inner;
    }
  }
  return undefined;
}

/**
 * The driver's own complaint when the server asks for a password and the client has none (SCRAM: "client password
 * must be a string"; a password callback returning a non-string: "Password must be a string"). It carries no code.
 */
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

function passwordMissingError(location: string, cause: unknown): StoreAccessError {
  return new StoreAccessError(
    'password-missing',
    `the key store ${location} asks for a password and none was given: put it in the connection string, or set PGPASSWORD`,
    { cause },
  );
}

function isPasswordMissing(err: unknown): boolean {
  return err instanceof Error && pgCode(err) === undefined && /\b(client )?password must be a (non-empty )?string\b/i.test(err.message);
}

/**
 * A node-postgres error as a coded key store error naming the store by `location` (its URL without the password).
 * Security rule: no message is built from the connection string or the driver's message, so no password can leak
 * into it; the driver's error stays available as `cause` (its messages do not contain passwords either).
 */
function mapPgError(err: unknown, location: string): unknown {
  if (err instanceof KeyfoldError || err instanceof TypeError || err instanceof RangeError) return err;
  const code = pgCode(err);
  if (code === 'XX001' || code === 'XX002') {
    return new IntegrityError(`the key store ${location} reports damaged data (${code}); restore it from a backup`, { cause: err });
  }
  if (code === '3D000') {
    return new ConfigError(
      `the key store ${location} names a database that does not exist (${databaseOf(location)}, 3D000); create it, or give the URL of an existing one`,
      { cause: err },
    );
  }
  if (code === '40001' || code === '40P01' || code === '55P03' || code === '57014') {
    return new ProviderError('UNAVAILABLE', `the key store ${location} is busy (${code}); try again`, { cause: err });
  }
  if (code !== undefined && /^(08|53|57P)/.test(code)) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} is unavailable (${code})`, { cause: err });
  }
  const unreachable = unreachableCode(err);
  if (unreachable !== undefined) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} cannot be reached (${unreachable})`, { cause: err });
  }
  if (isPasswordMissing(err)) return passwordMissingError(location, err);
  if (code === '28P01' || code === '28000') {
    const what = code === '28P01' ? 'the password was wrong or the user is unknown' : 'the server has no rule letting this user in from here';
    return new StoreAccessError('login-refused', `the key store ${location} refused the login (${code}: ${what})`, { cause: err });
  }
  if (code === '42501') {
    return new StoreAccessError('permission-denied', `the key store ${location} refused access (${code}: insufficient privilege)`, { cause: err });
  }
  if (err instanceof Error && /Connection terminated|connection/i.test(err.message) && code === undefined) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} connection failed`, { cause: err });
  }
  return new ProviderError('INTERNAL', `the key store ${location} failed${code ? ` (${code})` : ''}`, { cause: err });
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

/** `database "name"` from a redacted location URL, or `its database` when the location is not a URL. */
function databaseOf(location: string): string {
  try {
    const name = decodeURIComponent(new URL(location).pathname.replace(/^\//, ''));
    return name === '' ? 'the default database' : `database ${JSON.stringify(name)}`;
  } catch {
    return 'its database';
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
    (this.connection as unknown as { stream?: { destroy(): void } } | undefined)?.stream?.destroy();
  }
}

function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * A {@link KeyStore} on PostgreSQL. Create it with {@link openPostgresKeyStore}. Several processes (on several
 * machines) may share one; rotation workers lease disjoint batches.
 * @example
 * ```ts
 * const store = await openPostgresKeyStore({ connectionString: process.env.DATABASE_URL! });
 * console.log(await store.countDataKeys());
 * await store.close();
 * ```
 */
export class PostgresKeyStore implements KeyStore {
  readonly backend = 'postgres' as const;
  readonly location: string;
  readonly schemaVersion = SCHEMA_VERSION;
  readonly #s: string;
  #pool: PgPoolLike | undefined;
  readonly #ownPool: boolean;
  /** The unwrapped audit key, once opened (wiped on close). */
  readonly #audit = new AuditKeyHolder();

  /** @internal Use {@link openPostgresKeyStore}. */
  constructor(pool: PgPoolLike, ownPool: boolean, schema: string, location: string) {
    this.#pool = pool;
    this.#ownPool = ownPool;
    this.#s = `"${schema}"`;
    this.location = location;
  }

  #t(table: string): string {
    return `${this.#s}.keyfold_${table}`;
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

  /** One statement outside a transaction. */
  async #q(text: string, values?: unknown[]): Promise<Row[]> {
    const c = await this.#client();
    let broken: Error | undefined;
    try {
      return (await c.query(text, values)).rows;
    } catch (err) {
      broken = err as Error;
      throw mapPgError(err, this.location);
    } finally {
      c.release(isConnectionError(broken) ? broken : undefined);
    }
  }

  async #tx<T>(fn: (c: PgClientLike) => Promise<T>): Promise<T> {
    const c = await this.#client();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      broken = err as Error;
      await c.query('ROLLBACK').catch(() => undefined);
      throw mapPgError(err, this.location);
    } finally {
      c.release(isConnectionError(broken) ? broken : undefined);
    }
  }

  async #headIn(c: PgClientLike, forUpdate: boolean): Promise<AuditHead> {
    return parseHeadRow((await c.query(`SELECT seq, hash, mac FROM ${this.#t('audit_head')} WHERE id = 1${forUpdate ? ' FOR UPDATE' : ''}`)).rows[0]);
  }

  async #appendAuditIn(c: PgClientLike, input: AuditInput, key: AuditKey | undefined = this.#audit.key): Promise<AuditEntry> {
    const head = await this.#headIn(c, true);
    const last = head.seq > 0 ? (await c.query(`SELECT mac FROM ${this.#t('audit')} WHERE seq = $1`, [head.seq])).rows[0] : undefined;
    const { entry, head: next } = nextAuditEntry({ ...head, entryMac: typeof last?.mac === 'string' ? last.mac : undefined }, input, now(), key, this.location);
    await c.query(
      `INSERT INTO ${this.#t('audit')} (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [entry.seq, entry.time, entry.actor, entry.event, entry.subject, JSON.stringify(entry.details), entry.prevHash, entry.hash, entry.mac ?? null],
    );
    await c.query(`UPDATE ${this.#t('audit_head')} SET seq = $1, hash = $2, mac = $3 WHERE id = 1`, [next.seq, next.hash, next.mac ?? null]);
    return entry;
  }

  async #auditKeyIn(c: PgClientLike, forUpdate: boolean): Promise<AuditKeyRecord | undefined> {
    const row = (await c.query(`SELECT * FROM ${this.#t('audit_key')} WHERE id = 1${forUpdate ? ' FOR UPDATE' : ''}`)).rows[0];
    return row ? parseAuditKeyRow(row, this.location) : undefined;
  }

  async getAuditKey(): Promise<AuditKeyRecord | undefined> {
    const row = (await this.#q(`SELECT * FROM ${this.#t('audit_key')} WHERE id = 1`))[0];
    return row ? parseAuditKeyRow(row, this.location) : undefined;
  }

  openAuditKey(providers: KeyProvider | readonly KeyProvider[], options: { readonly actor?: string; readonly create?: boolean } = {}): Promise<AuditKeyRecord | undefined> {
    if (options.actor !== undefined) assertName(options.actor, 'options.actor');
    return this.#audit.open(this.#auditStorage, providers, options);
  }

  rewrapAuditKey(to: KeyProvider, actor: string): Promise<boolean> {
    assertName(actor, 'actor');
    return this.#audit.rewrap(this.#auditStorage, to, actor);
  }

  /** Compare-and-swap of the audit key row's wrapped key. @throws ProviderError UNAVAILABLE when it changed. */
  async #replaceAuditKeyIn(c: PgClientLike, old: AuditKeyRecord, next: AuditKeyRecord): Promise<void> {
    const w = next.wrapped;
    const o = old.wrapped;
    const changed = await c.query(
      `UPDATE ${this.#t('audit_key')} SET kek_kind = $1, kek_key_id = $2, kek_version = $3, wrapped = $4, updated_at = $5 ` +
        'WHERE id = 1 AND installation = $6 AND kek_kind = $7 AND kek_key_id = $8 AND kek_version = $9 AND wrapped = $10',
      [w.kind, w.keyId, w.keyVersion, buf(w.ciphertext), next.updatedAt, old.installation, o.kind, o.keyId, o.keyVersion, buf(o.ciphertext)],
    );
    if (changed.rowCount !== 1) throw new ProviderError('UNAVAILABLE', `the audit key of ${this.location} changed while it was re-wrapped (another rotation?); run again`);
  }

  async #insertAuditKeyIn(c: PgClientLike, r: AuditKeyRecord): Promise<void> {
    await c.query(
      `INSERT INTO ${this.#t('audit_key')} (id, installation, keyed_from, kek_kind, kek_key_id, kek_version, wrapped, created_at, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8)`,
      [r.installation, r.keyedFrom, r.wrapped.kind, r.wrapped.keyId, r.wrapped.keyVersion, buf(r.wrapped.ciphertext), r.createdAt, r.updatedAt],
    );
  }

  /** Persistence of the audit key for {@link AuditKeyHolder}. */
  get #auditStorage(): AuditKeyStorage {
    return {
      location: this.location,
      getAuditKey: () => this.getAuditKey(),
      getInstallLock: () => this.getInstallLock(),
      insertAuditKey: (make, actor) =>
        this.#tx(async (c) => {
          // The head row lock serialises this with every append and with another process keying the log.
          const head = await this.#headIn(c, true);
          if (await this.#auditKeyIn(c, false)) return undefined;
          const key = make(head);
          await this.#insertAuditKeyIn(c, key.record);
          if (head.seq > 0) await this.#appendAuditIn(c, anchorEntry(key.record, head, actor), key);
          else await c.query(`UPDATE ${this.#t('audit_head')} SET mac = $1 WHERE id = 1`, [key.headMac(head, undefined)]);
          return key;
        }),
      replaceAuditKeyWrap: (old, next, audit, key) =>
        this.#tx(async (c) => {
          await this.#replaceAuditKeyIn(c, old, next);
          await this.#appendAuditIn(c, audit, key);
        }),
    };
  }

  async #lockIn(c: PgClientLike, forUpdate: boolean): Promise<InstallLock | undefined> {
    const row = (await c.query(`SELECT kind, key_id, created_at, updated_at FROM ${this.#t('install_lock')} WHERE id = 1${forUpdate ? ' FOR UPDATE' : ''}`))
      .rows[0];
    return row ? { kind: row.kind as string, keyId: row.key_id as string, createdAt: row.created_at as string, updatedAt: row.updated_at as string } : undefined;
  }

  async getInstallLock(): Promise<InstallLock | undefined> {
    const row = (await this.#q(`SELECT kind, key_id, created_at, updated_at FROM ${this.#t('install_lock')} WHERE id = 1`))[0];
    return row ? { kind: row.kind as string, keyId: row.key_id as string, createdAt: row.created_at as string, updatedAt: row.updated_at as string } : undefined;
  }

  async ensureInstallLock(provider: ProviderRef | KeyProvider, actor = 'keyfold'): Promise<InstallLock> {
    assertProviderRef(provider, 'provider');
    assertName(actor, 'actor');
    const current = await this.getInstallLock();
    if (current && !sameProvider(current, provider)) throw installLockMismatch(current, provider);
    if (isKeyProvider(provider)) await this.openAuditKey(provider, { actor });
    // Locked already: nothing to write, no table lock taken.
    if (current) return current;
    return this.#tx(async (c) => {
      // Serialise concurrent first opens: whoever inserts first wins, the others compare.
      await c.query(`LOCK TABLE ${this.#t('install_lock')} IN SHARE ROW EXCLUSIVE MODE`);
      const lock = await this.#lockIn(c, false);
      if (lock) {
        if (!sameProvider(lock, provider)) throw installLockMismatch(lock, provider);
        return lock;
      }
      const t = now();
      await c.query(`INSERT INTO ${this.#t('install_lock')} (id, kind, key_id, created_at, updated_at) VALUES (1, $1, $2, $3, $3)`, [
        provider.kind,
        provider.keyId,
        t,
      ]);
      await this.#appendAuditIn(c, { actor, event: 'install.lock', subject: kekName(provider), details: { kind: provider.kind, keyId: provider.keyId } });
      return { kind: provider.kind, keyId: provider.keyId, createdAt: t, updatedAt: t };
    });
  }

  async changeInstallLock(from: ProviderRef, to: ProviderRef | KeyProvider, actor: string, details: AuditInput['details'] = {}): Promise<InstallLock> {
    assertProviderRef(from, 'from');
    assertProviderRef(to, 'to');
    assertName(actor, 'actor');
    // The audit key moves with the lock, in the same transaction: wrapped under `to` first, written below.
    const old = this.#audit.key?.record;
    const moved = await this.#audit.prepareMove(this.#auditStorage, to);
    try {
      return await this.#changeLock(from, to, actor, details, moved && old ? { old, moved } : undefined);
    } catch (err) {
      if (moved && old) this.#audit.abortMove(moved, old);
      throw err;
    }
  }

  #changeLock(
    from: ProviderRef,
    to: ProviderRef,
    actor: string,
    details: AuditInput['details'],
    move: { readonly old: AuditKeyRecord; readonly moved: AuditKey } | undefined,
  ): Promise<InstallLock> {
    return this.#tx(async (c) => {
      if (move) await this.#replaceAuditKeyIn(c, move.old, move.moved.record);
      const lock = await this.#lockIn(c, true);
      if (!lock) throw storeError('CONFIG_INVALID', `the key store ${this.location} has no install lock to migrate`);
      if (!sameProvider(lock, from)) throw installLockMismatch(lock, from);
      // Block new keys under the old provider while we count: share lock on the table.
      await c.query(`LOCK TABLE ${this.#t('data_keys')} IN SHARE MODE`);
      const left = Number(
        (await c.query(`SELECT count(*) AS n FROM ${this.#t('data_keys')} WHERE kek_kind = $1 AND kek_key_id = $2 AND state <> 'destroyed'`, [from.kind, from.keyId]))
          .rows[0]?.n,
      );
      if (left > 0 && !sameProvider(from, to)) {
        throw new PolicyError(
          'POLICY_VIOLATION',
          `${left} data key(s) are still wrapped under ${kekName(from)}; the install lock moves to ${kekName(to)} only once none are`,
        );
      }
      const t = now();
      await c.query(`UPDATE ${this.#t('install_lock')} SET kind = $1, key_id = $2, updated_at = $3 WHERE id = 1`, [to.kind, to.keyId, t]);
      await this.#appendAuditIn(c, { actor, event: 'install.migrate', subject: kekName(to), details: { ...details, from: kekName(from), to: kekName(to) } });
      return { kind: to.kind, keyId: to.keyId, createdAt: lock.createdAt, updatedAt: t };
    });
  }

  async listKekVersions(filter?: ProviderRef): Promise<KekVersionRecord[]> {
    if (filter !== undefined) assertProviderRef(filter, 'filter');
    const rows = filter
      ? await this.#q(`SELECT * FROM ${this.#t('kek_versions')} WHERE kind = $1 AND key_id = $2`, [filter.kind, filter.keyId])
      : await this.#q(`SELECT * FROM ${this.#t('kek_versions')}`);
    return rows.map(rowToKek).sort(compareKek);
  }

  recordKekVersion(kek: KekRef, options: { readonly activate: boolean; readonly actor: string }): Promise<KekVersionRecord> {
    assertKekRef(kek, 'kek');
    assertName(options?.actor, 'options.actor');
    return this.#tx(async (c) => {
      const t = now();
      await c.query(
        `INSERT INTO ${this.#t('kek_versions')} (kind, key_id, version, state, created_at) VALUES ($1, $2, $3, 'available', $4) ON CONFLICT DO NOTHING`,
        [kek.kind, kek.keyId, kek.version, t],
      );
      // Lock every version of this KEK: activation changes two rows.
      const rows = (await c.query(`SELECT * FROM ${this.#t('kek_versions')} WHERE kind = $1 AND key_id = $2 ORDER BY version FOR UPDATE`, [kek.kind, kek.keyId]))
        .rows;
      const existing = rowToKek(rows.find((r) => r.version === kek.version) as Row);
      if (existing.state === 'retired') {
        throw new ProviderError('KEY_VERSION_RETIRED', `KEK version ${kekName(kek)} was retired on ${existing.retiredAt ?? '?'}; it cannot be used again`);
      }
      let changed = existing.createdAt === t;
      if (options.activate && existing.state !== 'active') {
        await c.query(`UPDATE ${this.#t('kek_versions')} SET state = 'available' WHERE kind = $1 AND key_id = $2 AND state = 'active'`, [kek.kind, kek.keyId]);
        await c.query(`UPDATE ${this.#t('kek_versions')} SET state = 'active', activated_at = $4 WHERE kind = $1 AND key_id = $2 AND version = $3`, [
          kek.kind,
          kek.keyId,
          kek.version,
          t,
        ]);
        changed = true;
      }
      if (changed) {
        await this.#appendAuditIn(c, {
          actor: options.actor,
          event: options.activate ? 'kek.activate' : 'kek.register',
          subject: kekName(kek),
          details: { kind: kek.kind, keyId: kek.keyId, version: kek.version },
        });
      }
      return rowToKek(
        (await c.query(`SELECT * FROM ${this.#t('kek_versions')} WHERE kind = $1 AND key_id = $2 AND version = $3`, [kek.kind, kek.keyId, kek.version])).rows[0] as Row,
      );
    });
  }

  retireKekVersion(kek: KekRef, actor: string): Promise<KekVersionRecord> {
    assertKekRef(kek, 'kek');
    assertName(actor, 'actor');
    return this.#tx(async (c) => {
      const r = (await c.query(`SELECT * FROM ${this.#t('kek_versions')} WHERE kind = $1 AND key_id = $2 AND version = $3 FOR UPDATE`, [kek.kind, kek.keyId, kek.version]))
        .rows[0];
      if (!r) throw new ProviderError('KEY_NOT_FOUND', `KEK version ${kekName(kek)} is not registered in this store`);
      const rec = rowToKek(r);
      if (rec.state === 'retired') return rec;
      if (rec.state === 'active') {
        throw new PolicyError('POLICY_VIOLATION', `KEK version ${kekName(kek)} is the active version; activate another version before retiring it`);
      }
      // A share lock keeps keys from being re-wrapped back onto it (or inserted under it) while we count.
      await c.query(`LOCK TABLE ${this.#t('data_keys')} IN SHARE MODE`);
      const refs = Number(
        (await c.query(
          `SELECT count(*) AS n FROM ${this.#t('data_keys')} WHERE kek_kind = $1 AND kek_key_id = $2 AND kek_version = $3 AND state <> 'destroyed'`,
          [kek.kind, kek.keyId, kek.version],
        )).rows[0]?.n,
      );
      if (refs > 0) {
        throw new PolicyError(
          'POLICY_VIOLATION',
          `KEK version ${kekName(kek)} still wraps ${refs} data key(s); re-wrap them first (keyfold kek rotate), then retire it`,
        );
      }
      const auditKey = await this.#auditKeyIn(c, true);
      if (auditKey && auditKey.wrapped.kind === kek.kind && auditKey.wrapped.keyId === kek.keyId && auditKey.wrapped.keyVersion === kek.version) {
        throw new PolicyError('POLICY_VIOLATION', `KEK version ${kekName(kek)} still wraps the audit key; re-wrap it first (keyfold kek rotate), then retire it`);
      }
      const t = now();
      await c.query(`UPDATE ${this.#t('kek_versions')} SET state = 'retired', retired_at = $4 WHERE kind = $1 AND key_id = $2 AND version = $3`, [
        kek.kind,
        kek.keyId,
        kek.version,
        t,
      ]);
      await this.#appendAuditIn(c, { actor, event: 'kek.retire', subject: kekName(kek), details: { kind: kek.kind, keyId: kek.keyId, version: kek.version } });
      return { ...rec, state: 'retired', retiredAt: t };
    });
  }

  async kekUsage(): Promise<KekUsage[]> {
    const rows = await this.#q(
      `SELECT kek_kind, kek_key_id, kek_version, state, count(*) AS n FROM ${this.#t('data_keys')} WHERE wrapped IS NOT NULL GROUP BY kek_kind, kek_key_id, kek_version, state`,
    );
    return rows.map((r) => ({
      kek: { kind: r.kek_kind as string, keyId: r.kek_key_id as string, version: r.kek_version as string },
      state: r.state as KekUsage['state'],
      count: Number(r.n),
    }));
  }

  insertDataKeys(keys: readonly NewDataKey[], audit?: AuditInput): Promise<void> {
    if (!isArray(keys)) throw new TypeError('keys must be an array');
    keys.forEach(assertNewDataKey);
    if (audit !== undefined) assertAuditInput(audit);
    return this.#tx(async (c) => {
      const t = now();
      for (let i = 0; i < keys.length; i += 5000) {
        const chunk = keys.slice(i, i + 5000);
        try {
          await c.query(
            `INSERT INTO ${this.#t('data_keys')} (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ` +
              'SELECT u.id, u.owner, u.version, u.state, u.kind, u.key_id, u.kv, u.ct, u.kc, 1, $10, $10 ' +
              'FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[]) ' +
              'AS u(id, owner, version, state, kind, key_id, kv, ct, kc)',
            [
              chunk.map((k) => k.id),
              chunk.map((k) => k.owner),
              chunk.map((k) => k.version),
              chunk.map((k) => k.state ?? 'active'),
              chunk.map((k) => k.wrapped.kind),
              chunk.map((k) => k.wrapped.keyId),
              chunk.map((k) => k.wrapped.keyVersion),
              chunk.map((k) => buf(k.wrapped.ciphertext)),
              chunk.map((k) => buf(k.keyCheck)),
              t,
            ],
          );
        } catch (err) {
          if (pgCode(err) === '23505') throw storeError('ALREADY_EXISTS', 'a data key with one of these ids (or owner + version) already exists; nothing was written', err);
          throw err;
        }
      }
      if (audit) await this.#appendAuditIn(c, audit);
    });
  }

  addDataKeyVersion(owner: string, key: Omit<NewDataKey, 'owner' | 'state'>, audit: AuditInput): Promise<DataKeyRecord> {
    assertName(owner, 'owner');
    assertAuditInput(audit);
    return this.#tx(async (c) => {
      const rows = (await c.query(`SELECT version, state FROM ${this.#t('data_keys')} WHERE owner = $1 ORDER BY version FOR UPDATE`, [owner])).rows;
      if (rows.length === 0) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no data key`);
      if (rows.some((r) => r.state === 'destroyed')) throw new ProviderError('KEY_NOT_FOUND', `the keys of ${owner} were destroyed`);
      const version = Number((rows[rows.length - 1] as Row).version) + 1;
      if (key.version !== version) {
        throw new ProviderError('UNAVAILABLE', `${owner} was rotated concurrently (next version is ${version}, not ${key.version}); nothing was written, try again`);
      }
      const next: NewDataKey = { ...key, owner, version, state: 'active' };
      assertNewDataKey(next, 0);
      const t = now();
      await c.query(`UPDATE ${this.#t('data_keys')} SET state = 'retired', revision = revision + 1, updated_at = $2 WHERE owner = $1 AND state = 'active'`, [owner, t]);
      try {
        await c.query(
          `INSERT INTO ${this.#t('data_keys')} (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ` +
            "VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, $9, $9)",
          [next.id, owner, version, next.wrapped.kind, next.wrapped.keyId, next.wrapped.keyVersion, buf(next.wrapped.ciphertext), buf(next.keyCheck), t],
        );
      } catch (err) {
        if (pgCode(err) === '23505') throw storeError('ALREADY_EXISTS', `data key ${next.id} already exists; nothing was written`, err);
        throw err;
      }
      await this.#appendAuditIn(c, { ...audit, details: { ...(audit.details ?? {}), version } });
      return rowToDataKey((await c.query(`SELECT * FROM ${this.#t('data_keys')} WHERE id = $1`, [next.id])).rows[0] as Row);
    });
  }

  async getDataKey(id: string): Promise<DataKeyRecord | undefined> {
    assertName(id, 'id');
    const r = (await this.#q(`SELECT * FROM ${this.#t('data_keys')} WHERE id = $1`, [id]))[0];
    return r ? rowToDataKey(r) : undefined;
  }

  async findDataKey(owner: string, version?: number): Promise<DataKeyRecord | undefined> {
    assertName(owner, 'owner');
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) throw new TypeError('version must be a positive integer');
    const r = (version === undefined
      ? await this.#q(`SELECT * FROM ${this.#t('data_keys')} WHERE owner = $1 AND state = 'active' ORDER BY version DESC LIMIT 1`, [owner])
      : await this.#q(`SELECT * FROM ${this.#t('data_keys')} WHERE owner = $1 AND version = $2`, [owner, version]))[0];
    return r ? rowToDataKey(r) : undefined;
  }

  #filter(filter: DataKeyFilter | undefined, params: unknown[]): string {
    const parts: string[] = [];
    const p = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    if (filter?.owner !== undefined) parts.push(`owner = ${p(filter.owner)}`);
    if (filter?.ownerPrefix !== undefined) parts.push(`left(owner, ${p(filter.ownerPrefix.length)}) = ${p(filter.ownerPrefix)}`);
    if (filter?.states !== undefined) parts.push(`state = ANY(${p(filter.states)}::text[])`);
    if (filter?.kek !== undefined) {
      parts.push(`kek_kind = ${p(filter.kek.kind)} AND kek_key_id = ${p(filter.kek.keyId)}`);
      if (filter.kek.version !== undefined) parts.push(`kek_version = ${p(filter.kek.version)}`);
    }
    return parts.length === 0 ? 'TRUE' : parts.join(' AND ');
  }

  async listDataKeys(options: DataKeyFilter & { readonly after?: string; readonly limit?: number } = {}): Promise<DataKeyRecord[]> {
    assertFilter(options);
    const limit = options.limit ?? 1000;
    assertLimit(limit, 'limit');
    if (options.after !== undefined) assertName(options.after, 'after');
    const params: unknown[] = [];
    let where = this.#filter(options, params);
    if (options.after !== undefined) {
      params.push(options.after);
      where += ` AND id > $${params.length}`;
    }
    params.push(limit);
    return (await this.#q(`SELECT * FROM ${this.#t('data_keys')} WHERE ${where} ORDER BY id LIMIT $${params.length}`, params)).map(rowToDataKey);
  }

  async countDataKeys(filter?: DataKeyFilter): Promise<number> {
    assertFilter(filter);
    const params: unknown[] = [];
    const where = this.#filter(filter, params);
    return Number((await this.#q(`SELECT count(*) AS n FROM ${this.#t('data_keys')} WHERE ${where}`, params))[0]?.n);
  }

  async listOwners(ownerPrefix?: string): Promise<{ owner: string; versions: number; activeVersion: number | undefined; destroyed: boolean }[]> {
    if (ownerPrefix !== undefined) assertName(ownerPrefix, 'ownerPrefix');
    const rows = await this.#q(
      `SELECT owner, count(*) AS n, max(CASE WHEN state = 'active' THEN version END) AS active, bool_or(state = 'destroyed') AS destroyed ` +
        `FROM ${this.#t('data_keys')} WHERE left(owner, $1) = $2 GROUP BY owner ORDER BY owner`,
      [(ownerPrefix ?? '').length, ownerPrefix ?? ''],
    );
    return rows.map((r) => ({
      owner: r.owner as string,
      versions: Number(r.n),
      activeVersion: r.active === null ? undefined : Number(r.active),
      destroyed: r.destroyed === true,
    }));
  }

  updateDataKey(id: string, expectedRevision: number, change: DataKeyChange, audit?: AuditInput): Promise<DataKeyRecord | undefined> {
    assertName(id, 'id');
    assertRevision(expectedRevision, 'expectedRevision');
    assertChange(change);
    if (audit !== undefined) assertAuditInput(audit);
    return this.#tx(async (c) => {
      const r = (await c.query(`SELECT * FROM ${this.#t('data_keys')} WHERE id = $1 FOR UPDATE`, [id])).rows[0];
      if (!r || Number(r.revision) !== expectedRevision) return undefined;
      const cur = rowToDataKey(r);
      const wrapped: WrappedKey | undefined = change.wrapped === undefined ? cur.wrapped : change.wrapped ?? undefined;
      const state = change.state ?? cur.state;
      const keyCheck = state === 'destroyed' ? undefined : cur.keyCheck;
      const updated = (await c.query(
        `UPDATE ${this.#t('data_keys')} SET state = $1, kek_kind = $2, kek_key_id = $3, kek_version = $4, wrapped = $5, key_check = $6, ` +
          'revision = revision + 1, updated_at = $7 WHERE id = $8 AND revision = $9 RETURNING *',
        [
          state,
          wrapped?.kind ?? null,
          wrapped?.keyId ?? null,
          wrapped?.keyVersion ?? null,
          wrapped ? buf(wrapped.ciphertext) : null,
          keyCheck ? buf(keyCheck) : null,
          now(),
          id,
          expectedRevision,
        ],
      )).rows[0];
      if (audit) await this.#appendAuditIn(c, audit);
      return rowToDataKey(updated as Row);
    });
  }

  destroyOwner(owner: string, audit: AuditInput): Promise<number> {
    assertName(owner, 'owner');
    assertAuditInput(audit);
    return this.#tx(async (c) => {
      const rows = (await c.query(`SELECT id FROM ${this.#t('data_keys')} WHERE owner = $1 FOR UPDATE`, [owner])).rows;
      if (rows.length === 0) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no data key`);
      const res = await c.query(
        `UPDATE ${this.#t('data_keys')} SET state = 'destroyed', wrapped = NULL, key_check = NULL, kek_kind = NULL, kek_key_id = NULL, kek_version = NULL, ` +
          "revision = revision + 1, updated_at = $2 WHERE owner = $1 AND state <> 'destroyed'",
        [owner, now()],
      );
      const n = res.rowCount ?? 0;
      await this.#appendAuditIn(c, { ...audit, details: { ...(audit.details ?? {}), destroyed: n } });
      return n;
    });
  }

  async leaseForRewrap(request: LeaseRequest): Promise<RewrapLease> {
    assertLease(request);
    const { target } = request;
    const from = request.from ?? [];
    const params: unknown[] = [request.after ?? '', target.kind, target.keyId, target.version];
    const fromSql =
      from.length === 0
        ? ''
        : ` AND (${from
            .map((f) => {
              params.push(f.kind, f.keyId);
              return `(kek_kind = $${params.length - 1} AND kek_key_id = $${params.length})`;
            })
            .join(' OR ')})`;
    let shardSql = '';
    if (request.shard !== undefined) {
      params.push(request.shard.count, request.shard.index);
      shardSql = ` AND mod(abs(hashtext(id)::bigint), $${params.length - 1}) = $${params.length}`;
    }
    const eligible =
      `FROM ${this.#t('data_keys')} WHERE state <> 'destroyed' AND wrapped IS NOT NULL AND id > $1 ` +
      `AND NOT (kek_kind = $2 AND kek_key_id = $3 AND kek_version = $4)${fromSql}${shardSql}`;
    const c = await this.#client();
    try {
      await c.query('BEGIN');
      const rows = (await c.query(`SELECT * ${eligible} ORDER BY id LIMIT $${params.length + 1} FOR UPDATE SKIP LOCKED`, [...params, request.limit])).rows;
      // SKIP LOCKED passes over rows another transaction holds (another worker's batch, an application's
      // SELECT ... FOR UPDATE). Name the eligible ones in this lease's id range that it passed over, so the caller
      // can come back for them instead of taking "no more keys" for "every key done". The range ends at the last id
      // handed out when the batch is full, and is open when it is not (nothing unlocked is left after the cursor).
      // A count over the same range first: with one worker and no foreign locks (the usual case) it equals the
      // batch and the id list is not needed. The list query excludes the batch with a hashed anti-join
      // (NOT IN over a subquery), not `<> ALL(array)`, which compares every row with every id of the batch.
      const ids = rows.map((r) => r.id as string);
      const full = rows.length === request.limit;
      const range = full ? ` AND id <= $${params.length + 1}` : '';
      const rangeParams = full ? [...params, ids[ids.length - 1]] : params;
      const inRange = Number((await c.query(`SELECT count(*) AS n ${eligible}${range}`, rangeParams)).rows[0]?.n ?? 0);
      const locked =
        inRange <= rows.length
          ? []
          : (await c.query(
              `SELECT id ${eligible}${range} AND id NOT IN (SELECT unnest($${rangeParams.length + 1}::text[])) ORDER BY id`,
              [...rangeParams, ids],
            )).rows.map((r) => r.id as string);
      return new PostgresLease(rows.map(rowToDataKey), locked, c, this.location, (client, updates, options) => this.#commitRewrap(client, updates, options));
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release(isConnectionError(err) ? (err as Error) : undefined);
      throw mapPgError(err, this.location);
    }
  }

  async #commitRewrap(
    c: PgClientLike,
    updates: readonly RewrapUpdate[],
    options: Parameters<RewrapLease['commit']>[1],
  ): Promise<{ applied: string[]; conflicts: string[] }> {
    const t = now();
    const res = updates.length === 0
      ? { rows: [] as Row[] }
      : await c.query(
          `UPDATE ${this.#t('data_keys')} AS d SET kek_kind = u.kind, kek_key_id = u.key_id, kek_version = u.kv, wrapped = u.ct, ` +
            'revision = d.revision + 1, updated_at = $7 ' +
            'FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[]) AS u(id, rev, kind, key_id, kv, ct) ' +
            "WHERE d.id = u.id AND d.revision = u.rev AND d.state <> 'destroyed' RETURNING d.id",
          [
            updates.map((u) => u.id),
            updates.map((u) => u.revision),
            updates.map((u) => u.wrapped.kind),
            updates.map((u) => u.wrapped.keyId),
            updates.map((u) => u.wrapped.keyVersion),
            updates.map((u) => buf(u.wrapped.ciphertext)),
            t,
          ],
        );
    const done = new Set(res.rows.map((r) => r.id as string));
    const applied = updates.filter((u) => done.has(u.id)).map((u) => u.id);
    const conflicts = updates.filter((u) => !done.has(u.id)).map((u) => u.id);
    if (options?.checkpoint) await this.#saveCheckpointIn(c, options.checkpoint, undefined);
    const audit = options?.audit?.(applied);
    if (audit) {
      assertAuditInput(audit);
      await this.#appendAuditIn(c, audit);
    }
    return { applied, conflicts };
  }

  async #saveCheckpointIn(c: PgClientLike, update: CheckpointUpdate, processed: number | undefined): Promise<Checkpoint> {
    const t = now();
    const row = (await c.query(
      `INSERT INTO ${this.#t('checkpoints')} AS k (name, cursor, processed, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) ` +
        'ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor, ' +
        `processed = ${processed === undefined ? 'k.processed + EXCLUDED.processed' : 'EXCLUDED.processed'}, ` +
        `data = ${update.data === undefined ? 'k.data' : 'EXCLUDED.data'}, updated_at = EXCLUDED.updated_at RETURNING *`,
      [update.name, update.cursor ?? null, processed ?? update.processedDelta, JSON.stringify(update.data ?? {}), t],
    )).rows[0];
    return rowToCheckpoint(row as Row);
  }

  async getCheckpoint(name: string): Promise<Checkpoint | undefined> {
    assertName(name, 'name');
    const r = (await this.#q(`SELECT * FROM ${this.#t('checkpoints')} WHERE name = $1`, [name]))[0];
    return r ? rowToCheckpoint(r) : undefined;
  }

  async listCheckpoints(prefix = ''): Promise<Checkpoint[]> {
    return (await this.#q(`SELECT * FROM ${this.#t('checkpoints')} WHERE left(name, $1) = $2 ORDER BY name`, [prefix.length, prefix])).map(rowToCheckpoint);
  }

  saveCheckpoint(update: CheckpointUpdate & { readonly processed?: number }): Promise<Checkpoint> {
    assertCheckpoint(update);
    return this.#tx((c) => this.#saveCheckpointIn(c, update, update.processed));
  }

  async deleteCheckpoint(name: string): Promise<void> {
    assertName(name, 'name');
    await this.#q(`DELETE FROM ${this.#t('checkpoints')} WHERE name = $1`, [name]);
  }

  appendAudit(input: AuditInput): Promise<AuditEntry> {
    assertAuditInput(input);
    return this.#tx((c) => this.#appendAuditIn(c, input));
  }

  async listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const limit = query.limit ?? 1000;
    assertLimit(limit, 'limit', 1_000_000);
    const params: unknown[] = [query.after ?? 0];
    let where = 'seq > $1';
    if (query.event !== undefined) {
      params.push(query.event);
      where += ` AND event = $${params.length}`;
    }
    if (query.subject !== undefined) {
      params.push(query.subject);
      where += ` AND subject = $${params.length}`;
    }
    params.push(limit);
    return (await this.#q(`SELECT * FROM ${this.#t('audit')} WHERE ${where} ORDER BY seq LIMIT $${params.length}`, params)).map(rowToAudit);
  }

  async auditHead(): Promise<AuditHead> {
    return parseHeadRow((await this.#q(`SELECT seq, hash, mac FROM ${this.#t('audit_head')} WHERE id = 1`))[0]);
  }

  verifyAudit(): Promise<AuditVerification> {
    return this.#tx(async (c): Promise<AuditVerification> => {
      // A repeatable-read snapshot: the entries, the head and the key row agree.
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const head = await this.#headIn(c, false);
      const key = this.#audit.key;
      if (key) {
        const changed = auditKeyRowChanged(key.record, await this.#auditKeyIn(c, false));
        if (changed) return { ok: false, keyed: true, entries: 0, head, problem: { kind: 'key', seq: key.record.keyedFrom, message: changed } };
      }
      return verifyAuditRows((await c.query(`SELECT * FROM ${this.#t('audit')} ORDER BY seq`)).rows, head, key);
    });
  }

  async isEmpty(): Promise<boolean> {
    const r = (await this.#q(
      `SELECT (SELECT count(*) FROM ${this.#t('install_lock')}) + (SELECT count(*) FROM ${this.#t('data_keys')}) + ` +
        `(SELECT count(*) FROM ${this.#t('audit')}) + (SELECT count(*) FROM ${this.#t('kek_versions')}) + (SELECT count(*) FROM ${this.#t('audit_key')}) AS n`,
    ))[0];
    return Number(r?.n) === 0;
  }

  importRecords(records: StoreRecords): Promise<void> {
    return this.#tx(async (c) => {
      await c.query(
        `LOCK TABLE ${this.#t('data_keys')}, ${this.#t('audit')}, ${this.#t('install_lock')}, ${this.#t('kek_versions')}, ${this.#t('audit_key')} IN EXCLUSIVE MODE`,
      );
      const r = (await c.query(
        `SELECT (SELECT count(*) FROM ${this.#t('install_lock')}) + (SELECT count(*) FROM ${this.#t('data_keys')}) + ` +
          `(SELECT count(*) FROM ${this.#t('audit')}) + (SELECT count(*) FROM ${this.#t('kek_versions')}) + (SELECT count(*) FROM ${this.#t('audit_key')}) AS n`,
      )).rows[0];
      if (Number(r?.n) !== 0) throw storeError('ALREADY_EXISTS', `the key store ${this.location} is not empty; restore only into a new store`);
      const l = records.installLock;
      if (l) {
        await c.query(`INSERT INTO ${this.#t('install_lock')} (id, kind, key_id, created_at, updated_at) VALUES (1, $1, $2, $3, $4)`, [l.kind, l.keyId, l.createdAt, l.updatedAt]);
      }
      for (const k of records.kekVersions) {
        await c.query(
          `INSERT INTO ${this.#t('kek_versions')} (kind, key_id, version, state, created_at, activated_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [k.kind, k.keyId, k.version, k.state, k.createdAt, k.activatedAt ?? null, k.retiredAt ?? null],
        );
      }
      for (let i = 0; i < records.dataKeys.length; i += 5000) {
        const chunk = records.dataKeys.slice(i, i + 5000);
        await c.query(
          `INSERT INTO ${this.#t('data_keys')} (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ` +
            'SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[], $10::bigint[], $11::text[], $12::text[])',
          [
            chunk.map((k) => k.id),
            chunk.map((k) => k.owner),
            chunk.map((k) => k.version),
            chunk.map((k) => k.state),
            chunk.map((k) => k.wrapped?.kind ?? null),
            chunk.map((k) => k.wrapped?.keyId ?? null),
            chunk.map((k) => k.wrapped?.keyVersion ?? null),
            chunk.map((k) => (k.wrapped ? buf(k.wrapped.ciphertext) : null)),
            chunk.map((k) => (k.keyCheck ? buf(k.keyCheck) : null)),
            chunk.map((k) => k.revision),
            chunk.map((k) => k.createdAt),
            chunk.map((k) => k.updatedAt),
          ],
        );
      }
      for (const e of records.audit) {
        await c.query(
          `INSERT INTO ${this.#t('audit')} (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [e.seq, e.time, e.actor, e.event, e.subject, JSON.stringify(e.details), e.prevHash, e.hash, e.mac ?? null],
        );
      }
      await c.query(`UPDATE ${this.#t('audit_head')} SET seq = $1, hash = $2, mac = $3 WHERE id = 1`, [
        records.auditHead.seq,
        records.auditHead.hash,
        records.auditHead.mac ?? null,
      ]);
      if (records.auditKey) await this.#insertAuditKeyIn(c, records.auditKey);
    });
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    this.#audit.close();
    if (pool && this.#ownPool) await pool.end();
  }
}

/** True when the connection itself is broken (the pool must discard it rather than reuse it). */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof KeyfoldError) return false;
  const code = pgCode(err);
  if (code !== undefined) return /^(08|57P)/.test(code) || code === 'ECONNRESET' || code === 'EPIPE';
  return /connection terminated|not queryable|connection error/i.test(err.message);
}

class PostgresLease implements RewrapLease {
  #client: PgClientLike | undefined;
  constructor(
    readonly keys: readonly DataKeyRecord[],
    readonly locked: readonly string[],
    client: PgClientLike,
    private readonly location: string,
    private readonly write: (
      c: PgClientLike,
      updates: readonly RewrapUpdate[],
      options: Parameters<RewrapLease['commit']>[1],
    ) => Promise<{ applied: string[]; conflicts: string[] }>,
  ) {
    this.#client = client;
  }

  async commit(updates: readonly RewrapUpdate[], options?: Parameters<RewrapLease['commit']>[1]): Promise<{ applied: string[]; conflicts: string[] }> {
    const c = this.#client;
    if (!c) throw new TypeError('this lease was already committed or released');
    this.#client = undefined;
    let broken: Error | undefined;
    try {
      assertUpdates(updates);
      const result = await this.write(c, updates, options);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      broken = err as Error;
      await c.query('ROLLBACK').catch(() => undefined);
      throw mapPgError(err, this.location);
    } finally {
      c.release(isConnectionError(broken) ? broken : undefined);
    }
  }

  async release(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (!c) return;
    try {
      await c.query('ROLLBACK');
      c.release();
    } catch (err) {
      c.release(err as Error);
    }
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
