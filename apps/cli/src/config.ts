/**
 * The CLI configuration, `<dir>/config.json`: which provider this installation uses and its non-secret options
 * (never a passphrase or a key). Loading checks it strictly; opening the provider imports the provider package
 * only here, on demand.
 *
 * Security rules: in production mode the configuration directory and file must not be accessible to group or
 * other (the file decides which key protects the data, so a writable one could redirect it); the provider opened
 * must have the key id recorded at init, else PROVIDER_MISMATCH (the CLI's install lock).
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  assertPrivatePath,
  ConfigError,
  createEnvelope,
  PolicyError,
  resolveSecurityMode,
  type Envelope,
  type KeyProvider,
  type SecurityMode,
} from '@keyfold/envelope-core';
import type { CommandContext } from './command.js';
import { CliError } from './exit-codes.js';
import { parseProviderConfig, type FileProviderConfig, type ProviderConfig } from './provider-config.js';
import { parseStoreConfig, type StoreConfig } from './store-config.js';

export type { ProviderConfig } from './provider-config.js';

export const CONFIG_FILE = 'config.json';
export const CONFIG_VERSION = 1;
/** KEK file directory of the file provider, relative to the configuration directory. */
export const DEFAULT_KEYRING_DIR = 'keys';

export interface KeyfoldConfig {
  readonly version: typeof CONFIG_VERSION;
  readonly provider: ProviderConfig;
  /** ISO 8601 time of `keyfold init`. */
  readonly createdAt: string;
  /** The key store (absent in installations made before key stores existed). */
  readonly store?: StoreConfig;
}

export interface LoadedConfig {
  readonly dir: string;
  readonly path: string;
  readonly config: KeyfoldConfig;
  readonly securityMode: SecurityMode;
}

export function configPath(dir: string): string {
  return join(dir, CONFIG_FILE);
}

function invalid(path: string, what: string): ConfigError {
  return new ConfigError(`${path}: ${what}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** Validates parsed JSON as a {@link KeyfoldConfig}. @throws ConfigError naming the field that is wrong. */
export async function parseConfig(raw: unknown, path: string): Promise<KeyfoldConfig> {
  if (!isRecord(raw)) throw invalid(path, 'expected a JSON object');
  if (raw.version !== CONFIG_VERSION) {
    throw invalid(path, `unsupported "version" ${JSON.stringify(raw.version)}; this keyfold reads version ${CONFIG_VERSION}`);
  }
  if (!nonEmptyString(raw.createdAt)) throw invalid(path, '"createdAt" must be a string');
  const p = raw.provider;
  if (!isRecord(p)) throw invalid(path, '"provider" must be an object');
  return {
    version: CONFIG_VERSION,
    provider: await parseProviderConfig(p, path),
    createdAt: raw.createdAt,
    ...(raw.store === undefined ? {} : { store: parseStoreConfig(raw.store, path) }),
  };
}

/**
 * Loads `<dir>/config.json`.
 * @throws CliError NOT_INITIALIZED when there is none; ConfigError when it is malformed; PolicyError
 *   INSECURE_PERMISSIONS in production when the directory or file is open to group or other.
 */
export async function loadConfig(ctx: Pick<CommandContext, 'dir' | 'env'>): Promise<LoadedConfig> {
  const path = configPath(ctx.dir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(
        'NOT_INITIALIZED',
        `no Keyfold configuration at ${path}: run 'keyfold init' first (or choose another directory with --dir or KEYFOLD_DIR)`,
      );
    }
    throw new ConfigError(`${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  const securityMode = resolveSecurityMode(undefined, ctx.env);
  assertPrivatePath(ctx.dir, { what: 'configuration directory', type: 'directory', securityMode });
  assertPrivatePath(path, { what: 'configuration file', type: 'file', securityMode });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${path} is not valid JSON`, { cause });
  }
  return { dir: ctx.dir, path, config: await parseConfig(raw, path), securityMode };
}

/**
 * Writes `<dir>/config.json` with mode 0600, refusing to replace an existing one (O_EXCL).
 * @throws node errors (EEXIST when it exists).
 */
export async function saveNewConfig(dir: string, config: KeyfoldConfig): Promise<string> {
  const path = configPath(dir);
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return path;
}

/** Absolute KEK file directory of a file provider configuration. */
export function keyringDir(dir: string, provider: FileProviderConfig): string {
  return resolve(dir, provider.keyring);
}

/**
 * Opens the provider `cfg` describes, importing its provider package (and vendor SDK) only now. No install-lock
 * check: see {@link openProvider}.
 */
export async function openConfiguredProvider(ctx: CommandContext, loaded: LoadedConfig, cfg: ProviderConfig): Promise<KeyProvider> {
  const { withAdapter } = await import('./providers/registry.js');
  return withAdapter(cfg, (adapter, c) => adapter.open(ctx, loaded, c));
}

/**
 * Refuses a provider whose key id is not the one recorded at init (the install lock), closing it.
 * @throws PolicyError PROVIDER_MISMATCH.
 */
export async function assertInstallLock(provider: KeyProvider, cfg: ProviderConfig, path: string): Promise<void> {
  if (provider.keyId === cfg.keyId) return;
  await provider.close();
  throw new PolicyError(
    'PROVIDER_MISMATCH',
    `the ${cfg.kind} provider has key id ${JSON.stringify(provider.keyId)} but ${path} was initialised with ` +
      `${JSON.stringify(cfg.keyId)}; data sealed under the recorded key would not open with this one`,
  );
}

/**
 * Opens the configured provider (importing its package now). Secrets (passphrase, tokens, PINs, cloud
 * credentials) are read from the environment or asked for only here, never from the configuration. When the
 * installation has a key store, its install lock is checked first (the store opened read-only) and the provider
 * writes under the store's active KEK version, unless the caller has the store open and checked it
 * (`storeLockChecked`: the provider as configured; `openStoreProvider` in store.ts pins it).
 * @throws PolicyError PROVIDER_MISMATCH when the provider's key id differs from the one recorded at init, or
 *   config.json names another provider than the store's install lock; the store's open errors; the provider's own
 *   errors (ACCESS_DENIED, UNAVAILABLE, KEY_NOT_FOUND, CONFIG_INVALID, ...) when it cannot open.
 */
export async function openProvider(
  ctx: CommandContext,
  loaded: LoadedConfig,
  options: { readonly storeLockChecked?: boolean } = {},
): Promise<KeyProvider> {
  // With a key store: its install lock is checked and the provider writes under the store's active version.
  if (options.storeLockChecked !== true) return (await import('./store.js')).openStoreProvider(ctx, loaded);
  const cfg = loaded.config.provider;
  const provider = await openConfiguredProvider(ctx, loaded, cfg);
  await assertInstallLock(provider, cfg, loaded.path);
  return provider;
}

/** Loads the configuration and runs `fn` with the opened provider, closing it afterwards. */
export async function withProvider<T>(
  ctx: CommandContext,
  fn: (provider: KeyProvider, loaded: LoadedConfig) => Promise<T>,
): Promise<T> {
  const loaded = await loadConfig(ctx);
  const provider = await openProvider(ctx, loaded);
  try {
    return await fn(provider, loaded);
  } finally {
    await provider.close();
  }
}

/** Runs `fn` with an envelope over the configured provider; closes both afterwards (wiping cached keys). */
export async function withEnvelope<T>(ctx: CommandContext, fn: (envelope: Envelope) => Promise<T>): Promise<T> {
  return withProvider(ctx, async (provider, loaded) => {
    const envelope = createEnvelope({ providers: [provider], policy: { securityMode: loaded.securityMode } });
    try {
      return await fn(envelope);
    } finally {
      await envelope.close();
    }
  });
}
