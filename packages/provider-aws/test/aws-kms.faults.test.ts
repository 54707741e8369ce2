/**
 * Fault injection through the emulator, with the real SDK: throttling and 5xx are retried by Keyfold's shared
 * resilience (the provider's own KMSClient makes one attempt per call, so retry loops are never stacked); an outage
 * opens the circuit breaker and calls fail fast; a server slower than the deadline gives TIMEOUT.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf, sealAndOpenMany } from '@keyfold/conformance';
import { createEnvelope, isKeyfoldError } from '@keyfold/envelope-core';
import { freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();
afterEach(() => emu.faults.clear());

describe('aws-kms under faults', () => {
  it('30% throttling and 10% 5xx: every seal and open of 1,000 envelopes succeeds', async () => {
    // With 40% of attempts failing, a call needs k attempts with probability 0.4^(k-1): 4 attempts (the default)
    // would leave ~2.6% of 2,000 calls failed, so this workload sizes the retry policy for the error rate: up to 20
    // attempts, short backoff, and a breaker threshold far above any plausible run of transient failures.
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', {
      resilience: { retry: { maxAttempts: 20, baseDelayMs: 1, maxDelayMs: 20 }, circuitBreaker: { failureThreshold: 60 }, deadlineMs: 30_000 },
    });
    const envelope = createEnvelope({ providers: [provider], cache: false });
    // Retry-After 0: the volume run checks the retry loop, not the waits (aws-kms.retry-after.test.ts does those).
    emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1, retryAfterSeconds: { min: 0, max: 0 }, seed: 42 });
    emu.resetCounters();
    expect(await sealAndOpenMany(envelope, 1000, 32)).toBe(1000);
    const c = emu.counters;
    expect(c.throttled).toBeGreaterThan(0);
    expect(c.serverErrors).toBeGreaterThan(0);
    expect(c.served).toBe(2000); // exactly one successful GenerateDataKey per seal and one Decrypt per open
    expect(c.byOperation.GenerateDataKey! + c.byOperation.Decrypt!).toBe(c.requests);
    const stats = provider.resilienceStats()!;
    expect(stats.failures).toBe(0);
    expect(stats.retries).toBe(c.throttled + c.serverErrors);
    expect(stats.circuit).toBe('closed');
    await envelope.close();
    await provider.close();
  }, 120_000); // thousands of calls with 40% of attempts failing can pass 30 s on a busy machine: a limit, not a timing check

  it('service down: calls fail with UNAVAILABLE, the breaker opens and fails fast, and recovers when it is back', async () => {
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', {
      resilience: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: { failureThreshold: 2, resetAfterMs: 50 } },
    });
    const context = { tenant: 'acme' };
    const key = randomKey();
    const wrapped = await provider.wrapKey(key, context);
    emu.faults.set({ outage: true });
    // Two calls of two attempts each: four consecutive connection failures open the circuit.
    for (let i = 0; i < 2; i++) {
      const err = await keyfoldRejectionOf(provider.unwrapKey(wrapped, context));
      expect(err.code).toBe('UNAVAILABLE');
      expect((err.cause as { code?: string }).code).toBe('ECONNRESET');
    }
    expect(provider.resilienceStats()!.circuit).not.toBe('closed');
    const before = emu.counters.requests;
    const fast = await keyfoldRejectionOf(provider.unwrapKey(wrapped, context));
    expect(fast.code).toBe('UNAVAILABLE');
    expect(fast.message).toMatch(/circuit breaker is open/);
    expect((fast as { circuitOpen?: boolean }).circuitOpen).toBe(true);
    expect(emu.counters.requests).toBe(before); // failed fast: the service was not called
    const probe = await provider.probe();
    expect(probe.ok).toBe(false);
    expect(probe.error?.code).toBe('UNAVAILABLE');

    emu.faults.clear();
    // After resetAfterMs the breaker lets one trial call through; retry until it does (bounded).
    let back: Uint8Array | undefined;
    for (let i = 0; i < 200 && !back; i++) {
      back = await provider.unwrapKey(wrapped, context).catch(async (err: unknown) => {
        if (!isKeyfoldError(err, 'UNAVAILABLE')) throw err;
        await new Promise((r) => setTimeout(r, 10));
        return undefined;
      });
    }
    expect(back && Buffer.from(back).equals(Buffer.from(key))).toBe(true);
    expect(provider.resilienceStats()!.circuit).toBe('closed');
    expect((await provider.probe()).ok).toBe(true);
    await provider.close();
  });

  it('a server slower than the deadline: TIMEOUT naming the operation and the deadline', async () => {
    // 1 s, not less: the call after the fault is cleared must fit in the same deadline on a busy CI machine.
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { resilience: { deadlineMs: 1_000, circuitBreaker: false } });
    emu.faults.set({ latency: { kind: 'fixed', ms: 30_000 } });
    const err = await keyfoldRejectionOf(provider.generateDataKey({ tenant: 'acme' }));
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toBe('aws-kms generateDataKey did not finish within 1000 ms');
    expect(provider.resilienceStats()!.timeouts).toBe(1);
    emu.faults.clear();
    const { dataKey } = await provider.generateDataKey({ tenant: 'acme' });
    expect(dataKey).toHaveLength(32);
    await provider.close();
  });

  it('connection resets (20% of requests) are retried as UNAVAILABLE: every call succeeds', async () => {
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', {
      resilience: { retry: { maxAttempts: 16, baseDelayMs: 1, maxDelayMs: 10 }, circuitBreaker: { failureThreshold: 30 } },
    });
    emu.faults.set({ resetRatio: 0.2, seed: 7 });
    const keys = Array.from({ length: 20 }, () => randomKey());
    const wrapped = [];
    for (const k of keys) wrapped.push(await provider.wrapKey(k, {}));
    for (let i = 0; i < keys.length; i++) expect(Buffer.from(await provider.unwrapKey(wrapped[i]!, {})).equals(Buffer.from(keys[i]!))).toBe(true);
    expect(emu.counters.resets).toBeGreaterThan(0);
    expect(provider.resilienceStats()!.retries).toBe(emu.counters.resets);
    await provider.close();
  });
});
