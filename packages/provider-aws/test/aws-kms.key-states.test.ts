/**
 * Key states as AWS KMS documents them ("Key states of AWS KMS keys", key-state.html; multi-region-update.html for
 * Updating), through the real SDK: the emulator answers each state as the key state table says, and the provider
 * maps each to its code with a message that says what to do.
 */
import { DescribeKeyCommand, DisableKeyCommand, EnableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import type { KeyState } from '@keyfold/emulators';
import { CREDENTIALS, freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();
const sdk = new KMSClient({ region: emu.region, endpoint: emu.url, credentials: CREDENTIALS, maxAttempts: 1 });
afterAll(() => sdk.destroy());

const fast = { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: false as const };

/** What wrap and unwrap report for a key in each state that refuses cryptographic operations. */
const REFUSED: readonly { state: KeyState; code: string; says: RegExp; sdkError: string }[] = [
  { state: 'Disabled', code: 'KEY_DISABLED', says: /disabled.*enable/i, sdkError: 'DisabledException' },
  { state: 'PendingDeletion', code: 'KEY_DISABLED', says: /pending deletion.*cancel-key-deletion/i, sdkError: 'KMSInvalidStateException' },
  { state: 'PendingImport', code: 'KEY_DISABLED', says: /no key material.*import-key-material/i, sdkError: 'KMSInvalidStateException' },
  { state: 'Unavailable', code: 'UNAVAILABLE', says: /custom key store is disconnected.*connect-custom-key-store/i, sdkError: 'KMSInvalidStateException' },
  { state: 'Creating', code: 'UNAVAILABLE', says: /transient multi-Region state/i, sdkError: 'KMSInvalidStateException' },
];

describe('aws-kms key states', () => {
  for (const { state, code, says, sdkError } of REFUSED) {
    it(`${state}: wrap and unwrap fail with ${code}, naming the state and the remedy; the SDK error is the cause`, async () => {
      const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { resilience: fast });
      const wrapped = await provider.wrapKey(randomKey(), { s: state });
      emu.setKeyState(provider.keyId, state);
      for (const call of [() => provider.wrapKey(randomKey(), {}), () => provider.unwrapKey(wrapped, { s: state })]) {
        const err = await keyfoldRejectionOf(call());
        expect(err.code).toBe(code);
        expect(err.message).toMatch(says);
        expect(err.message).toContain(provider.keyId);
        expect((err.cause as Error).name).toBe(sdkError);
      }
      // Back to Enabled, the same wrapped key opens again.
      emu.setKeyState(provider.keyId, 'Enabled');
      expect(await provider.unwrapKey(wrapped, { s: state })).toHaveLength(32);
      await provider.close();
    });
  }

  it('Updating: cryptographic operations still work, enabling or disabling is refused (KMSInvalidStateException)', async () => {
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { resilience: fast });
    emu.setKeyState(provider.keyId, 'Updating');
    const wrapped = await provider.wrapKey(randomKey(), { u: '1' });
    expect(await provider.unwrapKey(wrapped, { u: '1' })).toHaveLength(32);
    for (const command of [new DisableKeyCommand({ KeyId: provider.keyId }), new EnableKeyCommand({ KeyId: provider.keyId })]) {
      const err = await sdk.send(command).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.name).toBe('KMSInvalidStateException');
      expect(err?.message).toMatch(/is updating\.$/);
    }
    await provider.close();
  });

  it('Unavailable and Creating are retried as outages (the shared policy makes maxAttempts calls); pending states are not', async () => {
    for (const [state, calls] of [['Unavailable', 2], ['Creating', 2], ['PendingImport', 1], ['PendingDeletion', 1]] as const) {
      const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { resilience: fast });
      emu.setKeyState(provider.keyId, state);
      emu.resetCounters();
      await keyfoldRejectionOf(provider.wrapKey(randomKey(), {}));
      expect(emu.counters.byOperation.Encrypt).toBe(calls);
      await provider.close();
    }
  });

  it('DescribeKey reports the state; an unknown state is refused by the test hook', async () => {
    const meta = await emu.createKey();
    emu.setKeyState(meta.KeyId, 'PendingImport');
    const d = await sdk.send(new DescribeKeyCommand({ KeyId: meta.KeyId }));
    expect(d.KeyMetadata?.KeyState).toBe('PendingImport');
    expect(d.KeyMetadata?.Enabled).toBe(false);
    expect(() => emu.setKeyState(meta.KeyId, 'Sleeping' as KeyState)).toThrow(RangeError);
  });
});
