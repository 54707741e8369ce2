/**
 * Test wiring: one AWS KMS emulator per test file (started here, closed after the file), and providers made through
 * the real SDK client talking HTTP to it.
 */
import { afterAll } from 'vitest';
import { startAwsKmsEmulator, type AwsKmsEmulator, type KeySpec } from '@keyfold/emulators';
import { createAwsKmsProvider, type AwsKmsProvider, type AwsKmsProviderOptions } from '../src/index.js';

export const CREDENTIALS = { accessKeyId: 'AKIDKEYFOLDTEST', secretAccessKey: 'emulator-does-not-check' };

/** Starts an emulator for this test file; closed in afterAll. */
export async function kmsEmulator(): Promise<AwsKmsEmulator> {
  const emu = await startAwsKmsEmulator({ port: 0 });
  afterAll(() => emu.close());
  return emu;
}

/** A provider for a fresh key of `keySpec` in `emu`. */
export async function freshProvider(
  emu: AwsKmsEmulator,
  keySpec: KeySpec = 'SYMMETRIC_DEFAULT',
  options: Partial<AwsKmsProviderOptions> = {},
): Promise<AwsKmsProvider> {
  const meta = await emu.createKey({ keySpec });
  return createAwsKmsProvider({
    keyId: meta.Arn,
    region: emu.region,
    endpoint: emu.url,
    credentials: CREDENTIALS,
    ...options,
  });
}

export function randomKey(): Uint8Array {
  return new Uint8Array(crypto.getRandomValues(new Uint8Array(32)));
}
