/**
 * `SqliteKeyStore`: the embedded default. One file (mode 0600, WAL journal while open), opened with better-sqlite3.
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
import {
  ConfigError,
  KeyfoldError,
  PolicyError,
  ProviderError,
  assertPrivatePath,
  resolveSecurityMode,
  type KeyProvider,
  type SecurityMode,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { assertAuditInput, nextAuditEntry, parseAuditRow, parseHeadRow, verifyAuditRows, type AuditAppendState } from './audit.js';
import { AuditKeyHolder, anchorEntry, auditKeyRowChanged, isKeyProvider, parseAuditKeyRow, type AuditKey, type AuditKeyStorage } from './audit-key.js';
import { IntegrityError, StoreUpgradeRequiredError } from './errors.js';
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
  ownBytes,
  sameProvider,
  storeError,
} from './records.js';
import { SCHEMA_VERSION, SQLITE_APPLICATION_ID, assertKnownSchema, pendingMigrations } from './schema.js';
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

/** `Array.isArray` without narrowing a typed readonly array to `any[]`. */
function isArray(value: unknown): boolean {
  return Array.isArray(value);
}

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' ? (err as unknown as { code: string }).code : undefined;
}

/** Maps SQLite errors to coded errors. */
function mapSqliteError(err: unknown, location: string): Error {
  if (err instanceof KeyfoldError || err instanceof TypeError || err instanceof RangeError) return err;
  const code = sqliteCode(err);
  if (code === undefined) return err instanceof Error ? err : new Error(String(err));
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new IntegrityError(
      `the key store ${location} is damaged (${code}): it is not a readable SQLite database any more; ` +
        'restore it from a backup (keyfold restore). Nothing was written.',
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} is locked by another process (${code}); try again`, { cause: err });
  }
  if (code.startsWith('SQLITE_READONLY')) return readOnlyStore(location, err);
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM')) {
    return new ConfigError(`the key store ${location} cannot be opened for writing (${code})`, { cause: err });
  }
  if (code === 'SQLITE_FULL') {
    return new ProviderError('UNAVAILABLE', `the key store ${location} cannot grow: the disk is full (${code}). Nothing was written.`, { cause: err });
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) return err as Error;
  return new ProviderError('INTERNAL', `the key store ${location} failed (${code})`, { cause: err });
}

function str(v: unknown): string {
  return v as string;
}

function optStr(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : (v as string);
}

/** A blob as an owned Uint8Array: better-sqlite3 gives each blob a buffer of its own; anything else is copied. */
function blob(v: unknown): Uint8Array {
  const b = v as Uint8Array;
  return b.byteOffset === 0 && b.buffer.byteLength === b.length ? new Uint8Array(b.buffer, 0, b.length) : ownBytes(b);
}

function toWrapped(row: Row): WrappedKey | undefined {
  if (row.wrapped === null || row.wrapped === undefined) return undefined;
  return Object.freeze({
    kind: str(row.kek_kind),
    keyId: str(row.kek_key_id),
    keyVersion: str(row.kek_version),
    ciphertext: blob(row.wrapped),
  });
}

export function rowToDataKey(row: Row): DataKeyRecord {
  return {
    id: str(row.id),
    owner: str(row.owner),
    version: Number(row.version),
    state: row.state as DataKeyRecord['state'],
    wrapped: toWrapped(row),
    keyCheck: row.key_check === null || row.key_check === undefined ? undefined : blob(row.key_check),
    revision: Number(row.revision),
    createdAt: str(row.created_at),
    updatedAt: str(row.updated_at),
  };
}

/** A stored audit row as an entry. @throws IntegrityError naming the entry when it does not decode. */
export function rowToAudit(row: Row): AuditEntry {
  return parseAuditRow(row);
}

export function rowToKek(row: Row): KekVersionRecord {
  return {
    kind: str(row.kind),
    keyId: str(row.key_id),
    version: str(row.version),
    state: row.state as KekVersionRecord['state'],
    createdAt: str(row.created_at),
    activatedAt: optStr(row.activated_at),
    retiredAt: optStr(row.retired_at),
  };
}

export function rowToCheckpoint(row: Row): Checkpoint {
  return {
    name: str(row.name),
    cursor: optStr(row.cursor),
    processed: Number(row.processed),
    data: JSON.parse(str(row.data)) as Checkpoint['data'],
    createdAt: str(row.created_at),
    updatedAt: str(row.updated_at),
  };
}

function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** WHERE clause + params of a {@link DataKeyFilter}. */
function filterSql(filter: DataKeyFilter | undefined): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (filter?.owner !== undefined) {
    parts.push('owner = ?');
    params.push(filter.owner);
  }
  if (filter?.ownerPrefix !== undefined) {
    parts.push('substr(owner, 1, ?) = ?');
    params.push(filter.ownerPrefix.length, filter.ownerPrefix);
  }
  if (filter?.states !== undefined) {
    parts.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
    params.push(...filter.states);
  }
  if (filter?.kek !== undefined) {
    parts.push('kek_kind = ? AND kek_key_id = ?');
    params.push(filter.kek.kind, filter.kek.keyId);
    if (filter.kek.version !== undefined) {
      parts.push('kek_version = ?');
      params.push(filter.kek.version);
    }
  }
  return { sql: parts.length === 0 ? '1 = 1' : parts.join(' AND '), params };
}

function isConstraint(err: unknown): boolean {
  return sqliteCode(err)?.startsWith('SQLITE_CONSTRAINT') === true;
}

/**
 * A {@link KeyStore} in one SQLite file. Create it with {@link openSqliteKeyStore}. Methods throw as
 * {@link KeyStore} documents; a damaged file surfaces as `INTEGRITY_FAILED` from any method.
 * @example
 * ```ts
 * const store = await openSqliteKeyStore({ path: './.keyfold/store.db' });
 * console.log(await store.getInstallLock());
 * await store.close();
 * ```
 */
export class SqliteKeyStore implements KeyStore {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly schemaVersion = SCHEMA_VERSION;
  /** Opened with `readOnly`: every write fails with `CONFIG_INVALID`. */
  readonly readOnly: boolean;
  #db: Db | undefined;
  readonly #stmts = new Map<string, Database.Statement>();
  /** The unwrapped audit key, once opened (wiped on close). */
  readonly #audit = new AuditKeyHolder();

  /** @internal Use {@link openSqliteKeyStore}. */
  constructor(db: Db, location: string, readOnly: boolean) {
    this.#db = db;
    this.location = location;
    this.readOnly = readOnly;
  }

  #conn(): Db {
    if (!this.#db) throw closedError(this.location);
    return this.#db;
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#conn().prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` synchronously, mapping SQLite errors. */
  #run<T>(fn: (db: Db) => T): Promise<T> {
    try {
      return Promise.resolve(fn(this.#conn()));
    } catch (err) {
      return Promise.reject(mapSqliteError(err, this.location));
    }
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction. */
  #tx<T>(fn: (db: Db) => T): Promise<T> {
    return this.#run((db) => db.transaction(() => fn(db)).immediate());
  }

  #headSync(): AuditHead {
    return parseHeadRow(this.#stmt('SELECT seq, hash, mac FROM keyfold_audit_head WHERE id = 1').get() as Row | undefined);
  }

  #appendAuditSync(input: AuditInput, key: AuditKey | undefined = this.#audit.key): AuditEntry {
    const head = this.#headSync();
    const last = head.seq > 0 ? (this.#stmt('SELECT mac FROM keyfold_audit WHERE seq = ?').get(head.seq) as Row | undefined) : undefined;
    const state: AuditAppendState = { ...head, entryMac: typeof last?.mac === 'string' ? last.mac : undefined };
    const { entry, head: next } = nextAuditEntry(state, input, now(), key, this.location);
    this.#stmt(
      'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(entry.seq, entry.time, entry.actor, entry.event, entry.subject, JSON.stringify(entry.details), entry.prevHash, entry.hash, entry.mac ?? null);
    this.#stmt('UPDATE keyfold_audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1').run(next.seq, next.hash, next.mac ?? null);
    return entry;
  }

  #auditKeySync(): AuditKeyRecord | undefined {
    const row = this.#stmt('SELECT * FROM keyfold_audit_key WHERE id = 1').get() as Row | undefined;
    return row ? parseAuditKeyRow(row, this.location) : undefined;
  }

  getAuditKey(): Promise<AuditKeyRecord | undefined> {
    return this.#run(() => this.#auditKeySync());
  }

  openAuditKey(providers: KeyProvider | readonly KeyProvider[], options: { readonly actor?: string; readonly create?: boolean } = {}): Promise<AuditKeyRecord | undefined> {
    if (options.actor !== undefined) assertName(options.actor, 'options.actor');
    return this.#audit.open(this.#auditStorage, providers, options);
  }

  rewrapAuditKey(to: KeyProvider, actor: string): Promise<boolean> {
    assertName(actor, 'actor');
    return this.#audit.rewrap(this.#auditStorage, to, actor);
  }

  #insertAuditKeySync(r: AuditKeyRecord): void {
    this.#stmt(
      'INSERT INTO keyfold_audit_key (id, installation, keyed_from, kek_kind, kek_key_id, kek_version, wrapped, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(r.installation, r.keyedFrom, r.wrapped.kind, r.wrapped.keyId, r.wrapped.keyVersion, buf(r.wrapped.ciphertext), r.createdAt, r.updatedAt);
  }

  /** Compare-and-swap of the audit key row's wrapped key. @throws ProviderError UNAVAILABLE when it changed. */
  #replaceAuditKeySync(old: AuditKeyRecord, next: AuditKeyRecord): void {
    const w = next.wrapped;
    const o = old.wrapped;
    const changed = this.#stmt(
      'UPDATE keyfold_audit_key SET kek_kind = ?, kek_key_id = ?, kek_version = ?, wrapped = ?, updated_at = ? ' +
        'WHERE id = 1 AND installation = ? AND kek_kind = ? AND kek_key_id = ? AND kek_version = ? AND wrapped = ?',
    ).run(w.kind, w.keyId, w.keyVersion, buf(w.ciphertext), next.updatedAt, old.installation, o.kind, o.keyId, o.keyVersion, buf(o.ciphertext));
    if (changed.changes !== 1) throw new ProviderError('UNAVAILABLE', `the audit key of ${this.location} changed while it was re-wrapped (another rotation?); run again`);
  }

  /** Persistence of the audit key for {@link AuditKeyHolder}. */
  get #auditStorage(): AuditKeyStorage {
    return {
      location: this.location,
      getAuditKey: () => this.getAuditKey(),
      getInstallLock: () => this.getInstallLock(),
      insertAuditKey: (make, actor) =>
        this.#tx(() => {
          if (this.#auditKeySync()) return undefined;
          const head = this.#headSync();
          const key = make(head);
          this.#insertAuditKeySync(key.record);
          if (head.seq > 0) this.#appendAuditSync(anchorEntry(key.record, head, actor), key);
          else this.#stmt('UPDATE keyfold_audit_head SET mac = ? WHERE id = 1').run(key.headMac(head, undefined));
          return key;
        }),
      replaceAuditKeyWrap: (old, next, audit, key) =>
        this.#tx(() => {
          this.#replaceAuditKeySync(old, next);
          this.#appendAuditSync(audit, key);
        }),
    };
  }

  #lockSync(): InstallLock | undefined {
    const row = this.#stmt('SELECT kind, key_id, created_at, updated_at FROM keyfold_install_lock WHERE id = 1').get() as Row | undefined;
    return row ? { kind: str(row.kind), keyId: str(row.key_id), createdAt: str(row.created_at), updatedAt: str(row.updated_at) } : undefined;
  }

  getInstallLock(): Promise<InstallLock | undefined> {
    return this.#run(() => this.#lockSync());
  }

  async ensureInstallLock(provider: ProviderRef | KeyProvider, actor = 'keyfold'): Promise<InstallLock> {
    assertProviderRef(provider, 'provider');
    assertName(actor, 'actor');
    const current = await this.getInstallLock();
    if (current && !sameProvider(current, provider)) throw installLockMismatch(current, provider);
    if (isKeyProvider(provider)) await this.openAuditKey(provider, { actor });
    // Locked already: nothing to write (so a read-only store can be opened with its provider).
    if (current) return current;
    return this.#tx(() => {
      const lock = this.#lockSync();
      if (lock) {
        if (!sameProvider(lock, provider)) throw installLockMismatch(lock, provider);
        return lock;
      }
      const t = now();
      this.#stmt('INSERT INTO keyfold_install_lock (id, kind, key_id, created_at, updated_at) VALUES (1, ?, ?, ?, ?)').run(
        provider.kind,
        provider.keyId,
        t,
        t,
      );
      this.#appendAuditSync({ actor, event: 'install.lock', subject: kekName(provider), details: { kind: provider.kind, keyId: provider.keyId } });
      return { kind: provider.kind, keyId: provider.keyId, createdAt: t, updatedAt: t };
    });
  }

  async changeInstallLock(from: ProviderRef, to: ProviderRef | KeyProvider, actor: string, details: AuditInput['details'] = {}): Promise<InstallLock> {
    assertProviderRef(from, 'from');
    assertProviderRef(to, 'to');
    assertName(actor, 'actor');
    // The audit key moves with the lock, in the same transaction: wrapped under `to` first (async), written below.
    const storage = this.#auditStorage;
    const old = this.#audit.key?.record;
    const moved = await this.#audit.prepareMove(storage, to);
    try {
      return await this.#tx(() => {
        if (moved && old) this.#replaceAuditKeySync(old, moved.record);
        return this.#changeLockSync(from, to, actor, details, this.#audit.key);
      });
    } catch (err) {
      if (moved && old) this.#audit.abortMove(moved, old);
      throw err;
    }
  }

  #changeLockSync(from: ProviderRef, to: ProviderRef, actor: string, details: AuditInput['details'], key: AuditKey | undefined): InstallLock {
    const lock = this.#lockSync();
    if (!lock) throw storeError('CONFIG_INVALID', `the key store ${this.location} has no install lock to migrate`);
    if (!sameProvider(lock, from)) throw installLockMismatch(lock, from);
    const left = Number(
      (this.#stmt("SELECT count(*) AS n FROM keyfold_data_keys WHERE kek_kind = ? AND kek_key_id = ? AND state <> 'destroyed'").get(
        from.kind,
        from.keyId,
      ) as Row).n,
    );
    if (left > 0 && !sameProvider(from, to)) {
      throw new PolicyError(
        'POLICY_VIOLATION',
        `${left} data key(s) are still wrapped under ${kekName(from)}; the install lock moves to ${kekName(to)} only once none are`,
      );
    }
    const t = now();
    this.#stmt('UPDATE keyfold_install_lock SET kind = ?, key_id = ?, updated_at = ? WHERE id = 1').run(to.kind, to.keyId, t);
    this.#appendAuditSync({ actor, event: 'install.migrate', subject: kekName(to), details: { ...details, from: kekName(from), to: kekName(to) } }, key);
    return { kind: to.kind, keyId: to.keyId, createdAt: lock.createdAt, updatedAt: t };
  }

  listKekVersions(filter?: ProviderRef): Promise<KekVersionRecord[]> {
    if (filter !== undefined) assertProviderRef(filter, 'filter');
    return this.#run(() => {
      const rows = (filter
        ? this.#stmt('SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ?').all(filter.kind, filter.keyId)
        : this.#stmt('SELECT * FROM keyfold_kek_versions').all()) as Row[];
      return rows.map(rowToKek).sort(compareKek);
    });
  }

  recordKekVersion(kek: KekRef, options: { readonly activate: boolean; readonly actor: string }): Promise<KekVersionRecord> {
    assertKekRef(kek, 'kek');
    assertName(options?.actor, 'options.actor');
    return this.#tx(() => {
      const get = (): KekVersionRecord | undefined => {
        const r = this.#stmt('SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ? AND version = ?').get(kek.kind, kek.keyId, kek.version) as
          | Row
          | undefined;
        return r ? rowToKek(r) : undefined;
      };
      const existing = get();
      if (existing?.state === 'retired') {
        throw new ProviderError('KEY_VERSION_RETIRED', `KEK version ${kekName(kek)} was retired on ${existing.retiredAt ?? '?'}; it cannot be used again`);
      }
      const t = now();
      if (!existing) {
        this.#stmt('INSERT INTO keyfold_kek_versions (kind, key_id, version, state, created_at, activated_at) VALUES (?, ?, ?, ?, ?, ?)').run(
          kek.kind,
          kek.keyId,
          kek.version,
          'available',
          t,
          null,
        );
      }
      let changed = !existing;
      if (options.activate && existing?.state !== 'active') {
        this.#stmt("UPDATE keyfold_kek_versions SET state = 'available' WHERE kind = ? AND key_id = ? AND state = 'active'").run(kek.kind, kek.keyId);
        this.#stmt("UPDATE keyfold_kek_versions SET state = 'active', activated_at = ? WHERE kind = ? AND key_id = ? AND version = ?").run(
          t,
          kek.kind,
          kek.keyId,
          kek.version,
        );
        changed = true;
      }
      if (changed) {
        this.#appendAuditSync({
          actor: options.actor,
          event: options.activate ? 'kek.activate' : 'kek.register',
          subject: kekName(kek),
          details: { kind: kek.kind, keyId: kek.keyId, version: kek.version },
        });
      }
      return get() as KekVersionRecord;
    });
  }

  retireKekVersion(kek: KekRef, actor: string): Promise<KekVersionRecord> {
    assertKekRef(kek, 'kek');
    assertName(actor, 'actor');
    return this.#tx(() => {
      const r = this.#stmt('SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ? AND version = ?').get(kek.kind, kek.keyId, kek.version) as
        | Row
        | undefined;
      if (!r) throw new ProviderError('KEY_NOT_FOUND', `KEK version ${kekName(kek)} is not registered in this store`);
      const rec = rowToKek(r);
      if (rec.state === 'retired') return rec;
      if (rec.state === 'active') {
        throw new PolicyError('POLICY_VIOLATION', `KEK version ${kekName(kek)} is the active version; activate another version before retiring it`);
      }
      const refs = Number(
        (this.#stmt(
          "SELECT count(*) AS n FROM keyfold_data_keys WHERE kek_kind = ? AND kek_key_id = ? AND kek_version = ? AND state <> 'destroyed'",
        ).get(kek.kind, kek.keyId, kek.version) as Row).n,
      );
      if (refs > 0) {
        throw new PolicyError(
          'POLICY_VIOLATION',
          `KEK version ${kekName(kek)} still wraps ${refs} data key(s); re-wrap them first (keyfold kek rotate), then retire it`,
        );
      }
      const auditKey = this.#auditKeySync();
      if (auditKey && auditKey.wrapped.kind === kek.kind && auditKey.wrapped.keyId === kek.keyId && auditKey.wrapped.keyVersion === kek.version) {
        throw new PolicyError('POLICY_VIOLATION', `KEK version ${kekName(kek)} still wraps the audit key; re-wrap it first (keyfold kek rotate), then retire it`);
      }
      const t = now();
      this.#stmt("UPDATE keyfold_kek_versions SET state = 'retired', retired_at = ? WHERE kind = ? AND key_id = ? AND version = ?").run(
        t,
        kek.kind,
        kek.keyId,
        kek.version,
      );
      this.#appendAuditSync({ actor, event: 'kek.retire', subject: kekName(kek), details: { kind: kek.kind, keyId: kek.keyId, version: kek.version } });
      return { ...rec, state: 'retired', retiredAt: t };
    });
  }

  kekUsage(): Promise<KekUsage[]> {
    return this.#run(() =>
      (this.#stmt(
        'SELECT kek_kind, kek_key_id, kek_version, state, count(*) AS n FROM keyfold_data_keys WHERE wrapped IS NOT NULL GROUP BY kek_kind, kek_key_id, kek_version, state',
      ).all() as Row[]).map((r) => ({
        kek: { kind: str(r.kek_kind), keyId: str(r.kek_key_id), version: str(r.kek_version) },
        state: r.state as KekUsage['state'],
        count: Number(r.n),
      })),
    );
  }

  insertDataKeys(keys: readonly NewDataKey[], audit?: AuditInput): Promise<void> {
    if (!isArray(keys)) throw new TypeError('keys must be an array');
    keys.forEach(assertNewDataKey);
    if (audit !== undefined) assertAuditInput(audit);
    return this.#tx(() => {
      const t = now();
      const ins = this.#stmt(
        'INSERT INTO keyfold_data_keys (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)',
      );
      for (const k of keys) {
        try {
          ins.run(k.id, k.owner, k.version, k.state ?? 'active', k.wrapped.kind, k.wrapped.keyId, k.wrapped.keyVersion, buf(k.wrapped.ciphertext), buf(k.keyCheck), t, t);
        } catch (err) {
          if (isConstraint(err)) {
            throw storeError('ALREADY_EXISTS', `data key ${k.id} (owner ${k.owner}, version ${k.version}) already exists; nothing was written`, err);
          }
          throw err;
        }
      }
      if (audit) this.#appendAuditSync(audit);
    });
  }

  addDataKeyVersion(owner: string, key: Omit<NewDataKey, 'owner' | 'state'>, audit: AuditInput): Promise<DataKeyRecord> {
    assertName(owner, 'owner');
    assertAuditInput(audit);
    return this.#tx(() => {
      const rows = this.#stmt('SELECT version, state FROM keyfold_data_keys WHERE owner = ? ORDER BY version').all(owner) as Row[];
      if (rows.length === 0) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no data key`);
      if (rows.some((r) => r.state === 'destroyed')) throw new ProviderError('KEY_NOT_FOUND', `the keys of ${owner} were destroyed`);
      const version = Number((rows[rows.length - 1] as Row).version) + 1;
      if (key.version !== version) {
        throw new ProviderError('UNAVAILABLE', `${owner} was rotated concurrently (next version is ${version}, not ${key.version}); nothing was written, try again`);
      }
      const next: NewDataKey = { ...key, owner, version, state: 'active' };
      assertNewDataKey(next, 0);
      const t = now();
      this.#stmt("UPDATE keyfold_data_keys SET state = 'retired', revision = revision + 1, updated_at = ? WHERE owner = ? AND state = 'active'").run(t, owner);
      try {
        this.#stmt(
          'INSERT INTO keyfold_data_keys (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ' +
            "VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, 1, ?, ?)",
        ).run(next.id, owner, version, next.wrapped.kind, next.wrapped.keyId, next.wrapped.keyVersion, buf(next.wrapped.ciphertext), buf(next.keyCheck), t, t);
      } catch (err) {
        if (isConstraint(err)) throw storeError('ALREADY_EXISTS', `data key ${next.id} already exists; nothing was written`, err);
        throw err;
      }
      this.#appendAuditSync({ ...audit, details: { ...(audit.details ?? {}), version } });
      return rowToDataKey(this.#stmt('SELECT * FROM keyfold_data_keys WHERE id = ?').get(next.id) as Row);
    });
  }

  getDataKey(id: string): Promise<DataKeyRecord | undefined> {
    assertName(id, 'id');
    return this.#run(() => {
      const r = this.#stmt('SELECT * FROM keyfold_data_keys WHERE id = ?').get(id) as Row | undefined;
      return r ? rowToDataKey(r) : undefined;
    });
  }

  findDataKey(owner: string, version?: number): Promise<DataKeyRecord | undefined> {
    assertName(owner, 'owner');
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) throw new TypeError('version must be a positive integer');
    return this.#run(() => {
      const r = (version === undefined
        ? this.#stmt("SELECT * FROM keyfold_data_keys WHERE owner = ? AND state = 'active' ORDER BY version DESC LIMIT 1").get(owner)
        : this.#stmt('SELECT * FROM keyfold_data_keys WHERE owner = ? AND version = ?').get(owner, version)) as Row | undefined;
      return r ? rowToDataKey(r) : undefined;
    });
  }

  listDataKeys(options: DataKeyFilter & { readonly after?: string; readonly limit?: number } = {}): Promise<DataKeyRecord[]> {
    assertFilter(options);
    const limit = options.limit ?? 1000;
    assertLimit(limit, 'limit');
    if (options.after !== undefined) assertName(options.after, 'after');
    const { sql, params } = filterSql(options);
    return this.#run((db) =>
      (db
        .prepare(`SELECT * FROM keyfold_data_keys WHERE ${sql}${options.after === undefined ? '' : ' AND id > ?'} ORDER BY id LIMIT ?`)
        .all(...params, ...(options.after === undefined ? [] : [options.after]), limit) as Row[]).map(rowToDataKey),
    );
  }

  countDataKeys(filter?: DataKeyFilter): Promise<number> {
    assertFilter(filter);
    const { sql, params } = filterSql(filter);
    return this.#run((db) => Number((db.prepare(`SELECT count(*) AS n FROM keyfold_data_keys WHERE ${sql}`).get(...params) as Row).n));
  }

  listOwners(ownerPrefix?: string): Promise<{ owner: string; versions: number; activeVersion: number | undefined; destroyed: boolean }[]> {
    if (ownerPrefix !== undefined) assertName(ownerPrefix, 'ownerPrefix');
    return this.#run(() =>
      (this.#stmt(
        "SELECT owner, count(*) AS n, max(CASE WHEN state = 'active' THEN version END) AS active, max(state = 'destroyed') AS destroyed " +
          'FROM keyfold_data_keys WHERE substr(owner, 1, ?) = ? GROUP BY owner ORDER BY owner',
      ).all((ownerPrefix ?? '').length, ownerPrefix ?? '') as Row[]).map((r) => ({
        owner: str(r.owner),
        versions: Number(r.n),
        activeVersion: r.active === null ? undefined : Number(r.active),
        destroyed: Number(r.destroyed) === 1,
      })),
    );
  }

  updateDataKey(id: string, expectedRevision: number, change: DataKeyChange, audit?: AuditInput): Promise<DataKeyRecord | undefined> {
    assertName(id, 'id');
    assertRevision(expectedRevision, 'expectedRevision');
    assertChange(change);
    if (audit !== undefined) assertAuditInput(audit);
    return this.#tx(() => {
      const r = this.#stmt('SELECT * FROM keyfold_data_keys WHERE id = ?').get(id) as Row | undefined;
      if (!r || Number(r.revision) !== expectedRevision) return undefined;
      const cur = rowToDataKey(r);
      const wrapped = change.wrapped === undefined ? cur.wrapped : change.wrapped ?? undefined;
      const state = change.state ?? cur.state;
      const keyCheck = state === 'destroyed' ? undefined : cur.keyCheck;
      const t = now();
      this.#stmt(
        'UPDATE keyfold_data_keys SET state = ?, kek_kind = ?, kek_key_id = ?, kek_version = ?, wrapped = ?, key_check = ?, revision = revision + 1, updated_at = ? WHERE id = ? AND revision = ?',
      ).run(
        state,
        wrapped?.kind ?? null,
        wrapped?.keyId ?? null,
        wrapped?.keyVersion ?? null,
        wrapped ? buf(wrapped.ciphertext) : null,
        keyCheck ? buf(keyCheck) : null,
        t,
        id,
        expectedRevision,
      );
      if (audit) this.#appendAuditSync(audit);
      return rowToDataKey(this.#stmt('SELECT * FROM keyfold_data_keys WHERE id = ?').get(id) as Row);
    });
  }

  destroyOwner(owner: string, audit: AuditInput): Promise<number> {
    assertName(owner, 'owner');
    assertAuditInput(audit);
    return this.#tx(() => {
      const total = Number((this.#stmt('SELECT count(*) AS n FROM keyfold_data_keys WHERE owner = ?').get(owner) as Row).n);
      if (total === 0) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no data key`);
      const n = this.#stmt(
        "UPDATE keyfold_data_keys SET state = 'destroyed', wrapped = NULL, key_check = NULL, kek_kind = NULL, kek_key_id = NULL, kek_version = NULL, " +
          "revision = revision + 1, updated_at = ? WHERE owner = ? AND state <> 'destroyed'",
      ).run(now(), owner).changes;
      this.#appendAuditSync({ ...audit, details: { ...(audit.details ?? {}), destroyed: n } });
      return n;
    });
  }

  leaseForRewrap(request: LeaseRequest): Promise<RewrapLease> {
    assertLease(request);
    const { target, shard } = request;
    const from = request.from ?? [];
    const fromSql = from.length === 0 ? '' : ` AND (${from.map(() => '(kek_kind = ? AND kek_key_id = ?)').join(' OR ')})`;
    const shardSql = shard === undefined ? '' : ' AND keyfold_shard(id, ?) = ?';
    const sql =
      "SELECT * FROM keyfold_data_keys WHERE state <> 'destroyed' AND wrapped IS NOT NULL AND id > ? " +
      `AND NOT (kek_kind = ? AND kek_key_id = ? AND kek_version = ?)${fromSql}${shardSql} ORDER BY id LIMIT ?`;
    return this.#run(() => {
      const rows = this.#stmt(sql).all(
        request.after ?? '',
        target.kind,
        target.keyId,
        target.version,
        ...from.flatMap((f) => [f.kind, f.keyId]),
        ...(shard === undefined ? [] : [shard.count, shard.index]),
        request.limit,
      ) as Row[];
      return new SqliteLease(rows.map(rowToDataKey), (updates, options) => this.#commitRewrap(updates, options));
    });
  }

  #commitRewrap(
    updates: readonly RewrapUpdate[],
    options: Parameters<RewrapLease['commit']>[1],
  ): Promise<{ applied: string[]; conflicts: string[] }> {
    return this.#tx(() => {
      const t = now();
      const upd = this.#stmt(
        'UPDATE keyfold_data_keys SET kek_kind = ?, kek_key_id = ?, kek_version = ?, wrapped = ?, revision = revision + 1, updated_at = ? ' +
          "WHERE id = ? AND revision = ? AND state <> 'destroyed'",
      );
      const applied: string[] = [];
      const conflicts: string[] = [];
      for (const u of updates) {
        const n = upd.run(u.wrapped.kind, u.wrapped.keyId, u.wrapped.keyVersion, buf(u.wrapped.ciphertext), t, u.id, u.revision).changes;
        (n === 1 ? applied : conflicts).push(u.id);
      }
      if (options?.checkpoint) this.#saveCheckpointSync(options.checkpoint, undefined);
      const audit = options?.audit?.(applied);
      if (audit) {
        assertAuditInput(audit);
        this.#appendAuditSync(audit);
      }
      return { applied, conflicts };
    });
  }

  #saveCheckpointSync(update: CheckpointUpdate, processed: number | undefined): Checkpoint {
    const t = now();
    const existing = this.#stmt('SELECT * FROM keyfold_checkpoints WHERE name = ?').get(update.name) as Row | undefined;
    if (existing) {
      const prev = rowToCheckpoint(existing);
      this.#stmt('UPDATE keyfold_checkpoints SET cursor = ?, processed = ?, data = ?, updated_at = ? WHERE name = ?').run(
        update.cursor ?? null,
        processed ?? prev.processed + update.processedDelta,
        JSON.stringify(update.data ?? prev.data),
        t,
        update.name,
      );
    } else {
      this.#stmt('INSERT INTO keyfold_checkpoints (name, cursor, processed, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        update.name,
        update.cursor ?? null,
        processed ?? update.processedDelta,
        JSON.stringify(update.data ?? {}),
        t,
        t,
      );
    }
    return rowToCheckpoint(this.#stmt('SELECT * FROM keyfold_checkpoints WHERE name = ?').get(update.name) as Row);
  }

  getCheckpoint(name: string): Promise<Checkpoint | undefined> {
    assertName(name, 'name');
    return this.#run(() => {
      const r = this.#stmt('SELECT * FROM keyfold_checkpoints WHERE name = ?').get(name) as Row | undefined;
      return r ? rowToCheckpoint(r) : undefined;
    });
  }

  listCheckpoints(prefix = ''): Promise<Checkpoint[]> {
    return this.#run(() =>
      (this.#stmt('SELECT * FROM keyfold_checkpoints WHERE substr(name, 1, ?) = ? ORDER BY name').all(prefix.length, prefix) as Row[]).map(rowToCheckpoint),
    );
  }

  saveCheckpoint(update: CheckpointUpdate & { readonly processed?: number }): Promise<Checkpoint> {
    assertCheckpoint(update);
    return this.#tx(() => this.#saveCheckpointSync(update, update.processed));
  }

  deleteCheckpoint(name: string): Promise<void> {
    assertName(name, 'name');
    return this.#tx(() => {
      this.#stmt('DELETE FROM keyfold_checkpoints WHERE name = ?').run(name);
    });
  }

  appendAudit(input: AuditInput): Promise<AuditEntry> {
    assertAuditInput(input);
    return this.#tx(() => this.#appendAuditSync(input));
  }

  listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const limit = query.limit ?? 1000;
    assertLimit(limit, 'limit', 1_000_000);
    const parts = ['seq > ?'];
    const params: unknown[] = [query.after ?? 0];
    if (query.event !== undefined) {
      parts.push('event = ?');
      params.push(query.event);
    }
    if (query.subject !== undefined) {
      parts.push('subject = ?');
      params.push(query.subject);
    }
    return this.#run((db) =>
      (db.prepare(`SELECT * FROM keyfold_audit WHERE ${parts.join(' AND ')} ORDER BY seq LIMIT ?`).all(...params, limit) as Row[]).map(rowToAudit),
    );
  }

  auditHead(): Promise<AuditHead> {
    return this.#run(() => this.#headSync());
  }

  verifyAudit(): Promise<AuditVerification> {
    return this.#run((db) => {
      // One read transaction: the entries, the head and the key row are a consistent snapshot.
      return db.transaction((): AuditVerification => {
        const head = this.#headSync();
        const key = this.#audit.key;
        if (key) {
          const changed = auditKeyRowChanged(key.record, this.#auditKeySync());
          if (changed) return { ok: false, keyed: true, entries: 0, head, problem: { kind: 'key', seq: key.record.keyedFrom, message: changed } };
        }
        return verifyAuditRows(this.#stmt('SELECT * FROM keyfold_audit ORDER BY seq').all() as Row[], head, key);
      }).deferred();
    });
  }

  isEmpty(): Promise<boolean> {
    return this.#run(() => {
      const n = (t: string): number => Number((this.#conn().prepare(`SELECT count(*) AS n FROM ${t}`).get() as Row).n);
      return n('keyfold_install_lock') + n('keyfold_data_keys') + n('keyfold_audit') + n('keyfold_kek_versions') + n('keyfold_audit_key') === 0;
    });
  }

  importRecords(records: StoreRecords): Promise<void> {
    return this.#tx(() => {
      const n = (t: string): number => Number((this.#conn().prepare(`SELECT count(*) AS n FROM ${t}`).get() as Row).n);
      if (n('keyfold_install_lock') + n('keyfold_data_keys') + n('keyfold_audit') + n('keyfold_kek_versions') + n('keyfold_audit_key') !== 0) {
        throw storeError('ALREADY_EXISTS', `the key store ${this.location} is not empty; restore only into a new store`);
      }
      const l = records.installLock;
      if (l) {
        this.#stmt('INSERT INTO keyfold_install_lock (id, kind, key_id, created_at, updated_at) VALUES (1, ?, ?, ?, ?)').run(l.kind, l.keyId, l.createdAt, l.updatedAt);
      }
      const kv = this.#stmt(
        'INSERT INTO keyfold_kek_versions (kind, key_id, version, state, created_at, activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      for (const k of records.kekVersions) kv.run(k.kind, k.keyId, k.version, k.state, k.createdAt, k.activatedAt ?? null, k.retiredAt ?? null);
      const dk = this.#stmt(
        'INSERT INTO keyfold_data_keys (id, owner, version, state, kek_kind, kek_key_id, kek_version, wrapped, key_check, revision, created_at, updated_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      for (const k of records.dataKeys) {
        dk.run(
          k.id,
          k.owner,
          k.version,
          k.state,
          k.wrapped?.kind ?? null,
          k.wrapped?.keyId ?? null,
          k.wrapped?.keyVersion ?? null,
          k.wrapped ? buf(k.wrapped.ciphertext) : null,
          k.keyCheck ? buf(k.keyCheck) : null,
          k.revision,
          k.createdAt,
          k.updatedAt,
        );
      }
      const au = this.#stmt('INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      for (const e of records.audit) au.run(e.seq, e.time, e.actor, e.event, e.subject, JSON.stringify(e.details), e.prevHash, e.hash, e.mac ?? null);
      this.#stmt('UPDATE keyfold_audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1').run(records.auditHead.seq, records.auditHead.hash, records.auditHead.mac ?? null);
      const k = records.auditKey;
      if (k) {
        this.#stmt(
          'INSERT INTO keyfold_audit_key (id, installation, keyed_from, kek_kind, kek_key_id, kek_version, wrapped, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(k.installation, k.keyedFrom, k.wrapped.kind, k.wrapped.keyId, k.wrapped.keyVersion, buf(k.wrapped.ciphertext), k.createdAt, k.updatedAt);
      }
    });
  }

  close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#audit.close();
    this.#stmts.clear();
    if (db?.open) {
      if (!this.readOnly) {
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

class SqliteLease implements RewrapLease {
  #done = false;
  constructor(
    readonly keys: readonly DataKeyRecord[],
    private readonly write: (updates: readonly RewrapUpdate[], options: Parameters<RewrapLease['commit']>[1]) => Promise<{ applied: string[]; conflicts: string[] }>,
  ) {}

  commit(updates: readonly RewrapUpdate[], options?: Parameters<RewrapLease['commit']>[1]): Promise<{ applied: string[]; conflicts: string[] }> {
    if (this.#done) return Promise.reject(new TypeError('this lease was already committed or released'));
    this.#done = true;
    assertUpdates(updates);
    return this.write(updates, options);
  }

  release(): Promise<void> {
    this.#done = true;
    return Promise.resolve();
  }
}

/** Validates re-wrap updates. */
export function assertUpdates(updates: readonly RewrapUpdate[]): void {
  if (!isArray(updates)) throw new TypeError('updates must be an array');
  updates.forEach((u: RewrapUpdate, i) => {
    assertName(u?.id, `updates[${i}].id`);
    assertRevision(u.revision, `updates[${i}].revision`);
    if (!u.wrapped || !(u.wrapped.ciphertext instanceof Uint8Array)) throw new TypeError(`updates[${i}].wrapped must be a WrappedKey`);
  });
}

/** The shard of a data key id: FNV-1a (32-bit) of its UTF-16 code units, modulo `count`. */
export function shardOf(id: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

export function assertLease(request: LeaseRequest): void {
  if (request === null || typeof request !== 'object') throw new TypeError('request must be an object');
  assertKekRef(request.target, 'request.target');
  assertLimit(request.limit, 'request.limit');
  if (request.after !== undefined) assertName(request.after, 'request.after');
  if (request.shard !== undefined) {
    const { index, count } = request.shard;
    if (!Number.isSafeInteger(count) || count < 1 || count > 1024) throw new RangeError('request.shard.count must be an integer from 1 to 1024');
    if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new RangeError('request.shard.index must be an integer from 0 to count - 1');
  }
  if (request.from !== undefined) {
    if (!isArray(request.from)) throw new TypeError('request.from must be an array');
    request.from.forEach((f, i) => assertProviderRef(f, `request.from[${i}]`));
  }
}

export function assertChange(change: DataKeyChange): void {
  if (change === null || typeof change !== 'object') throw new TypeError('change must be an object');
  if (change.state !== undefined && !['active', 'retired', 'destroyed'].includes(change.state)) throw new TypeError('change.state is unknown');
  if (change.wrapped === null && change.state !== 'destroyed') {
    throw new TypeError('change.wrapped may be null only with state "destroyed"');
  }
  if (change.state === 'destroyed' && change.wrapped !== null) {
    throw new TypeError('destroying a key deletes its wrapped material: pass wrapped: null');
  }
  if (change.wrapped) assertProviderRef(change.wrapped, 'change.wrapped');
}

export function assertCheckpoint(update: CheckpointUpdate & { readonly processed?: number }): void {
  if (update === null || typeof update !== 'object') throw new TypeError('checkpoint must be an object');
  assertName(update.name, 'checkpoint.name');
  if (update.cursor !== undefined) assertName(update.cursor, 'checkpoint.cursor');
  if (!Number.isSafeInteger(update.processedDelta) || update.processedDelta < 0) throw new TypeError('checkpoint.processedDelta must be a non-negative integer');
  if (update.processed !== undefined && (!Number.isSafeInteger(update.processed) || update.processed < 0)) {
    throw new TypeError('checkpoint.processed must be a non-negative integer');
  }
}

export function compareKek(a: KekVersionRecord, b: KekVersionRecord): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.keyId !== b.keyId) return a.keyId < b.keyId ? -1 : 1;
  return a.version.length - b.version.length || (a.version < b.version ? -1 : a.version > b.version ? 1 : 0);
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

/** A write refused because the file or its directory is read-only. */
function readOnlyStore(path: string, cause?: unknown): ConfigError {
  return new ConfigError(
    `the key store ${path} cannot be written: the file or its directory is read-only (commands that only read the ` +
      'store work there). Nothing was written.',
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
      tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Row[]).map((r) => str(r.name)));
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
          checked.function('keyfold_shard', { deterministic: true }, (id: unknown, count: unknown) => shardOf(String(id), Number(count)));
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
    db.function('keyfold_shard', { deterministic: true }, (id: unknown, count: unknown) => shardOf(String(id), Number(count)));
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
