/**
 * Helpers both stores share: argument checks, the data key context, the key check value, and error mapping.
 * @module
 */
import { createHmac } from 'node:crypto';
import {
  KeyfoldError,
  PolicyError,
  assertBytes,
  assertWrappedKey,
  type EncryptionContext,
  type KeyfoldErrorCode,
} from '@keyfold/envelope-core';
import type { CheckpointUpdate, DataKeyChange, DataKeyFilter, DataKeyState, KekRef, LeaseRequest, NewDataKey, ProviderRef, RewrapUpdate } from './types.js';

/** Length of a key check value. */
export const KEY_CHECK_LENGTH = 16;
const KEY_CHECK_LABEL = 'keyfold/keystore/key-check/v1';

/**
 * The key check value of a data key: the first 16 bytes of HMAC-SHA-256(dataKey, "keyfold/keystore/key-check/v1").
 * A one-way function of the key, used to prove that a re-wrapped key still yields the same data key.
 * @example
 * ```ts
 * const check = keyCheckValue(dataKey); // store it next to the wrapped key
 * ```
 */
export function keyCheckValue(dataKey: Uint8Array): Uint8Array {
  assertBytes(dataKey, 32, 'dataKey');
  const mac = createHmac('sha256', dataKey).update(KEY_CHECK_LABEL).digest();
  const out = new Uint8Array(KEY_CHECK_LENGTH);
  out.set(mac.subarray(0, KEY_CHECK_LENGTH));
  mac.fill(0);
  return out;
}

/**
 * The encryption context a stored data key is wrapped with: it binds the wrapped key to its row (owner and id), so a
 * wrapped key copied into another row, or handed to another owner, does not unwrap. One entry (the JSON pair
 * `[owner, id]`, unambiguous whatever the strings hold) keeps the per-wrap encoding cost low for bulk rotation.
 * @example
 * ```ts
 * const ctx = dataKeyContext({ id: 'tenant:acme:1', owner: 'tenant:acme' }); // { 'keyfold:data-key': '["tenant:acme","tenant:acme:1"]' }
 * ```
 */
export function dataKeyContext(key: { readonly id: string; readonly owner: string }): EncryptionContext {
  return { 'keyfold:data-key': JSON.stringify([key.owner, key.id]) };
}

/**
 * The usual name of a KEK (version): `kind:keyId@version`, or `kind:keyId` without a version.
 * @example
 * ```ts
 * kekName({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' }); // 'env:KEYFOLD_KEK@2'
 * ```
 */
export function kekName(kek: ProviderRef & { readonly version?: string }): string {
  return kek.version === undefined ? `${kek.kind}:${kek.keyId}` : `${kek.kind}:${kek.keyId}@${kek.version}`;
}

/** A KEK version plus the number of keys on it, for messages. */
export function sameProvider(a: ProviderRef, b: ProviderRef): boolean {
  return a.kind === b.kind && a.keyId === b.keyId;
}

/** Refuses a provider that does not match the install lock. */
export function installLockMismatch(lock: ProviderRef, provider: ProviderRef): PolicyError {
  return new PolicyError(
    'PROVIDER_MISMATCH',
    `this store was installed with the ${lock.kind} provider "${lock.keyId}" but was opened with the ${provider.kind} ` +
      `provider "${provider.keyId}"; open it with ${kekName(lock)}, or move the installation with migrateProvider ` +
      '(keyfold migrate)',
  );
}

const MAX_ID = 256;

/** @throws TypeError / RangeError naming `name`. */
export function assertName(value: unknown, name: string, max = MAX_ID): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`);
  if (value.length > max) throw new RangeError(`${name} must be at most ${max} characters; got ${value.length}`);
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new TypeError(`${name} must not contain control characters`);
}

export function assertProviderRef(ref: unknown, name: string): asserts ref is ProviderRef {
  if (ref === null || typeof ref !== 'object') throw new TypeError(`${name} must be an object with kind and keyId`);
  const r = ref as Record<string, unknown>;
  assertName(r.kind, `${name}.kind`, 64);
  assertName(r.keyId, `${name}.keyId`, 2048);
}

export function assertKekRef(ref: unknown, name: string): asserts ref is KekRef {
  assertProviderRef(ref, name);
  assertName((ref as unknown as Record<string, unknown>).version, `${name}.version`, 256);
}

export function assertRevision(value: unknown, name: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new TypeError(`${name} must be a positive integer`);
}

export function assertLimit(value: unknown, name: string, max = 100_000): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}; got ${String(value)}`);
  }
}

const STATES: ReadonlySet<string> = new Set(['active', 'retired', 'destroyed']);

export function assertStates(states: unknown, name: string): asserts states is readonly DataKeyState[] {
  if (!Array.isArray(states) || states.length === 0) throw new TypeError(`${name} must be a non-empty array of states`);
  for (const s of states) if (typeof s !== 'string' || !STATES.has(s)) throw new TypeError(`${name} holds an unknown state ${JSON.stringify(s)}`);
}

export function assertFilter(filter: DataKeyFilter | undefined): void {
  if (filter === undefined) return;
  if (filter === null || typeof filter !== 'object') throw new TypeError('filter must be an object');
  if (filter.owner !== undefined) assertName(filter.owner, 'filter.owner');
  if (filter.ownerPrefix !== undefined) assertName(filter.ownerPrefix, 'filter.ownerPrefix');
  if (filter.states !== undefined) assertStates(filter.states, 'filter.states');
  if (filter.kek !== undefined) {
    assertProviderRef(filter.kek, 'filter.kek');
    if (filter.kek.version !== undefined) assertName(filter.kek.version, 'filter.kek.version');
  }
}

/** `Array.isArray` without narrowing a typed readonly array to `any[]`. */
export function isArray(value: unknown): boolean {
  return Array.isArray(value);
}

/** Validates keys to insert. */
export function assertNewDataKey(key: NewDataKey, i: number): void {
  const name = `keys[${i}]`;
  if (key === null || typeof key !== 'object') throw new TypeError(`${name} must be an object`);
  assertName(key.id, `${name}.id`);
  assertName(key.owner, `${name}.owner`);
  if (!Number.isSafeInteger(key.version) || key.version < 1) throw new TypeError(`${name}.version must be a positive integer`);
  if (key.state !== undefined && key.state !== 'active' && key.state !== 'retired') {
    throw new TypeError(`${name}.state must be "active" or "retired"`);
  }
  assertWrappedKey(key.wrapped, `${name}.wrapped`);
  assertBytes(key.keyCheck, KEY_CHECK_LENGTH, `${name}.keyCheck`);
}

/** An ISO 8601 UTC timestamp of now. */
export function now(): string {
  return new Date().toISOString();
}

/** A coded error for the store. */
export function storeError(code: KeyfoldErrorCode, message: string, cause?: unknown): KeyfoldError {
  return new KeyfoldError(code, message, cause === undefined ? {} : { cause });
}

/** The store was closed. */
export function closedError(location: string): KeyfoldError {
  return storeError('PROVIDER_CLOSED', `the key store ${location} is closed`);
}

/** Bytes as a Uint8Array that owns its memory (drivers hand out Buffer views into pools). */
export function ownBytes(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length);
  out.set(b);
  return out;
}

/** Validates re-wrap updates. @throws TypeError / RangeError naming the update. */
export function assertUpdates(updates: readonly RewrapUpdate[]): void {
  if (!isArray(updates)) throw new TypeError('updates must be an array');
  updates.forEach((u: RewrapUpdate, i) => {
    assertName(u?.id, `updates[${i}].id`);
    assertRevision(u.revision, `updates[${i}].revision`);
    if (!u.wrapped || !(u.wrapped.ciphertext instanceof Uint8Array)) throw new TypeError(`updates[${i}].wrapped must be a WrappedKey`);
  });
}

/** Validates a lease request. @throws TypeError / RangeError naming the field. */
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
    request.from.forEach((f, i) => {
      assertProviderRef(f, `request.from[${i}]`);
      if ((f as { version?: unknown }).version !== undefined) assertName((f as { version?: unknown }).version, `request.from[${i}].version`, 256);
    });
  }
}

/** Validates a data key change. @throws TypeError naming the field. */
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

/** Validates a checkpoint update. @throws TypeError naming the field. */
export function assertCheckpoint(update: CheckpointUpdate & { readonly processed?: number }): void {
  if (update === null || typeof update !== 'object') throw new TypeError('checkpoint must be an object');
  assertName(update.name, 'checkpoint.name');
  if (update.cursor !== undefined) assertName(update.cursor, 'checkpoint.cursor');
  if (!Number.isSafeInteger(update.processedDelta) || update.processedDelta < 0) throw new TypeError('checkpoint.processedDelta must be a non-negative integer');
  if (update.processed !== undefined && (!Number.isSafeInteger(update.processed) || update.processed < 0)) {
    throw new TypeError('checkpoint.processed must be a non-negative integer');
  }
  if (update.lease !== undefined) {
    if (update.lease === null || typeof update.lease !== 'object') throw new TypeError('checkpoint.lease must be an object with owner and ttlMs');
    assertName(update.lease.owner, 'checkpoint.lease.owner', 512);
    assertLeaseTtl(update.lease.ttlMs, 'checkpoint.lease.ttlMs');
  }
}

/** Shortest and longest checkpoint lease, in ms. */
export const LEASE_TTL_MIN_MS = 100;
export const LEASE_TTL_MAX_MS = 86_400_000;

/** Asserts a lease duration in ms. @throws RangeError naming it. */
export function assertLeaseTtl(ttlMs: unknown, name: string): asserts ttlMs is number {
  if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) < LEASE_TTL_MIN_MS || (ttlMs as number) > LEASE_TTL_MAX_MS) {
    throw new RangeError(`${name} must be an integer from ${LEASE_TTL_MIN_MS} to ${LEASE_TTL_MAX_MS} (ms); got ${JSON.stringify(ttlMs)}`);
  }
}

/** The time `ms` milliseconds from now (ISO 8601 UTC, the format every stored time has, so strings compare as times). */
export function later(ms: number): string {
  return new Date(Date.now() + ms).toISOString();
}
