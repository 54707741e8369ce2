import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { openPostgresKeyStore, openSqliteKeyStore, type PostgresKeyStore, type SqliteKeyStore } from '../src/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A private temporary directory (mode 0700), removed after the file's tests. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'keyfold-ks-'));
  dirs.push(d);
  return d;
}

let n = 0;
/** A fresh store file path in a fresh directory. */
export function freshPath(): string {
  return join(tempDir(), `store-${++n}.db`);
}

export function sqliteStore(path = freshPath()): Promise<SqliteKeyStore> {
  return openSqliteKeyStore({ path, securityMode: 'production' });
}

export function pgUrl(): string {
  return inject('pgUrl');
}

/** A unique schema name for one store. */
export function freshSchema(): string {
  return `ks_${process.pid}_${++n}_${randomBytes(3).toString('hex')}`;
}

export function pgStore(schema = freshSchema()): Promise<PostgresKeyStore> {
  return openPostgresKeyStore({ connectionString: pgUrl(), schema });
}

/** Runs raw SQL (with `?` placeholders) against a store, bypassing it: what an attacker with database access does. */
export async function executeRaw(store: { backend: string; location: string }, sql: string, params: readonly unknown[]): Promise<void> {
  if (store.backend === 'sqlite') {
    const db = new Database(store.location);
    try {
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
    return;
  }
  const schema = schemaOf(store);
  const client = new pg.Client({ connectionString: pgUrl() });
  await client.connect();
  try {
    let i = 0;
    const text = sql.replace(/\?/g, () => `$${++i}`).replace(/\bkeyfold_/g, `"${schema}".keyfold_`);
    await client.query(text, params as unknown[]);
  } finally {
    await client.end();
  }
}

const schemas = new WeakMap<object, string>();
/** Opens a PostgreSQL store and remembers its schema for {@link executeRaw}. */
export async function pgStoreWithSchema(): Promise<PostgresKeyStore> {
  const schema = freshSchema();
  const store = await pgStore(schema);
  schemas.set(store, schema);
  return store;
}

function schemaOf(store: object): string {
  const s = schemas.get(store);
  if (!s) throw new Error('open the store with pgStoreWithSchema to tamper with it');
  return s;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function hexKey(): string {
  return randomBytes(32).toString('hex');
}
