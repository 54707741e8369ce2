/**
 * `createEnvelope`: seal / open / stream / rewrap / inspect over the v1 format, with the data key wrapped under
 * every configured provider (any one opens), an optional data key cache, and the security policy.
 * @module
 */
import { createCipheriv } from 'node:crypto';
import type { Transform } from 'node:stream';
import { assertBytes, constantTimeEqual, copyBytes, wipe } from './bytes.js';
import { DataKeyCache, decryptCacheKey, type CacheCounters, type CacheOptions } from './cache.js';
import { contextsEqual, encodeContext } from './context.js';
import { randomOwnedBytes } from './aead.js';
import {
  ContextMismatchError,
  DecryptFailedError,
  KeyfoldError,
  PolicyError,
  ProviderError,
  type KeyfoldErrorCode,
} from './errors.js';
import {
  DEFAULT_LIMITS,
  FINAL_FRAME_BIT,
  FRAME_HEADER_LENGTH,
  SALT_LENGTH,
  SUITE_AES256GCM_HKDF_COMMIT,
  FIXED_PREFIX_LENGTH,
  SUITE_NAMES,
  TAG_LENGTH,
  dearmor,
  armor,
  normalizeContext,
  parseHeader,
  serializeHeader,
  serializeWrappedKeys,
  type FormatLimits,
  type ParsedHeader,
} from './format.js';
import { computeCommitment, deriveMessageKeys, frameAad, frameNonce, nextSalt, openFrame, type MessageKeys } from './message-crypto.js';
import { resolveSecurityMode, type SecurityMode } from './policy.js';
import { createOpenStream, createSealStream } from './stream.js';
import { DATA_KEY_LENGTH, type EncryptionContext, type KeyProvider, type WrappedKey } from './types.js';

/** Default plaintext bytes per stream frame. */
export const DEFAULT_FRAME_SIZE = 64 * 1024;

export interface EnvelopePolicy {
  /** `production` (default) or `development`; see {@link resolveSecurityMode}. */
  securityMode?: SecurityMode;
  /** Parser limits (wrapped keys per envelope, header bytes, frame size). */
  limits?: Partial<FormatLimits>;
}

export interface EnvelopeOptions {
  /** KEK providers. `providers[0]` is primary; the data key is wrapped under every one and any one opens. */
  providers: readonly KeyProvider[];
  /** Data key cache: `true` for defaults, options, or `false`/absent for none. */
  cache?: CacheOptions | boolean;
  policy?: EnvelopePolicy;
  /** Plaintext bytes per frame for `sealStream`. Default 65,536. */
  frameSize?: number;
}

export interface OpenOptions {
  /** When given, the envelope's stored context must equal it exactly (order irrelevant), else CONTEXT_MISMATCH. */
  context?: EncryptionContext;
}

export interface RewrapOptions {
  /** Providers to wrap the data key under (default: this envelope's providers). */
  to?: readonly KeyProvider[];
}

/** What `inspect` shows: header fields only, no key access. */
export interface EnvelopeInfo {
  formatVersion: number;
  suiteId: number;
  suite: string;
  framed: boolean;
  frameSize: number;
  context: EncryptionContext;
  wrappedKeys: { kind: string; keyId: string; keyVersion: string; ciphertextLength: number }[];
  headerLength: number;
  bodyLength: number;
}

export interface EnvelopeStats {
  sealed: number;
  opened: number;
  rewrapped: number;
  providerCalls: { generateDataKey: number; wrap: number; unwrap: number; total: number };
  cache: (CacheCounters & { encryptEntries: number; decryptEntries: number }) | undefined;
}

/** The object `createEnvelope` returns. */
export interface Envelope {
  /**
   * Seals `plaintext` (bytes, or a string encoded as UTF-8) bound to `context`. Returns the binary envelope.
   * @throws TypeError for bad arguments; KeyfoldError (provider codes) when wrapping fails.
   */
  seal(plaintext: Uint8Array | string, context?: EncryptionContext): Promise<Uint8Array>;
  /** Like `seal`, returning the `kf1.<base64url>` text armor. */
  sealToString(plaintext: Uint8Array | string, context?: EncryptionContext): Promise<string>;
  /**
   * Opens a binary or armored envelope. Returns a fresh buffer the caller owns (and may wipe).
   * @throws DecryptFailedError (DECRYPT_FAILED) for every cryptographic failure; ContextMismatchError;
   *   FormatError / UnsupportedFormatError / LimitExceededError for a malformed header; KeyfoldError NO_PROVIDER
   *   when no configured provider matches a wrapped key; operational provider codes (UNAVAILABLE, ...).
   */
  open(envelope: Uint8Array | string, options?: OpenOptions): Promise<Uint8Array>;
  /** A Transform: plaintext in, framed envelope out. */
  sealStream(context?: EncryptionContext): Transform;
  /** A Transform: envelope in, plaintext out; a frame's plaintext is pushed only after its tag verified. */
  openStream(options?: OpenOptions): Transform;
  /**
   * Wraps the envelope's data key under `to` (default: this envelope's providers) and returns the envelope with
   * the new header; the body bytes are identical (no data re-encryption). Same representation as the input.
   */
  rewrap(envelope: Uint8Array, options?: RewrapOptions): Promise<Uint8Array>;
  rewrap(envelope: string, options?: RewrapOptions): Promise<string>;
  /** Header fields; no key access. @throws FormatError / UnsupportedFormatError / LimitExceededError */
  inspect(envelope: Uint8Array | string): EnvelopeInfo;
  stats(): EnvelopeStats;
  /** Wipes and drops cached data keys. Providers are the caller's and stay open. Idempotent. */
  close(): Promise<void>;
}

/** Error codes an open may surface unchanged: operational, not "this ciphertext is bad". */
const OPERATIONAL: ReadonlySet<KeyfoldErrorCode> = new Set<KeyfoldErrorCode>([
  'THROTTLED',
  'UNAVAILABLE',
  'TIMEOUT',
  'ACCESS_DENIED',
  'ATTESTATION_REFUSED',
  'KEY_NOT_FOUND',
  'KEY_DISABLED',
  'KEY_VERSION_RETIRED',
  'PROVIDER_CLOSED',
]);

/** Refuses development-only providers in production mode (DESIGN.md "Security policy"). */
export function assertProvidersAllowed(providers: readonly KeyProvider[], mode: SecurityMode): void {
  for (const p of providers) {
    if (mode === 'production' && (p.protection === 'memory' || p.kind === 'memory')) {
      throw new PolicyError(
        'POLICY_VIOLATION',
        `the ${p.kind} provider "${p.keyId}" keeps its KEK only in process memory (lost at exit, unprotected) and is ` +
          'refused in production mode; use the env or file provider (or a KMS/HSM provider), or set ' +
          'KEYFOLD_SECURITY_MODE=development for tests and local experiments',
      );
    }
  }
}

function assertProviderShape(p: unknown, i: number): void {
  const x = p as Partial<KeyProvider> | null;
  if (
    x === null ||
    typeof x !== 'object' ||
    typeof x.kind !== 'string' ||
    typeof x.keyId !== 'string' ||
    typeof x.wrapKey !== 'function' ||
    typeof x.unwrapKey !== 'function'
  ) {
    throw new TypeError(`providers[${i}] must be a KeyProvider (kind, keyId, wrapKey, unwrapKey)`);
  }
}

interface Unlocked {
  dataKey: Uint8Array;
  keys: MessageKeys;
  /** True when the caller owns `dataKey` and must wipe it. */
  owned: boolean;
}

class EnvelopeImpl implements Envelope {
  readonly #providers: readonly KeyProvider[];
  readonly #cache: DataKeyCache | undefined;
  readonly #limits: FormatLimits;
  readonly #frameSize: number;
  readonly #mode: SecurityMode;
  readonly #calls = { generateDataKey: 0, wrap: 0, unwrap: 0 };
  #sealed = 0;
  #opened = 0;
  #rewrapped = 0;
  #closed = false;

  constructor(options: EnvelopeOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('createEnvelope needs an options object');
    const providers: readonly unknown[] = Array.isArray(options.providers) ? (options.providers as readonly unknown[]) : [];
    if (providers.length === 0) throw new TypeError('providers must be a non-empty array of KeyProvider');
    providers.forEach(assertProviderShape);
    this.#mode = resolveSecurityMode(options.policy?.securityMode);
    assertProvidersAllowed(providers as readonly KeyProvider[], this.#mode);
    this.#providers = Object.freeze([...(providers as readonly KeyProvider[])]);
    this.#limits = resolveLimits(options.policy?.limits);
    const frameSize = options.frameSize ?? DEFAULT_FRAME_SIZE;
    if (!Number.isInteger(frameSize) || frameSize < 1 || frameSize > this.#limits.maxFrameSize) {
      throw new RangeError(`frameSize must be an integer from 1 to ${this.#limits.maxFrameSize}; got ${frameSize}`);
    }
    this.#frameSize = frameSize;
    if (providers.length > this.#limits.maxWrappedKeys) {
      throw new RangeError(`${providers.length} providers exceed limits.maxWrappedKeys (${this.#limits.maxWrappedKeys})`);
    }
    const c = options.cache;
    this.#cache = c === undefined || c === false ? undefined : new DataKeyCache(c === true ? {} : c);
  }

  #assertOpen(): void {
    if (this.#closed) throw new KeyfoldError('PROVIDER_CLOSED', 'this envelope has been closed');
  }

  /** A data key for one message of `bytes` bytes: from the cache, or generated and wrapped under every provider. */
  async #acquireForSeal(
    context: EncryptionContext,
    contextKey: string,
    bytes: number,
  ): Promise<{ dataKey: Uint8Array; wrappedSection: Uint8Array; owned: boolean; fresh: boolean }> {
    const hit = this.#cache?.takeForEncrypt(contextKey, bytes);
    // A copy: the caller resumes after an await, by which time another call may have evicted (wiped) the entry.
    if (hit) return { dataKey: copyBytes(hit.dataKey), wrappedSection: hit.wrappedSection, owned: true, fresh: false };
    const [primary, ...others] = this.#providers as [KeyProvider, ...KeyProvider[]];
    let dataKey: Uint8Array;
    let first: WrappedKey;
    if (primary.generateDataKey) {
      this.#calls.generateDataKey++;
      const g = await primary.generateDataKey(context);
      if (!(g.dataKey instanceof Uint8Array) || g.dataKey.length !== DATA_KEY_LENGTH) {
        if (g.dataKey instanceof Uint8Array) wipe(g.dataKey);
        throw new ProviderError('INTERNAL', `the ${primary.kind} provider returned a data key of the wrong size`);
      }
      dataKey = g.dataKey;
      first = g.wrapped;
    } else {
      dataKey = randomOwnedBytes(DATA_KEY_LENGTH);
      this.#calls.wrap++;
      try {
        first = await primary.wrapKey(dataKey, context);
      } catch (err) {
        wipe(dataKey);
        throw err;
      }
    }
    try {
      this.#calls.wrap += others.length;
      const rest = others.length === 0 ? [] : await Promise.all(others.map((p) => p.wrapKey(dataKey, context)));
      return { dataKey, wrappedSection: serializeWrappedKeys([first, ...rest], this.#limits), owned: true, fresh: true };
    } catch (err) {
      wipe(dataKey);
      throw err;
    }
  }

  /** Builds and commits a header; returns it with the per-message keys. Synchronous: safe with cached keys. */
  #buildHeader(
    dataKey: Uint8Array,
    contextBytes: Uint8Array,
    wrappedSection: Uint8Array,
    frameSize: number,
    salt: Uint8Array,
  ): { header: Uint8Array; core: Uint8Array; keys: MessageKeys } {
    const { bytes, coreLength, commitmentOffset } = serializeHeader(
      { suiteId: SUITE_AES256GCM_HKDF_COMMIT, frameSize, contextBytes, wrappedSection, salt },
      this.#limits,
    );
    const keys = deriveMessageKeys(dataKey, salt);
    bytes.set(computeCommitment(keys, bytes.subarray(0, commitmentOffset)), commitmentOffset);
    return { header: bytes, core: bytes.subarray(0, coreLength), keys };
  }

  async seal(plaintext: Uint8Array | string, context?: EncryptionContext): Promise<Uint8Array> {
    this.#assertOpen();
    const pt = typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : plaintext;
    assertBytes(pt, undefined, 'plaintext');
    const ctx = normalizeContext(context);
    const contextBytes = encodeContext(ctx);
    const contextKey = Buffer.from(contextBytes).toString('latin1');
    const acquired = await this.#acquireForSeal(ctx, contextKey, pt.length);
    let owned = acquired.owned;
    let keys: MessageKeys | undefined;
    try {
      const salt = nextSalt(SALT_LENGTH);
      const built = this.#buildHeader(acquired.dataKey, contextBytes, acquired.wrappedSection, 0, salt);
      keys = built.keys;
      const out = new Uint8Array(built.header.length + pt.length + TAG_LENGTH);
      out.set(built.header, 0);
      const cipher = createCipheriv('aes-256-gcm', keys.encKey, frameNonce(0), { authTagLength: TAG_LENGTH });
      cipher.setAAD(frameAad(built.core, 0, true, pt.length));
      let off = built.header.length;
      const a = cipher.update(pt);
      out.set(a, off);
      off += a.length;
      const b = cipher.final();
      out.set(b, off);
      off += b.length;
      out.set(cipher.getAuthTag(), off);
      if (acquired.fresh && this.#cache?.offerForEncrypt(contextKey, acquired.dataKey, acquired.wrappedSection, pt.length)) {
        owned = false;
      }
      this.#sealed++;
      return out;
    } finally {
      keys?.wipe();
      if (owned) wipe(acquired.dataKey);
    }
  }

  async sealToString(plaintext: Uint8Array | string, context?: EncryptionContext): Promise<string> {
    return armor(await this.seal(plaintext, context));
  }

  /**
   * Unwraps the data key with the first provider that can, and checks the key commitment before anything is
   * decrypted. Tries every wrapped key a configured provider matches.
   */
  async #unlock(header: ParsedHeader, headerBytes: Uint8Array): Promise<Unlocked> {
    const prefix = headerBytes.subarray(0, header.commitmentOffset);
    const cacheKey = this.#cache ? decryptCacheKey(headerBytes, FIXED_PREFIX_LENGTH, header.saltOffset) : undefined;
    const cached = cacheKey === undefined ? undefined : this.#cache?.getForDecrypt(cacheKey);
    if (cached) {
      // A copy the caller owns: it is used after awaits (rewrap), when the cache may have wiped the entry.
      const dataKey = copyBytes(cached);
      const keys = deriveMessageKeys(dataKey, header.salt);
      if (constantTimeEqual(computeCommitment(keys, prefix), header.commitment)) {
        return { dataKey, keys, owned: true };
      }
      keys.wipe();
      wipe(dataKey);
    }
    let matched = false;
    let operational: KeyfoldError | undefined;
    for (const w of header.wrappedKeys) {
      const provider = this.#providers.find((p) => p.kind === w.kind && p.keyId === w.keyId);
      if (!provider) continue;
      matched = true;
      let dataKey: Uint8Array;
      try {
        this.#calls.unwrap++;
        dataKey = await provider.unwrapKey(w, header.context);
      } catch (err) {
        if (err instanceof KeyfoldError && OPERATIONAL.has(err.code)) operational ??= err;
        continue;
      }
      if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
        if (dataKey instanceof Uint8Array) wipe(dataKey);
        continue;
      }
      const keys = deriveMessageKeys(dataKey, header.salt);
      if (!constantTimeEqual(computeCommitment(keys, prefix), header.commitment)) {
        keys.wipe();
        wipe(dataKey);
        continue;
      }
      if (cacheKey !== undefined && this.#cache) {
        const entry = copyBytes(dataKey);
        if (!this.#cache.offerForDecrypt(cacheKey, entry)) wipe(entry);
      }
      return { dataKey, keys, owned: true };
    }
    if (!matched) {
      const sealedFor = header.wrappedKeys.map((w) => `${w.kind}:${w.keyId}`).join(', ');
      const configured = this.#providers.map((p) => `${p.kind}:${p.keyId}`).join(', ');
      throw new ProviderError(
        'NO_PROVIDER',
        `none of the configured providers (${configured}) can open this envelope; it was sealed for ${sealedFor}`,
      );
    }
    if (operational) throw operational;
    throw new DecryptFailedError();
  }

  #parse(input: Uint8Array | string): { bytes: Uint8Array; header: ParsedHeader } {
    const bytes = typeof input === 'string' ? dearmor(input) : input;
    assertBytes(bytes, undefined, 'envelope');
    return { bytes, header: parseHeader(bytes, this.#limits, true) };
  }

  #checkContext(header: ParsedHeader, expected: EncryptionContext | undefined): void {
    if (expected === undefined) return;
    const exp = normalizeContext(expected, 'options.context');
    if (!contextsEqual(header.context, exp)) {
      const keys = new Set([...Object.keys(exp), ...Object.keys(header.context)]);
      const differing = [...keys].filter((k) => header.context[k] !== exp[k]).sort();
      throw new ContextMismatchError(
        `the envelope's encryption context differs from the expected one (keys: ${differing.join(', ')})`,
      );
    }
  }

  async open(input: Uint8Array | string, options: OpenOptions = {}): Promise<Uint8Array> {
    this.#assertOpen();
    const { bytes, header } = this.#parse(input);
    this.#checkContext(header, options.context);
    const unlocked = await this.#unlock(header, bytes);
    try {
      const plaintext = decryptBody(bytes, header, unlocked.keys.encKey);
      this.#opened++;
      return plaintext;
    } finally {
      unlocked.keys.wipe();
      if (unlocked.owned) wipe(unlocked.dataKey);
    }
  }

  sealStream(context?: EncryptionContext): Transform {
    this.#assertOpen();
    const ctx = normalizeContext(context);
    const contextBytes = encodeContext(ctx);
    const contextKey = Buffer.from(contextBytes).toString('latin1');
    const frameSize = this.#frameSize;
    return createSealStream(frameSize, async () => {
      // Stream sizes are unknown up front: count the message, not its bytes, against the cache limits.
      const acquired = await this.#acquireForSeal(ctx, contextKey, 0);
      let owned = acquired.owned;
      try {
        const built = this.#buildHeader(acquired.dataKey, contextBytes, acquired.wrappedSection, frameSize, nextSalt(SALT_LENGTH));
        if (acquired.fresh && this.#cache?.offerForEncrypt(contextKey, acquired.dataKey, acquired.wrappedSection, 0)) owned = false;
        this.#sealed++;
        return { header: built.header, core: built.core, keys: built.keys };
      } finally {
        if (owned) wipe(acquired.dataKey);
      }
    });
  }

  openStream(options: OpenOptions = {}): Transform {
    this.#assertOpen();
    if (options.context !== undefined) normalizeContext(options.context, 'options.context');
    return createOpenStream(this.#limits, async (header, headerBytes) => {
      this.#checkContext(header, options.context);
      const unlocked = await this.#unlock(header, headerBytes);
      if (unlocked.owned) wipe(unlocked.dataKey);
      this.#opened++;
      return unlocked.keys;
    });
  }

  rewrap(envelope: Uint8Array, options?: RewrapOptions): Promise<Uint8Array>;
  rewrap(envelope: string, options?: RewrapOptions): Promise<string>;
  async rewrap(input: Uint8Array | string, options: RewrapOptions = {}): Promise<Uint8Array | string> {
    this.#assertOpen();
    const given: readonly unknown[] = Array.isArray(options.to ?? this.#providers) ? ((options.to ?? this.#providers)) : [];
    if (given.length === 0) throw new TypeError('options.to must be a non-empty array of KeyProvider');
    given.forEach(assertProviderShape);
    const targets = given as readonly KeyProvider[];
    assertProvidersAllowed(targets, this.#mode);
    const { bytes, header } = this.#parse(input);
    const unlocked = await this.#unlock(header, bytes);
    let keys: MessageKeys | undefined;
    try {
      // Prove the body opens before re-committing a header to it: never re-wrap a damaged envelope.
      wipe(decryptBody(bytes, header, unlocked.keys.encKey));
      this.#calls.wrap += targets.length;
      const wrappedKeys = await Promise.all(targets.map((p) => p.wrapKey(unlocked.dataKey, header.context)));
      const wrappedSection = serializeWrappedKeys(wrappedKeys, this.#limits);
      const built = this.#buildHeader(unlocked.dataKey, header.contextBytes, wrappedSection, header.frameSize, header.salt);
      keys = built.keys;
      const body = bytes.subarray(header.length);
      const out = new Uint8Array(built.header.length + body.length);
      out.set(built.header, 0);
      out.set(body, built.header.length);
      this.#rewrapped++;
      return typeof input === 'string' ? armor(out) : out;
    } finally {
      keys?.wipe();
      unlocked.keys.wipe();
      if (unlocked.owned) wipe(unlocked.dataKey);
    }
  }

  inspect(input: Uint8Array | string): EnvelopeInfo {
    const { bytes, header } = this.#parse(input);
    return inspectHeader(header, bytes.length);
  }

  stats(): EnvelopeStats {
    const c = this.#cache;
    const { generateDataKey, wrap, unwrap } = this.#calls;
    return {
      sealed: this.#sealed,
      opened: this.#opened,
      rewrapped: this.#rewrapped,
      providerCalls: { generateDataKey, wrap, unwrap, total: generateDataKey + wrap + unwrap },
      cache: c ? { ...c.counters, encryptEntries: c.size.encrypt, decryptEntries: c.size.decrypt } : undefined,
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#cache?.clear();
    return Promise.resolve();
  }
}

function resolveLimits(partial: Partial<FormatLimits> | undefined): FormatLimits {
  const l = { ...DEFAULT_LIMITS, ...(partial ?? {}) };
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`policy.limits.${k} must be a positive integer; got ${String(v)}`);
  }
  if (l.maxWrappedKeys > 255) throw new RangeError('policy.limits.maxWrappedKeys must be at most 255');
  if (l.maxFrameSize > 0x7fff_ffff) throw new RangeError('policy.limits.maxFrameSize must be below 2^31');
  return l;
}

/** Header info for `inspect`, from a parsed header. */
export function inspectHeader(header: ParsedHeader, totalLength: number): EnvelopeInfo {
  return {
    formatVersion: header.version,
    suiteId: header.suiteId,
    suite: SUITE_NAMES[header.suiteId] ?? String(header.suiteId),
    framed: header.frameSize !== 0,
    frameSize: header.frameSize,
    context: { ...header.context },
    wrappedKeys: header.wrappedKeys.map((w) => ({
      kind: w.kind,
      keyId: w.keyId,
      keyVersion: w.keyVersion,
      ciphertextLength: w.ciphertext.length,
    })),
    headerLength: header.length,
    bodyLength: totalLength - header.length,
  };
}

/**
 * Inspects an envelope's header without any provider or key: format, suite, context, wrapped keys.
 * @throws FormatError / UnsupportedFormatError / LimitExceededError
 */
export function inspectEnvelope(input: Uint8Array | string, limits?: Partial<FormatLimits>): EnvelopeInfo {
  const bytes = typeof input === 'string' ? dearmor(input) : input;
  assertBytes(bytes, undefined, 'envelope');
  return inspectHeader(parseHeader(bytes, resolveLimits(limits), true), bytes.length);
}

/** Decrypts a whole body (single-shot or framed) held in memory. Any failure is DECRYPT_FAILED. */
function decryptBody(bytes: Uint8Array, header: ParsedHeader, encKey: Uint8Array): Uint8Array {
  const core = bytes.subarray(0, header.coreLength);
  let off = header.length;
  if (header.frameSize === 0) {
    const ctLen = bytes.length - off - TAG_LENGTH;
    if (ctLen < 0) throw new DecryptFailedError();
    const pt = openFrame(encKey, 0, true, core, bytes.subarray(off, off + ctLen), bytes.subarray(off + ctLen));
    return pt;
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (let index = 0; ; index++) {
      if (off + FRAME_HEADER_LENGTH > bytes.length) throw new DecryptFailedError();
      const word = new DataView(bytes.buffer, bytes.byteOffset + off, 4).getUint32(0);
      const final = (word & FINAL_FRAME_BIT) !== 0;
      const len = word & ~FINAL_FRAME_BIT;
      if (len > header.frameSize || (!final && len !== header.frameSize)) throw new DecryptFailedError();
      off += FRAME_HEADER_LENGTH;
      if (off + len + TAG_LENGTH > bytes.length) throw new DecryptFailedError();
      const pt = openFrame(encKey, index, final, core, bytes.subarray(off, off + len), bytes.subarray(off + len, off + len + TAG_LENGTH));
      off += len + TAG_LENGTH;
      parts.push(pt);
      total += pt.length;
      if (final) {
        if (off !== bytes.length) throw new DecryptFailedError();
        break;
      }
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  } finally {
    for (const p of parts) wipe(p);
  }
}

/**
 * Creates an envelope API over `providers` (DESIGN.md "The envelope").
 * @throws TypeError / RangeError for bad options; PolicyError when a development-only provider is used in
 *   production mode; ConfigError for an invalid KEYFOLD_SECURITY_MODE.
 * @example
 * ```ts
 * const envelope = createEnvelope({ providers: [createEnvProvider()] });
 * const sealed = await envelope.seal('card 4111', { table: 'payments' });
 * const plain = await envelope.open(sealed, { context: { table: 'payments' } });
 * ```
 */
export function createEnvelope(options: EnvelopeOptions): Envelope {
  return new EnvelopeImpl(options);
}
