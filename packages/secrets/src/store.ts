/**
 * The runtime store: `loadSecrets` verifies and decrypts a file once, then keeps every value sealed in memory
 * under an ephemeral AES-256-GCM key that exists only in this process, and opens one value per `get`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError, KeyfoldError, gcmOpenWithIv, gcmSealWithRandomIv, wipe } from '@keyfold/envelope-core';
import type { KeyOptions } from './data-key.js';
import { openSecretsFile } from './file-crypto.js';
import { adapterFor, formatFromFileName } from './formats/index.js';
import { applyEdits, type Leaf, type SecretValue, type SecretsFormat } from './formats/types.js';
import { pathToString } from './rules.js';
import { isEncryptedValue, wipeFileKeys } from './value-crypto.js';

/** A file path, or file content with its format. */
export type SecretsSource = string | { content: string; format: SecretsFormat };

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
  /** Reads, verifies and decrypts the source again; the store keeps its old values if that fails. */
  refresh(): Promise<void>;
  /** Wipes the in-memory key and drops every value. Later calls throw PROVIDER_CLOSED. Idempotent. */
  destroy(): void;
}

interface Entry {
  path: readonly (string | number)[];
  sealed: Uint8Array;
}

interface Vault {
  key: Uint8Array;
  entries: Map<string, Entry>;
}

function sealEntry(key: Uint8Array, name: string, value: SecretValue): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  try {
    return gcmSealWithRandomIv(key, bytes, new TextEncoder().encode(name));
  } finally {
    wipe(bytes);
  }
}

function openEntry(key: Uint8Array, name: string, sealed: Uint8Array): SecretValue {
  const out = gcmOpenWithIv(key, sealed, new TextEncoder().encode(name));
  // Entries are sealed by this process and never leave it: a failure here is memory corruption, not bad input.
  if (out === undefined) throw new KeyfoldError('INTERNAL', 'a secret held in memory by this store failed to open');
  try {
    return JSON.parse(Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('utf8')) as SecretValue;
  } finally {
    wipe(out);
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
  readonly #source: SecretsSource;
  readonly #options: LoadSecretsOptions;

  constructor(source: SecretsSource, options: LoadSecretsOptions, vault: Vault) {
    this.#source = source;
    this.#options = options;
    this.#vault = vault;
  }

  #live(): Vault {
    if (!this.#vault) throw new KeyfoldError('PROVIDER_CLOSED', 'this secret store was destroyed; load the secrets again');
    return this.#vault;
  }

  #value(name: string): SecretValue | undefined {
    const v = this.#live();
    const e = v.entries.get(name);
    return e === undefined ? undefined : openEntry(v.key, name, e.sealed);
  }

  get(name: string): string | undefined {
    if (typeof name !== 'string') throw new TypeError('name must be a string');
    const value = this.#value(name);
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
    return root;
  }

  async refresh(): Promise<void> {
    this.#live();
    const next = buildVault(await collect(this.#source, this.#options));
    const old = this.#vault;
    this.#vault = next;
    if (old) dropVault(old);
  }

  destroy(): void {
    if (this.#vault) dropVault(this.#vault);
    this.#vault = undefined;
  }
}

/**
 * Loads a secrets file (or content): verifies the MAC, decrypts, and returns a {@link SecretStore} that keeps each
 * value sealed in memory until `get`. Nothing goes into `process.env` unless `populateEnv: true`.
 * @throws FormatError (FORMAT_INVALID), DecryptFailedError (DECRYPT_FAILED), IntegrityFailedError
 *   (INTEGRITY_FAILED), ConfigError (CONFIG_INVALID) for an unencrypted source without `allowUnencrypted`.
 * @example
 * ```ts
 * const secrets = await loadSecrets('config/secrets.yaml', { providers: [createEnvProvider()] });
 * const url = secrets.get('db.url');
 * secrets.destroy();
 * ```
 */
export async function loadSecrets(source: SecretsSource, options: LoadSecretsOptions): Promise<SecretStore> {
  if (options === null || typeof options !== 'object') throw new TypeError('loadSecrets needs an options object');
  const vault = buildVault(await collect(source, options));
  const store = new Store(source, options, vault);
  if (options.populateEnv) {
    const env = options.env ?? process.env;
    for (const name of store.keys()) {
      if (options.overrideEnv || env[name] === undefined) env[name] = store.get(name);
    }
  }
  return store;
}
