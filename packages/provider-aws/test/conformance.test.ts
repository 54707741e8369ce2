/**
 * The shared KeyProvider conformance suite, for a symmetric and an RSA KMS key, through the real
 * @aws-sdk/client-kms over HTTP to the emulator.
 */
import { describe, expect, it } from 'vitest';
import { runProviderConformance } from '@keyfold/conformance';
import type { KeyProvider } from '@keyfold/envelope-core';
import { createAwsKmsProvider, type SymmetricKmsProvider } from '../src/index.js';
import { CREDENTIALS, freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();

/**
 * A provider whose access key the emulator denies once the provider exists: every call it makes is
 * AccessDeniedException. Its wrapped key comes from a second provider of the same key with allowed credentials (an
 * RSA provider wraps locally with a cached public key, so the denied one must not have fetched it yet).
 */
let denied = 0;
async function deniedProvider(keySpec: 'SYMMETRIC_DEFAULT' | 'RSA_2048') {
  const meta = await emu.createKey({ keySpec });
  const options = { keyId: meta.Arn, region: emu.region, endpoint: emu.url };
  const allowed = await createAwsKmsProvider({ ...options, credentials: CREDENTIALS });
  const context = { tenant: 'acme' };
  const wrapped = await allowed.wrapKey(randomKey(), context);
  await allowed.close();
  const accessKeyId = `AKIDDENIED${denied++}`;
  const provider = await createAwsKmsProvider({ ...options, credentials: { ...CREDENTIALS, accessKeyId } });
  emu.denyAccessKey(accessKeyId);
  return { provider, expectCode: 'ACCESS_DENIED' as const, wrapped, context };
}

runProviderConformance({
  name: 'aws-kms symmetric (SYMMETRIC_DEFAULT)',
  makeProvider: () => freshProvider(emu),
  rotate: async (p: KeyProvider) => {
    await (p as SymmetricKmsProvider).rotate({ pollMs: 10 });
    return p;
  },
  makeFailingProvider: () => deniedProvider('SYMMETRIC_DEFAULT'),
  describe,
  it,
  expect,
});

runProviderConformance({
  name: 'aws-kms RSA (RSA_2048, local RSAES_OAEP_SHA_256 wrap)',
  makeProvider: () => freshProvider(emu, 'RSA_2048'),
  makeFailingProvider: () => deniedProvider('RSA_2048'),
  describe,
  it,
  expect,
});
