/**
 * Server retry hints (src/retry-after.ts) and how the shared resilience honours them: never retry sooner than the
 * service asked, and never wait past the call's deadline. Sleeps and clocks are injected: the test asserts the
 * delays chosen and the attempts made, never elapsed time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KeyfoldError, ProviderError, Resilience, parseRetryAfter, retryAfterFromHeaders, type ResilienceOptions } from '../src/index.js';

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP-dates; refuses everything else', () => {
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(' 12 ')).toBe(12_000);
    expect(parseRetryAfter('0.25')).toBe(250);
    const now = Date.parse('Wed, 21 Oct 2015 07:27:58 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now)).toBe(2000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0); // already past
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:01 UTC', now)).toBe(3000); // Go's time.RFC1123 in UTC
    for (const bad of [undefined, null, '', '-1', '1e3', 'soon', '2015-10-21T07:28:00Z', '0x10', 'Infinity', '99999999']) {
      expect(parseRetryAfter(bad as string | undefined, now)).toBeUndefined();
    }
  });

  it('never throws and never returns a negative or non-finite delay (any string)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const v = parseRetryAfter(s, 0);
        return v === undefined || (Number.isFinite(v) && v >= 0);
      }),
    );
  });

  it('retryAfterFromHeaders prefers the millisecond headers, then Retry-After', () => {
    const h = (o: Record<string, string>) => (name: string) => o[name];
    expect(retryAfterFromHeaders(h({ 'retry-after-ms': '1500', 'retry-after': '9' }))).toBe(1500);
    expect(retryAfterFromHeaders(h({ 'x-ms-retry-after-ms': '20' }))).toBe(20);
    expect(retryAfterFromHeaders(h({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterFromHeaders(h({ 'retry-after-ms': 'x', 'retry-after': '1' }))).toBe(1000);
    expect(retryAfterFromHeaders(h({}))).toBeUndefined();
  });

  it('KeyfoldError keeps a valid retryAfterMs and drops an invalid one', () => {
    expect(new ProviderError('THROTTLED', 'x', { retryAfterMs: 1200 }).retryAfterMs).toBe(1200);
    expect(new ProviderError('THROTTLED', 'x', { retryAfterMs: -1 }).retryAfterMs).toBeUndefined();
    expect(new ProviderError('THROTTLED', 'x', { retryAfterMs: Number.NaN }).retryAfterMs).toBeUndefined();
    expect(new ProviderError('THROTTLED', 'x').retryAfterMs).toBeUndefined();
  });
});

/** A policy with an injected clock that advances by what is slept, and a record of the sleeps. */
function policy(options: ResilienceOptions = {}): { resilience: Resilience; sleeps: number[] } {
  const sleeps: number[] = [];
  let clock = 0;
  const resilience = new Resilience({
    random: () => 0.5,
    rateLimit: false, // these tests look at the retry waits alone; resilience.throttling.test.ts covers the limit
    now: () => clock,
    sleep: (ms) => {
      sleeps.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    ...options,
  });
  return { resilience, sleeps };
}

/** A backend that throws the given errors in order, then answers 'ok'. */
function backend(errors: KeyfoldError[]): { fn: () => Promise<string>; calls: () => number } {
  let n = 0;
  return {
    fn: () => {
      const e = errors[n++];
      return e ? Promise.reject(e) : Promise.resolve('ok');
    },
    calls: () => n,
  };
}

const throttled = (retryAfterMs?: number): KeyfoldError => new ProviderError('THROTTLED', 'slow down', { retryAfterMs });

describe('Resilience honours Retry-After', () => {
  it('waits the longer of the backoff and the server hint before each retry', async () => {
    const { resilience, sleeps } = policy({ retry: { baseDelayMs: 100, maxDelayMs: 10_000 } });
    const b = backend([throttled(1200), throttled(10), throttled(undefined)]);
    expect(await resilience.run('op', b.fn)).toBe('ok');
    // backoffs at random 0.5: 50, 100, 200; hints 1200 and 10.
    expect(sleeps).toEqual([1200, 100, 200]);
    expect(b.calls()).toBe(4);
  });

  it('a hint larger than maxDelayMs is still honoured (the backoff ceiling does not cap the server)', async () => {
    const { resilience, sleeps } = policy({ retry: { baseDelayMs: 1, maxDelayMs: 2 }, deadlineMs: 60_000 });
    const b = backend([throttled(5000)]);
    expect(await resilience.run('op', b.fn)).toBe('ok');
    expect(sleeps).toEqual([5000]);
  });

  it('a hint that would not end before the deadline: fails at once with the THROTTLED error, no sleep, no timeout', async () => {
    const { resilience, sleeps } = policy({ deadlineMs: 1000 });
    const b = backend([throttled(1000)]);
    const err = (await resilience.run('op', b.fn).catch((e: unknown) => e)) as KeyfoldError;
    expect(err.code).toBe('THROTTLED');
    expect(err.retryAfterMs).toBe(1000);
    expect(sleeps).toEqual([]);
    expect(b.calls()).toBe(1);
    expect(resilience.stats()).toMatchObject({ attempts: 1, retries: 0, failures: 1, timeouts: 0 });
  });

  it('the deadline left shrinks with each wait: the first hint fits, the second does not', async () => {
    const { resilience, sleeps } = policy({ deadlineMs: 5000 });
    const b = backend([throttled(3000), throttled(2500)]);
    const err = (await resilience.run('op', b.fn).catch((e: unknown) => e)) as KeyfoldError;
    expect(err.code).toBe('THROTTLED');
    expect(sleeps).toEqual([3000]);
    expect(b.calls()).toBe(2);
  });

  it('without a deadline, hints above maxRetryAfterMs end the retries', async () => {
    const { resilience, sleeps } = policy({ deadlineMs: false, retry: { maxRetryAfterMs: 30_000 } });
    const ok = backend([throttled(30_000)]);
    expect(await resilience.run('op', ok.fn)).toBe('ok');
    const tooLong = backend([throttled(30_001)]);
    expect(((await resilience.run('op', tooLong.fn).catch((e: unknown) => e)) as KeyfoldError).code).toBe('THROTTLED');
    expect(sleeps).toEqual([30_000]);
  });

  it('a hint on a non-retryable error changes nothing', async () => {
    const { resilience, sleeps } = policy();
    const b = backend([new ProviderError('ACCESS_DENIED', 'no', { retryAfterMs: 5 })]);
    expect(((await resilience.run('op', b.fn).catch((e: unknown) => e)) as KeyfoldError).code).toBe('ACCESS_DENIED');
    expect(sleeps).toEqual([]);
  });
});
