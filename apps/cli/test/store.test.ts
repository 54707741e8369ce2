/**
 * The key store commands of the built binary (issue 4): init's store, tenants, KEK list/add/rotate/retire/verify,
 * audit list/verify, backup/restore, and the bad inputs (wrong passphrase, mismatched provider, loose permissions,
 * tampered audit row, corrupted file, unknown schema version) with their exit codes.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir } from './helpers.js';

let work: string;
let dir: string;
const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
const run = (args: string[], extra: Record<string, string | undefined> = {}, input?: string | Buffer) =>
  keyfold([...args, '--dir', dir], { env: { ...env, ...extra }, ...(input === undefined ? {} : { input }) });
/** Parsed JSON output (loosely typed on purpose: the assertions check the shape). */
type Json = ReturnType<typeof JSON.parse>;
const json = (args: string[]): Json => {
  const r = run([...args, '--json']);
  expect(r.status, r.stderr + r.out).toBe(0);
  return JSON.parse(r.out);
};
const db = () => join(dir, 'keystore.db');
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = keyfold(['init', '--dir', dir, '--kdf', 'scrypt', '--json'], { env });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.out).store).toMatchObject({ backend: 'sqlite', schemaVersion: 3, kekVersion: '1' });
});
afterAll(() => removeDir(work));

describe('key store commands', () => {
  let sealed: Buffer;
  let other: Buffer;

  it('init created the SQLite store (0600) and recorded it in config.json', () => {
    expect(statSync(db()).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).store).toEqual({ backend: 'sqlite', path: 'keystore.db' });
    expect(json(['kek', 'list']).installLock.kind).toBe('file');
    expect(json(['status']).store).toMatchObject({ backend: 'sqlite', dataKeys: { active: 0 }, interruptedRotations: [] });
  });

  it('tenant create / list and sealing with --tenant', () => {
    expect(run(['tenant', 'create', '--tenant', 'acme']).out).toContain('Created tenant acme');
    expect(json(['tenant', 'create', '--tenant', 'globex'])).toMatchObject({ ok: true, id: 'globex', activeVersion: 1 });
    expect(run(['tenant', 'create', '--tenant', 'bad id']).status).toBe(2);
    expect(json(['tenant', 'list']).tenants.map((t: { id: string }) => t.id)).toEqual(['acme', 'globex']);
    const e = run(['encrypt', '--tenant', 'acme', '--armor', '--context', 'table=users'], {}, 'secret of acme');
    expect(e.status, e.stderr).toBe(0);
    sealed = e.stdout;
    other = run(['encrypt', '--tenant', 'globex', '--armor'], {}, 'secret of globex').stdout;
    expect(run(['decrypt', '--tenant', 'acme'], {}, sealed).out).toBe('secret of acme');
  });

  it('kek add records the version; retire is refused while referenced; rotate is idempotent; verify', () => {
    expect(json(['kek', 'add'])).toMatchObject({ version: '2', recordedInStore: true });
    const refused = run(['kek', 'retire', '--kek-version', '1']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('[POLICY_VIOLATION]');

    const first = json(['kek', 'rotate']);
    expect(first).toMatchObject({ ok: true, rewrapped: 2, failed: [], target: { version: '2' } });
    expect(json(['kek', 'rotate'])).toMatchObject({ ok: true, rewrapped: 0, skipped: 2 });
    const text = run(['kek', 'rotate']);
    expect(text.out).toContain('Nothing to do');
    expect(text.out).not.toContain('\r'); // no progress bar when piped

    const list = json(['kek', 'list']).versions;
    expect(list.map((v: { version: string; state: string; keys: { active: number } }) => [v.version, v.state, v.keys.active])).toEqual([
      ['1', 'available', 0],
      ['2', 'active', 2],
    ]);
    expect(json(['kek', 'retire', '--kek-version', '1'])).toMatchObject({ ok: true, state: 'retired' });
    expect(json(['kek', 'verify'])).toMatchObject({ ok: true, checked: 2, verified: 2, failed: [] });
    expect(run(['decrypt', '--tenant', 'acme'], {}, sealed).out).toBe('secret of acme');
  });

  it('a wrong passphrase exits 3 and writes nothing', () => {
    const before = json(['audit', 'verify']).head;
    const r = run(['kek', 'rotate'], { KEYFOLD_PASSPHRASE: 'wrong' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[WRONG_PASSPHRASE]');
    expect(json(['audit', 'verify']).head).toEqual(before);
  });

  it('tenant rotate, then tenant shred: its envelopes exit 3 (KEY_DESTROYED), others still open', () => {
    expect(json(['tenant', 'rotate', '--tenant', 'acme'])).toMatchObject({ activeVersion: 2 });
    expect(run(['decrypt', '--tenant', 'acme'], {}, sealed).out).toBe('secret of acme');
    expect(run(['tenant', 'shred', '--tenant', 'acme']).status).toBe(2); // needs --yes
    expect(json(['tenant', 'shred', '--tenant', 'acme', '--yes'])).toMatchObject({ ok: true, destroyed: 2 });
    const r = run(['decrypt', '--tenant', 'acme'], {}, sealed);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[KEY_DESTROYED]');
    expect(r.out).toBe('');
    expect(run(['decrypt', '--tenant', 'globex'], {}, other).out).toBe('secret of globex');
    expect(json(['tenant', 'list']).tenants[0]).toMatchObject({ id: 'acme', shredded: true, activeVersion: null });
  });

  it('audit list and audit verify', () => {
    const { entries, head } = json(['audit', 'list', '--limit', '1000']);
    const events = entries.map((e: { event: string }) => e.event);
    for (const e of ['install.lock', 'kek.activate', 'tenant.create', 'kek.rewrap', 'kek.rotate', 'kek.retire', 'kek.verify', 'tenant.rotate', 'tenant.shred']) {
      expect(events).toContain(e);
    }
    expect(head.seq).toBe(entries.length);
    expect(json(['audit', 'list', '--event', 'tenant.shred']).entries).toHaveLength(1);
    expect(json(['audit', 'verify'])).toMatchObject({ ok: true, entries: entries.length });
    expect(JSON.stringify(entries)).not.toContain(PASSPHRASE);
  });

  it('backup / restore round trip; a tampered backup is refused with exit 3 and nothing written', () => {
    const file = join(work, 'store.backup');
    expect(json(['backup', '--out', file])).toMatchObject({ ok: true, dataKeys: 3 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(run(['backup', '--out', file]).status).toBe(1); // never overwritten
    const tenants = json(['tenant', 'list']).tenants;

    renameSync(db(), join(work, 'original.db'));
    const lines = readFileSync(file, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"tenant.create"'));
    lines[i] = (lines[i] as string).replace('"tenant.create"', '"tenant.createX"');
    const tampered = join(work, 'tampered.backup');
    writeFileSync(tampered, lines.join('\n'));
    const bad = run(['restore', '--in', tampered]);
    expect(bad.status, bad.stderr).toBe(3);
    expect(bad.stderr).toContain('[INTEGRITY_FAILED]');
    expect(existsSync(db())).toBe(false);

    expect(json(['restore', '--in', file])).toMatchObject({ ok: true, dataKeys: 3 });
    expect(json(['tenant', 'list']).tenants).toEqual(tenants);
    expect(json(['audit', 'verify']).ok).toBe(true);
    expect(run(['decrypt', '--tenant', 'globex'], {}, other).out).toBe('secret of globex');
    expect(run(['restore', '--in', file]).status).toBe(1); // the store exists: ALREADY_EXISTS
  });

  it('a store file open to group or other is refused (exit 1, INSECURE_PERMISSIONS)', () => {
    chmodSync(db(), 0o644);
    try {
      const r = run(['kek', 'list']);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('[INSECURE_PERMISSIONS]');
    } finally {
      chmodSync(db(), 0o600);
    }
  });

  it('another provider in the install lock: exit 3 PROVIDER_MISMATCH naming both', () => {
    const copy = join(work, 'lock.db');
    copyFileSync(db(), copy);
    const conn = new Database(db());
    conn.prepare("UPDATE keyfold_install_lock SET key_id = 'file-00000000'").run();
    conn.close();
    try {
      const r = run(['tenant', 'create', '--tenant', 'initech']);
      expect(r.status).toBe(3);
      expect(r.stderr).toContain('[PROVIDER_MISMATCH]');
      expect(r.stderr).toContain('file-00000000');
    } finally {
      copyFileSync(copy, db());
    }
  });

  it('audit verify detects an edited audit row: exit 3', () => {
    const conn = new Database(db());
    conn.prepare("UPDATE keyfold_audit SET actor = 'mallory' WHERE seq = 3").run();
    conn.close();
    const r = run(['audit', 'verify']);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[INTEGRITY_FAILED]');
    expect(r.stderr).toContain('#3');
    const j = run(['audit', 'verify', '--json']);
    expect(j.status).toBe(3);
    expect(JSON.parse(j.out)).toMatchObject({ ok: false, problem: { kind: 'edited', seq: 3 } });
    expect(run(['backup', '--out', join(work, 'after-tamper.backup')]).status).toBe(3);
  });

  it('a store with an unknown (newer) schema version: FORMAT_UNSUPPORTED, file unchanged', () => {
    const conn = new Database(db());
    conn.pragma('journal_mode = DELETE');
    conn.pragma('user_version = 99');
    conn.close();
    const before = sha(db());
    const r = run(['tenant', 'list']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[FORMAT_UNSUPPORTED]');
    expect(r.stderr).toContain('schema version 99');
    expect(sha(db())).toBe(before);
  });

  it('a corrupted store file: exit 3 INTEGRITY_FAILED, file unchanged', () => {
    const bytes = readFileSync(db());
    bytes.fill(0x5a, 0, 100);
    writeFileSync(db(), bytes);
    const before = sha(db());
    const r = run(['kek', 'list']);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[INTEGRITY_FAILED]');
    expect(sha(db())).toBe(before);
  });
});

describe('migrate and rotate --if-due', () => {
  it('migrate file -> env moves the keys, the install lock and config.json', () => {
    const mdir = join(work, 'migrate');
    const vars = { KEYFOLD_KEK_V1: 'c3'.repeat(32) };
    expect(keyfold(['init', '--dir', mdir, '--kdf', 'scrypt'], { env }).status).toBe(0);
    expect(keyfold(['tenant', 'create', '--tenant', 'acme', '--dir', mdir], { env }).status).toBe(0);
    const sealedAcme = keyfold(['encrypt', '--tenant', 'acme', '--armor', '--dir', mdir], { env, input: 'moved' }).stdout;
    const r = keyfold(['migrate', '--provider', 'env', '--dir', mdir, '--json'], { env: { ...env, ...vars } });
    expect(r.status, r.stderr + r.out).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, lockChanged: true, rewrapped: 1, to: { kind: 'env', keyId: 'KEYFOLD_KEK' } });
    expect(JSON.parse(readFileSync(join(mdir, 'config.json'), 'utf8')).provider).toMatchObject({ kind: 'env', prefix: 'KEYFOLD_KEK_V' });
    // No passphrase any more: the env KEK opens the tenant key.
    expect(keyfold(['decrypt', '--tenant', 'acme', '--dir', mdir], { env: vars, input: sealedAcme }).out).toBe('moved');
    const lock = JSON.parse(keyfold(['kek', 'list', '--dir', mdir, '--json'], { env: vars }).out).installLock;
    expect(lock).toEqual({ kind: 'env', keyId: 'KEYFOLD_KEK' });
  });

  it('rotate --if-due: nothing due, then a new version, then the re-wrap', () => {
    const rdir = join(work, 'policy');
    expect(keyfold(['init', '--dir', rdir, '--kdf', 'scrypt'], { env }).status).toBe(0);
    expect(keyfold(['tenant', 'create', '--tenant', 'acme', '--dir', rdir], { env }).status).toBe(0);
    const r = (args: string[]) => {
      const x = keyfold(['rotate', '--if-due', '--dir', rdir, '--json', ...args], { env });
      expect(x.status, x.stderr + x.out).toBe(0);
      return JSON.parse(x.out) as unknown;
    };
    expect(r([])).toMatchObject({ action: 'none' });
    expect(r(['--max-age', '0.000001'])).toMatchObject({ action: 'added-version', version: '2' });
    expect(r([])).toMatchObject({ action: 'none', pendingKeys: 1 });
    expect(r(['--grace-period', '0'])).toMatchObject({ action: 'rewrapped', report: { rewrapped: 1 } });
    expect(keyfold(['rotate', '--dir', rdir], { env }).status).toBe(2);
  });
});
