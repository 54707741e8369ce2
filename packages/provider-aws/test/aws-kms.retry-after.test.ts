/**
 * Retry-After through the real SDK: the emulator's throttling answers (fault mode) carry varied `Retry-After`
 * values, and the shared resilience waits at least that long before each retry, within the call's deadline. The
 * sleep is injected and records the delays chosen: nothing here measures elapsed time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import type { ResilienceOptions } from '@keyfold/envelope-core';
import { freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();
afterEach(() => emu.faults.clear());

function recordingSleep(): { sleeps: number[]; sleep: NonNullable<ResilienceOptions['sleep']> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) };
}

describe('aws-kms: Retry-After', () => {
  it('each retry waits the Retry-After the throttling answer named (varied values), not the shorter backoff', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', {
      resilience: { sleep, retry: { maxThrottledAttempts: 5, baseDelayMs: 1, maxDelayMs: 2 }, deadlineMs: 60_000, circuitBreaker: false, rateLimit: false },
    });
    emu.faults.set({ throttleRatio: 1, operations: ['Encrypt'], retryAfterSeconds: { min: 1, max: 9 }, seed: 7 });
    const err = await keyfoldRejectionOf(provider.wrapKey(randomKey(), { a: '1' }));
    expect(err.code).toBe('THROTTLED');
    const sent = emu.faults.retryAfterSent;
    expect(sent).toHaveLength(5);
    expect(new Set(sent).size).toBeGreaterThan(1);
    expect(err.retryAfterMs).toBe(sent[4]! * 1000);
    expect(sleeps).toEqual(sent.slice(0, 4).map((s) => s * 1000));
    expect(provider.resilienceStats()).toMatchObject({ attempts: 5, retries: 4 });
    await provider.close();
  });

  it('a Retry-After longer than what is left of the deadline: THROTTLED after one attempt, no wait, no TIMEOUT', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { resilience: { sleep, retry: { maxThrottledAttempts: 5 }, deadlineMs: 3000, rateLimit: false } });
    emu.faults.set({ throttleRatio: 1, operations: ['Encrypt'], retryAfterSeconds: { min: 5, max: 5 } });
    emu.resetCounters();
    const err = await keyfoldRejectionOf(provider.wrapKey(randomKey(), {}));
    expect(err.code).toBe('THROTTLED');
    expect(err.retryAfterMs).toBe(5000);
    expect(sleeps).toEqual([]);
    expect(emu.counters.byOperation.Encrypt).toBe(1);
    await provider.close();
  });

  it('the emulator sends the header on the wire: Retry-After in seconds on a 400 ThrottlingException', async () => {
    emu.faults.set({ throttleRatio: 1, retryAfterSeconds: { min: 2, max: 2 } });
    const res = await fetch(emu.url, {
      method: 'POST',
      headers: {
        'x-amz-target': 'TrentService.GenerateRandom',
        'content-type': 'application/x-amz-json-1.1',
        authorization: `AWS4-HMAC-SHA256 Credential=AKIDX/20260101/${emu.region}/kms/aws4_request, SignedHeaders=host, Signature=00`,
      },
      body: JSON.stringify({ NumberOfBytes: 8 }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(((await res.json()) as { __type: string }).__type).toBe('ThrottlingException');
  });
});
