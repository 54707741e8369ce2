/**
 * `createEnvelope`: seal / open / stream / rewrap / inspect over the v1 format, with the data key wrapped under
 * every configured provider (any one opens, see `multi-provider.ts`), an optional data key cache, and the security
 * policy. Bodies are written and read by the frame codec (`frame-codec.ts`), in memory (`whole-body.ts`) or as
 * streams (`stream.ts`).
 * @module
 */
import type { Transform } from 'node:stream';
import { assertBytes, wipe } from './bytes.js';
import { DataKeyCache } from './cache.js';
import { canonicalContextBytes, contextsEqual } from './context.js';
import type { Envelope, EnvelopeInfo, EnvelopeOptions, EnvelopeStats, OpenOptions, ProviderResilienceStats, RewrapOptions } from './envelope-types.js';
import type { ResilienceStats } from './resilience.js';
import { ContextMismatchError, KeyfoldError } from './errors.js';
import {
  SALT_LENGTH,
  SUITE_AES256GCM_HKDF_COMMIT,
  armor,
  dearmor,
  normalizeContext,
  parseHeader,
  resolveLimits,
  serializeHeader,
  type FormatLimits,
  type ParsedHeader,
} from './format.js';
import { inspectHeader } from './inspect.js';
import { computeCommitment, deriveMessageKeys, nextSalt, type MessageKeys } from './message-crypto.js';
import { MultiProvider } from './multi-provider.js';
import { assertProvidersAllowed, resolveSecurityMode, type SecurityMode } from './policy.js';
import { assertKeyProvider } from './provider-shape.js';
import { createOpenStream, createSealStream } from './stream.js';
import type { EncryptionContext, KeyProvider } from './types.js';
import { openWholeBody, sealSingleShot } from './whole-body.js';

/** Default plaintext bytes per stream frame. */
export const DEFAULT_FRAME_SIZE = 64 * 1024;

/** The cache key of a context: its canonical bytes as a latin1 string (public data, read without a copy). */
function latin1Key(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Checks a caller's provider list: a non-empty array of KeyProviders. @throws TypeError naming the bad entry. */
function assertProviderList(value: unknown, name: string): asserts value is readonly KeyProvider[] {
  const list: readonly unknown[] = Array.isArray(value) ? (value as readonly unknown[]) : [];
  if (list.length === 0) throw new TypeError(`${name} must be a non-empty array of KeyProvider`);
  list.forEach((p, i) => assertKeyProvider(p, `providers[${i}]`));
}

class EnvelopeImpl implements Envelope {
  readonly #providers: MultiProvider;
  readonly #cache: DataKeyCache | undefined;
  readonly #limits: FormatLimits;
  readonly #frameSize: number;
  readonly #mode: SecurityMode;
  #sealed = 0;
  #opened = 0;
  #rewrapped = 0;
  #closed = false;

  constructor(options: EnvelopeOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('createEnvelope needs an options object');
    const providers: unknown = options.providers;
    assertProviderList(providers, 'providers');
    this.#mode = resolveSecurityMode(options.policy?.securityMode);
    assertProvidersAllowed(providers, this.#mode);
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
    this.#providers = new MultiProvider(Object.freeze([...providers]), this.#cache, this.#limits);
  }

  #assertOpen(): void {
    if (this.#closed) throw new KeyfoldError('PROVIDER_CLOSED', 'this envelope has been closed');
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
    // Validated and encoded once here; providers below reuse both (see adoptContext).
    const contextBytes = canonicalContextBytes(ctx);
    const contextKey = latin1Key(contextBytes);
    const acquired = await this.#providers.acquireForSeal(ctx, contextKey, pt.length);
    let owned = acquired.owned;
    let keys: MessageKeys | undefined;
    try {
      const salt = nextSalt(SALT_LENGTH);
      const built = this.#buildHeader(acquired.dataKey, contextBytes, acquired.wrappedSection, 0, salt);
      keys = built.keys;
      const out = sealSingleShot(built.header, built.core, keys.encKey, pt);
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
    const unlocked = await this.#providers.unlock(header, bytes);
    try {
      const plaintext = openWholeBody(bytes, header, unlocked.keys.encKey);
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
    // Validated and encoded once here; providers below reuse both (see adoptContext).
    const contextBytes = canonicalContextBytes(ctx);
    const contextKey = latin1Key(contextBytes);
    const frameSize = this.#frameSize;
    return createSealStream(frameSize, async () => {
      // Stream sizes are unknown up front: count the message, not its bytes, against the cache limits.
      const acquired = await this.#providers.acquireForSeal(ctx, contextKey, 0);
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
      const unlocked = await this.#providers.unlock(header, headerBytes);
      if (unlocked.owned) wipe(unlocked.dataKey);
      this.#opened++;
      return unlocked.keys;
    });
  }

  rewrap(envelope: Uint8Array, options?: RewrapOptions): Promise<Uint8Array>;
  rewrap(envelope: string, options?: RewrapOptions): Promise<string>;
  async rewrap(input: Uint8Array | string, options: RewrapOptions = {}): Promise<Uint8Array | string> {
    this.#assertOpen();
    const targets: unknown = options.to ?? this.#providers.providers;
    assertProviderList(targets, 'options.to');
    assertProvidersAllowed(targets, this.#mode);
    const { bytes, header } = this.#parse(input);
    const unlocked = await this.#providers.unlock(header, bytes);
    let keys: MessageKeys | undefined;
    try {
      // Prove the body opens before re-committing a header to it: never re-wrap a damaged envelope.
      wipe(openWholeBody(bytes, header, unlocked.keys.encKey));
      const wrappedSection = await this.#providers.wrapUnder(targets, unlocked.dataKey, header.context);
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
    const { generateDataKey, wrap, unwrap } = this.#providers.calls;
    return {
      sealed: this.#sealed,
      opened: this.#opened,
      rewrapped: this.#rewrapped,
      providerCalls: { generateDataKey, wrap, unwrap, total: generateDataKey + wrap + unwrap },
      cache: c ? { ...c.counters, encryptEntries: c.size.encrypt, decryptEntries: c.size.decrypt } : undefined,
      resilience: resilienceOf(this.#providers.providers),
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#cache?.clear();
    return Promise.resolve();
  }
}

/** The resilience counters of the providers that keep them (duck-typed: any KeyProvider may be passed in). */
function resilienceOf(providers: readonly KeyProvider[]): ProviderResilienceStats[] {
  const out: ProviderResilienceStats[] = [];
  for (const p of providers) {
    const read = (p as { resilienceStats?: unknown }).resilienceStats;
    if (typeof read !== 'function') continue;
    const s = (read as () => ResilienceStats | undefined).call(p);
    if (s) out.push({ kind: p.kind, keyId: p.keyId, ...s });
  }
  return out;
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
