/**
 * Reading a server's "retry after" hint: the HTTP `Retry-After` header (RFC 9110 section 10.2.3: delay-seconds or an
 * HTTP-date) and the millisecond variants Azure services send (`retry-after-ms`, `x-ms-retry-after-ms`). Providers
 * turn what their service sent into `retryAfterMs` on the THROTTLED / UNAVAILABLE error they map; the shared
 * resilience then waits at least that long, within the call's deadline.
 * @module
 */

/** Longest hint that is kept at all (one day): anything larger is treated as no hint rather than trusted. */
const MAX_HINT_MS = 86_400_000;

/**
 * Parses one `Retry-After` value into milliseconds from now: a number of seconds (`"3"`; a decimal such as `"0.5"`
 * is read too, as the AWS SDK does), or an HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, 0 when already past).
 * @returns the delay in ms, or `undefined` for a missing, malformed, negative or absurdly large value.
 * @example
 * ```ts
 * parseRetryAfter('2'); // 2000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT')); // 2000
 * parseRetryAfter('soon'); // undefined
 * ```
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(v)) return bounded(Math.ceil(Number(v) * 1000));
  // An HTTP-date (IMF-fixdate) names a day of the week and GMT (some servers, Go's time.RFC1123 in UTC, say UTC);
  // Date.parse alone would accept far looser strings.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} (?:GMT|UTC)$/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return bounded(Math.max(0, at - nowMs));
}

/**
 * The server's retry hint from response headers, in ms: `retry-after-ms` or `x-ms-retry-after-ms` (whole
 * milliseconds) first, then `Retry-After`. `get` looks a header up by lower-case name (a `Headers` object's `get`,
 * or a lookup in a plain record).
 * @returns the delay in ms, or `undefined` when no header holds a valid hint.
 * @example
 * ```ts
 * retryAfterFromHeaders((name) => response.headers.get(name)); // 1500 for "retry-after-ms: 1500"
 * ```
 */
export function retryAfterFromHeaders(get: (name: string) => string | null | undefined, nowMs: number = Date.now()): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const raw = get(name);
    if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) return bounded(Number(raw));
  }
  return parseRetryAfter(get('retry-after'), nowMs);
}

function bounded(ms: number): number | undefined {
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_HINT_MS ? ms : undefined;
}
