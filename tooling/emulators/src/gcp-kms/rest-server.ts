/**
 * The REST (HTTP/1.1 + JSON) transport of the Cloud KMS emulator, as the `fallback: 'rest'` mode of the SDK uses it:
 * the `google.api.http` bindings of service.proto, proto3 JSON (base64 bytes, Int64Value as a decimal string, enums
 * as names or, when the client asks with `$alt=json;enum-encoding=int`, as numbers, RFC 3339 timestamps), errors as
 * `{ error: { code, message, status } }` with the HTTP status of the gRPC code. A reset or outage destroys the
 * connection without an answer. Listens on 127.0.0.1 only.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { retryInfoJson } from './retry-info.js';
import { Code, KmsError, codeName, type DecryptOutput, type EncryptOutput, type KeyView, type VersionView } from './kms-state.js';
import type { KmsService, Rpc, RpcRequest } from './service.js';
import { listenOnLoopback } from '../http-server.js';

const MAX_BODY = 1024 * 1024;
const SEG = '[^/:]+';
const LOCATION = `projects/${SEG}/locations/${SEG}`;
const RING = `${LOCATION}/keyRings/${SEG}`;
const KEY = `${RING}/cryptoKeys/${SEG}`;
const VERSION = `${KEY}/cryptoKeyVersions/${SEG}`;

const ROUTES: readonly { method: string; pattern: RegExp; rpc: Rpc }[] = [
  { method: 'POST', pattern: new RegExp(`^/v1/(${LOCATION})/keyRings$`), rpc: 'CreateKeyRing' },
  { method: 'POST', pattern: new RegExp(`^/v1/(${RING})/cryptoKeys$`), rpc: 'CreateCryptoKey' },
  { method: 'POST', pattern: new RegExp(`^/v1/(${KEY})/cryptoKeyVersions$`), rpc: 'CreateCryptoKeyVersion' },
  { method: 'GET', pattern: new RegExp(`^/v1/(${KEY})/cryptoKeyVersions$`), rpc: 'ListCryptoKeyVersions' },
  { method: 'POST', pattern: new RegExp(`^/v1/(${KEY}):updatePrimaryVersion$`), rpc: 'UpdateCryptoKeyPrimaryVersion' },
  { method: 'PATCH', pattern: new RegExp(`^/v1/(${VERSION})$`), rpc: 'UpdateCryptoKeyVersion' },
  { method: 'POST', pattern: new RegExp(`^/v1/(${VERSION}):destroy$`), rpc: 'DestroyCryptoKeyVersion' },
  { method: 'GET', pattern: new RegExp(`^/v1/(${KEY})$`), rpc: 'GetCryptoKey' },
  { method: 'POST', pattern: new RegExp(`^/v1/(${KEY}(?:/cryptoKeyVersions/${SEG})?):encrypt$`), rpc: 'Encrypt' },
  { method: 'POST', pattern: new RegExp(`^/v1/(${KEY}):decrypt$`), rpc: 'Decrypt' },
];

const HTTP_STATUS: Readonly<Record<number, number>> = {
  [Code.INVALID_ARGUMENT]: 400,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNAUTHENTICATED]: 401,
  [Code.PERMISSION_DENIED]: 403,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.ABORTED]: 409,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.CANCELLED]: 499,
  [Code.INTERNAL]: 500,
  [Code.UNKNOWN]: 500,
  [Code.DATA_LOSS]: 500,
  [Code.UNIMPLEMENTED]: 501,
  [Code.UNAVAILABLE]: 503,
  [Code.DEADLINE_EXCEEDED]: 504,
};

const STATE_NUMBERS: Readonly<Record<string, number>> = { ENABLED: 1, DISABLED: 2, DESTROYED: 3, DESTROY_SCHEDULED: 4 };
const STATE_NAMES: Readonly<Record<number, string>> = { 1: 'ENABLED', 2: 'DISABLED', 3: 'DESTROYED', 4: 'DESTROY_SCHEDULED' };
const LEVEL_NUMBERS: Readonly<Record<string, number>> = { SOFTWARE: 1, HSM: 2 };
const LEVEL_NAMES: Readonly<Record<number, string>> = { 1: 'SOFTWARE', 2: 'HSM' };
const PURPOSE_NUMBERS: Readonly<Record<string, number>> = { ENCRYPT_DECRYPT: 1 };
const PURPOSE_NAMES: Readonly<Record<number, string>> = { 1: 'ENCRYPT_DECRYPT', 5: 'ASYMMETRIC_SIGN', 6: 'ASYMMETRIC_DECRYPT', 7: 'RAW_ENCRYPT_DECRYPT', 9: 'MAC' };
const ALGORITHM_NUMBERS: Readonly<Record<string, number>> = { GOOGLE_SYMMETRIC_ENCRYPTION: 1 };

function invalid(message: string): KmsError {
  return new KmsError(Code.INVALID_ARGUMENT, message);
}

function b64(v: unknown, field: string): Buffer {
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw invalid(`Invalid value at '${field}': not base64`);
  return Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64');
}

/**
 * An Int64Value in proto3 JSON: "Wrappers use the same representation in JSON as the wrapped primitive type" and an
 * int64 is a decimal string, a number being accepted too (protobuf "JSON Mapping", protobuf.dev/programming-guides/
 * proto3/#json). The object form `{ "value": ... }` is the gRPC-side message shape, not JSON, and is refused as
 * Google's JSON transcoding refuses it. `undefined` when absent.
 */
function checksum(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const text = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : typeof v === 'string' ? v : '';
  if (!/^\d{1,19}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw invalid(`Invalid value at '${field}' (type.googleapis.com/google.protobuf.Int64Value), ${JSON.stringify(v)}`);
  }
  return Number(text);
}

function enumIn(v: unknown, names: Readonly<Record<number, string>>): string | undefined {
  if (typeof v === 'number') return names[v];
  if (typeof v === 'string' && v !== '' && !v.endsWith('_UNSPECIFIED')) return v;
  return undefined;
}

interface Encoding {
  readonly ints: boolean;
}

function enumOut(value: string, numbers: Readonly<Record<string, number>>, enc: Encoding): string | number {
  return enc.ints ? (numbers[value] ?? 0) : value;
}

function version(v: VersionView, enc: Encoding): Record<string, unknown> {
  return {
    name: v.name,
    state: enumOut(v.state, STATE_NUMBERS, enc),
    protectionLevel: enumOut(v.protectionLevel, LEVEL_NUMBERS, enc),
    algorithm: enumOut(v.algorithm, ALGORITHM_NUMBERS, enc),
    createTime: v.createTime.toISOString(),
    generateTime: v.generateTime.toISOString(),
    ...(v.destroyTime ? { destroyTime: v.destroyTime.toISOString() } : {}),
  };
}

function key(k: KeyView, enc: Encoding): Record<string, unknown> {
  return {
    name: k.name,
    purpose: enumOut(k.purpose, PURPOSE_NUMBERS, enc),
    createTime: k.createTime.toISOString(),
    ...(k.primary ? { primary: version(k.primary, enc) } : {}),
    versionTemplate: {
      protectionLevel: enumOut(k.versionTemplate.protectionLevel, LEVEL_NUMBERS, enc),
      algorithm: enumOut(k.versionTemplate.algorithm, ALGORITHM_NUMBERS, enc),
    },
  };
}

function parse(rpc: Rpc, resource: string, query: URLSearchParams, body: Record<string, unknown>): RpcRequest {
  switch (rpc) {
    case 'CreateKeyRing':
      return { rpc, parent: resource, keyRingId: query.get('keyRingId') ?? '' };
    case 'CreateCryptoKey': {
      const template = (body.versionTemplate ?? {}) as { protectionLevel?: unknown };
      return {
        rpc,
        parent: resource,
        cryptoKeyId: query.get('cryptoKeyId') ?? '',
        purpose: enumIn(body.purpose, PURPOSE_NAMES),
        protectionLevel: enumIn(template.protectionLevel, LEVEL_NAMES),
        skipInitialVersionCreation: query.get('skipInitialVersionCreation') === 'true',
      };
    }
    case 'CreateCryptoKeyVersion':
      return { rpc, parent: resource };
    case 'ListCryptoKeyVersions':
      return { rpc, parent: resource, filter: query.get('filter') ?? '' };
    case 'UpdateCryptoKeyPrimaryVersion':
      return { rpc, name: resource, cryptoKeyVersionId: typeof body.cryptoKeyVersionId === 'string' ? body.cryptoKeyVersionId : '' };
    case 'UpdateCryptoKeyVersion':
      return {
        rpc,
        name: resource,
        state: enumIn(body.state, STATE_NAMES) ?? '',
        updateMask: (query.get('updateMask') ?? '').split(',').filter(Boolean),
      };
    case 'DestroyCryptoKeyVersion':
      return { rpc, name: resource };
    case 'GetCryptoKey':
      return { rpc, name: resource };
    case 'Encrypt':
      return {
        rpc,
        name: resource,
        plaintext: b64(body.plaintext, 'plaintext'),
        additionalAuthenticatedData: b64(body.additionalAuthenticatedData, 'additional_authenticated_data'),
        plaintextCrc32c: checksum(body.plaintextCrc32c, 'plaintext_crc32c'),
        additionalAuthenticatedDataCrc32c: checksum(body.additionalAuthenticatedDataCrc32c, 'additional_authenticated_data_crc32c'),
      };
    case 'Decrypt':
      return {
        rpc,
        name: resource,
        ciphertext: b64(body.ciphertext, 'ciphertext'),
        additionalAuthenticatedData: b64(body.additionalAuthenticatedData, 'additional_authenticated_data'),
        ciphertextCrc32c: checksum(body.ciphertextCrc32c, 'ciphertext_crc32c'),
        additionalAuthenticatedDataCrc32c: checksum(body.additionalAuthenticatedDataCrc32c, 'additional_authenticated_data_crc32c'),
      };
  }
}

function render(rpc: Rpc, value: unknown, enc: Encoding): unknown {
  switch (rpc) {
    case 'CreateKeyRing': {
      const r = value as { name: string; createTime: Date };
      return { name: r.name, createTime: r.createTime.toISOString() };
    }
    case 'CreateCryptoKey':
    case 'UpdateCryptoKeyPrimaryVersion':
    case 'GetCryptoKey':
      return key(value as KeyView, enc);
    case 'CreateCryptoKeyVersion':
    case 'UpdateCryptoKeyVersion':
    case 'DestroyCryptoKeyVersion':
      return version(value as VersionView, enc);
    case 'ListCryptoKeyVersions': {
      const list = value as VersionView[];
      return { cryptoKeyVersions: list.map((v) => version(v, enc)), totalSize: list.length };
    }
    case 'Encrypt': {
      const r = value as EncryptOutput;
      return {
        name: r.name,
        ciphertext: r.ciphertext.toString('base64'),
        ciphertextCrc32c: String(r.ciphertextCrc32c),
        verifiedPlaintextCrc32c: r.verifiedPlaintextCrc32c,
        verifiedAdditionalAuthenticatedDataCrc32c: r.verifiedAdditionalAuthenticatedDataCrc32c,
        protectionLevel: enumOut(r.protectionLevel, LEVEL_NUMBERS, enc),
      };
    }
    case 'Decrypt': {
      const r = value as DecryptOutput;
      return {
        plaintext: r.plaintext.toString('base64'),
        plaintextCrc32c: String(r.plaintextCrc32c),
        usedPrimary: r.usedPrimary,
        protectionLevel: enumOut(r.protectionLevel, LEVEL_NUMBERS, enc),
      };
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': payload.length });
  res.end(payload);
}

function sendError(res: ServerResponse, e: KmsError): void {
  const status = HTTP_STATUS[e.code] ?? 500;
  const details = e.retryDelaySeconds === undefined ? {} : { details: [retryInfoJson(e.retryDelaySeconds)] };
  send(res, status, { error: { code: status, message: e.message, status: codeName(e.code), ...details } });
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A running REST server. */
export interface RestListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `service` over HTTP/1.1 + JSON on 127.0.0.1.
 * @throws the listen error.
 */
export async function startRestServer(service: KmsService, port = 0): Promise<RestListener> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(url.pathname);
    const route = ROUTES.find((r) => r.method === req.method && r.pattern.test(path));
    if (!route) {
      service.countMalformed();
      send(res, 404, { error: { code: 404, message: `no route for ${req.method ?? ''} ${url.pathname}`, status: 'NOT_FOUND' } });
      return;
    }
    const resource = (route.pattern.exec(path) as RegExpExecArray)[1] as string;
    let request: RpcRequest;
    try {
      if (raw === undefined) throw invalid('request body too large');
      let body: unknown = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      // The SDK sends an empty message body (CreateCryptoKeyVersion with no fields) as the JSON string "".
      if (body === '') body = {};
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('request body must be a JSON object');
      request = parse(route.rpc, resource, url.searchParams, body as Record<string, unknown>);
    } catch (err) {
      service.countMalformed();
      sendError(res, err instanceof KmsError ? err : invalid(`Invalid JSON payload received. ${err instanceof Error ? err.message : ''}`));
      return;
    }
    const gone = new Promise<void>((resolve) => res.once('close', () => resolve()));
    const outcome = await service.run(request, gone);
    const enc: Encoding = { ints: (url.searchParams.get('$alt') ?? '').includes('enum-encoding=int') };
    if (outcome.kind === 'reset') {
      if (!req.socket.destroyed) req.socket.resetAndDestroy();
      return;
    }
    if (outcome.kind === 'error') {
      sendError(res, outcome.error);
      return;
    }
    send(res, 200, render(route.rpc, outcome.value, enc));
  };
  const server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      sendError(res, new KmsError(Code.INTERNAL, `emulator failure: ${err instanceof Error ? err.message : String(err)}`));
    });
  });
  return listenOnLoopback(server, port);
}
