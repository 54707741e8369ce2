/**
 * Operational provider failures during unwrap surface as themselves from `open`, `openStream` and `rewrap`, so an
 * operator sees "access denied" or "bad configuration" instead of "this data was tampered with"; every other unwrap
 * failure is the one generic DECRYPT_FAILED (the decryption-oracle rule).
 */
import { describe, expect, it } from 'vitest';
import {
  createEnvelope,
  isOperationalCode,
  KeyfoldError,
  ProviderError,
  type KeyfoldErrorCode,
  type KeyProvider,
  type ProbeResult,
  type ProviderDescription,
  type WrappedKey,
} from '../src/index.js';
import { expectKeyfold, LocalKekProvider, runTransform } from './helpers.js';

/** Problems with the backend or the setup, not with the ciphertext: the operator can act on each of them. */
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

/** Codes that say something about the data (or nothing at all): they must never leak out of an unwrap. */
const NON_OPERATIONAL_CODES: readonly KeyfoldErrorCode[] = [
  'DECRYPT_FAILED',
  'UNWRAP_FAILED',
  'FORMAT_INVALID',
  'FORMAT_UNSUPPORTED',
  'LIMIT_EXCEEDED',
  'CONTEXT_MISMATCH',
  'INTEGRITY_FAILED',
  'WRONG_PASSPHRASE',
  'INTERNAL',
];

const KEY_ID = 'kek-operational';

/** A KeyProvider written by hand (not on BaseKeyProvider) whose unwrap throws `error`. */
function rawFailingProvider(error: Error): KeyProvider {
  const description: ProviderDescription = {
    kind: 'test',
    keyId: KEY_ID,
    protection: 'software',
    activeVersion: '1',
    versions: ['1'],
    capabilities: { generateDataKey: false, rewrapKey: false, rotate: false },
  };
  return {
    kind: 'test',
    keyId: KEY_ID,
    protection: 'software',
    wrapKey: (): Promise<WrappedKey> => Promise.reject(new Error('not used')),
    unwrapKey: (): Promise<Uint8Array> => Promise.reject(error),
    describe: () => Promise.resolve(description),
    probe: (): Promise<ProbeResult> => Promise.resolve({ kind: 'test', keyId: KEY_ID, ok: false, latencyMs: 0 }),
    close: () => Promise.resolve(),
  };
}

/** A BaseKeyProvider whose backend throws `error` on unwrap (resilience off: no retries, no breaker). */
function baseFailingProvider(error: Error): KeyProvider {
  const p = new LocalKekProvider({ keyId: KEY_ID, resilience: false });
  p.beforeUnwrap = () => Promise.reject(error);
  return p;
}

const sealer = new LocalKekProvider({ keyId: KEY_ID });
const sealedOnce = createEnvelope({ providers: [sealer] }).seal('payroll', { table: 't' });
const streamedOnce = runTransform(createEnvelope({ providers: [sealer], frameSize: 16 }).sealStream({ table: 't' }), [
  new TextEncoder().encode('a framed body of several frames'),
]);

/** The three ways to reach a provider's unwrap through an envelope. */
const routes: readonly { name: string; run: (provider: KeyProvider) => Promise<unknown> }[] = [
  { name: 'open', run: async (p) => createEnvelope({ providers: [p] }).open(await sealedOnce) },
  { name: 'openStream', run: async (p) => runTransform(createEnvelope({ providers: [p] }).openStream(), [await streamedOnce]) },
  { name: 'rewrap', run: async (p) => createEnvelope({ providers: [p] }).rewrap(await sealedOnce, { to: [sealer] }) },
];

const providerShapes = [
  { shape: 'a BaseKeyProvider', make: baseFailingProvider },
  { shape: 'a hand-written KeyProvider', make: rawFailingProvider },
] as const;

describe.each(routes)('$name', ({ run }) => {
  describe.each(providerShapes)('unwrap by $shape', ({ make }) => {
    it.each(OPERATIONAL_CODES)('an operational %s surfaces as itself, same object', async (code) => {
      const thrown = new ProviderError(code, `backend says ${code}`);
      const err = await expectKeyfold(() => run(make(thrown)), code);
      expect(err).toBe(thrown);
    });

    it.each(NON_OPERATIONAL_CODES)('%s becomes the one generic DECRYPT_FAILED', async (code) => {
      const err = await expectKeyfold(() => run(make(new KeyfoldError(code, `secret detail about ${code}`))), 'DECRYPT_FAILED');
      expect(err.message).toBe('decryption failed');
    });

    it('an uncoded error becomes DECRYPT_FAILED', async () => {
      const err = await expectKeyfold(() => run(make(new Error('socket said the key bytes were 0x41...'))), 'DECRYPT_FAILED');
      expect(err.message).toBe('decryption failed');
    });
  });
});

describe('isOperationalCode: the one table', () => {
  it('is true for exactly the operational codes', () => {
    for (const code of OPERATIONAL_CODES) expect(isOperationalCode(code)).toBe(true);
    for (const code of [...NON_OPERATIONAL_CODES, 'NO_PROVIDER', 'PROVIDER_MISMATCH', 'ALREADY_EXISTS'] as const) {
      expect(isOperationalCode(code)).toBe(false);
    }
  });

  it('fails closed for a code it does not know (or an inherited property name)', () => {
    expect(isOperationalCode('NOT_A_CODE' as KeyfoldErrorCode)).toBe(false);
    expect(isOperationalCode('toString' as KeyfoldErrorCode)).toBe(false);
  });
});
