/**
 * The SQLite file layout, checked against SQLite itself: a WAL-mode store really has the companions
 * `sqliteStoreFiles` names, and a rollback journal is named the same way.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SQLITE_COMPANION_SUFFIXES, sqliteStoreFiles } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'keyfold-sqlite-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqliteStoreFiles', () => {
  it('names the database first, then its -wal, -shm and -journal', () => {
    expect(sqliteStoreFiles('/x/keystore.db')).toEqual(['/x/keystore.db', '/x/keystore.db-wal', '/x/keystore.db-shm', '/x/keystore.db-journal']);
    expect(SQLITE_COMPANION_SUFFIXES).toEqual(['-wal', '-shm', '-journal']);
    expect(Object.isFrozen(SQLITE_COMPANION_SUFFIXES)).toBe(true);
  });

  it('matches the files SQLite creates for an open WAL-mode database', () => {
    const path = join(dir, 'wal.db');
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
      const [, wal, shm] = sqliteStoreFiles(path) as [string, string, string, string];
      expect(existsSync(wal)).toBe(true);
      expect(existsSync(shm)).toBe(true);
    } finally {
      db.close();
    }
  });

  it('refuses a path that is not a non-empty string (caller mistake)', () => {
    expect(() => sqliteStoreFiles('')).toThrow(TypeError);
    expect(() => sqliteStoreFiles(undefined as never)).toThrow(TypeError);
  });
});
