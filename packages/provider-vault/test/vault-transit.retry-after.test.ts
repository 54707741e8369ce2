/**
 * Retry-After from Vault: a rate limit quota's 429 carries `Retry-After` in seconds (hashicorp/vault
 * vault/quotas/quotas_rate_limit.go); the emulator's fault mode sends varied values, and the shared resilience waits
 * at least that long before each retry, within the call's deadline. The sleep is injected and records the delays.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import type { ResilienceOptions } from '@keyfold/envelope-core';
import { freshProvider, randomKey, vaultEmulator } from './helpers.js';

const emu = await vaultEmulator();
afterEach(() => emu.faults.clear());

function recordingSleep(): { sleeps: number[]; sleep: NonNullable<ResilienceOptions['sleep']> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) };
}

describe('vault-transit: Retry-After', () => {
  it('each retry waits the Retry-After of the 429 (varied values), not the shorter backoff', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await freshProvider(emu, { resilience: { sleep, retry: { maxThrottledAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 }, deadlineMs: 60_000, circuitBreaker: false, rateLimit: false } });
    emu.faults.set({ throttleRatio: 1, operations: ['encrypt'], retryAfterSeconds: { min: 1, max: 9 }, seed: 9 });
    const err = await keyfoldRejectionOf(provider.wrapKey(randomKey(), { a: '1' }));
    expect(err.code).toBe('THROTTLED');
    const sent = emu.faults.retryAfterSent;
    expect(sent).toHaveLength(4);
    expect(new Set(sent).size).toBeGreaterThan(1);
    expect(sleeps).toEqual(sent.slice(0, 3).map((s) => s * 1000));
    expect(err.retryAfterMs).toBe(sent[3]! * 1000);
    await provider.close();
  });

  it('a Retry-After longer than what is left of the deadline: THROTTLED after one request, no wait', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await freshProvider(emu, { resilience: { sleep, retry: { maxThrottledAttempts: 4 }, deadlineMs: 2000, rateLimit: false } });
    emu.faults.set({ throttleRatio: 1, operations: ['encrypt'], retryAfterSeconds: { min: 2, max: 2 } });
    emu.resetCounters();
    const err = await keyfoldRejectionOf(provider.wrapKey(randomKey(), {}));
    expect(err.code).toBe('THROTTLED');
    expect(err.retryAfterMs).toBe(2000);
    expect(sleeps).toEqual([]);
    expect(emu.counters.byOperation.encrypt).toBe(1);
    await provider.close();
  });
});
