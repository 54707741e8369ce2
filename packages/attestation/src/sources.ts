/**
 * Where attestation documents come from: the Nitro Secure Module inside an enclave (`/dev/nsm`), an HTTP attestation
 * endpoint (e.g. an Anjuna-style sidecar), or any function. Each is an {@link AttestationSource}.
 * @module
 */
import { existsSync } from 'node:fs';
import { Decoder, Encoder } from 'cbor-x';
import type * as NsmIoctl from '@keyfold/nsm-ioctl';
import { ProviderError, assertBytes, toBase64Url } from '@keyfold/envelope-core';

/** What the manager asks a source for: a document that embeds `publicKey` (DER SPKI), and optionally these fields. */
export interface AttestationRequest {
  readonly publicKey: Uint8Array;
  readonly userData?: Uint8Array;
  readonly nonce?: Uint8Array;
  readonly signal?: AbortSignal;
}

/** A producer of attestation documents (COSE_Sign1 bytes). */
export interface AttestationSource {
  /** For status and logs: `nsm`, `http`, `function`. */
  readonly kind: string;
  attest(request: AttestationRequest): Promise<Uint8Array>;
}

/** A function used as a source. */
export type AttestationFunction = (request: AttestationRequest) => Promise<Uint8Array> | Uint8Array;

/** Options of {@link nsmSource}. */
export interface NsmSourceOptions {
  /** The NSM device. Default `/dev/nsm`. */
  readonly devicePath?: string;
}

/** Limits the NSM applies to the optional fields of an attestation request (bytes). */
export const NSM_LIMITS = { publicKey: 1024, userData: 512, nonce: 512 } as const;

const nsmEncoder = new Encoder({ tagUint8Array: false, useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);
const nsmDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });

type NsmBinding = typeof NsmIoctl;

/** Loads the optional native binding once; undefined (with the reason) when it is not installed or not built. */
let binding: Promise<{ module?: NsmBinding; reason?: string }> | undefined;
function loadBinding(): Promise<{ module?: NsmBinding; reason?: string }> {
  binding ??= import('@keyfold/nsm-ioctl').then(
    (module) =>
      module.isNsmBindingAvailable()
        ? { module }
        : { reason: '@keyfold/nsm-ioctl is installed but its native part was not built (it is compiled with node-gyp at install time, which needs python3, make and a C compiler)' },
    () => ({ reason: 'the NSM ioctl binding @keyfold/nsm-ioctl is not installed (an optional dependency of @keyfold/attestation, Linux only, compiled at install time)' }),
  );
  return binding;
}

function nsmFieldCheck(name: keyof typeof NSM_LIMITS, value: Uint8Array | undefined): void {
  if (value !== undefined && value.length > NSM_LIMITS[name]) {
    throw new ProviderError('CONFIG_INVALID', `${name} is ${value.length} bytes; the NSM accepts at most ${NSM_LIMITS[name]}`);
  }
}

/** The NSM's `Error` answers that mean the request itself was wrong; every other code is the module failing. */
const NSM_REQUEST_ERRORS = new Set(['InvalidArgument', 'InputTooLarge', 'InvalidOperation']);

/** Maps a failed open/ioctl on the device to a Keyfold error. Only the errno name and path reach the message. */
function nsmIoFailure(devicePath: string, cause: unknown): ProviderError {
  const code = (cause as { code?: unknown }).code;
  const syscall = (cause as { syscall?: unknown }).syscall;
  switch (code) {
    case 'ENOENT':
      return new ProviderError('UNAVAILABLE', `the Nitro Secure Module (${devicePath}) is absent: this is not running inside a Nitro Enclave; use httpSource() or a function source outside one`, { cause });
    case 'EACCES':
    case 'EPERM':
      return new ProviderError('ACCESS_DENIED', `${devicePath} cannot be opened read-write by this process (${code}); the NSM device needs root or a group with access to it`, { cause });
    case 'ENOTTY':
    case 'EINVAL':
    case 'ENODEV':
    case 'ENXIO':
      return new ProviderError('UNAVAILABLE', `${devicePath} is not a Nitro Secure Module device (${String(syscall)}: ${code})`, { cause });
    case 'EMSGSIZE':
      return new ProviderError('LIMIT_EXCEEDED', `the NSM refused the size of the request or of its answer (EMSGSIZE)`, { cause });
    default:
      return new ProviderError('UNAVAILABLE', `the NSM request on ${devicePath} failed (${String(syscall)}: ${String(code)})`, { cause });
  }
}

/** The document of an NSM response `{ Attestation: { document } }`; typed errors for `{ Error: code }` and garbage. */
function nsmDocument(response: Uint8Array): Uint8Array {
  let decoded: unknown;
  try {
    decoded = nsmDecoder.decode(response);
  } catch (cause) {
    throw new ProviderError('INTERNAL', 'the NSM answered with bytes that are not CBOR', { cause });
  }
  if (decoded instanceof Map && decoded.size === 1) {
    const error: unknown = decoded.get('Error');
    if (typeof error === 'string') {
      const safe = /^[A-Za-z]{1,40}$/.test(error) ? error : 'an unknown code';
      throw NSM_REQUEST_ERRORS.has(error)
        ? new ProviderError('CONFIG_INVALID', `the NSM refused the attestation request: ${safe}`)
        : new ProviderError('UNAVAILABLE', `the NSM could not produce an attestation document: ${safe}`);
    }
    const body: unknown = decoded.get('Attestation');
    if (body instanceof Map) {
      const document: unknown = body.get('document');
      if (document instanceof Uint8Array && document.length > 0) return new Uint8Array(document);
    }
  }
  throw new ProviderError('INTERNAL', 'the NSM answered with CBOR that is not an attestation response');
}

/**
 * The Nitro Secure Module device, inside a Nitro Enclave: one `NSM_IOCTL_RAW` request
 * `{ Attestation: { user_data, nonce, public_key } }` per document, made through the optional native binding
 * `@keyfold/nsm-ioctl` (Node has no `ioctl`). Outside an enclave, or without the binding, `attest` fails with a clear
 * UNAVAILABLE error.
 * @throws (from attest) ProviderError:
 *   UNAVAILABLE — the device is absent (not in an enclave), the binding is not installed or not built, the path is not
 *   an NSM device, or the NSM failed (its error code is in the message; retryable);
 *   ACCESS_DENIED — the device cannot be opened read-write;
 *   CONFIG_INVALID — a field is over the NSM's limit (public key 1024 bytes, user data and nonce 512 each) or the
 *   NSM refused the request;
 *   LIMIT_EXCEEDED — the driver refused a size (EMSGSIZE); INTERNAL — the answer is not an NSM response.
 * @example
 * ```ts
 * const manager = createAttestationManager({ source: nsmSource() });
 * ```
 */
export function nsmSource(options: NsmSourceOptions = {}): AttestationSource {
  const devicePath = options.devicePath ?? '/dev/nsm';
  if (typeof devicePath !== 'string' || devicePath.length === 0) throw new TypeError('nsmSource devicePath must be a non-empty path');
  return {
    kind: 'nsm',
    async attest(request) {
      request.signal?.throwIfAborted();
      nsmFieldCheck('publicKey', request.publicKey);
      nsmFieldCheck('userData', request.userData);
      nsmFieldCheck('nonce', request.nonce);
      if (!existsSync(devicePath)) throw nsmIoFailure(devicePath, { code: 'ENOENT', syscall: 'open' });
      const { module, reason } = await loadBinding();
      if (!module) throw new ProviderError('UNAVAILABLE', `${devicePath} exists, but ${reason}; run an attestation sidecar and use httpSource(), or pass a function source`);
      const message = nsmEncoder.encode(
        new Map([['Attestation', new Map([['user_data', request.userData ?? null], ['nonce', request.nonce ?? null], ['public_key', request.publicKey]])]]),
      );
      let response: Uint8Array;
      try {
        response = await module.nsmRequest(devicePath, message);
      } catch (cause) {
        throw nsmIoFailure(devicePath, cause);
      }
      return nsmDocument(response);
    },
  };
}

/** Options of {@link httpSource}. */
export interface HttpSourceOptions {
  /** Base URL, e.g. `http://localhost:50123`. The request is `GET {baseUrl}/api/v1/attestation/report`. */
  readonly baseUrl: string;
  /** Injected fetch (tests). Default: global fetch. */
  readonly fetch?: typeof fetch;
  /** Request timeout in milliseconds. Default 10 000. */
  readonly timeoutMs?: number;
}

/** Largest document accepted from an endpoint; Nitro documents are about 4-5 KiB. */
const MAX_DOCUMENT = 64 * 1024;

/**
 * An HTTP attestation endpoint: `GET {baseUrl}/api/v1/attestation/report?publicKey=&userData=&nonce=` with
 * base64url parameters; the response body is the document bytes.
 * @throws (from attest) ProviderError UNAVAILABLE for network errors, non-2xx answers and empty or oversized bodies.
 * @example
 * ```ts
 * const source = httpSource({ baseUrl: 'http://localhost:50123' });
 * ```
 */
export function httpSource(options: HttpSourceOptions): AttestationSource {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new TypeError(`httpSource baseUrl must be an absolute URL; got ${JSON.stringify(options.baseUrl)}`);
  }
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    kind: 'http',
    async attest(request) {
      const url = new URL('api/v1/attestation/report', base.href.endsWith('/') ? base : `${base.href}/`);
      url.searchParams.set('publicKey', toBase64Url(request.publicKey));
      if (request.userData) url.searchParams.set('userData', toBase64Url(request.userData));
      if (request.nonce) url.searchParams.set('nonce', toBase64Url(request.nonce));
      const signal = request.signal ? AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
      let res: Response;
      try {
        res = await doFetch(url, { method: 'GET', signal });
      } catch (cause) {
        throw new ProviderError('UNAVAILABLE', `the attestation endpoint ${base.origin} could not be reached`, { cause });
      }
      if (!res.ok) throw new ProviderError('UNAVAILABLE', `the attestation endpoint ${base.origin} answered HTTP ${res.status}`);
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length === 0 || body.length > MAX_DOCUMENT) {
        throw new ProviderError('UNAVAILABLE', `the attestation endpoint ${base.origin} sent ${body.length} bytes; expected a document of 1..${MAX_DOCUMENT}`);
      }
      return body;
    },
  };
}

/**
 * A function as a source (what `createAttestationManager` does with a function it is given).
 * @throws TypeError when `fn` is not a function; (from attest) whatever `fn` throws, or TypeError for a non-bytes result.
 * @example
 * ```ts
 * const source = functionSource(({ publicKey, nonce }) => myNsmBinding.attest({ publicKey, nonce }));
 * ```
 */
export function functionSource(fn: AttestationFunction): AttestationSource {
  if (typeof fn !== 'function') throw new TypeError('source must be a function or an AttestationSource');
  return {
    kind: 'function',
    async attest(request) {
      const doc = await fn(request);
      assertBytes(doc, undefined, 'the attestation document the source returned');
      return doc;
    },
  };
}
