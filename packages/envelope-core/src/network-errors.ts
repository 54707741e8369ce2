/**
 * The one classifier of network failures for every provider: whether an error from a vendor SDK or `fetch` means
 * the service could not be reached or the connection broke (so the call is UNAVAILABLE, and the shared resilience
 * may retry it), as opposed to an answer from the service. Providers map service answers themselves; the transport
 * is the same for all of them.
 * @module
 */

/**
 * Error codes of a connection that failed or broke: Node system errors (connect, DNS, reset, timeout), undici's
 * socket errors (`fetch`), and a response stream that ended early.
 */
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** How many `cause` links are followed: SDKs wrap the system error once or twice (fetch -> TypeError -> cause). */
const MAX_CAUSE_DEPTH = 4;

/**
 * The network error code of `err` (`ECONNREFUSED`, `UND_ERR_SOCKET`, ...), found on it or on its `cause` chain (up
 * to four links deep), or `undefined` when it is not a network failure. Only string `code`s are read; nothing else
 * of the error (messages may carry request details) is looked at.
 * @throws never
 * @example
 * ```ts
 * const net = networkErrorCode(err);
 * if (net !== undefined) return new ProviderError('UNAVAILABLE', `the service could not be reached (${net})`, { cause: err });
 * ```
 */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH; depth++) {
    if (e === null || typeof e !== 'object') return undefined;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
