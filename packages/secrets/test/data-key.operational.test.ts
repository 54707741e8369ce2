/**
 * A provider's operational failure while opening the file data key (backend or setup problem the operator can act
 * on) surfaces as itself from decryptSecrets / updateKeys; every other failure is the one DECRYPT_FAILED.
 */
import { describe, expect, it } from 'vitest';
import { KeyfoldError, type KeyfoldErrorCode, type KeyProvider } from '@keyfold/envelope-core';
import { decryptSecrets, encryptSecrets, updateKeys } from '../src/index.js';
import { envProvider, policy } from './helpers.js';

const OPERATIONAL_CODES: readonly KeyfoldErrorCode[] = [
  'THROTTLED',
  'UNAVAILABLE',
  'TIMEOUT',
  'ACCESS_DENIED',
  'KEY_NOT_FOUND',
  'KEY_DISABLED',
  'KEY_VERSION_RETIRED',
  'PROVIDER_CLOSED',
  'CONFIG_INVALID',
  'POLICY_VIOLATION',
  'INSECURE_PERMISSIONS',
];
const NON_OPERATIONAL_CODES: readonly KeyfoldErrorCode[] = ['UNWRAP_FAILED', 'INTEGRITY_FAILED', 'FORMAT_INVALID', 'INTERNAL'];

/** The same provider identity as `real`, whose unwrap fails with `error`. */
function failingUnwrap(real: KeyProvider, error: Error): KeyProvider {
  return {
    kind: real.kind,
    keyId: real.keyId,
    protection: real.protection,
    wrapKey: (k, c) => real.wrapKey(k, c),
    unwrapKey: () => Promise.reject(error),
    describe: () => real.describe(),
    probe: () => real.probe(),
    close: () => Promise.resolve(),
  };
}

describe('opening the file data key', () => {
  const real = envProvider('OPERATIONAL_V');
  const sealed = encryptSecrets('A=1\nB=two\n', { format: 'dotenv', providers: [real], policy }).then((r) => r.content);
  const routes = [
    { name: 'decryptSecrets', run: async (p: KeyProvider) => decryptSecrets(await sealed, { format: 'dotenv', providers: [p], policy }) },
    { name: 'updateKeys', run: async (p: KeyProvider) => updateKeys(await sealed, { format: 'dotenv', providers: [p], to: [real], policy }) },
  ];

  describe.each(routes)('$name', ({ run }) => {
    it.each(OPERATIONAL_CODES)('%s from the provider surfaces as itself', async (code) => {
      const thrown = new KeyfoldError(code, `backend says ${code}`);
      await expect(run(failingUnwrap(real, thrown))).rejects.toBe(thrown);
    });

    it.each(NON_OPERATIONAL_CODES)('%s from the provider becomes DECRYPT_FAILED', async (code) => {
      await expect(run(failingUnwrap(real, new KeyfoldError(code, 'detail')))).rejects.toMatchObject({
        code: 'DECRYPT_FAILED',
        message: 'decryption failed',
      });
    });
  });
});
