/**
 * better-sqlite3 errors as coded key store errors, for the open path and the dialect alike.
 * @module
 */
import { ConfigError, KeyfoldError, ProviderError } from '@keyfold/envelope-core';
import { IntegrityError } from '../errors.js';

/** The `SQLITE_*` code of a better-sqlite3 error, if it is one. */
export function sqliteCode(err: unknown): string | undefined {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' ? (err as unknown as { code: string }).code : undefined;
}

/** True for a constraint violation (a duplicate key, a failed CHECK). */
export function isConstraint(err: unknown): boolean {
  return sqliteCode(err)?.startsWith('SQLITE_CONSTRAINT') === true;
}

/**
 * Maps SQLite errors to coded errors naming the store by `location`; Keyfold errors, caller mistakes and constraint
 * violations pass through unchanged.
 */
export function mapSqliteError(err: unknown, location: string): Error {
  if (err instanceof KeyfoldError || err instanceof TypeError || err instanceof RangeError) return err;
  const code = sqliteCode(err);
  if (code === undefined) return err instanceof Error ? err : new Error(String(err));
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new IntegrityError(
      `the key store ${location} is damaged (${code}): it is not a readable SQLite database any more; ` +
        'restore it from a backup (keyfold restore). Nothing was written.',
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} is locked by another process (${code}); try again`, { cause: err });
  }
  if (code.startsWith('SQLITE_READONLY')) return readOnlyStore(location, err);
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM')) {
    return new ConfigError(`the key store ${location} cannot be opened for writing (${code})`, { cause: err });
  }
  if (code === 'SQLITE_FULL') {
    return new ProviderError('UNAVAILABLE', `the key store ${location} cannot grow: the disk is full (${code}). Nothing was written.`, { cause: err });
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) return err as Error;
  return new ProviderError('INTERNAL', `the key store ${location} failed (${code})`, { cause: err });
}

/** A write refused because the file or its directory is read-only. */
export function readOnlyStore(path: string, cause?: unknown): ConfigError {
  return new ConfigError(
    `the key store ${path} cannot be written: the file or its directory is read-only (commands that only read the ` +
      'store work there). Nothing was written.',
    cause === undefined ? {} : { cause },
  );
}
