/**
 * Adaptive client-side rate limiting: one token bucket per provider, shared by every concurrent call to it, whose
 * rate shrinks on each throttled answer and grows back on each successful one (the idea of the AWS SDK's adaptive
 * retry mode, written here for every provider). A burst of callers then converges on the rate the service accepts
 * instead of amplifying the throttling with ever more retries.
 *
 * The rule, and why it holds:
 * - The bucket is off until the provider's first throttled answer: a service that never throttles pays nothing.
 * - Each throttle multiplies the rate by `shrinkFactor`, each success by `growthFactor`. The rate therefore falls
 *   only while throttles make up more than `ln g / (ln g - ln s)` of the answers (0.5 for the defaults 0.9 / 1.11):
 *   against a request quota the client settles where that share is reached; throttling that does not depend on the
 *   client's rate (a share below that line, whatever we send) never drags the rate down to a crawl.
 * - The rate never falls below `minRatePerSecond` and never rises above twice the rate the client actually sent
 *   (measured over half-second windows), so after a quiet spell the first throttles take effect at once.
 * - Tokens are reserved first come, first served: a caller that must wait learns its wait at once, and gives its
 *   token back when its deadline ends the wait.
 * @module
 */

/** Options of the adaptive rate limiter (`ResilienceOptions.rateLimit`). */
export interface RateLimitOptions {
  /** Lowest rate the bucket shrinks to, in calls per second. Default 1. */
  minRatePerSecond?: number;
  /** Factor applied to the rate on each throttled answer, in (0, 1). Default 0.9. */
  shrinkFactor?: number;
  /** Factor applied to the rate on each successful answer, > 1. Default 1.11. */
  growthFactor?: number;
  /** Tokens the bucket holds at most, as seconds of its current rate (at least one token). Default 0.1. */
  burstSeconds?: number;
}

/** What the limiter reports in `stats()`. */
export interface RateLimitStats {
  /** True once a throttle switched the bucket on. */
  enabled: boolean;
  /** Current rate in calls per second (`undefined` while off). */
  ratePerSecond: number | undefined;
  /** Rate the client sent at, measured over half-second windows, in calls per second. */
  measuredRatePerSecond: number;
  /** Attempts that had to wait for a token. */
  delayed: number;
}

const DEFAULTS = { minRatePerSecond: 1, shrinkFactor: 0.9, growthFactor: 1.11, burstSeconds: 0.1 };

/** Length of one send-rate measurement window, ms. */
const WINDOW_MS = 500;

function inRange(value: number | undefined, fallback: number, name: string, ok: (v: number) => boolean, rule: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) throw new RangeError(`${name} must be ${rule}; got ${String(value)}`);
  return value;
}

/**
 * The shared token bucket of one provider. Not exported from the package: `Resilience` owns one and reports it.
 */
export class AdaptiveRateLimiter {
  readonly #minRate: number;
  readonly #shrink: number;
  readonly #growth: number;
  readonly #burstSeconds: number;
  readonly #now: () => number;
  #enabled = false;
  #rate = 0;
  #tokens = 0;
  #refilledAt = 0;
  #windowStart: number;
  #windowCount = 0;
  #measured = 0;
  #delayed = 0;

  /** @throws RangeError for an option outside its range. */
  constructor(options: RateLimitOptions, now: () => number) {
    this.#minRate = inRange(options.minRatePerSecond, DEFAULTS.minRatePerSecond, 'rateLimit.minRatePerSecond', (v) => v > 0, 'a number > 0');
    this.#shrink = inRange(options.shrinkFactor, DEFAULTS.shrinkFactor, 'rateLimit.shrinkFactor', (v) => v > 0 && v < 1, 'a number in (0, 1)');
    this.#growth = inRange(options.growthFactor, DEFAULTS.growthFactor, 'rateLimit.growthFactor', (v) => v > 1, 'a number > 1');
    this.#burstSeconds = inRange(options.burstSeconds, DEFAULTS.burstSeconds, 'rateLimit.burstSeconds', (v) => v > 0, 'a number > 0');
    this.#now = now;
    this.#windowStart = now();
  }

  /**
   * Takes a token for one attempt (a reservation: the caller must then wait the returned time, or hand the token
   * back with {@link cancel}). Also counts the attempt for the send-rate measurement.
   * @returns how long to wait before sending, in ms (0 while the bucket is off or holds a token).
   */
  acquire(): number {
    const now = this.#now();
    this.#measure(now);
    if (!this.#enabled) return 0;
    this.#refill(now);
    this.#tokens -= 1;
    if (this.#tokens >= 0) return 0;
    this.#delayed++;
    return (-this.#tokens / this.#rate) * 1000;
  }

  /** Gives back a token reserved by {@link acquire} whose attempt was never sent (the wait was cut short). */
  cancel(): void {
    if (this.#enabled) this.#tokens = Math.min(this.#capacity(), this.#tokens + 1);
  }

  /** The service throttled an attempt: switch the bucket on, and shrink its rate. */
  onThrottle(): void {
    const now = this.#now();
    this.#refill(now);
    if (!this.#enabled) {
      this.#enabled = true;
      // Start from what the client was sending.
      this.#rate = Math.max(this.#minRate, this.#sendRate(now));
      this.#tokens = 0;
    }
    this.#rate = Math.max(this.#minRate, this.#rate * this.#shrink);
    this.#tokens = Math.min(this.#tokens, this.#capacity());
  }

  /** The service answered an attempt (successfully or with a client error): grow the rate back. */
  onSuccess(): void {
    if (!this.#enabled) return;
    const now = this.#now();
    this.#refill(now);
    const ceiling = Math.max(this.#minRate, 2 * this.#sendRate(now));
    this.#rate = Math.max(this.#minRate, Math.min(ceiling, this.#rate * this.#growth));
  }

  stats(): RateLimitStats {
    this.#measure(this.#now(), false);
    return {
      enabled: this.#enabled,
      ratePerSecond: this.#enabled ? this.#rate : undefined,
      measuredRatePerSecond: this.#measured,
      delayed: this.#delayed,
    };
  }

  /**
   * The rate the client sends at: the smoothed measurement, or the current window's count spread over at least one
   * full window (an underestimate early in a window, never an overestimate) when that is higher.
   */
  #sendRate(now: number): number {
    return Math.max(this.#measured, (this.#windowCount * 1000) / Math.max(now - this.#windowStart, WINDOW_MS));
  }

  #capacity(): number {
    return Math.max(1, this.#rate * this.#burstSeconds);
  }

  #refill(now: number): void {
    if (this.#enabled) {
      const elapsed = Math.max(0, now - this.#refilledAt);
      this.#tokens = Math.min(this.#capacity(), this.#tokens + (elapsed / 1000) * this.#rate);
    }
    this.#refilledAt = now;
  }

  /** Counts one attempt (when called from acquire) and closes measurement windows that have ended. */
  #measure(now: number, count = true): void {
    const elapsed = now - this.#windowStart;
    if (elapsed >= WINDOW_MS) {
      const rate = (this.#windowCount * 1000) / elapsed;
      // Smoothed, so one quiet or busy window does not swing the ceiling; a long idle gap decays it fully.
      this.#measured = elapsed > 4 * WINDOW_MS ? rate : 0.5 * rate + 0.5 * this.#measured;
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (count) this.#windowCount++;
  }
}
