/**
 * The key store part of `keyfold init`: which store to create (`--store`, else `KEYFOLD_DATABASE_URL`, else the
 * embedded SQLite file `DIR/keystore.db`), creating it with the install lock and the active KEK version recorded,
 * and recording its location in config.json (never a password).
 * @module
 */
import { lstat, readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { writeFileAtomic, type KeyProvider, type SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from './command.js';
import { configPath } from './config.js';
import { UsageError } from './exit-codes.js';
import type { Installation, Rollback } from './install.js';
import { cliActor, openStoreAt, sqlitePath } from './store.js';
import { DATABASE_URL_ENV, DEFAULT_STORE_FILE, isPostgresUrl, redactUrl, type StoreConfig } from './store-config.js';

/** The store init should create, from `--store` / `KEYFOLD_DATABASE_URL`. @throws UsageError for a bad value. */
export function storeChoice(ctx: CommandContext): StoreConfig {
  const given = ctx.args.string('store') ?? (ctx.env[DATABASE_URL_ENV] === '' ? undefined : ctx.env[DATABASE_URL_ENV]);
  if (given === undefined) return { backend: 'sqlite', path: DEFAULT_STORE_FILE };
  if (isPostgresUrl(given)) {
    let url: string;
    try {
      url = redactUrl(given);
    } catch (err) {
      throw new UsageError((err as Error).message, ctx.name);
    }
    const schema = ctx.args.string('store-schema');
    return { backend: 'postgres', url, ...(schema === undefined ? {} : { schema }) };
  }
  if (given.includes('://')) throw new UsageError('--store must be a postgres:// URL or the path of an SQLite file', ctx.name);
  const abs = resolve(ctx.cwd, given);
  const rel = relative(ctx.dir, abs);
  // Inside the configuration directory: recorded relative, so the directory can be moved as a whole.
  return { backend: 'sqlite', path: rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs };
}

/** What init reports about the store (no password). */
export interface StoreCreated {
  readonly backend: 'sqlite' | 'postgres';
  readonly location: string;
  readonly schemaVersion: number;
  readonly installLock: { readonly kind: string; readonly keyId: string };
  readonly kekVersion: string;
}

/** Rewrites `<dir>/config.json` with `mutate` applied (mode 0600, atomically and durably: the core's `writeFileAtomic`). */
export async function updateConfig(dir: string, mutate: (config: Record<string, unknown>) => void): Promise<void> {
  const path = configPath(dir);
  const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  mutate(config);
  await writeFileAtomic(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

async function missing(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Creates (or claims) the key store for a fresh installation: install lock = the installation's provider (with
 * `provider` open, the audit key is created under its KEK too), its active KEK version registered as active, then
 * `store` added to config.json. An SQLite store file this call
 * creates is recorded in `rollback` (an existing store, say one that refused the install lock, never is); the
 * caller runs the rollback when this fails, so init stays all or nothing.
 */
export async function attachStore(
  ctx: CommandContext,
  inst: Installation,
  cfg: StoreConfig,
  securityMode: SecurityMode,
  rollback: Rollback,
  provider?: KeyProvider,
): Promise<StoreCreated> {
  const actor = cliActor();
  if (cfg.backend === 'sqlite') {
    // A store file found missing right before the open that creates it is this run's, with its -wal/-shm/-journal.
    // Those of an existing store are never recorded: another process may have it open.
    const path = sqlitePath(inst.dir, cfg);
    const { sqliteStoreFiles } = await import('@keyfold/keystore');
    if (await missing(path)) for (const file of sqliteStoreFiles(path)) if (await missing(file)) rollback.created(file);
  }
  const store = await openStoreAt(ctx, inst.dir, cfg, { securityMode }, 'create');
  try {
    // Locked by the opened provider (when given), which also creates the audit log's MAC key under its KEK.
    const lock = await store.ensureInstallLock(provider ?? { kind: inst.provider.kind, keyId: inst.provider.keyId }, actor);
    await store.recordKekVersion(
      { kind: inst.provider.kind, keyId: inst.provider.keyId, version: inst.provider.activeVersion },
      { activate: true, actor },
    );
    await updateConfig(inst.dir, (c) => {
      c.store = cfg;
    });
    return {
      backend: cfg.backend,
      location: store.location,
      schemaVersion: store.schemaVersion,
      installLock: { kind: lock.kind, keyId: lock.keyId },
      kekVersion: inst.provider.activeVersion,
    };
  } finally {
    await store.close();
  }
}
