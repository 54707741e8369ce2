/**
 * Versioned schema migrations for both stores. A store records the version it was written with; opening applies
 * the missing migrations in one transaction, and a store written by a newer version of this package is refused
 * before anything is written to it.
 * @module
 */
import { UnsupportedFormatError } from '@keyfold/envelope-core';

/**
 * The schema version this build writes (and the newest it opens).
 * @example
 * ```ts
 * console.log(`key store schema v${SCHEMA_VERSION}`);
 * ```
 */
export const SCHEMA_VERSION = 3;

/** SQLite `application_id` of a Keyfold store ("KFKS"). */
export const SQLITE_APPLICATION_ID = 0x4b464b53;

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sqlite: readonly string[];
  /** `${s}` is replaced by the quoted schema name. */
  readonly postgres: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'install lock, KEK registry, data keys, checkpoints, audit log',
    sqlite: [
      `CREATE TABLE keyfold_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`,
      `CREATE TABLE keyfold_install_lock (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         kind TEXT NOT NULL, key_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
      `CREATE TABLE keyfold_kek_versions (
         kind TEXT NOT NULL, key_id TEXT NOT NULL, version TEXT NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('active', 'available', 'retired')),
         created_at TEXT NOT NULL, activated_at TEXT, retired_at TEXT,
         PRIMARY KEY (kind, key_id, version)) WITHOUT ROWID`,
      `CREATE TABLE keyfold_data_keys (
         id TEXT PRIMARY KEY, owner TEXT NOT NULL, version INTEGER NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
         kek_kind TEXT, kek_key_id TEXT, kek_version TEXT, wrapped BLOB, key_check BLOB,
         revision INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
         UNIQUE (owner, version)) WITHOUT ROWID`,
      `CREATE INDEX keyfold_data_keys_kek ON keyfold_data_keys (kek_kind, kek_key_id, kek_version)`,
      `CREATE TABLE keyfold_checkpoints (
         name TEXT PRIMARY KEY, cursor TEXT, processed INTEGER NOT NULL, data TEXT NOT NULL,
         created_at TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID`,
      `CREATE TABLE keyfold_audit (
         seq INTEGER PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL, event TEXT NOT NULL,
         subject TEXT NOT NULL, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`,
      `CREATE TABLE keyfold_audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)`,
      `INSERT INTO keyfold_audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}')`,
    ],
    postgres: [
      `CREATE TABLE \${s}.keyfold_install_lock (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         kind TEXT NOT NULL, key_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
      `CREATE TABLE \${s}.keyfold_kek_versions (
         kind TEXT NOT NULL, key_id TEXT NOT NULL, version TEXT NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('active', 'available', 'retired')),
         created_at TEXT NOT NULL, activated_at TEXT, retired_at TEXT,
         PRIMARY KEY (kind, key_id, version))`,
      `CREATE TABLE \${s}.keyfold_data_keys (
         id TEXT COLLATE "C" PRIMARY KEY, owner TEXT COLLATE "C" NOT NULL, version INTEGER NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
         kek_kind TEXT, kek_key_id TEXT, kek_version TEXT, wrapped BYTEA, key_check BYTEA,
         revision BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
         UNIQUE (owner, version))`,
      `CREATE INDEX keyfold_data_keys_kek ON \${s}.keyfold_data_keys (kek_kind, kek_key_id, kek_version)`,
      `CREATE TABLE \${s}.keyfold_checkpoints (
         name TEXT PRIMARY KEY, cursor TEXT COLLATE "C", processed BIGINT NOT NULL, data TEXT NOT NULL,
         created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
      `CREATE TABLE \${s}.keyfold_audit (
         seq BIGINT PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL, event TEXT NOT NULL,
         subject TEXT NOT NULL, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`,
      `CREATE TABLE \${s}.keyfold_audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)`,
      `INSERT INTO \${s}.keyfold_audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}')`,
    ],
  },
  {
    version: 2,
    description: 'keyed audit log: a MAC per entry and on the head record, the wrapped audit key',
    sqlite: [
      `ALTER TABLE keyfold_audit ADD COLUMN mac TEXT`,
      `ALTER TABLE keyfold_audit_head ADD COLUMN mac TEXT`,
      `CREATE TABLE keyfold_audit_key (
         id INTEGER PRIMARY KEY CHECK (id = 1), installation TEXT NOT NULL, keyed_from INTEGER NOT NULL,
         kek_kind TEXT NOT NULL, kek_key_id TEXT NOT NULL, kek_version TEXT NOT NULL, wrapped BLOB NOT NULL,
         created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
    ],
    postgres: [
      `ALTER TABLE \${s}.keyfold_audit ADD COLUMN mac TEXT`,
      `ALTER TABLE \${s}.keyfold_audit_head ADD COLUMN mac TEXT`,
      `CREATE TABLE \${s}.keyfold_audit_key (
         id INTEGER PRIMARY KEY CHECK (id = 1), installation TEXT NOT NULL, keyed_from BIGINT NOT NULL,
         kek_kind TEXT NOT NULL, kek_key_id TEXT NOT NULL, kek_version TEXT NOT NULL, wrapped BYTEA NOT NULL,
         created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
    ],
  },
  {
    version: 3,
    description: 'process registry (who has the store open, with which KEK versions), rotation checkpoint leases',
    sqlite: [
      `CREATE TABLE keyfold_processes (
         id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL,
         kind TEXT NOT NULL, key_id TEXT NOT NULL, versions TEXT NOT NULL, label TEXT NOT NULL,
         registered_at TEXT NOT NULL, refreshed_at TEXT NOT NULL, expires_at TEXT NOT NULL) WITHOUT ROWID`,
      `ALTER TABLE keyfold_checkpoints ADD COLUMN lease_owner TEXT`,
      `ALTER TABLE keyfold_checkpoints ADD COLUMN lease_expires_at TEXT`,
    ],
    postgres: [
      `CREATE TABLE \${s}.keyfold_processes (
         id TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, started_at TEXT NOT NULL,
         kind TEXT NOT NULL, key_id TEXT NOT NULL, versions TEXT NOT NULL, label TEXT NOT NULL,
         registered_at TEXT NOT NULL, refreshed_at TEXT NOT NULL, expires_at TEXT NOT NULL)`,
      `ALTER TABLE \${s}.keyfold_checkpoints ADD COLUMN lease_owner TEXT`,
      `ALTER TABLE \${s}.keyfold_checkpoints ADD COLUMN lease_expires_at TEXT`,
    ],
  },
];

/**
 * Refuses a store written by a newer schema. Called before anything is written.
 * @throws UnsupportedFormatError (`FORMAT_UNSUPPORTED`).
 */
export function assertKnownSchema(found: number, location: string): void {
  if (!Number.isSafeInteger(found) || found < 0) {
    throw new UnsupportedFormatError(`the key store ${location} records an invalid schema version (${String(found)}); it was not modified`);
  }
  if (found > SCHEMA_VERSION) {
    throw new UnsupportedFormatError(
      `the key store ${location} has schema version ${found}, newer than this version of @keyfold/keystore supports ` +
        `(${SCHEMA_VERSION}); upgrade Keyfold to open it. The store was not modified.`,
    );
  }
}

/** Migrations to apply to go from `from` to {@link SCHEMA_VERSION}. */
export function pendingMigrations(from: number): readonly Migration[] {
  return MIGRATIONS.filter((m) => m.version > from);
}
