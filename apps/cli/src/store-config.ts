/**
 * The `store` section of `config.json`: where the installation's key store lives. SQLite (the embedded default):
 * a file path relative to the configuration directory. PostgreSQL: the connection URL *without* its password
 * (the password comes from `KEYFOLD_DATABASE_URL` or `PGPASSWORD` on every run, never from the configuration).
 *
 * No runtime imports beyond the core's error class: `@keyfold/keystore` is loaded only when a store opens.
 * @module
 */
import { ConfigError } from '@keyfold/envelope-core';
import { DATABASE_URL_ENV } from './credential-env.js';

/**
 * The variable holding a full PostgreSQL URL (password included) for `--store` and for every run (listed with every
 * credential variable in `credential-env.ts`).
 */
export { DATABASE_URL_ENV };
/** The embedded store's file name in the configuration directory. */
export const DEFAULT_STORE_FILE = 'keystore.db';

export interface SqliteStoreConfig {
  readonly backend: 'sqlite';
  /** The store file, relative to the configuration directory (or absolute). */
  readonly path: string;
}

export interface PostgresStoreConfig {
  readonly backend: 'postgres';
  /** `postgres://user@host:port/db`: never a password. */
  readonly url: string;
  /** Schema of the `keyfold_*` tables (default `public`). */
  readonly schema?: string;
}

export type StoreConfig = SqliteStoreConfig | PostgresStoreConfig;

export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/**
 * `url` without its password (and without a `password=` query parameter), for config.json and messages.
 * @throws ConfigError when it is not a URL.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError('the PostgreSQL store URL is not a valid URL (expected postgres://user@host:port/db)');
  }
  u.password = '';
  u.searchParams.delete('password');
  return u.toString();
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates the `store` object of a configuration file. @throws ConfigError naming the field. */
export function parseStoreConfig(raw: unknown, path: string): StoreConfig {
  if (!isRecord(raw)) throw new ConfigError(`${path}: "store" must be an object`);
  if (raw.backend === 'sqlite') {
    if (typeof raw.path !== 'string' || raw.path === '') throw new ConfigError(`${path}: "store.path" must be a non-empty string`);
    return { backend: 'sqlite', path: raw.path };
  }
  if (raw.backend === 'postgres') {
    if (typeof raw.url !== 'string' || !isPostgresUrl(raw.url)) throw new ConfigError(`${path}: "store.url" must be a postgres:// URL`);
    if (redactUrl(raw.url) !== raw.url) throw new ConfigError(`${path}: "store.url" must not hold a password; use ${DATABASE_URL_ENV} or PGPASSWORD`);
    if (raw.schema !== undefined && (typeof raw.schema !== 'string' || raw.schema === '')) {
      throw new ConfigError(`${path}: "store.schema" must be a non-empty string`);
    }
    return { backend: 'postgres', url: raw.url, ...(typeof raw.schema === 'string' ? { schema: raw.schema } : {}) };
  }
  throw new ConfigError(`${path}: "store.backend" must be "sqlite" or "postgres"`);
}
