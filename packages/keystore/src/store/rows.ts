/**
 * Rows as both drivers return them, turned into the store's records, and bytes turned into driver parameters.
 *
 * Conversions, and why they hold for both drivers:
 * - Numbers: SQLite returns integers as numbers; node-postgres returns `BIGINT` and `count(*)` as strings. Every
 *   integer column goes through `Number()` (values stay far below 2^53: revisions, sequence numbers, counts).
 * - Blobs: better-sqlite3 gives each blob a buffer of its own, node-postgres may hand out views into a shared pool
 *   buffer. {@link blob} keeps an owned buffer as it is and copies anything else, so a record never pins (or lets a
 *   caller read) memory beyond its own bytes.
 * @module
 */
import type { WrappedKey } from '@keyfold/envelope-core';
import { ownBytes } from '../records.js';
import type { Checkpoint, DataKeyRecord, KekVersionRecord, ProcessRecord } from '../types.js';
import type { Row } from './dialect.js';

function str(v: unknown): string {
  return v as string;
}

function optStr(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : (v as string);
}

/** A blob as an owned Uint8Array: a buffer that owns its whole memory is kept, anything else is copied. */
export function blob(v: unknown): Uint8Array {
  const b = v as Uint8Array;
  return b.byteOffset === 0 && b.buffer.byteLength === b.length ? new Uint8Array(b.buffer, 0, b.length) : ownBytes(b);
}

/** Bytes as a Buffer view (no copy), the blob parameter type both drivers bind. */
export function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
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

/** A `keyfold_data_keys` row as a record. */
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

/** A `keyfold_kek_versions` row as a record. */
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

/** A `keyfold_checkpoints` row as a checkpoint. */
export function rowToCheckpoint(row: Row): Checkpoint {
  return {
    name: str(row.name),
    cursor: optStr(row.cursor),
    processed: Number(row.processed),
    data: JSON.parse(str(row.data)) as Checkpoint['data'],
    createdAt: str(row.created_at),
    updatedAt: str(row.updated_at),
    lease:
      row.lease_owner === null || row.lease_owner === undefined
        ? undefined
        : { owner: str(row.lease_owner), expiresAt: str(row.lease_expires_at) },
  };
}

/** A `keyfold_processes` row as a record. */
export function rowToProcess(row: Row): ProcessRecord {
  let versions: unknown;
  try {
    versions = JSON.parse(str(row.versions));
  } catch {
    versions = [];
  }
  return {
    id: str(row.id),
    host: str(row.host),
    pid: Number(row.pid),
    startedAt: str(row.started_at),
    kind: str(row.kind),
    keyId: str(row.key_id),
    versions: Array.isArray(versions) ? versions.filter((v): v is string => typeof v === 'string') : [],
    label: str(row.label),
    registeredAt: str(row.registered_at),
    refreshedAt: str(row.refreshed_at),
    expiresAt: str(row.expires_at),
  };
}

/** The install lock row (`kind, key_id, created_at, updated_at`) as an install lock. */
export function rowToInstallLock(row: Row): { kind: string; keyId: string; createdAt: string; updatedAt: string } {
  return { kind: str(row.kind), keyId: str(row.key_id), createdAt: str(row.created_at), updatedAt: str(row.updated_at) };
}
