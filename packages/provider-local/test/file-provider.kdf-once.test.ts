/**
 * The passphrase is stretched once per open, never per operation: node:crypto's pbkdf2 / scrypt are wrapped in
 * counting spies (the real functions still run), and the counts are asserted around many operations.
 */
import type * as NodeCrypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

const kdf = vi.hoisted(() => ({ pbkdf2: 0, scrypt: 0 }));

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof NodeCrypto>();
  return {
    ...real,
    pbkdf2: (...args: Parameters<typeof real.pbkdf2>) => {
      kdf.pbkdf2++;
      real.pbkdf2(...args);
    },
    scrypt: (...args: Parameters<typeof real.scrypt>) => {
      kdf.scrypt++;
      (real.scrypt as (...a: unknown[]) => void)(...args);
    },
  };
});

const { addFileKekVersion, changeFilePassphrase, createFileProvider, initFileKeyring } = await import('../src/index.js');
const { FAST_KDF, tempRoot } = await import('./helpers.js');

const tmp = tempRoot('kdf-once');
const PASS = 'correct horse battery staple';

describe('passphrase stretching', () => {
  it('happens once per open, not per wrap, unwrap, rotate or reload', async () => {
    const dir = await tmp.dir('keys');
    await initFileKeyring({ dir, passphrase: PASS, kdf: FAST_KDF });
    await addFileKekVersion({ dir, passphrase: PASS });
    await addFileKekVersion({ dir, passphrase: PASS });
    expect(kdf.pbkdf2).toBe(3); // one per administrative call

    kdf.pbkdf2 = 0;
    const p = await createFileProvider({ dir, passphrase: PASS });
    expect(kdf.pbkdf2).toBe(1); // one for three versions
    const keys = Array.from({ length: 50 }, (_, i) => new Uint8Array(32).fill(i));
    const wrapped = await Promise.all(keys.map((k) => p.wrapKey(k, { i: String(k[0]) })));
    await Promise.all(wrapped.map((w, i) => p.unwrapKey(w, { i: String(i) })));
    await p.rotate();
    await p.reload();
    await p.probe();
    expect(kdf.pbkdf2).toBe(1);
    await p.close();
  });

  it('changing the passphrase stretches the old and the new one once each, with the chosen KDF', async () => {
    const dir = await tmp.dir('change');
    await initFileKeyring({ dir, passphrase: PASS, kdf: FAST_KDF });
    kdf.pbkdf2 = 0;
    kdf.scrypt = 0;
    await changeFilePassphrase({ dir, oldPassphrase: PASS, newPassphrase: 'next one', kdf: { name: 'scrypt', N: 1024 } });
    expect(kdf).toEqual({ pbkdf2: 1, scrypt: 1 });
    const p = await createFileProvider({ dir, passphrase: 'next one' });
    expect(kdf).toEqual({ pbkdf2: 1, scrypt: 2 });
    await p.close();
  });
});
