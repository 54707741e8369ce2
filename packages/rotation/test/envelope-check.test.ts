import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { checkEnvelopes, rewrapEnvelopes, sqliteTableSource } from '../src/index.js';
import { freshPath, makeKeks } from './helpers.js';

/** 30 rows under v1, 20 under v2, 5 under another KEK (a tenant-like key id), 1 malformed. */
async function mixedTable(): Promise<{ db: Database.Database; keks: ReturnType<typeof makeKeks>; rows: () => unknown[] }> {
  const keks = makeKeks();
  const other = createEnvProvider({ env: { TENANT_V1: randomBytes(32).toString('hex') }, prefix: 'TENANT_V' });
  const db = new Database(freshPath());
  db.exec('CREATE TABLE docs (id INTEGER PRIMARY KEY, body BLOB)');
  const ins = db.prepare('INSERT INTO docs (id, body) VALUES (?, ?)');
  let id = 0;
  for (const [provider, n] of [[keks.v1, 30], [keks.v2, 20], [other, 5]] as const) {
    const envelope = createEnvelope({ providers: [provider] });
    for (let i = 0; i < n; i++) ins.run(++id, Buffer.from(await envelope.seal(`row ${id}`)));
  }
  ins.run(++id, Buffer.from('not an envelope'));
  return { db, keks, rows: () => db.prepare('SELECT id, body FROM docs ORDER BY id').all() };
}

describe('checkEnvelopes', () => {
  it('counts envelopes per KEK version and by standing from headers alone, writing nothing', async () => {
    const { db, keks, rows } = await mixedTable();
    try {
      const before = JSON.stringify(rows());
      const report = await checkEnvelopes({ source: sqliteTableSource({ db, table: 'docs', envelopeColumn: 'body' }), to: keks.v2, batchSize: 7 });
      expect(report).toMatchObject({ scanned: 56, current: 20, stale: 30, foreign: 5, aborted: false });
      expect(report.versions).toEqual({ 'env:KEYFOLD_KEK@1': 30, 'env:KEYFOLD_KEK@2': 20, 'env:TENANT@1': 5 });
      expect(report.failed).toEqual([{ id: 56, code: 'FORMAT_INVALID' }]);
      expect(JSON.stringify(rows())).toBe(before);
    } finally {
      db.close();
    }
  });

  it('stops between pages when the signal fires', async () => {
    const { db, keks } = await mixedTable();
    try {
      const ac = new AbortController();
      const report = await checkEnvelopes({
        source: sqliteTableSource({ db, table: 'docs', envelopeColumn: 'body' }),
        to: keks.v2,
        batchSize: 10,
        signal: ac.signal,
        onProgress: (p) => p.scanned === 10 && ac.abort(),
      });
      expect(report).toMatchObject({ aborted: true, scanned: 10 });
    } finally {
      db.close();
    }
  });
});

describe('rewrapEnvelopes with skipForeign', () => {
  it('leaves envelopes under another KEK alone and counts them, instead of failing them', async () => {
    const { db, keks } = await mixedTable();
    try {
      const source = sqliteTableSource({ db, table: 'docs', envelopeColumn: 'body' });
      const without = await rewrapEnvelopes({ source, to: keks.v2, dryRun: true });
      expect(without.failed.map((f) => f.code).sort()).toEqual(['FORMAT_INVALID', 'NO_PROVIDER', 'NO_PROVIDER', 'NO_PROVIDER', 'NO_PROVIDER', 'NO_PROVIDER']);
      expect(without.foreign).toBe(0);
      const report = await rewrapEnvelopes({ source, to: keks.v2, skipForeign: true });
      expect(report).toMatchObject({ rewrapped: 30, skipped: 20, foreign: 5, failed: [{ id: 56, code: 'FORMAT_INVALID' }] });
      const after = await checkEnvelopes({ source, to: keks.v2 });
      expect(after.versions).toEqual({ 'env:KEYFOLD_KEK@2': 50, 'env:TENANT@1': 5 });
    } finally {
      db.close();
    }
  });
});
