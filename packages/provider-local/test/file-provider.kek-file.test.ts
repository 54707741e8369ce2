import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import { ConfigError, FormatError, PolicyError, UnsupportedFormatError } from '@keyfold/envelope-core';
import {
  DEFAULT_PBKDF2_ITERATIONS,
  DEFAULT_SCRYPT,
  KEYRING_FILE,
  PASSPHRASE_ENV,
  addFileKekVersion,
  changeFilePassphrase,
  createFileProvider,
  initFileKeyring,
  setActiveFileKekVersion,
} from '../src/index.js';
import { FAST_KDF, fileBytes, tempRoot } from './helpers.js';

const tmp = tempRoot('file');
type Doc = { kdf: { iterations: number; salt: string }; check: string; versions: Array<{ version: string; createdAt: string; sealed: string }>; active: string; mac: string };

const PASS = 'correct horse battery staple';
const CTX = { table: 'users' };

async function newKeyring(options: { passphrase?: string; kdf?: typeof FAST_KDF } = {}): Promise<string> {
  const dir = await tmp.dir('keys');
  await initFileKeyring({ dir, passphrase: options.passphrase ?? PASS, kdf: options.kdf ?? FAST_KDF, securityMode: 'production' });
  return dir;
}

function key(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

describe('initFileKeyring', () => {
  it('creates a 0600 keyring in a new 0700 directory with the documented format', async () => {
    const parent = await tmp.dir('parent');
    const dir = join(parent, 'nested', 'keys');
    const created = await initFileKeyring({ dir, passphrase: PASS, kdf: FAST_KDF, keyId: 'app-keys', securityMode: 'production' });
    expect(created).toEqual({
      path: join(dir, KEYRING_FILE),
      keyId: 'app-keys',
      activeVersion: '1',
      versions: ['1'],
      kdf: { name: 'pbkdf2-sha256', iterations: 1000 },
    });
    const { statSync } = await import('node:fs');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(created.path).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(created.path, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['format', 'keyId', 'kdf', 'check', 'active', 'versions', 'mac']);
    expect(doc.format).toBe(1);
    expect(doc.kdf).toMatchObject({ name: 'pbkdf2-sha256', iterations: 1000, salt: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) as unknown });
    expect(await readdir(dir)).toEqual([KEYRING_FILE]);
  });

  it('uses PBKDF2-HMAC-SHA-256 with 600,000 iterations by default, and a short random key id', async () => {
    expect(DEFAULT_PBKDF2_ITERATIONS).toBe(600_000);
    const dir = await tmp.dir('default-kdf');
    const created = await initFileKeyring({ dir, passphrase: PASS, securityMode: 'production' });
    expect(created.kdf).toEqual({ name: 'pbkdf2-sha256', iterations: 600_000 });
    expect(created.keyId).toMatch(/^file-[0-9a-f]{8}$/);
    const stored = JSON.parse(await readFile(created.path, 'utf8')) as { kdf: { iterations: number } };
    expect(stored.kdf.iterations).toBe(600_000);
    const p = await createFileProvider({ dir, passphrase: PASS });
    expect((await p.describe()).details).toEqual({ dir, kdf: 'pbkdf2-sha256', iterations: 600_000 });
    await p.close();
  });

  it('supports scrypt with its defaults N=2^17, r=8, p=1, stored in the file', async () => {
    expect(DEFAULT_SCRYPT).toEqual({ N: 131072, r: 8, p: 1 });
    const dir = await tmp.dir('scrypt');
    const created = await initFileKeyring({ dir, passphrase: PASS, kdf: { name: 'scrypt' } });
    expect(created.kdf).toEqual({ name: 'scrypt', N: 131072, r: 8, p: 1 });
    const p = await createFileProvider({ dir, passphrase: PASS });
    const w = await p.wrapKey(key(3), CTX);
    await expect(p.unwrapKey(w, CTX)).resolves.toEqual(key(3));
    expect((await p.describe()).details).toEqual({ dir, kdf: 'scrypt', N: 131072, r: 8, p: 1 });
    await p.close();
  });

  it('refuses to overwrite an existing keyring with ALREADY_EXISTS, leaving it byte for byte', async () => {
    const dir = await newKeyring();
    const before = await fileBytes(join(dir, KEYRING_FILE));
    const err = await keyfoldRejectionOf(initFileKeyring({ dir, passphrase: 'another passphrase', kdf: FAST_KDF }));
    expect(err.code).toBe('ALREADY_EXISTS');
    expect(await fileBytes(join(dir, KEYRING_FILE))).toEqual(before);
    expect(await readdir(dir)).toEqual([KEYRING_FILE]);
  });

  it('refuses an existing directory open to group or other in production', async () => {
    const dir = await tmp.dir('loose');
    await chmod(dir, 0o755);
    const err = await keyfoldRejectionOf(initFileKeyring({ dir, passphrase: PASS, kdf: FAST_KDF, securityMode: 'production' }));
    expect(err).toBeInstanceOf(PolicyError);
    expect(err.code).toBe('INSECURE_PERMISSIONS');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses bad options as caller mistakes', async () => {
    const dir = await tmp.dir('bad-options');
    await expect(initFileKeyring({ dir, passphrase: '' })).rejects.toThrow(RangeError);
    await expect(initFileKeyring({ dir, passphrase: PASS, keyId: 'has space' })).rejects.toThrow(RangeError);
    await expect(initFileKeyring({ dir, passphrase: PASS, kdf: { name: 'pbkdf2-sha256', iterations: 10 } })).rejects.toThrow(
      'kdf.iterations must be an integer from 1000 to 10000000',
    );
    await expect(initFileKeyring({ dir, passphrase: PASS, kdf: { name: 'scrypt', N: 1000 } })).rejects.toThrow(/power of two/);
    await expect(initFileKeyring({ dir, passphrase: PASS, kdf: { name: 'argon2' } as never })).rejects.toThrow(TypeError);
    await expect(initFileKeyring({ dir, passphrase: (() => 42) as never })).rejects.toThrow(TypeError);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('createFileProvider: permissions and passphrase', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env[PASSPHRASE_ENV];
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[PASSPHRASE_ENV];
    else process.env[PASSPHRASE_ENV] = saved;
  });

  it('refuses a 0755 key directory in production and accepts it in development', async () => {
    const dir = await newKeyring();
    await chmod(dir, 0o755);
    const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS, securityMode: 'production' }));
    expect(err.code).toBe('INSECURE_PERMISSIONS');
    expect(err.message).toContain(`chmod 700 ${dir}`);
    const dev = await createFileProvider({ dir, passphrase: PASS, securityMode: 'development' });
    expect((await dev.probe()).ok).toBe(true);
    await dev.close();
  });

  it('refuses a 0640 keyring file in production', async () => {
    const dir = await newKeyring();
    await chmod(join(dir, KEYRING_FILE), 0o640);
    const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS, securityMode: 'production' }));
    expect(err.code).toBe('INSECURE_PERMISSIONS');
    expect(err.message).toContain(`chmod 600 ${join(dir, KEYRING_FILE)}`);
  });

  it('a wrong passphrase is WRONG_PASSPHRASE, naming the file, and nothing is written', async () => {
    const dir = await newKeyring();
    const path = join(dir, KEYRING_FILE);
    const before = await fileBytes(path);
    const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: 'Correct horse battery staple' }));
    expect(err.code).toBe('WRONG_PASSPHRASE');
    expect(err.message).toBe(`the passphrase does not open ${path}`);
    expect(err.message).not.toContain('horse');
    const ops = [
      () => addFileKekVersion({ dir, passphrase: 'wrong' }),
      () => setActiveFileKekVersion({ dir, passphrase: 'wrong', version: '1' }),
      () => changeFilePassphrase({ dir, oldPassphrase: 'wrong', newPassphrase: 'new passphrase' }),
    ];
    for (const op of ops) expect((await keyfoldRejectionOf(op())).code).toBe('WRONG_PASSPHRASE');
    expect(await fileBytes(path)).toEqual(before);
    expect(await readdir(dir)).toEqual([KEYRING_FILE]);
  });

  it('reads the passphrase from KEYFOLD_PASSPHRASE (or passphraseEnv) when none is given', async () => {
    const dir = await newKeyring();
    process.env[PASSPHRASE_ENV] = PASS;
    const p = await createFileProvider({ dir });
    await p.close();
    process.env.MY_APP_PASSPHRASE = PASS;
    try {
      const q = await createFileProvider({ dir, passphraseEnv: 'MY_APP_PASSPHRASE' });
      await q.close();
    } finally {
      delete process.env.MY_APP_PASSPHRASE;
    }
  });

  it('a missing or empty passphrase variable is a ConfigError naming it', async () => {
    const dir = await newKeyring();
    delete process.env[PASSPHRASE_ENV];
    const missing = await keyfoldRejectionOf(createFileProvider({ dir }));
    expect(missing).toBeInstanceOf(ConfigError);
    expect(missing.message).toBe('no KEK file passphrase: pass passphrase or set KEYFOLD_PASSPHRASE');
    process.env[PASSPHRASE_ENV] = '';
    expect((await keyfoldRejectionOf(createFileProvider({ dir }))).message).toBe('KEYFOLD_PASSPHRASE is empty; set it to the KEK file passphrase');
    await expect(createFileProvider({ dir, passphrase: '' })).rejects.toThrow(RangeError);
  });

  it('accepts the passphrase from an async function, and normalises it to NFC', async () => {
    const dir = await tmp.dir('nfc');
    await initFileKeyring({ dir, passphrase: 'caf\u00e9 au lait', kdf: FAST_KDF });
    const p = await createFileProvider({ dir, passphrase: () => Promise.resolve('cafe\u0301 au lait') });
    await p.close();
  });

  it('a directory without a keyring is a ConfigError saying how to create one', async () => {
    const dir = await tmp.dir('empty');
    const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/^no KEK file in .*: create one with initKekFile/);
  });
});

describe('keyring file integrity', () => {
  async function mutate(dir: string, change: (doc: Record<string, unknown>) => void): Promise<void> {
    const path = join(dir, KEYRING_FILE);
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    change(doc);
    await writeFile(path, JSON.stringify(doc), { mode: 0o600 });
  }

  it('a corrupt (non-JSON or truncated) file is FORMAT_INVALID', async () => {
    const dir = await newKeyring();
    const path = join(dir, KEYRING_FILE);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.slice(0, text.length >> 1));
    const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.code).toBe('FORMAT_INVALID');
    expect(err.message).toBe(`${path} is not a valid KEK file: it is not JSON`);
  });

  it('structural damage is FORMAT_INVALID naming the field', async () => {
    const cases: ReadonlyArray<[string, (d: Doc & Record<string, unknown>) => void, RegExp]> = [
      ['an unknown field', (d) => void (d.extra = 1), /unknown field "extra"/],
      ['a short sealed key', (d) => void ((d.versions[0] as { sealed: string }).sealed = 'AAAA'), /versions\[0\]\.sealed must be 60 bytes/],
      ['an absurd iteration count', (d) => void (d.kdf.iterations = 2 ** 40), /kdf\.iterations must be an integer/],
      ['a dangling active version', (d) => void (d.active = '7'), /active must name one of the versions/],
      ['a duplicated version', (d) => void d.versions.push({ ...(d.versions[0] as Doc['versions'][0]) }), /version 1 appears twice/],
    ];
    for (const [, change, message] of cases) {
      const dir = await newKeyring();
      await mutate(dir, (d) => change(d as Doc & Record<string, unknown>));
      const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }));
      expect(err.code).toBe('FORMAT_INVALID');
      expect(err.message).toMatch(message);
    }
  });

  it('a newer format version is FORMAT_UNSUPPORTED', async () => {
    const dir = await newKeyring();
    await mutate(dir, (d) => void (d.format = 2));
    const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }));
    expect(err).toBeInstanceOf(UnsupportedFormatError);
    expect(err.code).toBe('FORMAT_UNSUPPORTED');
  });

  it('authenticated fields changed by someone without the passphrase are INTEGRITY_FAILED', async () => {
    const dir = await newKeyring();
    await addFileKekVersion({ dir, passphrase: PASS });
    const cases: ReadonlyArray<[string, (d: Doc) => void]> = [
      ['the active version', (d) => void (d.active = '1')],
      ['a version removed', (d) => void d.versions.shift()],
      ['a creation time', (d) => void ((d.versions[0] as { createdAt: string }).createdAt = '2001-01-01T00:00:00.000Z')],
      ['the MAC', (d) => void (d.mac = `${d.mac.startsWith('A') ? 'B' : 'A'}${d.mac.slice(1)}`)],
      ['one sealed key', (d) => void ((d.versions[1] as { sealed: string }).sealed = (d.versions[0] as { sealed: string }).sealed)],
      [
        'two sealed keys swapped',
        (d) => {
          const [a, b] = d.versions as [Doc['versions'][0], Doc['versions'][0]];
          [a.sealed, b.sealed] = [b.sealed, a.sealed];
        },
      ],
    ];
    const original = await readFile(join(dir, KEYRING_FILE), 'utf8');
    for (const [what, change] of cases) {
      await writeFile(join(dir, KEYRING_FILE), original, { mode: 0o600 });
      await mutate(dir, (d) => change(d as unknown as Doc));
      const err = await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }));
      expect(err.code, what).toBe('INTEGRITY_FAILED');
      expect(err.message).toMatch(/has been modified or damaged/);
    }
  });

  it('weakened KDF parameters or a swapped salt do not open (the parameters are bound to the sealed keys)', async () => {
    const dir = await tmp.dir('kdf-bound');
    await initFileKeyring({ dir, passphrase: PASS, kdf: { name: 'pbkdf2-sha256', iterations: 2000 } });
    await mutate(dir, (d) => void ((d as unknown as Doc).kdf.iterations = 1000));
    expect((await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }))).code).toBe('WRONG_PASSPHRASE');
  });
});

describe('administration keeps every version working', () => {
  it('addFileKekVersion adds and activates; reload() picks it up in a running provider', async () => {
    const dir = await newKeyring();
    const p = await createFileProvider({ dir, passphrase: PASS });
    const w1 = await p.wrapKey(key(1), CTX);
    expect(await addFileKekVersion({ dir, passphrase: PASS })).toBe('2');
    expect((await p.wrapKey(key(2), CTX)).keyVersion).toBe('1');
    await p.reload();
    const w2 = await p.wrapKey(key(2), CTX);
    expect(w2.keyVersion).toBe('2');
    await expect(p.unwrapKey(w1, CTX)).resolves.toEqual(key(1));
    expect(await addFileKekVersion({ dir, passphrase: PASS, activate: false })).toBe('3');
    await p.reload();
    expect(await p.describe()).toMatchObject({ activeVersion: '2', versions: ['1', '2', '3'] });
    await setActiveFileKekVersion({ dir, passphrase: PASS, version: '3' });
    await p.reload();
    expect((await p.wrapKey(key(3), CTX)).keyVersion).toBe('3');
    await p.close();
  });

  it('setActiveFileKekVersion refuses an unknown version with KEY_NOT_FOUND, writing nothing', async () => {
    const dir = await newKeyring();
    const before = await fileBytes(join(dir, KEYRING_FILE));
    const err = await keyfoldRejectionOf(setActiveFileKekVersion({ dir, passphrase: PASS, version: '9' }));
    expect(err.code).toBe('KEY_NOT_FOUND');
    expect(err.message).toMatch(/has no version "9" \(versions: 1\)/);
    expect(await fileBytes(join(dir, KEYRING_FILE))).toEqual(before);
  });

  it('changeFilePassphrase reseals every version: old wrapped keys unwrap, the old passphrase no longer opens', async () => {
    const dir = await newKeyring();
    await addFileKekVersion({ dir, passphrase: PASS });
    await addFileKekVersion({ dir, passphrase: PASS, activate: false });
    const before = await createFileProvider({ dir, passphrase: PASS });
    const wrapped = [];
    for (const v of ['1', '2', '3']) {
      await setActiveFileKekVersion({ dir, passphrase: PASS, version: v });
      await before.reload();
      wrapped.push(await before.wrapKey(key(Number(v)), CTX));
    }
    expect(wrapped.map((w) => w.keyVersion)).toEqual(['1', '2', '3']);
    const oldSalt = (JSON.parse(await readFile(join(dir, KEYRING_FILE), 'utf8')) as Doc).kdf.salt;

    const changed = await changeFilePassphrase({ dir, oldPassphrase: PASS, newPassphrase: 'a brand new passphrase', kdf: { name: 'scrypt', N: 1024 } });
    expect(changed).toMatchObject({ activeVersion: '3', versions: ['1', '2', '3'], kdf: { name: 'scrypt', N: 1024, r: 8, p: 1 } });
    const newSalt = (JSON.parse(await readFile(join(dir, KEYRING_FILE), 'utf8')) as Doc).kdf.salt;
    expect(newSalt).not.toBe(oldSalt);

    expect((await keyfoldRejectionOf(createFileProvider({ dir, passphrase: PASS }))).code).toBe('WRONG_PASSPHRASE');
    const after = await createFileProvider({ dir, passphrase: 'a brand new passphrase' });
    for (const [i, w] of wrapped.entries()) await expect(after.unwrapKey(w, CTX)).resolves.toEqual(key(i + 1));
    // The provider opened with the old passphrase refuses to reload the resealed keyring instead of misreading it.
    await expect(before.reload()).rejects.toThrow(/resealed with a new passphrase/);
    await expect(before.unwrapKey(wrapped[0]!, CTX)).resolves.toEqual(key(1));
    await Promise.all([before.close(), after.close()]);
  });

  it('changeFilePassphrase without kdf keeps the algorithm and cost, with a fresh salt', async () => {
    const dir = await newKeyring();
    const changed = await changeFilePassphrase({ dir, oldPassphrase: PASS, newPassphrase: 'next' });
    expect(changed.kdf).toEqual({ name: 'pbkdf2-sha256', iterations: 1000 });
  });

  it('rotate() writes the new version to the file, so a fresh provider sees it', async () => {
    const dir = await newKeyring();
    const p = await createFileProvider({ dir, passphrase: PASS });
    expect(await p.rotate()).toBe('2');
    const w = await p.wrapKey(key(7), CTX);
    const q = await createFileProvider({ dir, passphrase: PASS });
    expect(await q.describe()).toMatchObject({ activeVersion: '2', versions: ['1', '2'] });
    await expect(q.unwrapKey(w, CTX)).resolves.toEqual(key(7));
    expect(await readdir(dir)).toEqual([KEYRING_FILE]);
    await Promise.all([p.close(), q.close()]);
  });

  it('a held lock makes writers fail with UNAVAILABLE instead of interleaving; the keyring is unchanged', async () => {
    const dir = await newKeyring();
    const path = join(dir, KEYRING_FILE);
    const before = await fileBytes(path);
    await writeFile(`${path}.lock`, '12345\n', { mode: 0o600 });
    const p = await createFileProvider({ dir, passphrase: PASS });
    for (const op of [() => p.rotate(), () => addFileKekVersion({ dir, passphrase: PASS })]) {
      const err = await keyfoldRejectionOf(op());
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toMatch(/being changed by another process/);
    }
    expect(await fileBytes(path)).toEqual(before);
    await p.close();
  });

  it('rotate() and reload() after close() fail with PROVIDER_CLOSED', async () => {
    const dir = await newKeyring();
    const p = await createFileProvider({ dir, passphrase: PASS });
    await p.close();
    expect((await keyfoldRejectionOf(p.rotate())).code).toBe('PROVIDER_CLOSED');
    expect((await keyfoldRejectionOf(p.reload())).code).toBe('PROVIDER_CLOSED');
  });

  it('concurrent changes in one process are serialised: no version is lost', async () => {
    const dir = await newKeyring();
    const p = await createFileProvider({ dir, passphrase: PASS });
    const added = await Promise.all([p.rotate(), addFileKekVersion({ dir, passphrase: PASS, activate: false }), p.rotate()]);
    expect([...added].sort()).toEqual(['2', '3', '4']);
    const q = await createFileProvider({ dir, passphrase: PASS });
    expect((await q.describe()).versions).toEqual(['1', '2', '3', '4']);
    await p.reload();
    expect((await p.describe()).versions).toEqual(['1', '2', '3', '4']);
    expect(await readdir(dir)).toEqual([KEYRING_FILE]);
    await Promise.all([p.close(), q.close()]);
  });
});
