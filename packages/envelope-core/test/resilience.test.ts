/**
 * Shared resilience (src/resilience.ts), exercised through a provider extending BaseKeyProvider that fails on
 * purpose: retries with full-jitter backoff, non-retryable codes, the per-call deadline and the circuit breaker.
 * Clocks, sleeps and randomness are injected; nothing here asserts elapsed time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, KeyfoldError, Resilience, TimeoutError, type ResilienceOptions } from '../src/index.js';
import { expectKeyfold } from './helpers.js';
import { FlakyProvider } from './flaky-provider.js';

const DATA_KEY = new Uint8Array(32).fill(1);

/** Injected sleep that records the delays and returns at once. */
function recordingSleep(): { sleeps: number[]; sleep: NonNullable<ResilienceOptions['sleep']> } {
  const sleeps: number[] = [];
  return {
    sleeps,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  };
}

describe('retries', () => {
  it('THROTTLED twice, then success: 3 attempts, 2 backoffs of floor(random * min(max, base * 2^n))', async () => {
    const { sleeps, sleep } = recordingSleep();
    const p = new FlakyProvider('k', { resilience: { sleep, random: () => 0.5, retry: { baseDelayMs: 100, maxDelayMs: 10_000 }, rateLimit: false } });
    p.script = ['throttled', 'throttled'];
    const wrapped = await p.wrapKey(DATA_KEY, {});
    expect(wrapped.keyId).toBe('k');
    expect(p.backendCalls).toBe(3);
    expect(sleeps).toEqual([50, 100]);
    expect(p.resilienceStats()).toMatchObject({ calls: 1, attempts: 3, retries: 2, throttled: 2, failures: 0, circuit: 'closed' });
  });

  it('UNAVAILABLE is retried too, on unwrap as well as wrap', async () => {
    const { sleep } = recordingSleep();
    const p = new FlakyProvider('k', { resilience: { sleep } });
    const wrapped = await p.wrapKey(DATA_KEY, { a: 'b' });
    p.script = ['unavailable', 'unavailable', 'unavailable'];
    const key = await p.unwrapKey(wrapped, { a: 'b' });
    expect(Buffer.from(key)).toEqual(Buffer.from(DATA_KEY));
    expect(p.ops).toEqual(['wrap', 'unwrap', 'unwrap', 'unwrap', 'unwrap']);
  });

  it('gives up after maxAttempts outage-like failures with the last error', async () => {
    const { sleeps, sleep } = recordingSleep();
    const p = new FlakyProvider('k', { resilience: { sleep, retry: { maxAttempts: 4 } } });
    p.fallback = 'unavailable';
    const err = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(err.message).toBe('backend down');
    expect(p.backendCalls).toBe(4);
    expect(sleeps).toHaveLength(3);
    expect(p.resilienceStats()).toMatchObject({ attempts: 4, retries: 3, failures: 1 });
  });

  it('retry: false makes one attempt', async () => {
    const p = new FlakyProvider('k', { resilience: { retry: false } });
    p.script = ['throttled'];
    await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'THROTTLED');
    expect(p.backendCalls).toBe(1);
  });

  it('a non-retryable code (UNWRAP_FAILED) is not retried', async () => {
    const { sleeps, sleep } = recordingSleep();
    const p = new FlakyProvider('k', { resilience: { sleep } });
    const wrapped = await p.wrapKey(DATA_KEY, {});
    p.script = ['unwrap-failed'];
    await expectKeyfold(() => p.unwrapKey(wrapped, {}), 'UNWRAP_FAILED');
    expect(p.ops).toEqual(['wrap', 'unwrap']);
    expect(sleeps).toEqual([]);
  });

  it('a backend error that mapBackendError maps to THROTTLED is retried like a thrown THROTTLED', async () => {
    const { sleeps, sleep } = recordingSleep();
    const p = new FlakyProvider('k', { resilience: { sleep, rateLimit: false } });
    p.script = ['raw-throttle', 'raw-throttle'];
    // BUG (src/provider-base.ts): the base maps backend errors only after Resilience.run has given up, so raw SDK
    // errors are never seen as THROTTLED / UNAVAILABLE by the retry loop or the circuit breaker.
    const wrapped = await p.wrapKey(DATA_KEY, {});
    expect(wrapped.kind).toBe('flaky');
    expect(p.backendCalls).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it('full jitter: every delay is in [0, min(max, base * 2^n)) for any random source', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 0, max: 30 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (base, max, n, r) => {
          const res = new Resilience({ random: () => r, retry: { baseDelayMs: base, maxDelayMs: max } });
          const ceiling = Math.min(max, base * 2 ** n);
          const d = res.backoffMs(n);
          expect(d).toBeGreaterThanOrEqual(0);
          if (ceiling > 0) expect(d).toBeLessThan(ceiling);
          else expect(d).toBe(0);
          expect(Number.isInteger(d)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
    // The ceilings double and are capped: base 100, max 250 -> 100, 200, 250, 250
    const res = new Resilience({ random: () => 0.999_999, retry: { baseDelayMs: 100, maxDelayMs: 250 } });
    expect([0, 1, 2, 3].map((n) => res.backoffMs(n))).toEqual([99, 199, 249, 249]);
  });

  it('bad options are caller mistakes (RangeError)', () => {
    expect(() => new Resilience({ retry: { maxAttempts: 0 } })).toThrow(RangeError);
    expect(() => new Resilience({ deadlineMs: 0 })).toThrow(RangeError);
    expect(() => new Resilience({ retry: { baseDelayMs: -1 } })).toThrow(RangeError);
    expect(() => new Resilience({ circuitBreaker: { failureThreshold: Number.NaN } })).toThrow(RangeError);
  });
});

describe('deadline', () => {
  it('a provider that never answers -> TimeoutError (TIMEOUT)', async () => {
    const p = new FlakyProvider('k', { resilience: { deadlineMs: 50 } });
    p.script = ['hang'];
    const err = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'TIMEOUT');
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain('50 ms');
    expect(p.resilienceStats()).toMatchObject({ timeouts: 1 });
  });

  it('an unwrap that never answers -> TIMEOUT (operational, not hidden as UNWRAP_FAILED)', async () => {
    const p = new FlakyProvider('k', { resilience: { deadlineMs: 50 } });
    const wrapped = await p.wrapKey(DATA_KEY, {});
    p.script = ['hang'];
    await expectKeyfold(() => p.unwrapKey(wrapped, {}), 'TIMEOUT');
  });

  it('the deadline covers the retries and their backoff: a backoff that would outlast it is not started', async () => {
    const p = new FlakyProvider('k', { resilience: { deadlineMs: 50, retry: { maxAttempts: 100, baseDelayMs: 1000 }, random: () => 0.9 } });
    p.fallback = 'unavailable';
    await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(p.backendCalls).toBe(1); // the first backoff (900 ms) could not end before the deadline
    expect(p.resilienceStats()).toMatchObject({ attempts: 1, retries: 0, failures: 1 });
  });

  it('the backend receives an AbortSignal that fires at the deadline', async () => {
    let seen: AbortSignal | undefined;
    const res = new Resilience({ deadlineMs: 20 });
    const err = await expectKeyfold(
      () =>
        res.run('op', (signal) => {
          seen = signal;
          return new Promise<never>(() => undefined);
        }),
      'TIMEOUT',
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect(seen?.aborted).toBe(true);
  });
});

describe('circuit breaker', () => {
  function breakerProvider() {
    let t = 0;
    const p = new FlakyProvider('k', {
      resilience: { retry: false, deadlineMs: 100, now: () => t, circuitBreaker: { failureThreshold: 5, resetAfterMs: 1000 } },
    });
    return { p, advance: (ms: number) => (t += ms) };
  }

  async function fail5(p: FlakyProvider): Promise<void> {
    p.script = ['unavailable', 'unavailable', 'unavailable', 'unavailable', 'unavailable'];
    for (let i = 0; i < 5; i++) await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
  }

  it('5 consecutive UNAVAILABLE open it: the next call fails fast without calling the backend', async () => {
    const { p } = breakerProvider();
    await fail5(p);
    expect(p.backendCalls).toBe(5);
    const err = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).circuitOpen).toBe(true);
    expect(err.retryable).toBe(false);
    expect(p.backendCalls).toBe(5);
    expect(p.resilienceStats()).toMatchObject({ circuit: 'open', rejectedByBreaker: 1 });
  });

  it('after resetAfterMs one trial goes through; success closes it', async () => {
    const { p, advance } = breakerProvider();
    await fail5(p);
    advance(999);
    await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(p.backendCalls).toBe(5);
    advance(1);
    expect(p.resilienceStats()?.circuit).toBe('half-open');
    await p.wrapKey(DATA_KEY, {});
    expect(p.backendCalls).toBe(6);
    expect(p.resilienceStats()?.circuit).toBe('closed');
    await p.wrapKey(DATA_KEY, {});
    expect(p.backendCalls).toBe(7);
  });

  it('a failed trial reopens it for another resetAfterMs', async () => {
    const { p, advance } = breakerProvider();
    await fail5(p);
    advance(1000);
    p.script = ['unavailable'];
    const trial = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(trial).not.toBeInstanceOf(CircuitOpenError); // the trial reached the backend
    expect(p.backendCalls).toBe(6);
    const fast = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect(p.backendCalls).toBe(6);
    advance(1000);
    await p.wrapKey(DATA_KEY, {});
    expect(p.backendCalls).toBe(7);
    expect(p.resilienceStats()?.circuit).toBe('closed');
  });

  it('half-open lets exactly one trial through at a time', async () => {
    const { p, advance } = breakerProvider();
    await fail5(p);
    advance(1000);
    p.script = ['hang'];
    const trial = p.wrapKey(DATA_KEY, {}); // stays in flight until its deadline
    const second = await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(second).toBeInstanceOf(CircuitOpenError);
    expect(p.backendCalls).toBe(6);
    await expectKeyfold(() => trial, 'TIMEOUT'); // the trial failed: open again
    expect(p.resilienceStats()?.circuit).toBe('open');
  });

  it('a non-operational answer (UNWRAP_FAILED) shows the backend is up and resets the count', async () => {
    const { p } = breakerProvider();
    const wrapped = await p.wrapKey(DATA_KEY, {});
    p.script = ['unavailable', 'unavailable', 'unavailable', 'unavailable', 'unwrap-failed', 'unavailable'];
    for (let i = 0; i < 4; i++) await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    await expectKeyfold(() => p.unwrapKey(wrapped, {}), 'UNWRAP_FAILED');
    await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    expect(p.resilienceStats()?.circuit).toBe('closed');
    await p.wrapKey(DATA_KEY, {});
  });

  it('raw backend errors mapped to UNAVAILABLE count towards opening the circuit', async () => {
    const { p } = breakerProvider();
    p.fallback = 'raw-unavailable';
    for (let i = 0; i < 5; i++) await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    // BUG (src/provider-base.ts): mapping happens outside Resilience.run, so the breaker never sees these failures.
    const err = await caughtAny(() => p.wrapKey(DATA_KEY, {}));
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(p.backendCalls).toBe(5);
  });

  it('circuitBreaker: false never opens', async () => {
    const p = new FlakyProvider('k', { resilience: { retry: false, circuitBreaker: false } });
    p.script = Array.from({ length: 10 }, () => 'unavailable' as const);
    for (let i = 0; i < 10; i++) await expectKeyfold(() => p.wrapKey(DATA_KEY, {}), 'UNAVAILABLE');
    await p.wrapKey(DATA_KEY, {});
    expect(p.backendCalls).toBe(11);
  });
});

async function caughtAny(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(KeyfoldError);
    return err;
  }
}
