/**
 * @keyfold/keystore: where a Keyfold installation keeps its wrapped keys. `openSqliteKeyStore` (one file, the
 * embedded default) and `openPostgresKeyStore` (shared by several processes or machines) implement one `KeyStore`:
 * install lock, KEK version registry, data keys with compare-and-swap, rotation checkpoints and an audit log that is
 * hash-chained and MAC'd under an audit key wrapped by the KEK. `openTenantKeys` adds per-tenant keys, each usable as a `KeyProvider` of kind `tenant`;
 * `backupStore` / `restoreStore` copy a store as wrapped material only.
 * @packageDocumentation
 */
export type {
  AuditEntry,
  AuditHead,
  AuditInput,
  AuditKeyRecord,
  AuditProblemKind,
  AuditQuery,
  AuditVerification,
  Checkpoint,
  CheckpointClaim,
  CheckpointClaimResult,
  CheckpointLease,
  CheckpointUpdate,
  DataKeyChange,
  DataKeyFilter,
  DataKeyRecord,
  DataKeyState,
  InstallLock,
  JsonValue,
  KekActivation,
  KekRef,
  KekUsage,
  KekVersionRecord,
  KekVersionState,
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
} from './types.js';
export { CheckpointLeasedError, IntegrityError, StoreAccessError, StoreUpgradeRequiredError, TenantKeyDestroyedError } from './errors.js';
export { checkpointLeaseOwner, leaseOwnerIsDead } from './process-identity.js';
export type { StoreAccessReason } from './errors.js';
export { GENESIS_HASH, auditHash, verifyAuditChain } from './audit.js';
export { AUDIT_KEY_LENGTH, auditKeyContext } from './audit-key.js';
export { SCHEMA_VERSION } from './schema.js';
export { KEY_CHECK_LENGTH, dataKeyContext, kekName, keyCheckValue } from './records.js';
export { SqliteKeyStore, openSqliteKeyStore } from './sqlite-store.js';
export { SQLITE_COMPANION_SUFFIXES, sqliteStoreFiles } from './sqlite-files.js';
export type { SqliteKeyStoreOptions } from './sqlite-store.js';
export { PostgresKeyStore, openPostgresKeyStore } from './postgres-store.js';
export { closeFailedConnection } from './pg-connection.js';
export type { PgClientLike, PgPoolLike, PostgresKeyStoreOptions } from './postgres-store.js';
export { DEFAULT_POINTER_REFRESH_MS, StoreBoundProvider, bindProviderToStore } from './store-pointer.js';
export type { StorePointerOptions } from './store-pointer.js';
export { TenantKeyProvider, TenantKeys, assertTenantId, openTenantKeys, tenantKeyId, tenantOwner } from './tenant-keys.js';
export type { CreateTenantKey, TenantInfo, TenantKeyVersion, TenantKeysOptions } from './tenant-keys.js';
/** Deprecated aliases: the earlier names of the tenant keys, still exported. */
export { Keyring, openKeyring } from './tenant-keys.js';
export type { KeyringOptions } from './tenant-keys.js';
export type { KeyCacheOptions } from './key-cache.js';
export { BACKUP_FORMAT, BACKUP_VERSION, backupStore, restoreStore } from './backup.js';
export type { BackupOptions, BackupSummary, RestoreOptions } from './backup.js';
