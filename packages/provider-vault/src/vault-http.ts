/**
 * The adapter between the provider and Vault's HTTP API: the shape of the `fetch` it needs, one request function
 * that adds the token and namespace headers, cancels on the deadline's AbortSignal and turns answers into values or
 * two error types (an API answer with a status, or no answer at all). Nothing else in this package does HTTP.
 * @module
 */
import { parseRetryAfter } from '@keyfold/envelope-core';

/**
 * What the provider needs from `fetch`: the global one fits; pass another for a proxy, mutual TLS (an undici
 * `Agent` as `dispatcher`), or instrumentation.
 * @example
 * ```ts
 * const viaProxy: VaultFetch = (url, init) => fetch(url, { ...init, dispatcher: proxyAgent } as RequestInit);
 * ```
 */
export type VaultFetch = (url: string, init: RequestInit) => Promise<Response>;

/** Vault answered with a non-2xx status. `errors` is Vault's `{"errors": [...]}` list (never holds key material). */
export class VaultApiError extends Error {
  readonly status: number;
  readonly errors: readonly string[];
  readonly path: string;
  /** The delay Vault asked for (`Retry-After` of a rate limit quota's 429), in ms, when it sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, errors: readonly string[], path: string, retryAfterMs?: number) {
    super(`Vault answered ${status} for ${path}${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`);
    this.name = 'VaultApiError';
    this.status = status;
    this.errors = errors;
    this.path = path;
    this.retryAfterMs = retryAfterMs;
  }
}

/** No answer from Vault (connection refused or reset, DNS, TLS). The network error is the `cause`. */
export class VaultConnectionError extends Error {
  readonly path: string;
  constructor(path: string, cause: unknown) {
    super(`Vault could not be reached for ${path}`, { cause });
    this.name = 'VaultConnectionError';
    this.path = path;
  }
}

/** A parsed Vault answer. */
export interface VaultAnswer {
  readonly status: number;
  readonly data: Record<string, unknown> | undefined;
  readonly auth: Record<string, unknown> | undefined;
  readonly warnings: readonly string[];
  /** Vault's `errors` list: set on an accepted non-2xx answer (a batch call refused as a whole has nothing else). */
  readonly errors: readonly string[];
}

export interface VaultRequest {
  readonly method: 'GET' | 'POST';
  /** Path below `/v1/`, e.g. `transit/encrypt/payments`. */
  readonly path: string;
  readonly body?: unknown;
  readonly token?: string;
  readonly signal?: AbortSignal;
  /** Statuses (besides 2xx) answered with a body to return rather than throw: batch calls with per-item errors. */
  readonly acceptStatus?: readonly number[];
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Talks to one Vault server (one address, one namespace). */
export class VaultHttp {
  readonly endpoint: string;
  readonly namespace: string | undefined;
  readonly #fetch: VaultFetch;

  constructor(endpoint: string, namespace: string | undefined, fetchImpl: VaultFetch) {
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.namespace = namespace;
    this.#fetch = fetchImpl;
  }

  /**
   * Sends one request.
   * @throws VaultApiError for a non-2xx answer (unless accepted), VaultConnectionError when there is no answer, and
   *   the signal's reason when it aborts.
   */
  async request(r: VaultRequest): Promise<VaultAnswer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (r.token !== undefined) headers['x-vault-token'] = r.token;
    if (this.namespace) headers['x-vault-namespace'] = this.namespace;
    if (r.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.#fetch(`${this.endpoint}/v1/${r.path}`, {
        method: r.method,
        headers,
        // Never re-send the token to whatever address a redirect names (a standby's api_addr, or an attacker's).
        redirect: 'manual',
        ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}),
        ...(r.signal ? { signal: r.signal } : {}),
      });
    } catch (err) {
      if (r.signal?.aborted) throw r.signal.reason;
      throw new VaultConnectionError(r.path, err);
    }
    let json: unknown;
    try {
      const text = await res.text();
      json = text.length === 0 ? undefined : JSON.parse(text);
    } catch (err) {
      if (r.signal?.aborted) throw r.signal.reason;
      if (res.ok) throw new VaultConnectionError(r.path, err);
      json = undefined;
    }
    const body = asRecord(json);
    if (res.status >= 300 && res.status < 400) {
      throw new VaultApiError(res.status, [`redirected to ${res.headers.get('location') ?? 'another address'}`], r.path);
    }
    const errors = Array.isArray(body?.errors) ? body.errors.filter((e): e is string => typeof e === 'string') : [];
    if (!res.ok && !(r.acceptStatus ?? []).includes(res.status)) {
      throw new VaultApiError(res.status, errors, r.path, parseRetryAfter(res.headers.get('retry-after')));
    }
    const warnings = Array.isArray(body?.warnings) ? body.warnings.filter((w): w is string => typeof w === 'string') : [];
    return { status: res.status, data: asRecord(body?.data), auth: asRecord(body?.auth), warnings, errors };
  }
}
