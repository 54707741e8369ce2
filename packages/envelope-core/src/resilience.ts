/**
 * Shared resilience for every provider: retries with full-jitter exponential backoff for THROTTLED / UNAVAILABLE
 * (never sooner than a `Retry-After` the service sent, within the deadline), one deadline per call (covering all its
 * attempts), and a circuit breaker. Written once here so providers only
 * write backend calls (DESIGN.md "The one interface").
 *
 * Providers whose vendor SDK already retries (AWS SDK v3 standard mode, for example) pass
 * `retry: { maxAttempts: 1 }` so two full retry loops are never stacked; the deadline and breaker still apply.
 * @module
 */
import { CircuitOpenError, KeyfoldError, TimeoutError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, including the first. Default 4. 1 disables retries. */
  maxAttempts?: number;
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
  /** Consecutive failed calls (UNAVAILABLE / TIMEOUT / THROTTLED after their retries) that open the circuit. Default 5. */
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
  /** Injected for tests: the clock (ms), a sleep, and a random source in [0, 1). */
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Counters a resilience instance keeps; shown by `probe()` and `envelope.stats()`. */
export interface ResilienceStats {
  calls: number;
  attempts: number;
  retries: number;
  failures: number;
  timeouts: number;
  rejectedByBreaker: number;
  circuit: CircuitState;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

const DEFAULTS = {
  maxAttempts: 4,
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
  readonly #stats: Omit<ResilienceStats, 'circuit'> = {
    calls: 0,
    attempts: 0,
    retries: 0,
    failures: 0,
    timeouts: 0,
    rejectedByBreaker: 0,
  };

  constructor(options: ResilienceOptions = {}) {
    const retry = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {});
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
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
  }

  /** Current counters and circuit state. */
  stats(): ResilienceStats {
    return { ...this.#stats, circuit: this.#currentState() };
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
   * it to their SDK so a slow request is cancelled, not left running.
   * @throws TimeoutError (code TIMEOUT) when the deadline passes; CircuitOpenError (code UNAVAILABLE) when the
   *   breaker is open; otherwise the last error of `fn`.
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
    // The breaker judges whole calls, not attempts: a call that succeeds after retries means the backend is up, so
    // a flaky service that is still answering does not open the circuit. One admission per call.
    let isTrial = false;
    try {
      this.#admit(operation);
      isTrial = this.#state === 'open';
      if (isTrial) this.#trialInFlight = true;
      for (let attempt = 0; ; attempt++) {
        this.#stats.attempts++;
        try {
          const result = await raceAbort(fn(controller.signal), controller.signal);
          this.#onSuccess();
          return result;
        } catch (err) {
          if (timedOut) {
            this.#stats.timeouts++;
            this.#stats.failures++;
            this.#onFailure(true);
            throw controller.signal.reason as TimeoutError;
          }
          const backendDown = err instanceof KeyfoldError && (err.retryable || err.code === 'TIMEOUT');
          const retry = err instanceof KeyfoldError && err.retryable && attempt + 1 < this.#maxAttempts;
          const leftMs = deadlineMs === undefined ? Number.POSITIVE_INFINITY : deadlineMs - (this.#now() - startedAt);
          const delay = retry && err instanceof KeyfoldError ? this.retryDelayMs(attempt, err, leftMs) : undefined;
          if (delay === undefined || controller.signal.aborted) {
            this.#stats.failures++;
            this.#onFailure(backendDown);
            throw err;
          }
          this.#stats.retries++;
          try {
            await this.#sleep(delay, controller.signal);
          } catch {
            this.#stats.failures++;
            this.#onFailure(true);
            if (timedOut) {
              this.#stats.timeouts++;
              throw controller.signal.reason as TimeoutError;
            }
            throw err;
          }
        }
      }
    } finally {
      if (isTrial) this.#trialInFlight = false;
      if (timer) clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
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
