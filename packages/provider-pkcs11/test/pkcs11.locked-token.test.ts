/**
 * A locked token. SoftHSM2 has no user-PIN lockout (it only raises CKF_USER_PIN_COUNT_LOW), so this runs against
 * openCryptoki's soft token, which locks the user PIN after three wrong attempts. Each wrong PIN is tried once
 * (ACCESS_DENIED, CKR_PIN_INCORRECT); once the token has locked itself, even the right PIN is refused by the token
 * with CKR_PIN_LOCKED, surfaced as ACCESS_DENIED with a message that says the PIN is locked and who can unlock it.
 *
 * Debian's openCryptoki 3.8 soft token offers neither CKM_AES_GCM nor CKM_AES_KEY_WRAP_PAD, so a provider is refused
 * by the capability probe before it ever logs in (checked below: a second, independent "missing mechanism" case).
 * The login path is reached through generatePkcs11KekVersion (`keyfold kek add`), which needs only CKM_AES_KEY_GEN and
 * logs in with the same code the provider uses.
 */
import { isKeyfoldError } from '@keyfold/envelope-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPkcs11Provider, generatePkcs11KekVersion, listPkcs11Tokens } from '../src/index.js';
import { OPENCRYPTOKI_LIBRARY, type TestToken } from './helpers/hsm.js';
import { ensureSlotDaemon, resetSoftToken } from './helpers/opencryptoki.js';

let stopDaemon: () => void = () => undefined;
let token: TestToken;
beforeAll(() => {
  stopDaemon = ensureSlotDaemon();
  token = resetSoftToken('keyfold-lock', '13572468');
});
afterAll(() => {
  resetSoftToken('keyfold-lock', '13572468');
  stopDaemon();
});

async function tryPin(pin: string): Promise<Error & { code?: string }> {
  const err = await generatePkcs11KekVersion({ library: OPENCRYPTOKI_LIBRARY, tokenLabel: token.label, pin, keyLabel: 'kek' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error & { code?: string };
}

describe('locked token (openCryptoki soft token)', () => {
  it('a provider is refused before login: the soft token lacks both wrapping mechanisms (CONFIG_INVALID naming them)', async () => {
    const err = await createPkcs11Provider({ library: OPENCRYPTOKI_LIBRARY, tokenLabel: token.label, pin: token.pin, keyLabel: 'kek' }).catch(
      (e: unknown) => e,
    );
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/CKM_AES_GCM is not offered/);
    const kwp = await createPkcs11Provider({
      library: OPENCRYPTOKI_LIBRARY,
      tokenLabel: token.label,
      pin: token.pin,
      keyLabel: 'kek',
      mechanism: 'AES_KEY_WRAP_PAD',
    }).catch((e: unknown) => e);
    expect((kwp as Error).message).toMatch(/CKM_AES_KEY_WRAP_PAD is not offered/);
  });

  it('three wrong PINs lock it; then the right PIN is ACCESS_DENIED saying the PIN is locked (CKR_PIN_LOCKED)', async () => {
    for (const wrong of ['11111111', '22222222', '33333333']) {
      const err = await tryPin(wrong);
      expect(isKeyfoldError(err, 'ACCESS_DENIED')).toBe(true);
      expect(err.message).toMatch(/CKR_PIN_INCORRECT/);
      expect(err.message).not.toContain(wrong);
    }
    const listing = await listPkcs11Tokens({ library: OPENCRYPTOKI_LIBRARY });
    expect(listing.tokens.find((t) => t.label === token.label)?.flags).toContain('USER_PIN_LOCKED');

    const locked = await tryPin(token.pin);
    expect(isKeyfoldError(locked, 'ACCESS_DENIED')).toBe(true);
    expect(locked.message).toMatch(/is locked \(CKR_PIN_LOCKED\)/);
    expect(locked.message).toMatch(/security officer/);
    expect((locked.cause as Error).message).toBe('CKR_PIN_LOCKED');
  });

  it('after the security officer re-initialises the PIN, a new process logs in again (the refusal memory is per process)', () => {
    // The token side only: this process keeps refusing the PIN it saw locked, by design, until it restarts.
    const fresh = resetSoftToken('keyfold-lock', '24681357');
    expect(fresh.pin).toBe('24681357');
  });
});
