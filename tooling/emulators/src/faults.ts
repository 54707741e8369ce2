/**
 * Runtime fault injection and call counters, shared by both emulators. Tests and the bench change the settings while
 * the emulator runs (`emu.faults.set({...})`); every request draws its fate from them before it is served.
 * @module
 */

/** How long the emulator waits before it answers a request. */
export type LatencySpec =
  | { readonly kind: 'fixed'; readonly ms: number }
  | { readonly kind: 'uniform'; readonly minMs: number; readonly maxMs: number }
  /** Exponential with the given mean (a long tail), capped at `capMs` (default 10 x mean). */
  | { readonly kind: 'exponential'; readonly meanMs: number; readonly capMs?: number };

/** Fault settings. Ratios are probabilities in [0, 1], drawn independently per request in this order. */
export interface FaultSettings {
  /** Delay before answering (also before a fault answer). Default none. */
  readonly latency?: LatencySpec | undefined;
  /** Share of requests answered with the service's throttling error (KMS ThrottlingException 400, Vault 429). */
  readonly throttleRatio?: number | undefined;
  /** Share of requests answered with a 5xx (KMS 500 KMSInternalException, Vault 500 / 503). */
  readonly serverErrorRatio?: number | undefined;
  /** Share of requests whose connection is reset without an answer. */
  readonly resetRatio?: number | undefined;
  /** Full outage: every request's connection is reset without an answer (admin requests excepted). */
  readonly outage?: boolean | undefined;
  /** Only these operations (KMS `Encrypt`, Vault `encrypt`, ...) are subject to the ratios and latency. Default all. */
  readonly operations?: readonly string[] | undefined;
  /**
   * The delay each throttling answer asks for, in whole seconds drawn uniformly from [min, max] per throttled request
   * (the seeded PRNG, so runs repeat), or `false` for none. Each service says it its own way: Key Vault and AWS KMS
   * with a `Retry-After` header, Cloud KMS with a `google.rpc.RetryInfo` error detail. Default `{ min: 0, max: 3 }`.
   * The values sent are kept in {@link FaultController.retryAfterSent}.
   */
  readonly retryAfterSeconds?: { readonly min: number; readonly max: number } | false | undefined;
  /**
   * Request quota, as KMS and Cloud KMS enforce theirs: at most `requestsPerSecond` requests per second per
   * operation group, the excess answered with the service's throttling error. AWS KMS shares one quota between the
   * cryptographic operations of a key type ("Request quotas" in the AWS KMS Developer Guide: Encrypt, Decrypt,
   * GenerateDataKey, ReEncrypt, ... count together); Cloud KMS has per-minute "cryptographic requests" and "read
   * requests" quotas (Cloud KMS docs, "Quotas"). `groups` names the operations of each group; every operation in no
   * group shares the group `*`. Each group is a token bucket holding one second of requests, refilled continuously.
   * Applies to every operation (not only `operations`), before the ratios are drawn. Default none.
   */
  readonly quota?: QuotaSettings | undefined;
  /** Seed of the PRNG that draws the faults, for reproducible runs. Default: a fixed seed. */
  readonly seed?: number | undefined;
}

/** A request quota (see {@link FaultSettings.quota}). */
export interface QuotaSettings {
  /** Requests accepted per second in each group, > 0. */
  readonly requestsPerSecond: number;
  /** Operation groups by name: `{ crypto: ['Encrypt', 'Decrypt', 'GenerateDataKey'] }`. Others share `*`. */
  readonly groups?: Readonly<Record<string, readonly string[]>> | undefined;
}

/** Default range of {@link FaultSettings.retryAfterSeconds}. */
const DEFAULT_RETRY_AFTER = { min: 0, max: 3 } as const;

/** What happens to one request. */
export type FaultDecision = 'serve' | 'throttle' | 'server-error' | 'reset' | 'outage';

/** Counters of one emulator; `byOperation` counts requests that reached an operation (faulted or not). */
export interface CallCounters {
  /** Every request received (admin requests excluded). */
  requests: number;
  /** Requests served by the emulated service (successful or with a service error). */
  served: number;
  /** Served requests that ended in a 4xx/5xx from the emulated service itself (not an injected fault). */
  serviceErrors: number;
  throttled: number;
  serverErrors: number;
  resets: number;
  outageRejected: number;
  byOperation: Record<string, number>;
}

function checkRatio(value: number | undefined, name: string): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new RangeError(`${name} must be a number in [0, 1]; got ${String(value)}`);
}

function checkQuota(q: QuotaSettings | undefined): void {
  if (q === undefined) return;
  if (q === null || typeof q !== 'object') throw new TypeError('quota must be { requestsPerSecond, groups? }');
  if (typeof q.requestsPerSecond !== 'number' || !Number.isFinite(q.requestsPerSecond) || !(q.requestsPerSecond > 0)) {
    throw new RangeError(`quota.requestsPerSecond must be a finite number > 0; got ${String(q.requestsPerSecond)}`);
  }
  if (q.groups === undefined) return;
  if (q.groups === null || typeof q.groups !== 'object') throw new TypeError('quota.groups must map group names to operation names');
  for (const [name, ops] of Object.entries(q.groups)) {
    if (!Array.isArray(ops) || ops.some((o) => typeof o !== 'string')) throw new TypeError(`quota.groups.${name} must be an array of operation names`);
  }
}

function checkLatency(l: LatencySpec | undefined): void {
  if (l === undefined) return;
  const nonNeg = (v: unknown, name: string): void => {
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`latency.${name} must be a finite number >= 0`);
  };
  switch (l.kind) {
    case 'fixed':
      nonNeg(l.ms, 'ms');
      return;
    case 'uniform':
      nonNeg(l.minMs, 'minMs');
      nonNeg(l.maxMs, 'maxMs');
      if (l.maxMs < l.minMs) throw new RangeError('latency.maxMs must be >= latency.minMs');
      return;
    case 'exponential':
      nonNeg(l.meanMs, 'meanMs');
      if (l.capMs !== undefined) nonNeg(l.capMs, 'capMs');
      return;
    default:
      throw new TypeError(`latency.kind must be fixed, uniform or exponential; got ${String((l as { kind?: unknown }).kind)}`);
  }
}

/** mulberry32: a small, fast, seedable PRNG. Not for keys: only to decide which requests fail. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The live fault settings of one emulator. `set` replaces them (validated), `clear` removes every fault.
 * @example
 * ```ts
 * emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1, latency: { kind: 'uniform', minMs: 1, maxMs: 5 } });
 * emu.faults.clear();
 * ```
 */
export class FaultController {
  #settings: FaultSettings = {};
  #random: () => number = prng(0x6b66);
  readonly #now: () => number;
  /** Token buckets of the quota's groups: tokens left and when they were last refilled. */
  #buckets = new Map<string, { tokens: number; at: number }>();
  /** Requests the quota throttled since the last `set` / `clear` (also counted as `throttled` by the emulator). */
  quotaThrottled = 0;
  /** Requests the quota let through since the last `set` / `clear`, by group. */
  quotaAccepted: Record<string, number> = {};

  /** @param now the clock for the quota, in ms (injected by tests). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** The current settings. */
  get settings(): FaultSettings {
    return this.#settings;
  }

  /**
   * Replaces the fault settings.
   * @throws RangeError / TypeError for a ratio outside [0, 1] or a malformed latency.
   */
  set(settings: FaultSettings): void {
    if (settings === null || typeof settings !== 'object') throw new TypeError('fault settings must be an object');
    checkRatio(settings.throttleRatio, 'throttleRatio');
    checkRatio(settings.serverErrorRatio, 'serverErrorRatio');
    checkRatio(settings.resetRatio, 'resetRatio');
    checkLatency(settings.latency);
    checkQuota(settings.quota);
    if (settings.operations !== undefined && !Array.isArray(settings.operations)) throw new TypeError('operations must be an array of names');
    const ra = settings.retryAfterSeconds;
    if (ra !== undefined && ra !== false) {
      if (ra === null || typeof ra !== 'object') throw new TypeError('retryAfterSeconds must be { min, max } or false');
      for (const [name, v] of [['min', ra.min], ['max', ra.max]] as const) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new RangeError(`retryAfterSeconds.${name} must be an integer >= 0`);
      }
      if (ra.max < ra.min) throw new RangeError('retryAfterSeconds.max must be >= retryAfterSeconds.min');
    }
    this.#settings = { ...settings };
    this.#random = prng(settings.seed ?? 0x6b66);
    this.retryAfterSent.length = 0;
    this.#buckets = new Map();
    this.quotaThrottled = 0;
    this.quotaAccepted = {};
  }

  /**
   * The delays (seconds) throttling answers asked for since the last `set` / `clear`, in order: the latest 10,000,
   * so a long-running emulator under faults does not grow without bound.
   */
  readonly retryAfterSent: number[] = [];

  /**
   * Draws the delay one throttling answer asks for, in whole seconds, and records it; `undefined` when the settings
   * say none (`retryAfterSeconds: false`).
   */
  drawRetryAfterSeconds(): number | undefined {
    const range = this.#settings.retryAfterSeconds ?? DEFAULT_RETRY_AFTER;
    if (range === false) return undefined;
    const seconds = range.min + Math.floor(this.#random() * (range.max - range.min + 1));
    this.retryAfterSent.push(seconds);
    if (this.retryAfterSent.length > 10_000) this.retryAfterSent.shift();
    return seconds;
  }

  /** Removes every fault. */
  clear(): void {
    this.set({});
  }

  #applies(operation: string): boolean {
    const ops = this.#settings.operations;
    return ops === undefined || ops.includes(operation);
  }

  /** Draws the fate of one request for `operation`. */
  decide(operation: string): FaultDecision {
    const s = this.#settings;
    if (s.outage) return 'outage';
    if (s.quota && !this.#withinQuota(s.quota, operation)) {
      this.quotaThrottled++;
      return 'throttle';
    }
    if (!this.#applies(operation)) return 'serve';
    if (s.resetRatio && this.#random() < s.resetRatio) return 'reset';
    const r = this.#random();
    const throttle = s.throttleRatio ?? 0;
    if (r < throttle) return 'throttle';
    if (r < throttle + (s.serverErrorRatio ?? 0)) return 'server-error';
    return 'serve';
  }

  /** Takes one request of `operation` from its group's bucket; false when the group is over its quota. */
  #withinQuota(q: QuotaSettings, operation: string): boolean {
    let group = '*';
    for (const [name, ops] of Object.entries(q.groups ?? {})) {
      if (ops.includes(operation)) {
        group = name;
        break;
      }
    }
    const now = this.#now();
    const rate = q.requestsPerSecond;
    const b = this.#buckets.get(group) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.#buckets.set(group, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    this.quotaAccepted[group] = (this.quotaAccepted[group] ?? 0) + 1;
    return true;
  }

  /** Delay for one request of `operation`, in ms (0 without a latency setting). */
  latencyMs(operation: string): number {
    const l = this.#settings.latency;
    if (!l || !this.#applies(operation)) return 0;
    switch (l.kind) {
      case 'fixed':
        return l.ms;
      case 'uniform':
        return l.minMs + this.#random() * (l.maxMs - l.minMs);
      case 'exponential': {
        const cap = l.capMs ?? l.meanMs * 10;
        return Math.min(cap, -l.meanMs * Math.log(1 - this.#random()));
      }
    }
  }
}

/** Fresh, zeroed counters. */
export function newCounters(): CallCounters {
  return { requests: 0, served: 0, serviceErrors: 0, throttled: 0, serverErrors: 0, resets: 0, outageRejected: 0, byOperation: {} };
}
