/**
 * The PKCS#11 key provider: data keys are wrapped inside an HSM under a KEK that never leaves it.
 *
 * Security rules, and why they hold:
 * - The KEK is a token object that is sensitive and not extractable (checked before use, refused otherwise), and
 *   every wrap and unwrap runs inside the token (C_Encrypt/C_Decrypt or C_WrapKey/C_UnwrapKey), so no KEK bytes
 *   ever reach this process.
 * - Each wrapped key is bound to kind, key id, version and the canonical context: as AES-GCM associated data in
 *   `AES_GCM` mode, as a binding tag keyed by the data key in `AES_KEY_WRAP_PAD` mode (see `wrap-format.ts`).
 * - Every unwrap failure that is about the ciphertext (unknown format, wrong length, unknown version, tag mismatch in
 *   the token, binding-tag mismatch) is the one generic UNWRAP_FAILED.
 * - A wrong PIN is tried once and never again in this process (`library.ts`), so Keyfold cannot lock a token.
 * - One operation per session at a time (`session-pool.ts`); sessions invalidated under us are reopened, with a new
 *   login when the token logged us out, and the operation is tried once more (`SessionRunner`, same file).
 * @module
 */
import {
  BaseKeyProvider,
  type KeyfoldError,
  ProviderError,
  UnwrapFailedError,
  randomOwnedBytes,
  wipe,
  type EncryptionContext,
  type ProviderCapabilities,
  type ProviderDescription,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { assertCapabilities, KEYGEN_REQUIREMENT, MODE_REQUIREMENTS } from './capabilities.js';
import { AadCache } from './aad-cache.js';
import { mapPkcs11Error, toKeyfoldError, type Pkcs11Operation } from './error-mapping.js';
import {
  gcmDecrypt,
  gcmEncrypt,
  kwpUnwrap,
  kwpWrap,
  mechanismsOf,
  openSession,
  slotId,
  type MechanismInfo,
  type Pkcs11Execution,
  type Session,
  type Slot,
} from './graphene-adapter.js';
import { isCanonicalVersion, nextVersion, objectLabel } from './kek-labels.js';
import { assertUsableKek, createKekVersion, findKekVersion, listKekVersions, type KekObject, type KekUse } from './kek-objects.js';
import {
  acquireLibrary,
  acquireToken,
  describeSlot,
  ensureLoggedIn,
  findSlot,
  releaseLibrary,
  releaseToken,
  type SharedLibrary,
  type TokenState,
} from './library.js';
import { resolveProviderOptions, type Pkcs11ProviderOptions, type ResolvedProviderOptions } from './options.js';
import { SessionPool, SessionRunner, type SessionPoolStats } from './session-pool.js';
import {
  DATA_KEY_LENGTH,
  GCM_IV_LENGTH,
  GCM_SEALED_OFFSET,
  GCM_TAG_LENGTH,
  KWP_WRAPPED_LENGTH,
  checkKwpUnwrapped,
  kwpWrapped,
  newGcmWrapped,
  parseWrapped,
  type Pkcs11WrapMechanism,
} from './wrap-format.js';

/** The provider kind stored in every wrapped key. */
export const PKCS11_KIND = 'pkcs11';

/** Counters of one provider. */
export interface Pkcs11ProviderStats {
  readonly pool: SessionPoolStats;
  /** Operations tried a second time after their session was invalidated or their KEK handle went stale. */
  readonly recoveries: number;
}

interface ProviderInit {
  readonly options: ResolvedProviderOptions;
  readonly resilience: Pkcs11ProviderOptions['resilience'];
  readonly lib: SharedLibrary;
  readonly slot: Slot;
  readonly tokenLabel: string;
  readonly token: TokenState;
  readonly where: string;
  readonly mechanisms: MechanismInfo[];
  readonly session: Session;
  readonly keks: readonly KekObject[];
  readonly active: string;
}

/**
 * A KeyProvider backed by a PKCS#11 token. Make one with {@link createPkcs11Provider}.
 *
 * `wrapKey` / `unwrapKey` / `generateDataKey` / `rewrapKey` / `describe` / `probe` / `close` follow the KeyProvider
 * rules (see `@keyfold/envelope-core`); `rotate()` adds a KEK version inside the token; `stats()` shows the pool.
 * @throws (from its methods) KeyfoldError UNWRAP_FAILED for any wrapped key that does not open, ACCESS_DENIED,
 *   KEY_NOT_FOUND, CONFIG_INVALID, UNAVAILABLE, PROVIDER_CLOSED; TypeError / RangeError for invalid arguments.
 * @example
 * ```ts
 * const wrapped = await provider.wrapKey(dataKey, { tenant: 'acme' });
 * const again = await provider.unwrapKey(wrapped, { tenant: 'acme' });
 * ```
 */
export class Pkcs11Provider extends BaseKeyProvider {
  readonly kind = PKCS11_KIND;
  /** The KEK's label (`keyLabel`), the same for all its versions. */
  readonly keyId: string;
  readonly protection = 'hsm' as const;
  /** The wrapping mode of new wraps. Unwrap accepts keys made in either mode. */
  readonly mechanism: Pkcs11WrapMechanism;

  readonly #execution: Pkcs11Execution;
  readonly #lib: SharedLibrary;
  readonly #slot: Slot;
  readonly #tokenLabel: string;
  readonly #token: TokenState;
  readonly #where: string;
  readonly #mechanisms: MechanismInfo[];
  readonly #pool: SessionPool;
  readonly #library: string;
  readonly #sessions: number;
  /** KEK versions known to this provider (found at open, created by rotate, or found later by label). */
  readonly #keks = new Map<string, KekObject>();
  /** Versions this provider has seen on the token; one that disappears is KEY_NOT_FOUND, not UNWRAP_FAILED. */
  readonly #seen = new Set<string>();
  #active: string;
  readonly #aads: AadCache;
  #pin: string | undefined;
  readonly #runner: SessionRunner<Pkcs11Operation>;

  private constructor(init: ProviderInit) {
    // PKCS#11 calls go to a library in this process; see createPkcs11Provider for why resilience is off by default.
    super({ resilience: init.resilience ?? false });
    const o = init.options;
    this.keyId = o.keyLabel;
    this.mechanism = o.mechanism;
    this.#aads = new AadCache(PKCS11_KIND, o.keyLabel);
    this.#execution = o.execution;
    this.#lib = init.lib;
    this.#slot = init.slot;
    this.#tokenLabel = init.tokenLabel;
    this.#token = init.token;
    this.#where = init.where;
    this.#mechanisms = init.mechanisms;
    this.#library = o.library;
    this.#sessions = o.sessions;
    this.#pin = o.pin;
    this.#active = init.active;
    for (const k of init.keks) {
      this.#keks.set(k.version, k);
      this.#seen.add(k.version);
    }
    this.#pool = new SessionPool({ size: o.sessions, open: () => this.#openSession(), name: `pkcs11 provider for ${o.keyLabel}` });
    this.#pool.adopt(init.session);
    this.#runner = new SessionRunner<Pkcs11Operation>(this.#pool, {
      loggedIn: () => this.#token.loggedIn,
      markLoggedOut: () => {
        this.#token.loggedIn = false;
      },
      login: (session) => this.#login(session),
      forgetKek: (version) => this.#keks.delete(version),
      closed: () => this.closed,
      mapError: (err, operation, version) => toKeyfoldError(err, operation, this.#site(version)),
    });
  }

  /** @internal Use {@link createPkcs11Provider}. */
  static async open(options: Pkcs11ProviderOptions): Promise<Pkcs11Provider> {
    // Rejections, not synchronous throws, for every failure including invalid options.
    await Promise.resolve();
    const o = resolveProviderOptions(options);
    const lib = acquireLibrary(o.library);
    let token: TokenState | undefined;
    let session: Session | undefined;
    let where = o.library;
    try {
      const found = findSlot(lib, { slot: o.slot, tokenLabel: o.tokenLabel });
      where = describeSlot(found.slot, found.tokenLabel);
      const mechanisms = mechanismsOf(found.slot);
      assertCapabilities(mechanisms, MODE_REQUIREMENTS[o.mechanism], where);
      token = acquireToken(lib, found.slot);
      session = openSession(found.slot, false);
      const slot = found.slot;
      ensureLoggedIn(token, session, o.pin, where, () => slot.getToken().flags);
      const keks = listKekVersions(session, o.keyLabel, where);
      if (keks.length === 0) {
        throw new ProviderError(
          'KEY_NOT_FOUND',
          `${where} holds no KEK labelled ${JSON.stringify(o.keyLabel)} or ${JSON.stringify(`${o.keyLabel}.v1`)}, ...; ` +
            'create one with `keyfold kek add` (generatePkcs11KekVersion) or pkcs11-tool --keygen --key-type AES:32 --sensitive --private',
        );
      }
      const active = o.activeVersion ?? (keks[keks.length - 1] as KekObject).version;
      const activeKek = keks.find((k) => k.version === active);
      if (!activeKek) {
        throw new ProviderError(
          'KEY_NOT_FOUND',
          `${where} has no version ${active} of ${JSON.stringify(o.keyLabel)} (object ${JSON.stringify(objectLabel(o.keyLabel, active))}); ` +
            `versions found: ${keks.map((k) => k.version).join(', ')}`,
        );
      }
      for (const k of keks) assertUsableKek(k, o.mechanism, k === activeKek ? 'wrap' : 'unwrap', where);
      return new Pkcs11Provider({
        options: o,
        resilience: options.resilience,
        lib,
        slot,
        tokenLabel: found.tokenLabel,
        token,
        where,
        mechanisms,
        session,
        keks,
        active,
      });
    } catch (err) {
      if (token) releaseToken(lib, token, session);
      if (session) closeQuietly(session);
      releaseLibrary(lib);
      throw toKeyfoldError(err, 'session', { token: where });
    }
  }

  /**
   * Makes sure the application is logged in, through `session` if needed (at most one C_Login; a refused PIN is
   * never tried again). After a login that was lost and made again, cached KEK handles are dropped: a token may
   * invalidate the handles of private objects at logout (SoftHSM2 does) and hand out new ones after.
   */
  #login(session: Session): void {
    const pin = this.#pin;
    if (pin === undefined) throw new ProviderError('PROVIDER_CLOSED', `the pkcs11 provider for ${this.keyId} is closed`);
    const slot = this.#slot;
    const wasLoggedIn = this.#token.loggedIn;
    ensureLoggedIn(this.#token, session, pin, this.#where, () => slot.getToken().flags);
    if (!wasLoggedIn) this.#keks.clear();
  }

  #openSession(): Session {
    if (this.#pin === undefined) throw new ProviderError('PROVIDER_CLOSED', `the pkcs11 provider for ${this.keyId} is closed`);
    let session: Session | undefined;
    try {
      session = openSession(this.#slot, false);
      this.#login(session);
      return session;
    } catch (err) {
      if (session) closeQuietly(session);
      throw toKeyfoldError(err, 'session', { token: this.#where });
    }
  }

  /** The KEK object of `version`, looked up on the token the first time. `undefined` when the token has none. */
  #kek(session: Session, version: string, use: KekUse): KekObject | undefined {
    const cached = this.#keks.get(version);
    if (cached) return cached;
    const found = findKekVersion(session, this.keyId, version, this.#where);
    if (!found) return undefined;
    assertUsableKek(found, this.mechanism, use, this.#where);
    this.#keks.set(version, found);
    this.#seen.add(version);
    return found;
  }

  #site(version: string): { token: string; key: string; mechanism: string } {
    return { token: this.#where, key: objectLabel(this.keyId, version), mechanism: `CKM_${this.mechanism}` };
  }

  /** Any version's object can be written under (`withWriteVersion`): the token is asked for `<keyLabel>.v<N>`. */
  protected override get addressesVersions(): boolean {
    return true;
  }

  protected override _writeVersionProblem(version: string): Promise<string | undefined> {
    // Whether the token holds the object is found out by the wrap itself (KEY_NOT_FOUND naming the label).
    return Promise.resolve(
      isCanonicalVersion(version)
        ? undefined
        : `${JSON.stringify(version)} is not a PKCS#11 KEK version (1, 2, ... for objects labelled ${JSON.stringify(objectLabel(this.keyId, '1'))}, ...)`,
    );
  }

  protected override _wrapKey(dataKey: Uint8Array, context: EncryptionContext, _signal?: AbortSignal, writeVersion?: string): Promise<WrappedKey> {
    const version = writeVersion ?? this.#active;
    const aad = this.#aads.aad(this.mechanism, version, context, this.#keks.has(version) || version === this.#active);
    const done = (ciphertext: Uint8Array): WrappedKey => ({ kind: this.kind, keyId: this.keyId, keyVersion: version, ciphertext });
    return this.#runner.run('wrap', version, (session) => {
      const kek = this.#kek(session, version, 'wrap');
      if (!kek) {
        const label = JSON.stringify(objectLabel(this.keyId, version));
        if (version === this.#active) throw new ProviderError('KEY_NOT_FOUND', `the active KEK ${label} is no longer on ${this.#where}`);
        throw new ProviderError(
          'KEY_NOT_FOUND',
          `KEK version ${version} is the version to write under, but ${this.#where} holds no object labelled ${label}: add the ` +
            `key object ${label} to this token (generated with 'keyfold kek add' where it should live, or replicated by your HSM). ` +
            'Nothing was written; the versions on this token still unwrap',
        );
      }
      if (this.mechanism === 'AES_GCM') {
        const iv = randomOwnedBytes(GCM_IV_LENGTH);
        const out = newGcmWrapped(iv);
        const check = (written: number): WrappedKey => {
          if (written !== DATA_KEY_LENGTH + GCM_TAG_LENGTH) {
            throw new ProviderError('INTERNAL', `${this.#where} returned ${written} bytes for an AES-GCM wrap; expected 48`);
          }
          return done(out);
        };
        const written = gcmEncrypt(session, kek.key, iv, aad, dataKey, this.#execution, out, GCM_SEALED_OFFSET);
        return typeof written === 'number' ? check(written) : written.then(check);
      }
      return kwpWrap(session, kek.key, dataKey, this.#execution).then((wrapped) => {
        if (wrapped.length !== KWP_WRAPPED_LENGTH) {
          throw new ProviderError('INTERNAL', `${this.#where} returned ${wrapped.length} bytes for an RFC 5649 wrap; expected 40`);
        }
        return done(kwpWrapped(wrapped, dataKey, aad));
      });
    });
  }

  protected override _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    const version = wrapped.keyVersion;
    if (!isCanonicalVersion(version)) return Promise.reject(new UnwrapFailedError());
    const parsed = parseWrapped(wrapped.ciphertext);
    if (!parsed) return Promise.reject(new UnwrapFailedError());
    const aad = this.#aads.aad(parsed.mode, version, context, this.#keks.has(version));
    return this.#runner.run('unwrap', version, (session) => {
      const kek = this.#kek(session, version, 'unwrap');
      if (!kek) {
        if (this.#seen.has(version)) {
          throw new ProviderError('KEY_NOT_FOUND', `KEK ${JSON.stringify(objectLabel(this.keyId, version))} is no longer on ${this.#where}; it may have been deleted`);
        }
        throw new UnwrapFailedError();
      }
      if (parsed.mode === 'AES_GCM') {
        const checkLength = (key: Uint8Array): Uint8Array => {
          if (key.length !== DATA_KEY_LENGTH) {
            wipe(key);
            throw new UnwrapFailedError();
          }
          return key;
        };
        const key = gcmDecrypt(session, kek.key, parsed.iv, aad, parsed.sealed, this.#execution);
        return key instanceof Uint8Array ? checkLength(key) : key.then(checkLength);
      }
      return kwpUnwrap(session, kek.key, parsed.kwp, this.#execution).then((key) => checkKwpUnwrapped(key, aad, parsed.bindingTag));
    });
  }

  protected override get capabilities(): ProviderCapabilities {
    return { ...super.capabilities, rotate: true };
  }

  protected override async _describe(): Promise<ProviderDescription> {
    const versions = await this.#runner.run('describe', this.#active, (session) =>
      Promise.resolve(listKekVersions(session, this.keyId, this.#where).map((k) => k.version)),
    );
    for (const v of versions) this.#seen.add(v);
    if (!versions.includes(this.#active)) {
      throw new ProviderError('KEY_NOT_FOUND', `the active KEK ${JSON.stringify(objectLabel(this.keyId, this.#active))} is no longer on ${this.#where}`);
    }
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: this.#active,
      versions,
      capabilities: this.capabilities,
      details: this.#details(),
    };
  }

  #details(): Record<string, string | number | boolean> {
    const relevant = this.#mechanisms.filter((m) => m.name.startsWith('CKM_AES')).map((m) => m.name);
    return {
      library: this.#library,
      slot: slotId(this.#slot).toString(),
      tokenLabel: this.#tokenLabel,
      mechanism: this.mechanism,
      activeObjectLabel: objectLabel(this.keyId, this.#active),
      execution: this.#execution,
      sessions: this.#sessions,
      aesMechanisms: relevant.join(','),
    };
  }

  /**
   * Creates the next KEK version inside the token (`<keyLabel>.v<N+1>`, sensitive, not extractable) and makes it the
   * active version of this provider. Keys wrapped under earlier versions still unwrap.
   * @returns the new version.
   * @throws ProviderError PROVIDER_CLOSED after close; CONFIG_INVALID when the token cannot generate AES keys or
   *   refuses to create objects; ALREADY_EXISTS when another process created the same version concurrently.
   * @example
   * ```ts
   * const v = await provider.rotate(); // '3'
   * ```
   */
  async rotate(): Promise<string> {
    await Promise.resolve();
    this.assertOpen();
    let session: Session | undefined;
    try {
      assertCapabilities(this.#mechanisms, [KEYGEN_REQUIREMENT], this.#where);
      session = openSession(this.#slot, true);
      this.#login(session);
      const existing = listKekVersions(session, this.keyId, this.#where);
      const version = nextVersion(existing[existing.length - 1]?.version);
      const kek = createKekVersion(session, this.keyId, version, this.#where);
      assertUsableKek(kek, this.mechanism, 'wrap', this.#where);
      this.assertOpen();
      this.#keks.set(version, kek);
      this.#seen.add(version);
      this.#active = version;
      return version;
    } catch (err) {
      throw toKeyfoldError(err, 'generate', { token: this.#where, key: this.keyId });
    } finally {
      if (session) closeQuietly(session);
    }
  }

  /** Session pool and recovery counters. */
  stats(): Pkcs11ProviderStats {
    return { pool: this.#pool.stats(), recoveries: this.#runner.recoveries };
  }

  /** Waits for the operations in flight, logs out (if no other provider uses the token), closes and finalizes. */
  protected override async _close(): Promise<void> {
    await this.#pool.drain();
    releaseToken(this.#lib, this.#token, this.#pool.anyIdle());
    this.#pool.closeAll();
    releaseLibrary(this.#lib);
    this.#pin = undefined;
    this.#keks.clear();
  }

  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    return mapPkcs11Error(err, 'session', { token: this.#where });
  }
}

function closeQuietly(session: Session): void {
  try {
    session.close();
  } catch {
    // already closed or invalid
  }
}

/**
 * Opens a PKCS#11 key provider: loads the library (C_Initialize with CKF_OS_LOCKING_OK, shared by every provider in
 * the process), finds the token by `slot` or `tokenLabel`, checks that it offers the mode's mechanism with the
 * needed flags, logs in once with the user PIN, finds the KEK versions (`<keyLabel>.v<N>`, and `<keyLabel>` as
 * version 0), checks each is a sensitive, non-extractable AES-256 key, and picks the active version (the highest,
 * unless `activeVersion` is set).
 *
 * `resilience` defaults to `false`: the calls go to a library in this process (a network HSM's client library does
 * its own failover), a deadline cannot cancel a native call that is already running, and the one error that must
 * never be retried, a wrong PIN, is handled here. Pass `resilience: {...}` to add the core's retries for
 * UNAVAILABLE, a deadline and a circuit breaker (ACCESS_DENIED is never retried by it).
 *
 * @throws TypeError / RangeError for invalid options; KeyfoldError CONFIG_INVALID (library will not load, no such
 *   token, mechanism missing, unusable KEK attributes, no user PIN), ACCESS_DENIED (wrong or locked PIN),
 *   KEY_NOT_FOUND (no KEK with that label or version), UNAVAILABLE (token not responding).
 * @example
 * ```ts
 * const provider = await createPkcs11Provider({
 *   library: '/usr/lib/softhsm/libsofthsm2.so',
 *   tokenLabel: 'keyfold',
 *   pinEnv: 'KEYFOLD_HSM_PIN',
 *   keyLabel: 'payments',
 *   mechanism: 'AES_GCM',
 *   sessions: 4,
 * });
 * const envelope = createEnvelope({ providers: [provider] });
 * ```
 */
export function createPkcs11Provider(options: Pkcs11ProviderOptions): Promise<Pkcs11Provider> {
  return Pkcs11Provider.open(options);
}

