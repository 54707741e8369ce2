/**
 * Data key cache, both directions, bounded LRU; keys are wiped on eviction and on `clear()`.
 *
 * - Encrypt side: one data key (with its wrapped keys) per canonical context, reused until it is `maxAge` old,
 *   has sealed `maxMessages` messages, or would exceed `maxBytes` of plaintext. Safe because every message derives
 *   its own body key from the data key and a fresh salt.
 * - Decrypt side: unwrapped data keys remembered by a SHA-256 digest of the wrapped key and context, for `maxAge`.
 *
 * Callers use a cached key synchronously right after taking it (they derive the per-message key at once), so an
 * eviction that wipes a key never races a use of it.
 * @module
 */
import { wipe } from './bytes.js';

export interface CacheOptions {
  /** How long a data key may be used, in ms. Default 300,000 (5 minutes). */
  maxAge?: number;
  /** Messages one cached data key may seal. Default 2^32. */
  maxMessages?: number;
  /** Plaintext bytes one cached data key may seal. Default 2^53 - 1. */
  maxBytes?: number;
  /** Entries per direction. Default 1000. */
  capacity?: number;
  /** Injected clock for tests (ms). */
  now?: () => number;
}

export interface ResolvedCacheOptions {
  maxAge: number;
  maxMessages: number;
  maxBytes: number;
  capacity: number;
  now: () => number;
}

export function resolveCacheOptions(o: CacheOptions): ResolvedCacheOptions {
  const num = (v: number | undefined, d: number, name: string, min: number): number => {
    if (v === undefined) return d;
    if (typeof v !== 'number' || Number.isNaN(v) || v < min) throw new RangeError(`cache.${name} must be a number >= ${min}; got ${String(v)}`);
    return v;
  };
  return {
    maxAge: num(o.maxAge, 300_000, 'maxAge', 1),
    maxMessages: num(o.maxMessages, 2 ** 32, 'maxMessages', 1),
    maxBytes: num(o.maxBytes, Number.MAX_SAFE_INTEGER, 'maxBytes', 1),
    capacity: Math.floor(num(o.capacity, 1000, 'capacity', 1)),
    now: o.now ?? Date.now,
  };
}

export interface EncryptEntry {
  readonly dataKey: Uint8Array;
  /** The serialised wrapped-key section of the header. */
  readonly wrappedSection: Uint8Array;
  readonly createdAt: number;
  messages: number;
  bytes: number;
}

export interface CacheCounters {
  encryptHits: number;
  encryptMisses: number;
  decryptHits: number;
  decryptMisses: number;
  evictions: number;
}

export class DataKeyCache {
  readonly #o: ResolvedCacheOptions;
  readonly #enc = new Map<string, EncryptEntry>();
  readonly #dec = new Map<string, { key: Uint8Array; createdAt: number }>();
  readonly counters: CacheCounters = { encryptHits: 0, encryptMisses: 0, decryptHits: 0, decryptMisses: 0, evictions: 0 };

  constructor(options: CacheOptions) {
    this.#o = resolveCacheOptions(options);
  }

  get size(): { encrypt: number; decrypt: number } {
    return { encrypt: this.#enc.size, decrypt: this.#dec.size };
  }

  /**
   * Takes the cached encryption key for `contextKey` for one message of `bytes` plaintext bytes, counting the
   * use; evicts (and wipes) an entry that is too old or would go over a limit. Returns undefined on a miss.
   */
  takeForEncrypt(contextKey: string, bytes: number): EncryptEntry | undefined {
    const e = this.#enc.get(contextKey);
    if (e) {
      const now = this.#o.now();
      if (
        now - e.createdAt >= this.#o.maxAge ||
        e.messages + 1 > this.#o.maxMessages ||
        e.bytes + bytes > this.#o.maxBytes
      ) {
        this.#enc.delete(contextKey);
        this.#evict(e.dataKey);
      } else {
        e.messages++;
        e.bytes += bytes;
        this.#enc.delete(contextKey);
        this.#enc.set(contextKey, e);
        this.counters.encryptHits++;
        return e;
      }
    }
    this.counters.encryptMisses++;
    return undefined;
  }

  /**
   * Offers a freshly generated key (already used for one message of `bytes`). Returns true when the cache took
   * ownership (the caller must then not wipe it); false when the message alone exceeds a limit or another entry
   * for the context already exists.
   */
  offerForEncrypt(contextKey: string, dataKey: Uint8Array, wrappedSection: Uint8Array, bytes: number): boolean {
    if (this.#enc.has(contextKey) || bytes > this.#o.maxBytes || this.#o.maxMessages < 2) return false;
    this.#enc.set(contextKey, { dataKey, wrappedSection, createdAt: this.#o.now(), messages: 1, bytes });
    this.#trim(this.#enc, (x) => x.dataKey);
    return true;
  }

  /** A cached unwrapped data key for this wrapped key and context, or undefined. */
  getForDecrypt(digest: string): Uint8Array | undefined {
    const e = this.#dec.get(digest);
    if (e) {
      if (this.#o.now() - e.createdAt >= this.#o.maxAge) {
        this.#dec.delete(digest);
        this.#evict(e.key);
      } else {
        this.#dec.delete(digest);
        this.#dec.set(digest, e);
        this.counters.decryptHits++;
        return e.key;
      }
    }
    this.counters.decryptMisses++;
    return undefined;
  }

  /** Offers an unwrapped key; returns true when the cache took ownership. */
  offerForDecrypt(digest: string, key: Uint8Array): boolean {
    if (this.#dec.has(digest)) return false;
    this.#dec.set(digest, { key, createdAt: this.#o.now() });
    this.#trim(this.#dec, (x) => x.key);
    return true;
  }

  #trim<V>(map: Map<string, V>, keyOf: (v: V) => Uint8Array): void {
    while (map.size > this.#o.capacity) {
      const first = map.keys().next();
      if (first.done === true) break;
      const v = map.get(first.value) as V;
      map.delete(first.value);
      this.#evict(keyOf(v));
    }
  }

  #evict(key: Uint8Array): void {
    wipe(key);
    this.counters.evictions++;
  }

  /** Wipes and drops every entry. */
  clear(): void {
    for (const e of this.#enc.values()) wipe(e.dataKey);
    for (const e of this.#dec.values()) wipe(e.key);
    this.#enc.clear();
    this.#dec.clear();
  }
}

/**
 * Decrypt-cache key of a header: its context and wrapped-key sections (public bytes) as a latin1 string. Two headers
 * with the same sections carry the same wrapped keys for the same context, hence the same data key.
 */
export function decryptCacheKey(headerBytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(headerBytes.buffer, headerBytes.byteOffset + start, end - start).toString('latin1');
}
