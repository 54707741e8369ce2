/**
 * A token that lacks a mechanism: SoftHSM2's own `slots.mechanisms` policy (an allow-list in this test process's
 * softhsm2.conf; SoftHSM2 2.6.1 ignores the documented "-CKM_..." deny form) leaves CKM_AES_GCM out of every token, as
 * an HSM's firmware or policy would. The capability probe refuses
 * before first use, naming what is missing; the other mode still works.
 */
import { isKeyfoldError } from '@keyfold/envelope-core';
import { describe, expect, it } from 'vitest';
import { createPkcs11Provider, generatePkcs11KekVersion, listPkcs11Tokens } from '../src/index.js';
import { createSoftHsm, SOFTHSM_LIBRARY } from './helpers/hsm.js';

const hsm = createSoftHsm('CKM_AES_KEY_GEN,CKM_AES_KEY_WRAP_PAD,CKM_AES_CBC,CKM_AES_ECB');
const token = hsm.token('no-gcm');
const base = { library: SOFTHSM_LIBRARY, tokenLabel: token.label, pin: token.pin, keyLabel: 'kek' } as const;

describe('missing mechanism', () => {
  it('listPkcs11Tokens shows the token without CKM_AES_GCM and says which mode lacks what', async () => {
    const listing = await listPkcs11Tokens({ library: SOFTHSM_LIBRARY });
    const t = listing.tokens.find((x) => x.label === token.label);
    expect(t).toBeDefined();
    expect(t?.mechanisms.map((m) => m.name)).not.toContain('CKM_AES_GCM');
    expect(t?.mechanisms.find((m) => m.name === 'CKM_AES_KEY_WRAP_PAD')?.flags).toEqual(['WRAP', 'UNWRAP']);
    expect(t?.modes.AES_GCM).toEqual(['CKM_AES_GCM is not offered by the token (needed for wrapping data keys with AES_GCM)']);
    expect(t?.modes.AES_KEY_WRAP_PAD).toEqual([]);
    expect(t?.keyGeneration).toEqual([]);
    expect(listing.manufacturer).toMatch(/SoftHSM/);
  });

  it('an AES_GCM provider is refused with CONFIG_INVALID naming CKM_AES_GCM, before any key operation', async () => {
    await generatePkcs11KekVersion(base);
    const err = await createPkcs11Provider({ ...base, mechanism: 'AES_GCM' }).catch((e: unknown) => e);
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/lacks what Keyfold needs: CKM_AES_GCM is not offered by the token/);
  });

  it('an AES_KEY_WRAP_PAD provider on the same token works', async () => {
    const p = await createPkcs11Provider({ ...base, mechanism: 'AES_KEY_WRAP_PAD' });
    try {
      const key = new Uint8Array(32).fill(8);
      const wrapped = await p.wrapKey(key, { t: '1' });
      expect(await p.unwrapKey(wrapped, { t: '1' })).toEqual(key);
      const probe = await p.probe();
      expect(probe.ok).toBe(true);
      expect(String(probe.details?.aesMechanisms)).not.toMatch(/CKM_AES_GCM(,|$)/);
    } finally {
      await p.close();
    }
  });
});
