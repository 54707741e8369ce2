/**
 * The per-tenant key lifecycle through the built binary (issue 14, item 4):
 * - `tenant rotate --reencrypt` over a directory of files (binary from --out, armored from stdout, nested, another
 *   tenant's, the KEK's, not an envelope) with a tampered file among them: exit 3, the tampered file reported with
 *   DECRYPT_FAILED, the old version survives (its untampered copy still opens); repaired, the same command resumes
 *   without rotating again, re-wraps what is left and destroys version 1 (bodies unchanged, the rest untouched);
 *   a read-only file keeps the old version too (exit 1, IO_ERROR);
 * - the same over a table, with the key store and the table on SQLite, and on PostgreSQL;
 * - `tenant shred --key-version N`: refused for the active version (exit 1, POLICY_VIOLATION), usage errors (exit
 *   2), one old version destroyed (audited), idempotent;
 * - usage errors: --reencrypt with nowhere to look, files without --reencrypt.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dearmor, inspectEnvelope } from '@keyfold/envelope-core';
import { startPostgres, type PostgresServer } from '../../../tooling/postgres-server.js';
import { keyfold, makeTempDir, removeDir, type RunResult } from './helpers.js';
import { envKeks } from './seed.js';

type Json = ReturnType<typeof JSON.parse>;

const V1 = { KEYFOLD_KEK_V1: envKeks().KEYFOLD_KEK_V1 };
let work: string;

beforeAll(() => {
  work = makeTempDir();
});
afterAll(() => removeDir(work));

function cli(dir: string, args: string[], input?: string | Buffer): RunResult {
  return keyfold([...args, '--dir', dir], { env: V1, ...(input === undefined ? {} : { input }) });
}

function ok(r: RunResult): RunResult {
  expect(r.status, r.stderr + r.out).toBe(0);
  return r;
}

function envelopeOf(file: Buffer): Uint8Array {
  const text = file.toString('latin1').trim();
  return text.startsWith('kf1.') ? dearmor(text) : new Uint8Array(file);
}

function bodyOf(file: Buffer): Buffer {
  const bytes = envelopeOf(file);
  return Buffer.from(bytes.subarray(inspectEnvelope(bytes).headerLength));
}

function versionOf(file: Buffer): string {
  return inspectEnvelope(envelopeOf(file)).wrappedKeys.map((w) => `${w.kind}:${w.keyId}@${w.keyVersion}`).join(',');
}

function snapshot(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return out;
}

function statuses(json: Json, root: string): Record<string, { status: string; code?: string }> {
  return Object.fromEntries((json.files as { path: string; status: string; code?: string }[]).map((f) => [relative(root, f.path), f]));
}

/** Decrypts `file` for `tenant` with the binary to `--out`, returning the plaintext (or the failed run). */
function open(dir: string, tenant: string, file: string): RunResult & { plain?: string } {
  const out = join(work, `out-${Math.random().toString(36).slice(2)}`);
  const r = cli(dir, ['decrypt', '--tenant', tenant, '--in', file, '--out', out]);
  return r.status === 0 ? { ...r, plain: readFileSync(out, 'utf8') } : r;
}

describe('keyfold tenant rotate --reencrypt: files', () => {
  let dir: string;
  let data: string;
  const plain: Record<string, string> = {};

  beforeAll(() => {
    dir = join(work, 'kf-files');
    data = join(work, 'vault');
    mkdirSync(join(data, 'nested'), { recursive: true });
    ok(cli(dir, ['init', '--provider', 'env']));
    ok(cli(dir, ['tenant', 'create', '--tenant', 'alice']));
    ok(cli(dir, ['tenant', 'create', '--tenant', 'bob']));
    const seal = (name: string, extra: string[], viaStdout = false): void => {
      plain[name] = `secret of ${name}`;
      if (viaStdout) writeFileSync(join(data, name), ok(cli(dir, ['encrypt', ...extra], plain[name])).stdout);
      else ok(cli(dir, ['encrypt', '--out', join(data, name), ...extra], plain[name]));
    };
    seal('login.kf', ['--tenant', 'alice']);
    seal('card.txt', ['--tenant', 'alice', '--armor', '--context', 'kind=card'], true);
    seal('nested/note.kf', ['--tenant', 'alice'], true);
    seal('tampered.kf', ['--tenant', 'alice']);
    seal('bob.kf', ['--tenant', 'bob']);
    seal('kek.kf', []);
    writeFileSync(join(data, 'readme.md'), '# not an envelope\n');
    copyFileSync(join(data, 'tampered.kf'), join(work, 'tampered.orig'));
    const t = readFileSync(join(data, 'tampered.kf'));
    t[t.length - 5] = (t[t.length - 5] as number) ^ 0x01;
    writeFileSync(join(data, 'tampered.kf'), t);
  });

  it('refuses --reencrypt with nowhere to look, and files without --reencrypt (exit 2), changing nothing', () => {
    const r = cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^keyfold: name where the tenant's envelopes are .*\[USAGE\]$/m);
    const f = cli(dir, ['tenant', 'rotate', '--tenant', 'alice', data]);
    expect(f.status).toBe(2);
    expect(f.stderr).toContain('files only go with --reencrypt [USAGE]');
    const d = cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', data]);
    expect(d.status).toBe(2);
    expect(d.stderr).toContain('add --recursive');
    const s = cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', '-r', data, '--settle', 'soon']);
    expect(s.status).toBe(2);
    expect(JSON.parse(ok(cli(dir, ['tenant', 'list', '--json'])).out).tenants[0]).toMatchObject({ id: 'alice', activeVersion: 1, versions: 1 });
  });

  it('a tampered file among them: exit 3, reported by file, version 1 survives; repaired, a re-run resumes and destroys it', () => {
    const before = snapshot(data);
    const r = cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', '-r', data, '--settle', '0', '--json']);
    expect(r.status, r.stderr).toBe(3);
    const json = JSON.parse(r.out);
    expect(json).toMatchObject({ ok: false, id: 'alice', version: 2, rotated: true, resumed: false, destroyed: [], kept: [1], complete: false });
    const s = statuses(json, data);
    expect(s['tampered.kf']).toMatchObject({ status: 'failed', code: 'DECRYPT_FAILED' });
    for (const f of ['login.kf', 'card.txt', 'nested/note.kf']) expect(s[f]?.status).toBe('rewrapped');
    for (const f of ['bob.kf', 'kek.kf', 'readme.md']) expect(s[f]?.status).toBe('skipped');
    // The tampered file is untouched, and version 1 still opens its original.
    expect(readFileSync(join(data, 'tampered.kf')).equals(before.get('tampered.kf')!)).toBe(true);
    expect(open(dir, 'alice', join(work, 'tampered.orig')).plain).toBe(plain['tampered.kf']);
    expect(JSON.parse(ok(cli(dir, ['tenant', 'list', '--json'])).out).tenants[0]).toMatchObject({ activeVersion: 2, versions: 2, shredded: false });

    // Repaired from its copy; the same command again: no new version, only the file left is re-wrapped.
    copyFileSync(join(work, 'tampered.orig'), join(data, 'tampered.kf'));
    const again = ok(cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', '-r', data, '--settle', '0']));
    expect(again.out).toMatch(/rewrapped\s+\S*tampered\.kf\s+tenant:alice@1 -> v2/);
    expect(again.out).toMatch(/current\s+\S*login\.kf/);
    expect(again.out).toContain('key version 2 (resumed: not rotated again)');
    expect(again.out).toContain('Destroyed old key version(s) 1');
    const after = snapshot(data);
    for (const f of ['login.kf', 'card.txt', 'nested/note.kf', 'tampered.kf']) {
      expect(versionOf(after.get(f)!)).toBe('tenant:alice@2');
      expect(bodyOf(after.get(f)!).equals(bodyOf(f === 'tampered.kf' ? readFileSync(join(work, 'tampered.orig')) : before.get(f)!))).toBe(true);
      expect(open(dir, 'alice', join(data, f)).plain).toBe(plain[f]);
    }
    expect(after.get('card.txt')!.toString('utf8')).toMatch(/^kf1\.[A-Za-z0-9_-]+\n$/);
    for (const f of ['bob.kf', 'kek.kf', 'readme.md']) expect(after.get(f)!.equals(before.get(f)!)).toBe(true);
    // Version 1 is gone: the pre-rotation copy never opens again.
    const gone = open(dir, 'alice', join(work, 'tampered.orig'));
    expect(gone.status).toBe(3);
    expect(gone.stderr).toBe('keyfold: key version 1 of tenant alice was destroyed: what it sealed can never be opened again [KEY_DESTROYED]\n');
    const list = JSON.parse(ok(cli(dir, ['tenant', 'list', '--json'])).out).tenants;
    expect(list[0]).toMatchObject({ id: 'alice', activeVersion: 2, versions: 2, shredded: false });
    const audit = JSON.parse(ok(cli(dir, ['audit', 'list', '--event', 'tenant.shred-version', '--json'])).out);
    expect((audit.entries as { subject: string; details: { version: number } }[]).map((e) => [e.subject, e.details.version])).toEqual([['tenant:alice', 1]]);
    ok(cli(dir, ['audit', 'verify']));
  });

  it('a read-only file keeps the old version (exit 1, IO_ERROR) and is left as it is', () => {
    const ro = join(data, 'nested', 'readonly.kf');
    ok(cli(dir, ['encrypt', '--tenant', 'alice', '--out', ro], 'read-only secret'));
    chmodSync(ro, 0o444);
    const before = readFileSync(ro);
    const r = cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', '-r', data, '--settle', '0']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.out).toMatch(/failed\s+\S*readonly\.kf\s+IO_ERROR/);
    expect(r.out).toContain('Old key version(s) 2 kept');
    expect(r.stderr).toMatch(/^keyfold: key version\(s\) 2 of tenant alice kept: 1 envelope\(s\) failed, 0 left on an old version \[IO_ERROR\]$/m);
    expect(readFileSync(ro).equals(before)).toBe(true);
    expect(open(dir, 'alice', ro).plain).toBe('read-only secret');
    chmodSync(ro, 0o644);
    const done = JSON.parse(ok(cli(dir, ['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', '-r', data, '--settle', '0', '--json'])).out);
    expect(done).toMatchObject({ version: 3, rotated: false, resumed: true, destroyed: [2], complete: true });
    expect(open(dir, 'alice', ro).plain).toBe('read-only secret');
  });
  it('--stdin-list naming a file that does not exist: reported IO_ERROR, the old version kept (exit 1)', () => {
    const note = join(data, 'nested', 'note.kf');
    const list = `${note}\n${join(data, 'missing.kf')}\n`;
    const r = keyfold(['tenant', 'rotate', '--tenant', 'alice', '--reencrypt', '--stdin-list', '--settle', '0', '--json', '--dir', dir], { env: V1, input: list });
    expect(r.status, r.stderr).toBe(1);
    const json = JSON.parse(r.out);
    expect(json).toMatchObject({ version: 4, rotated: true, destroyed: [], kept: [3], complete: false });
    expect(json.files).toEqual([
      expect.objectContaining({ path: note, status: 'rewrapped' }),
      expect.objectContaining({ path: join(data, 'missing.kf'), status: 'failed', code: 'IO_ERROR' }),
    ]);
    // Version 3 survives: what is still under it (every other file of alice) opens.
    expect(versionOf(readFileSync(join(data, 'login.kf')))).toBe('tenant:alice@3');
    expect(open(dir, 'alice', join(data, 'login.kf')).plain).toBe(plain['login.kf']);
  });
});

describe('keyfold tenant shred --key-version', () => {
  let dir: string;
  beforeAll(() => {
    dir = join(work, 'kf-shred');
    ok(cli(dir, ['init', '--provider', 'env']));
    ok(cli(dir, ['tenant', 'create', '--tenant', 'acme']));
  });

  it('refuses the active version and bad input, destroys one old version, and is idempotent', () => {
    const v1 = join(work, 'acme-v1.kf');
    const v2 = join(work, 'acme-v2.kf');
    ok(cli(dir, ['encrypt', '--tenant', 'acme', '--out', v1], 'one'));
    const active = cli(dir, ['tenant', 'shred', '--tenant', 'acme', '--key-version', '1', '--yes']);
    expect(active.status).toBe(1);
    expect(active.stderr).toMatch(/^keyfold: version 1 is the active key of tenant:acme; rotate to a new version first.*\[POLICY_VIOLATION\]$/m);
    expect(open(dir, 'acme', v1).plain).toBe('one');
    ok(cli(dir, ['tenant', 'rotate', '--tenant', 'acme']));
    ok(cli(dir, ['encrypt', '--tenant', 'acme', '--out', v2], 'two'));

    expect(cli(dir, ['tenant', 'shred', '--tenant', 'acme', '--key-version', '1']).status).toBe(2); // no --yes
    for (const bad of ['0', 'x', '-1', '1.5']) {
      const r = cli(dir, ['tenant', 'shred', '--tenant', 'acme', '--key-version', bad, '--yes']);
      expect(r.status, bad).toBe(2);
      expect(r.stderr).toContain('[USAGE]');
    }
    const missing = cli(dir, ['tenant', 'shred', '--tenant', 'acme', '--key-version', '9', '--yes', '--json']);
    expect(missing.status).toBe(1);
    expect(JSON.parse(missing.out).error.code).toBe('KEY_NOT_FOUND');
    expect(open(dir, 'acme', v1).plain).toBe('one');

    const r = JSON.parse(ok(cli(dir, ['tenant', 'shred', '--tenant', 'acme', '--key-version', '1', '--yes', '--json'])).out);
    expect(r).toEqual({ ok: true, action: 'shredded-version', id: 'acme', version: 1, destroyed: true });
    const gone = open(dir, 'acme', v1);
    expect(gone.status).toBe(3);
    expect(gone.stderr).toContain('[KEY_DESTROYED]');
    expect(open(dir, 'acme', v2).plain).toBe('two');
    const text = ok(cli(dir, ['tenant', 'shred', '--tenant', 'acme', '--key-version', '1', '--yes']));
    expect(text.out).toContain('Key version 1 of tenant acme was already destroyed; nothing changed.');
    expect(JSON.parse(ok(cli(dir, ['tenant', 'list', '--json'])).out).tenants).toEqual([{ id: 'acme', activeVersion: 2, versions: 2, shredded: false }]);
    // The tenant lives on: it still rotates and seals.
    ok(cli(dir, ['tenant', 'rotate', '--tenant', 'acme']));
    ok(cli(dir, ['encrypt', '--tenant', 'acme', '--out', join(work, 'acme-v3.kf')], 'three'));
    expect(open(dir, 'acme', join(work, 'acme-v3.kf')).plain).toBe('three');
  });
});

/** A table of the tenant's envelopes sealed by the binary, with one tampered row; the run, the repair, the re-run. */
async function tableRun(
  dir: string,
  url: string,
  table: string,
  db: { insert(id: number, value: Buffer): Promise<void>; read(): Promise<Map<number, Buffer>> },
): Promise<void> {
  ok(cli(dir, ['tenant', 'create', '--tenant', 'carol']));
  ok(cli(dir, ['tenant', 'create', '--tenant', 'dave']));
  for (let id = 1; id <= 5; id++) await db.insert(id, ok(cli(dir, ['encrypt', '--tenant', 'carol'], `carol row ${id}`)).stdout);
  await db.insert(6, ok(cli(dir, ['encrypt', '--tenant', 'dave'], 'dave row')).stdout);
  const original = (await db.read()).get(3)!;
  const tampered = Buffer.from(original);
  tampered[tampered.length - 2] = (tampered[tampered.length - 2] as number) ^ 0x80;
  await db.insert(3, tampered);
  const before = await db.read();

  const args = ['tenant', 'rotate', '--tenant', 'carol', '--reencrypt', '--table', table, '--column', 'secret', '--database-url', url, '--settle', '0'];
  const r = cli(dir, [...args, '--json']);
  expect(r.status, r.stderr).toBe(3);
  const json = JSON.parse(r.out);
  expect(json).toMatchObject({ version: 2, kept: [1], destroyed: [], complete: false });
  expect(json.tables[0]).toMatchObject({ rewrapped: 4, foreign: 1, failed: [{ id: '3', code: 'DECRYPT_FAILED' }] });
  expect((await db.read()).get(3)!.equals(tampered)).toBe(true);
  expect((await db.read()).get(6)!.equals(before.get(6)!)).toBe(true);

  await db.insert(3, original);
  const again = ok(cli(dir, args));
  expect(again.out).toMatch(/re-encrypted\s+1\b/);
  expect(again.out).toContain('Destroyed old key version(s) 1');
  const after = await db.read();
  for (let id = 1; id <= 5; id++) {
    expect(versionOf(after.get(id)!)).toBe('tenant:carol@2');
    expect(bodyOf(after.get(id)!).equals(bodyOf(id === 3 ? original : before.get(id)!))).toBe(true);
    const file = join(work, `row-${table}-${id}.kf`);
    writeFileSync(file, after.get(id)!);
    expect(open(dir, 'carol', file).plain).toBe(`carol row ${id}`);
  }
  expect(after.get(6)!.equals(before.get(6)!)).toBe(true);
  const versions = JSON.parse(ok(cli(dir, ['tenant', 'list', '--json'])).out).tenants.find((t: Json) => t.id === 'carol');
  expect(versions).toMatchObject({ activeVersion: 2, versions: 2, shredded: false });
}

describe('keyfold tenant rotate --reencrypt --table', () => {
  it('key store and table on SQLite: a tampered row keeps version 1 (exit 3); repaired, the re-run destroys it', async () => {
    const dir = join(work, 'kf-sqlite-table');
    ok(cli(dir, ['init', '--provider', 'env']));
    const path = join(work, 'vault.db');
    const db = new Database(path);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, secret BLOB)');
    db.close();
    const withDb = <T>(fn: (d: Database.Database) => T): T => {
      const d = new Database(path);
      try {
        return fn(d);
      } finally {
        d.close();
      }
    };
    await tableRun(dir, `sqlite:${path}`, 'items', {
      insert: (id, value) => Promise.resolve(void withDb((d) => d.prepare('INSERT INTO items (id, secret) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET secret = excluded.secret').run(id, value))),
      read: () => Promise.resolve(withDb((d) => new Map((d.prepare('SELECT id, secret FROM items').all() as { id: number; secret: Buffer }[]).map((r) => [r.id, r.secret])))),
    });
  });

  describe('on PostgreSQL', () => {
    let server: PostgresServer;
    let admin: pg.Pool;
    beforeAll(async () => {
      server = await startPostgres();
      admin = new pg.Pool({ connectionString: server.url, max: 2 });
      await admin.query('CREATE TABLE vault_items (id BIGINT PRIMARY KEY, secret BYTEA)');
    }, 120_000);
    afterAll(async () => {
      await admin?.end();
      await server?.stop();
    });

    it('key store and table on PostgreSQL: a tampered row keeps version 1 (exit 3); repaired, the re-run destroys it', async () => {
      const dir = join(work, 'kf-pg-table');
      const init = cli(dir, ['init', '--provider', 'env', '--store', server.url, '--store-schema', 'kf_tenants']);
      expect(init.status, init.stderr).toBe(0);
      await tableRun(dir, server.url, 'vault_items', {
        insert: async (id, value) => {
          await admin.query('INSERT INTO vault_items (id, secret) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET secret = excluded.secret', [id, value]);
        },
        read: async () => new Map((await admin.query('SELECT id, secret FROM vault_items')).rows.map((r: { id: string; secret: Buffer }) => [Number(r.id), r.secret])),
      });
      const stored = await admin.query("SELECT version, state, wrapped IS NULL AS gone FROM kf_tenants.keyfold_data_keys WHERE owner = 'tenant:carol' ORDER BY version");
      expect(stored.rows).toEqual([
        { version: 1, state: 'destroyed', gone: true },
        { version: 2, state: 'active', gone: false },
      ]);
    });
  });
});
