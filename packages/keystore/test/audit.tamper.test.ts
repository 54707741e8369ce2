/**
 * Audit tampering in every form (issue 4): edited (with and without a recomputed hash), deleted (in the middle, at
 * the end, with the rest renumbered), reordered, inserted (in the middle with renumbering, after the head) — on
 * the pure verifier and on both stores through raw SQL, as an attacker with database access would do it.
 */
import { describe, expect, it } from 'vitest';
import { auditHash, GENESIS_HASH, verifyAuditChain, type AuditEntry, type KeyStore } from '../src/index.js';
import { executeRaw, pgStoreWithSchema, sqliteStore } from './helpers.js';

function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = { seq, time: new Date(1_700_000_000_000 + seq * 1000).toISOString(), actor: 'test', event: 'tenant.create', subject: `tenant:t${seq}`, details: { n: seq }, prevHash: prev };
    const entry = { ...e, hash: auditHash(e) };
    out.push(entry);
    prev = entry.hash;
  }
  return out;
}

const head = (entries: AuditEntry[]): { seq: number; hash: string } => ({ seq: entries.length, hash: entries[entries.length - 1]!.hash });
const rehash = (e: Omit<AuditEntry, 'hash'>): AuditEntry => ({ ...e, hash: auditHash(e) });

describe('verifyAuditChain', () => {
  const log = chain(8);
  const h = head(log);
  const cases: [string, AuditEntry[], { seq: number; hash: string }, string, number][] = [
    ['an edited entry', log.map((e) => (e.seq === 4 ? { ...e, subject: 'tenant:forged' } : e)), h, 'edited', 4],
    ['an edited entry whose hash was recomputed', log.map((e) => (e.seq === 4 ? rehash({ ...e, details: { n: 999 } }) : e)), h, 'edited', 4],
    ['an edited last entry whose hash was recomputed', log.map((e) => (e.seq === 8 ? rehash({ ...e, actor: 'someone' }) : e)), h, 'edited', 8],
    ['a deleted entry', log.filter((e) => e.seq !== 5), h, 'deleted', 5],
    ['a deleted entry with the rest renumbered', log.filter((e) => e.seq !== 5).map((e) => (e.seq > 5 ? { ...e, seq: e.seq - 1 } : e)), h, 'deleted', 5],
    ['deleted entries at the end', log.filter((e) => e.seq <= 6), h, 'deleted', 7],
    ['two swapped entries', log.map((e) => (e.seq === 3 ? { ...log[3]!, seq: 3 } : e.seq === 4 ? { ...log[2]!, seq: 4 } : e)), h, 'reordered', 3],
    ['an entry moved further', log.map((e) => (e.seq === 2 ? { ...log[6]!, seq: 2 } : e.seq === 7 ? { ...log[1]!, seq: 7 } : e)), h, 'reordered', 2],
    [
      'an inserted entry with the rest renumbered',
      [...log.slice(0, 4), rehash({ ...log[4]!, subject: 'tenant:evil', prevHash: log[3]!.hash }), ...log.slice(4).map((e) => ({ ...e, seq: e.seq + 1 }))],
      h,
      'inserted',
      5,
    ],
    [
      'an inserted entry with a made-up hash, the rest renumbered',
      [...log.slice(0, 4), { ...log[4]!, subject: 'tenant:evil', hash: 'f'.repeat(64) }, ...log.slice(4).map((e) => ({ ...e, seq: e.seq + 1 }))],
      h,
      'inserted',
      5,
    ],
    ['an entry appended after the head', [...log, rehash({ ...log[7]!, seq: 9, prevHash: log[7]!.hash })], h, 'inserted', 9],
  ];
  it.each(cases)('names %s', (_name, entries, hd, kind, seq) => {
    const v = verifyAuditChain(entries, hd);
    expect(v.ok).toBe(false);
    expect(v.problem).toMatchObject({ kind, seq });
    expect(v.problem!.message).toContain(`#${seq}`);
  });

  it('accepts an intact log, and an empty one', () => {
    expect(verifyAuditChain(log, h)).toEqual({ ok: true, keyed: false, entries: 8, head: h });
    expect(verifyAuditChain([], { seq: 0, hash: GENESIS_HASH }).ok).toBe(true);
  });
});

describe.each([
  ['SqliteKeyStore', () => sqliteStore()],
  ['PostgresKeyStore', () => pgStoreWithSchema()],
] as const)('%s verifyAudit against raw SQL tampering', (_name, open) => {
  async function withLog(fn: (store: KeyStore, entries: AuditEntry[]) => Promise<void>): Promise<void> {
    const store = await open();
    try {
      for (let i = 1; i <= 6; i++) await store.appendAudit({ actor: 'test', event: 'tenant.create', subject: `tenant:t${i}`, details: { n: i } });
      const entries = await store.listAudit();
      expect((await store.verifyAudit()).ok).toBe(true);
      await fn(store, entries);
    } finally {
      await store.close();
    }
  }
  const sql = (store: KeyStore, text: string, params: unknown[]): Promise<void> => executeRaw(store, text, params);

  it('edited, with the hash recomputed', () =>
    withLog(async (store, entries) => {
      const e = rehash({ ...entries[2]!, subject: 'tenant:forged' });
      await sql(store, 'UPDATE keyfold_audit SET subject = ?, hash = ? WHERE seq = ?', [e.subject, e.hash, 3]);
      expect((await store.verifyAudit()).problem).toMatchObject({ kind: 'edited', seq: 3 });
    }));

  it('deleted, with the rest renumbered', () =>
    withLog(async (store) => {
      await sql(store, 'DELETE FROM keyfold_audit WHERE seq = ?', [2]);
      for (let s = 3; s <= 6; s++) await sql(store, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [s - 1, s]);
      expect((await store.verifyAudit()).problem).toMatchObject({ kind: 'deleted', seq: 2 });
    }));

  it('truncated at the end', () =>
    withLog(async (store) => {
      await sql(store, 'DELETE FROM keyfold_audit WHERE seq >= ?', [5]);
      expect((await store.verifyAudit()).problem).toMatchObject({ kind: 'deleted', seq: 5 });
    }));

  it('appended after the head with a valid hash', () =>
    withLog(async (store, entries) => {
      const last = entries[5]!;
      const e = rehash({ ...last, seq: 7, subject: 'tenant:evil', prevHash: last.hash });
      await sql(store, 'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        7,
        e.time,
        e.actor,
        e.event,
        e.subject,
        JSON.stringify(e.details),
        e.prevHash,
        e.hash,
      ]);
      expect((await store.verifyAudit()).problem).toMatchObject({ kind: 'inserted', seq: 7 });
    }));

  it('inserted in the middle, the rest renumbered', () =>
    withLog(async (store, entries) => {
      for (let s = 6; s >= 4; s--) await sql(store, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [s + 1, s]);
      const e = rehash({ ...entries[3]!, subject: 'tenant:evil', prevHash: entries[2]!.hash });
      await sql(store, 'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        4,
        e.time,
        e.actor,
        e.event,
        e.subject,
        JSON.stringify(e.details),
        e.prevHash,
        e.hash,
      ]);
      expect((await store.verifyAudit()).problem).toMatchObject({ kind: 'inserted', seq: 4 });
    }));

  it('reordered', () =>
    withLog(async (store) => {
      await sql(store, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [-1, 4]);
      await sql(store, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [4, 5]);
      await sql(store, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [5, -1]);
      expect((await store.verifyAudit()).problem).toMatchObject({ kind: 'reordered', seq: 4 });
    }));
});
