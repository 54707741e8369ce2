/**
 * Opening a store (issue 13, item 2 and 8): only `create: true` creates one, and only where nothing exists; an
 * existing file that is empty, truncated, random, another application's SQLite database or a Keyfold store without
 * its tables is refused with INTEGRITY_FAILED and left byte for byte as it was, with no side file; `readOnly`
 * never writes and works where the directory cannot be written; PostgreSQL refuses a schema without a store
 * (unless `create`) and a partial store, writing nothing.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createEnvProvider } from '@keyfold/provider-local';
import { openKeyring, openPostgresKeyStore, openSqliteKeyStore } from '../src/index.js';
import { freshPath, freshSchema, hexKey, pgUrl, sha256File, sqliteStore } from './helpers.js';

/** A store with a tenant, closed; returns its path. */
async function populated(): Promise<string> {
  const path = freshPath();
  const store = await sqliteStore(path);
  const keyring = await openKeyring({ store, provider: createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } }) });
  await keyring.createTenant('acme');
  await keyring.close();
  await store.close();
  return path;
}

/** The directory's file names with their sha256. */
function snapshot(path: string): Record<string, string> {
  const dir = dirname(path);
  return Object.fromEntries(readdirSync(dir).map((name) => [name, sha256File(`${dir}/${name}`)]));
}

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
});

describe('an existing file that is not a whole Keyfold store is refused and never re-created', () => {
  const cases: Record<string, (path: string) => void> = {
    'empty (0 bytes)': (path) => writeFileSync(path, ''),
    'truncated to its first 8 KiB': (path) => writeFileSync(path, readFileSync(path).subarray(0, 8192)),
    'truncated inside a page': (path) => writeFileSync(path, readFileSync(path).subarray(0, 6000)),
    'random bytes': (path) => writeFileSync(path, randomBytes(32 * 1024)),
    "another application's SQLite database": (path) => {
      writeFileSync(path, '');
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
      db.close();
    },
    'a Keyfold store without its data key table': (path) => {
      const db = new Database(path);
      db.exec('DROP TABLE keyfold_data_keys');
      db.pragma('journal_mode = DELETE');
      db.close();
    },
  };
  for (const [what, damage] of Object.entries(cases)) {
    it(`${what}: INTEGRITY_FAILED with create, without it and readOnly; no byte or side file written`, async () => {
      const path = await populated();
      damage(path);
      const before = snapshot(path);
      for (const options of [{ create: true }, {}, { readOnly: true }]) {
        await expect(openSqliteKeyStore({ path, ...options })).rejects.toMatchObject({
          code: 'INTEGRITY_FAILED',
          name: 'IntegrityError',
          message: expect.stringContaining('Nothing was written') as unknown,
        });
        expect(snapshot(path)).toEqual(before);
      }
    });
  }

  it('without create, a missing file is refused (CONFIG_INVALID) and nothing is created', async () => {
    const path = freshPath();
    await expect(openSqliteKeyStore({ path })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('create: true') as unknown });
    expect(readdirSync(dirname(path))).toEqual([]);
  });

  it("create refuses a path where an earlier store's -wal is left (SQLite would replay it into the new store)", async () => {
    const path = await populated();
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec("INSERT INTO keyfold_meta (key, value) VALUES ('stale', 'x')");
    const wal = readFileSync(`${path}-wal`);
    db.close();
    rmSync(path);
    writeFileSync(`${path}-wal`, wal, { mode: 0o600 });
    const before = snapshot(`${path}-wal`);
    await expect(openSqliteKeyStore({ path, create: true })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(snapshot(`${path}-wal`)).toEqual(before);
  });

  it('create and readOnly exclude each other', async () => {
    await expect(openSqliteKeyStore({ path: freshPath(), create: true, readOnly: true })).rejects.toBeInstanceOf(TypeError);
  });

  it('a closed store is left in rollback-journal mode with no side file', async () => {
    const path = await populated();
    expect(readFileSync(path)[18]).toBe(1);
    expect(readdirSync(dirname(path))).toEqual([path.slice(dirname(path).length + 1)]);
  });
});

describe('readOnly', () => {
  it('reads without writing a byte, and every write fails with CONFIG_INVALID', async () => {
    const path = await populated();
    const before = snapshot(path);
    const store = await openSqliteKeyStore({ path, readOnly: true });
    try {
      expect(store.readOnly).toBe(true);
      expect((await store.listOwners('tenant:')).map((o) => o.owner)).toEqual(['tenant:acme']);
      expect((await store.verifyAudit()).ok).toBe(true);
      await expect(store.saveCheckpoint({ name: 'x', cursor: undefined, processedDelta: 0 })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('read-only') as unknown,
      });
    } finally {
      await store.close();
    }
    expect(snapshot(path)).toEqual(before);
  });

  it('works in a read-only directory (read-only bind mount), where a writable open is refused', async () => {
    const path = await populated();
    const dir = dirname(path);
    expect(spawnSync('mount', ['--bind', dir, dir]).status).toBe(0);
    mounts.push(dir);
    expect(spawnSync('mount', ['-o', 'remount,bind,ro', dir]).status).toBe(0);
    const store = await openSqliteKeyStore({ path, readOnly: true });
    try {
      expect(await store.countDataKeys()).toBe(1);
    } finally {
      await store.close();
    }
    await expect(openSqliteKeyStore({ path })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('read-only') as unknown });
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});

describe('PostgreSQL', () => {
  it('without create, a schema that holds no store is refused (CONFIG_INVALID) and nothing is created', async () => {
    const schema = freshSchema();
    await expect(openPostgresKeyStore({ connectionString: pgUrl(), schema })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const client = new pg.Client({ connectionString: pgUrl() });
    await client.connect();
    try {
      const r = await client.query('SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = $1', [schema]);
      expect(r.rows[0]).toEqual({ n: 0 });
    } finally {
      await client.end();
    }
  });

  it('a store that lost a table is refused (INTEGRITY_FAILED), with or without create, and not re-created', async () => {
    const schema = freshSchema();
    const store = await openPostgresKeyStore({ connectionString: pgUrl(), schema, create: true });
    await store.close();
    const client = new pg.Client({ connectionString: pgUrl() });
    await client.connect();
    try {
      await client.query(`DROP TABLE "${schema}".keyfold_audit`);
      for (const create of [false, true]) {
        await expect(openPostgresKeyStore({ connectionString: pgUrl(), schema, create })).rejects.toMatchObject({
          code: 'INTEGRITY_FAILED',
          message: expect.stringContaining('keyfold_audit') as unknown,
        });
      }
      const r = await client.query('SELECT to_regclass($1) AS t', [`"${schema}".keyfold_audit`]);
      expect(r.rows[0]).toEqual({ t: null });
    } finally {
      await client.end();
    }
  });
});
