/**
 * A failed `keyfold init` leaves the configuration directory exactly as it found it: absent when it did not exist,
 * and with the same entries (names, types, modes, contents) when it existed with unrelated files, a `keys`
 * directory of its own included. Each kind of failure happens at another step: before anything is written (a bad
 * env KEK, a PKCS#11 library that does not exist), or after the keyring and config.json were written (a PostgreSQL
 * store that cannot be reached, an SQLite store that cannot be created, a store whose install lock names another
 * provider).
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../tooling/postgres-server.js';
import { keyfold, makeTempDir, PASSPHRASE, removeDir, type RunResult } from './helpers.js';

let work: string;
let n = 0;

beforeAll(() => {
  work = makeTempDir();
});

afterAll(() => {
  if (work !== undefined) removeDir(work);
});

/** Every entry under `dir`, sorted: relative path, type, permission bits and (for files) a digest of the contents. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = join(rel, name);
      const st = lstatSync(join(dir, path));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.push(`${path}/ ${mode}`);
        walk(path);
      } else {
        out.push(`${path} ${mode} ${createHash('sha256').update(readFileSync(join(dir, path))).digest('hex')}`);
      }
    }
  };
  walk('');
  return out;
}

/** The `[CODE]` of a failed run. */
function codeOf(r: RunResult): string | undefined {
  return /^keyfold: .*\[([A-Z_]+)\]$/m.exec(r.stderr)?.[1];
}

type Layout = 'absent' | 'existing';

/** A configuration directory path under a fresh parent: absent, or existing (0700) with unrelated files in it. */
function prepare(layout: Layout): { parent: string; dir: string } {
  const parent = join(work, `case-${++n}`);
  mkdirSync(parent, { mode: 0o700 });
  const dir = join(parent, 'kf');
  if (layout === 'existing') {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'notes.txt'), 'unrelated notes\n', { mode: 0o600 });
    mkdirSync(join(dir, 'other'), { mode: 0o700 });
    writeFileSync(join(dir, 'other', 'data.bin'), Buffer.from([1, 2, 3]), { mode: 0o600 });
    // A key directory of the operator's own: init may add its keyring there, but must not remove the directory.
    mkdirSync(join(dir, 'keys'), { mode: 0o700 });
    writeFileSync(join(dir, 'keys', 'README'), 'kept\n', { mode: 0o600 });
  }
  return { parent, dir };
}

interface FailureKind {
  readonly name: string;
  /** exit status and code expected */
  readonly status: number;
  readonly code: string;
  /** Runs the failing init on `dir`. */
  run(dir: string): Promise<RunResult> | RunResult;
}

const deadStore = async (): Promise<string> => `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;

const KINDS: readonly FailureKind[] = [
  {
    name: 'file provider, PostgreSQL store that cannot be reached (after the keyring and config.json were written)',
    status: 1,
    code: 'UNAVAILABLE',
    run: async (dir) => keyfold(['init', '--dir', dir, '--kdf', 'pbkdf2', '--store', await deadStore()], { env: { KEYFOLD_PASSPHRASE: PASSPHRASE } }),
  },
  {
    name: 'env provider, PostgreSQL store that cannot be reached (after config.json was written)',
    status: 1,
    code: 'UNAVAILABLE',
    run: async (dir) => keyfold(['init', '--dir', dir, '--provider', 'env', '--store', await deadStore()], { env: { KEYFOLD_KEK_V1: 'ab'.repeat(32) } }),
  },
  {
    name: 'file provider, SQLite store in a directory that does not exist (after the keyring and config.json were written)',
    status: 1,
    code: 'CONFIG_INVALID',
    run: (dir) =>
      keyfold(['init', '--dir', dir, '--kdf', 'pbkdf2', '--store', join(work, 'no-such-dir', 'store.db')], { env: { KEYFOLD_PASSPHRASE: PASSPHRASE } }),
  },
  {
    name: 'env provider with a malformed key (before anything is written)',
    status: 1,
    code: 'CONFIG_INVALID',
    run: (dir) => keyfold(['init', '--dir', dir, '--provider', 'env'], { env: { KEYFOLD_KEK_V1: 'ab'.repeat(31) + 'a' } }),
  },
  {
    name: 'pkcs11 provider whose library does not exist (wrong provider configuration)',
    status: 1,
    code: 'CONFIG_INVALID',
    run: (dir) =>
      keyfold(['init', '--dir', dir, '--provider', 'pkcs11', '--library', join(work, 'no-such-pkcs11.so'), '--slot', '0', '--key-label', 'k', '--pin-env', 'KF_PIN'], {
        env: { KF_PIN: '1234' },
      }),
  },
];

describe('a failed keyfold init leaves the directory as it was', () => {
  for (const kind of KINDS) {
    for (const layout of ['absent', 'existing'] as const) {
      it(`${kind.name}; directory ${layout}`, async () => {
        const { parent, dir } = prepare(layout);
        const parentBefore = listing(parent);
        const r = await kind.run(dir);
        expect({ status: r.status, code: codeOf(r) }, r.stderr).toEqual({ status: kind.status, code: kind.code });
        expect(listing(parent)).toEqual(parentBefore);
        expect(existsSync(dir)).toBe(layout === 'existing');
        expect(r.stderr).not.toContain(PASSPHRASE);
      });
    }
  }

  it('a store whose install lock names another provider (PROVIDER_MISMATCH): the directory and that store stay', () => {
    const storeDir = join(work, 'shared-store');
    mkdirSync(storeDir, { mode: 0o700 });
    const storePath = join(storeDir, 'keystore.db');
    const first = keyfold(['init', '--dir', join(storeDir, 'first'), '--provider', 'env', '--store', storePath], { env: { KEYFOLD_KEK_V1: 'cd'.repeat(32) } });
    expect(first.status, first.stderr).toBe(0);
    const storeBefore = readdirSync(storeDir).sort();

    for (const layout of ['absent', 'existing'] as const) {
      const { parent, dir } = prepare(layout);
      const parentBefore = listing(parent);
      const r = keyfold(['init', '--dir', dir, '--kdf', 'pbkdf2', '--store', storePath], { env: { KEYFOLD_PASSPHRASE: PASSPHRASE } });
      expect({ status: r.status, code: codeOf(r) }, r.stderr).toEqual({ status: 3, code: 'PROVIDER_MISMATCH' });
      expect(listing(parent), layout).toEqual(parentBefore);
      expect(readdirSync(storeDir).sort()).toEqual(storeBefore);
    }
    // The other installation still works on its store.
    const status = keyfold(['status', '--dir', join(storeDir, 'first'), '--json'], { env: { KEYFOLD_KEK_V1: 'cd'.repeat(32) } });
    expect(status.status, status.stderr).toBe(0);
  });

  it('after a failure in an existing directory, init there succeeds and keeps the unrelated files', async () => {
    const { dir } = prepare('existing');
    const before = listing(dir);
    const failed = keyfold(['init', '--dir', dir, '--provider', 'env', '--store', await deadStore()], { env: { KEYFOLD_KEK_V1: 'ab'.repeat(32) } });
    expect(failed.status).toBe(1);
    expect(listing(dir)).toEqual(before);
    const ok = keyfold(['init', '--dir', dir, '--provider', 'env'], { env: { KEYFOLD_KEK_V1: 'ab'.repeat(32) } });
    expect(ok.status, ok.stderr).toBe(0);
    const after = listing(dir);
    for (const entry of before) expect(after).toContain(entry);
    expect(after.some((e) => e.startsWith('config.json '))).toBe(true);
  });
});
