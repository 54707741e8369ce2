/**
 * Two SQLite stores open on one file in one process (a keyring and a backup, two libraries of one application).
 * Their write transactions take turns inside the process: a second connection must never wait for the write lock
 * inside SQLite's busy handler, which would block the very thread that has to finish the first transaction.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryProvider } from '@keyfold/provider-local';
import { dataKeyContext, keyCheckValue, openSqliteKeyStore, type NewDataKey } from '../src/index.js';
import { freshPath } from './helpers.js';

async function keys(prefix: string, count: number): Promise<NewDataKey[]> {
  const provider = createMemoryProvider({ securityMode: 'development' });
  const out: NewDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${i}`;
    const owner = `table:${prefix}:${i}`;
    const dk = new Uint8Array(32).fill(i + 1);
    out.push({ id, owner, version: 1, wrapped: await provider.wrapKey(dk, dataKeyContext({ id, owner })), keyCheck: keyCheckValue(dk) });
  }
  await provider.close();
  return out;
}

describe('two SQLite stores on one file in one process', () => {
  it('concurrent writes through both commit (none fails for the write lock), and the audit chain stays linear', async () => {
    const path = freshPath();
    // A short busy timeout: a write that waited for the other connection's lock would fail fast with UNAVAILABLE.
    await (await openSqliteKeyStore({ path, create: true, securityMode: 'production' })).close();
    const a = await openSqliteKeyStore({ path, securityMode: 'production', busyTimeoutMs: 100 });
    const b = await openSqliteKeyStore({ path, securityMode: 'production', busyTimeoutMs: 100 }).catch(async (err: unknown) => {
      await a.close();
      throw err;
    });
    try {
      const [ka, kb] = await Promise.all([keys('a', 3), keys('b', 3)]);
      await Promise.all([
        ...Array.from({ length: 5 }, (_, i) => a.appendAudit({ actor: 'test', event: 'test.a', subject: String(i) })),
        ...Array.from({ length: 5 }, (_, i) => b.appendAudit({ actor: 'test', event: 'test.b', subject: String(i) })),
        a.insertDataKeys(ka, { actor: 'test', event: 'keys.a', subject: 'a' }),
        b.insertDataKeys(kb, { actor: 'test', event: 'keys.b', subject: 'b' }),
        a.saveCheckpoint({ name: 'rot', cursor: 'a0', processedDelta: 1 }),
        b.saveCheckpoint({ name: 'rot', cursor: 'b0', processedDelta: 2 }),
      ]);
      expect(await a.countDataKeys()).toBe(6);
      expect((await b.getCheckpoint('rot'))?.processed).toBe(3);
      const v = await b.verifyAudit();
      expect(v).toMatchObject({ ok: true, entries: 12, head: { seq: 12 } });
      await Promise.all([a.deleteCheckpoint('rot'), b.appendAudit({ actor: 'test', event: 'test.c', subject: 'c' })]);
      expect(await a.getCheckpoint('rot')).toBeUndefined();
      expect((await a.auditHead()).seq).toBe(13);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a store can be opened while the connection that created it is still open (its first pages only in the WAL)', async () => {
    const path = freshPath();
    const a = await openSqliteKeyStore({ path, create: true, securityMode: 'production' });
    try {
      await a.appendAudit({ actor: 'test', event: 'test.created', subject: 's' });
      const b = await openSqliteKeyStore({ path, securityMode: 'production' });
      try {
        expect(await b.auditHead()).toMatchObject({ seq: 1 });
      } finally {
        await b.close();
      }
      const ro = await openSqliteKeyStore({ path, readOnly: true, securityMode: 'production' });
      try {
        expect((await ro.listAudit()).map((e) => e.event)).toEqual(['test.created']);
      } finally {
        await ro.close();
      }
    } finally {
      await a.close();
    }
  });
});
