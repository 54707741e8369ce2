/**
 * Maps Cloud KMS failures to Keyfold codes. gRPC errors carry a gRPC status `code` (0-16); REST errors that came
 * with a JSON body are turned into the same codes by gax; transport failures of the REST fallback arrive as
 * GaxiosError / fetch errors with an HTTP status or a system error code.
 * @module
 */
import { KeyfoldError, ProviderError, networkErrorCode, type KeyfoldErrorCode } from '@keyfold/envelope-core';

/** gRPC status codes (google.rpc.Code). */
const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const GRPC_NAMES: Readonly<Record<string, number>> = GRPC;

/**
 * A CRC32C check failed: the request or the response was changed in transit (Google's end-to-end integrity
 * guidance). Coded `UNAVAILABLE`, so the shared resilience retries it a bounded number of times like any other
 * transient failure of the path to the service; the message says what happened.
 * @example
 * ```ts
 * if (err instanceof ChecksumMismatchError) metrics.increment('kms.crc32c_mismatch');
 * ```
 */
export class ChecksumMismatchError extends ProviderError {
  readonly checksumMismatch = true;
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('UNAVAILABLE', message, options);
    this.name = 'ChecksumMismatchError';
  }
}

interface ErrorLike {
  code?: unknown;
  status?: unknown;
  message?: unknown;
  details?: unknown;
  response?: { status?: unknown } | undefined;
  cause?: unknown;
}

/**
 * The gRPC code of an error: its numeric `code` (gRPC), its `status` name (gax GoogleError), or the `status` of the
 * JSON error body the REST fallback puts into the GaxiosError message (`{"error":{"code":400,...,"status":"..."}}`),
 * which tells INVALID_ARGUMENT from FAILED_PRECONDITION where the HTTP status (400 for both) cannot.
 */
function grpcCodeOf(e: ErrorLike): number | undefined {
  if (typeof e.code === 'number' && e.code >= 0 && e.code <= 16) return e.code;
  if (typeof e.status === 'string' && e.status in GRPC_NAMES) return GRPC_NAMES[e.status];
  const m = typeof e.message === 'string' ? /"status"\s*:\s*"([A-Z_]+)"/.exec(e.message) : null;
  const name = m?.[1];
  if (name !== undefined && name in GRPC_NAMES) return GRPC_NAMES[name];
  return undefined;
}

function httpStatusOf(e: ErrorLike): number | undefined {
  if (typeof e.code === 'number' && e.code >= 100 && e.code <= 599) return e.code;
  if (typeof e.status === 'number' && e.status >= 100 && e.status <= 599) return e.status;
  const rs = e.response?.status;
  if (typeof rs === 'number') return rs;
  return undefined;
}

function text(e: ErrorLike): string {
  const m = typeof e.message === 'string' ? e.message : '';
  const d = typeof e.details === 'string' ? e.details : '';
  return `${m} ${d}`;
}

/** True for the INVALID_ARGUMENT Cloud KMS answers when a request checksum did not match the data it received. */
function isChecksumComplaint(e: ErrorLike): boolean {
  return /crc32c|checksum/i.test(text(e));
}

function make(code: KeyfoldErrorCode, message: string, cause: unknown, retryAfterMs?: number): ProviderError {
  return new ProviderError(code, message, { cause, retryAfterMs });
}

/** A decoded int64 field: absent (0), a number, a decimal string, or a protobufjs Long (`toNumber()`). */
function int64Of(v: unknown): number | undefined {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return /^\d{1,15}$/.test(v) ? Number(v) : undefined;
  const toNumber = typeof v === 'object' ? (v as { toNumber?: unknown }).toNumber : undefined;
  return typeof toNumber === 'function' ? (toNumber as () => unknown).call(v) as number : undefined;
}

/** Milliseconds of a google.protobuf.Duration: a decoded message `{ seconds, nanos }` or its JSON form `"1.5s"`. */
function durationMs(d: unknown): number | undefined {
  if (typeof d === 'string') {
    const m = /^(\d{1,9})(?:\.(\d{1,9}))?s$/.exec(d);
    return m ? Number(m[1]) * 1000 + Math.ceil(Number(`0.${m[2] ?? '0'}`) * 1000) : undefined;
  }
  if (d === null || typeof d !== 'object') return undefined;
  const { seconds, nanos } = d as { seconds?: unknown; nanos?: unknown };
  const secs = int64Of(seconds);
  const ns = typeof nanos === 'number' ? nanos : 0;
  if (secs === undefined || !Number.isSafeInteger(secs) || secs < 0 || !(ns >= 0 && ns < 1e9)) return undefined;
  return secs * 1000 + Math.ceil(ns / 1e6);
}

/**
 * The delay Cloud KMS asked for before a retry: the `retry_delay` of a google.rpc.RetryInfo error detail ("Clients
 * should wait at least this long between retrying the same request", google/rpc/error_details.proto). gax decodes
 * details into `statusDetails` (gRPC trailer `grpc-status-details-bin`, REST `error.details`); a REST error that
 * still holds the raw JSON body in its message is read from there.
 */
function retryDelayMsOf(e: ErrorLike): number | undefined {
  const details = (e as { statusDetails?: unknown }).statusDetails;
  if (Array.isArray(details)) {
    for (const d of details) {
      const ms = d !== null && typeof d === 'object' ? durationMs((d as { retryDelay?: unknown }).retryDelay) : undefined;
      if (ms !== undefined) return ms;
    }
  }
  const m = /"retryDelay"\s*:\s*"([0-9.]+s)"/.exec(text(e));
  return m ? durationMs(m[1]) : undefined;
}

/**
 * The Keyfold error for a Cloud KMS failure, or `undefined` when it is not one the provider recognises (the base
 * class then reports INTERNAL on wrap and the generic UNWRAP_FAILED on unwrap).
 */
export function mapGcpError(err: unknown, keyName: string): KeyfoldError | undefined {
  if (err instanceof KeyfoldError) return err;
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as ErrorLike;
  const grpc = grpcCodeOf(e);
  if (grpc !== undefined) {
    switch (grpc) {
      case GRPC.NOT_FOUND:
        return make('KEY_NOT_FOUND', `Cloud KMS key ${keyName} (or the version asked for) was not found: check the resource name and that it was not deleted`, err);
      case GRPC.PERMISSION_DENIED:
        return make('ACCESS_DENIED', `Cloud KMS refused access to ${keyName}: grant the caller roles/cloudkms.cryptoKeyEncrypterDecrypter on the key`, err);
      case GRPC.UNAUTHENTICATED:
        return make('ACCESS_DENIED', `Cloud KMS did not accept the credentials for ${keyName}: check Application Default Credentials or the authClient given`, err);
      case GRPC.RESOURCE_EXHAUSTED:
        return make('THROTTLED', `Cloud KMS throttled a request on ${keyName} (quota exhausted)`, err, retryDelayMsOf(e));
      case GRPC.FAILED_PRECONDITION:
        return make('KEY_DISABLED', `Cloud KMS key ${keyName}: the key version is not enabled (disabled, destroyed or scheduled for destruction)`, err);
      case GRPC.INVALID_ARGUMENT:
        if (isChecksumComplaint(e)) {
          return new ChecksumMismatchError(`Cloud KMS reported that a request to ${keyName} arrived corrupted (CRC32C mismatch)`, { cause: err });
        }
        return undefined;
      case GRPC.UNAVAILABLE:
      case GRPC.INTERNAL:
      case GRPC.UNKNOWN:
      case GRPC.ABORTED:
      case GRPC.DEADLINE_EXCEEDED:
      case GRPC.DATA_LOSS:
        return make('UNAVAILABLE', `Cloud KMS is unavailable for ${keyName} (${typeof e.message === 'string' ? e.message : 'no message'})`, err, retryDelayMsOf(e));
      case GRPC.UNIMPLEMENTED:
        return make('CONFIG_INVALID', `the Cloud KMS endpoint for ${keyName} does not implement the call: check apiEndpoint`, err);
      default:
        return undefined;
    }
  }
  const http = httpStatusOf(e);
  if (http !== undefined) {
    if (http === 401) return make('ACCESS_DENIED', `Cloud KMS did not accept the credentials for ${keyName}`, err);
    if (http === 403) return make('ACCESS_DENIED', `Cloud KMS refused access to ${keyName}`, err);
    if (http === 404) return make('KEY_NOT_FOUND', `Cloud KMS key ${keyName} was not found`, err);
    if (http === 429) return make('THROTTLED', `Cloud KMS throttled a request on ${keyName}`, err, retryDelayMsOf(e));
    if (http === 408 || http >= 500) return make('UNAVAILABLE', `Cloud KMS is unavailable for ${keyName} (HTTP ${http})`, err, retryDelayMsOf(e));
    return undefined;
  }
  const net = networkErrorCode(err);
  if (net !== undefined) return make('UNAVAILABLE', `Cloud KMS could not be reached for ${keyName} (${net})`, err);
  return undefined;
}
