/**
 * 500 concurrent wraps (and their unwraps) across a pool of 4 sessions on libuv's threads: no CKR_OPERATION_ACTIVE
 * (every call succeeds with its own result), no crash (the library runs with CKF_OS_LOCKING_OK), never more than 4
 * sessions, and no session had to be recovered.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPkcs11Provider, generatePkcs11KekVersion } from '../src/index.js';
import { createSoftHsm, SOFTHSM_LIBRARY, uniqueLabel } from './helpers/hsm.js';

const hsm = createSoftHsm();
const token = hsm.token('concurrency');
const N = 500;
const POOL = 4;

describe('500 concurrent operations across the session pool', () => {
  for (const mechanism of ['AES_GCM', 'AES_KEY_WRAP_PAD'] as const) {
    it(`${mechanism}: all wraps and unwraps succeed with their own results on at most ${POOL} sessions`, async () => {
      const keyLabel = uniqueLabel('kek');
      const base = { library: SOFTHSM_LIBRARY, tokenLabel: token.label, pin: token.pin, keyLabel };
      await generatePkcs11KekVersion(base);
      const p = await createPkcs11Provider({ ...base, mechanism, sessions: POOL, execution: 'async' });
      try {
        const keys = Array.from({ length: N }, () => new Uint8Array(randomBytes(32)));
        const wrapped = await Promise.all(keys.map((k, i) => p.wrapKey(k, { i: String(i) })));
        expect(new Set(wrapped.map((w) => Buffer.from(w.ciphertext).toString('hex'))).size).toBe(N);
        const [back, fresh] = await Promise.all([
          Promise.all(wrapped.map((w, i) => p.unwrapKey(w, { i: String(i) }))),
          Promise.all(keys.map(async (k, i) => p.unwrapKey(await p.wrapKey(k, { j: String(i) }), { j: String(i) }))),
        ]);
        back.forEach((b, i) => expect(b).toEqual(keys[i]));
        fresh.forEach((b, i) => expect(b).toEqual(keys[i]));
        const s = p.stats();
        expect(s.recoveries).toBe(0);
        expect(s.pool.discarded).toBe(0);
        expect(s.pool.opened).toBeLessThanOrEqual(POOL);
        expect(s.pool.peakBusy).toBeLessThanOrEqual(POOL);
        expect(s.pool.peakWaiting).toBeGreaterThan(0);
        expect(s.pool.busy).toBe(0);
      } finally {
        await p.close();
      }
    });
  }

  it('close() while calls are in flight waits for them, refuses the queued ones with PROVIDER_CLOSED, and does not crash', async () => {
    const keyLabel = uniqueLabel('kek');
    const base = { library: SOFTHSM_LIBRARY, tokenLabel: token.label, pin: token.pin, keyLabel };
    await generatePkcs11KekVersion(base);
    const p = await createPkcs11Provider({ ...base, sessions: 2 });
    const calls = Array.from({ length: 50 }, () => p.wrapKey(new Uint8Array(randomBytes(32)), {}));
    const settled = Promise.allSettled(calls);
    await p.close();
    const results = await settled;
    const codes = new Set(results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code)));
    expect([...codes].every((c) => c === 'ok' || c === 'PROVIDER_CLOSED')).toBe(true);
    expect(codes.has('ok')).toBe(true);
    expect(p.stats().pool.open).toBe(0);
  });
});
