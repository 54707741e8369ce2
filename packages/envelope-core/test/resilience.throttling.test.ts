/**
 * Throttling is not an outage (src/resilience.ts, src/resilience-rate-limit.ts): throttled attempts are retried until
 * the call's deadline and never open the breaker; outage-like failures keep a bounded budget; the adaptive rate limit
 * shared by a provider's calls shrinks on throttles, grows back on successes and stays idle until the first throttle.
 * Clocks and sleeps are injected; nothing here asserts elapsed time.
 */
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, ProviderError, Resilience, type KeyfoldError, type ResilienceOptions } from '../src/index.js';
import { AdaptiveRateLimiter } from '../src/resilience-rate-limit.js';
import { expectKeyfold } from './helpers.js';
import { FlakyProvider } from './flaky-provider.js';

const DATA_KEY = new Uint8Array(32).fill(1);

/** A virtual clock: sleeps advance it and return at once. */
function virtualTime(): { now: () => number; sleep: NonNullable<ResilienceOptions['sleep']>; sleeps: number[]; advance: (ms: number) => void } {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: (ms) => {
      sleeps.push(ms);
      t += ms;
      return Promise.resolve();
    },
    sleeps,
    advance: (ms) => (t += ms),
  };
}

describe('throttled calls', () => {
  it('are retried until they succeed, far beyond maxAttempts, without a fixed attempt count', async () => {
    const v = virtualTime();
    const p = new FlakyProvider('k', { resilience: { ...v, rateLimit: false, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 100 } } });
    p.script = Array.from({ length: 30 }, () => 'throttled' as const);
    await p.wrapKey(DATA_KEY, {});
    expect(p.backendCalls).toBe(31);
    expect(p.resilienceStats()).toMatchObject({ attempts: 31, retries: 30, throttled: 30, failures: 0 });
  });

  it('a service that keeps throttling: the call retries until no backoff fits before the deadline, then fails THROTTLED', async () => {
    const v = virtualTime();
    const p = new FlakyProvider('k', {
      resilience: { ...v, random: () => 0.5, deadlineMs: 10_000, rateLimit: false, retry: { baseDelayMs: 50, maxDelayMs: 2000 } },
    });
    p.fallback = 'throttled';
    const err = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'THROTTLED');
    expect(err.message).toBe('slow down');
    // 25 + 50 + 100 + 200 + 400 + 800 = 1575 ms, then 1000 ms per retry: 8 more fit in 10 s (9,575 ms slept).
    expect(v.sleeps.reduce((a, b) => a + b, 0)).toBeLessThan(10_000);
    expect(p.backendCalls).toBe(15);
    expect(p.resilienceStats()).toMatchObject({ throttled: 15, failures: 1, timeouts: 0 });
  });

  it('outage-like failures keep their budget even when mixed with throttles', async () => {
    const v = virtualTime();
    const p = new FlakyProvider('k', { resilience: { ...v, rateLimit: false, retry: { maxAttempts: 3 } } });
    p.script = ['throttled', 'unavailable', 'throttled', 'throttled', 'unavailable', 'throttled', 'unavailable', 'ok'];
    await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(p.backendCalls).toBe(7); // the third UNAVAILABLE used up the budget of 3
  });

  it('maxThrottledAttempts bounds throttle retries when asked (1 = none)', async () => {
    const v = virtualTime();
    const p = new FlakyProvider('k', { resilience: { ...v, rateLimit: false, retry: { maxThrottledAttempts: 1 } } });
    p.fallback = 'throttled';
    await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'THROTTLED');
    expect(p.backendCalls).toBe(1);
  });

  it('never open the circuit breaker: 20 calls that end THROTTLED leave it closed and the backend reachable', async () => {
    const v = virtualTime();
    const p = new FlakyProvider('k', {
      resilience: { ...v, rateLimit: false, retry: { maxThrottledAttempts: 2 }, circuitBreaker: { failureThreshold: 2, resetAfterMs: 60_000 } },
    });
    p.fallback = 'throttled';
    for (let i = 0; i < 20; i++) await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'THROTTLED');
    expect(p.backendCalls).toBe(40);
    expect(p.resilienceStats()).toMatchObject({ circuit: 'closed', rejectedByBreaker: 0, failures: 20 });
    // Outages still open it: two failed calls.
    p.fallback = 'unavailable';
    for (let i = 0; i < 2; i++) await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    const fast = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(fast).toBeInstanceOf(CircuitOpenError);
  });

  it('a throttle between outage failures does not count: 4 outages + throttles + 1 outage open a threshold-5 breaker', async () => {
    const v = virtualTime();
    const p = new FlakyProvider('k', {
      resilience: { ...v, rateLimit: false, retry: false, circuitBreaker: { failureThreshold: 5, resetAfterMs: 60_000 } },
    });
    p.script = ['unavailable', 'unavailable', 'throttled', 'unavailable', 'unavailable', 'throttled', 'throttled', 'unavailable'];
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) codes.push(await p.wrapKey(DATA_KEY, {}).then(() => 'OK', (e: KeyfoldError) => e.code));
    // A throttle shows the service is up: it resets the run of outage failures, so the circuit stays closed.
    expect(codes.filter((c) => c === 'UNAVAILABLE')).toHaveLength(5);
    expect(p.resilienceStats()?.circuit).toBe('closed');
  });
});

describe('adaptive rate limit (the shared token bucket)', () => {
  it('is idle until the first throttle: no wait, no rate', () => {
    const v = virtualTime();
    const l = new AdaptiveRateLimiter({}, v.now);
    for (let i = 0; i < 1000; i++) expect(l.acquire()).toBe(0);
    expect(l.stats()).toMatchObject({ enabled: false, ratePerSecond: undefined, delayed: 0 });
  });

  it('a throttle switches it on at the rate the client was sending, shrunk by shrinkFactor', () => {
    const v = virtualTime();
    const l = new AdaptiveRateLimiter({}, v.now);
    // 100 calls per second for two seconds.
    for (let i = 0; i < 200; i++) {
      l.acquire();
      v.advance(10);
    }
    l.onThrottle();
    const rate = l.stats().ratePerSecond!;
    expect(rate).toBeGreaterThan(85);
    expect(rate).toBeLessThanOrEqual(90);
    l.onThrottle();
    expect(l.stats().ratePerSecond).toBeCloseTo(rate * 0.9, 6);
  });

  it('successes grow the rate back, never above twice the rate sent; throttles never take it below the floor', () => {
    const v = virtualTime();
    const l = new AdaptiveRateLimiter({ minRatePerSecond: 5 }, v.now);
    for (let i = 0; i < 100; i++) {
      l.acquire();
      v.advance(10);
    }
    for (let i = 0; i < 200; i++) l.onThrottle();
    expect(l.stats().ratePerSecond).toBe(5);
    for (let i = 0; i < 200; i++) l.onSuccess();
    const r = l.stats().ratePerSecond!;
    expect(r).toBeGreaterThan(5);
    expect(r).toBeLessThanOrEqual(2 * l.stats().measuredRatePerSecond + 1e-9);
  });

  it('once on, callers beyond the rate wait first come, first served, and a cancelled wait returns its token', () => {
    const v = virtualTime();
    const l = new AdaptiveRateLimiter({ minRatePerSecond: 10 }, v.now);
    l.onThrottle(); // nothing sent yet: starts at the floor, 10/s
    expect(l.stats().ratePerSecond).toBe(10);
    v.advance(1000); // refill: a burst of one token (0.1 s of 10/s is under one)
    const waits = Array.from({ length: 4 }, () => l.acquire());
    expect(waits).toEqual([0, 100, 200, 300]);
    l.cancel();
    expect(l.acquire()).toBe(300);
    expect(l.stats().delayed).toBe(4);
  });

  it('random throttling of a third of the answers (not caused by our rate) never drags the rate down', () => {
    const v = virtualTime();
    const l = new AdaptiveRateLimiter({}, v.now);
    let sent = 0;
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    // 2,000 answers at ~100 sends/s; a third of them throttled.
    for (let i = 0; i < 2000; i++) {
      v.advance(Math.max(10, l.acquire()));
      sent++;
      if (rnd() < 1 / 3) l.onThrottle();
      else l.onSuccess();
    }
    expect(sent).toBe(2000);
    expect(l.stats().ratePerSecond!).toBeGreaterThanOrEqual(100);
  });

  it('against a quota it converges: sends settle near the rate the service accepts', () => {
    // A service accepting 50 calls/s (token bucket of 50, burst 50), a client that would send 1,000/s.
    const v = virtualTime();
    const l = new AdaptiveRateLimiter({}, v.now);
    let quotaTokens = 50;
    let last = 0;
    let accepted = 0;
    let throttled = 0;
    let next = 0;
    while (v.now() < 20_000) {
      const wait = l.acquire();
      next = Math.max(next + 1, v.now() + wait);
      v.advance(next - v.now());
      quotaTokens = Math.min(50, quotaTokens + ((v.now() - last) / 1000) * 50);
      last = v.now();
      if (quotaTokens >= 1) {
        quotaTokens--;
        accepted++;
        l.onSuccess();
      } else {
        throttled++;
        l.onThrottle();
      }
    }
    expect(accepted).toBeGreaterThanOrEqual(0.8 * 50 * 20);
    // Without the limit the client would have sent 20,000 requests, 19,000 of them throttled.
    expect(accepted + throttled).toBeLessThan(4000);
    expect(l.stats().ratePerSecond!).toBeLessThan(150);
  });

  it('in the policy: after throttles, a call whose token would come after its deadline fails THROTTLED without reaching the backend', async () => {
    const v = virtualTime();
    const r = new Resilience({ ...v, deadlineMs: 1000, rateLimit: { minRatePerSecond: 1 }, retry: { maxThrottledAttempts: 1 } });
    const throttle = (): Promise<never> => Promise.reject(new ProviderError('THROTTLED', 'slow down'));
    await expect(r.run('op', throttle)).rejects.toMatchObject({ code: 'THROTTLED' });
    for (let i = 0; i < 30; i++) await r.run('op', throttle).catch(() => undefined);
    let reached = 0;
    const backend = (): Promise<string> => {
      reached++;
      return Promise.resolve('ok');
    };
    const before = r.stats();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => r.run('op', backend)));
    const refused = results.filter((x) => x.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const x of refused) expect(x.reason).toMatchObject({ code: 'THROTTLED' });
    expect(reached).toBe(results.length - refused.length);
    const after = r.stats();
    expect(after.rateLimited).toBeGreaterThan(before.rateLimited);
    expect(after.ratePerSecond).toBeDefined();
    expect(after.circuit).toBe('closed');
  });

  it('rateLimit: false and bad options', () => {
    expect(new Resilience({ rateLimit: false }).stats().ratePerSecond).toBeUndefined();
    expect(() => new Resilience({ rateLimit: { shrinkFactor: 1 } })).toThrow(RangeError);
    expect(() => new Resilience({ rateLimit: { growthFactor: 1 } })).toThrow(RangeError);
    expect(() => new Resilience({ rateLimit: { minRatePerSecond: 0 } })).toThrow(RangeError);
    expect(() => new Resilience({ retry: { maxThrottledAttempts: 0 } })).toThrow(RangeError);
  });
});
