/**
 * The process registry's background side: one record per (store object, KEK) that a process keeps fresh while it
 * has the store open with a provider, so an operator (and `kek verify --target`) can see every live process and
 * the KEK versions each one loaded before rotating to a new version.
 *
 * Rules, and why they hold:
 * - A record says only what the process loaded (`provider.describe().versions`), never key material.
 * - It is refreshed every `refreshIntervalMs` by an unref'd timer (a registration never keeps a process alive) and
 *   expires `ttlMs` after its last refresh, so a process that died, hangs or lost the database stops counting
 *   within one TTL. Closing the last handle (or the store) stops the timer and deletes the record.
 * - A refresh re-reads the provider's versions, so a process whose provider picked up a new version says so.
 * - Handles of one store object for the same KEK share one record (a library opening tenant keys inside a CLI
 *   command that registered already does not add a second one).
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { KeyProvider } from '@keyfold/envelope-core';
import { hostName, processStartedAt } from './process-identity.js';
import type { ProcessRecord, ProcessRegistration, ProcessRegistrationOptions, ProcessUpsert } from './types.js';

const DEFAULT_INTERVAL_MS = 10_000;
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 3_600_000;
const LABEL = /^[\u0020-\u007e]{1,128}$/;

/** What the store gives the registry: its writes of the record. */
export interface ProcessRegistryStorage {
  upsertProcess(record: ProcessUpsert): Promise<ProcessRecord>;
  removeProcess(id: string): Promise<void>;
}

/** Checked options, defaults applied. @throws TypeError / RangeError naming the option. */
export function registrationOptions(options: ProcessRegistrationOptions | undefined): Required<Omit<ProcessRegistrationOptions, 'onError'>> & Pick<ProcessRegistrationOptions, 'onError'> {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new TypeError('options must be an object');
  const label = options?.label ?? 'keyfold';
  if (typeof label !== 'string' || !LABEL.test(label)) throw new TypeError('options.label must be 1-128 printable ASCII characters');
  const interval = options?.refreshIntervalMs ?? DEFAULT_INTERVAL_MS;
  if (!Number.isSafeInteger(interval) || interval < MIN_INTERVAL_MS || interval > MAX_INTERVAL_MS) {
    throw new RangeError(`options.refreshIntervalMs must be an integer from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS}; got ${JSON.stringify(interval)}`);
  }
  const ttl = options?.ttlMs ?? 3 * interval;
  if (!Number.isSafeInteger(ttl) || ttl <= interval || ttl > 10 * MAX_INTERVAL_MS) {
    throw new RangeError(`options.ttlMs must be an integer greater than refreshIntervalMs (${interval}) and at most ${10 * MAX_INTERVAL_MS}; got ${JSON.stringify(ttl)}`);
  }
  if (options?.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('options.onError must be a function');
  return { label, refreshIntervalMs: interval, ttlMs: ttl, ...(options?.onError ? { onError: options.onError } : {}) };
}

/** The versions a provider loaded, as a record keeps them (strings, sorted numerically where numeric). */
async function loadedVersions(provider: KeyProvider): Promise<string[]> {
  const d = await provider.describe();
  const versions = [...new Set((d.versions ?? []).map(String))];
  return versions.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
}

/** One record and its timer, shared by every handle of one store object for one KEK. */
export class SharedRegistration {
  readonly id = randomBytes(16).toString('hex');
  record!: ProcessRecord;
  #handles = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;
  readonly #storage: ProcessRegistryStorage;
  readonly #provider: KeyProvider;
  readonly #options: ReturnType<typeof registrationOptions>;
  readonly #startedAt = processStartedAt();
  readonly #onGone: () => void;

  constructor(storage: ProcessRegistryStorage, provider: KeyProvider, options: ReturnType<typeof registrationOptions>, onGone: () => void) {
    this.#storage = storage;
    this.#provider = provider;
    this.#options = options;
    this.#onGone = onGone;
  }

  /** Writes the first record and starts the refresh timer. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((err: unknown) => {
        if ((err as { code?: unknown }).code === 'PROVIDER_CLOSED') this.#stopTimer();
        this.#options.onError?.(err);
      });
    }, this.#options.refreshIntervalMs);
    this.#timer.unref();
  }

  async refresh(): Promise<ProcessRecord> {
    if (this.#closed) throw new TypeError('this process registration is closed');
    let versions: readonly string[];
    try {
      versions = await loadedVersions(this.#provider);
    } catch (err) {
      // The provider could not say (a key service briefly out of reach): keep the versions last seen (none at first,
      // which no readiness check takes for ready), stay registered, and try again at the next refresh.
      this.#options.onError?.(err);
      versions = (this.record as ProcessRecord | undefined)?.versions ?? [];
    }
    this.record = await this.#storage.upsertProcess({
      id: this.id,
      host: hostName(),
      pid: process.pid,
      startedAt: this.#startedAt,
      kind: this.#provider.kind,
      keyId: this.#provider.keyId,
      versions,
      label: this.#options.label,
      ttlMs: this.#options.ttlMs,
    });
    return this.record;
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A new handle on this record. */
  handle(): ProcessRegistration {
    this.#handles++;
    let open = true;
    const current = (): ProcessRecord => this.record;
    return {
      id: this.id,
      get record() {
        return current();
      },
      refresh: () => (open ? this.refresh() : Promise.reject(new TypeError('this process registration is closed'))),
      close: () => {
        if (!open) return Promise.resolve();
        open = false;
        return --this.#handles === 0 ? this.close() : Promise.resolve();
      },
    };
  }

  /** Stops the timer and deletes the record (whatever handles remain). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#stopTimer();
      this.#onGone();
      try {
        await this.#storage.removeProcess(this.id);
      } catch (err) {
        // The store is gone (closed, unreachable): the record expires by itself within one TTL.
        if ((err as { code?: unknown }).code !== 'PROVIDER_CLOSED') this.#options.onError?.(err);
      }
    })();
    return this.#closed;
  }
}
