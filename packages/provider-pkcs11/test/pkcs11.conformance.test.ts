/**
 * The shared KeyProvider conformance suite against real SoftHSM2, in both wrapping modes and both execution modes.
 * Every makeProvider call creates a fresh KEK inside the token (generatePkcs11KekVersion); rotate creates the next
 * version in the token; the failing backend is a real one: the user PIN is changed on the token and every session
 * is closed behind the provider's back, so its re-login is refused (ACCESS_DENIED) and never retried.
 */
import { runProviderConformance } from '@keyfold/conformance';
import { describe, expect, it } from 'vitest';
import {
  createPkcs11Provider,
  generatePkcs11KekVersion,
  type Pkcs11Execution,
  type Pkcs11Provider,
  type Pkcs11WrapMechanism,
} from '../src/index.js';
import { closeAllSessions, createSoftHsm, SOFTHSM_LIBRARY, uniqueLabel, withRawSession, type TestToken } from './helpers/hsm.js';

const hsm = createSoftHsm();
const token = hsm.token('conformance');
const variants: ReadonlyArray<{ mechanism: Pkcs11WrapMechanism; execution: Pkcs11Execution }> = [
  { mechanism: 'AES_GCM', execution: 'async' },
  { mechanism: 'AES_KEY_WRAP_PAD', execution: 'async' },
  { mechanism: 'AES_GCM', execution: 'sync' },
  { mechanism: 'AES_KEY_WRAP_PAD', execution: 'sync' },
];
// One token per failing backend: its PIN gets changed.
const failingTokens = new Map(variants.map((v) => [v, hsm.token(uniqueLabel('fail').slice(0, 32))]));

async function freshProvider(t: TestToken, mechanism: Pkcs11WrapMechanism, execution: Pkcs11Execution): Promise<Pkcs11Provider> {
  const keyLabel = uniqueLabel('kek');
  await generatePkcs11KekVersion({ library: SOFTHSM_LIBRARY, tokenLabel: t.label, pin: t.pin, keyLabel });
  return createPkcs11Provider({ library: SOFTHSM_LIBRARY, tokenLabel: t.label, pin: t.pin, keyLabel, mechanism, execution, sessions: 4 });
}

for (const v of variants) {
  const failingToken = failingTokens.get(v) as TestToken;
  runProviderConformance({
    name: `pkcs11 ${v.mechanism} (${v.execution}) on SoftHSM2`,
    makeProvider: () => freshProvider(token, v.mechanism, v.execution),
    rotate: async (p) => {
      await (p as Pkcs11Provider).rotate();
      return p;
    },
    makeFailingProvider: async () => {
      const provider = await freshProvider(failingToken, v.mechanism, v.execution);
      const context = { tenant: 'acme' };
      const key = new Uint8Array(32).fill(7);
      const wrapped = await provider.wrapKey(key, context);
      const newPin = `${failingToken.pin}x`;
      withRawSession(failingToken, (s) => s.setPin(failingToken.pin, newPin));
      closeAllSessions(failingToken);
      return { provider, expectCode: 'ACCESS_DENIED', wrapped, context };
    },
    describe,
    it,
    expect,
  });
}
