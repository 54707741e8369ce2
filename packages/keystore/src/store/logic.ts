/**
 * The key store logic, written once for every SQL engine: each {@link KeyStore} method as statements and
 * transactions over a {@link Dialect} (SQLite, PostgreSQL).
 *
 * Rules, and why they hold on both engines:
 * - Every change is one transaction, and every change that matters to an operator appends its audit entry in that
 *   same transaction, so a killed process leaves either all of it or none.
 * - The audit append reads and locks the one head row (`forUpdate`), always as the last lock a transaction takes:
 *   the chain stays linear across processes and no two transactions wait on each other in a cycle.
 * - Data key writes are compare-and-swap on the revision: a write whose revision moved on changes nothing.
 * - Where a decision reads rows it then changes (activation, retirement, a new key version, destruction), it reads
 *   them locked (`forUpdate`, or a table lock where it counts rows that others could add), so two processes never
 *   both act on the same reading. On SQLite the transaction's write lock covers all of it.
 * - Argument checks run before anything touches the database; caller mistakes are TypeError / RangeError.
 * @module
 */
import { PolicyError, ProviderError, assertKeyProvider, type KeyProvider, type WrappedKey } from '@keyfold/envelope-core';
import { assertAuditInput, nextAuditEntry, parseAuditRow, parseHeadRow, verifyAuditRows } from '../audit.js';
import { AuditKeyHolder, anchorEntry, auditKeyRowChanged, isKeyProvider, parseAuditKeyRow, type AuditKey, type AuditKeyStorage } from '../audit-key.js';
import { CheckpointLeasedError } from '../errors.js';
import { SharedRegistration, registrationOptions } from '../process-registry.js';
import {
  assertChange,
  assertCheckpoint,
  assertLeaseTtl,
  assertFilter,
  assertKekRef,
  assertLease,
  assertLimit,
  assertName,
  assertNewDataKey,
  assertProviderRef,
  assertRevision,
  assertUpdates,
  installLockMismatch,
  isArray,
  kekName,
  later,
  now,
  sameProvider,
  storeError,
} from '../records.js';
import { SCHEMA_VERSION } from '../schema.js';
import type {
  AuditEntry,
  AuditHead,
  AuditInput,
  AuditKeyRecord,
  AuditQuery,
  AuditVerification,
  Checkpoint,
  CheckpointClaim,
  CheckpointClaimResult,
  CheckpointUpdate,
  DataKeyChange,
  DataKeyFilter,
  DataKeyRecord,
  InstallLock,
  KekActivation,
  KekRef,
  KekUsage,
  KekVersionRecord,
  KeyStore,
  KeyStoreBackend,
  LeaseRequest,
  NewDataKey,
  ProcessRecord,
  ProcessRegistration,
  ProcessRegistrationOptions,
  ProcessUpsert,
  ProviderRef,
  RewrapLease,
  RewrapUpdate,
  StoreRecords,
} from '../types.js';
import { DuplicateRowError, type DataKeyRow, type Dialect, type DialectLease, type Row, type SqlRunner, type Transaction } from './dialect.js';
import { buf, rowToCheckpoint, rowToDataKey, rowToInstallLock, rowToKek, rowToProcess } from './rows.js';

type CommitOptions = Parameters<RewrapLease['commit']>[1];
type CommitResult = { applied: string[]; conflicts: string[] };

const INSERT_AUDIT = 'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';
const SELECT_AUDIT_HEAD = 'SELECT seq, hash, mac FROM keyfold_audit_head WHERE id = 1';
const SET_AUDIT_HEAD = 'UPDATE keyfold_audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1';
const SELECT_AUDIT_KEY = 'SELECT * FROM keyfold_audit_key WHERE id = 1';
const INSERT_AUDIT_KEY =
  'INSERT INTO keyfold_audit_key (id, installation, keyed_from, kek_kind, kek_key_id, kek_version, wrapped, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)';
const SELECT_INSTALL_LOCK = 'SELECT kind, key_id, created_at, updated_at FROM keyfold_install_lock WHERE id = 1';
const INSERT_INSTALL_LOCK = 'INSERT INTO keyfold_install_lock (id, kind, key_id, created_at, updated_at) VALUES (1, ?, ?, ?, ?)';
const SELECT_KEK_VERSION = 'SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ? AND version = ?';
const SELECT_DATA_KEY = 'SELECT * FROM keyfold_data_keys WHERE id = ?';
const COUNT_RECORDS =
  'SELECT (SELECT count(*) FROM keyfold_install_lock) + (SELECT count(*) FROM keyfold_data_keys) + ' +
  '(SELECT count(*) FROM keyfold_audit) + (SELECT count(*) FROM keyfold_kek_versions) + (SELECT count(*) FROM keyfold_audit_key) AS n';

/** The order of KEK versions in listings: by kind, key id, then version (numeric versions numerically). */
function compareKek(a: KekVersionRecord, b: KekVersionRecord): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.keyId !== b.keyId) return a.keyId < b.keyId ? -1 : 1;
  return a.version.length - b.version.length || (a.version < b.version ? -1 : a.version > b.version ? 1 : 0);
}

/** WHERE condition + parameters of a {@link DataKeyFilter}. */
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

/** A data key row as the columns store it. */
function dataKeyRow(k: NewDataKey | DataKeyRecord, revision: number, createdAt: string, updatedAt: string): DataKeyRow {
  const wrapped: WrappedKey | undefined = k.wrapped;
  return {
    id: k.id,
    owner: k.owner,
    version: k.version,
    state: k.state ?? 'active',
    kekKind: wrapped?.kind ?? null,
    kekKeyId: wrapped?.keyId ?? null,
    kekVersion: wrapped?.keyVersion ?? null,
    wrapped: wrapped?.ciphertext ?? null,
    keyCheck: k.keyCheck ?? null,
    revision,
    createdAt,
    updatedAt,
  };
}

/**
 * The {@link KeyStore} over a {@link Dialect}. `SqliteKeyStore` and `PostgresKeyStore` are this class on their
 * dialect; open them with `openSqliteKeyStore` / `openPostgresKeyStore`. Methods throw as {@link KeyStore} documents.
 */
export abstract class SqlKeyStore implements KeyStore {
  abstract readonly backend: KeyStoreBackend;
  readonly location: string;
  readonly schemaVersion = SCHEMA_VERSION;
  readonly #d: Dialect;
  /** The unwrapped audit key, once opened (wiped on close). */
  readonly #audit = new AuditKeyHolder();
  /** This store object's process registrations, by KEK (`kind\u0000keyId`), each started once. */
  readonly #registrations = new Map<string, Promise<SharedRegistration>>();

  /** @internal */
  protected constructor(dialect: Dialect) {
    this.#d = dialect;
    this.location = dialect.location;
  }

  async #headIn(reader: SqlRunner, forUpdate: boolean): Promise<AuditHead> {
    return parseHeadRow(await reader.get(`${SELECT_AUDIT_HEAD}${forUpdate ? this.#d.forUpdate : ''}`));
  }

  async #appendAuditIn(tx: Transaction, input: AuditInput, key: AuditKey | undefined = this.#audit.key): Promise<AuditEntry> {
    const head = await this.#headIn(tx, true);
    const last = head.seq > 0 ? await tx.get('SELECT mac FROM keyfold_audit WHERE seq = ?', [head.seq]) : undefined;
    const { entry, head: next } = nextAuditEntry({ ...head, entryMac: typeof last?.mac === 'string' ? last.mac : undefined }, input, now(), key, this.location);
    await tx.run(INSERT_AUDIT, [
      entry.seq,
      entry.time,
      entry.actor,
      entry.event,
      entry.subject,
      JSON.stringify(entry.details),
      entry.prevHash,
      entry.hash,
      entry.mac ?? null,
    ]);
    await tx.run(SET_AUDIT_HEAD, [next.seq, next.hash, next.mac ?? null]);
    return entry;
  }

  async #auditKeyIn(reader: SqlRunner, forUpdate: boolean): Promise<AuditKeyRecord | undefined> {
    const row = await reader.get(`${SELECT_AUDIT_KEY}${forUpdate ? this.#d.forUpdate : ''}`);
    return row ? parseAuditKeyRow(row, this.location) : undefined;
  }

  getAuditKey(): Promise<AuditKeyRecord | undefined> {
    return this.#auditKeyIn(this.#d, false);
  }

  openAuditKey(providers: KeyProvider | readonly KeyProvider[], options: { readonly actor?: string; readonly create?: boolean } = {}): Promise<AuditKeyRecord | undefined> {
    if (options.actor !== undefined) assertName(options.actor, 'options.actor');
    return this.#audit.open(this.#auditStorage, providers, options);
  }

  rewrapAuditKey(to: KeyProvider, actor: string): Promise<boolean> {
    assertName(actor, 'actor');
    return this.#audit.rewrap(this.#auditStorage, to, actor);
  }

  async #insertAuditKeyIn(tx: Transaction, r: AuditKeyRecord): Promise<void> {
    await tx.run(INSERT_AUDIT_KEY, [r.installation, r.keyedFrom, r.wrapped.kind, r.wrapped.keyId, r.wrapped.keyVersion, buf(r.wrapped.ciphertext), r.createdAt, r.updatedAt]);
  }

  /** Compare-and-swap of the audit key row's wrapped key. @throws ProviderError UNAVAILABLE when it changed. */
  async #replaceAuditKeyIn(tx: Transaction, old: AuditKeyRecord, next: AuditKeyRecord): Promise<void> {
    const w = next.wrapped;
    const o = old.wrapped;
    const changed = await tx.run(
      'UPDATE keyfold_audit_key SET kek_kind = ?, kek_key_id = ?, kek_version = ?, wrapped = ?, updated_at = ? ' +
        'WHERE id = 1 AND installation = ? AND kek_kind = ? AND kek_key_id = ? AND kek_version = ? AND wrapped = ?',
      [w.kind, w.keyId, w.keyVersion, buf(w.ciphertext), next.updatedAt, old.installation, o.kind, o.keyId, o.keyVersion, buf(o.ciphertext)],
    );
    if (changed !== 1) throw new ProviderError('UNAVAILABLE', `the audit key of ${this.location} changed while it was re-wrapped (another rotation?); run again`);
  }

  /** Persistence of the audit key for {@link AuditKeyHolder}. */
  get #auditStorage(): AuditKeyStorage {
    return {
      location: this.location,
      getAuditKey: () => this.getAuditKey(),
      getInstallLock: () => this.getInstallLock(),
      insertAuditKey: (make, actor) =>
        this.#d.transaction(async (tx) => {
          // The head row lock serialises this with every append and with another process keying the log.
          const head = await this.#headIn(tx, true);
          if (await this.#auditKeyIn(tx, false)) return undefined;
          const key = make(head);
          await this.#insertAuditKeyIn(tx, key.record);
          if (head.seq > 0) await this.#appendAuditIn(tx, anchorEntry(key.record, head, actor), key);
          else await tx.run('UPDATE keyfold_audit_head SET mac = ? WHERE id = 1', [key.headMac(head, undefined)]);
          return key;
        }),
      replaceAuditKeyWrap: (old, next, audit, key) =>
        this.#d.transaction(async (tx) => {
          await this.#replaceAuditKeyIn(tx, old, next);
          await this.#appendAuditIn(tx, audit, key);
        }),
    };
  }

  async #lockIn(tx: Transaction, forUpdate: boolean): Promise<InstallLock | undefined> {
    const row = await tx.get(`${SELECT_INSTALL_LOCK}${forUpdate ? this.#d.forUpdate : ''}`);
    return row ? rowToInstallLock(row) : undefined;
  }

  async getInstallLock(): Promise<InstallLock | undefined> {
    const row = await this.#d.get(SELECT_INSTALL_LOCK);
    return row ? rowToInstallLock(row) : undefined;
  }

  async ensureInstallLock(provider: ProviderRef | KeyProvider, actor = 'keyfold'): Promise<InstallLock> {
    assertProviderRef(provider, 'provider');
    assertName(actor, 'actor');
    const current = await this.getInstallLock();
    if (current && !sameProvider(current, provider)) throw installLockMismatch(current, provider);
    if (isKeyProvider(provider)) await this.openAuditKey(provider, { actor });
    // Locked already: nothing to write, no table lock taken (so a read-only store can be opened with its provider).
    if (current) return current;
    return this.#d.transaction(async (tx) => {
      // Serialise concurrent first opens: whoever inserts first wins, the others compare.
      await tx.lockTables(['keyfold_install_lock'], 'share row exclusive');
      const lock = await this.#lockIn(tx, false);
      if (lock) {
        if (!sameProvider(lock, provider)) throw installLockMismatch(lock, provider);
        return lock;
      }
      const t = now();
      await tx.run(INSERT_INSTALL_LOCK, [provider.kind, provider.keyId, t, t]);
      await this.#appendAuditIn(tx, { actor, event: 'install.lock', subject: kekName(provider), details: { kind: provider.kind, keyId: provider.keyId } });
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
    return this.#d.transaction(async (tx) => {
      if (move) await this.#replaceAuditKeyIn(tx, move.old, move.moved.record);
      const lock = await this.#lockIn(tx, true);
      if (!lock) throw storeError('CONFIG_INVALID', `the key store ${this.location} has no install lock to migrate`);
      if (!sameProvider(lock, from)) throw installLockMismatch(lock, from);
      // Block new keys under the old provider while we count.
      await tx.lockTables(['keyfold_data_keys'], 'share');
      const left = Number(
        (await tx.get("SELECT count(*) AS n FROM keyfold_data_keys WHERE kek_kind = ? AND kek_key_id = ? AND state <> 'destroyed'", [from.kind, from.keyId]))?.n,
      );
      if (left > 0 && !sameProvider(from, to)) {
        throw new PolicyError(
          'POLICY_VIOLATION',
          `${left} data key(s) are still wrapped under ${kekName(from)}; the install lock moves to ${kekName(to)} only once none are`,
        );
      }
      const t = now();
      await tx.run('UPDATE keyfold_install_lock SET kind = ?, key_id = ?, updated_at = ? WHERE id = 1', [to.kind, to.keyId, t]);
      await this.#appendAuditIn(tx, { actor, event: 'install.migrate', subject: kekName(to), details: { ...details, from: kekName(from), to: kekName(to) } });
      return { kind: to.kind, keyId: to.keyId, createdAt: lock.createdAt, updatedAt: t };
    });
  }

  listKekVersions(filter?: ProviderRef): Promise<KekVersionRecord[]> {
    if (filter !== undefined) assertProviderRef(filter, 'filter');
    const rows = filter
      ? this.#d.all('SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ?', [filter.kind, filter.keyId])
      : this.#d.all('SELECT * FROM keyfold_kek_versions');
    return rows.then((r) => r.map(rowToKek).sort(compareKek));
  }

  recordKekVersion(kek: KekRef, options: { readonly activate: boolean; readonly actor: string }): Promise<KekVersionRecord> {
    assertKekRef(kek, 'kek');
    assertName(options?.actor, 'options.actor');
    return this.#d.transaction(async (tx) => {
      const t = now();
      const inserted =
        (await tx.run(
          "INSERT INTO keyfold_kek_versions (kind, key_id, version, state, created_at) VALUES (?, ?, ?, 'available', ?) ON CONFLICT DO NOTHING",
          [kek.kind, kek.keyId, kek.version, t],
        )) === 1;
      // Lock every version of this KEK: activation changes two rows.
      const rows = await tx.all(`SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ? ORDER BY version${this.#d.forUpdate}`, [kek.kind, kek.keyId]);
      const existing = rowToKek(rows.find((r) => r.version === kek.version) as Row);
      if (existing.state === 'retired') {
        throw new ProviderError('KEY_VERSION_RETIRED', `KEK version ${kekName(kek)} was retired on ${existing.retiredAt ?? '?'}; it cannot be used again`);
      }
      let changed = inserted;
      let from: string | undefined;
      if (options.activate && existing.state !== 'active') {
        from = await this.#movePointerIn(tx, kek, rows, t);
        changed = true;
      }
      if (changed) {
        await this.#appendAuditIn(tx, {
          actor: options.actor,
          event: options.activate ? 'kek.activate' : 'kek.register',
          subject: kekName(kek),
          details: {
            kind: kek.kind,
            keyId: kek.keyId,
            version: kek.version,
            ...(options.activate ? { from: from ?? null, to: kek.version } : {}),
          },
        });
      }
      return rowToKek((await tx.get(SELECT_KEK_VERSION, [kek.kind, kek.keyId, kek.version]))!);
    });
  }

  /** Makes `kek` the active version of its KEK (rows: every version of it, locked); returns the one active before. */
  async #movePointerIn(tx: Transaction, kek: KekRef, rows: readonly Row[], t: string): Promise<string | undefined> {
    const before = rows.find((r) => r.state === 'active')?.version as string | undefined;
    await tx.run("UPDATE keyfold_kek_versions SET state = 'available' WHERE kind = ? AND key_id = ? AND state = 'active'", [kek.kind, kek.keyId]);
    await tx.run("UPDATE keyfold_kek_versions SET state = 'active', activated_at = ? WHERE kind = ? AND key_id = ? AND version = ?", [
      t,
      kek.kind,
      kek.keyId,
      kek.version,
    ]);
    return before;
  }

  async getActiveKekVersion(kek: ProviderRef): Promise<KekVersionRecord | undefined> {
    assertProviderRef(kek, 'kek');
    const row = await this.#d.get("SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ? AND state = 'active'", [kek.kind, kek.keyId]);
    return row ? rowToKek(row) : undefined;
  }

  activateKekVersion(kek: KekRef, actor: string): Promise<KekActivation> {
    assertKekRef(kek, 'kek');
    assertName(actor, 'actor');
    return this.#d.transaction(async (tx) => {
      // Lock every version of this KEK: the pointer changes two rows.
      const rows = await tx.all(`SELECT * FROM keyfold_kek_versions WHERE kind = ? AND key_id = ? ORDER BY version${this.#d.forUpdate}`, [kek.kind, kek.keyId]);
      const row = rows.find((r) => r.version === kek.version);
      if (!row) {
        const known = rows.filter((r) => r.state !== 'retired').map((r) => r.version as string).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
        throw new ProviderError(
          'KEY_NOT_FOUND',
          `KEK version ${kekName(kek)} is not registered in this store (registered versions: ${known.length === 0 ? 'none' : known.join(', ')}); ` +
            'register it first (keyfold kek add, or a process that has loaded it)',
        );
      }
      const rec = rowToKek(row);
      if (rec.state === 'retired') {
        throw new ProviderError('KEY_VERSION_RETIRED', `KEK version ${kekName(kek)} was retired on ${rec.retiredAt ?? '?'}; it cannot be activated again`);
      }
      if (rec.state === 'active') return { from: kek.version, record: rec, changed: false };
      const t = now();
      const from = await this.#movePointerIn(tx, kek, rows, t);
      await this.#appendAuditIn(tx, {
        actor,
        event: 'kek.activate',
        subject: kekName(kek),
        details: { kind: kek.kind, keyId: kek.keyId, version: kek.version, from: from ?? null, to: kek.version },
      });
      return { from, record: rowToKek((await tx.get(SELECT_KEK_VERSION, [kek.kind, kek.keyId, kek.version]))!), changed: true };
    });
  }

  retireKekVersion(kek: KekRef, actor: string): Promise<KekVersionRecord> {
    assertKekRef(kek, 'kek');
    assertName(actor, 'actor');
    return this.#d.transaction(async (tx) => {
      const r = await tx.get(`${SELECT_KEK_VERSION}${this.#d.forUpdate}`, [kek.kind, kek.keyId, kek.version]);
      if (!r) throw new ProviderError('KEY_NOT_FOUND', `KEK version ${kekName(kek)} is not registered in this store`);
      const rec = rowToKek(r);
      if (rec.state === 'retired') return rec;
      if (rec.state === 'active') {
        throw new PolicyError('POLICY_VIOLATION', `KEK version ${kekName(kek)} is the active version; activate another version before retiring it`);
      }
      // Keep keys from being re-wrapped back onto it (or inserted under it) while we count.
      await tx.lockTables(['keyfold_data_keys'], 'share');
      const refs = Number(
        (await tx.get(
          "SELECT count(*) AS n FROM keyfold_data_keys WHERE kek_kind = ? AND kek_key_id = ? AND kek_version = ? AND state <> 'destroyed'",
          [kek.kind, kek.keyId, kek.version],
        ))?.n,
      );
      if (refs > 0) {
        throw new PolicyError(
          'POLICY_VIOLATION',
          `KEK version ${kekName(kek)} still wraps ${refs} data key(s); re-wrap them first (keyfold kek rotate), then retire it`,
        );
      }
      const auditKey = await this.#auditKeyIn(tx, true);
      if (auditKey && auditKey.wrapped.kind === kek.kind && auditKey.wrapped.keyId === kek.keyId && auditKey.wrapped.keyVersion === kek.version) {
        throw new PolicyError('POLICY_VIOLATION', `KEK version ${kekName(kek)} still wraps the audit key; re-wrap it first (keyfold kek rotate), then retire it`);
      }
      const t = now();
      await tx.run("UPDATE keyfold_kek_versions SET state = 'retired', retired_at = ? WHERE kind = ? AND key_id = ? AND version = ?", [
        t,
        kek.kind,
        kek.keyId,
        kek.version,
      ]);
      await this.#appendAuditIn(tx, { actor, event: 'kek.retire', subject: kekName(kek), details: { kind: kek.kind, keyId: kek.keyId, version: kek.version } });
      return { ...rec, state: 'retired', retiredAt: t };
    });
  }

  async kekUsage(): Promise<KekUsage[]> {
    const rows = await this.#d.all(
      'SELECT kek_kind, kek_key_id, kek_version, state, count(*) AS n FROM keyfold_data_keys WHERE wrapped IS NOT NULL GROUP BY kek_kind, kek_key_id, kek_version, state',
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
    return this.#d.transaction(async (tx) => {
      const t = now();
      try {
        await tx.insertDataKeys(keys.map((k) => dataKeyRow(k, 1, t, t)));
      } catch (err) {
        if (!(err instanceof DuplicateRowError)) throw err;
        const k = err.row;
        throw storeError(
          'ALREADY_EXISTS',
          k
            ? `data key ${k.id} (owner ${k.owner}, version ${k.version}) already exists; nothing was written`
            : 'a data key with one of these ids (or owner + version) already exists; nothing was written',
          err.cause,
        );
      }
      if (audit) await this.#appendAuditIn(tx, audit);
    });
  }

  addDataKeyVersion(owner: string, key: Omit<NewDataKey, 'owner' | 'state'>, audit: AuditInput): Promise<DataKeyRecord> {
    assertName(owner, 'owner');
    assertAuditInput(audit);
    return this.#d.transaction(async (tx) => {
      const rows = await tx.all(`SELECT version, state FROM keyfold_data_keys WHERE owner = ? ORDER BY version${this.#d.forUpdate}`, [owner]);
      if (rows.length === 0) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no data key`);
      // Shredded owners have every version destroyed; one old version destroyed on its own does not stop rotation.
      if (rows.every((r) => r.state === 'destroyed')) throw new ProviderError('KEY_NOT_FOUND', `the keys of ${owner} were destroyed`);
      const version = Number(rows[rows.length - 1]?.version) + 1;
      if (key.version !== version) {
        throw new ProviderError('UNAVAILABLE', `${owner} was rotated concurrently (next version is ${version}, not ${key.version}); nothing was written, try again`);
      }
      const next: NewDataKey = { ...key, owner, version, state: 'active' };
      assertNewDataKey(next, 0);
      const t = now();
      await tx.run("UPDATE keyfold_data_keys SET state = 'retired', revision = revision + 1, updated_at = ? WHERE owner = ? AND state = 'active'", [t, owner]);
      try {
        await tx.insertDataKeys([dataKeyRow(next, 1, t, t)]);
      } catch (err) {
        if (err instanceof DuplicateRowError) throw storeError('ALREADY_EXISTS', `data key ${next.id} already exists; nothing was written`, err.cause);
        throw err;
      }
      await this.#appendAuditIn(tx, { ...audit, details: { ...(audit.details ?? {}), version } });
      return rowToDataKey((await tx.get(SELECT_DATA_KEY, [next.id]))!);
    });
  }

  getDataKey(id: string): Promise<DataKeyRecord | undefined> {
    assertName(id, 'id');
    return this.#d.get(SELECT_DATA_KEY, [id]).then((r) => (r ? rowToDataKey(r) : undefined));
  }

  findDataKey(owner: string, version?: number): Promise<DataKeyRecord | undefined> {
    assertName(owner, 'owner');
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) throw new TypeError('version must be a positive integer');
    const row =
      version === undefined
        ? this.#d.get("SELECT * FROM keyfold_data_keys WHERE owner = ? AND state = 'active' ORDER BY version DESC LIMIT 1", [owner])
        : this.#d.get('SELECT * FROM keyfold_data_keys WHERE owner = ? AND version = ?', [owner, version]);
    return row.then((r) => (r ? rowToDataKey(r) : undefined));
  }

  listDataKeys(options: DataKeyFilter & { readonly after?: string; readonly limit?: number } = {}): Promise<DataKeyRecord[]> {
    assertFilter(options);
    const limit = options.limit ?? 1000;
    assertLimit(limit, 'limit');
    if (options.after !== undefined) assertName(options.after, 'after');
    const { sql, params } = filterSql(options);
    if (options.after !== undefined) params.push(options.after);
    return this.#d
      .all(`SELECT * FROM keyfold_data_keys WHERE ${sql}${options.after === undefined ? '' : ' AND id > ?'} ORDER BY id LIMIT ?`, [...params, limit])
      .then((rows) => rows.map(rowToDataKey));
  }

  countDataKeys(filter?: DataKeyFilter): Promise<number> {
    assertFilter(filter);
    const { sql, params } = filterSql(filter);
    return this.#d.get(`SELECT count(*) AS n FROM keyfold_data_keys WHERE ${sql}`, params).then((r) => Number(r?.n));
  }

  listOwners(ownerPrefix?: string): Promise<{ owner: string; versions: number; activeVersion: number | undefined; destroyed: boolean }[]> {
    if (ownerPrefix !== undefined) assertName(ownerPrefix, 'ownerPrefix');
    const prefix = ownerPrefix ?? '';
    return this.#d
      .all(
        "SELECT owner, count(*) AS n, max(CASE WHEN state = 'active' THEN version END) AS active, " +
          "min(CASE WHEN state = 'destroyed' THEN 1 ELSE 0 END) AS destroyed " +
          'FROM keyfold_data_keys WHERE substr(owner, 1, ?) = ? GROUP BY owner ORDER BY owner',
        [prefix.length, prefix],
      )
      .then((rows) =>
        rows.map((r) => ({
          owner: r.owner as string,
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
    return this.#d.transaction(async (tx) => {
      const r = await tx.get(`${SELECT_DATA_KEY}${this.#d.forUpdate}`, [id]);
      if (!r || Number(r.revision) !== expectedRevision) return undefined;
      const cur = rowToDataKey(r);
      const wrapped = change.wrapped === undefined ? cur.wrapped : (change.wrapped ?? undefined);
      const state = change.state ?? cur.state;
      const keyCheck = state === 'destroyed' ? undefined : cur.keyCheck;
      const updated = await tx.get(
        'UPDATE keyfold_data_keys SET state = ?, kek_kind = ?, kek_key_id = ?, kek_version = ?, wrapped = ?, key_check = ?, ' +
          'revision = revision + 1, updated_at = ? WHERE id = ? AND revision = ? RETURNING *',
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
      );
      if (audit) await this.#appendAuditIn(tx, audit);
      return rowToDataKey(updated!);
    });
  }

  destroyOwner(owner: string, audit: AuditInput): Promise<number> {
    assertName(owner, 'owner');
    assertAuditInput(audit);
    return this.#d.transaction(async (tx) => {
      const rows = await tx.all(`SELECT id FROM keyfold_data_keys WHERE owner = ?${this.#d.forUpdate}`, [owner]);
      if (rows.length === 0) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no data key`);
      const n = await tx.run(
        "UPDATE keyfold_data_keys SET state = 'destroyed', wrapped = NULL, key_check = NULL, kek_kind = NULL, kek_key_id = NULL, kek_version = NULL, " +
          "revision = revision + 1, updated_at = ? WHERE owner = ? AND state <> 'destroyed'",
        [now(), owner],
      );
      await this.#appendAuditIn(tx, { ...audit, details: { ...(audit.details ?? {}), destroyed: n } });
      return n;
    });
  }

  destroyDataKeyVersion(owner: string, version: number, audit: AuditInput): Promise<boolean> {
    assertName(owner, 'owner');
    if (!Number.isSafeInteger(version) || version < 1) throw new TypeError('version must be a positive integer');
    assertAuditInput(audit);
    return this.#d.transaction(async (tx) => {
      // Lock every version of the owner: a concurrent rotation must not make this version active meanwhile.
      const rows = await tx.all(`SELECT version, state FROM keyfold_data_keys WHERE owner = ? ORDER BY version${this.#d.forUpdate}`, [owner]);
      const row = rows.find((r) => Number(r.version) === version);
      if (!row) throw new ProviderError('KEY_NOT_FOUND', `${owner} has no key version ${version}`);
      if (row.state === 'destroyed') return false;
      if (row.state === 'active') {
        throw new PolicyError('POLICY_VIOLATION', `version ${version} is the active key of ${owner}; rotate to a new version first, then destroy this one`);
      }
      await tx.run(
        "UPDATE keyfold_data_keys SET state = 'destroyed', wrapped = NULL, key_check = NULL, kek_kind = NULL, kek_key_id = NULL, kek_version = NULL, " +
          "revision = revision + 1, updated_at = ? WHERE owner = ? AND version = ? AND state = 'retired'",
        [now(), owner, version],
      );
      await this.#appendAuditIn(tx, { ...audit, details: { ...(audit.details ?? {}), version } });
      return true;
    });
  }

  leaseForRewrap(request: LeaseRequest): Promise<RewrapLease> {
    assertLease(request);
    return this.#leaseForRewrap(request);
  }

  async #leaseForRewrap(request: LeaseRequest): Promise<RewrapLease> {
    const { target, shard } = request;
    const from = request.from ?? [];
    let where = "state <> 'destroyed' AND wrapped IS NOT NULL AND id > ? AND NOT (kek_kind = ? AND kek_key_id = ? AND kek_version = ?)";
    const params: unknown[] = [request.after ?? '', target.kind, target.keyId, target.version];
    if (from.length > 0) {
      where += ` AND (${from.map((f) => `(kek_kind = ? AND kek_key_id = ?${f.version === undefined ? '' : ' AND kek_version = ?'})`).join(' OR ')})`;
      params.push(...from.flatMap((f) => (f.version === undefined ? [f.kind, f.keyId] : [f.kind, f.keyId, f.version])));
    }
    if (shard !== undefined) {
      where += ` AND ${this.#d.shardCondition}`;
      params.push(shard.count, shard.index);
    }
    const lease = await this.#d.lease(where, params, request.limit);
    try {
      return new StoreLease(lease.rows.map(rowToDataKey), lease, (tx, updates, options) => this.#commitRewrap(tx, updates, options));
    } catch (err) {
      await lease.release();
      throw err;
    }
  }

  async #commitRewrap(tx: Transaction, updates: readonly RewrapUpdate[], options: CommitOptions): Promise<CommitResult> {
    const ok = await tx.rewrapDataKeys(updates, now());
    const applied: string[] = [];
    const conflicts: string[] = [];
    updates.forEach((u, i) => (ok[i] ? applied : conflicts).push(u.id));
    if (options?.checkpoint) await this.#saveCheckpointIn(tx, options.checkpoint, undefined);
    const audit = options?.audit?.(applied);
    if (audit) {
      assertAuditInput(audit);
      await this.#appendAuditIn(tx, audit);
    }
    return { applied, conflicts };
  }

  async #saveCheckpointIn(tx: Transaction, update: CheckpointUpdate, processed: number | undefined): Promise<Checkpoint> {
    const t = now();
    if (update.lease !== undefined) {
      // Under a lease: only while its owner still holds it (renewed by this write), else nothing of the transaction.
      const row = await tx.get(
        `UPDATE keyfold_checkpoints SET cursor = ?, processed = ${processed === undefined ? 'processed + ?' : '?'}, ` +
          `${update.data === undefined ? '' : 'data = ?, '}updated_at = ?, lease_expires_at = ? WHERE name = ? AND lease_owner = ? RETURNING *`,
        [
          update.cursor ?? null,
          processed ?? update.processedDelta,
          ...(update.data === undefined ? [] : [JSON.stringify(update.data)]),
          t,
          later(update.lease.ttlMs),
          update.name,
          update.lease.owner,
        ],
      );
      if (!row) {
        throw new ProviderError(
          'UNAVAILABLE',
          `the lease of checkpoint ${update.name} was lost (it expired and another worker took it over, or the checkpoint was deleted); nothing of this batch was written`,
        );
      }
      return rowToCheckpoint(row);
    }
    const row = await tx.get(
      'INSERT INTO keyfold_checkpoints AS k (name, cursor, processed, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, ' +
        `processed = ${processed === undefined ? 'k.processed + excluded.processed' : 'excluded.processed'}, ` +
        `data = ${update.data === undefined ? 'k.data' : 'excluded.data'}, updated_at = excluded.updated_at RETURNING *`,
      [update.name, update.cursor ?? null, processed ?? update.processedDelta, JSON.stringify(update.data ?? {}), t, t],
    );
    return rowToCheckpoint(row!);
  }

  getCheckpoint(name: string): Promise<Checkpoint | undefined> {
    assertName(name, 'name');
    return this.#d.get('SELECT * FROM keyfold_checkpoints WHERE name = ?', [name]).then((r) => (r ? rowToCheckpoint(r) : undefined));
  }

  listCheckpoints(prefix = ''): Promise<Checkpoint[]> {
    return this.#d
      .all('SELECT * FROM keyfold_checkpoints WHERE substr(name, 1, ?) = ? ORDER BY name', [prefix.length, prefix])
      .then((rows) => rows.map(rowToCheckpoint));
  }

  saveCheckpoint(update: CheckpointUpdate & { readonly processed?: number }): Promise<Checkpoint> {
    assertCheckpoint(update);
    return this.#d.transaction((tx) => this.#saveCheckpointIn(tx, update, update.processed));
  }

  deleteCheckpoint(name: string, owner?: string): Promise<void> {
    assertName(name, 'name');
    if (owner === undefined) return this.#d.run('DELETE FROM keyfold_checkpoints WHERE name = ?', [name]).then(() => undefined);
    assertName(owner, 'owner', 512);
    return this.#d.run('DELETE FROM keyfold_checkpoints WHERE name = ? AND (lease_owner IS NULL OR lease_owner = ?)', [name, owner]).then(() => undefined);
  }

  claimCheckpoint(claim: CheckpointClaim): Promise<CheckpointClaimResult> {
    if (claim === null || typeof claim !== 'object') throw new TypeError('claim must be an object');
    assertName(claim.name, 'claim.name');
    assertName(claim.owner, 'claim.owner', 512);
    assertLeaseTtl(claim.ttlMs, 'claim.ttlMs');
    if (claim.isDead !== undefined && typeof claim.isDead !== 'function') throw new TypeError('claim.isDead must be a function');
    const data = JSON.stringify(claim.data ?? {});
    return this.#d.transaction(async (tx) => {
      const t = now();
      const expires = later(claim.ttlMs);
      const inserted =
        (await tx.run(
          'INSERT INTO keyfold_checkpoints (name, cursor, processed, data, created_at, updated_at, lease_owner, lease_expires_at) ' +
            'VALUES (?, NULL, 0, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
          [claim.name, data, t, t, claim.owner, expires],
        )) === 1;
      const row = await tx.get(`SELECT * FROM keyfold_checkpoints WHERE name = ?${this.#d.forUpdate}`, [claim.name]);
      const current = rowToCheckpoint(row!);
      if (inserted) return { checkpoint: current, existed: false, takenOver: undefined };
      const held = current.lease;
      const foreign = held !== undefined && held.owner !== claim.owner;
      if (foreign && held.expiresAt > t && !(claim.isDead?.(held.owner) ?? false)) throw new CheckpointLeasedError(claim.name, held);
      const taken = await tx.get('UPDATE keyfold_checkpoints SET lease_owner = ?, lease_expires_at = ? WHERE name = ? RETURNING *', [claim.owner, expires, claim.name]);
      return { checkpoint: rowToCheckpoint(taken!), existed: true, takenOver: foreign ? held : undefined };
    });
  }

  renewCheckpointLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    assertName(name, 'name');
    assertName(owner, 'owner', 512);
    assertLeaseTtl(ttlMs, 'ttlMs');
    return this.#d.run('UPDATE keyfold_checkpoints SET lease_expires_at = ? WHERE name = ? AND lease_owner = ?', [later(ttlMs), name, owner]).then((n) => n === 1);
  }

  releaseCheckpointLease(name: string, owner: string): Promise<void> {
    assertName(name, 'name');
    assertName(owner, 'owner', 512);
    return this.#d
      .run('UPDATE keyfold_checkpoints SET lease_owner = NULL, lease_expires_at = NULL WHERE name = ? AND lease_owner = ?', [name, owner])
      .then(() => undefined);
  }

  async registerProcess(provider: KeyProvider, options?: ProcessRegistrationOptions): Promise<ProcessRegistration> {
    assertKeyProvider(provider, 'provider');
    const opts = registrationOptions(options);
    const key = `${provider.kind}\u0000${provider.keyId}`;
    let shared = this.#registrations.get(key);
    if (shared === undefined) {
      const reg = new SharedRegistration(this.#processStorage, provider, opts, () => {
        if (this.#registrations.get(key) === shared) this.#registrations.delete(key);
      });
      shared = reg.start().then(() => reg);
      this.#registrations.set(key, shared);
      shared.catch(() => {
        if (this.#registrations.get(key) === shared) this.#registrations.delete(key);
      });
    }
    return (await shared).handle();
  }

  /** The registry's writes for {@link SharedRegistration}. */
  get #processStorage(): { upsertProcess(r: ProcessUpsert): Promise<ProcessRecord>; removeProcess(id: string): Promise<void> } {
    return {
      upsertProcess: (r) =>
        this.#d.transaction(async (tx) => {
          const at = Date.now();
          const t = new Date(at).toISOString();
          // Records that expired are gone for good: whoever registers next clears them.
          await tx.run('DELETE FROM keyfold_processes WHERE expires_at < ? AND id <> ?', [t, r.id]);
          const row = await tx.get(
            'INSERT INTO keyfold_processes (id, host, pid, started_at, kind, key_id, versions, label, registered_at, refreshed_at, expires_at) ' +
              'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET versions = excluded.versions, ' +
              'refreshed_at = excluded.refreshed_at, expires_at = excluded.expires_at RETURNING *',
            [r.id, r.host, r.pid, r.startedAt, r.kind, r.keyId, JSON.stringify(r.versions), r.label, t, t, new Date(at + r.ttlMs).toISOString()],
          );
          return rowToProcess(row!);
        }),
      removeProcess: (id) => this.#d.run('DELETE FROM keyfold_processes WHERE id = ?', [id]).then(() => undefined),
    };
  }

  listProcesses(options: { readonly includeExpired?: boolean } = {}): Promise<ProcessRecord[]> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const all = options.includeExpired === true;
    return this.#d
      .all(`SELECT * FROM keyfold_processes${all ? '' : ' WHERE expires_at > ?'} ORDER BY started_at DESC, id`, all ? [] : [now()])
      .then((rows) => rows.map(rowToProcess));
  }

  appendAudit(input: AuditInput): Promise<AuditEntry> {
    assertAuditInput(input);
    return this.#d.transaction((tx) => this.#appendAuditIn(tx, input));
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
    return this.#d
      .all(`SELECT * FROM keyfold_audit WHERE ${parts.join(' AND ')} ORDER BY seq LIMIT ?`, [...params, limit])
      .then((rows) => rows.map(parseAuditRow));
  }

  auditHead(): Promise<AuditHead> {
    return this.#headIn(this.#d, false);
  }

  verifyAudit(): Promise<AuditVerification> {
    // One snapshot: the entries, the head and the key row agree.
    return this.#d.snapshot(async (reader): Promise<AuditVerification> => {
      const head = await this.#headIn(reader, false);
      const key = this.#audit.key;
      if (key) {
        const changed = auditKeyRowChanged(key.record, await this.#auditKeyIn(reader, false));
        if (changed) return { ok: false, keyed: true, entries: 0, head, problem: { kind: 'key', seq: key.record.keyedFrom, message: changed } };
      }
      return verifyAuditRows(await reader.all('SELECT * FROM keyfold_audit ORDER BY seq'), head, key);
    });
  }

  async isEmpty(): Promise<boolean> {
    return Number((await this.#d.get(COUNT_RECORDS))?.n) === 0;
  }

  importRecords(records: StoreRecords): Promise<void> {
    return this.#d.transaction(async (tx) => {
      await tx.lockTables(['keyfold_data_keys', 'keyfold_audit', 'keyfold_install_lock', 'keyfold_kek_versions', 'keyfold_audit_key'], 'exclusive');
      if (Number((await tx.get(COUNT_RECORDS))?.n) !== 0) {
        throw storeError('ALREADY_EXISTS', `the key store ${this.location} is not empty; restore only into a new store`);
      }
      const l = records.installLock;
      if (l) await tx.run(INSERT_INSTALL_LOCK, [l.kind, l.keyId, l.createdAt, l.updatedAt]);
      for (const k of records.kekVersions) {
        await tx.run(
          'INSERT INTO keyfold_kek_versions (kind, key_id, version, state, created_at, activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          [k.kind, k.keyId, k.version, k.state, k.createdAt, k.activatedAt ?? null, k.retiredAt ?? null],
        );
      }
      try {
        await tx.insertDataKeys(records.dataKeys.map((k) => dataKeyRow(k, k.revision, k.createdAt, k.updatedAt)));
      } catch (err) {
        // Records are written verbatim: a duplicate is the driver's own error, as any other.
        throw err instanceof DuplicateRowError ? err.cause : err;
      }
      for (const e of records.audit) {
        await tx.run(INSERT_AUDIT, [e.seq, e.time, e.actor, e.event, e.subject, JSON.stringify(e.details), e.prevHash, e.hash, e.mac ?? null]);
      }
      await tx.run(SET_AUDIT_HEAD, [records.auditHead.seq, records.auditHead.hash, records.auditHead.mac ?? null]);
      if (records.auditKey) await this.#insertAuditKeyIn(tx, records.auditKey);
    });
  }

  async close(): Promise<void> {
    // Registrations first: their records are removed while the connection is still open.
    const registrations = [...this.#registrations.values()];
    this.#registrations.clear();
    await Promise.all(registrations.map((r) => r.then((reg) => reg.close()).catch(() => undefined)));
    this.#audit.close();
    return this.#d.close();
  }
}

/** A {@link RewrapLease} over a dialect's lease: validates the updates, then writes them in the lease's transaction. */
class StoreLease implements RewrapLease {
  readonly keys: readonly DataKeyRecord[];
  readonly locked?: readonly string[];
  #lease: DialectLease | undefined;
  readonly #write: (tx: Transaction, updates: readonly RewrapUpdate[], options: CommitOptions) => Promise<CommitResult>;

  constructor(
    keys: readonly DataKeyRecord[],
    lease: DialectLease,
    write: (tx: Transaction, updates: readonly RewrapUpdate[], options: CommitOptions) => Promise<CommitResult>,
  ) {
    this.keys = keys;
    if (lease.locked !== undefined) this.locked = lease.locked;
    this.#lease = lease;
    this.#write = write;
  }

  async commit(updates: readonly RewrapUpdate[], options?: CommitOptions): Promise<CommitResult> {
    const lease = this.#lease;
    if (!lease) throw new TypeError('this lease was already committed or released');
    this.#lease = undefined;
    try {
      assertUpdates(updates);
    } catch (err) {
      await lease.release();
      throw err;
    }
    return lease.commit((tx) => this.#write(tx, updates, options));
  }

  async release(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.release();
  }
}
