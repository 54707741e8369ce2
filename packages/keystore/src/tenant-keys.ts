/**
 * Tenant keys: per-tenant data keys kept wrapped in a {@link KeyStore} under the installation's KEK provider, each
 * tenant exposed as a `KeyProvider` of kind `tenant` so that envelopes, rotation and multi-provider sealing all
 * work on tenant keys unchanged.
 *
 * Security rules, and why they hold:
 * - A tenant key is wrapped with the context `{ keyfold:store, keyfold:id, keyfold:owner }`, so a wrapped key moved
 *   to another row or tenant does not unwrap; after unwrapping, its key check value is compared (constant time) with
 *   the stored one before the key is used.
 * - Unwrapped tenant keys live only in a bounded LRU with a time to live; they are wiped on eviction, expiry,
 *   shred and close, and callers only ever get copies that are wiped after each wrap / unwrap.
 * - `shredTenant` deletes every wrapped version in one audited transaction and wipes this process's cached copies;
 *   other processes drop theirs within the cache TTL (default 60 s), after which the tenant's envelopes can never
 *   be opened again, anywhere.
 * - `shredTenantKeyVersion` destroys one old version the same way (the active one is refused), so a tenant's key
 *   can be rotated and the version it replaced erased once nothing needs it (`reencryptTenant` in `@keyfold/rotation`).
 * - With `createTenantKey: 'on-first-use'` the first seal for an unknown tenant creates its key. Two processes doing
 *   so at once both generate a key, but the store's unique key id lets exactly one insert win; the other wipes its
 *   own key and uses the winner's, so every envelope of the tenant is under one key. A shredded tenant is never
 *   re-created this way (its key ids still exist), and opening never creates anything.
 * - `TenantKeys` refuses a KEK provider that does not match the store's install lock (`PROVIDER_MISMATCH`), and the
 *   memory provider in production.
 * @module
 */
import {
  BaseKeyProvider,
  assertKeyProvider,
  ProviderError,
  UnwrapFailedError,
  assertProvidersAllowed,
  constantTimeEqual,
  encodeContext,
  localUnwrap,
  localWrap,
  localWrapAad,
  randomOwnedBytes,
  resolveSecurityMode,
  wipe,
  type EncryptionContext,
  type KeyProvider,
  type ProviderCapabilities,
  type ProviderDescription,
  type SecurityMode,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { IntegrityError, TenantKeyDestroyedError } from './errors.js';
import { KeyCache, type KeyCacheOptions } from './key-cache.js';
import { bindProviderToStore, type StoreBoundProvider } from './store-pointer.js';
import { assertName, dataKeyContext, kekName, keyCheckValue } from './records.js';
import type { DataKeyRecord, KeyStore, ProcessRegistration, ProcessRegistrationOptions } from './types.js';

/** Tenant ids: short, printable, stored in clear in every envelope. */
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const VERSION = /^[1-9][0-9]{0,8}$/;
const OWNER_PREFIX = 'tenant:';

/**
 * Asserts `id` is a valid tenant id: 1-64 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
 * @throws TypeError / RangeError.
 * @example
 * ```ts
 * assertTenantId('acme'); // ok; assertTenantId('a b') throws RangeError
 * ```
 */
export function assertTenantId(id: unknown): asserts id is string {
  if (typeof id !== 'string') throw new TypeError(`tenant id must be a string; got ${typeof id}`);
  if (!TENANT_ID.test(id)) {
    throw new RangeError(`tenant id must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit; got ${JSON.stringify(id)}`);
  }
}

/**
 * The store owner of a tenant's keys.
 * @example
 * ```ts
 * tenantOwner('acme'); // 'tenant:acme'
 * ```
 */
export function tenantOwner(id: string): string {
  return `${OWNER_PREFIX}${id}`;
}

/**
 * The store id of one version of a tenant's key.
 * @example
 * ```ts
 * tenantKeyId('acme', 2); // 'tenant:acme:2'
 * ```
 */
export function tenantKeyId(id: string, version: number): string {
  return `${OWNER_PREFIX}${id}:${version}`;
}

/**
 * What {@link TenantKeys} reports about a tenant (no key material).
 * @example
 * ```ts
 * const { id, activeVersion, versions, shredded } = await tenantKeys.createTenant('acme');
 * ```
 */
export interface TenantInfo {
  readonly id: string;
  /** The version new seals use (`undefined` once shredded). */
  readonly activeVersion: number | undefined;
  /** How many versions exist (destroyed ones included). */
  readonly versions: number;
  readonly shredded: boolean;
}

/**
 * When a tenant's key is created: `'explicit'` (default: {@link TenantKeys.createTenant} only; sealing for an unknown
 * tenant fails with `KEY_NOT_FOUND`) or `'on-first-use'` (the first seal for an unknown tenant creates version 1,
 * audited `tenant.create` with `onFirstUse: true`).
 */
export type CreateTenantKey = 'explicit' | 'on-first-use';

/** One version of a tenant's key as {@link TenantKeys.tenantKeyVersions} lists it (no key material). */
export interface TenantKeyVersion {
  readonly version: number;
  /** `active` (new seals), `retired` (still opens what it sealed), `destroyed` (shredded). */
  readonly state: 'active' | 'retired' | 'destroyed';
  /** The installation KEK version it is wrapped under (`undefined` once destroyed). */
  readonly kekVersion: string | undefined;
  readonly createdAt: string;
}

/**
 * Options of {@link openTenantKeys}.
 * @example
 * ```ts
 * const options: TenantKeysOptions = { store, provider, actor: 'billing-service', cache: { maxEntries: 500 } };
 * ```
 */
export interface TenantKeysOptions {
  store: KeyStore;
  /** The installation's KEK provider; must match the store's install lock (recorded on first use). */
  provider: KeyProvider;
  /** Actor recorded in audit entries. Default `keyfold`. */
  actor?: string;
  /** The unwrapped tenant key cache (bounded LRU with TTL). */
  cache?: KeyCacheOptions;
  /** `production` (default) refuses the memory provider. */
  securityMode?: SecurityMode;
  /** `'on-first-use'`: the first seal for an unknown tenant creates its key (see {@link CreateTenantKey}). */
  createTenantKey?: CreateTenantKey;
  /**
   * How long (ms) the store's active KEK version is reused before the next tenant key wrap reads it again (see
   * {@link bindProviderToStore}). Default 30 000.
   */
  pointerRefreshMs?: number;
  /**
   * The process registry: by default this process registers itself in the store with the KEK versions `provider`
   * loaded, keeps the record fresh while the tenant keys are open, and removes it on `close()`, so `keyfold kek
   * verify --target N` sees it before a rotation. Options tune it (`label`, `refreshIntervalMs`, `ttlMs`); `false`
   * does not register. A store opened read-only is never registered.
   */
  register?: ProcessRegistrationOptions | false;
}

interface Acquired {
  /** A copy the caller wipes. */
  readonly key: Uint8Array;
  readonly version: number;
}

/**
 * Per-tenant keys over a {@link KeyStore}. Create it with {@link openTenantKeys}.
 * @example
 * ```ts
 * const tenantKeys = await openTenantKeys({ store, provider });
 * await tenantKeys.createTenant('acme');
 * const envelope = createEnvelope({ providers: [tenantKeys.tenant('acme')] });
 * ```
 */
export class TenantKeys {
  readonly store: KeyStore;
  readonly provider: KeyProvider;
  readonly actor: string;
  /** When tenant keys are created (see {@link CreateTenantKey}). */
  readonly createTenantKey: CreateTenantKey;
  readonly #cache: KeyCache;
  readonly #providers = new Map<string, TenantKeyProvider>();
  /** Active version per tenant, with the time it was read (refreshed after the cache TTL). */
  readonly #active = new Map<string, { version: number; at: number }>();
  /** Bumped by shred / rotate, so a load that raced one is discarded. */
  readonly #generation = new Map<string, number>();
  readonly #knownKek = new Set<string>();
  #closed = false;
  /** This process's record in the store's process registry (removed on close). */
  readonly #registration: ProcessRegistration | undefined;

  /** @internal Use {@link openTenantKeys}. */
  constructor(options: TenantKeysOptions & { provider: StoreBoundProvider }, actor: string, registration?: ProcessRegistration) {
    this.store = options.store;
    this.provider = options.provider;
    this.actor = actor;
    this.createTenantKey = options.createTenantKey ?? 'explicit';
    this.#cache = new KeyCache(options.cache);
    this.#registration = registration;
  }

  /** The process registry record of these tenant keys (see {@link TenantKeysOptions.register}), if registered. */
  get registration(): ProcessRegistration | undefined {
    return this.#registration;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ProviderError('PROVIDER_CLOSED', 'these tenant keys are closed');
  }

  #gen(id: string): number {
    return this.#generation.get(id) ?? 0;
  }

  #bump(id: string): void {
    this.#generation.set(id, this.#gen(id) + 1);
    this.#active.delete(id);
    this.#cache.deletePrefix(`${id}\u0000`);
  }

  async #recordKek(wrapped: WrappedKey): Promise<void> {
    const name = kekName({ kind: wrapped.kind, keyId: wrapped.keyId, version: wrapped.keyVersion });
    if (this.#knownKek.has(name)) return;
    const known = await this.store.listKekVersions({ kind: wrapped.kind, keyId: wrapped.keyId });
    const rec = known.find((k) => k.version === wrapped.keyVersion);
    if (!rec || rec.state === 'retired') {
      // Registered (a retired version is refused here: nothing new may be wrapped under it). Only the first version
      // of a KEK becomes active this way; later activations are the rotation's (rotateKek), so processes rolling
      // out a new version at different times do not flip the registry back and forth.
      await this.store.recordKekVersion(
        { kind: wrapped.kind, keyId: wrapped.keyId, version: wrapped.keyVersion },
        { activate: !known.some((k) => k.state === 'active'), actor: this.actor },
      );
    }
    this.#knownKek.add(name);
  }

  /** Generates and wraps a new tenant key; returns what to store (the key itself is wiped). */
  async #newKey(id: string, version: number): Promise<{ wrapped: WrappedKey; keyCheck: Uint8Array; key: Uint8Array }> {
    const key = randomOwnedBytes(32);
    try {
      const wrapped = await this.provider.wrapKey(key, dataKeyContext({ id: tenantKeyId(id, version), owner: tenantOwner(id) }));
      await this.#recordKek(wrapped);
      return { wrapped, keyCheck: keyCheckValue(key), key };
    } catch (err) {
      wipe(key);
      throw err;
    }
  }

  /**
   * Creates tenant `id` with key version 1 (audited `tenant.create`).
   * @throws KeyfoldError `ALREADY_EXISTS` when the tenant exists (or existed and was shredded); provider errors
   *   when wrapping fails; TypeError / RangeError for a malformed id.
   * @example
   * ```ts
   * await tenantKeys.createTenant('acme');
   * ```
   */
  async createTenant(id: string): Promise<TenantInfo> {
    this.#assertOpen();
    assertTenantId(id);
    return this.#create(id, false);
  }

  async #create(id: string, onFirstUse: boolean): Promise<TenantInfo> {
    const { wrapped, keyCheck, key } = await this.#newKey(id, 1);
    try {
      const kek = kekName({ kind: wrapped.kind, keyId: wrapped.keyId, version: wrapped.keyVersion });
      await this.store.insertDataKeys(
        [{ id: tenantKeyId(id, 1), owner: tenantOwner(id), version: 1, wrapped, keyCheck }],
        { actor: this.actor, event: 'tenant.create', subject: tenantOwner(id), details: { tenant: id, version: 1, kek, ...(onFirstUse ? { onFirstUse: true } : {}) } },
      );
      this.#bump(id);
      this.#cache.set(`${id}\u0000${1}`, key);
      return { id, activeVersion: 1, versions: 1, shredded: false };
    } finally {
      wipe(key);
    }
  }

  /**
   * Adds a new version of the tenant's key and makes it the one new seals use; older versions keep opening what
   * they sealed (audited `tenant.rotate`).
   * @returns the tenant after the rotation.
   * @throws ProviderError `KEY_NOT_FOUND` when the tenant does not exist or was shredded.
   * @example
   * ```ts
   * const { activeVersion } = await tenantKeys.rotateTenantKey('acme'); // 2
   * ```
   */
  async rotateTenantKey(id: string): Promise<TenantInfo> {
    this.#assertOpen();
    assertTenantId(id);
    const owner = tenantOwner(id);
    const current = await this.#ownerInfo(id);
    const version = current.versions + 1;
    const { wrapped, keyCheck, key } = await this.#newKey(id, version);
    try {
      await this.store.addDataKeyVersion(
        owner,
        { id: tenantKeyId(id, version), version, wrapped, keyCheck },
        { actor: this.actor, event: 'tenant.rotate', subject: owner, details: { tenant: id } },
      );
      this.#bump(id);
      this.#cache.set(`${id}\u0000${version}`, key);
      return { id, activeVersion: version, versions: version, shredded: false };
    } finally {
      wipe(key);
    }
  }

  /**
   * Destroys every version of the tenant's key (audited `tenant.shred`): every envelope sealed for the tenant can
   * never be opened again. This process's cached copies are wiped at once; other processes drop theirs within the
   * cache TTL.
   * @returns how many key versions were destroyed.
   * @throws ProviderError `KEY_NOT_FOUND` when the tenant does not exist.
   * @example
   * ```ts
   * await tenantKeys.shredTenant('acme'); // GDPR erasure: acme's data is now unreadable everywhere
   * ```
   */
  async shredTenant(id: string): Promise<{ id: string; destroyed: number }> {
    this.#assertOpen();
    assertTenantId(id);
    this.#bump(id);
    const destroyed = await this.store.destroyOwner(tenantOwner(id), {
      actor: this.actor,
      event: 'tenant.shred',
      subject: tenantOwner(id),
      details: { tenant: id },
    });
    this.#bump(id);
    return { id, destroyed };
  }

  /**
   * Destroys one old version of the tenant's key (audited `tenant.shred-version`): the envelopes still sealed under
   * it can never be opened again; the other versions keep working. This process's cached copy is wiped at once;
   * other processes drop theirs within the cache TTL. Idempotent: a version already destroyed reports
   * `destroyed: false`.
   * @throws PolicyError `POLICY_VIOLATION` when `version` is the tenant's active version (rotate first);
   *   ProviderError `KEY_NOT_FOUND` when the tenant or the version does not exist; TypeError / RangeError for a
   *   malformed id or version.
   * @example
   * ```ts
   * await tenantKeys.rotateTenantKey('acme'); // version 2 is active
   * await tenantKeys.shredTenantKeyVersion('acme', 1); // what only version 1 opens is gone for good
   * ```
   */
  async shredTenantKeyVersion(id: string, version: number): Promise<{ id: string; version: number; destroyed: boolean }> {
    this.#assertOpen();
    assertTenantId(id);
    if (typeof version !== 'number' || !Number.isSafeInteger(version)) throw new TypeError(`version must be an integer; got ${String(version)}`);
    if (version < 1) throw new RangeError(`version must be 1 or more; got ${version}`);
    this.#bump(id);
    const destroyed = await this.store.destroyDataKeyVersion(tenantOwner(id), version, {
      actor: this.actor,
      event: 'tenant.shred-version',
      subject: tenantOwner(id),
      details: { tenant: id },
    });
    this.#bump(id);
    return { id, version, destroyed };
  }

  /**
   * Every version of the tenant's key with its state, oldest first (no key material).
   * @throws ProviderError `KEY_NOT_FOUND` when the tenant does not exist; TypeError / RangeError for a malformed id.
   * @example
   * ```ts
   * const old = (await tenantKeys.tenantKeyVersions('acme')).filter((v) => v.state === 'retired');
   * ```
   */
  async tenantKeyVersions(id: string): Promise<TenantKeyVersion[]> {
    this.#assertOpen();
    assertTenantId(id);
    const out: TenantKeyVersion[] = [];
    for (let after: string | undefined; ; ) {
      const page = await this.store.listDataKeys({ owner: tenantOwner(id), limit: 1000, ...(after === undefined ? {} : { after }) });
      for (const r of page) out.push({ version: r.version, state: r.state, kekVersion: r.wrapped?.keyVersion, createdAt: r.createdAt });
      if (page.length < 1000) break;
      after = page[page.length - 1]?.id;
    }
    if (out.length === 0) throw new ProviderError('KEY_NOT_FOUND', `tenant ${id} does not exist`);
    return out.sort((a, b) => a.version - b.version);
  }

  async #ownerInfo(id: string): Promise<TenantInfo> {
    const owners = await this.store.listOwners(tenantOwner(id));
    const o = owners.find((x) => x.owner === tenantOwner(id));
    if (!o) throw new ProviderError('KEY_NOT_FOUND', `tenant ${id} does not exist`);
    if (o.destroyed) throw new ProviderError('KEY_NOT_FOUND', `tenant ${id} was shredded: its keys are destroyed`);
    return { id, activeVersion: o.activeVersion, versions: o.versions, shredded: false };
  }

  /**
   * The tenant's state, or `undefined` when it does not exist.
   * @example
   * ```ts
   * const info = await tenantKeys.getTenant('acme');
   * ```
   */
  async getTenant(id: string): Promise<TenantInfo | undefined> {
    this.#assertOpen();
    assertTenantId(id);
    const o = (await this.store.listOwners(tenantOwner(id))).find((x) => x.owner === tenantOwner(id));
    return o ? { id, activeVersion: o.destroyed ? undefined : o.activeVersion, versions: o.versions, shredded: o.destroyed } : undefined;
  }

  /**
   * Every tenant, in id order.
   * @example
   * ```ts
   * for (const t of await tenantKeys.listTenants()) console.log(t.id, t.activeVersion, t.shredded);
   * ```
   */
  async listTenants(): Promise<TenantInfo[]> {
    this.#assertOpen();
    return (await this.store.listOwners(OWNER_PREFIX)).map((o) => ({
      id: o.owner.slice(OWNER_PREFIX.length),
      activeVersion: o.destroyed ? undefined : o.activeVersion,
      versions: o.versions,
      shredded: o.destroyed,
    }));
  }

  /**
   * The tenant as a `KeyProvider` (kind `tenant`, keyId = tenant id). The same object is returned for the same id
   * until it is closed. Nothing is read until it is used.
   * @throws TypeError / RangeError for a malformed id; PROVIDER_CLOSED after `close()`.
   * @example
   * ```ts
   * const envelope = createEnvelope({ providers: [tenantKeys.tenant('acme')] });
   * const sealed = await envelope.seal('invoice #1');
   * ```
   */
  tenant(id: string): TenantKeyProvider {
    this.#assertOpen();
    assertTenantId(id);
    let p = this.#providers.get(id);
    if (!p || p.closed) {
      p = new TenantKeyProvider(this, id, {
        acquire: (version) => this.#acquire(id, version),
        describe: () => this.#ownerInfo(id),
        rotate: async () => String((await this.rotateTenantKey(id)).activeVersion),
      });
      this.#providers.set(id, p);
    }
    return p;
  }

  async #activeVersion(id: string): Promise<number> {
    const cached = this.#active.get(id);
    if (cached && Date.now() - cached.at < this.#cache.ttlMs) return cached.version;
    let rec = await this.store.findDataKey(tenantOwner(id));
    if (!rec && this.createTenantKey === 'on-first-use') rec = await this.#createOnFirstUse(id);
    if (!rec) {
      await this.#ownerInfo(id); // throws the right KEY_NOT_FOUND
      throw new ProviderError('KEY_NOT_FOUND', `tenant ${id} has no active key`);
    }
    this.#active.set(id, { version: rec.version, at: Date.now() });
    return rec.version;
  }

  /**
   * Creates an unknown tenant's key for its first seal. Race-free across processes: the store refuses a second
   * `tenant:<id>:1` (ALREADY_EXISTS), so when another process won, its key is read back and used instead.
   * @returns the active key record, or `undefined` when the tenant exists without one (it was shredded).
   */
  async #createOnFirstUse(id: string): Promise<DataKeyRecord | undefined> {
    // It exists: created meanwhile by another process (read it again), or shredded (no active key: never re-created).
    if (await this.getTenant(id)) return this.store.findDataKey(tenantOwner(id));
    try {
      await this.#create(id, true);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ALREADY_EXISTS') throw err;
    }
    return this.store.findDataKey(tenantOwner(id));
  }

  /** A copy of the tenant key of `version` (default: active), from the cache or unwrapped from the store. */
  async #acquire(id: string, version: number | undefined): Promise<Acquired> {
    this.#assertOpen();
    const v = version ?? (await this.#activeVersion(id));
    const slot = `${id}\u0000${v}`;
    const hit = this.#cache.get(slot);
    if (hit) return { key: hit, version: v };
    const gen = this.#gen(id);
    const rec = await this.store.findDataKey(tenantOwner(id), v);
    // An unknown version is a bad wrapped key like any other: the one generic error (a destroyed one says so).
    if (!rec) throw version === undefined ? new ProviderError('KEY_NOT_FOUND', `tenant ${id} has no key version ${v}`) : new UnwrapFailedError();
    const key = await this.#unwrapRecord(id, rec);
    if (this.#gen(id) !== gen || this.#closed) {
      // Shredded, rotated or closed while we unwrapped: do not keep (or hand out) a stale key.
      wipe(key);
      if (this.#closed) throw new ProviderError('PROVIDER_CLOSED', 'these tenant keys are closed');
      return this.#acquire(id, version);
    }
    this.#cache.set(slot, key);
    return { key, version: v };
  }

  async #unwrapRecord(id: string, rec: DataKeyRecord): Promise<Uint8Array> {
    if (rec.state === 'destroyed' || !rec.wrapped || !rec.keyCheck) {
      throw new TenantKeyDestroyedError(id, rec.version);
    }
    const key = await this.provider.unwrapKey(rec.wrapped, dataKeyContext(rec));
    const check = keyCheckValue(key);
    if (!constantTimeEqual(check, rec.keyCheck)) {
      wipe(key);
      throw new IntegrityError(`the stored key ${rec.id} does not match its key check value: the store was tampered with`);
    }
    return key;
  }

  /**
   * Wipes every cached tenant key and closes the tenant providers. The store and the KEK provider stay open (they
   * are the caller's). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.clear();
    const providers = [...this.#providers.values()];
    this.#providers.clear();
    await Promise.all(providers.map((p) => p.close()));
    await this.#registration?.close();
  }

  /** Cached key count (for tests and `status`). */
  get cachedKeys(): number {
    return this.#cache.size;
  }
}

/** What a tenant provider needs from its {@link TenantKeys}. */
interface TenantBackend {
  acquire(version: number | undefined): Promise<Acquired>;
  describe(): Promise<TenantInfo>;
  rotate(): Promise<string>;
}

/**
 * One tenant's key as a `KeyProvider` (kind `tenant`). Get it from {@link TenantKeys.tenant}. Wraps with AES-256-GCM
 * under the tenant's active key version, bound to the context, the tenant id and the version; unwraps any version
 * that is not destroyed. Local work: no retries or circuit breaker.
 * @example
 * ```ts
 * const acme = tenantKeys.tenant('acme');
 * const envelope = createEnvelope({ providers: [acme] });
 * ```
 */
export class TenantKeyProvider extends BaseKeyProvider {
  override readonly kind = 'tenant';
  override readonly protection = 'software' as const;
  override readonly keyId: string;
  readonly #backend: TenantBackend;

  /** @internal Use {@link TenantKeys.tenant}. */
  /**
   * @param keyring The {@link TenantKeys} this tenant's key belongs to (the property keeps its earlier name for
   *   compatibility).
   */
  constructor(readonly keyring: TenantKeys, id: string, backend: TenantBackend) {
    super({ resilience: false });
    this.keyId = id;
    this.#backend = backend;
  }

  protected override async _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    const { key, version } = await this.#backend.acquire(undefined);
    try {
      const keyVersion = String(version);
      const ciphertext = localWrap(key, dataKey, localWrapAad(this.kind, this.keyId, keyVersion, encodeContext(context)));
      return { kind: this.kind, keyId: this.keyId, keyVersion, ciphertext };
    } finally {
      wipe(key);
    }
  }

  protected override async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    if (!VERSION.test(wrapped.keyVersion)) throw new UnwrapFailedError();
    const { key } = await this.#backend.acquire(Number(wrapped.keyVersion));
    try {
      const out = localUnwrap(key, wrapped.ciphertext, localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context)));
      if (!out) throw new UnwrapFailedError();
      return out;
    } finally {
      wipe(key);
    }
  }

  protected override async _describe(): Promise<ProviderDescription> {
    const info = await this.#backend.describe();
    const versions: string[] = [];
    for (let v = 1; v <= info.versions; v++) versions.push(String(v));
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: String(info.activeVersion ?? ''),
      versions,
      capabilities: this.capabilities,
      details: { kek: `${this.keyring.provider.kind}:${this.keyring.provider.keyId}`, store: this.keyring.store.location },
    };
  }

  protected override get capabilities(): ProviderCapabilities {
    return { ...super.capabilities, rotate: true };
  }

  /**
   * Rotates this tenant's key (see {@link TenantKeys.rotateTenantKey}).
   * @returns the new active version.
   * @example
   * ```ts
   * const version = await tenantKeys.tenant('acme').rotate(); // '2'
   * ```
   */
  rotate(): Promise<string> {
    this.assertOpen();
    return this.#backend.rotate();
  }
}

/**
 * Opens the tenant keys over `store` with the installation's KEK `provider`: records the install lock on first use and
 * refuses any other provider afterwards. Tenant keys (and the audit key) are wrapped under the version the store
 * records as active for the KEK, not the provider's own choice: the provider is bound to the store's pointer
 * ({@link bindProviderToStore}; `tenantKeys.provider` is that binding), so a host that lacks the active version
 * refuses to create or rotate tenant keys with `KEY_NOT_FOUND` and still opens the ones it can.
 * @throws PolicyError `PROVIDER_MISMATCH` naming both providers when `provider` is not the one the store was
 *   installed with; `POLICY_VIOLATION` for the memory provider in production; TypeError for bad options.
 * @example
 * ```ts
 * import { createEnvelope } from '@keyfold/envelope-core';
 * import { openSqliteKeyStore, openTenantKeys } from '@keyfold/keystore';
 *
 * const store = await openSqliteKeyStore({ path: './.keyfold/store.db' });
 * const tenantKeys = await openTenantKeys({ store, provider });
 * await tenantKeys.createTenant('acme');
 * const sealed = await createEnvelope({ providers: [tenantKeys.tenant('acme')] }).seal('hello');
 * ```
 */
export async function openTenantKeys(options: TenantKeysOptions): Promise<TenantKeys> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (!options.store || typeof options.store.ensureInstallLock !== 'function') throw new TypeError('store must be a KeyStore');
  assertKeyProvider(options.provider, 'provider');
  const actor = options.actor ?? 'keyfold';
  assertName(actor, 'actor');
  if (options.createTenantKey !== undefined && options.createTenantKey !== 'explicit' && options.createTenantKey !== 'on-first-use') {
    throw new TypeError(`createTenantKey must be 'explicit' or 'on-first-use'; got ${JSON.stringify(options.createTenantKey)}`);
  }
  assertProvidersAllowed([options.provider], resolveSecurityMode(options.securityMode));
  const provider = bindProviderToStore(
    options.store,
    options.provider,
    options.pointerRefreshMs === undefined ? {} : { refreshMs: options.pointerRefreshMs },
  );
  await options.store.ensureInstallLock(provider, actor);
  const register = options.register ?? {};
  if (register !== false && (register === null || typeof register !== 'object')) throw new TypeError('register must be registry options or false');
  const readOnly = (options.store as { readOnly?: unknown }).readOnly === true;
  const registration =
    register === false || readOnly || typeof options.store.registerProcess !== 'function'
      ? undefined
      : await options.store.registerProcess(options.provider, { label: 'tenant-keys', ...register });
  return new TenantKeys({ ...options, provider }, actor, registration);
}

/** @deprecated Use {@link openTenantKeys} (same function; renamed so "keyring" no longer names three things). */
export const openKeyring = openTenantKeys;
/** @deprecated Use {@link TenantKeys} (same class). */
export const Keyring = TenantKeys;
/** @deprecated Use {@link TenantKeys} (same class). */
export type Keyring = TenantKeys;
/** @deprecated Use {@link TenantKeysOptions}. */
export type KeyringOptions = TenantKeysOptions;
