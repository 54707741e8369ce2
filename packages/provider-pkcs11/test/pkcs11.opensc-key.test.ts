/**
 * Keys made by OpenSC's pkcs11-tool, the way an operator provisions an HSM (not by our code), are found by label and
 * used; a key with unsafe attributes is refused with a message that names the attribute.
 */
import { isKeyfoldError } from '@keyfold/envelope-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createPkcs11Provider, generatePkcs11KekVersion, type Pkcs11Provider } from '../src/index.js';
import { createSoftHsm, pkcs11Tool, SOFTHSM_LIBRARY, toolKeygen } from './helpers/hsm.js';

const hsm = createSoftHsm();
const token = hsm.token('opensc');
// Made before the library is loaded by this process, by another process: exactly what an operator does.
toolKeygen(token, 'payments');
toolKeygen(token, 'billing.v1');
// SoftHSM2 leaves wrap/unwrap on whatever usage flags pkcs11-tool asks for, so this one is restricted at runtime by
// CKA_ALLOWED_MECHANISMS instead: the token itself refuses RFC 5649 with it (CKR_MECHANISM_INVALID).
toolKeygen(token, 'gcm-only.v1', ['--sensitive', '--private', '--allowed-mechanisms', 'AES-GCM']);
toolKeygen(token, 'leaky.v1', ['--private', '--extractable']);

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

describe('keys made by pkcs11-tool', () => {
  it('the tool lists the key it made as sensitive and never extractable', () => {
    const listing = pkcs11Tool(token, ['--list-objects', '--type', 'secrkey']);
    expect(listing).toContain('label:      payments');
    expect(listing).toMatch(/sensitive, always sensitive, never extractable/);
  });

  it('adopts a key labelled exactly <keyLabel> as version 0 and wraps and unwraps with it in both modes', async () => {
    for (const mechanism of ['AES_GCM', 'AES_KEY_WRAP_PAD'] as const) {
      const p = await provider({ keyLabel: 'payments', mechanism });
      const d = await p.describe();
      expect(d.activeVersion).toBe('0');
      expect(d.versions).toEqual(['0']);
      expect(d.protection).toBe('hsm');
      expect(d.details?.activeObjectLabel).toBe('payments');
      const key = new Uint8Array(32).map((_, i) => i);
      const wrapped = await p.wrapKey(key, { app: 'ledger' });
      expect(wrapped).toMatchObject({ kind: 'pkcs11', keyId: 'payments', keyVersion: '0' });
      expect(await p.unwrapKey(wrapped, { app: 'ledger' })).toEqual(key);
    }
  });

  it('finds a tool-made <keyLabel>.v1, then a version added by generatePkcs11KekVersion becomes active and v1 still unwraps', async () => {
    const p1 = await provider({ keyLabel: 'billing' });
    expect((await p1.describe()).activeVersion).toBe('1');
    const key = new Uint8Array(32).fill(9);
    const w1 = await p1.wrapKey(key, {});
    const added = await generatePkcs11KekVersion({ ...base, keyLabel: 'billing' });
    expect(added).toMatchObject({ version: '2', objectLabel: 'billing.v2', versions: ['1', '2'], tokenLabel: token.label });
    // A provider opened before the new version keeps its active version, but sees the new one when asked.
    expect((await p1.describe()).versions).toEqual(['1', '2']);
    expect((await p1.describe()).activeVersion).toBe('1');
    const p2 = await provider({ keyLabel: 'billing' });
    expect((await p2.describe()).activeVersion).toBe('2');
    const w2 = await p2.wrapKey(key, {});
    expect(w2.keyVersion).toBe('2');
    expect(await p2.unwrapKey(w1, {})).toEqual(key);
    // The older provider unwraps keys made under the version it has not used yet (found by label on the token).
    expect(await p1.unwrapKey(w2, {})).toEqual(key);
    // The tool agrees that the version we generated never leaves the token.
    expect(pkcs11Tool(token, ['--list-objects', '--type', 'secrkey'])).toMatch(/label:\s+billing\.v2[\s\S]*?never extractable/);
  });

  it('pins the active version with activeVersion', async () => {
    const p = await provider({ keyLabel: 'billing', activeVersion: 1 });
    expect((await p.wrapKey(new Uint8Array(32), {})).keyVersion).toBe('1');
  });

  it('maps the token refusing the mechanism for a key (CKR_MECHANISM_INVALID) to CONFIG_INVALID, in wrap and unwrap', async () => {
    const gcm = await provider({ keyLabel: 'gcm-only', mechanism: 'AES_GCM' });
    const key = new Uint8Array(32).fill(3);
    const wrapped = await gcm.wrapKey(key, {});
    expect(await gcm.unwrapKey(wrapped, {})).toEqual(key);
    const kwp = await provider({ keyLabel: 'gcm-only', mechanism: 'AES_KEY_WRAP_PAD' });
    const err = await kwp.wrapKey(key, {}).catch((e: unknown) => e);
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/CKR_MECHANISM_INVALID/);
    expect((err as Error).message).toMatch(/CKA_ALLOWED_MECHANISMS/);
    expect(((err as Error).cause as Error).message).toMatch(/CKR_MECHANISM_INVALID/);
    // The KWP-mode provider still opens AES-GCM wrapped keys (the format byte says which mode made them).
    expect(await kwp.unwrapKey(wrapped, {})).toEqual(key);
  });

  it('refuses an extractable, non-sensitive key: the KEK must never leave the token', async () => {
    const err = await createPkcs11Provider({ ...base, keyLabel: 'leaky' }).catch((e: unknown) => e);
    expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/CKA_EXTRACTABLE is true/);
    expect((err as Error).message).toMatch(/CKA_SENSITIVE is false/);
    expect((err as Error).message).not.toContain(token.pin);
  });
});
