/**
 * A bounded LRU of unwrapped keys with a time to live. Every key that leaves it (evicted, expired, deleted,
 * cleared) is wiped; readers get copies, so a wipe can never pull a key from under a caller mid-operation.
 * @module
 */
import { copyBytes, wipe } from '@keyfold/envelope-core';

interface Entry {
  readonly key: Uint8Array;
  readonly expires: number;
}

/** Options of {@link KeyCache}. */
export interface KeyCacheOptions {
  /** Most keys held at once. Default 1,000. `0` disables caching. */
  maxEntries?: number;
  /** How long a key stays usable after it was unwrapped, in ms. Default 60,000. */
  ttlMs?: number;
}

export class KeyCache {
  readonly #map = new Map<string, Entry>();
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly #clock: () => number;

  constructor(options: KeyCacheOptions = {}, clock: () => number = Date.now) {
    const max = options.maxEntries ?? 1000;
    const ttl = options.ttlMs ?? 60_000;
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`cache.maxEntries must be a non-negative integer; got ${String(max)}`);
    if (!Number.isFinite(ttl) || ttl < 0) throw new RangeError(`cache.ttlMs must be a non-negative number; got ${String(ttl)}`);
    this.maxEntries = max;
    this.ttlMs = ttl;
    this.#clock = clock;
  }

  get size(): number {
    return this.#map.size;
  }

  /** A copy of the cached key (the caller wipes it), or `undefined`. */
  get(id: string): Uint8Array | undefined {
    const e = this.#map.get(id);
    if (!e) return undefined;
    if (e.expires <= this.#clock()) {
      this.delete(id);
      return undefined;
    }
    this.#map.delete(id);
    this.#map.set(id, e);
    return copyBytes(e.key);
  }

  /** Keeps a copy of `key` (the caller keeps ownership of its own buffer). */
  set(id: string, key: Uint8Array): void {
    if (this.maxEntries === 0 || this.ttlMs === 0) return;
    this.delete(id);
    this.#map.set(id, { key: copyBytes(key), expires: this.#clock() + this.ttlMs });
    while (this.#map.size > this.maxEntries) {
      const oldest = this.#map.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(id: string): void {
    const e = this.#map.get(id);
    if (e) {
      wipe(e.key);
      this.#map.delete(id);
    }
  }

  /** Wipes and drops every entry whose id starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const id of [...this.#map.keys()]) if (id.startsWith(prefix)) this.delete(id);
  }

  /** Wipes and drops everything. */
  clear(): void {
    for (const e of this.#map.values()) wipe(e.key);
    this.#map.clear();
  }
}
