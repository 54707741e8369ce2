/**
 * The runtime store: `loadSecrets` verifies and decrypts a file once, then keeps every value sealed in memory
 * under an ephemeral AES-256-GCM key that exists only in this process, and opens one value per `get`. With
 * `access: { ttl }` the values are re-read and re-decrypted from the source after `ttl` (in the background with
 * `autoRefresh`), and a failing source is tolerated for a bounded time only.
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError, KeyfoldError, wipe, type KeyfoldErrorCode } from '@keyfold/envelope-core';
import type { KeyOptions } from './data-key.js';
import { openSecretsFile } from './file-crypto.js';
import { adapterFor, formatFromFileName } from './formats/index.js';
import { assertKnownOptions, assertOptionalBoolean, assertOptionalFunction, durationOption } from './options-check.js';
import { applyEdits, type Leaf, type SecretValue, type SecretsFormat } from './formats/types.js';
import { pathToString } from './rules.js';
import { isEncryptedValue, wipeFileKeys } from './value-crypto.js';

/** A file path, or file content with its format. */
export type SecretsSource = string | { content: string; format: SecretsFormat };

/** What {@link SecretsAccessOptions.onRefreshError} is told besides the error. */
export interface RefreshFailureInfo {
  /** Failed refreshes in a row (1 for the first). */
  readonly failures: number;
  /** Milliseconds the last good values will still be served; at 0 they are wiped and reads throw. */
  readonly servableForMs: number;
}

/** Freshness of a {@link SecretStore}: option `access` of {@link loadSecrets}. */
export interface SecretsAccessOptions {
  /**
   * How long loaded values are good for, in milliseconds (10 to 2147483647). After it they are re-read and
   * re-decrypted from the source (file or content, through the providers): by the background timer with
   * `autoRefresh`, else started by the first read after `ttl`, which is served the held values meanwhile.
   */
  ttl: number;
  /**
   * Refresh every `ttl` on a timer (unref'd: it never keeps the process alive; `close()` / `destroy()` stop it).
   * Default false.
   */
  autoRefresh?: boolean;
  /**
   * How long the last good values are still served after a background refresh first failed, in milliseconds (0 to
   * 2147483647, default `ttl`). Failed refreshes are retried every `ttl / 4`; once this bound passes without a
   * success, the values are wiped and every read throws the refresh's error code until a refresh succeeds.
   */
  maxStale?: number;
  /**
   * Called with the error of every failed background refresh (explicit `refresh()` calls throw instead). The error is
   * coded (`UNAVAILABLE`, `DECRYPT_FAILED`, `INTEGRITY_FAILED`, ...) or the file system's (`ENOENT`) and never carries
   * a value. Whatever the hook throws is ignored.
   */
  onRefreshError?: (error: Error, info: RefreshFailureInfo) => void;
}

/** Options of {@link loadSecrets}. */
export interface LoadSecretsOptions extends KeyOptions {
  /** The format; default from the file name (`.json`, `.yaml`/`.yml`, `.toml`, `.env*`). Required for content. */
  format?: SecretsFormat;
  /** Copy every value into `env` (default `process.env`). Off by default: values stay in the store. */
  populateEnv?: boolean;
  /** With `populateEnv`: overwrite variables that are already set. Default false. */
  overrideEnv?: boolean;
  /** Target of `populateEnv`. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * For a .env path: also load `<file>.<NODE_ENV>`, `<file>.local` (not when NODE_ENV is `test`) and
   * `<file>.<NODE_ENV>.local`, each overriding the ones before; missing files are skipped.
   */
  cascade?: boolean | { nodeEnv?: string };
  /** Accept files without keyfold metadata (plain .env files in a cascade, say). Default false. */
  allowUnencrypted?: boolean;
  /**
   * `get` / `getSection` of a name the source does not have throw ConfigError (CONFIG_INVALID) naming it, instead of
   * returning undefined. Default false. `has` never throws.
   */
  throwOnMissingKey?: boolean;
  /** Re-read the source after a time to live, optionally in the background. Default: values never expire. */
  access?: SecretsAccessOptions;
}

/** Every option {@link loadSecrets} knows; any other name is refused. */
const LOAD_OPTIONS = [
  'providers',
  'keyGroups',
  'policy',
  'format',
  'populateEnv',
  'overrideEnv',
  'env',
  'cascade',
  'allowUnencrypted',
  'throwOnMissingKey',
  'access',
] as const satisfies readonly (keyof LoadSecretsOptions)[];
const ACCESS_OPTIONS = ['ttl', 'autoRefresh', 'maxStale', 'onRefreshError'] as const satisfies readonly (keyof SecretsAccessOptions)[];
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2_147_483_647;

interface Access {
  readonly ttl: number;
  readonly autoRefresh: boolean;
  readonly maxStale: number;
  readonly retryDelay: number;
  readonly onRefreshError: SecretsAccessOptions['onRefreshError'];
}

/**
 * Checks the options of {@link loadSecrets}: unknown names (also inside `cascade` and `access`) and wrong types are
 * refused before anything is read. @throws TypeError / RangeError naming the option.
 */
function checkLoadOptions(options: unknown): Access | undefined {
  assertKnownOptions(options, LOAD_OPTIONS, 'loadSecrets');
  for (const name of ['populateEnv', 'overrideEnv', 'allowUnencrypted', 'throwOnMissingKey'] as const) assertOptionalBoolean(options[name], name);
  const env = options.env;
  if (env !== undefined && (env === null || typeof env !== 'object')) throw new TypeError('env must be an object of variables');
  const cascade = options.cascade;
  if (cascade !== undefined && typeof cascade !== 'boolean') {
    assertKnownOptions(cascade, ['nodeEnv'], 'loadSecrets cascade');
    if (cascade.nodeEnv !== undefined && typeof cascade.nodeEnv !== 'string') throw new TypeError('cascade.nodeEnv must be a string');
  }
  const access = options.access;
  if (access === undefined) return undefined;
  assertKnownOptions(access, ACCESS_OPTIONS, 'loadSecrets access');
  const ttl = durationOption(access.ttl, 'access.ttl', 10, MAX_TIMER_MS);
  const maxStale = access.maxStale === undefined ? ttl : durationOption(access.maxStale, 'access.maxStale', 0, MAX_TIMER_MS);
  assertOptionalBoolean(access.autoRefresh, 'access.autoRefresh');
  assertOptionalFunction(access.onRefreshError, 'access.onRefreshError');
  return {
    ttl,
    maxStale,
    autoRefresh: access.autoRefresh === true,
    retryDelay: Math.max(10, Math.floor(ttl / 4)),
    onRefreshError: access.onRefreshError as SecretsAccessOptions['onRefreshError'],
  };
}

/** Decrypted values, each opened only on request. */
export interface SecretStore {
  /** The value at a dotted path (`DATABASE_URL`, `db.password`) as a string (`null` as `''`), or undefined. */
  get(name: string): string | undefined;
  /** Every value under a dotted path prefix as a plain object (or array), typed as in the file; `''` for all. */
  getSection(path: string): Record<string, unknown> | unknown[] | undefined;
  has(name: string): boolean;
  /** The dotted paths of every value, in file order. */
  keys(): string[];
  /**
   * Reads, verifies and decrypts the source again; the store keeps its old values if that fails (and the error is
   * thrown, not reported to `access.onRefreshError`). A success also ends an expiry (`access.maxStale`).
   */
  refresh(): Promise<void>;
  /**
   * Stops the background refresh, waits for one that is running, then wipes the in-memory key and drops every value.
   * Later calls throw PROVIDER_CLOSED. Idempotent.
   */
  close(): Promise<void>;
  /** Stops the background refresh, wipes the in-memory key and drops every value at once. Later calls throw PROVIDER_CLOSED. Idempotent. */
  destroy(): void;
}

interface Entry {
  path: readonly (string | number)[];
  sealed: Buffer;
}

interface Vault {
  key: Uint8Array;
  entries: Map<string, Entry>;
}

function sealEntry(key: Uint8Array, name: string, value: SecretValue): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(name, 'utf8'));
  const body = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]);
}

function openEntry(key: Uint8Array, name: string, sealed: Buffer): SecretValue {
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(Buffer.from(name, 'utf8'));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const out = Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  try {
    return JSON.parse(out.toString('utf8')) as SecretValue;
  } finally {
    out.fill(0);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Decrypted leaves of one file, MAC verified first. */
async function readLeaves(content: string, format: SecretsFormat, options: LoadSecretsOptions): Promise<Leaf[]> {
  const adapter = adapterFor(format);
  const parsed = adapter.parse(content);
  if (!parsed.metadata) {
    if (!options.allowUnencrypted) {
      throw new ConfigError(`this ${format} source has no keyfold metadata; encrypt it, or pass allowUnencrypted: true`);
    }
    if (parsed.leaves.some((l) => isEncryptedValue(l.value))) {
      throw new ConfigError(`this ${format} source holds ENC[...] values but no keyfold metadata`);
    }
    return parsed.leaves;
  }
  const o = await openSecretsFile(content, { ...options, format });
  try {
    const edits = [...o.plaintexts].map(([i, raw]) => {
      const leaf = o.parsed.leaves[i] as Leaf;
      const [start, end] = o.adapter.decodeSpan(leaf, raw, content);
      return { start, end, text: raw };
    });
    return adapter.parse(adapter.setMetadata(applyEdits(content, edits), undefined)).leaves;
  } finally {
    wipeFileKeys(o.keys);
    wipe(o.dataKey);
  }
}

async function collect(source: SecretsSource, options: LoadSecretsOptions): Promise<Leaf[]> {
  if (typeof source !== 'string') {
    if (source === null || typeof source !== 'object' || typeof source.content !== 'string') {
      throw new TypeError('source must be a file path or { content, format }');
    }
    return readLeaves(source.content, adapterFor(source.format).name, options);
  }
  const format = options.format ?? formatFromFileName(source);
  if (format === undefined) throw new TypeError(`cannot tell the format of ${source} from its name; pass options.format`);
  if (!options.cascade) return readLeaves(await readFile(source, 'utf8'), format, options);
  if (format !== 'dotenv') throw new TypeError('cascade applies to .env files only');
  const nodeEnv = (typeof options.cascade === 'object' ? options.cascade.nodeEnv : undefined) ?? process.env.NODE_ENV;
  const base = join(dirname(source), basename(source));
  const files = [base];
  if (nodeEnv) files.push(`${base}.${nodeEnv}`);
  if (nodeEnv !== 'test') files.push(`${base}.local`);
  if (nodeEnv) files.push(`${base}.${nodeEnv}.local`);
  const merged = new Map<string, Leaf>();
  let found = 0;
  for (const f of files) {
    if (!(await exists(f))) continue;
    found++;
    for (const leaf of await readLeaves(await readFile(f, 'utf8'), format, options)) {
      const k = pathToString(leaf.path);
      merged.delete(k);
      merged.set(k, leaf);
    }
  }
  if (found === 0) throw new ConfigError(`none of ${files.join(', ')} exists`);
  return [...merged.values()];
}

function buildVault(leaves: readonly Leaf[]): Vault {
  const key = new Uint8Array(randomBytes(32));
  const entries = new Map<string, Entry>();
  for (const leaf of leaves) {
    const name = pathToString(leaf.path);
    entries.delete(name);
    entries.set(name, { path: leaf.path, sealed: sealEntry(key, name, leaf.value) });
  }
  return { key, entries };
}

function dropVault(v: Vault): void {
  wipe(v.key);
  for (const e of v.entries.values()) e.sealed.fill(0);
  v.entries.clear();
}

class Store implements SecretStore {
  #vault: Vault | undefined;
  #closed = false;
  readonly #source: SecretsSource;
  readonly #options: LoadSecretsOptions;
  readonly #access: Access | undefined;
  /** When the held values were read (ms since the epoch). */
  #loadedAt: number;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #lastAttemptAt = 0;
  /** When background refreshes started failing (since the last success), or undefined. */
  #failingSince: number | undefined;
  #failures = 0;
  #lastError: Error | undefined;

  constructor(source: SecretsSource, options: LoadSecretsOptions, vault: Vault, access: Access | undefined) {
    this.#source = source;
    this.#options = options;
    this.#vault = vault;
    this.#access = access;
    this.#loadedAt = Date.now();
    if (access?.autoRefresh) this.#schedule(access.ttl);
  }

  #assertOpen(): void {
    if (this.#closed) throw new KeyfoldError('PROVIDER_CLOSED', 'this secret store was destroyed; load the secrets again');
  }

  /** The held values, after the freshness rules: a refresh is started when due, expired values are refused. */
  #live(): Vault {
    this.#assertOpen();
    const access = this.#access;
    if (access) {
      const now = Date.now();
      if (this.#failingSince !== undefined && now - this.#failingSince >= access.maxStale) this.#expire();
      const due = this.#vault === undefined || now - this.#loadedAt >= access.ttl;
      if (due && !access.autoRefresh && this.#inflight === undefined && now - this.#lastAttemptAt >= access.retryDelay) {
        void this.#backgroundRefresh();
      }
    }
    if (!this.#vault) throw this.#expiredError();
    return this.#vault;
  }

  /** Wipes values that outlived `maxStale` while refreshes failed; a later successful refresh brings new ones. */
  #expire(): void {
    if (this.#vault) dropVault(this.#vault);
    this.#vault = undefined;
  }

  #expiredError(): KeyfoldError {
    const access = this.#access as Access;
    const last = this.#lastError;
    const code: KeyfoldErrorCode = last instanceof KeyfoldError ? last.code : 'UNAVAILABLE';
    return new KeyfoldError(
      code,
      `the secrets of this store expired: re-reading them from the source has failed for access.maxStale (${access.maxStale} ms), ` +
        `so they were wiped; last refresh error: ${last ? last.message : 'none'}. Fix the source or its providers; the next ` +
        'successful refresh restores them',
      last === undefined ? {} : { cause: last },
    );
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#backgroundRefresh().then((ok) => {
        const access = this.#access as Access;
        if (!ok && this.#failingSince !== undefined && Date.now() - this.#failingSince >= access.maxStale) this.#expire();
        this.#schedule(ok ? access.ttl : access.retryDelay);
      });
    }, delay);
    // Never keep the process alive for a refresh.
    this.#timer.unref();
  }

  /** One refresh at a time; failures are recorded and reported to the hook, never thrown. Resolves whether it worked. */
  #backgroundRefresh(): Promise<boolean> {
    const running = this.#inflight;
    if (running) return running.then(() => this.#failingSince === undefined);
    this.#lastAttemptAt = Date.now();
    const run = this.#reload().then(
      () => true,
      (err: unknown) => {
        if (this.#closed) return false;
        const error = err instanceof Error ? err : new Error(String(err));
        const access = this.#access as Access;
        this.#lastError = error;
        this.#failures++;
        this.#failingSince ??= Date.now();
        const servableForMs = this.#vault ? Math.max(0, this.#failingSince + access.maxStale - Date.now()) : 0;
        try {
          access.onRefreshError?.(error, { failures: this.#failures, servableForMs });
        } catch {
          // The hook is the caller's; a throwing hook must not stop the refresh loop.
        }
        return false;
      },
    );
    this.#inflight = run.then(() => undefined);
    void this.#inflight.then(() => {
      this.#inflight = undefined;
    });
    return run;
  }

  /** Reads, verifies and decrypts the source into a new vault, then swaps it in and wipes the old one. */
  async #reload(): Promise<void> {
    const next = buildVault(await collect(this.#source, this.#options));
    if (this.#closed) {
      dropVault(next);
      throw new KeyfoldError('PROVIDER_CLOSED', 'this secret store was destroyed; load the secrets again');
    }
    const old = this.#vault;
    this.#vault = next;
    this.#loadedAt = Date.now();
    this.#failingSince = undefined;
    this.#failures = 0;
    this.#lastError = undefined;
    if (old) dropVault(old);
  }

  #missing(name: string): ConfigError {
    const where = typeof this.#source === 'string' ? this.#source : `the given ${this.#source.format} content`;
    return new ConfigError(`secret ${JSON.stringify(name)} is not in ${where} (names are case-sensitive and dotted; keys() lists them)`);
  }

  #value(name: string): SecretValue | undefined {
    const v = this.#live();
    const e = v.entries.get(name);
    return e === undefined ? undefined : openEntry(v.key, name, e.sealed);
  }

  get(name: string): string | undefined {
    if (typeof name !== 'string') throw new TypeError('name must be a string');
    const value = this.#value(name);
    if (value === undefined && this.#options.throwOnMissingKey === true) throw this.#missing(name);
    return value === undefined ? undefined : value === null ? '' : String(value);
  }

  has(name: string): boolean {
    return this.#live().entries.has(name);
  }

  keys(): string[] {
    return [...this.#live().entries.keys()];
  }

  getSection(path: string): Record<string, unknown> | unknown[] | undefined {
    if (typeof path !== 'string') throw new TypeError('path must be a string');
    const v = this.#live();
    const prefix = path === '' ? [] : path.split('.');
    let root: Record<string, unknown> | unknown[] | undefined;
    for (const [name, e] of v.entries) {
      if (e.path.length <= prefix.length || !prefix.every((s, i) => String(e.path[i]) === s)) continue;
      const rest = e.path.slice(prefix.length);
      root ??= typeof rest[0] === 'number' ? [] : {};
      let node: Record<string | number, unknown> = root as Record<string | number, unknown>;
      rest.forEach((seg, i) => {
        if (i === rest.length - 1) {
          node[seg] = openEntry(v.key, name, e.sealed);
          return;
        }
        node[seg] ??= typeof rest[i + 1] === 'number' ? [] : {};
        node = node[seg] as Record<string | number, unknown>;
      });
    }
    if (root === undefined && this.#options.throwOnMissingKey === true) throw this.#missing(path);
    return root;
  }

  async refresh(): Promise<void> {
    this.#assertOpen();
    await this.#reload();
  }

  async close(): Promise<void> {
    this.#stop();
    const running = this.#inflight;
    if (running) await running;
    this.destroy();
  }

  destroy(): void {
    this.#stop();
    if (this.#vault) dropVault(this.#vault);
    this.#vault = undefined;
  }

  #stop(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Loads a secrets file (or content): verifies the MAC, decrypts, and returns a {@link SecretStore} that keeps each
 * value sealed in memory until `get`. Nothing goes into `process.env` unless `populateEnv: true`.
 * @throws TypeError / RangeError for an unknown option (named, also inside `cascade` and `access`) or a value of the
 *   wrong type, before anything is read; FormatError (FORMAT_INVALID), DecryptFailedError (DECRYPT_FAILED),
 *   IntegrityFailedError (INTEGRITY_FAILED), ConfigError (CONFIG_INVALID) for an unencrypted source without
 *   `allowUnencrypted`. From `get` / `getSection`: ConfigError for a missing name with `throwOnMissingKey`; the last
 *   refresh error's code once values expired (`access.maxStale`); PROVIDER_CLOSED after `close()` / `destroy()`.
 * @example
 * ```ts
 * const secrets = await loadSecrets('config/secrets.yaml', {
 *   providers: [createEnvProvider()],
 *   throwOnMissingKey: true,
 *   access: { ttl: 300_000, autoRefresh: true, onRefreshError: (e) => log.warn(`secrets refresh failed: ${e.message}`) },
 * });
 * const url = secrets.get('db.url');
 * await secrets.close();
 * ```
 */
export async function loadSecrets(source: SecretsSource, options: LoadSecretsOptions): Promise<SecretStore> {
  if (options === null || typeof options !== 'object') throw new TypeError('loadSecrets needs an options object');
  const access = checkLoadOptions(options);
  const vault = buildVault(await collect(source, options));
  // A copy: switches the caller changes later (throwOnMissingKey, say) do not change this store.
  const store = new Store(source, { ...options }, vault, access);
  if (options.populateEnv) {
    const env = options.env ?? process.env;
    for (const name of store.keys()) {
      if (options.overrideEnv || env[name] === undefined) env[name] = store.get(name);
    }
  }
  return store;
}
