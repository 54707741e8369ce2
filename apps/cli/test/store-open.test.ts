/**
 * How the built binary opens the key store (issue 13, items 2, 5, 8 and 10):
 * - an existing store file that is empty, truncated, random bytes, another application's SQLite database or a
 *   Keyfold store missing a table is refused by every command with INTEGRITY_FAILED (exit 3), byte for byte
 *   untouched and without side files; only init creates a store, and only where no file exists;
 * - `kek add` is all or nothing: a store that cannot be written, or that fails to record the version after the
 *   keyring was written (a real SQLite trigger), leaves the keyring as it was, and a retry adds exactly one version;
 * - the read-only commands work on a read-only installation (a read-only bind mount), and the write commands fail
 *   there with a coded error, writing nothing;
 * - a config.json edited to name another provider than the store's install lock is refused by every command that
 *   opens the store or uses the provider (PROVIDER_MISMATCH, exit 3, naming both).
 *
 * Read-only installations are real read-only bind mounts (we run as root, which ignores file modes).
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir, type RunResult } from './helpers.js';

const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
let work: string;
/** A populated installation (tenant acme, KEK versions 1 and 2, an envelope of each kind), copied by each test. */
let gold: string;
let sealed: Buffer;
let sealedForAcme: Buffer;
const mounts: string[] = [];
let n = 0;

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Every file under `dir` with its sha256 (and every directory), to prove nothing was written or created. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out[`${relative(dir, p)}/`] = 'dir';
        walk(p);
      } else out[relative(dir, p)] = sha(p);
    }
  };
  walk(dir);
  return out;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A copy of the golden installation (modes kept). */
function copyOfGold(): string {
  const dir = join(work, `kf-${++n}`);
  sh('cp', ['-a', gold, dir]);
  return dir;
}

/** Makes `path` (a directory or a file) read-only through a read-only bind mount onto itself. */
function mountReadOnly(path: string): void {
  sh('mount', ['--bind', path, path]);
  mounts.push(path);
  sh('mount', ['-o', 'remount,bind,ro', path]);
}

function unmount(path: string): void {
  sh('umount', [path]);
  mounts.splice(mounts.indexOf(path), 1);
}

const run = (dir: string, args: string[], extra: Record<string, string> = {}, input?: Buffer | string): RunResult =>
  keyfold([...args, '--dir', dir], { env: { ...env, ...extra }, ...(input === undefined ? {} : { input }) });

beforeAll(() => {
  work = makeTempDir('keyfold-store-open-');
  gold = join(work, 'gold');
  const steps: string[][] = [
    ['init', '--kdf', 'scrypt'],
    ['tenant', 'create', '--tenant', 'acme'],
    ['kek', 'add'],
  ];
  for (const args of steps) {
    const r = run(gold, args);
    expect(r.status, r.stderr).toBe(0);
  }
  sealed = run(gold, ['encrypt'], {}, 'hello').stdout;
  sealedForAcme = run(gold, ['encrypt', '--tenant', 'acme'], {}, 'hello acme').stdout;
  expect(sealed.length).toBeGreaterThan(0);
  expect(sealedForAcme.length).toBeGreaterThan(0);
});

afterAll(() => {
  for (const m of [...mounts].reverse()) spawnSync('umount', [m]);
  removeDir(work);
});

describe('an existing store file that is not a whole Keyfold store is refused, never re-created', () => {
  const bad: Record<string, (store: string) => void> = {
    'empty (0 bytes)': (store) => writeFileSync(store, ''),
    'truncated (its first 16 KiB)': (store) => writeFileSync(store, readFileSync(store).subarray(0, 16 * 1024)),
    'truncated inside a page (first 5000 bytes)': (store) => writeFileSync(store, readFileSync(store).subarray(0, 5000)),
    'random bytes': (store) => writeFileSync(store, randomBytes(64 * 1024)),
    "another application's SQLite database (WAL mode)": (store) => {
      writeFileSync(store, '');
      const db = new Database(store);
      db.pragma('journal_mode = WAL');
      db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')");
      db.close();
    },
    'a Keyfold store that lost a table': (store) => {
      const db = new Database(store);
      db.exec('DROP TABLE keyfold_audit');
      db.pragma('journal_mode = DELETE');
      db.close();
    },
  };
  const commands: [string, string[], string?][] = [
    ['tenant list', ['tenant', 'list']],
    ['kek list', ['kek', 'list']],
    ['audit verify', ['audit', 'verify']],
    ['audit list', ['audit', 'list']],
    ['encrypt --tenant', ['encrypt', '--tenant', 'acme'], 'data'],
    ['encrypt (no tenant: checks the lock)', ['encrypt'], 'data'],
    ['kek rotate', ['kek', 'rotate']],
    ['kek add', ['kek', 'add']],
    ['tenant create', ['tenant', 'create', '--tenant', 'new']],
    ['status', ['status']],
    ['provider probe', ['provider', 'probe']],
    ['backup', ['backup', '--out', 'backup.kfb']],
  ];

  for (const [what, damage] of Object.entries(bad)) {
    it(`${what}: every command exits 3 INTEGRITY_FAILED and leaves the file and directory as they were`, () => {
      const dir = copyOfGold();
      const store = join(dir, 'keystore.db');
      damage(store);
      const before = listing(dir);
      for (const [name, args, input] of commands) {
        const r = run(dir, args.map((a) => (a === 'backup.kfb' ? join(dir, a) : a)), {}, input);
        expect(r.status, `${name}: ${r.stderr}`).toBe(3);
        expect(r.stderr, name).toMatch(/^keyfold: the key store .*keystore\.db .* \[INTEGRITY_FAILED\]\n$/);
        expect(r.stdout.length, name).toBe(0);
        expect(listing(dir), name).toEqual(before);
      }
    });
  }

  it('init does not claim an existing file: a 0-byte keystore.db in a new directory makes init exit 3 and leaves it', () => {
    const dir = join(work, `fresh-${++n}`);
    sh('mkdir', ['-m', '700', dir]);
    writeFileSync(join(dir, 'keystore.db'), '', { mode: 0o600 });
    const before = listing(dir);
    const r = run(dir, ['init', '--kdf', 'scrypt']);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain('[INTEGRITY_FAILED]');
    expect(listing(dir)).toEqual(before);
  });

  it('a missing store file is not re-created by any command: CONFIG_INVALID naming restore', () => {
    const dir = copyOfGold();
    spawnSync('rm', [join(dir, 'keystore.db')]);
    const before = listing(dir);
    for (const args of [['tenant', 'list'], ['kek', 'add'], ['status'], ['encrypt']]) {
      const r = run(dir, args, {}, 'x');
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/keystore\.db is missing: restore it from a backup .*\[CONFIG_INVALID\]/);
      expect(listing(dir)).toEqual(before);
    }
  });
});

describe('kek add is all or nothing', () => {
  const versions = (dir: string): string[] =>
    (JSON.parse(run(dir, ['kek', 'list', '--json']).out) as { versions: { version: string; state: string }[] }).versions.map(
      (v) => `${v.version}:${v.state}`,
    );

  it('a store file that cannot be written (read-only bind mount): refused before the keyring changes; a retry adds exactly one', () => {
    const dir = copyOfGold();
    const keyring = join(dir, 'keys', 'keyring.json');
    const store = join(dir, 'keystore.db');
    const keyringBefore = sha(keyring);
    const storeBefore = sha(store);
    mountReadOnly(store);
    try {
      const r = run(dir, ['kek', 'add']);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/keystore\.db cannot be written: the file or its directory is read-only.*\[CONFIG_INVALID\]/);
      expect(sha(keyring)).toBe(keyringBefore);
      expect(sha(store)).toBe(storeBefore);
    } finally {
      unmount(store);
    }
    const retry = run(dir, ['kek', 'add', '--json']);
    expect(retry.status, retry.stderr).toBe(0);
    expect(JSON.parse(retry.out)).toMatchObject({ version: '3', activeVersion: '3', versions: ['1', '2', '3'], recordedInStore: true });
    expect(versions(dir)).toEqual(['1:available', '2:available', '3:active']);
  });

  it('the store fails to record the version after the keyring was written (a trigger raises): the keyring is put back', () => {
    const dir = copyOfGold();
    const keyring = join(dir, 'keys', 'keyring.json');
    const store = join(dir, 'keystore.db');
    let db = new Database(store);
    db.exec("CREATE TRIGGER injected_failure BEFORE INSERT ON keyfold_kek_versions BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END");
    db.pragma('journal_mode = DELETE');
    db.close();
    const keyringBefore = readFileSync(keyring);
    const r = run(dir, ['kek', 'add']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain('injected: disk full');
    expect(readFileSync(keyring).equals(keyringBefore)).toBe(true);
    expect(statSync(keyring).mode & 0o777).toBe(0o600);
    expect(versions(dir)).toEqual(['1:available', '2:active']);
    expect(readdirSync(join(dir, 'keys'))).toEqual(['keyring.json']);
    // The installation still works with the version it had.
    expect(run(dir, ['decrypt'], {}, sealed).out).toBe('hello');

    db = new Database(store);
    db.exec('DROP TRIGGER injected_failure');
    db.pragma('journal_mode = DELETE');
    db.close();
    const retry = run(dir, ['kek', 'add', '--json']);
    expect(retry.status, retry.stderr).toBe(0);
    expect(JSON.parse(retry.out)).toMatchObject({ version: '3', versions: ['1', '2', '3'], recordedInStore: true });
    expect(versions(dir)).toEqual(['1:available', '2:available', '3:active']);
  });
});

describe('a read-only installation (read-only bind mount)', () => {
  let dir: string;
  let before: Record<string, string>;
  beforeAll(() => {
    dir = copyOfGold();
    before = listing(dir);
    mountReadOnly(dir);
  });
  afterAll(() => {
    if (mounts.includes(dir)) unmount(dir);
  });

  it('the read-only commands exit 0 with the right answers', () => {
    const json = (args: string[], input?: Buffer): Record<string, unknown> => {
      const r = run(dir, [...args, '--json'], {}, input);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.out) as Record<string, unknown>;
    };
    expect(json(['kek', 'list'])).toMatchObject({ installLock: { kind: 'file' }, versions: [{ version: '1' }, { version: '2', state: 'active' }] });
    expect(json(['tenant', 'list'])).toMatchObject({ tenants: [{ id: 'acme', activeVersion: 1 }] });
    expect((json(['audit', 'list']).entries as unknown[]).length).toBeGreaterThanOrEqual(3);
    expect(json(['audit', 'verify'])).toMatchObject({ ok: true });
    expect(json(['status'])).toMatchObject({ store: { backend: 'sqlite', dataKeys: { active: 1 } }, provider: { activeVersion: '2' } });
    expect(json(['provider', 'probe'])).toMatchObject({ ok: true });
    expect(json(['inspect'], sealed)).toMatchObject({ formatVersion: 1, armored: false });
    const text = run(dir, ['tenant', 'list']);
    expect(text.status).toBe(0);
    expect(text.out).toContain('acme');
    expect(run(dir, ['decrypt'], {}, sealed).out).toBe('hello');
    const e = run(dir, ['encrypt'], {}, 'sealed on a read-only installation');
    expect(e.status, e.stderr).toBe(0);
    expect(run(dir, ['decrypt'], {}, e.stdout).out).toBe('sealed on a read-only installation');
  });

  it('the write commands fail with a coded error (not INTERNAL) and write nothing', () => {
    for (const args of [
      ['tenant', 'create', '--tenant', 'other'],
      ['tenant', 'rotate', '--tenant', 'acme'],
      ['kek', 'add'],
      ['kek', 'rotate'],
      ['kek', 'retire', '--kek-version', '1'],
      ['encrypt', '--tenant', 'acme'],
    ]) {
      const r = run(dir, args, {}, 'x');
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/read-only.*\[CONFIG_INVALID\]\n$/);
    }
    unmount(dir);
    expect(listing(dir)).toEqual(before);
  });
});

describe('a store last closed in WAL mode (by an older keyfold) in a read-only directory', () => {
  it('is refused with a coded error saying what to do; one command where it is writable fixes it', () => {
    const dir = copyOfGold();
    const db = new Database(join(dir, 'keystore.db'));
    db.pragma('journal_mode = WAL');
    db.close();
    expect(readFileSync(join(dir, 'keystore.db'))[18]).toBe(2);
    const before = listing(dir);
    mountReadOnly(dir);
    try {
      const r = run(dir, ['kek', 'list']);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/left in WAL mode .* run any keyfold command on it once where its directory is writable.*\[CONFIG_INVALID\]/);
    } finally {
      unmount(dir);
    }
    expect(listing(dir)).toEqual(before);
    expect(run(dir, ['kek', 'list']).status).toBe(0);
    mountReadOnly(dir);
    try {
      const r = run(dir, ['kek', 'list']);
      expect(r.status, r.stderr).toBe(0);
    } finally {
      unmount(dir);
    }
  });
});

describe('a config.json edited to name another provider than the store install lock', () => {
  it('every command that opens the store or uses the provider exits 3 PROVIDER_MISMATCH naming both, writing nothing', () => {
    const dir = copyOfGold();
    const path = join(dir, 'config.json');
    const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    config.provider = { kind: 'env', keyId: 'KEYFOLD_KEK', prefix: 'KEYFOLD_KEK_V' };
    writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
    const extra = { KEYFOLD_KEK_V1: randomBytes(32).toString('hex') };
    const before = listing(dir);
    const commands: [string[], (string | Buffer)?][] = [
      [['status']],
      [['provider', 'probe']],
      [['encrypt'], 'data'],
      [['encrypt', '--armor'], 'data'],
      [['decrypt'], sealed],
      [['encrypt', '--tenant', 'acme'], 'data'],
      [['decrypt', '--tenant', 'acme'], sealedForAcme],
      [['kek', 'list']],
      [['kek', 'verify']],
      [['kek', 'rotate']],
      [['kek', 'add']],
      [['kek', 'retire', '--kek-version', '1']],
      [['tenant', 'list']],
      [['tenant', 'create', '--tenant', 'other']],
      [['audit', 'list']],
      [['audit', 'verify']],
      [['backup', '--out', join(work, `backup-${n}.kfb`)]],
      [['rotate', '--if-due']],
    ];
    for (const [args, input] of commands) {
      const r = run(dir, args, extra, input);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr, args.join(' ')).toMatch(/names the env provider "KEYFOLD_KEK" but the key store .* was installed with the file provider "file-[0-9a-f]+".*\[PROVIDER_MISMATCH\]\n$/);
      expect(r.stdout.length, args.join(' ')).toBe(0);
    }
    expect(listing(dir)).toEqual(before);
  });
});

describe('restore', () => {
  it("refuses a target with an earlier store's -wal left beside it (SQLite would replay it into the restored store)", () => {
    const dir = copyOfGold();
    const store = join(dir, 'keystore.db');
    const backup = join(work, `restore-${n}.kfb`);
    expect(run(dir, ['backup', '--out', backup]).status).toBe(0);
    // The store is moved away while another process has it open in WAL mode with a write not yet checkpointed.
    const db = new Database(store);
    db.pragma('journal_mode = WAL');
    db.prepare("INSERT INTO keyfold_checkpoints (name, cursor, processed, data, created_at, updated_at) VALUES ('stale', NULL, 0, '{}', 't', 't')").run();
    copyFileSync(`${store}-wal`, join(work, 'stale-wal'));
    copyFileSync(`${store}-shm`, join(work, 'stale-shm'));
    db.close();
    renameSync(store, join(work, `moved-${n}.db`));
    copyFileSync(join(work, 'stale-wal'), `${store}-wal`);
    copyFileSync(join(work, 'stale-shm'), `${store}-shm`);
    const before = listing(dir);
    const r = run(dir, ['restore', '--in', backup]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/keystore\.db-wal is left from an earlier store.*\[ALREADY_EXISTS\]/);
    expect(listing(dir)).toEqual(before);

    rmSync(`${store}-wal`);
    rmSync(`${store}-shm`);
    const ok = run(dir, ['restore', '--in', backup]);
    expect(ok.status, ok.stderr).toBe(0);
    const restored = new Database(store, { readonly: true });
    try {
      expect(restored.prepare('SELECT name FROM keyfold_checkpoints').all()).toEqual([]);
    } finally {
      restored.close();
    }
    expect(run(dir, ['decrypt', '--tenant', 'acme'], {}, sealedForAcme).out).toBe('hello acme');
  });

  it('refuses to restore over an existing store file, empty or not, and leaves it as it was', () => {
    const dir = copyOfGold();
    const backup = join(work, `restore-${n}.kfb`);
    expect(run(dir, ['backup', '--out', backup]).status).toBe(0);
    writeFileSync(join(dir, 'keystore.db'), '');
    const before = listing(dir);
    const r = run(dir, ['restore', '--in', backup]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain('[ALREADY_EXISTS]');
    expect(listing(dir)).toEqual(before);
  });
});
