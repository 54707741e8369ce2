/**
 * Shared resilience for every provider: retries with full-jitter exponential backoff for THROTTLED / UNAVAILABLE
 * (never sooner than a `Retry-After` the service sent, within the deadline), one deadline per call (covering all its
 * attempts), a circuit breaker, and an adaptive client-side rate limit shared by all calls to the provider
 * (`resilience-rate-limit.ts`). Written once here so providers only write backend calls (DESIGN.md "The one
 * interface").
 *
 * Throttling is not an outage: a throttled attempt (THROTTLED) is retried until the call's deadline, not against
 * the attempt budget, and never counts toward opening the breaker (the service answered: it is up). Outage-like
 * failures (UNAVAILABLE: 5xx, resets, refused connections) have a bounded budget, `maxAttempts`.
 *
 * Providers whose vendor SDK already retries (AWS SDK v3 standard mode, for example) pass
 * `retry: { maxAttempts: 1, maxThrottledAttempts: 1 }` so two full retry loops are never stacked; the deadline and
 * breaker still apply.
 * @module
 */
import { CircuitOpenError, KeyfoldError, ProviderError, TimeoutError } from './errors.js';
import { AdaptiveRateLimiter, type RateLimitOptions } from './resilience-rate-limit.js';

export type { RateLimitOptions } from './resilience-rate-limit.js';

export interface RetryOptions {
  /**
   * Attempts that may end in an outage-like failure (UNAVAILABLE: 5xx, reset, refused), including the first; the
   * call fails with the last such error when they are used up. Throttled attempts do not count (see
   * `maxThrottledAttempts`). Default 6: a service answering one in seven attempts with a 5xx then fails about one
   * call in 100,000. 1 disables retries of outages.
   */
  maxAttempts?: number;
  /**
   * Attempts that may end THROTTLED before the call gives up. Default: unlimited, i.e. throttled attempts are retried
   * until the call's deadline (20 when `deadlineMs` is `false`, so a call always ends). 1 disables retries of
   * throttles.
   */
  maxThrottledAttempts?: number;
  /** First backoff ceiling in ms; doubles per attempt. Default 50. */
  baseDelayMs?: number;
  /** Backoff ceiling in ms. Default 2000. Does not cap a delay the server asked for (see `maxRetryAfterMs`). */
  maxDelayMs?: number;
  /**
   * Longest server-requested delay (`Retry-After`, carried as `retryAfterMs` on the error) the policy waits for, in
   * ms. A longer one, or one that would not end before the call's deadline, ends the retries at once with that
   * error. Default 60,000.
   */
  maxRetryAfterMs?: number;
}

export interface CircuitBreakerOptions {
  /**
   * Consecutive failed calls (UNAVAILABLE / TIMEOUT after their retries) that open the circuit. Default 5. A call
   * that ends THROTTLED does not count: a throttling service is up, only busy.
   */
  failureThreshold?: number;
  /** How long the circuit stays open before one trial call is let through. Default 5000 ms. */
  resetAfterMs?: number;
}

export interface ResilienceOptions {
  /** Retry policy, or `false` for one attempt. */
  retry?: RetryOptions | false;
  /** Deadline for one call, all attempts and backoff included, in ms; `false` for none. Default 10,000. */
  deadlineMs?: number | false;
  /** Circuit breaker, or `false` for none. */
  circuitBreaker?: CircuitBreakerOptions | false;
  /**
   * Adaptive client-side rate limit shared by every call through this instance (one per provider), or `false` for
   * none. On by default; it stays idle until the service first throttles. See {@link RateLimitOptions}.
   */
  rateLimit?: RateLimitOptions | false;
  /** Injected for tests: the clock (ms), a sleep, and a random source in [0, 1). */
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Counters a resilience instance keeps; shown by `probe()` and `envelope.stats()`. */
export interface ResilienceStats {
  /** Calls made through the policy. */
  calls: number;
  /** Attempts sent to the backend (first tries and retries). */
  attempts: number;
  /** Retries, of throttles and of outages alike. */
  retries: number;
  /** Attempts the service answered THROTTLED. */
  throttled: number;
  /** Calls that failed (after their retries), the breaker's fast failures excluded. */
  failures: number;
  /** Calls that failed with TIMEOUT. */
  timeouts: number;
  /** Calls refused by the open circuit without reaching the backend. */
  rejectedByBreaker: number;
  /** Attempts that waited for the client-side rate limit. */
  rateLimited: number;
  /**
   * The client-side rate limit now, in calls per second: `undefined` while it is idle (no throttle seen yet) or
   * switched off.
   */
  ratePerSecond: number | undefined;
  /** The rate this client sent attempts at recently, in calls per second (0 with the rate limit switched off). */
  sentPerSecond: number;
  circuit: CircuitState;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

const DEFAULTS = {
  maxAttempts: 6,
  maxThrottledAttemptsWithoutDeadline: 20,
  baseDelayMs: 50,
  maxDelayMs: 2000,
  maxRetryAfterMs: 60_000,
  deadlineMs: 10_000,
  failureThreshold: 5,
  resetAfterMs: 5000,
};

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function positiveInt(value: number | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) throw new RangeError(`${name} must be a number >= ${min}; got ${value}`);
  return value;
}

/**
 * Retry + deadline + circuit breaker around one backend. One instance per provider, so the breaker sees every
 * call to that backend.
 */
export class Resilience {
  readonly #maxAttempts: number;
  readonly #maxThrottledAttempts: number;
  readonly #limiter: AdaptiveRateLimiter | undefined;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #deadlineMs: number | undefined;
  readonly #breaker: { threshold: number; resetAfterMs: number } | undefined;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  #consecutiveFailures = 0;
  #openedAt = 0;
  #state: CircuitState = 'closed';
  #trialInFlight = false;
  readonly #stats = {
    calls: 0,
    attempts: 0,
    retries: 0,
    throttled: 0,
    failures: 0,
    timeouts: 0,
    rejectedByBreaker: 0,
    rateLimited: 0,
  };

  constructor(options: ResilienceOptions = {}) {
    const retry: RetryOptions = options.retry === false ? { maxAttempts: 1, maxThrottledAttempts: 1 } : (options.retry ?? {});
    this.#maxAttempts = Math.floor(positiveInt(retry.maxAttempts, DEFAULTS.maxAttempts, 'retry.maxAttempts'));
    this.#baseDelayMs = positiveInt(retry.baseDelayMs, DEFAULTS.baseDelayMs, 'retry.baseDelayMs', 0);
    this.#maxDelayMs = positiveInt(retry.maxDelayMs, DEFAULTS.maxDelayMs, 'retry.maxDelayMs', 0);
    this.#maxRetryAfterMs = positiveInt(retry.maxRetryAfterMs, DEFAULTS.maxRetryAfterMs, 'retry.maxRetryAfterMs', 0);
    this.#deadlineMs =
      options.deadlineMs === false ? undefined : positiveInt(options.deadlineMs, DEFAULTS.deadlineMs, 'deadlineMs');
    if (options.circuitBreaker !== false) {
      const cb = options.circuitBreaker ?? {};
      this.#breaker = {
        threshold: Math.floor(positiveInt(cb.failureThreshold, DEFAULTS.failureThreshold, 'circuitBreaker.failureThreshold')),
        resetAfterMs: positiveInt(cb.resetAfterMs, DEFAULTS.resetAfterMs, 'circuitBreaker.resetAfterMs', 0),
      };
    }
    const throttledDefault =
      this.#deadlineMs === undefined ? DEFAULTS.maxThrottledAttemptsWithoutDeadline : Number.POSITIVE_INFINITY;
    this.#maxThrottledAttempts = Math.floor(
      positiveInt(retry.maxThrottledAttempts, throttledDefault, 'retry.maxThrottledAttempts'),
    );
    this.#now = options.now ?? (() => performance.now());
    this.#limiter = options.rateLimit === false ? undefined : new AdaptiveRateLimiter(options.rateLimit ?? {}, this.#now);
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
  }

  /** Current counters and circuit state. */
  stats(): ResilienceStats {
    const limit = this.#limiter?.stats();
    return {
      ...this.#stats,
      ratePerSecond: limit?.ratePerSecond,
      sentPerSecond: limit?.measuredRatePerSecond ?? 0,
      circuit: this.#currentState(),
    };
  }

  #currentState(): CircuitState {
    if (this.#state === 'open' && this.#breaker && this.#now() - this.#openedAt >= this.#breaker.resetAfterMs) {
      return 'half-open';
    }
    return this.#state;
  }

  /** Full-jitter backoff: a uniform delay in [0, min(max, base * 2^attempt)). */
  backoffMs(attempt: number): number {
    const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** attempt);
    return Math.floor(this.#random() * ceiling);
  }

  /**
   * The wait before retry number `attempt + 1` after `err`: the jittered backoff, or the server's requested delay
   * (`err.retryAfterMs`, from `Retry-After`) when that is longer, so a throttled client never comes back sooner than
   * the service asked. `undefined` when the requested delay is over `maxRetryAfterMs` or would not end before the
   * deadline (`leftMs`): waiting could only end in a timeout, so the call fails at once with the service's error.
   */
  retryDelayMs(attempt: number, err: KeyfoldError, leftMs: number): number | undefined {
    const backoff = this.backoffMs(attempt);
    const hint = err.retryAfterMs;
    if (hint === undefined) return backoff;
    if (hint > this.#maxRetryAfterMs || hint >= leftMs) return undefined;
    return Math.max(backoff, hint);
  }

  /**
   * Runs `fn` under the policy. `fn` receives an AbortSignal that fires at the deadline; backends should pass
   * it to their SDK so a slow request is cancelled, not left running. Each attempt first takes a token from the
   * shared rate limit (waiting for it when the service has been throttling).
   * @throws TimeoutError (code TIMEOUT) when the deadline passes during an attempt; CircuitOpenError (code
   *   UNAVAILABLE) when the breaker is open; a THROTTLED error when the service (or the client-side rate limit) still
   *   throttles when no further attempt can finish before the deadline; otherwise the last error of `fn`.
   */
  async run<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
    this.#stats.calls++;
    const controller = new AbortController();
    const deadlineMs = this.#deadlineMs;
    const startedAt = this.#now();
    let timedOut = false;
    const timer =
      deadlineMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            controller.abort(new TimeoutError(`${operation} did not finish within ${deadlineMs} ms`));
          }, deadlineMs);
    const onOuterAbort = (): void => controller.abort(outer?.reason);
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    const leftMs = (): number => (deadlineMs === undefined ? Number.POSITIVE_INFINITY : deadlineMs - (this.#now() - startedAt));
    // The breaker judges whole calls, not attempts: a call that succeeds after retries means the backend is up, so
    // a flaky service that is still answering does not open the circuit. One admission per call.
    let isTrial = false;
    let outages = 0; // attempts that ended UNAVAILABLE: the bounded budget
    let throttles = 0; // attempts that ended THROTTLED: retried until the deadline
    try {
      this.#admit(operation);
      isTrial = this.#state === 'open';
      if (isTrial) this.#trialInFlight = true;
      for (let attempt = 0; ; attempt++) {
        await this.#takeToken(operation, controller.signal, leftMs, () => timedOut);
        this.#stats.attempts++;
        try {
          const result = await raceAbort(fn(controller.signal), controller.signal);
          this.#limiter?.onSuccess();
          this.#onSuccess();
          return result;
        } catch (err) {
          if (timedOut) {
            this.#stats.timeouts++;
            this.#stats.failures++;
            this.#onFailure(true);
            throw controller.signal.reason as TimeoutError;
          }
          const keyfold = err instanceof KeyfoldError ? err : undefined;
          const throttled = keyfold?.code === 'THROTTLED';
          if (throttled) {
            this.#stats.throttled++;
            throttles++;
            this.#limiter?.onThrottle();
          } else if (keyfold && !keyfold.retryable && keyfold.code !== 'TIMEOUT') {
            this.#limiter?.onSuccess(); // the service answered (a client error): not a sign of overload
          }
          if (keyfold?.retryable && !throttled) outages++;
          const backendDown = keyfold !== undefined && !throttled && (keyfold.retryable || keyfold.code === 'TIMEOUT');
          const withinBudget = throttled ? throttles < this.#maxThrottledAttempts : outages < this.#maxAttempts;
          const retry = keyfold !== undefined && keyfold.retryable && withinBudget;
          const left = leftMs();
          const delay = retry ? this.retryDelayMs(attempt, keyfold, left) : undefined;
          // A wait that would outlast the deadline can only end in a timeout: fail now with the service's answer.
          if (delay === undefined || delay >= left || controller.signal.aborted) {
            this.#stats.failures++;
            this.#onFailure(backendDown);
            throw err;
          }
          this.#stats.retries++;
          try {
            await this.#sleep(delay, controller.signal);
          } catch {
            this.#stats.failures++;
            this.#onFailure(backendDown);
            if (timedOut) this.#stats.timeouts++;
            if (timedOut && !throttled) throw controller.signal.reason as TimeoutError;
            throw err;
          }
        }
      }
    } catch (err) {
      if (err instanceof RateLimitWaitError) {
        // The client-side limit cut the call short: count it like the throttle it stands for.
        this.#stats.failures++;
        this.#onFailure(false);
        throw err.error;
      }
      throw err;
    } finally {
      if (isTrial) this.#trialInFlight = false;
      if (timer) clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    }
  }

  /**
   * Takes a token of the shared rate limit for the next attempt, waiting when the bucket is empty. A wait that
   * would not end before the deadline is not started: the call fails at once, THROTTLED.
   */
  async #takeToken(
    operation: string,
    signal: AbortSignal,
    leftMs: () => number,
    timedOut: () => boolean,
  ): Promise<void> {
    const limiter = this.#limiter;
    if (!limiter) return;
    const wait = limiter.acquire();
    if (wait <= 0) return;
    this.#stats.rateLimited++;
    const refuse = (): RateLimitWaitError =>
      new RateLimitWaitError(
        new ProviderError(
          'THROTTLED',
          `${operation} was not sent: the service has been throttling, and the client-side rate limit ` +
            `(${limiter.stats().ratePerSecond?.toFixed(1) ?? '?'} calls/s) could not admit it before its deadline`,
        ),
      );
    if (wait >= leftMs()) {
      limiter.cancel();
      throw refuse();
    }
    try {
      await this.#sleep(wait, signal);
    } catch (err) {
      limiter.cancel();
      if (timedOut()) throw refuse();
      throw err;
    }
  }

  #admit(operation: string): void {
    if (!this.#breaker || this.#state === 'closed') return;
    const state = this.#currentState();
    if (state === 'half-open' && !this.#trialInFlight) return; // one trial call at a time
    this.#stats.rejectedByBreaker++;
    throw new CircuitOpenError(
      `${operation} refused without calling the backend: the circuit breaker is open after ` +
        `${this.#breaker.threshold} consecutive failures; it lets a trial call through ` +
        `${this.#breaker.resetAfterMs} ms after opening`,
    );
  }

  #onSuccess(): void {
    this.#consecutiveFailures = 0;
    this.#state = 'closed';
  }

  #onFailure(countsForBreaker: boolean): void {
    if (!this.#breaker) return;
    if (!countsForBreaker) {
      // The backend answered (a client error such as UNWRAP_FAILED): it is up.
      this.#consecutiveFailures = 0;
      if (this.#state === 'open') this.#state = 'closed';
      return;
    }
    this.#consecutiveFailures++;
    if (this.#state === 'open' || this.#consecutiveFailures >= this.#breaker.threshold) {
      this.#state = 'open';
      this.#openedAt = this.#now();
    }
  }
}

/** Carries the THROTTLED error of a call the client-side rate limit ended, out of the retry loop. */
class RateLimitWaitError extends Error {
  readonly error: KeyfoldError;
  constructor(error: KeyfoldError) {
    super(error.message);
    this.error = error;
  }
}

/** Resolves or rejects with `p`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- pass the backend's rejection through unchanged
        reject(e);
      },
    );
  });
}
