import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir } from './helpers.js';

let work: string;
let dir: string;
const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = keyfold(['init', '--dir', dir, '--kdf', 'scrypt'], { env });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => removeDir(work));

describe('keyfold kek add (file provider)', () => {
  it('adds version 2 and makes it active; envelopes sealed under version 1 still open', () => {
    const before = keyfold(['encrypt', '--dir', dir, '--armor'], { env, input: 'under v1' });
    expect(before.status, before.stderr).toBe(0);

    const added = keyfold(['kek', 'add', '--dir', dir], { env });
    expect(added.status, added.stderr).toBe(0);
    expect(added.out).toContain('Added KEK version 2');
    expect(added.out).toMatch(/versions\s+1, 2/);
    expect(added.out + added.stderr).not.toContain(PASSPHRASE);

    const status = JSON.parse(keyfold(['status', '--dir', dir, '--json'], { env }).out);
    expect(status.provider).toMatchObject({ activeVersion: '2', versions: ['1', '2'] });
    const after = keyfold(['encrypt', '--dir', dir, '--armor'], { env, input: 'under v2' });
    expect(JSON.parse(keyfold(['inspect', '--json'], { input: after.stdout }).out).wrappedKeys[0].keyVersion).toBe('2');
    expect(keyfold(['decrypt', '--dir', dir], { env, input: before.stdout }).out).toBe('under v1');
    expect(keyfold(['decrypt', '--dir', dir], { env, input: after.stdout }).out).toBe('under v2');

    const json = JSON.parse(keyfold(['kek', 'add', '--dir', dir, '--json'], { env }).out);
    expect(json).toMatchObject({ ok: true, kind: 'file', version: '3', activeVersion: '3', versions: ['1', '2', '3'] });
  });

  it('a wrong passphrase: exit 3 and the keyring is unchanged', () => {
    const keyring = join(dir, 'keys', 'keyring.json');
    const before = readFileSync(keyring, 'utf8');
    const r = keyfold(['kek', 'add', '--dir', dir], { env: { KEYFOLD_PASSPHRASE: 'not the passphrase' } });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[WRONG_PASSPHRASE]');
    expect(readFileSync(keyring, 'utf8')).toBe(before);
  });

  it('the env provider: exit 1 UNSUPPORTED saying to add the next variable', () => {
    const envDir = join(work, 'env');
    const vars = { KEYFOLD_KEK_V1: 'b2'.repeat(32) };
    expect(keyfold(['init', '--dir', envDir, '--provider', 'env'], { env: vars }).status).toBe(0);
    const r = keyfold(['kek', 'add', '--dir', envDir], { env: vars });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('KEYFOLD_KEK_V1, KEYFOLD_KEK_V2');
    expect(r.stderr).toContain('[UNSUPPORTED]');
  });

  it('before init: exit 1 NOT_INITIALIZED', () => {
    const r = keyfold(['kek', 'add', '--dir', join(work, 'none')], { env });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[NOT_INITIALIZED]');
  });
});
