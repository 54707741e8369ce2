/**
 * A wrong PIN is tried once, never again: counted at the PKCS#11 boundary by OpenSC's pkcs11-spy, which sits between
 * the provider and SoftHSM2 and records every call the provider makes (no mock: the real calls reach the real token).
 * This file loads SoftHSM2 only through the spy, so the spy sees every call of the process.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isKeyfoldError } from '@keyfold/envelope-core';
import { describe, expect, inject, it } from 'vitest';
import { createPkcs11Provider, generatePkcs11KekVersion } from '../src/index.js';
import { createSoftHsm, PKCS11_SPY_LIBRARY, SOFTHSM_LIBRARY, uniqueLabel } from './helpers/hsm.js';

const hsm = createSoftHsm();
const token = hsm.token('spied');
// The spy log holds the PINs it saw (test PINs, random per run); it lives in the run's temp root, removed at the end.
const spyDir = mkdtempSync(join(inject('pkcs11TmpRoot'), 'spy-'));
const spyLog = join(spyDir, 'calls.log');
process.env.PKCS11SPY = SOFTHSM_LIBRARY;
process.env.PKCS11SPY_OUTPUT = spyLog;

/** C_Login calls recorded so far, with their results. */
function logins(): string[] {
  let text: string;
  try {
    text = readFileSync(spyLog, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  const re = /^\d+: C_Login\n[\s\S]*?^Returned:\s+\d+ (\w+)/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] as string);
  return out;
}

const opts = { library: PKCS11_SPY_LIBRARY, tokenLabel: token.label } as const;

describe('wrong PIN, counted by pkcs11-spy', () => {
  it('is attempted exactly once, even with retries configured, and the same PIN is never tried again', async () => {
    const keyLabel = uniqueLabel('kek');
    await generatePkcs11KekVersion({ ...opts, pin: token.pin, keyLabel });
    const before = logins();
    expect(before).toEqual(['CKR_OK']);

    const wrong = `${token.pin}!`;
    const resilience = { retry: { maxAttempts: 5, baseDelayMs: 1 }, deadlineMs: 10_000 };
    const first = await createPkcs11Provider({ ...opts, pin: wrong, keyLabel, resilience }).catch((e: unknown) => e);
    expect(isKeyfoldError(first, 'ACCESS_DENIED')).toBe(true);
    expect(logins()).toEqual(['CKR_OK', 'CKR_PIN_INCORRECT']);

    // A service that re-creates its provider in a loop does not walk the token into a lockout.
    for (let i = 0; i < 3; i++) {
      const again = await createPkcs11Provider({ ...opts, pin: wrong, keyLabel, resilience }).catch((e: unknown) => e);
      expect(isKeyfoldError(again, 'ACCESS_DENIED')).toBe(true);
      expect((again as Error).message).toMatch(/CKR_PIN_INCORRECT/);
    }
    expect(logins()).toEqual(['CKR_OK', 'CKR_PIN_INCORRECT']);

    // The right PIN is a different PIN: it is tried, and works.
    const ok = await createPkcs11Provider({ ...opts, pin: token.pin, keyLabel, resilience });
    try {
      expect((await ok.probe()).ok).toBe(true);
      expect(logins()).toEqual(['CKR_OK', 'CKR_PIN_INCORRECT', 'CKR_OK']);
      expect(ok.resilienceStats()?.retries).toBe(0);
    } finally {
      await ok.close();
    }
  });
});
