/**
 * A value read from a backend (a key's current version, a primary version) that providers reuse for a while:
 * cached for `maxAgeMs`, and loaded by one request at a time that every waiting caller shares. The shared load is
 * not tied to one caller's deadline; each caller still stops waiting at its own.
 * @module
 */
export class RefreshingValue<T> {
  readonly #load: () => Promise<T>;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #value: { value: T; fetchedAt: number } | undefined;
  #loading: Promise<T> | undefined;

  /**
   * @param load reads the value from the backend.
   * @param maxAgeMs how long a value is reused before the next `get()` reads it again.
   */
  constructor(load: () => Promise<T>, maxAgeMs: number, now: () => number = () => performance.now()) {
    if (!Number.isFinite(maxAgeMs) || maxAgeMs < 0) throw new RangeError(`maxAgeMs must be a number >= 0; got ${maxAgeMs}`);
    this.#load = load;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  /** When the cached value was stored (the `now` clock), or undefined when there is none. */
  get fetchedAt(): number | undefined {
    return this.#value?.fetchedAt;
  }

  /** The cached value while it is fresh (and `forceRefresh` is false), else the result of a (shared) load. */
  get(forceRefresh = false): Promise<T> {
    const cached = this.#value;
    if (!forceRefresh && cached && this.#now() - cached.fetchedAt < this.#maxAgeMs) return Promise.resolve(cached.value);
    this.#loading ??= (async () => {
      try {
        const value = await this.#load();
        this.#value = { value, fetchedAt: this.#now() };
        return value;
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }

  /**
   * Runs `use` with the value. When it fails with an error `isStale` accepts and the value it used was cached from
   * before this call (so it may be out of date: a key version disabled or rotated elsewhere), loads the value again,
   * once, and runs `use` with the new one if it differs (`equal`); otherwise the first error is thrown.
   * @example
   * ```ts
   * return this.#current.useFresh((version) => this.#wrap(version), (err) => isDisabled(err));
   * ```
   */
  async useFresh<R>(use: (value: T) => Promise<R>, isStale: (err: unknown) => boolean, equal: (a: T, b: T) => boolean = Object.is): Promise<R> {
    const startedAt = this.#now();
    const value = await this.get();
    const loadedAt = this.#value?.fetchedAt ?? startedAt;
    try {
      return await use(value);
    } catch (err) {
      if (loadedAt >= startedAt || !isStale(err)) throw err;
      const fresh = await this.get(true);
      if (equal(fresh, value)) throw err;
      return use(fresh);
    }
  }

  /** Stores a value learnt another way (a describe or rotate answer). */
  set(value: T): void {
    this.#value = { value, fetchedAt: this.#now() };
  }

  /** Forgets the cached value. */
  clear(): void {
    this.#value = undefined;
  }
}
