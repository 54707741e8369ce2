/**
 * The `KeyStore` interface and the records that cross it. Both implementations (`SqliteKeyStore`,
 * `PostgresKeyStore`) pass the one `runKeyStoreConformance` suite of `@keyfold/conformance`.
 *
 * A store holds wrapped material only: wrapped data keys, the install lock, the KEK version registry, rotation
 * checkpoints and the audit log. No plaintext key ever reaches it.
 * @module
 */
import type { KeyProvider, WrappedKey } from '@keyfold/envelope-core';

/** A KEK identity across its versions: the provider kind and key id (what the install lock records). */
export interface ProviderRef {
  readonly kind: string;
  readonly keyId: string;
}

/** One version of one KEK. */
export interface KekRef extends ProviderRef {
  readonly version: string;
}

/** Which provider this installation was created with. Only a provider migration changes it. */
export interface InstallLock extends ProviderRef {
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** State of a KEK version in the registry. `retired` versions are refused by `recordKekVersion`-based wraps. */
export type KekVersionState = 'active' | 'available' | 'retired';

/** A row of the KEK version registry. Exactly one version per KEK (kind + keyId) is `active`. */
export interface KekVersionRecord extends KekRef {
  readonly state: KekVersionState;
  readonly createdAt: string;
  /** When it last became active (`undefined` if it never was). */
  readonly activatedAt: string | undefined;
  readonly retiredAt: string | undefined;
}

/** What {@link KeyStore.activateKekVersion} did: the pointer moved from `from` to `record.version`. */
export interface KekActivation {
  /** The version that was active before (`undefined` when the KEK had none). */
  readonly from: string | undefined;
  /** The version now active. */
  readonly record: KekVersionRecord;
  /** False when `record` was already the active version (nothing written, nothing audited). */
  readonly changed: boolean;
}

/** State of a data key: `active` (new wraps use it), `retired` (still opens old data), `destroyed` (shredded). */
export type DataKeyState = 'active' | 'retired' | 'destroyed';

/** A data key as stored: wrapped under one KEK version, never in plaintext. */
export interface DataKeyRecord {
  /** Unique id (`tenant:acme:1` for tenant keys). */
  readonly id: string;
  /** Who the key belongs to (`tenant:acme`, or a table name). */
  readonly owner: string;
  /** Version of the owner's key, 1, 2, ... */
  readonly version: number;
  readonly state: DataKeyState;
  /** The wrapped key; `undefined` once destroyed. */
  readonly wrapped: WrappedKey | undefined;
  /**
   * Key check value: the first 16 bytes of HMAC-SHA-256(dataKey, "keyfold/keystore/key-check/v1"). Lets a re-wrap
   * or a verification prove that a wrapped key still yields the same data key; reveals nothing usable about the key.
   * `undefined` once destroyed.
   */
  readonly keyCheck: Uint8Array | undefined;
  /** Incremented by every change; the compare-and-swap token. Starts at 1. */
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What `insertDataKeys` takes. */
export interface NewDataKey {
  readonly id: string;
  readonly owner: string;
  readonly version: number;
  readonly state?: 'active' | 'retired';
  readonly wrapped: WrappedKey;
  readonly keyCheck: Uint8Array;
}

/** A change applied by `updateDataKey` when the revision still matches. */
export interface DataKeyChange {
  readonly state?: DataKeyState;
  /** New wrapped key; `null` deletes the wrapped material (only with `state: 'destroyed'`). */
  readonly wrapped?: WrappedKey | null;
}

/** Filters of `listDataKeys` / `countDataKeys`. */
export interface DataKeyFilter {
  readonly owner?: string;
  /** Owners starting with this prefix (`tenant:`). */
  readonly ownerPrefix?: string;
  readonly states?: readonly DataKeyState[];
  /** Only keys wrapped under this KEK (all its versions when `version` is absent). */
  readonly kek?: ProviderRef & { readonly version?: string };
}

/** How many data keys of a state each KEK version holds. */
export interface KekUsage {
  readonly kek: KekRef;
  readonly state: DataKeyState;
  readonly count: number;
}

/** A JSON value stored in checkpoints and audit details. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };

/**
 * Who works on a checkpoint, and until when: a worker renews its lease while it works; once `expiresAt` has passed
 * (the worker died or hung), another worker may take the checkpoint over and resume from its cursor.
 */
export interface CheckpointLease {
  /** The lease owner's id (see `checkpointLeaseOwner`: host, pid and a random part). */
  readonly owner: string;
  /** ISO 8601 UTC: the lease is live until then. */
  readonly expiresAt: string;
}

/** A rotation checkpoint: where a run got to, so a killed run resumes. */
export interface Checkpoint {
  readonly name: string;
  /** Last data key id whose batch committed. */
  readonly cursor: string | undefined;
  /** Data keys this checkpoint's runs have re-wrapped so far. */
  readonly processed: number;
  readonly data: { readonly [k: string]: JsonValue };
  readonly createdAt: string;
  readonly updatedAt: string;
  /** The worker's lease, `undefined` when no worker holds it (released, or never leased). */
  readonly lease: CheckpointLease | undefined;
}

/** What a checkpoint update inside a lease commit sets. */
export interface CheckpointUpdate {
  readonly name: string;
  readonly cursor: string | undefined;
  /** Added to `processed`. */
  readonly processedDelta: number;
  readonly data?: { readonly [k: string]: JsonValue };
  /**
   * The lease this update is made under: applied only while `owner` still holds the checkpoint's lease (which is
   * renewed for `ttlMs`); otherwise the whole transaction is rolled back with `UNAVAILABLE` (another worker took the
   * checkpoint over after this one's lease expired).
   */
  readonly lease?: { readonly owner: string; readonly ttlMs: number };
}

/** What `claimCheckpoint` takes. */
export interface CheckpointClaim {
  readonly name: string;
  /** The claiming worker (see `checkpointLeaseOwner`). */
  readonly owner: string;
  /** How long the lease lasts unless renewed, in ms (1 000 to 86 400 000). */
  readonly ttlMs: number;
  /** `data` of a checkpoint created by this claim. */
  readonly data?: { readonly [k: string]: JsonValue };
  /**
   * Tells whether the owner of a live lease is known to be dead (a process of this machine that no longer runs);
   * such a lease is taken over at once instead of after it expires. Default: none is.
   */
  readonly isDead?: (owner: string) => boolean;
}

/** What `claimCheckpoint` did. */
export interface CheckpointClaimResult {
  readonly checkpoint: Checkpoint;
  /** False when the claim created the checkpoint (a new run), true when it existed (a run to resume). */
  readonly existed: boolean;
  /** The lease taken over (expired, or its owner dead), if any. */
  readonly takenOver: CheckpointLease | undefined;
}

/**
 * A process that has the store open with a KEK provider, as the process registry records it: which host and pid,
 * since when, and the KEK versions its provider loaded. Refreshed while the process runs; a record whose
 * `expiresAt` has passed belongs to a process that stopped (or hangs) and is ignored.
 */
export interface ProcessRecord {
  /** Random id of the registration (32 hex digits). */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** When the process started (ISO 8601 UTC). */
  readonly startedAt: string;
  /** The KEK provider it opened the store with. */
  readonly kind: string;
  readonly keyId: string;
  /** The versions of that KEK its provider loaded (`provider.describe().versions` at the last refresh). */
  readonly versions: readonly string[];
  /** What the process is (`keyfold kek rotate`, `tenant-keys`, a name the application gave). */
  readonly label: string;
  readonly registeredAt: string;
  readonly refreshedAt: string;
  readonly expiresAt: string;
}

/** What a registration writes (the store sets the times). */
export interface ProcessUpsert extends Omit<ProcessRecord, 'registeredAt' | 'refreshedAt' | 'expiresAt'> {
  /** The record expires this long after the write, in ms. */
  readonly ttlMs: number;
}

/**
 * Options of `KeyStore.registerProcess`.
 * @example
 * ```ts
 * const options: ProcessRegistrationOptions = { label: 'billing-api', refreshIntervalMs: 10_000, ttlMs: 30_000 };
 * ```
 */
export interface ProcessRegistrationOptions {
  /** What the process is, shown in listings (1-128 printable characters). Default `keyfold`. */
  readonly label?: string;
  /** How often the record is refreshed, in ms (100 to 3 600 000). Default 10 000. */
  readonly refreshIntervalMs?: number;
  /** How long a record lives without a refresh, in ms; more than `refreshIntervalMs`. Default 3 refresh intervals. */
  readonly ttlMs?: number;
  /** Called with an error of a background refresh (the registration keeps trying). Default: ignored. */
  readonly onError?: (err: unknown) => void;
}

/**
 * A live registration: refreshed in the background (an unref'd timer: it never keeps the process alive) until
 * `close()` removes the record. The store closes its registrations when it is closed.
 */
export interface ProcessRegistration {
  readonly id: string;
  /** The record as last written. */
  readonly record: ProcessRecord;
  /** Re-reads the provider's versions and refreshes the record now. */
  refresh(): Promise<ProcessRecord>;
  /** Stops refreshing and removes the record (when no other handle shares it). Idempotent. */
  close(): Promise<void>;
}

/** What a caller gives to append an audit entry. Never key material. */
export interface AuditInput {
  /** Who did it (`cli:alice`, `rotation:worker-2`, `app`). */
  readonly actor: string;
  /** Dotted event name (`tenant.create`, `kek.rewrap`, `install.lock`). */
  readonly event: string;
  /** What it concerns (`tenant:acme`, `env:KEYFOLD_KEK@2`). */
  readonly subject: string;
  /** Non-secret details: ids, versions, counts. */
  readonly details?: { readonly [k: string]: JsonValue };
}

/** An entry of the append-only audit log, hash-chained to the one before. */
export interface AuditEntry {
  /** 1, 2, 3, ... without gaps. */
  readonly seq: number;
  /** ISO 8601 UTC. */
  readonly time: string;
  readonly actor: string;
  readonly event: string;
  readonly subject: string;
  readonly details: { readonly [k: string]: JsonValue };
  /** `hash` of the previous entry (64 zeros for the first). */
  readonly prevHash: string;
  /** SHA-256 over the canonical encoding of every field above (hex). */
  readonly hash: string;
  /**
   * HMAC-SHA-256 under the installation's audit key over the installation id, `seq`, `hash` and the previous
   * entry's `mac` (hex). Absent on entries written before the store's audit log was keyed (see
   * {@link AuditKeyRecord.keyedFrom}).
   */
  readonly mac?: string;
}

/** The newest entry as the store's head pointer records it (updated in the same transaction as each append). */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
  /**
   * HMAC-SHA-256 under the audit key over the installation id, `keyedFrom`, `seq`, `hash` and the newest entry's
   * MAC: a head moved by anyone without the key (a truncated log) does not carry a valid one. Absent while the log
   * is not keyed.
   */
  readonly mac?: string;
}

/**
 * The audit log's MAC key as stored: 32 random bytes wrapped by the installation's KEK with the context
 * `{ keyfold:purpose: audit-mac, keyfold:installation: <installation> }`. Never in plaintext.
 */
export interface AuditKeyRecord {
  /** Random id of the installation (32 hex digits) the key and every MAC are bound to. */
  readonly installation: string;
  /** The first entry that carries a MAC; earlier entries (written before keying) are anchored by its hash chain. */
  readonly keyedFrom: number;
  readonly wrapped: WrappedKey;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * What kind of tampering `verifyAudit` found: `truncated` (the head record was moved without the audit key),
 * `unreadable` (a row that does not decode), `key` (the audit key does not unwrap or the key row was replaced).
 */
export type AuditProblemKind = 'edited' | 'deleted' | 'reordered' | 'inserted' | 'truncated' | 'unreadable' | 'key';

/** The result of `verifyAudit()`. */
export interface AuditVerification {
  readonly ok: boolean;
  /**
   * True when the MACs were checked with the audit key (the store's audit key was opened with `openAuditKey`);
   * false for a check of the hash chain only, which a writer who rewrites the whole log and head can defeat.
   */
  readonly keyed: boolean;
  /** The first entry that carries a MAC (keyed checks of a keyed log only). */
  readonly keyedFrom?: number;
  /** The installation id the audit key is bound to (keyed checks only). */
  readonly installation?: string;
  /** Entries checked. */
  readonly entries: number;
  readonly head: AuditHead;
  /** The first problem found, with the sequence number it concerns and a message for operators. */
  readonly problem?: { readonly kind: AuditProblemKind; readonly seq: number; readonly message: string };
}

/** Options of `listAudit`. */
export interface AuditQuery {
  /** Entries with `seq` greater than this. */
  readonly after?: number;
  readonly limit?: number;
  readonly event?: string;
  readonly subject?: string;
}

/** One re-wrapped data key handed to `RewrapLease.commit`. */
export interface RewrapUpdate {
  readonly id: string;
  /** The revision the key had when it was leased (compare-and-swap). */
  readonly revision: number;
  readonly wrapped: WrappedKey;
}

/**
 * A batch of data keys not yet under a target KEK version. On PostgreSQL the rows are locked
 * (`FOR UPDATE SKIP LOCKED`) until `commit` or `release`, so concurrent workers never lease the same key; on SQLite
 * the batch is read without a lock and `commit` relies on compare-and-swap alone.
 */
export interface RewrapLease {
  readonly keys: readonly DataKeyRecord[];
  /**
   * Ids of eligible keys in this lease's id range that were not handed out because another transaction holds them
   * locked (PostgreSQL: another worker's batch, an application's `SELECT ... FOR UPDATE`). The range runs from
   * `after` to the last key handed out, or to the end when the lease is not full. Such keys are still under their
   * old KEK version: lease them again later. Absent or empty on stores without row locks (SQLite).
   */
  readonly locked?: readonly string[];
  /**
   * Writes the updates whose revision still matches, the checkpoint and the audit entry in one transaction, and
   * ends the lease. `audit` is built from the ids actually applied (so the log names exactly what changed).
   * @returns ids applied and ids whose revision had changed (someone else got there first).
   */
  commit(
    updates: readonly RewrapUpdate[],
    options?: { readonly checkpoint?: CheckpointUpdate; readonly audit?: (applied: readonly string[]) => AuditInput | undefined },
  ): Promise<{ readonly applied: readonly string[]; readonly conflicts: readonly string[] }>;
  /** Ends the lease without writing. Idempotent. */
  release(): Promise<void>;
}

/** What `leaseForRewrap` takes. */
export interface LeaseRequest {
  /** Keys not under this exact KEK version (and not destroyed) are eligible. */
  readonly target: KekRef;
  /** Only ids greater than this (keyset pagination). */
  readonly after?: string | undefined;
  readonly limit: number;
  /** Only keys under these KEKs (any version, or the one `version` given); default any. */
  readonly from?: readonly (ProviderRef & { readonly version?: string })[];
  /**
   * Only keys of one shard: a stable hash of the id, modulo `count`, equals `index`. Lets several processes share
   * one rotation on SQLite (which has no row locks) without doing the same work twice.
   */
  readonly shard?: { readonly index: number; readonly count: number };
}

/** Which backend a store runs on. */
export type KeyStoreBackend = 'sqlite' | 'postgres';

/**
 * Everything a Keyfold installation persists. Every method is atomic; every change that matters to an operator is
 * audited in the same transaction. Implementations: `SqliteKeyStore`, `PostgresKeyStore`.
 */
export interface KeyStore {
  readonly backend: KeyStoreBackend;
  /** Where the store lives: a file path, or a PostgreSQL URL without its password. */
  readonly location: string;
  /** The schema version of the open store. */
  readonly schemaVersion: number;

  /** The install lock, or `undefined` for a store no provider has claimed yet. */
  getInstallLock(): Promise<InstallLock | undefined>;
  /**
   * Records `provider` as the install lock when there is none (audited `install.lock`), else checks it matches.
   * When `provider` is a `KeyProvider` (not only a reference), the audit key is opened too, and created when the
   * store has none (see {@link KeyStore.openAuditKey}): a store locked by a KeyProvider has a keyed audit log.
   * @throws PolicyError `PROVIDER_MISMATCH` naming both providers; the errors of `openAuditKey`.
   */
  ensureInstallLock(provider: ProviderRef | KeyProvider, actor?: string): Promise<InstallLock>;
  /**
   * Moves the install lock from `from` to `to` (provider migration): refused unless no data key is wrapped under
   * `from` any more. Audited `install.migrate` in the same transaction. On a keyed audit log `to` must be the new
   * `KeyProvider` and the audit key open: the audit key is re-wrapped under `to` in the same transaction.
   * @throws PolicyError `PROVIDER_MISMATCH` when the lock is not `from`; `POLICY_VIOLATION` while keys remain, or
   *   when the log is keyed and the audit key cannot move with the lock.
   */
  changeInstallLock(from: ProviderRef, to: ProviderRef | KeyProvider, actor: string, details?: AuditInput['details']): Promise<InstallLock>;

  listKekVersions(filter?: ProviderRef): Promise<KekVersionRecord[]>;
  /**
   * Registers a KEK version (idempotent). With `activate`, it becomes the active version of its KEK and the
   * previously active one becomes `available`. Audited when something changed.
   * @throws KeyfoldError `KEY_VERSION_RETIRED` when the version was retired.
   */
  recordKekVersion(kek: KekRef, options: { readonly activate: boolean; readonly actor: string }): Promise<KekVersionRecord>;
  /**
   * The active version of KEK `kek` (the store's pointer: the version new writes use), or `undefined` when no
   * version of it is registered as active.
   */
  getActiveKekVersion(kek: ProviderRef): Promise<KekVersionRecord | undefined>;
  /**
   * Moves the pointer of KEK `kek` to `kek.version`, a registered version that is not retired: a newer one, or an
   * older one (rollback). The previous active version becomes `available`. Audited `kek.activate` with `from` and
   * `to`, in the same transaction; a no-op (not audited) when it is already active.
   * @throws ProviderError `KEY_NOT_FOUND` when the version is not registered; `KEY_VERSION_RETIRED` when it was retired.
   */
  activateKekVersion(kek: KekRef, actor: string): Promise<KekActivation>;
  /**
   * Retires a KEK version: refused while any data key (in any state but destroyed) or the audit key is wrapped under
   * it, or while it is the active version. Audited `kek.retire`.
   * @throws PolicyError `POLICY_VIOLATION` naming how many keys still reference it; ProviderError `KEY_NOT_FOUND`.
   */
  retireKekVersion(kek: KekRef, actor: string): Promise<KekVersionRecord>;
  /** How many keys of each state every KEK version holds. */
  kekUsage(): Promise<KekUsage[]>;

  /**
   * Inserts data keys (one transaction). `audit` is appended in the same transaction.
   * @throws KeyfoldError `ALREADY_EXISTS` when an id, or an owner + version, exists (nothing is written).
   */
  insertDataKeys(keys: readonly NewDataKey[], audit?: AuditInput): Promise<void>;
  /**
   * Adds the next version of `owner`'s key as `active` and retires the previous active version, atomically.
   * `key.version` must be the next version (highest + 1): the wrapped key is bound to its id, so a concurrent
   * rotation that took the number makes this call fail with `UNAVAILABLE` and write nothing.
   * @returns the new record.
   * @throws ProviderError `KEY_NOT_FOUND` when the owner has no key or was destroyed; `UNAVAILABLE` as above.
   */
  addDataKeyVersion(owner: string, key: Omit<NewDataKey, 'owner' | 'state'>, audit: AuditInput): Promise<DataKeyRecord>;
  getDataKey(id: string): Promise<DataKeyRecord | undefined>;
  /** The given version of `owner`'s key, or its active version. */
  findDataKey(owner: string, version?: number): Promise<DataKeyRecord | undefined>;
  /** Keys in id order, `after` an id (keyset pagination). */
  listDataKeys(options?: DataKeyFilter & { readonly after?: string; readonly limit?: number }): Promise<DataKeyRecord[]>;
  countDataKeys(filter?: DataKeyFilter): Promise<number>;
  /**
   * Distinct owners with their versions (for `tenant list`). `destroyed` is true when every version is destroyed
   * (the owner was shredded); a single destroyed old version does not make it so.
   */
  listOwners(ownerPrefix?: string): Promise<{ owner: string; versions: number; activeVersion: number | undefined; destroyed: boolean }[]>;
  /**
   * Compare-and-swap: applies `change` only when the key's revision is still `expectedRevision`, bumping it.
   * @returns the new record, or `undefined` when the revision had changed (nothing written).
   */
  updateDataKey(id: string, expectedRevision: number, change: DataKeyChange, audit?: AuditInput): Promise<DataKeyRecord | undefined>;
  /**
   * Destroys every version of `owner`'s key (state `destroyed`, wrapped material deleted), atomically, audited.
   * @returns how many versions were destroyed.
   * @throws ProviderError `KEY_NOT_FOUND` when the owner has no key.
   */
  destroyOwner(owner: string, audit: AuditInput): Promise<number>;
  /**
   * Destroys one version of `owner`'s key (state `destroyed`, wrapped material and key check deleted), audited in
   * the same transaction. The other versions are untouched. Refused while it is the active version: rotate first.
   * Idempotent: a version already destroyed is left as it is (and nothing is audited).
   * @returns true when this call destroyed it, false when it already was.
   * @throws ProviderError `KEY_NOT_FOUND` when the owner has no such version; PolicyError `POLICY_VIOLATION` when it
   *   is the owner's active version.
   */
  destroyDataKeyVersion(owner: string, version: number, audit: AuditInput): Promise<boolean>;

  /** Leases a batch of keys to re-wrap; see {@link RewrapLease}. */
  leaseForRewrap(request: LeaseRequest): Promise<RewrapLease>;

  getCheckpoint(name: string): Promise<Checkpoint | undefined>;
  listCheckpoints(prefix?: string): Promise<Checkpoint[]>;
  /**
   * Creates or replaces a checkpoint. With `update.lease`, applied only while that owner holds the lease.
   * @throws ProviderError `UNAVAILABLE` when `update.lease` is given and its owner no longer holds the lease.
   */
  saveCheckpoint(update: CheckpointUpdate & { readonly processed?: number }): Promise<Checkpoint>;
  /** Deletes a checkpoint; with `owner`, only while that owner holds its lease (or nobody does). */
  deleteCheckpoint(name: string, owner?: string): Promise<void>;
  /**
   * Takes the lease of a checkpoint, creating the checkpoint when there is none: granted when nobody holds it, when
   * `owner` already does, or when the holder's lease has expired (or `isDead` says its owner is dead: taken over).
   * A live lease of another owner is respected. Atomic across processes.
   * @throws CheckpointLeasedError (`UNAVAILABLE`) naming the holder and when its lease expires; TypeError / RangeError.
   */
  claimCheckpoint(claim: CheckpointClaim): Promise<CheckpointClaimResult>;
  /**
   * Extends `owner`'s lease to `ttlMs` from now.
   * @returns false when `owner` no longer holds it (taken over after it expired, or the checkpoint was deleted).
   */
  renewCheckpointLease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Gives up `owner`'s lease (the checkpoint stays, for the next run to resume). Idempotent. */
  releaseCheckpointLease(name: string, owner: string): Promise<void>;

  /**
   * Registers this process in the store's process registry with the KEK versions `provider` loaded, and keeps the
   * record fresh until the returned registration (or the store) is closed. Registrations of one store object for
   * the same KEK share one record. When the provider cannot describe itself (a key service out of reach), the
   * record lists no version (never ready) until a refresh succeeds. See {@link ProcessRegistrationOptions}.
   * @throws KeyfoldError `CONFIG_INVALID` on a read-only store; store errors; TypeError / RangeError for bad options.
   */
  registerProcess(provider: KeyProvider, options?: ProcessRegistrationOptions): Promise<ProcessRegistration>;
  /**
   * The processes registered in the store, newest first: the live ones (not expired), or every record with
   * `includeExpired`.
   */
  listProcesses(options?: { readonly includeExpired?: boolean }): Promise<ProcessRecord[]>;

  /**
   * Appends one audit entry (hash-chained, serialised across processes; MAC'd when the log is keyed).
   * @throws PolicyError `POLICY_VIOLATION` when the log is keyed and this store object has not opened the audit key
   *   (every method that audits throws the same).
   */
  appendAudit(input: AuditInput): Promise<AuditEntry>;
  /** @throws IntegrityError `INTEGRITY_FAILED` naming an entry whose row does not decode. */
  listAudit(query?: AuditQuery): Promise<AuditEntry[]>;
  auditHead(): Promise<AuditHead>;
  /**
   * Recomputes the whole hash chain and compares it with the head pointer; names the first edited, deleted,
   * reordered, inserted or unreadable entry. With the audit key open ({@link KeyStore.openAuditKey}) it also checks
   * every entry's MAC and the head's MAC, which catches a truncated log with a moved head and a whole log re-chained
   * by anyone without the KEK (`keyed: true` in the result); without it, the hash chain only (`keyed: false`).
   */
  verifyAudit(): Promise<AuditVerification>;
  /** The wrapped audit key, or `undefined` while the log is not keyed (a store written before schema 2). */
  getAuditKey(): Promise<AuditKeyRecord | undefined>;
  /**
   * Opens the audit key for this store object: unwraps it with the provider among `providers` that matches the
   * KEK it is wrapped under, and holds it (wiped on `close()`) to MAC appends and to verify. When the store has no
   * audit key yet (a new store, or one written before the log was keyed) and `create` is not false, a fresh one is
   * generated, wrapped under the provider matching the install lock (the first one without a lock), and stored in
   * one transaction that anchors the existing chain with an `audit.keyed` entry (when the log is not empty).
   * Idempotent.
   * @returns the audit key record, or `undefined` when there is none and `create` is false.
   * @throws IntegrityError `INTEGRITY_FAILED` when the stored audit key does not unwrap (replaced, damaged, or
   *   wrapped for another installation); KeyfoldError `NO_PROVIDER` when no provider matches its KEK; provider
   *   errors.
   */
  openAuditKey(providers: KeyProvider | readonly KeyProvider[], options?: { readonly actor?: string; readonly create?: boolean }): Promise<AuditKeyRecord | undefined>;
  /**
   * Re-wraps the open audit key under `to`'s active KEK version (rotation), compare-and-swap on the stored row;
   * audited `audit.rewrap`. A no-op when it is already there.
   * @returns true when it was re-wrapped.
   * @throws PolicyError `POLICY_VIOLATION` when the audit key is not open; `PROVIDER_MISMATCH` when `to` is not the
   *   install lock's provider (use `changeInstallLock`); ProviderError `UNAVAILABLE` when the row changed meanwhile.
   */
  rewrapAuditKey(to: KeyProvider, actor: string): Promise<boolean>;

  /** True when the store holds nothing (no install lock, KEK version, data key or audit entry). */
  isEmpty(): Promise<boolean>;
  /**
   * Writes records verbatim into an empty store, in one transaction (used by `restoreStore`, which verifies them
   * first). @throws KeyfoldError `ALREADY_EXISTS` when the store is not empty.
   */
  importRecords(records: StoreRecords): Promise<void>;

  /** Closes the store. Idempotent; later calls fail with `PROVIDER_CLOSED`. */
  close(): Promise<void>;
}

/** Everything a store holds that a backup keeps (checkpoints are transient and are not kept). */
export interface StoreRecords {
  readonly installLock: InstallLock | undefined;
  readonly kekVersions: readonly KekVersionRecord[];
  readonly dataKeys: readonly DataKeyRecord[];
  readonly audit: readonly AuditEntry[];
  readonly auditHead: AuditHead;
  /** The wrapped audit key (absent for an unkeyed log). */
  readonly auditKey?: AuditKeyRecord | undefined;
}
