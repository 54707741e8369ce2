/**
 * `keyfold rewrap --table` through the built binary, on an SQLite file and on a PostgreSQL table of a throwaway
 * server this file starts (tooling/postgres-server.ts): `--check` counts without writing (exit 1, then 0), the
 * re-wrap moves every envelope under the installation's KEK to the active version with identical bodies (binary and
 * armored columns), leaves tenant envelopes and malformed rows alone (the latter reported, exit 3), a second run
 * re-wraps nothing; the PostgreSQL password (in the URL or PGPASSWORD) is never printed, a wrong one is ACCESS_DENIED
 * (exit 3); a missing table or column is a coded error; the runs are audited and `kek retire` warns from them.
 *
 * The installation uses the env provider; the rows are sealed in this process with the same KEK versions.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, dearmor, inspectEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { startPostgres, type PostgresServer } from '../../../tooling/postgres-server.js';
import { keyfold, makeTempDir, removeDir, type RunResult } from './helpers.js';
import { envKeks } from './seed.js';

type Json = ReturnType<typeof JSON.parse>;

const keks = envKeks();
const V1 = { KEYFOLD_KEK_V1: keks.KEYFOLD_KEK_V1 };
const V12 = { ...keks };
const ROWS = 40;

let work: string;
let dir: string;

function cli(args: string[], env: Record<string, string>): RunResult {
  return keyfold([...args, '--dir', dir], { env });
}

function bodyOf(value: Uint8Array | string): Buffer {
  const bytes = typeof value === 'string' ? dearmor(value) : value;
  return Buffer.from(bytes.subarray(inspectEnvelope(bytes).headerLength));
}

function versionOf(value: Uint8Array | string): string {
  return inspectEnvelope(value).wrappedKeys.map((w) => `${w.kind}@${w.keyVersion}`).join(',');
}

/** Rows 1..ROWS: half under v1, half under v2 (binary or armored); then a tenant-like foreign row and a malformed one. */
async function seedRows(armored: boolean): Promise<{ id: number; value: Uint8Array | string; plain: string }[]> {
  const v1 = createEnvelope({ providers: [createEnvProvider({ env: V1 })] });
  const v2 = createEnvelope({ providers: [createEnvProvider({ env: V12 })] });
  const rows: { id: number; value: Uint8Array | string; plain: string }[] = [];
  for (let id = 1; id <= ROWS; id++) {
    const envelope = id % 2 === 0 ? v2 : v1;
    const plain = `row ${id} ${randomBytes(8).toString('hex')}`;
    rows.push({ id, plain, value: armored ? await envelope.sealToString(plain, { row: String(id) }) : await envelope.seal(plain, { row: String(id) }) });
  }
  return rows;
}

async function foreignValue(armored: boolean): Promise<Uint8Array | string> {
  const other = createEnvelope({ providers: [createEnvProvider({ env: { OTHER_V1: randomBytes(32).toString('hex') }, prefix: 'OTHER_V' })] });
  return armored ? other.sealToString('foreign') : other.seal('foreign');
}

const v2Opener = createEnvelope({ providers: [createEnvProvider({ env: { KEYFOLD_KEK_V2: keks.KEYFOLD_KEK_V2 } })] });

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = cli(['init', '--provider', 'env'], V1);
  expect(r.status, r.stderr).toBe(0);
  // Version 2 is rolled out and made the key store's active version: rows under 1 are stale.
  expect(cli(['kek', 'activate', '--kek-version', '2'], V12).status).toBe(0);
});
afterAll(() => removeDir(work));

describe.each([
  ['BLOB', false],
  ['armored TEXT', true],
] as const)('keyfold rewrap --table on an SQLite %s column', (type, armored) => {
  it('checks, re-wraps with identical bodies, leaves foreign and malformed rows, and is idempotent', async () => {
    const path = join(work, `app-${armored ? 'text' : 'blob'}.db`);
    const db = new Database(path);
    db.exec(`CREATE TABLE documents (doc_id INTEGER PRIMARY KEY, body ${armored ? 'TEXT' : 'BLOB'})`);
    const rows = await seedRows(armored);
    const ins = db.prepare('INSERT INTO documents (doc_id, body) VALUES (?, ?)');
    for (const r of rows) ins.run(r.id, typeof r.value === 'string' ? r.value : Buffer.from(r.value));
    const foreign = await foreignValue(armored);
    ins.run(ROWS + 1, typeof foreign === 'string' ? foreign : Buffer.from(foreign));
    ins.run(ROWS + 2, armored ? 'kf1.garbage' : Buffer.from('garbage'));
    const read = (): { doc_id: number; body: Uint8Array | string }[] => db.prepare('SELECT doc_id, body FROM documents ORDER BY doc_id').all() as never;
    const before = read();
    const args = ['rewrap', '--table', 'documents', '--column', 'body', '--id-column', 'doc_id', '--database-url', `sqlite:${path}`];

    const check = cli([...args, '--check', '--json'], V12);
    expect(check.status, check.stderr + check.out).toBe(3);
    const c = JSON.parse(check.out);
    expect(c).toMatchObject({ check: true, scanned: ROWS + 2, stale: ROWS / 2, current: ROWS / 2, foreign: 1, failed: [{ id: ROWS + 2, code: 'FORMAT_INVALID' }] });
    expect(c.versions).toMatchObject({ 'env:KEYFOLD_KEK@1': ROWS / 2, 'env:KEYFOLD_KEK@2': ROWS / 2 });
    expect(read()).toEqual(before);

    const run = cli([...args, '--json'], V12);
    expect(run.status, run.stderr + run.out).toBe(3);
    expect(JSON.parse(run.out)).toMatchObject({ rewrapped: ROWS / 2, current: ROWS / 2, foreign: 1, failed: [{ id: ROWS + 2, code: 'FORMAT_INVALID' }] });
    const after = read();
    for (let i = 0; i < ROWS; i++) {
      const a = after[i]!.body;
      const b = before[i]!.body;
      expect(typeof a).toBe(armored ? 'string' : 'object');
      expect(versionOf(a)).toBe('env@2');
      expect(bodyOf(a).equals(bodyOf(b))).toBe(true);
      expect(new TextDecoder().decode(await v2Opener.open(a, { context: { row: String(i + 1) } }))).toBe(rows[i]!.plain);
    }
    expect(after.slice(ROWS)).toEqual(before.slice(ROWS));

    // Delete the malformed row: the check is now clean (exit 0) and a second run re-wraps nothing.
    db.prepare('DELETE FROM documents WHERE doc_id = ?').run(ROWS + 2);
    const clean = cli([...args, '--check'], V12);
    expect(clean.status, clean.stderr + clean.out).toBe(0);
    expect(clean.out).toContain('Every envelope is on the active version');
    const again = cli([...args, '--json'], V12);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.out)).toMatchObject({ rewrapped: 0, current: ROWS });
    db.close();
  });
});

describe('keyfold rewrap --table mistakes', () => {
  it('a missing table, column or database is a coded error; a bad combination is a usage error', () => {
    const path = join(work, 'empty.db');
    new Database(path).exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
    const noTable = cli(['rewrap', '--table', 'nope', '--column', 'body', '--database-url', `sqlite:${path}`], V12);
    expect(noTable.status).toBe(1);
    expect(noTable.stderr).toMatch(/table nope does not exist in sqlite:.*\[CONFIG_INVALID\]/);
    const noColumn = cli(['rewrap', '--table', 't', '--column', 'nope', '--database-url', `sqlite:${path}`], V12);
    expect(noColumn.status).toBe(1);
    expect(noColumn.stderr).toContain('[CONFIG_INVALID]');
    const noDb = cli(['rewrap', '--table', 't', '--column', 'body', '--database-url', `sqlite:${join(work, 'missing.db')}`], V12);
    expect(noDb.status).toBe(1);
    expect(noDb.stderr).toContain('[IO_ERROR]');
    const badName = cli(['rewrap', '--table', 't; DROP TABLE t', '--column', 'body', '--database-url', `sqlite:${path}`], V12);
    expect(badName.status).toBe(2);
    expect(cli(['rewrap', '--table', 't', '--column', 'body', '--database-url', 'mysql://x'], V12).status).toBe(2);
    expect(cli(['rewrap', '--table', 't', '--database-url', `sqlite:${path}`], V12).status).toBe(2);
    expect(cli(['rewrap', 'file.kf', '--table', 't', '--column', 'body', '--database-url', `sqlite:${path}`], V12).status).toBe(2);
    expect(cli(['rewrap', '--column', 'body'], V12).status).toBe(2);
  });
});

describe('keyfold rewrap --table on PostgreSQL', () => {
  let server: PostgresServer;
  let admin: pg.Pool;
  const password = `pw-${randomBytes(9).toString('hex')}`;

  beforeAll(async () => {
    server = await startPostgres();
    admin = new pg.Pool({ connectionString: server.url, max: 2 });
    await admin.query(`CREATE ROLE app LOGIN PASSWORD '${password}'`);
    // The test cluster trusts every login: make this one give its password (SCRAM) over TCP.
    const hba = (await admin.query('SHOW hba_file')).rows[0].hba_file as string;
    writeFileSync(hba, `host all app 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    await admin.query('SELECT pg_reload_conf()');
    await admin.query('CREATE SCHEMA app AUTHORIZATION app');
    await admin.query('CREATE TABLE app.documents (id BIGINT PRIMARY KEY, body BYTEA)');
    await admin.query('ALTER TABLE app.documents OWNER TO app');
    const rows = await seedRows(false);
    for (const r of rows) await admin.query('INSERT INTO app.documents (id, body) VALUES ($1, $2)', [r.id, Buffer.from(r.value as Uint8Array)]);
    await admin.query('INSERT INTO app.documents (id, body) VALUES ($1, $2)', [ROWS + 1, Buffer.from(await foreignValue(false))]);
  }, 120_000);
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });

  const urlWith = (pw: string | undefined): string => `postgres://app${pw === undefined ? '' : `:${encodeURIComponent(pw)}`}@127.0.0.1:${server.port}/postgres`;
  const read = async (): Promise<{ id: string; body: Buffer }[]> => (await admin.query('SELECT id, body FROM app.documents ORDER BY id')).rows as never;

  it('--check (password from the URL) and the re-wrap (password from PGPASSWORD), never printing the password', async () => {
    const before = await read();
    const args = ['rewrap', '--table', 'app.documents', '--column', 'body'];
    const check = cli([...args, '--check', '--database-url', urlWith(password)], V12);
    expect(check.status, check.stderr + check.out).toBe(1);
    expect(check.out).toContain(`${ROWS / 2} row(s) are not on the active version`);
    expect(check.out + check.stderr).not.toContain(password);
    expect(await read()).toEqual(before);

    const run = cli([...args, '--database-url', urlWith(undefined), '--json'], { ...V12, PGPASSWORD: password });
    expect(run.status, run.stderr + run.out).toBe(0);
    expect(run.out + run.stderr).not.toContain(password);
    expect(JSON.parse(run.out)).toMatchObject({ rewrapped: ROWS / 2, current: ROWS / 2, foreign: 1, failed: [] });
    const after = await read();
    for (let i = 0; i < ROWS; i++) {
      expect(versionOf(after[i]!.body)).toBe('env@2');
      expect(bodyOf(after[i]!.body).equals(bodyOf(before[i]!.body))).toBe(true);
    }
    expect(after[ROWS]!.body.equals(before[ROWS]!.body)).toBe(true);

    const clean = cli([...args, '--check', '--database-url', urlWith(password), '--json'], V12);
    expect(clean.status, clean.stderr).toBe(0);
    expect(JSON.parse(clean.out)).toMatchObject({ stale: 0, current: ROWS, foreign: 1 });
  });

  it('a wrong password is ACCESS_DENIED (exit 3) without printing it; no password at all says where to put one', () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const r = cli(['rewrap', '--check', '--table', 'app.documents', '--column', 'body', '--database-url', urlWith(wrong)], V12);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/refused the login.*\[ACCESS_DENIED\]/);
    expect(r.stderr + r.out).not.toContain(wrong);
    const debug = keyfold(['rewrap', '--check', '--table', 'app.documents', '--column', 'body', '--database-url', urlWith(wrong), '--dir', dir], {
      env: { ...V12, KEYFOLD_DEBUG: '1' },
    });
    expect(debug.stderr + debug.out).not.toContain(wrong);
    const none = cli(['rewrap', '--check', '--table', 'app.documents', '--column', 'body', '--database-url', urlWith(undefined)], V12);
    expect(none.status).toBe(3);
    expect(none.stderr).toContain('PGPASSWORD');
  });

  it('kek retire warns from the table checks recorded (0 left under v1 here)', () => {
    const audit = JSON.parse(cli(['audit', 'list', '--event', 'envelopes.check', '--json'], V12).out);
    const subjects = new Set((audit.entries as Json[]).map((e) => e.subject as string));
    expect([...subjects].some((s) => s.startsWith('table:postgres://app@127.0.0.1') && s.endsWith('#app.documents.body'))).toBe(true);
    for (const s of subjects) expect(s).not.toContain(password);
    // The store learns that version 2 is active from the provider (kek rotate); then version 1 may be retired.
    expect(cli(['kek', 'rotate'], V12).status).toBe(0);
    const r = cli(['kek', 'retire', '--kek-version', '1'], V12);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/The latest recorded envelope checks \(3 source\(s\)\) found no envelope under version 1\./);
  });
});
