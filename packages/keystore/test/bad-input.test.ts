/**
 * Bad input (issue 4): wrong passphrase, mismatched provider, loose store file permissions, corrupted store file,
 * unknown schema version — each a clear coded error (INTEGRITY_FAILED / WRONG_PASSPHRASE are the CLI's exit code 3),
 * and nothing is written.
 */
import { chmodSync, existsSync, openSync, readFileSync, closeSync, writeSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createEnvProvider, createFileProvider, initFileKeyring } from '@keyfold/provider-local';
import { SCHEMA_VERSION, openKeyring, openPostgresKeyStore, openSqliteKeyStore } from '../src/index.js';
import { freshPath, freshSchema, hexKey, pgUrl, sha256File, sqliteStore, tempDir } from './helpers.js';

/** A store with some content, closed; returns its path. */
async function populated(): Promise<string> {
  const path = freshPath();
  const store = await sqliteStore(path);
  const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
  const keyring = await openKeyring({ store, provider });
  for (const t of ['acme', 'globex', 'initech']) await keyring.createTenant(t);
  await keyring.close();
  await store.close();
  return path;
}

function snapshot(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`].map((p) => (existsSync(p) ? sha256File(p) : 'absent'));
}

describe('SqliteKeyStore refuses bad files, writing nothing', () => {
  it('a new store file is created with mode 0600', async () => {
    const path = freshPath();
    const store = await sqliteStore(path);
    await store.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('loose permissions: INSECURE_PERMISSIONS in production with the chmod that fixes it; allowed in development', async () => {
    const path = await populated();
    chmodSync(path, 0o644);
    const before = snapshot(path);
    await expect(openSqliteKeyStore({ path, securityMode: 'production' })).rejects.toMatchObject({
      code: 'INSECURE_PERMISSIONS',
      message: expect.stringContaining(`chmod 600 ${path}`),
    });
    expect(snapshot(path)).toEqual(before);
    const dev = await openSqliteKeyStore({ path, securityMode: 'development' });
    await dev.close();
  });

  it('a corrupted file: INTEGRITY_FAILED, and the file is left as it was', async () => {
    const path = await populated();
    // Overwrite the middle of the file (page contents) with garbage.
    const size = statSync(path).size;
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);
    const before = snapshot(path);
    await expect(openSqliteKeyStore({ path })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED', name: 'IntegrityError' });
    expect(snapshot(path)).toEqual(before);
  });

  it('a file that is not a database at all: INTEGRITY_FAILED', async () => {
    const path = freshPath();
    writeFileSync(path, Buffer.alloc(8192, 0x42), { mode: 0o600 });
    const before = snapshot(path);
    await expect(openSqliteKeyStore({ path })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED', message: expect.stringContaining('restore it from a backup') });
    expect(snapshot(path)).toEqual(before);
  });

  it('a store written by a newer schema: FORMAT_UNSUPPORTED naming both versions, never modified', async () => {
    const path = await populated();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const before = snapshot(path);
    await expect(openSqliteKeyStore({ path })).rejects.toMatchObject({
      code: 'FORMAT_UNSUPPORTED',
      message: expect.stringMatching(new RegExp(`schema version ${SCHEMA_VERSION + 1}.*\\(${SCHEMA_VERSION}\\).*not modified`)),
    });
    expect(snapshot(path)).toEqual(before);
  });

  it('an SQLite database that is not a Keyfold store: INTEGRITY_FAILED, never modified', async () => {
    const path = freshPath();
    const db = new Database(path);
    db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
    db.close();
    chmodSync(path, 0o600);
    const before = snapshot(path);
    await expect(openSqliteKeyStore({ path })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED', message: expect.stringContaining('another application') });
    expect(snapshot(path)).toEqual(before);
  });

  it('a missing store with create: false: CONFIG_INVALID, nothing created', async () => {
    const path = freshPath();
    await expect(openSqliteKeyStore({ path, create: false })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(existsSync(path)).toBe(false);
  });
});

describe('opening an installation with the wrong provider or passphrase writes nothing', () => {
  it('mismatched provider: PROVIDER_MISMATCH naming both providers', async () => {
    const path = await populated();
    const store = await sqliteStore(path);
    try {
      const head = await store.auditHead();
      const other = createEnvProvider({ prefix: 'BILLING_KEK_V', env: { BILLING_KEK_V1: hexKey() } });
      const err = (await openKeyring({ store, provider: other }).then(
        () => new Error('opened'),
        (e: unknown) => e as Error,
      )) as Error & { code?: string };
      expect(err).toMatchObject({ code: 'PROVIDER_MISMATCH', name: 'PolicyError' });
      expect(err.message).toContain('"KEYFOLD_KEK"');
      expect(err.message).toContain('"BILLING_KEK"');
      expect(await store.auditHead()).toEqual(head);
      expect(await store.getInstallLock()).toMatchObject({ kind: 'env', keyId: 'KEYFOLD_KEK' });
    } finally {
      await store.close();
    }
  });

  it('wrong passphrase: WRONG_PASSPHRASE before the store is touched', async () => {
    const dir = `${tempDir()}/keys`;
    await initFileKeyring({ dir, passphrase: 'the right one', kdf: { name: 'pbkdf2-sha256', iterations: 1000 } });
    const path = freshPath();
    const store = await sqliteStore(path);
    const good = await createFileProvider({ dir, passphrase: 'the right one' });
    const keyring = await openKeyring({ store, provider: good });
    await keyring.createTenant('acme');
    await keyring.close();
    await good.close();
    const head = await store.auditHead();
    await expect(createFileProvider({ dir, passphrase: 'a wrong one' })).rejects.toMatchObject({ code: 'WRONG_PASSPHRASE' });
    expect(await store.auditHead()).toEqual(head);
    expect(await store.countDataKeys()).toBe(1);
    await store.close();
    expect(readFileSync(`${dir}/keyring.json`, 'utf8')).toContain('"format"');
  });
});

describe('PostgresKeyStore refuses a newer schema without modifying it', () => {
  it('FORMAT_UNSUPPORTED, tables untouched', async () => {
    const schema = freshSchema();
    const store = await openPostgresKeyStore({ connectionString: pgUrl(), schema, create: true });
    await store.appendAudit({ actor: 't', event: 'e', subject: 's' });
    await store.close();
    const client = new pg.Client({ connectionString: pgUrl() });
    await client.connect();
    try {
      await client.query(`UPDATE "${schema}".keyfold_meta SET value = $1 WHERE key = 'schema_version'`, [String(SCHEMA_VERSION + 1)]);
      await expect(openPostgresKeyStore({ connectionString: pgUrl(), schema, create: true })).rejects.toMatchObject({ code: 'FORMAT_UNSUPPORTED' });
      const meta = await client.query(`SELECT value FROM "${schema}".keyfold_meta WHERE key = 'schema_version'`);
      expect(meta.rows[0].value).toBe(String(SCHEMA_VERSION + 1));
      expect((await client.query(`SELECT count(*)::int AS n FROM "${schema}".keyfold_audit`)).rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
  });

  it('an unreachable server: UNAVAILABLE', async () => {
    await expect(openPostgresKeyStore({ connectionString: 'postgresql://postgres@127.0.0.1:1/postgres' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
