/**
 * Vault transit emulator: the HTTP API of `transit/` (keys, rotate, config, encrypt, decrypt, rewrap, datakey,
 * batch_input with per-item errors, derived keys), AppRole login and token renewal, `X-Vault-Token` checked on every
 * call (403 otherwise), `X-Vault-Namespace` (each namespace has its own keys), `{"errors": [...]}` bodies, and 503
 * while sealed.
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { startServer, type EmulatorServer, type ServiceDefinition, type ServiceResponse } from '../http-server.js';
import {
  TransitError,
  decodeB64,
  decrypt,
  encrypt,
  encryptionVersion,
  keyInfo,
  newKey,
  rotateKey,
  type TransitKey,
} from './transit-keys.js';
import { VaultAuth, type Token } from './vault-auth.js';

/** Options of {@link startVaultTransitEmulator}. */
export interface VaultTransitEmulatorOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** The root token. Default: random (`emu.rootToken`). */
  readonly rootToken?: string;
  /** Transit mount paths. Default `['transit']`. */
  readonly mounts?: readonly string[];
  /** Clock in ms, injectable so tests can expire tokens without waiting. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Answer a ciphertext that fails authentication on `decrypt` / `rewrap` (single, not batch) with a 500 and Go's
   * error text, as older Vault versions did: their `keysutil.Policy.Decrypt` returned an `InternalError` for a failed
   * `aead.Open` (and still does for `failed to RSA decrypt the ciphertext` on RSA keys), which Vault's HTTP layer
   * answers with 500. Default false: a 400 `invalid ciphertext: unable to decrypt`, as current Vault answers.
   */
  readonly legacyDecryptErrors?: boolean;
}

/** A running Vault transit emulator. */
export interface VaultTransitEmulator extends EmulatorServer {
  readonly rootToken: string;
  readonly sealed: boolean;
  /** Seals: every API call answers 503 until {@link unseal}. */
  seal(): void;
  unseal(): void;
  /** Creates or replaces a policy: path patterns (`transit/encrypt/*`, `transit/+/payments`) it grants. */
  setPolicy(name: string, paths: readonly string[]): void;
  /** Creates a token; returns its id. */
  createToken(options: { policies: readonly string[]; ttlSeconds?: number; maxTtlSeconds?: number; renewable?: boolean }): string;
  revokeToken(token: string): void;
  /** Creates an AppRole role; returns its role id and one secret id. */
  createAppRole(options: { name: string; policies: readonly string[]; tokenTtlSeconds?: number; tokenMaxTtlSeconds?: number }): {
    roleId: string;
    secretId: string;
  };
  /** Creates a transit key directly. */
  createKey(name: string, options?: { derived?: boolean; mount?: string; namespace?: string }): void;
}

type Body = Record<string, unknown>;

interface Route {
  readonly operation: string;
  readonly mount?: string;
  readonly name?: string;
  readonly datakeyType?: string;
}

const vaultError = (status: number, ...errors: string[]): ServiceResponse => ({ status, body: { errors } });

function answer(data: unknown, auth?: unknown): ServiceResponse {
  return {
    status: 200,
    body: {
      request_id: randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: data ?? null,
      wrap_info: null,
      warnings: null,
      auth: auth ?? null,
    },
  };
}

function normaliseNamespace(h: string | string[] | undefined): string {
  const v = Array.isArray(h) ? h[0] : h;
  return (v ?? '').replace(/^\/+|\/+$/g, '');
}

function int(v: unknown, name: string, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new TransitError(`${name} must be an integer`);
  return n;
}

function parseDuration(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v * 1000;
  if (typeof v === 'string') {
    const m = /^(\d+)(s|m|h)?$/.exec(v);
    if (m) return Number(m[1]) * (m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? 60_000 : 1000);
  }
  throw new TransitError('increment must be a duration');
}

/** The items of `batch_input`: a non-empty array of objects, else Vault's request-level 400. */
function batchItems(raw: unknown): Body[] {
  // Vault decodes batch_input with mapstructure into []BatchRequestItem: anything else fails the whole request.
  if (!Array.isArray(raw) || raw.some((item) => item === null || typeof item !== 'object' || Array.isArray(item))) {
    throw new TransitError('failed to parse batch input: expected an array of objects');
  }
  if (raw.length === 0) throw new TransitError('missing batch input to process');
  return raw as Body[];
}

/** Vault refuses a batch where some items carry a derivation context and others do not (whole request, 400). */
function checkContextConsistency(items: readonly Body[]): void {
  const has = (item: Body): boolean => typeof item.context === 'string' && item.context !== '';
  const first = items[0] !== undefined && has(items[0]);
  if (items.some((item) => has(item) !== first)) throw new TransitError('context should be set either in all the request blocks or in none');
}

/** What Go's `cipher.AEAD.Open` reports for a ciphertext that fails authentication (the emulator's message too). */
const AUTH_FAILED = 'cipher: message authentication failed';

/**
 * Starts the Vault transit emulator on 127.0.0.1.
 * @throws the listen error (EADDRINUSE, ...).
 * @example
 * ```ts
 * const emu = await startVaultTransitEmulator({ port: 0 });
 * emu.createKey('payments');
 * await fetch(`${emu.url}/v1/transit/encrypt/payments`, {
 *   method: 'POST',
 *   headers: { 'X-Vault-Token': emu.rootToken },
 *   body: JSON.stringify({ plaintext: Buffer.from('hi').toString('base64') }),
 * });
 * emu.seal(); // 503 from now on
 * await emu.close();
 * ```
 */
export async function startVaultTransitEmulator(options: VaultTransitEmulatorOptions = {}): Promise<VaultTransitEmulator> {
  const now = options.now ?? Date.now;
  const legacyDecryptErrors = options.legacyDecryptErrors === true;
  const mounts = new Set(options.mounts ?? ['transit']);
  const auth = new VaultAuth(now, options.rootToken);
  /** namespace -> mount -> key name -> key */
  const keys = new Map<string, Map<string, Map<string, TransitKey>>>();
  let sealed = false;

  const keyMap = (ns: string, mount: string): Map<string, TransitKey> => {
    let byMount = keys.get(ns);
    if (!byMount) {
      byMount = new Map<string, Map<string, TransitKey>>();
      keys.set(ns, byMount);
    }
    let m = byMount.get(mount);
    if (!m) {
      m = new Map<string, TransitKey>();
      byMount.set(mount, m);
    }
    return m;
  };

  const route = (method: string, path: string): Route | undefined => {
    const parts = path.split('/');
    if (path === 'sys/health') return { operation: 'health' };
    if (path === 'sys/seal-status') return { operation: 'seal-status' };
    if (path === 'auth/approle/login') return { operation: 'login' };
    if (path === 'auth/token/lookup-self') return { operation: 'lookup-self' };
    if (path === 'auth/token/renew-self') return { operation: 'renew-self' };
    const [mount, what, a, b, c] = parts;
    if (mount === undefined || !mounts.has(mount)) return undefined;
    if (what === 'keys' && a && b === undefined) return { operation: method === 'GET' ? 'keys.read' : method === 'DELETE' ? 'keys.delete' : 'keys.create', mount, name: a };
    if (what === 'keys' && a && (b === 'rotate' || b === 'config') && c === undefined) return { operation: `keys.${b}`, mount, name: a };
    if ((what === 'encrypt' || what === 'decrypt' || what === 'rewrap') && a && b === undefined) return { operation: what, mount, name: a };
    if (what === 'datakey' && (a === 'plaintext' || a === 'wrapped') && b && c === undefined) return { operation: 'datakey', mount, name: b, datakeyType: a };
    return undefined;
  };

  const parseRequest = (req: IncomingMessage): { path: string; method: string } => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method === 'PUT' ? 'POST' : (req.method ?? 'GET');
    return { path: url.pathname.startsWith('/v1/') ? url.pathname.slice(4) : '', method };
  };

  /** Runs one item of a (possibly batched) transit operation. */
  const transitItem = (op: string, key: TransitKey | undefined, item: Body, datakeyType?: string): Body => {
    const context = item.context === undefined || item.context === '' ? undefined : decodeB64(item.context, 'context');
    const aad = item.associated_data === undefined || item.associated_data === '' ? undefined : decodeB64(item.associated_data, 'associated_data');
    switch (op) {
      case 'encrypt': {
        if (!key) throw new TransitError('encryption key not found');
        if (item.plaintext === undefined) throw new TransitError('missing plaintext to encrypt');
        const plaintext = decodeB64(item.plaintext, 'plaintext');
        const version = encryptionVersion(key, int(item.key_version, 'key_version', 0));
        return { ciphertext: encrypt(key, version, plaintext, context, aad), key_version: version };
      }
      case 'decrypt': {
        if (!key) throw new TransitError('encryption key not found');
        const { plaintext } = decrypt(key, item.ciphertext, context, aad);
        try {
          return { plaintext: plaintext.toString('base64') };
        } finally {
          plaintext.fill(0);
        }
      }
      case 'rewrap': {
        if (!key) throw new TransitError('encryption key not found');
        const { plaintext } = decrypt(key, item.ciphertext, context, aad);
        try {
          const version = encryptionVersion(key, int(item.key_version, 'key_version', 0));
          return { ciphertext: encrypt(key, version, plaintext, context, aad), key_version: version };
        } finally {
          plaintext.fill(0);
        }
      }
      case 'datakey': {
        if (!key) throw new TransitError('encryption key not found');
        const bits = int(item.bits, 'bits', 256);
        if (bits !== 128 && bits !== 256 && bits !== 512) throw new TransitError('invalid bits length');
        const plaintext = randomBytes(bits / 8);
        try {
          const version = encryptionVersion(key, 0);
          return {
            ciphertext: encrypt(key, version, plaintext, context, undefined),
            key_version: version,
            ...(datakeyType === 'plaintext' ? { plaintext: plaintext.toString('base64') } : {}),
          };
        } finally {
          plaintext.fill(0);
        }
      }
      default:
        throw new TransitError(`unsupported operation ${op}`);
    }
  };

  const transit = (r: Route, ns: string, body: Body): ServiceResponse => {
    const mount = r.mount ?? 'transit';
    const name = r.name ?? '';
    const map = keyMap(ns, mount);
    let key = map.get(name);
    switch (r.operation) {
      case 'keys.read':
        return key ? answer(keyInfo(key)) : vaultError(404);
      case 'keys.create': {
        const type = body.type ?? 'aes256-gcm96';
        if (type !== 'aes256-gcm96') throw new TransitError(`key type ${JSON.stringify(type)} is not supported by the keyfold emulator`);
        if (!key) map.set(name, (key = newKey(name, body.derived === true, now())));
        return answer(keyInfo(key));
      }
      case 'keys.delete':
        if (!key) return vaultError(404);
        if (!key.deletionAllowed) throw new TransitError('deletion is not allowed for this key');
        map.delete(name);
        return { status: 204 };
      case 'keys.rotate':
        if (!key) throw new TransitError('key not found');
        rotateKey(key, now());
        return answer(keyInfo(key));
      case 'keys.config': {
        if (!key) throw new TransitError('key not found');
        const minDec = int(body.min_decryption_version, 'min_decryption_version', key.minDecryptionVersion);
        const minEnc = int(body.min_encryption_version, 'min_encryption_version', key.minEncryptionVersion);
        if (minDec < 1) throw new TransitError('min decryption version must be at least 1');
        if (minDec > key.latest) throw new TransitError(`cannot set min decryption version of ${minDec}, latest key version is ${key.latest}`);
        if (minEnc < 0 || minEnc > key.latest) throw new TransitError(`cannot set min encryption version of ${minEnc}, latest key version is ${key.latest}`);
        if (minEnc !== 0 && minEnc < minDec) throw new TransitError('min encryption version should not be less than min decryption version');
        key.minDecryptionVersion = minDec;
        key.minEncryptionVersion = minEnc;
        if (typeof body.deletion_allowed === 'boolean') key.deletionAllowed = body.deletion_allowed;
        return { status: 204 };
      }
      default:
        break;
    }
    // Request-level errors, as Vault answers them (hashicorp/vault builtin/logical/transit/path_encrypt.go,
    // path_decrypt.go, path_rewrap.go): batch_input is decoded and checked for a consistent context, and the key is
    // looked up once per request, before any item runs, so these are a top-level 400 `{"errors": [...]}` with no
    // batch_results, whatever partial_failure_response_code says.
    const items = body.batch_input === undefined ? undefined : batchItems(body.batch_input);
    if (items) checkContextConsistency(items);
    // encrypt upserts the key, as Vault does for a token allowed to write the path.
    if (r.operation === 'encrypt' && !key) {
      const first = items ? items[0] : body;
      map.set(name, (key = newKey(name, first?.context !== undefined && first.context !== '', now())));
    }
    if (items) {
      if (!key) throw new TransitError('encryption key not found');
      let failures = 0;
      const results = items.map((item) => {
        const reference = typeof item.reference === 'string' ? { reference: item.reference } : {};
        try {
          return { ...transitItem(r.operation, key, item, r.datakeyType), ...reference };
        } catch (err) {
          if (!(err instanceof TransitError)) throw err;
          failures++;
          return { error: err.message, ...reference };
        }
      });
      const partial = body.partial_failure_response_code;
      const status =
        failures === 0 ? 200 : failures === results.length || typeof partial !== 'number' ? 400 : partial;
      return { ...answer({ batch_results: results }), status };
    }
    try {
      return answer(transitItem(r.operation, key, body, r.datakeyType));
    } catch (err) {
      if (legacyDecryptErrors && err instanceof TransitError && err.message === AUTH_FAILED && (r.operation === 'decrypt' || r.operation === 'rewrap')) {
        return vaultError(500, AUTH_FAILED);
      }
      throw err;
    }
  };

  const authBlock = (t: Token): Body => ({
    client_token: t.id,
    accessor: t.accessor,
    policies: t.policies,
    token_policies: t.policies,
    lease_duration: auth.remainingSeconds(t),
    renewable: t.renewable,
    entity_id: '',
    token_type: 'service',
    orphan: true,
  });

  const service: ServiceDefinition = {
    contentType: 'application/json',
    operationOf(req) {
      const { path, method } = parseRequest(req);
      return route(method, path)?.operation;
    },
    handle(operation, req, raw) {
      const { path, method } = parseRequest(req);
      try {
        const r = route(method, path);
        if (!r) return vaultError(404, `no handler for route "${path}". route entry not found.`);
        if (r.operation === 'health') {
          return { status: sealed ? 503 : 200, body: { initialized: true, sealed, standby: false, version: '1.17.0+keyfold-emulator' } };
        }
        if (r.operation === 'seal-status') return { status: 200, body: { type: 'shamir', initialized: true, sealed, t: 1, n: 1 } };
        if (sealed) return vaultError(503, 'Vault is sealed');
        let body: Body = {};
        if (raw.length > 0) {
          try {
            const parsed: unknown = JSON.parse(raw.toString('utf8'));
            if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
            body = parsed as Body;
          } catch {
            return vaultError(400, 'failed to parse JSON input');
          }
        }
        const ns = normaliseNamespace(req.headers['x-vault-namespace']);
        if (r.operation === 'login') {
          if (method !== 'POST') return vaultError(405);
          const t = auth.login(body.role_id, body.secret_id);
          return answer(null, authBlock(t));
        }
        const header = req.headers['x-vault-token'];
        const token = auth.lookup(typeof header === 'string' ? header : undefined);
        if (!token || !auth.allowed(token, path)) return vaultError(403, 'permission denied');
        if (r.operation === 'lookup-self') {
          return answer({
            id: token.id,
            accessor: token.accessor,
            policies: token.policies,
            ttl: auth.remainingSeconds(token),
            creation_ttl: Math.floor(token.ttlMs / 1000),
            renewable: token.renewable,
            explicit_max_ttl: Math.floor(token.maxTtlMs / 1000),
            expire_time: token.expiresAt === undefined ? null : new Date(token.expiresAt).toISOString(),
          });
        }
        if (r.operation === 'renew-self') {
          if (method !== 'POST') return vaultError(405);
          return answer(null, authBlock(auth.renew(token, parseDuration(body.increment))));
        }
        if (r.operation === 'keys.read' && method !== 'GET') return vaultError(405);
        if (r.operation !== 'keys.read' && r.operation !== 'keys.delete' && method !== 'POST') return vaultError(405);
        void operation;
        return transit(r, ns, body);
      } catch (err) {
        if (err instanceof TransitError) return vaultError(err.status, err.message);
        throw err;
      }
    },
    // A rate limit quota's 429 carries Retry-After in seconds (hashicorp/vault vault/quotas/quotas_rate_limit.go).
    throttleResponse: (op, retryAfterSeconds) => ({
      ...vaultError(429, `request path "${op}": rate limit quota exceeded`),
      ...(retryAfterSeconds === undefined ? {} : { headers: { 'retry-after': String(retryAfterSeconds) } }),
    }),
    serverErrorResponse: () => vaultError(500, 'internal error'),
    admin(name) {
      if (name === 'seal') {
        sealed = true;
        return { status: 200, body: { sealed } };
      }
      if (name === 'unseal') {
        sealed = false;
        return { status: 200, body: { sealed } };
      }
      return undefined;
    },
  };

  const server = await startServer(service, options.port === undefined ? {} : { port: options.port });
  return {
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    get faults() {
      return server.faults;
    },
    get counters() {
      return server.counters;
    },
    resetCounters: () => server.resetCounters(),
    close: () => server.close(),
    rootToken: auth.rootToken,
    get sealed() {
      return sealed;
    },
    seal() {
      sealed = true;
    },
    unseal() {
      sealed = false;
    },
    setPolicy: (name, paths) => auth.setPolicy(name, paths),
    createToken: (o) =>
      auth.createToken({
        policies: o.policies,
        ...(o.ttlSeconds !== undefined ? { ttlMs: o.ttlSeconds * 1000 } : {}),
        ...(o.maxTtlSeconds !== undefined ? { maxTtlMs: o.maxTtlSeconds * 1000 } : {}),
        ...(o.renewable !== undefined ? { renewable: o.renewable } : {}),
      }).id,
    revokeToken: (t) => auth.revoke(t),
    createAppRole: (o) =>
      auth.createAppRole({
        name: o.name,
        policies: o.policies,
        ...(o.tokenTtlSeconds !== undefined ? { tokenTtlMs: o.tokenTtlSeconds * 1000 } : {}),
        ...(o.tokenMaxTtlSeconds !== undefined ? { tokenMaxTtlMs: o.tokenMaxTtlSeconds * 1000 } : {}),
      }),
    createKey(name, o = {}) {
      const map = keyMap((o.namespace ?? '').replace(/^\/+|\/+$/g, ''), o.mount ?? 'transit');
      if (!map.has(name)) map.set(name, newKey(name, o.derived === true, now()));
    },
  };
}
