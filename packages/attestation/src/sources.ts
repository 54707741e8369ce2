/**
 * Where attestation documents come from: the Nitro Secure Module inside an enclave (`/dev/nsm`), an HTTP attestation
 * endpoint (e.g. an Anjuna-style sidecar), or any function. Each is an {@link AttestationSource}.
 * @module
 */
import { existsSync } from 'node:fs';
import { Decoder, Encoder } from 'cbor-x';
import type * as NsmIoctl from '@keyfold/nsm-ioctl';
import { ProviderError, assertBytes, toBase64Url } from '@keyfold/envelope-core';
import { assertKnownOptions } from './options-check.js';

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
 * @throws TypeError for an unknown option or an empty path; (from attest) ProviderError:
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
  assertKnownOptions(options, ['devicePath'], 'nsmSource');
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

/** The query parameter names of an HTTP attestation endpoint. */
export interface HttpSourceParameters {
  /** Carries the DER SPKI public key. Default `publicKey`. */
  readonly publicKey?: string;
  /** Carries the user data, when the manager sends some. Default `userData`. */
  readonly userData?: string;
  /** Carries the nonce, when the manager sends one. Default `nonce`. */
  readonly nonce?: string;
}

/** Options of {@link httpSource}. */
export interface HttpSourceOptions {
  /** Base URL (`http:` or `https:`, no query or fragment), e.g. `http://localhost:50123`. */
  readonly baseUrl: string;
  /**
   * The endpoint's path, appended to the base URL's path: `/` followed by URL path characters, no `.` / `..`
   * segments, no empty segments. Default {@link DEFAULT_ATTESTATION_PATH} (`/api/v1/attestation/report`).
   */
  readonly path?: string;
  /** The query parameter names (each 1-64 of `A-Z a-z 0-9 - . _ ~`, all different). Defaults in {@link HttpSourceParameters}. */
  readonly parameters?: HttpSourceParameters;
  /** Injected fetch (tests). Default: global fetch. */
  readonly fetch?: typeof fetch;
  /** Request timeout in milliseconds: a whole number from 1 to 600 000. Default 10 000. */
  readonly timeoutMs?: number;
}

/** The path {@link httpSource} requests by default (the Anjuna-style sidecar's). */
export const DEFAULT_ATTESTATION_PATH = '/api/v1/attestation/report';

/** Largest document accepted from an endpoint; Nitro documents are about 4-5 KiB. */
const MAX_DOCUMENT = 64 * 1024;

const HTTP_SOURCE_OPTIONS = ['baseUrl', 'path', 'parameters', 'fetch', 'timeoutMs'] as const satisfies readonly (keyof HttpSourceOptions)[];

const PARAMETER_FIELDS = ['publicKey', 'userData', 'nonce'] as const;
/** RFC 3986 unreserved characters: a name that needs no encoding and cannot smuggle `&`, `=` or `#`. */
const PARAMETER_NAME = /^[A-Za-z0-9._~-]{1,64}$/;
/** One path segment: RFC 3986 `pchar`s, with `%` only as a valid percent-encoding. */
const PATH_SEGMENT = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+$/;

function httpSourcePath(path: unknown): string {
  if (path === undefined) return DEFAULT_ATTESTATION_PATH;
  const shown = JSON.stringify(path);
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > 1024) {
    throw new TypeError(`httpSource path must be a string starting with "/" (at most 1024 characters); got ${typeof path === 'string' ? shown : typeof path}`);
  }
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (!PATH_SEGMENT.test(segment) || /^(?:\.|%2e){1,2}$/i.test(segment)) {
      throw new TypeError(
        `httpSource path ${shown} is not a plain URL path: use "/" then segments of letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @ or %XX, without empty, "." or ".." segments, "?" or "#"`,
      );
    }
  }
  return path;
}

function httpSourceParameters(parameters: unknown): Record<(typeof PARAMETER_FIELDS)[number], string> {
  if (parameters !== undefined && (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters))) {
    throw new TypeError('httpSource parameters must be an object { publicKey?, userData?, nonce? }');
  }
  const given = (parameters ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!(PARAMETER_FIELDS as readonly string[]).includes(name)) throw new TypeError(`httpSource parameters has an unknown field ${JSON.stringify(name)}: use publicKey, userData or nonce`);
  }
  const out = { publicKey: 'publicKey', userData: 'userData', nonce: 'nonce' };
  for (const field of PARAMETER_FIELDS) {
    const value = given[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !PARAMETER_NAME.test(value)) {
      throw new TypeError(`httpSource parameters.${field} must be 1-64 characters of A-Z a-z 0-9 - . _ ~; got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`);
    }
    out[field] = value;
  }
  if (new Set(Object.values(out)).size !== PARAMETER_FIELDS.length) {
    throw new TypeError(`httpSource parameters must be three different names; got publicKey=${out.publicKey}, userData=${out.userData}, nonce=${out.nonce}`);
  }
  return out;
}

/**
 * An HTTP attestation endpoint: `GET {baseUrl}{path}?publicKey=&userData=&nonce=` with base64url values (path and
 * parameter names configurable; default path `/api/v1/attestation/report`); the response body is the document bytes.
 * Options are checked when the source is made: an unknown option, a base URL that is not `http:`/`https:` or has a
 * query or fragment, a path with `.`/`..`/empty segments or characters outside a URL path, or a parameter name that
 * needs encoding is refused.
 * @throws TypeError / RangeError for bad options (the message names the option); (from attest) ProviderError
 *   UNAVAILABLE for network errors (the endpoint is down or unreachable), timeouts, non-2xx answers and empty or
 *   oversized bodies.
 * @example
 * ```ts
 * const source = httpSource({ baseUrl: 'http://localhost:50123', path: '/attest', parameters: { publicKey: 'public_key' } });
 * ```
 */
export function httpSource(options: HttpSourceOptions): AttestationSource {
  if (options === null || typeof options !== 'object') throw new TypeError('httpSource needs an options object with a baseUrl');
  assertKnownOptions(options, HTTP_SOURCE_OPTIONS, 'httpSource');
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new TypeError(`httpSource baseUrl must be an absolute URL; got ${JSON.stringify(options.baseUrl)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`httpSource baseUrl must be an http: or https: URL; got ${base.protocol}`);
  if (base.search !== '' || base.hash !== '') throw new TypeError('httpSource baseUrl must not have a query or a fragment; give the path as `path` and the names as `parameters`');
  const path = httpSourcePath(options.path);
  const names = httpSourceParameters(options.parameters);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('httpSource fetch must be a function');
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) throw new RangeError(`httpSource timeoutMs must be a whole number from 1 to 600000; got ${String(timeoutMs)}`);
  const endpoint = new URL(path.slice(1), base.href.endsWith('/') ? base : `${base.href}/`);
  return {
    kind: 'http',
    async attest(request) {
      const url = new URL(endpoint);
      url.searchParams.set(names.publicKey, toBase64Url(request.publicKey));
      if (request.userData) url.searchParams.set(names.userData, toBase64Url(request.userData));
      if (request.nonce) url.searchParams.set(names.nonce, toBase64Url(request.nonce));
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
