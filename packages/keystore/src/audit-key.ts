/**
 * The audit log's MAC key: 32 random bytes, generated when a store is first locked by a KeyProvider (or when a
 * store written before the log was keyed is first opened with one), wrapped by the installation's KEK like every
 * other key, and used to MAC each entry and the head record. Shared by both stores, backup/restore and rotation.
 *
 * Security rules, and why they hold:
 * - The key is wrapped with the context `{ keyfold:purpose: audit-mac, keyfold:installation: <id> }`, so a wrapped
 *   data key moved into the audit key row, or an audit key row from another installation under the same KEK
 *   whose installation id was kept, does not unwrap. A writer without the KEK cannot wrap a key of their own.
 * - Every entry's MAC covers the installation id, its sequence number, its hash (which covers its content and the
 *   previous hash) and the previous entry's MAC; the head's MAC covers the installation id, the first keyed entry,
 *   the head's sequence number and hash and the newest entry's MAC, under another label. So an edited, deleted,
 *   moved or inserted entry, a log re-chained with recomputed hashes, and a head moved back over a truncated tail
 *   all fail without the key.
 * - The plaintext key lives only in an {@link AuditKey} held by an open store object; it is wiped on `close()`.
 *   MACs are compared in constant time.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  KeyfoldError,
  PolicyError,
  constantTimeEqual,
  isKeyProvider,
  randomOwnedBytes,
  wipe,
  type EncryptionContext,
  type KeyProvider,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { IntegrityError } from './errors.js';
import { kekName, sameProvider } from './records.js';
import type { AuditHead, AuditInput, AuditKeyRecord, ProviderRef } from './types.js';

/** Length of the audit MAC key in bytes. */
export const AUDIT_KEY_LENGTH = 32;
const ENTRY_LABEL = 'keyfold/audit/entry-mac/v1';
const HEAD_LABEL = 'keyfold/audit/head-mac/v1';
const MAC_HEX = /^[0-9a-f]{64}$/;
const INSTALLATION = /^[0-9a-f]{32}$/;

/**
 * The encryption context the audit key is wrapped with: its purpose and the installation it belongs to.
 * @example
 * ```ts
 * const key = await provider.unwrapKey(record.wrapped, auditKeyContext(record.installation));
 * ```
 */
export function auditKeyContext(installation: string): EncryptionContext {
  return { 'keyfold:purpose': 'audit-mac', 'keyfold:installation': installation };
}

/** A fresh random installation id (32 hex digits). */
export function newInstallationId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * True for a full `KeyProvider` (something that can wrap and unwrap), false for a `{ kind, keyId }` reference: the
 * core's one shape rule, re-exported for the key store's modules.
 */
export { isKeyProvider };

/** Constant-time comparison of two hex MACs; false for anything that is not a 64-digit lowercase hex string. */
export function macEqual(expected: string, found: unknown): boolean {
  if (typeof found !== 'string' || !MAC_HEX.test(found)) return false;
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(found, 'hex'));
}

/** The error for an audit write on a keyed log by a store object that has not opened the audit key. */
export function auditKeyNotOpen(location: string): PolicyError {
  return new PolicyError(
    'POLICY_VIOLATION',
    `the audit log of the key store ${location} is keyed: writing to it needs the audit key, which only the installation's ` +
      'KEK provider opens (open the store with it: ensureInstallLock(provider) or openAuditKey(provider)). Nothing was written.',
  );
}

/** The provider among `providers` whose kind + keyId match `ref`. */
function providerFor(providers: readonly KeyProvider[], ref: ProviderRef): KeyProvider | undefined {
  return providers.find((p) => sameProvider(p, ref));
}

/**
 * The unwrapped audit key of one installation, held by an open store object. Create it with {@link AuditKey.open}
 * or {@link AuditKey.generate}; {@link AuditKey.wipe} it when done.
 */
export class AuditKey {
  readonly record: AuditKeyRecord;
  #key: Uint8Array | undefined;

  private constructor(record: AuditKeyRecord, key: Uint8Array) {
    this.record = record;
    this.#key = key;
  }

  /**
   * Unwraps a stored audit key with the matching provider.
   * @throws IntegrityError `INTEGRITY_FAILED` when it does not unwrap (the row was replaced, damaged or belongs to
   *   another installation); KeyfoldError `NO_PROVIDER` when no provider matches its KEK; other provider errors
   *   (`UNAVAILABLE`, `ACCESS_DENIED`, ...) as they are.
   */
  static async open(record: AuditKeyRecord, providers: readonly KeyProvider[], location: string): Promise<AuditKey> {
    const w = record.wrapped;
    const provider = providerFor(providers, w);
    if (!provider) {
      throw new KeyfoldError(
        'NO_PROVIDER',
        `the audit key of ${location} is wrapped under ${kekName({ kind: w.kind, keyId: w.keyId })}, which is not among the providers given`,
      );
    }
    if (!INSTALLATION.test(record.installation) || !Number.isSafeInteger(record.keyedFrom) || record.keyedFrom < 1) {
      throw new IntegrityError(`the audit key row of ${location} is damaged: it was modified outside Keyfold`);
    }
    let key: Uint8Array;
    try {
      key = await provider.unwrapKey(w, auditKeyContext(record.installation));
    } catch (err) {
      if (err instanceof KeyfoldError && (err.code === 'UNWRAP_FAILED' || err.code === 'KEY_VERSION_RETIRED' || err.code === 'FORMAT_INVALID')) {
        throw new IntegrityError(
          `the audit key of ${location} does not unwrap under this installation's KEK: its row was replaced (another installation's key?) or damaged. ` +
            'Restore the store from a backup (keyfold restore).',
          { cause: err },
        );
      }
      throw err;
    }
    if (key.length !== AUDIT_KEY_LENGTH) {
      wipe(key);
      throw new IntegrityError(`the audit key of ${location} has the wrong length: its row was replaced`);
    }
    return new AuditKey(record, key);
  }

  /**
   * Generates a new audit key and wraps it under `provider` for a new installation id.
   * @throws provider errors.
   */
  static async generate(provider: KeyProvider, keyedFrom: number, time: string): Promise<AuditKey> {
    const installation = newInstallationId();
    const key = randomOwnedBytes(AUDIT_KEY_LENGTH);
    try {
      const wrapped = await provider.wrapKey(key, auditKeyContext(installation));
      return new AuditKey({ installation, keyedFrom, wrapped, createdAt: time, updatedAt: time }, key);
    } catch (err) {
      wipe(key);
      throw err;
    }
  }

  #bytes(): Uint8Array {
    if (!this.#key) throw new KeyfoldError('PROVIDER_CLOSED', 'this audit key was wiped');
    return this.#key;
  }

  #mac(label: string, parts: readonly (string | number | null)[]): string {
    return createHmac('sha256', this.#bytes()).update(label).update('\n').update(JSON.stringify(parts)).digest('hex');
  }

  /** The MAC of entry `seq` with hash `hash`, chained to `prevMac` (`undefined` for the first keyed entry). */
  entryMac(entry: { readonly seq: number; readonly hash: string }, prevMac: string | undefined): string {
    return this.#mac(ENTRY_LABEL, [this.record.installation, entry.seq, entry.hash, prevMac ?? null]);
  }

  /** The MAC of the head record `head`, whose newest entry carries `entryMac` (`undefined` when none is keyed). */
  headMac(head: Pick<AuditHead, 'seq' | 'hash'>, entryMac: string | undefined, keyedFrom = this.record.keyedFrom): string {
    return this.#mac(HEAD_LABEL, [this.record.installation, keyedFrom, head.seq, head.hash, entryMac ?? null]);
  }

  /**
   * The same key wrapped under `to`'s active version, with the same context; checked by unwrapping it again.
   * @throws KeyfoldError `INTEGRITY_FAILED` when the round trip does not give the key back; provider errors.
   */
  async wrapFor(to: KeyProvider): Promise<WrappedKey> {
    const key = this.#bytes();
    const context = auditKeyContext(this.record.installation);
    const next = await to.wrapKey(key, context);
    const back = await to.unwrapKey(next, context);
    try {
      if (!constantTimeEqual(back, key)) throw new KeyfoldError('INTEGRITY_FAILED', 'the re-wrapped audit key did not unwrap to the same key');
    } finally {
      wipe(back);
    }
    return next;
  }

  /** This key with another record (after a re-wrap). The old object must not be used afterwards. */
  withRecord(record: AuditKeyRecord): AuditKey {
    const key = this.#bytes();
    this.#key = undefined;
    return new AuditKey(record, key);
  }

  /** Wipes the key. Idempotent. */
  wipe(): void {
    wipe(this.#key);
    this.#key = undefined;
  }
}

/** The providers as a list. @throws TypeError when one is not a KeyProvider. */
export function providerList(providers: KeyProvider | readonly KeyProvider[]): readonly KeyProvider[] {
  const list = Array.isArray(providers) ? (providers as readonly KeyProvider[]) : [providers as KeyProvider];
  if (list.length === 0) throw new TypeError('providers must name at least one KeyProvider');
  list.forEach((p, i) => {
    if (!isKeyProvider(p)) throw new TypeError(`providers[${i}] must be a KeyProvider`);
  });
  return list;
}

/**
 * A stored audit key row as an {@link AuditKeyRecord} (both stores use the same column names).
 * @throws IntegrityError `INTEGRITY_FAILED` when a column does not decode.
 */
export function parseAuditKeyRow(row: Readonly<Record<string, unknown>>, location: string): AuditKeyRecord {
  const text = (name: string): string => {
    const v = row[name];
    if (typeof v !== 'string') throw new IntegrityError(`the audit key row of ${location} is damaged (${name}): it was modified outside Keyfold`);
    return v;
  };
  const keyedFrom = Number(row.keyed_from);
  const wrapped = row.wrapped;
  if (!Number.isSafeInteger(keyedFrom) || !(wrapped instanceof Uint8Array)) {
    throw new IntegrityError(`the audit key row of ${location} is damaged: it was modified outside Keyfold`);
  }
  const ciphertext = new Uint8Array(wrapped.length);
  ciphertext.set(wrapped);
  return {
    installation: text('installation'),
    keyedFrom,
    wrapped: Object.freeze({ kind: text('kek_kind'), keyId: text('kek_key_id'), keyVersion: text('kek_version'), ciphertext }),
    createdAt: text('created_at'),
    updatedAt: text('updated_at'),
  };
}

/** The problem `verifyAudit` reports when the key row changed under an open audit key. */
export function auditKeyRowChanged(held: AuditKeyRecord, now: AuditKeyRecord | undefined): string | undefined {
  if (!now) return 'the audit key row was deleted: the log was made to look unkeyed';
  if (now.installation !== held.installation || now.keyedFrom !== held.keyedFrom) return 'the audit key row was replaced';
  return undefined;
}

/** What {@link AuditKeyHolder} needs from a store: persistence only (each method one transaction). */
export interface AuditKeyStorage {
  readonly location: string;
  getAuditKey(): Promise<AuditKeyRecord | undefined>;
  getInstallLock(): Promise<ProviderRef | undefined>;
  /**
   * In one transaction: when a key row exists already (another process keyed the log first) returns `undefined`;
   * else inserts `make(head).record`, and anchors the existing chain: appends {@link anchorEntry}'s entry with the
   * new key when the log is not empty, else sets the head record's MAC to `key.headMac(head, undefined)`.
   */
  insertAuditKey(make: (head: AuditHead) => AuditKey, actor: string): Promise<AuditKey | undefined>;
  /**
   * In one transaction: replaces the wrapped key of row `old` (compare-and-swap on its installation and wrapped
   * key) by `next.wrapped`, and appends `audit` with `key`. @throws ProviderError `UNAVAILABLE` when the row changed.
   */
  replaceAuditKeyWrap(old: AuditKeyRecord, next: AuditKeyRecord, audit: AuditInput, key: AuditKey): Promise<void>;
}

/** The `audit.keyed` entry that anchors an existing (unkeyed) chain under a new audit key; its hash covers it all. */
export function anchorEntry(record: AuditKeyRecord, head: AuditHead, actor: string): AuditInput {
  return { actor, event: 'audit.keyed', subject: 'audit', details: { installation: record.installation, anchoredSeq: head.seq, anchoredHash: head.hash } };
}

/** The audit key of one open store object, with the open / create / re-wrap logic both stores share. */
export class AuditKeyHolder {
  #key: AuditKey | undefined;
  #closed = false;

  /** The open key, or undefined. */
  get key(): AuditKey | undefined {
    return this.#key;
  }

  #set(key: AuditKey): void {
    if (this.#closed) {
      key.wipe();
      throw new KeyfoldError('PROVIDER_CLOSED', 'the key store is closed');
    }
    if (this.#key !== key) this.#key?.wipe();
    this.#key = key;
  }

  /** See `KeyStore.openAuditKey`. */
  async open(
    storage: AuditKeyStorage,
    providers: KeyProvider | readonly KeyProvider[],
    options: { readonly actor?: string; readonly create?: boolean } = {},
  ): Promise<AuditKeyRecord | undefined> {
    const list = providerList(providers);
    const actor = options.actor ?? 'keyfold';
    if (this.#key) return this.#key.record;
    for (;;) {
      const stored = await storage.getAuditKey();
      if (stored) {
        this.#set(await AuditKey.open(stored, list, storage.location));
        return (this.#key as AuditKey | undefined)?.record;
      }
      if (options.create === false) return undefined;
      const lock = await storage.getInstallLock();
      const provider = lock ? list.find((p) => sameProvider(p, lock)) : list[0];
      if (!provider) {
        throw new KeyfoldError('NO_PROVIDER', `the audit key of ${storage.location} is created under the install lock's KEK ${kekName(lock as ProviderRef)}, which is not among the providers given`);
      }
      const fresh = await AuditKey.generate(provider, 1, new Date().toISOString());
      let created: AuditKey | undefined;
      const made: { key?: AuditKey } = {};
      try {
        created = await storage.insertAuditKey((head) => (made.key = fresh.withRecord({ ...fresh.record, keyedFrom: head.seq + 1 })), actor);
      } finally {
        if (!created) {
          fresh.wipe();
          made.key?.wipe();
        }
      }
      if (created) {
        this.#set(created);
        return created.record;
      }
      // Another process created it meanwhile: loop to open theirs.
    }
  }

  /** See `KeyStore.rewrapAuditKey`. */
  async rewrap(storage: AuditKeyStorage, to: KeyProvider, actor: string): Promise<boolean> {
    if (!isKeyProvider(to)) throw new TypeError('to must be a KeyProvider');
    const held = this.#key;
    if (!held) throw auditKeyNotOpen(storage.location);
    const lock = await storage.getInstallLock();
    if (lock && !sameProvider(lock, to)) {
      throw new PolicyError('PROVIDER_MISMATCH', `the audit key is re-wrapped under the install lock's KEK ${kekName(lock)}, not ${kekName(to)}; to move to another provider use migrateProvider (keyfold migrate)`);
    }
    const wrapped = await held.wrapFor(to);
    const old = held.record;
    const w = old.wrapped;
    if (wrapped.kind === w.kind && wrapped.keyId === w.keyId && wrapped.keyVersion === w.keyVersion) return false;
    const next = held.withRecord({ ...old, wrapped, updatedAt: new Date().toISOString() });
    this.#key = next;
    try {
      await storage.replaceAuditKeyWrap(old, next.record, {
        actor,
        event: 'audit.rewrap',
        subject: 'audit',
        details: { from: kekName({ kind: w.kind, keyId: w.keyId, version: w.keyVersion }), to: kekName({ kind: wrapped.kind, keyId: wrapped.keyId, version: wrapped.keyVersion }) },
      }, next);
    } catch (err) {
      this.#key = next.withRecord(old);
      throw err;
    }
    return true;
  }

  /**
   * For a provider migration: re-wraps the open key under `to` and holds it under the new record (the caller writes
   * the record in the lock change's transaction, or calls {@link AuditKeyHolder.abortMove} when that fails), or
   * returns undefined when the key need not move (unkeyed log, same provider).
   * @throws PolicyError `POLICY_VIOLATION` when the log is keyed and the key is not open, or `to` is a reference only.
   */
  async prepareMove(storage: AuditKeyStorage, to: ProviderRef | KeyProvider): Promise<AuditKey | undefined> {
    const stored = await storage.getAuditKey();
    const held = this.#key;
    if (!stored && !held) return undefined;
    if (!held) throw auditKeyNotOpen(storage.location);
    if (sameProvider(held.record.wrapped, to)) return undefined;
    if (!isKeyProvider(to)) {
      throw new PolicyError('POLICY_VIOLATION', `the audit log of ${storage.location} is keyed: the install lock moves only with a KeyProvider for ${kekName(to)}, which re-wraps the audit key`);
    }
    const wrapped = await held.wrapFor(to);
    const moved = held.withRecord({ ...held.record, wrapped, updatedAt: new Date().toISOString() });
    this.#key = moved;
    return moved;
  }

  /** Puts the key back under its old record after a failed move. */
  abortMove(moved: AuditKey, old: AuditKeyRecord): void {
    this.#key = moved.withRecord(old);
  }

  /** Wipes the key; later opens fail. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#key?.wipe();
    this.#key = undefined;
  }
}
