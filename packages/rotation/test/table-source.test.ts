import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createEnvelope, dearmor, inspectEnvelope } from '@keyfold/envelope-core';
import { postgresTableSource, rewrapEnvelopes, sqliteTableSource, type EnvelopeSource } from '../src/index.js';
import { freshPath, freshSchema, makeKeks, pgUrl, sqliteStore, type Keks } from './helpers.js';

const ROWS = 120;

function bodyOf(envelope: Uint8Array | string): Buffer {
  const bytes = typeof envelope === 'string' ? dearmor(envelope) : envelope;
  return Buffer.from(bytes.subarray(inspectEnvelope(bytes).headerLength));
}

interface Table {
  source: EnvelopeSource;
  read(): Promise<{ id: number; env: Uint8Array | string }[]>;
  close(): Promise<void>;
}

async function sqliteTable(keks: Keks, armored: boolean): Promise<Table> {
  const db = new Database(freshPath());
  db.exec(`CREATE TABLE documents (id INTEGER PRIMARY KEY, body ${armored ? 'TEXT' : 'BLOB'})`);
  const envelope = createEnvelope({ providers: [keks.v1] });
  const ins = db.prepare('INSERT INTO documents (id, body) VALUES (?, ?)');
  for (let i = 1; i <= ROWS; i++) {
    const sealed = armored ? await envelope.sealToString(`document ${i}`, { doc: String(i) }) : Buffer.from(await envelope.seal(`document ${i}`, { doc: String(i) }));
    ins.run(i, sealed);
  }
  ins.run(ROWS + 1, 'kf1.not-an-envelope');
  return {
    source: sqliteTableSource({ db, table: 'documents', envelopeColumn: 'body' }),
    read: () =>
      Promise.resolve(
        (db.prepare('SELECT id, body FROM documents WHERE id <= ? ORDER BY id').all(ROWS) as { id: number; body: Uint8Array | string }[]).map((r) => ({ id: r.id, env: r.body })),
      ),
    close: () => Promise.resolve(void db.close()),
  };
}

async function postgresTable(keks: Keks, armored: boolean): Promise<Table> {
  const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
  const schema = freshSchema();
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(`CREATE TABLE ${schema}.documents (id BIGINT PRIMARY KEY, body ${armored ? 'TEXT' : 'BYTEA'})`);
  const envelope = createEnvelope({ providers: [keks.v1] });
  for (let i = 1; i <= ROWS; i++) {
    const sealed = armored ? await envelope.sealToString(`document ${i}`, { doc: String(i) }) : Buffer.from(await envelope.seal(`document ${i}`, { doc: String(i) }));
    await pool.query(`INSERT INTO ${schema}.documents (id, body) VALUES ($1, $2)`, [i, sealed]);
  }
  await pool.query(`INSERT INTO ${schema}.documents (id, body) VALUES ($1, $2)`, [ROWS + 1, armored ? 'kf1.not-an-envelope' : Buffer.from('garbage')]);
  return {
    source: postgresTableSource({ db: pool, table: `${schema}.documents`, envelopeColumn: 'body' }),
    read: async () =>
      (await pool.query(`SELECT id, body FROM ${schema}.documents WHERE id <= $1 ORDER BY id`, [ROWS])).rows.map((r: { id: string; body: Uint8Array | string }) => ({
        id: Number(r.id),
        env: r.body,
      })),
    close: () => pool.end(),
  };
}

describe.each([
  ['SQLite BLOB', sqliteTable, false],
  ['SQLite armored TEXT', sqliteTable, true],
  ['PostgreSQL BYTEA', postgresTable, false],
  ['PostgreSQL armored TEXT', postgresTable, true],
] as const)('rewrapEnvelopes on a %s column', (_name, makeTable, armored) => {
  it('moves every envelope to the target with identical body bytes, skips them on a second run, and reports bad rows', async () => {
    const keks = makeKeks();
    const table = await makeTable(keks, armored);
    const store = await sqliteStore();
    try {
      const before = await table.read();
      const report = await rewrapEnvelopes({ source: table.source, to: keks.v2, from: [keks.v1], batchSize: 50, store });
      expect(report).toMatchObject({ scanned: ROWS + 1, rewrapped: ROWS, skipped: 0, failed: [{ id: expect.anything(), code: expect.stringMatching(/FORMAT_INVALID|LIMIT_EXCEEDED/) }] });
      const after = await table.read();
      const opener = createEnvelope({ providers: [keks.v2] });
      for (let i = 0; i < ROWS; i++) {
        const b = before[i]!;
        const a = after[i]!;
        expect(typeof a.env).toBe(armored ? 'string' : 'object');
        expect(bodyOf(a.env).equals(bodyOf(b.env))).toBe(true);
        expect(inspectEnvelope(a.env).wrappedKeys.map((w) => `${w.kind}:${w.keyId}@${w.keyVersion}`)).toEqual(['env:KEYFOLD_KEK@2']);
        expect(new TextDecoder().decode(await opener.open(a.env, { context: { doc: String(a.id) } }))).toBe(`document ${a.id}`);
      }
      expect((await store.listAudit({ event: 'envelope.rewrap' })).reduce((s, e) => s + (e.details.count as number), 0)).toBe(ROWS);
      const again = await rewrapEnvelopes({ source: table.source, to: keks.v2, from: [keks.v1] });
      expect(again).toMatchObject({ rewrapped: 0, skipped: ROWS });
    } finally {
      await table.close();
      await store.close();
    }
  });
});

describe('rewrapEnvelopes dry run and identifiers', () => {
  it('a dry run writes nothing; table and column names must be plain identifiers', async () => {
    const keks = makeKeks();
    const table = await sqliteTable(keks, false);
    try {
      const before = await table.read();
      const report = await rewrapEnvelopes({ source: table.source, to: keks.v2, from: [keks.v1], dryRun: true });
      expect(report).toMatchObject({ dryRun: true, rewrapped: ROWS });
      const after = await table.read();
      expect(after.map((r) => Buffer.from(r.env as Uint8Array).toString('hex'))).toEqual(before.map((r) => Buffer.from(r.env as Uint8Array).toString('hex')));
      expect(() => sqliteTableSource({ db: new Database(':memory:'), table: 'documents; DROP TABLE x' })).toThrow(TypeError);
      expect(() => postgresTableSource({ db: { query: () => Promise.resolve({ rows: [] }) }, table: 'a.b.c' })).toThrow(TypeError);
    } finally {
      await table.close();
    }
  });

  it('an abort from outside the run (a Ctrl-C handler, a timer) stops it after the batch in progress', async () => {
    const keks = makeKeks();
    const table = await sqliteTable(keks, false);
    try {
      const ac = new AbortController();
      const report = await rewrapEnvelopes({
        source: table.source,
        to: keks.v2,
        from: [keks.v1],
        batchSize: 40,
        signal: ac.signal,
        onProgress: (p) => p.scanned === 40 && setImmediate(() => ac.abort()),
      });
      expect(report).toMatchObject({ aborted: true, scanned: 40, rewrapped: 40 });
      const moved = (await table.read()).filter((r) => inspectEnvelope(r.env).wrappedKeys[0]?.keyVersion === '2');
      expect(moved).toHaveLength(40);
    } finally {
      await table.close();
    }
  });
});
