/**
 * reencryptTenant (issue 14, item 4): a tenant's key rotated, its envelopes in a table moved to the new version
 * (bodies untouched), the old version destroyed; a tampered envelope or a row left behind keeps the old version
 * alive, and a second run resumes without rotating again. Key store and table on SQLite, and on PostgreSQL.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createEnvelope, dearmor, inspectEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { openTenantKeys, tenantOwner, type KeyStore, type TenantKeys } from '@keyfold/keystore';
import { postgresTableSource, reencryptCheckpointName, reencryptTenant, sqliteTableSource, type EnvelopeSource } from '../src/index.js';
import { freshPath, freshSchema, pgStore, pgUrl, sqliteStore } from './helpers.js';

const ACME = 20;

function bodyOf(envelope: Uint8Array | string): Buffer {
  const bytes = typeof envelope === 'string' ? dearmor(envelope) : envelope;
  return Buffer.from(bytes.subarray(inspectEnvelope(bytes).headerLength));
}

interface Table {
  source: EnvelopeSource;
  rows(): Promise<Map<number, Uint8Array>>;
  set(id: number, value: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

function sqliteTable(): Table {
  const db = new Database(freshPath());
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, secret BLOB)');
  return {
    source: sqliteTableSource({ db, table: 'items', envelopeColumn: 'secret' }),
    rows: () => Promise.resolve(new Map((db.prepare('SELECT id, secret FROM items').all() as { id: number; secret: Uint8Array }[]).map((r) => [r.id, new Uint8Array(r.secret)]))),
    set: (id, value) => Promise.resolve(void db.prepare('INSERT INTO items (id, secret) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET secret = excluded.secret').run(id, Buffer.from(value))),
    close: () => Promise.resolve(void db.close()),
  };
}

async function postgresTable(): Promise<Table> {
  const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
  const schema = freshSchema();
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(`CREATE TABLE ${schema}.items (id BIGINT PRIMARY KEY, secret BYTEA)`);
  return {
    source: postgresTableSource({ db: pool, table: `${schema}.items`, envelopeColumn: 'secret' }),
    rows: async () => new Map((await pool.query(`SELECT id, secret FROM ${schema}.items`)).rows.map((r: { id: string; secret: Buffer }) => [Number(r.id), new Uint8Array(r.secret)])),
    set: async (id, value) => {
      await pool.query(`INSERT INTO ${schema}.items (id, secret) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET secret = excluded.secret`, [id, Buffer.from(value)]);
    },
    close: () => pool.end(),
  };
}

interface Fixture {
  store: KeyStore;
  tenantKeys: TenantKeys;
  table: Table;
  /** Plaintext of every row, by id. */
  plain: Map<number, string>;
  close(): Promise<void>;
}

/** acme rows 1..20 under acme v1, globex rows 101..105, and KEK rows 201..203, in one table. */
async function fixture(backend: 'sqlite' | 'postgres'): Promise<Fixture> {
  const store = backend === 'sqlite' ? await sqliteStore() : await pgStore();
  const kek = createEnvProvider({ env: { KEYFOLD_KEK_V1: 'ab'.repeat(32) } });
  const tenantKeys = await openTenantKeys({ store, provider: kek });
  const table = backend === 'sqlite' ? sqliteTable() : await postgresTable();
  await tenantKeys.createTenant('acme');
  await tenantKeys.createTenant('globex');
  const plain = new Map<number, string>();
  const seal = async (providers: Parameters<typeof createEnvelope>[0]['providers'], id: number): Promise<void> => {
    const text = `item ${id}`;
    plain.set(id, text);
    await table.set(id, await createEnvelope({ providers }).seal(text, { item: String(id) }));
  };
  for (let i = 1; i <= ACME; i++) await seal([tenantKeys.tenant('acme')], i);
  for (let i = 101; i <= 105; i++) await seal([tenantKeys.tenant('globex')], i);
  for (let i = 201; i <= 203; i++) await seal([kek], i);
  return {
    store,
    tenantKeys,
    table,
    plain,
    close: async () => {
      await tenantKeys.close();
      await kek.close();
      await table.close();
      await store.close();
    },
  };
}

describe.each([
  ['SQLite', 'sqlite'],
  ['PostgreSQL', 'postgres'],
] as const)('reencryptTenant on %s', (_name, backend) => {
  it('moves every envelope of the tenant to the new version (same body), leaves the others, then destroys the old version', async () => {
    const f = await fixture(backend);
    try {
      const before = await f.table.rows();
      const report = await reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'acme', sources: [f.table.source], settleMs: 0 });
      expect(report).toMatchObject({ tenant: 'acme', version: 2, rotated: true, resumed: false, destroyed: [1], kept: [], complete: true, aborted: false });
      expect(report.sources).toEqual([expect.objectContaining({ scanned: ACME + 8, rewrapped: ACME, current: 0, foreign: 8, failed: [], remaining: 0 })]);

      const after = await f.table.rows();
      const acme = createEnvelope({ providers: [f.tenantKeys.tenant('acme')] });
      for (let i = 1; i <= ACME; i++) {
        const env = after.get(i)!;
        expect(inspectEnvelope(env).wrappedKeys).toEqual([expect.objectContaining({ kind: 'tenant', keyId: 'acme', keyVersion: '2' })]);
        expect(bodyOf(env).equals(bodyOf(before.get(i)!))).toBe(true);
        expect(new TextDecoder().decode(await acme.open(env, { context: { item: String(i) } }))).toBe(f.plain.get(i));
        // The old envelope is useless now: version 1 is destroyed.
        await expect(acme.open(before.get(i)!)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      }
      for (const id of [101, 102, 103, 104, 105, 201, 202, 203]) expect(Buffer.from(after.get(id)!).equals(Buffer.from(before.get(id)!))).toBe(true);
      expect(await f.store.findDataKey(tenantOwner('acme'), 1)).toMatchObject({ state: 'destroyed', wrapped: undefined });
      expect(await f.store.getCheckpoint(reencryptCheckpointName('acme'))).toBeUndefined();
      expect((await f.store.listAudit({ event: 'tenant.shred-version' })).map((e) => e.details.version)).toEqual([1]);
      expect((await f.store.listAudit({ event: 'tenant.reencrypt' }))[0]?.details).toMatchObject({ tenant: 'acme', version: 2, complete: true, destroyed: [1] });
      expect((await f.store.verifyAudit()).ok).toBe(true);
    } finally {
      await f.close();
    }
  });

  it('a tampered envelope keeps the old version (reported by row); fixed, a second run resumes without rotating again', async () => {
    const f = await fixture(backend);
    try {
      const original = (await f.table.rows()).get(7)!;
      const tampered = original.slice();
      tampered[tampered.length - 3]! ^= 0x01;
      await f.table.set(7, tampered);

      const first = await reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'acme', sources: [f.table.source], settleMs: 0 });
      expect(first).toMatchObject({ version: 2, rotated: true, destroyed: [], kept: [1], complete: false });
      expect(first.sources[0]?.failed.map((x) => [String(x.id), x.code])).toEqual([['7', 'DECRYPT_FAILED']]);
      expect(first.sources[0]?.rewrapped).toBe(ACME - 1);
      expect((await f.store.findDataKey(tenantOwner('acme'), 1))?.state).toBe('retired');
      expect(await f.store.getCheckpoint(reencryptCheckpointName('acme'))).toBeDefined();

      // The damage repaired (say, from a backup of the row): the original still opens, because version 1 survived.
      await f.table.set(7, original);
      const second = await reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'acme', sources: [f.table.source], settleMs: 0 });
      expect(second).toMatchObject({ version: 2, rotated: false, resumed: true, destroyed: [1], kept: [], complete: true });
      expect(second.sources[0]).toMatchObject({ rewrapped: 1, current: ACME - 1, failed: [], remaining: 0 });
      expect((await f.tenantKeys.getTenant('acme'))?.versions).toBe(2);
      const acme = createEnvelope({ providers: [f.tenantKeys.tenant('acme')] });
      expect(new TextDecoder().decode(await acme.open((await f.table.rows()).get(7)!))).toBe('item 7');
      expect(await f.store.getCheckpoint(reencryptCheckpointName('acme'))).toBeUndefined();
    } finally {
      await f.close();
    }
  });

  it('a row the application rewrote under the old version during the run is caught by the final pass: nothing destroyed', async () => {
    const f = await fixture(backend);
    try {
      // The application writes row 3 again under version 1 (a process whose cache still had it) just as the run
      // replaces it: the compare-and-swap write of row 3 misses.
      const stale = (await f.table.rows()).get(3)!;
      const racing: EnvelopeSource = {
        name: f.table.source.name,
        list: (after, limit) => f.table.source.list(after, limit),
        replace: async (rs) => {
          const mine = rs.filter((r) => String(r.id) !== '3');
          return f.table.source.replace(mine);
        },
      };
      const report = await reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'acme', sources: [racing], settleMs: 0 });
      expect(report).toMatchObject({ destroyed: [], kept: [1], complete: false });
      expect(report.sources[0]).toMatchObject({ failed: [], remaining: 1 });
      expect(inspectEnvelope((await f.table.rows()).get(3)!).wrappedKeys[0]?.keyVersion).toBe('1');
      const acme = createEnvelope({ providers: [f.tenantKeys.tenant('acme')] });
      expect(new TextDecoder().decode(await acme.open(stale))).toBe('item 3');
    } finally {
      await f.close();
    }
  });

  it('refuses an unknown or shredded tenant, and bad options, before writing anything', async () => {
    const f = await fixture(backend);
    try {
      await expect(reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'nobody', sources: [], settleMs: 0 })).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await f.tenantKeys.shredTenant('globex');
      await expect(reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'globex', sources: [], settleMs: 0 })).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'a b', sources: [] })).rejects.toBeInstanceOf(RangeError);
      await expect(reencryptTenant({ tenantKeys: f.tenantKeys, tenant: 'acme', sources: [], settleMs: -1 })).rejects.toBeInstanceOf(RangeError);
      expect((await f.tenantKeys.getTenant('acme'))?.versions).toBe(1);
    } finally {
      await f.close();
    }
  });
});
