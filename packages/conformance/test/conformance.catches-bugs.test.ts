import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ConformanceError, runProviderCheck, type ConformanceTarget, type ProviderCheckName } from '../src/index.js';
import {
  NaiveProvider,
  OutageProvider,
  ReferenceProvider,
  type NaiveBug,
  type ReferenceBug,
} from './reference-providers.js';

function referenceTarget(bug: ReferenceBug): ConformanceTarget {
  return {
    makeProvider: () => new ReferenceProvider({ bug }),
    rotate: async (p) => {
      await (p as ReferenceProvider).rotate();
      return p;
    },
  };
}

async function expectCheckFails(name: ProviderCheckName, target: ConformanceTarget, message: RegExp): Promise<void> {
  const err: unknown = await runProviderCheck(name, target).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `the "${name}" check must fail`).toBeInstanceOf(ConformanceError);
  expect((err as Error).message).toMatch(message);
}

describe('each check catches the bug it exists for', () => {
  const referenceCases: ReadonlyArray<[ReferenceBug, ProviderCheckName, RegExp]> = [
    ['ignores-context', 'context binding', /must fail with code UNWRAP_FAILED; it succeeded/],
    ['ignores-key-version', 'relabelled wrapped key', /keyVersion changed/],
    ['ignores-key-version', 'rotation', /unwrapKey after rotate of a key wrapped under 1 must succeed/],
    ['rotation-forgets-old-versions', 'rotation', /still list|unwrapKey after rotate/],
    ['rotation-keeps-active', 'rotation', /must activate a new version/],
    ['leaks-plaintext-in-error', 'tampered ciphertext', /contains the data key/],
    ['write-version-falls-back', 'write version', /version 987654321, which the provider cannot write must fail with code KEY_NOT_FOUND; it succeeded/],
  ];
  for (const [bug, check, message] of referenceCases) {
    it(`BaseKeyProvider subclass that ${bug.replaceAll('-', ' ')} fails "${check}"`, async () => {
      // The same provider without the bug passes the same check.
      await runProviderCheck(check, referenceTarget(undefined as unknown as ReferenceBug));
      await expectCheckFails(check, referenceTarget(bug), message);
    });
  }

  const naiveCases: ReadonlyArray<[NaiveBug, ProviderCheckName, RegExp]> = [
    ['returns-cached-key', 'caller buffers', /second unwrapKey after the caller wiped/],
    ['retains-caller-key', 'caller buffers', /changed while the calls were pending/],
    ['raw-crypto-errors', 'tampered ciphertext', /must fail with a KeyfoldError of code UNWRAP_FAILED/],
    ['no-argument-validation', 'argument validation', /31-byte key must reject with TypeError or RangeError; it succeeded/],
    ['close-not-idempotent', 'close', /close\(\) must be idempotent/],
    ['closed-calls-succeed', 'close', /after close\(\) must fail with code PROVIDER_CLOSED; it succeeded/],
    ['shared-scratch-buffer', 'concurrency', /concurrent unwrapKey #\d+ does not hold the expected bytes/],
    ['pooled-key-buffers', 'returned keys own their memory', /view into a larger buffer/],
    ['probe-throws-after-close', 'probe', /never throw/],
    ['claims-rewrap', 'rewrapKey', /capabilities.rewrapKey is true/],
    ['leaves-key-in-clear', 'round trip', /contains the data key in clear/],
  ];
  for (const [bug, check, message] of naiveCases) {
    it(`provider that ${bug.replaceAll('-', ' ')} fails "${check}"`, async () => {
      await runProviderCheck(check, { makeProvider: () => new NaiveProvider() });
      await expectCheckFails(check, { makeProvider: () => new NaiveProvider(bug) }, message);
    });
  }

  it('a makeProvider that reuses one KEK fails "foreign KEK"', async () => {
    const kek = new Uint8Array(randomBytes(32));
    await expectCheckFails('foreign KEK', { makeProvider: () => new ReferenceProvider({ kek }) }, /fresh, independent KEK/);
  });

  it('a provider claiming rotate without a rotate hook fails "rotation"', async () => {
    await expectCheckFails('rotation', { makeProvider: () => new ReferenceProvider() }, /no rotate hook/);
  });

  it('an unmapped backend error fails "backend errors" (it surfaces as INTERNAL, not the expected code)', async () => {
    const target: ConformanceTarget = {
      makeProvider: () => new ReferenceProvider(),
      makeFailingProvider: () => ({ provider: new OutageProvider(false), expectCode: 'UNAVAILABLE' }),
    };
    await expectCheckFails('backend errors', target, /must fail with code UNAVAILABLE; it failed with ProviderError \[INTERNAL\]/);
  });
});
