/**
 * Fault injection through the emulator: 429 and 5xx are retried by Keyfold's shared resilience; an outage opens the
 * circuit breaker and calls fail fast; a sealed Vault is UNAVAILABLE; a server slower than the deadline gives TIMEOUT.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf, sealAndOpenMany } from '@keyfold/conformance';
import { createEnvelope, isKeyfoldError } from '@keyfold/envelope-core';
import { freshProvider, randomKey, vaultEmulator } from './helpers.js';

const emu = await vaultEmulator();
afterEach(() => {
  emu.faults.clear();
  emu.unseal();
});

describe('vault-transit under faults', () => {
  // The 1,000-envelope workload on a plain key (encrypt / decrypt), and a shorter one on a derived key (datakey).
  for (const [derivedKey, count] of [[false, 1000], [true, 200]] as const) {
    it(`30% throttling and 10% 5xx: every seal and open of ${count} envelopes succeeds (${derivedKey ? 'derived' : 'plain'} key)`, async () => {
      // 40% of attempts fail: the retry policy is sized for that rate (see the AWS test for the arithmetic).
      const provider = await freshProvider(emu, {
        derivedKey,
        resilience: { retry: { maxAttempts: 20, baseDelayMs: 1, maxDelayMs: 20 }, circuitBreaker: { failureThreshold: 60 }, deadlineMs: 30_000 },
      });
      const envelope = createEnvelope({ providers: [provider], cache: false });
      // Retry-After 0: the volume run checks the retry loop, not the waits (vault-transit.retry-after.test.ts does those).
      emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1, retryAfterSeconds: { min: 0, max: 0 }, seed: 1 });
      emu.resetCounters();
      expect(await sealAndOpenMany(envelope, count, 32)).toBe(count);
      const c = emu.counters;
      expect(c.throttled).toBeGreaterThan(0);
      expect(c.serverErrors).toBeGreaterThan(0);
      expect(c.served).toBe(2 * count);
      // Derived keys seal through datakey (native generateDataKey); plain keys through encrypt.
      expect(c.byOperation[derivedKey ? 'datakey' : 'encrypt']! + c.byOperation.decrypt!).toBe(c.requests);
      const stats = provider.resilienceStats()!;
      expect(stats.failures).toBe(0);
      expect(stats.retries).toBe(c.throttled + c.serverErrors);
      await envelope.close();
      await provider.close();
    }, 120_000); // thousands of calls with 40% of attempts failing can pass 30 s on a busy machine: a limit, not a timing check
  }

  it('service down: UNAVAILABLE, then the breaker opens and fails fast, and recovers when it is back', async () => {
    const provider = await freshProvider(emu, {
      resilience: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: { failureThreshold: 2, resetAfterMs: 50 } },
    });
    const key = randomKey();
    const wrapped = await provider.wrapKey(key, { a: '1' });
    emu.faults.set({ outage: true });
    for (let i = 0; i < 2; i++) {
      const err = await keyfoldRejectionOf(provider.unwrapKey(wrapped, { a: '1' }));
      expect(err.code).toBe('UNAVAILABLE');
      expect((err.cause as Error).name).toBe('VaultConnectionError');
    }
    const before = emu.counters.requests;
    const fast = await keyfoldRejectionOf(provider.unwrapKey(wrapped, { a: '1' }));
    expect(fast.code).toBe('UNAVAILABLE');
    expect((fast as { circuitOpen?: boolean }).circuitOpen).toBe(true);
    expect(emu.counters.requests).toBe(before);
    emu.faults.clear();
    let back: Uint8Array | undefined;
    for (let i = 0; i < 200 && !back; i++) {
      back = await provider.unwrapKey(wrapped, { a: '1' }).catch(async (err: unknown) => {
        if (!isKeyfoldError(err, 'UNAVAILABLE')) throw err;
        await new Promise((r) => setTimeout(r, 10));
        return undefined;
      });
    }
    expect(back && Buffer.from(back).equals(Buffer.from(key))).toBe(true);
    expect(provider.resilienceStats()!.circuit).toBe('closed');
    await provider.close();
  });

  it('sealed Vault (503): UNAVAILABLE saying it is sealed; probe reports it; works again once unsealed', async () => {
    const provider = await freshProvider(emu, { resilience: { retry: { maxAttempts: 2, baseDelayMs: 1 }, circuitBreaker: false } });
    const wrapped = await provider.wrapKey(randomKey(), {});
    emu.seal();
    const err = await keyfoldRejectionOf(provider.unwrapKey(wrapped, {}));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/Vault is sealed \(503\)/);
    expect((err.cause as { status?: number }).status).toBe(503);
    expect(await provider.probe()).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    emu.unseal();
    expect(await provider.unwrapKey(wrapped, {})).toHaveLength(32);
    await provider.close();
  });

  it('a server slower than the deadline: TIMEOUT naming the operation and the deadline', async () => {
    // A fixed delay far past the deadline (an exponential one is sometimes short); 1 s so that the call after the
    // fault is cleared fits in the same deadline on a busy CI machine.
    const provider = await freshProvider(emu, { resilience: { deadlineMs: 1_000, circuitBreaker: false } });
    emu.faults.set({ latency: { kind: 'fixed', ms: 30_000 }, operations: ['encrypt'] });
    const err = await keyfoldRejectionOf(provider.wrapKey(randomKey(), {}));
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toBe('vault-transit wrapKey did not finish within 1000 ms');
    emu.faults.clear();
    expect((await provider.wrapKey(randomKey(), {})).keyVersion).toBe('1');
    await provider.close();
  });
});
