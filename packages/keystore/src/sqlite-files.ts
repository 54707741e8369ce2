/**
 * The files an SQLite key store consists of on disk: the database file and the companions SQLite creates beside it
 * (the write-ahead log, its shared-memory index, the rollback journal). Whoever creates, removes, restores or backs up
 * a store file must treat them together: a `-wal` or `-journal` left from an earlier store is replayed by SQLite into
 * whatever database next opens at that path.
 * @module
 */

/** The suffixes SQLite appends to a database path for its companion files (WAL, WAL index, rollback journal). */
export const SQLITE_COMPANION_SUFFIXES: readonly string[] = Object.freeze(['-wal', '-shm', '-journal']);

/**
 * Every file an SQLite store at `path` may consist of: `path` itself first, then its `-wal`, `-shm` and `-journal`.
 * @throws TypeError when `path` is not a non-empty string.
 * @example
 * ```ts
 * for (const file of sqliteStoreFiles('/var/lib/keyfold/keystore.db')) await rm(file, { force: true });
 * ```
 */
export function sqliteStoreFiles(path: string): string[] {
  if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
  return [path, ...SQLITE_COMPANION_SUFFIXES.map((suffix) => path + suffix)];
}
