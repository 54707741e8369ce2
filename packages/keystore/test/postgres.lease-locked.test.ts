/**
 * `leaseForRewrap` on PostgreSQL passes over rows another transaction holds (`FOR UPDATE SKIP LOCKED`) and names
 * them in `lease.locked`, so a rotation never takes "no more keys to lease" for "every key done".
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createMemoryProvider } from '@keyfold/provider-local';
import { dataKeyContext, keyCheckValue, type NewDataKey } from '../src/index.js';
import { freshSchema, pgStore, pgUrl, sqliteStore } from './helpers.js';

const TARGET = { kind: 'memory', keyId: 'memory', version: '2' };
const id = (i: number): string => `k${String(i).padStart(3, '0')}`;

async function keys(count: number): Promise<NewDataKey[]> {
  const provider = createMemoryProvider({ securityMode: 'development' });
  const out: NewDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const dk = new Uint8Array(32).fill(i + 1);
    out.push({ id: id(i), owner: `table:t:${i}`, version: 1, wrapped: await provider.wrapKey(dk, dataKeyContext({ id: id(i), owner: `table:t:${i}` })), keyCheck: keyCheckValue(dk) });
  }
  await provider.close();
  return out;
}

describe('leaseForRewrap and rows locked by another transaction', () => {
  it('PostgreSQL: names the eligible rows it passed over, within the lease range', async () => {
    const schema = freshSchema();
    const store = await pgStore(schema);
    const other = new pg.Client({ connectionString: pgUrl() });
    await other.connect();
    try {
      await store.insertDataKeys(await keys(10));
      await other.query('BEGIN');
      await other.query(`SELECT id FROM "${schema}".keyfold_data_keys WHERE id = ANY($1::text[]) FOR UPDATE`, [[id(1), id(5), id(8)]]);

      // A full lease: the range ends at the last id handed out (k004), so k001 is named and k005, k008 are not yet.
      const first = await store.leaseForRewrap({ target: TARGET, limit: 3 });
      expect(first.keys.map((k) => k.id)).toEqual([id(0), id(2), id(3)]);
      expect(first.locked).toEqual([id(1)]);
      await first.release();

      // A lease that is not full covers everything after the cursor.
      const rest = await store.leaseForRewrap({ target: TARGET, limit: 10, after: id(3) });
      expect(rest.keys.map((k) => k.id)).toEqual([id(4), id(6), id(7), id(9)]);
      expect(rest.locked).toEqual([id(5), id(8)]);
      await rest.release();

      // Only eligible rows: a locked row already under the target is not named.
      await other.query('ROLLBACK');
      const k5 = (await store.getDataKey(id(5)))!;
      await store.updateDataKey(k5.id, k5.revision, { wrapped: { ...k5.wrapped!, keyVersion: '2' } });
      await other.query('BEGIN');
      await other.query(`SELECT id FROM "${schema}".keyfold_data_keys WHERE id = ANY($1::text[]) FOR UPDATE`, [[id(5), id(8)]]);
      const again = await store.leaseForRewrap({ target: TARGET, limit: 10, after: id(3) });
      expect(again.locked).toEqual([id(8)]);
      await again.release();

      // Nothing locked: nothing named.
      await other.query('ROLLBACK');
      const free = await store.leaseForRewrap({ target: TARGET, limit: 10 });
      expect(free.keys).toHaveLength(9);
      expect(free.locked).toEqual([]);
      await free.release();
    } finally {
      await other.end();
      await store.close();
    }
  });

  it('SQLite (no row locks): names nothing', async () => {
    const store = await sqliteStore();
    try {
      await store.insertDataKeys(await keys(4));
      const lease = await store.leaseForRewrap({ target: TARGET, limit: 10 });
      expect(lease.keys).toHaveLength(4);
      expect(lease.locked ?? []).toEqual([]);
      await lease.release();
    } finally {
      await store.close();
    }
  });
});
