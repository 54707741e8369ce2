/**
 * The user's database for `keyfold rewrap --table`: `--database-url` parsed (PostgreSQL or SQLite), opened with
 * its driver (imported only now), and its failures turned into coded errors.
 *
 * Security rule: the PostgreSQL password (from the URL or `PGPASSWORD`) goes to the driver only. Every message names
 * the database by its URL without the password, messages taken from the server are masked too, and the driver's
 * error is not attached as a cause (so `KEYFOLD_DEBUG=1` cannot print it either).
 * @module
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, KeyfoldError, ProviderError } from '@keyfold/envelope-core';
import type BetterSqlite3 from 'better-sqlite3';
import type { EnvelopeSource } from '@keyfold/rotation';
import { CliError, UsageError } from '../exit-codes.js';
import { isPostgresUrl, redactUrl } from '../store-config.js';

export type DatabaseTarget =
  | { readonly backend: 'postgres'; readonly connectionString: string; readonly password: string | undefined; readonly display: string }
  | { readonly backend: 'sqlite'; readonly path: string; readonly display: string };

/**
 * Parses `--database-url`: `postgres://` / `postgresql://` URLs, `sqlite:PATH`, `file:PATH` or `file:///abs/path`
 * (relative paths from `cwd`).
 * @throws UsageError for anything else (the URL itself is not echoed: it may hold a password).
 */
export function parseDatabaseUrl(url: string, env: NodeJS.ProcessEnv, cwd: string, command: string): DatabaseTarget {
  if (isPostgresUrl(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new UsageError('--database-url is not a valid URL (expected postgres://user@host:port/db)', command);
    }
    const inUrl = u.password === '' ? undefined : decodeURIComponent(u.password);
    const password = inUrl ?? (env.PGPASSWORD === '' ? undefined : env.PGPASSWORD);
    return { backend: 'postgres', connectionString: url, password, display: redactUrl(url) };
  }
  let path: string | undefined;
  if (url.startsWith('sqlite:')) path = url.slice('sqlite:'.length);
  else if (url.startsWith('file://')) {
    try {
      path = fileURLToPath(url);
    } catch {
      throw new UsageError('--database-url file:// must be a local file URL (file:///path/to/app.db)', command);
    }
  } else if (url.startsWith('file:')) path = url.slice('file:'.length);
  if (path === undefined || path === '') {
    throw new UsageError('--database-url must be postgres://user@host:port/db, sqlite:PATH or file:PATH', command);
  }
  const abs = resolve(cwd, path);
  return { backend: 'sqlite', path: abs, display: `sqlite:${abs}` };
}

/** An open database as a table source, and how to close it. */
export interface OpenTable {
  readonly source: EnvelopeSource;
  close(): Promise<void>;
}

/** `text` with the password (raw and URL-encoded) replaced, for messages that come from the server or driver. */
function masker(password: string | undefined): (text: string) => string {
  if (password === undefined || password === '') return (text) => text;
  const forms = [...new Set([password, encodeURIComponent(password)])];
  return (text) => forms.reduce((t, f) => t.split(f).join('***'), text);
}

/**
 * Turns a driver failure into a coded error naming the database by `display`.
 * @returns ProviderError UNAVAILABLE / ACCESS_DENIED, ConfigError CONFIG_INVALID, CliError IO_ERROR, or INTERNAL.
 */
export function databaseError(err: unknown, target: DatabaseTarget, what: { table: string; column: string; idColumn: string }): Error {
  if (err instanceof KeyfoldError || err instanceof CliError) return err;
  if (err instanceof TypeError) return new UsageError(err.message, 'rewrap');
  const mask = masker(target.backend === 'postgres' ? target.password : undefined);
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = mask(typeof e.message === 'string' ? e.message : String(err));
  const db = target.display;
  if (target.backend === 'sqlite') {
    if (code === 'SQLITE_CANTOPEN') return new CliError('IO_ERROR', `cannot open the SQLite database ${db}: no such file, or permission denied`);
    if (code === 'SQLITE_NOTADB') return new ConfigError(`${db} is not an SQLite database`);
    if (code.startsWith('SQLITE_READONLY')) return new CliError('IO_ERROR', `cannot write ${db}: the database is read-only`);
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new ProviderError('UNAVAILABLE', `${db} is locked by another connection; run again`);
    if (/no such table/.test(message)) return new ConfigError(`table ${what.table} does not exist in ${db}`);
    if (/no such column/.test(message)) return new ConfigError(`${db} table ${what.table} has no column ${message.replace(/^.*no such column:\s*/, '')}`);
    return new KeyfoldError('INTERNAL', `the SQLite database ${db} failed: ${message}`);
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(code) || /timeout|terminated/i.test(message)) {
    return new ProviderError('UNAVAILABLE', `cannot reach the database ${db}`);
  }
  // With the md5 and password methods the driver sends an empty password when it has none, and the server answers
  // 28P01 as for a wrong one.
  const noPassword = target.password === undefined;
  if (/password must be a (non-empty )?string|no password was provided/i.test(message) || (code === '28P01' && noPassword)) {
    return new ProviderError('ACCESS_DENIED', `the database ${db} asks for a password and none was given: put it in --database-url or PGPASSWORD`);
  }
  if (code === '28P01' || code === '28000') return new ProviderError('ACCESS_DENIED', `the database ${db} refused the login (wrong user or password)`);
  if (code === '3D000') return new ConfigError(`the database of ${db} does not exist`);
  if (code === '3F000' || code === '42P01') return new ConfigError(`table ${what.table} does not exist in ${db}`);
  if (code === '42703') return new ConfigError(`table ${what.table} in ${db} has no column named in --column / --id-column (${message})`);
  if (code === '42501') return new ProviderError('ACCESS_DENIED', `the database ${db} refused access: ${message}`);
  if (code === '25006') return new CliError('IO_ERROR', `cannot write ${db}: the transaction or server is read-only`);
  return new KeyfoldError('INTERNAL', `the database ${db} failed${code === '' ? '' : ` (${code})`}: ${message}`);
}

/**
 * Opens the database and the table source over `table.column` (rows ordered by `idColumn`). `readOnly` opens an
 * SQLite file read-only (for `--check`).
 * @throws the coded errors of {@link databaseError}; UsageError for identifiers that are not plain SQL names.
 */
export async function openTable(target: DatabaseTarget, what: { table: string; column: string; idColumn: string }, readOnly: boolean): Promise<OpenTable> {
  const { postgresTableSource, sqliteTableSource } = await import('@keyfold/rotation');
  const names = { table: what.table, idColumn: what.idColumn, envelopeColumn: what.column };
  if (target.backend === 'sqlite') {
    // A CommonJS module (`export =`): imported from ESM, its exports are the namespace's default.
    const sqlite = (await import('better-sqlite3')) as unknown as { default: typeof BetterSqlite3 };
    const Database = sqlite.default;
    let db;
    try {
      db = new Database(target.path, { fileMustExist: true, readonly: readOnly, timeout: 5000 });
    } catch (err) {
      throw databaseError(err, target, what);
    }
    try {
      return { source: wrapErrors(sqliteTableSource({ db, ...names }), target, what), close: () => Promise.resolve(void db.close()) };
    } catch (err) {
      db.close();
      throw databaseError(err, target, what);
    }
  }
  const { default: pg } = await import('pg');
  // One connection: batches run one after the other.
  const client = new pg.Client({
    connectionString: target.connectionString,
    ...(target.password === undefined ? {} : { password: target.password }),
    connectionTimeoutMillis: 10_000,
  });
  // A connection the server drops must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    // The socket of a failed attempt stays open until the server's authentication timeout otherwise.
    const { closeFailedConnection } = await import('@keyfold/keystore');
    closeFailedConnection(client);
    throw databaseError(err, target, what);
  }
  try {
    const source = postgresTableSource({ db: client, ...names });
    // Check the table and columns exist before anything else is done.
    await source.list(undefined, 1);
    return { source: wrapErrors(source, target, what), close: () => client.end() };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw databaseError(err, target, what);
  }
}

/** The same source with its failures coded by {@link databaseError}. */
function wrapErrors(source: EnvelopeSource, target: DatabaseTarget, what: { table: string; column: string; idColumn: string }): EnvelopeSource {
  return {
    name: source.name,
    // Async wrappers: the SQLite source throws synchronously.
    list: async (after, limit) => {
      try {
        return await source.list(after, limit);
      } catch (err) {
        throw databaseError(err, target, what);
      }
    },
    replace: async (rs) => {
      try {
        return await source.replace(rs);
      } catch (err) {
        throw databaseError(err, target, what);
      }
    },
  };
}
