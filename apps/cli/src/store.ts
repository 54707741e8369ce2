/**
 * Opening the installation's key store (`config.json` `store`) together with its KEK provider, for the store
 * commands (`kek list|verify|rotate|retire`, `tenant ...`, `audit ...`, `migrate`, `rotate --if-due`, `backup`).
 * `@keyfold/keystore` is imported here, on demand only.
 *
 * Security rules: every command that opens the store checks config.json's provider against the store's install
 * lock, and the provider opened must match both (PROVIDER_MISMATCH, exit 3, naming both); only `init` creates a
 * store (an SQLite file that exists is never re-created: the key store refuses one that is not a whole Keyfold
 * store); commands that only read open the store read-only, so they work on a read-only installation; in
 * production a store file open to group or other is refused; a PostgreSQL password is taken from
 * `KEYFOLD_DATABASE_URL` (or `PGPASSWORD`), never from config.json.
 * @module
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError, KeyfoldError, PolicyError, ProviderError, writeUnderVersion, type Envelope, type KeyProvider } from '@keyfold/envelope-core';
import type { KeyStore, ProcessRegistration } from '@keyfold/keystore';
import type { CommandContext } from './command.js';
import { loadConfig, openProvider, type LoadedConfig } from './config.js';
import { CliError, UsageError } from './exit-codes.js';
import { printable } from './output.js';
import { DATABASE_URL_ENV, redactUrl, type StoreConfig } from './store-config.js';

/** Audit actor of CLI runs: `cli:<user>`. */
export function cliActor(): string {
  try {
    const name = userInfo().username.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
    return name === '' ? 'cli' : `cli:${name}`;
  } catch {
    return 'cli';
  }
}

/** The connection string to use for a PostgreSQL store: `KEYFOLD_DATABASE_URL` when it names the same database. */
export function postgresConnection(env: NodeJS.ProcessEnv, recorded: string): string {
  const fromEnv = env[DATABASE_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '' && redactUrl(fromEnv) === recorded) return fromEnv;
  return recorded;
}

/** A note for an error when `KEYFOLD_DATABASE_URL` is set but was not used because it names another database. */
function ignoredDatabaseUrlNote(env: NodeJS.ProcessEnv, used: string): string {
  const fromEnv = env[DATABASE_URL_ENV];
  if (fromEnv === undefined || fromEnv === '' || used === fromEnv) return '';
  let other: string;
  try {
    other = redactUrl(fromEnv);
  } catch {
    other = 'a URL that does not parse';
  }
  return ` (${DATABASE_URL_ENV} is set but names another database, ${other}, so it was not used)`;
}

/**
 * Adds what only the CLI knows to a PostgreSQL store's failure to open. The key store already codes the failure
 * (`ACCESS_DENIED` for a password missing or refused, `CONFIG_INVALID` for a database that does not exist,
 * `UNAVAILABLE` for a server out of reach) and closes its connections; the CLI names its own password sources
 * (`KEYFOLD_DATABASE_URL`, `PGPASSWORD`) when the server asked for a password none was given, and says when
 * `KEYFOLD_DATABASE_URL` was set but not used because it names another database. Any other error is returned as it
 * is. Messages carry URLs without their password only.
 */
export function explainPostgresOpenFailure(err: unknown, env: NodeJS.ProcessEnv, recorded: string, used: string): unknown {
  if (!(err instanceof KeyfoldError)) return err;
  const ignored = ignoredDatabaseUrlNote(env, used);
  if (err.code === 'ACCESS_DENIED' && (err as { reason?: unknown }).reason === 'password-missing') {
    return new ProviderError(
      'ACCESS_DENIED',
      `the key store ${recorded} asks for a password and none was given: set ${DATABASE_URL_ENV} to its full URL (with the password), or PGPASSWORD${ignored}`,
      { cause: err },
    );
  }
  if (ignored === '') return err;
  if (err.code === 'ACCESS_DENIED') return new ProviderError('ACCESS_DENIED', `${err.message}${ignored}`, { cause: err });
  if (err.code === 'CONFIG_INVALID') return new ConfigError(`${err.message}${ignored}`, { cause: err });
  return err;
}

/** Absolute path of an SQLite store. */
export function sqlitePath(dir: string, cfg: Extract<StoreConfig, { backend: 'sqlite' }>): string {
  return resolve(dir, cfg.path);
}

/**
 * How a command opens the store: `read` never writes to it (SQLite read-only, so a read-only installation works;
 * a store written by an older schema is opened for writing once, to migrate it), `write` opens an existing store
 * for writing, `create` (init, restore into PostgreSQL) also creates one where there is none.
 */
export type StoreAccess = 'read' | 'write' | 'create';

/**
 * Opens the store `cfg` describes. Only `create` creates one; an existing SQLite file is never re-created.
 * @throws ConfigError when it is missing, or cannot be written (`write`); PolicyError INSECURE_PERMISSIONS;
 *   IntegrityError INTEGRITY_FAILED for a file that is empty, truncated, damaged or not a Keyfold store;
 *   UnsupportedFormatError FORMAT_UNSUPPORTED for a newer schema (nothing written in each case); for PostgreSQL,
 *   ProviderError UNAVAILABLE / ACCESS_DENIED and ConfigError CONFIG_INVALID (see {@link explainPostgresOpenFailure}).
 */
export async function openStoreAt(
  ctx: Pick<CommandContext, 'env'>,
  dir: string,
  cfg: StoreConfig,
  loaded: Pick<LoadedConfig, 'securityMode'>,
  access: StoreAccess = 'write',
): Promise<KeyStore> {
  const keystore = await import('@keyfold/keystore');
  if (cfg.backend === 'sqlite') {
    const path = sqlitePath(dir, cfg);
    const securityMode = loaded.securityMode;
    if (access !== 'create' && !existsSync(path)) {
      throw new ConfigError(
        `the key store ${path} is missing: restore it from a backup (keyfold restore --in FILE); only keyfold init creates a new one. Nothing was created.`,
      );
    }
    if (access === 'read') {
      try {
        return await keystore.openSqliteKeyStore({ path, readOnly: true, securityMode });
      } catch (err) {
        if (!(err instanceof keystore.StoreUpgradeRequiredError)) throw err;
      }
    }
    return keystore.openSqliteKeyStore({ path, create: access === 'create', securityMode });
  }
  const connectionString = postgresConnection(ctx.env, cfg.url);
  try {
    return await keystore.openPostgresKeyStore({
      connectionString,
      create: access === 'create',
      ...(cfg.schema === undefined ? {} : { schema: cfg.schema }),
    });
  } catch (err) {
    throw explainPostgresOpenFailure(err, ctx.env, cfg.url, connectionString);
  }
}

/**
 * Refuses a store whose install lock names another provider than config.json (an edited or swapped
 * configuration would otherwise seal new data under a key the installation does not use). Reads only.
 * @throws PolicyError PROVIDER_MISMATCH (exit 3) naming both.
 */
export async function assertStoreLock(store: KeyStore, loaded: LoadedConfig): Promise<void> {
  const lock = await store.getInstallLock();
  const cfg = loaded.config.provider;
  if (lock === undefined || (lock.kind === cfg.kind && lock.keyId === cfg.keyId)) return;
  throw new PolicyError(
    'PROVIDER_MISMATCH',
    `${loaded.path} names the ${printable(cfg.kind)} provider ${printable(JSON.stringify(cfg.keyId))} but the key store ` +
      `${printable(store.location)} was installed with the ${printable(lock.kind)} provider ${printable(JSON.stringify(lock.keyId))}: ` +
      "restore config.json's provider, or move the installation to another provider with 'keyfold migrate'. Nothing was changed.",
  );
}

/**
 * For commands that use the provider without the store: when the installation has a store, opens it read-only
 * and checks its install lock against config.json ({@link assertStoreLock}).
 * @returns the store's active version of config.json's KEK (see {@link storePointer}), `undefined` without a store.
 */
export async function checkStoreLock(ctx: Pick<CommandContext, 'env'>, loaded: LoadedConfig): Promise<string | undefined> {
  const cfg = loaded.config.store;
  if (cfg === undefined) return undefined;
  const store = await openStoreAt(ctx, loaded.dir, cfg, loaded, 'read');
  try {
    await assertStoreLock(store, loaded);
    return await storePointer(store, loaded);
  } finally {
    await store.close();
  }
}

/**
 * The store's pointer: the version it records as active for config.json's KEK (`kek activate`, `kek add`, `init`
 * set it), or `undefined` when it records none (a store from an earlier keyfold: the provider's own choice).
 */
export async function storePointer(store: KeyStore, loaded: LoadedConfig): Promise<string | undefined> {
  const cfg = loaded.config.provider;
  return (await store.getActiveKekVersion({ kind: cfg.kind, keyId: cfg.keyId }))?.version;
}

/**
 * `provider` writing under the store's pointer `version` (`writeUnderVersion`): a host that lacks that version
 * refuses to seal or wrap with KEY_NOT_FOUND naming what to add, and still opens everything it has. Closing the
 * result closes `provider`. Without a pointer, `provider` itself.
 */
export function underPointer(provider: KeyProvider, version: string | undefined): KeyProvider {
  if (version === undefined) return provider;
  const view = writeUnderVersion(provider, version);
  const stats = (provider as { resilienceStats?: unknown }).resilienceStats;
  const rotate = (provider as { rotate?: unknown }).rotate;
  return {
    kind: view.kind,
    keyId: view.keyId,
    protection: view.protection,
    wrapKey: (dataKey, context) => view.wrapKey(dataKey, context),
    unwrapKey: (wrapped, context) => view.unwrapKey(wrapped, context),
    generateDataKey: (context) => view.generateDataKey!(context),
    rewrapKey: (wrapped, context) => view.rewrapKey!(wrapped, context),
    describe: () => view.describe(),
    probe: () => view.probe(),
    withWriteVersion: (v) => writeUnderVersion(provider, v),
    close: async () => {
      await view.close();
      await provider.close();
    },
    // Provider call counters (keyfold status, --json) stay readable through the pin, and a provider that adds
    // versions itself (rotate --if-due) still can: the new version is written only once the pointer moves to it.
    ...(typeof stats === 'function' ? { resilienceStats: () => (stats as () => unknown).call(provider) } : {}),
    ...(typeof rotate === 'function' ? { rotate: () => (rotate as () => Promise<string>).call(provider) } : {}),
  };
}

/**
 * The one place the CLI opens the configured provider for a command: with a key store, the store's install lock is
 * checked and the provider writes under the store's active version (the pointer), whatever versions this host has
 * loaded. `store` is the open store when the command holds one; otherwise a store is opened read-only for the check.
 * @throws PolicyError PROVIDER_MISMATCH; the store's and the provider's open errors.
 */
export async function openStoreProvider(ctx: CommandContext, loaded: LoadedConfig, store?: KeyStore): Promise<KeyProvider> {
  const pointer = store === undefined ? await checkStoreLock(ctx, loaded) : await storePointer(store, loaded);
  const provider = await openProvider(ctx, loaded, { storeLockChecked: true });
  return underPointer(provider, pointer);
}

/** The installation's store configuration. @throws CliError NO_STORE when init recorded none. */
export function storeConfig(loaded: LoadedConfig): StoreConfig {
  const cfg = loaded.config.store;
  if (cfg === undefined) {
    throw new CliError(
      'NO_STORE',
      `${loaded.path} records no key store (it was initialised by an older keyfold); initialise a new directory with 'keyfold init'`,
    );
  }
  return cfg;
}

export interface StoreSession {
  readonly loaded: LoadedConfig;
  readonly store: KeyStore;
  readonly actor: string;
}

export interface ProviderSession extends StoreSession {
  readonly provider: KeyProvider;
  /**
   * This command's record in the store's process registry (host, pid, the KEK versions its provider loaded), kept
   * for the command's duration; `undefined` on a store opened read-only (nothing is written to it).
   */
  readonly registration: ProcessRegistration | undefined;
}

/**
 * Loads the configuration and runs `fn` with the open store (no provider: no passphrase asked), its install lock
 * checked against config.json; closes it. `read`: the store is opened read-only. `write`: the lock is checked
 * through a read-only open first, so a refused command leaves the store file as it was, byte for byte (opening
 * SQLite for writing changes its header).
 * @throws PolicyError PROVIDER_MISMATCH (exit 3) when config.json names another provider than the store's lock.
 */
export async function withStore<T>(ctx: CommandContext, fn: (s: StoreSession) => Promise<T>, access: 'read' | 'write' = 'write'): Promise<T> {
  const loaded = await loadConfig(ctx);
  const cfg = storeConfig(loaded);
  if (access === 'write') await checkStoreLock(ctx, loaded);
  const store = await openStoreAt(ctx, loaded.dir, cfg, loaded, access);
  try {
    await assertStoreLock(store, loaded);
    return await fn({ loaded, store, actor: cliActor() });
  } finally {
    await store.close();
  }
}

/**
 * Like {@link withStore}, with the configured provider open too and checked against the store's install lock; the
 * provider writes under the store's active KEK version ({@link openStoreProvider}). The
 * command registers itself in the store's process registry (label `keyfold <command>`) for its duration, so a
 * readiness check elsewhere (`kek verify --target`) sees it; the record is removed when the command ends (or
 * expires if it is killed). A store opened read-only is not registered.
 * @throws PolicyError PROVIDER_MISMATCH (exit 3) naming both providers.
 */
export async function withStoreAndProvider<T>(
  ctx: CommandContext,
  fn: (s: ProviderSession) => Promise<T>,
  access: 'read' | 'write' = 'write',
): Promise<T> {
  if (access === 'read') {
    // The audit key is created by the first command with key access (a store made by an earlier keyfold, or keyed
    // access never used yet): that is a write, so such a store is opened for writing once.
    const keyed = await withStore(ctx, async ({ store }) => (await store.getAuditKey()) !== undefined, 'read');
    if (!keyed) access = 'write';
  }
  return withStore(
    ctx,
    async (s) => {
      const provider = await openStoreProvider(ctx, s.loaded, s.store);
      try {
        if ((s.store as { readOnly?: boolean }).readOnly === true) {
          // Read-only: the audit key exists (checked above) unless another process removed it meanwhile; never create it here.
          const key = await s.store.openAuditKey(provider, { actor: s.actor, create: false });
          if (key === undefined) {
            throw new ConfigError(
              `the audit log of ${printable(s.store.location)} is not keyed and the store is opened read-only: run a command ` +
                "with key access (e.g. 'keyfold audit verify') once where the store is writable, or use 'keyfold audit verify --unkeyed'. Nothing was written.",
            );
          }
        }
        await s.store.ensureInstallLock(provider, s.actor);
        const registration = await registerCommand(ctx, s.store, provider, access);
        try {
          return await fn({ ...s, provider, registration });
        } finally {
          await registration?.close();
        }
      } finally {
        await provider.close();
      }
    },
    access,
  );
}

/**
 * Registers this command in the store's process registry for its duration. A store opened read-only is not
 * registered; nor is one a reading command may not write (a PostgreSQL role with SELECT rights only: ACCESS_DENIED,
 * CONFIG_INVALID), which keeps read-only access working. A command that writes fails as its writes would.
 */
async function registerCommand(ctx: CommandContext, store: KeyStore, provider: KeyProvider, access: 'read' | 'write'): Promise<ProcessRegistration | undefined> {
  if ((store as { readOnly?: boolean }).readOnly === true) return undefined;
  try {
    return await store.registerProcess(provider, { label: `keyfold ${ctx.name}` });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (access === 'read' && (code === 'ACCESS_DENIED' || code === 'CONFIG_INVALID')) return undefined;
    throw err;
  }
}

/** An integer option within [min, max], or undefined when absent. @throws UsageError. */
export function intOption(ctx: CommandContext, name: string, min: number, max: number): number | undefined {
  const raw = ctx.args.string(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(raw)}`, ctx.name);
  }
  return n;
}

/** A required string option. @throws UsageError naming it. */
export function requiredOption(ctx: CommandContext, name: string, what: string): string {
  const v = ctx.args.string(name);
  if (v === undefined || v === '') throw new UsageError(`--${name} ${what} is required`, ctx.name);
  return v;
}

/** Concurrency for rotation work: 1 for local providers (fastest), 16 for remote ones, unless given. */
export function concurrencyFor(ctx: CommandContext, provider: KeyProvider): number {
  return intOption(ctx, 'concurrency', 1, 1024) ?? (['file', 'env', 'memory'].includes(provider.kind) ? 1 : 16);
}

/**
 * Runs `fn` with an envelope over tenant `tenant`'s key (`--tenant`): the store, the KEK provider and the tenant keys are
 * opened and closed around it.
 * @throws CliError KEY_DESTROYED (exit 3) when the tenant was shredded, or the key version the envelope was sealed
 *   under was destroyed (`tenant shred --key-version`): those envelopes can never open again.
 */
export async function withTenantEnvelope<T>(ctx: CommandContext, tenant: string, fn: (envelope: Envelope) => Promise<T>): Promise<T> {
  return withStoreAndProvider(ctx, async ({ store, provider, actor, loaded }) => {
    const [{ openTenantKeys, TenantKeyDestroyedError }, { createEnvelope }] = await Promise.all([import('@keyfold/keystore'), import('@keyfold/envelope-core')]);
    const tenantKeys = await openTenantKeys({ store, provider, actor, securityMode: loaded.securityMode });
    try {
      let tenantProvider;
      try {
        tenantProvider = tenantKeys.tenant(tenant);
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
        throw err;
      }
      const envelope = createEnvelope({ providers: [tenantProvider], policy: { securityMode: loaded.securityMode } });
      try {
        return await fn(envelope);
      } catch (err) {
        if (err instanceof TenantKeyDestroyedError && (await tenantKeys.getTenant(tenant))?.shredded === false) {
          throw new CliError('KEY_DESTROYED', `key version ${err.version} of tenant ${tenant} was destroyed: what it sealed can never be opened again`, {
            cause: err,
          });
        }
        if ((err as { code?: unknown }).code === 'KEY_NOT_FOUND' && (await tenantKeys.getTenant(tenant))?.shredded === true) {
          throw new CliError('KEY_DESTROYED', `tenant ${tenant} was shredded: its keys are destroyed and its data can never be opened again`, {
            cause: err,
          });
        }
        throw err;
      } finally {
        await envelope.close();
      }
    } finally {
      await tenantKeys.close();
    }
  });
}
