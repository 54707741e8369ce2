/**
 * Where attestation documents come from: the Nitro Secure Module inside an enclave (`/dev/nsm`), an HTTP attestation
 * endpoint (e.g. an Anjuna-style sidecar), or any function. Each is an {@link AttestationSource}.
 * @module
 */
import { existsSync } from 'node:fs';
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

/**
 * The Nitro Secure Module device. Node has no ioctl, so fetching a document from `/dev/nsm` needs a native binding
 * (or a sidecar reachable with {@link httpSource}); this source checks for the device and then fails clearly.
 * It exists so that configuration naming `nsm` fails with an operator-readable UNAVAILABLE error, not a crash.
 * @throws (from attest) ProviderError UNAVAILABLE: the device is absent (not in an enclave), or present but this
 *   build has no NSM ioctl binding.
 * @example
 * ```ts
 * const manager = createAttestationManager({ source: nsmSource() });
 * ```
 */
export function nsmSource(options: { devicePath?: string } = {}): AttestationSource {
  const devicePath = options.devicePath ?? '/dev/nsm';
  return {
    kind: 'nsm',
    attest() {
      if (!existsSync(devicePath)) {
        return Promise.reject(
          new ProviderError('UNAVAILABLE', `the Nitro Secure Module (${devicePath}) is absent: this is not running inside a Nitro Enclave; use httpSource() or a function source outside one`),
        );
      }
      return Promise.reject(
        new ProviderError('UNAVAILABLE', `${devicePath} exists, but @keyfold/attestation has no NSM ioctl binding; run an attestation sidecar and use httpSource(), or pass a function source that calls the NSM`),
      );
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
