/**
 * Failures against real SoftHSM2: missing keys, wrong PINs and PIN sources, tokens and libraries that are not there,
 * KEK objects with unsafe attributes, sessions invalidated behind the provider's back, and the PKCS#11 error behind an
 * UNWRAP_FAILED.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isKeyfoldError, UnwrapFailedError } from '@keyfold/envelope-core';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPkcs11Provider, generatePkcs11KekVersion, listPkcs11Tokens, type Pkcs11Provider } from '../src/index.js';
import { closeAllSessions, createSoftHsm, deleteKey, importKek, SOFTHSM_LIBRARY, uniqueLabel } from './helpers/hsm.js';

const hsm = createSoftHsm();
const token = hsm.token('errors');
const other = hsm.token('errors-other');
const base = { library: SOFTHSM_LIBRARY, tokenLabel: token.label, pin: token.pin } as const;

const open: Pkcs11Provider[] = [];
async function provider(options: Partial<Parameters<typeof createPkcs11Provider>[0]> & { keyLabel: string }): Promise<Pkcs11Provider> {
  const p = await createPkcs11Provider({ ...base, ...options });
  open.push(p);
  return p;
}
afterAll(async () => {
  await Promise.all(open.map((p) => p.close()));
});

async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error & { code?: string };
}

async function newKek(): Promise<string> {
  const keyLabel = uniqueLabel('kek');
  await generatePkcs11KekVersion({ ...base, keyLabel });
  return keyLabel;
}

describe('missing keys', () => {
  it('a label with no key on the token is KEY_NOT_FOUND, naming the label and how to create one', async () => {
    const err = await failure(createPkcs11Provider({ ...base, keyLabel: 'no-such-kek' }));
    expect(isKeyfoldError(err, 'KEY_NOT_FOUND')).toBe(true);
    expect(err.message).toContain('"no-such-kek"');
    expect(err.message).toMatch(/kek add/);
  });

  it('an activeVersion that is not on the token is KEY_NOT_FOUND, listing the versions found', async () => {
    const keyLabel = await newKek();
    const err = await failure(createPkcs11Provider({ ...base, keyLabel, activeVersion: 7 }));
    expect(isKeyfoldError(err, 'KEY_NOT_FOUND')).toBe(true);
    expect(err.message).toMatch(/versions found: 1/);
  });

  it('a KEK deleted from the token while the provider runs is KEY_NOT_FOUND for wrap and unwrap, not UNWRAP_FAILED', async () => {
    const keyLabel = await newKek();
    const p = await provider({ keyLabel });
    const key = new Uint8Array(32).fill(1);
    const wrapped = await p.wrapKey(key, {});
    expect(deleteKey(token, `${keyLabel}.v1`)).toBe(1);
    expect((await failure(p.wrapKey(key, {}))).code).toBe('KEY_NOT_FOUND');
    expect((await failure(p.unwrapKey(wrapped, {}))).code).toBe('KEY_NOT_FOUND');
    const probe = await p.probe();
    expect(probe).toMatchObject({ ok: false, error: { code: 'KEY_NOT_FOUND' } });
  });

  it('a wrapped key naming a version the token never had is the generic UNWRAP_FAILED', async () => {
    const p = await provider({ keyLabel: await newKek() });
    const wrapped = await p.wrapKey(new Uint8Array(32), {});
    const err = await failure(p.unwrapKey({ ...wrapped, keyVersion: '42' }, {}));
    expect(err).toBeInstanceOf(UnwrapFailedError);
    expect(err.message).toBe(UnwrapFailedError.MESSAGE);
  });
});

describe('PINs', () => {
  it('a wrong PIN is ACCESS_DENIED with a message that says it is not retried, and never shows the PIN', async () => {
    const wrong = `${other.pin}0`;
    const err = await failure(createPkcs11Provider({ ...base, tokenLabel: other.label, pin: wrong, keyLabel: 'x' }));
    expect(isKeyfoldError(err, 'ACCESS_DENIED')).toBe(true);
    expect(err.message).toMatch(/CKR_PIN_INCORRECT/);
    expect(err.message).toMatch(/does not retry/);
    expect(err.message).not.toContain(wrong);
    expect((err.cause as Error).message).toBe('CKR_PIN_INCORRECT');
    // SoftHSM2 marks the failed attempt in the token flags; the next failure's message warns about it.
    const listing = await listPkcs11Tokens({ library: SOFTHSM_LIBRARY });
    expect(listing.tokens.find((t) => t.label === other.label)?.flags).toContain('USER_PIN_COUNT_LOW');
  });

  it('pinEnv reads the PIN from the environment, and an unset variable is CONFIG_INVALID naming it', async () => {
    const keyLabel = await newKek();
    const name = `KEYFOLD_TEST_PIN_${process.pid}`;
    const err = await failure(createPkcs11Provider({ library: SOFTHSM_LIBRARY, tokenLabel: token.label, pinEnv: name, keyLabel }));
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toContain(name);
    process.env[name] = token.pin;
    try {
      const p = await createPkcs11Provider({ library: SOFTHSM_LIBRARY, tokenLabel: token.label, pinEnv: name, keyLabel });
      open.push(p);
      expect((await p.probe()).ok).toBe(true);
    } finally {
      delete process.env[name];
    }
  });

  it('pinFile must be private in production mode, and works when it is', async () => {
    const keyLabel = await newKek();
    const dir = mkdtempSync(join(inject('pkcs11TmpRoot'), 'pin-'));
    const file = join(dir, 'pin');
    writeFileSync(file, `${token.pin}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    const opts = { library: SOFTHSM_LIBRARY, tokenLabel: token.label, pinFile: file, keyLabel } as const;
    const err = await failure(createPkcs11Provider({ ...opts, securityMode: 'production' }));
    expect(isKeyfoldError(err, 'INSECURE_PERMISSIONS')).toBe(true);
    expect(err.message).toMatch(/chmod 600/);
    chmodSync(file, 0o600);
    const p = await createPkcs11Provider({ ...opts, securityMode: 'production' });
    open.push(p);
    expect((await p.probe()).ok).toBe(true);
  });

  it('two PIN sources, no PIN source, or both slot and tokenLabel are caller mistakes (TypeError)', async () => {
    const keyLabel = 'k';
    await expect(createPkcs11Provider({ ...base, pinEnv: 'X', keyLabel })).rejects.toThrow(TypeError);
    await expect(createPkcs11Provider({ library: SOFTHSM_LIBRARY, tokenLabel: token.label, keyLabel })).rejects.toThrow(TypeError);
    await expect(createPkcs11Provider({ ...base, slot: 0, keyLabel })).rejects.toThrow(TypeError);
    await expect(createPkcs11Provider({ ...base, keyLabel: 'ends.v2' })).rejects.toThrow(RangeError);
    await expect(createPkcs11Provider({ ...base, keyLabel, sessions: 0 })).rejects.toThrow(RangeError);
  });
});

describe('tokens, libraries and KEK attributes', () => {
  it('a token label that is not there is CONFIG_INVALID listing the tokens found', async () => {
    const err = await failure(createPkcs11Provider({ ...base, tokenLabel: 'nope', keyLabel: 'k' }));
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toContain(JSON.stringify(token.label));
  });

  it('selects the token by slot id as well', async () => {
    const keyLabel = await newKek();
    const listing = await listPkcs11Tokens({ library: SOFTHSM_LIBRARY });
    const slot = Number(listing.tokens.find((t) => t.label === token.label)?.slot);
    const p = await createPkcs11Provider({ library: SOFTHSM_LIBRARY, slot, pin: token.pin, keyLabel });
    open.push(p);
    expect((await p.describe()).details?.slot).toBe(String(slot));
  });

  it('a library that does not load is CONFIG_INVALID', async () => {
    const err = await failure(createPkcs11Provider({ ...base, library: '/nonexistent/libpkcs11.so', keyLabel: 'k' }));
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toContain('/nonexistent/libpkcs11.so');
  });

  it('a KEK that lacks CKA_WRAP/CKA_UNWRAP is refused for AES_KEY_WRAP_PAD, naming the attribute', async () => {
    const keyLabel = uniqueLabel('nowrap');
    importKek(token, `${keyLabel}.v1`, new Uint8Array(32).fill(5), { wrap: false, unwrap: false });
    const gcm = await provider({ keyLabel, mechanism: 'AES_GCM' });
    expect((await gcm.probe()).ok).toBe(true);
    const err = await failure(createPkcs11Provider({ ...base, keyLabel, mechanism: 'AES_KEY_WRAP_PAD' }));
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toMatch(/CKA_WRAP is false/);
    expect(err.message).toMatch(/CKA_UNWRAP is false/);
  });

  it('an AES-128 KEK is refused: Keyfold requires AES-256', async () => {
    const keyLabel = uniqueLabel('short');
    importKek(token, `${keyLabel}.v1`, new Uint8Array(16).fill(5));
    const err = await failure(createPkcs11Provider({ ...base, keyLabel }));
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toMatch(/AES-256/);
  });

  it('two objects with the same version label are CONFIG_INVALID (which one wrapped a key would be ambiguous)', async () => {
    const keyLabel = uniqueLabel('dup');
    importKek(token, `${keyLabel}.v1`, new Uint8Array(32).fill(1));
    importKek(token, `${keyLabel}.v1`, new Uint8Array(32).fill(2));
    const err = await failure(createPkcs11Provider({ ...base, keyLabel }));
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toMatch(/more than one/);
  });
});

describe('sessions invalidated behind the provider', () => {
  it('after C_CloseAllSessions (which also logs the application out) the next calls reopen, log in again and succeed', async () => {
    for (const execution of ['async', 'sync'] as const) {
      for (const mechanism of ['AES_GCM', 'AES_KEY_WRAP_PAD'] as const) {
        const p = await provider({ keyLabel: await newKek(), mechanism, execution, sessions: 3 });
        const keys = Array.from({ length: 8 }, (_, i) => new Uint8Array(32).fill(i + 1));
        const wrapped = await Promise.all(keys.map((k) => p.wrapKey(k, { i: '1' })));
        for (let round = 0; round < 3; round++) {
          closeAllSessions(token);
          const back = await Promise.all(wrapped.map((w) => p.unwrapKey(w, { i: '1' })));
          back.forEach((b, i) => expect(b).toEqual(keys[i]));
        }
        closeAllSessions(token);
        const again = await Promise.all(keys.map((k) => p.wrapKey(k, { i: '2' })));
        expect(again).toHaveLength(keys.length);
        const stats = p.stats();
        expect(stats.recoveries).toBeGreaterThanOrEqual(4);
        expect(stats.pool.discarded).toBeGreaterThanOrEqual(1);
        expect(stats.pool.open).toBeLessThanOrEqual(3);
        closeAllSessions(token);
        expect((await p.probe()).ok).toBe(true);
      }
    }
  });
});

describe('UNWRAP_FAILED keeps the token error as cause', () => {
  it('an AES-GCM tag mismatch inside SoftHSM2 is CKR_GENERAL_ERROR, surfaced as the generic UNWRAP_FAILED', async () => {
    const p = await provider({ keyLabel: await newKek(), mechanism: 'AES_GCM' });
    const wrapped = await p.wrapKey(new Uint8Array(32).fill(4), { a: 'b' });
    const err = await failure(p.unwrapKey(wrapped, { a: 'c' }));
    expect(err).toBeInstanceOf(UnwrapFailedError);
    expect(err.message).toBe(UnwrapFailedError.MESSAGE);
    expect((err.cause as Error).message).toMatch(/CKR_GENERAL_ERROR/);
  });

  it('an RFC 5649 integrity failure inside the token is UNWRAP_FAILED too', async () => {
    const p = await provider({ keyLabel: await newKek(), mechanism: 'AES_KEY_WRAP_PAD' });
    const wrapped = await p.wrapKey(new Uint8Array(32).fill(4), {});
    const ct = new Uint8Array(wrapped.ciphertext);
    ct[5] = (ct[5] as number) ^ 1;
    const err = await failure(p.unwrapKey({ ...wrapped, ciphertext: ct }, {}));
    expect(err).toBeInstanceOf(UnwrapFailedError);
    expect((err.cause as Error).message).toMatch(/^CKR_/);
  });
});
