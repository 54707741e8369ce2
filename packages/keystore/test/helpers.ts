import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { testStores } from '../../../tooling/keystore-test-stores.js';
import { openPostgresKeyStore, openSqliteKeyStore, type PostgresKeyStore } from '../src/index.js';

export const { tempDir, freshPath, sqliteStore, pgUrl, freshSchema, pgStore } = testStores('ks', {
  sqlite: openSqliteKeyStore,
  postgres: openPostgresKeyStore,
});

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
