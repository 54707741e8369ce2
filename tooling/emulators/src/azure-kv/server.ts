/**
 * The HTTP(S) transport of the Key Vault emulator: the REST paths `@azure/keyvault-keys` 4.x calls, the bearer
 * challenge (401 with `WWW-Authenticate: Bearer authorization=..., resource=...` to a request without a token), the
 * shared fault pipeline (latency, throttling 429, 5xx, resets, outage) and counters. One handler serves a plain HTTP
 * listener and, given a certificate, an HTTPS listener; both on 127.0.0.1 only, over one key store. Kids in answers
 * use the base URL the request came in on.
 * @module
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { FaultController, newCounters, type CallCounters } from '../faults.js';
import { listenOnLoopback } from '../http-server.js';
import { KvError, type KeyBundleView, type KvState } from './kv-state.js';

const MAX_BODY = 1024 * 1024;
const NAME = '([0-9a-zA-Z-]{1,127})';
const VERSION = '([0-9a-f]{32})';

/** Key Vault operations (the operation names of fault filters and counters). */
export type KvOperation =
  | 'createKey'
  | 'rotateKey'
  | 'getKey'
  | 'getKeyVersions'
  | 'updateKey'
  | 'deleteKey'
  | 'getDeletedKey'
  | 'wrapKey'
  | 'unwrapKey';

const ROUTES: readonly { method: string; pattern: RegExp; op: KvOperation }[] = [
  { method: 'POST', pattern: new RegExp(`^/keys/${NAME}/create$`), op: 'createKey' },
  { method: 'POST', pattern: new RegExp(`^/keys/${NAME}/rotate$`), op: 'rotateKey' },
  { method: 'GET', pattern: new RegExp(`^/keys/${NAME}/versions$`), op: 'getKeyVersions' },
  { method: 'GET', pattern: new RegExp(`^/keys/${NAME}(?:/${VERSION}?)?$`), op: 'getKey' },
  { method: 'PATCH', pattern: new RegExp(`^/keys/${NAME}(?:/${VERSION}?)?$`), op: 'updateKey' },
  { method: 'DELETE', pattern: new RegExp(`^/keys/${NAME}$`), op: 'deleteKey' },
  { method: 'GET', pattern: new RegExp(`^/deletedkeys/${NAME}$`), op: 'getDeletedKey' },
  { method: 'POST', pattern: new RegExp(`^/keys/${NAME}(?:/${VERSION}?)?/wrapkey$`), op: 'wrapKey' },
  { method: 'POST', pattern: new RegExp(`^/keys/${NAME}(?:/${VERSION}?)?/unwrapkey$`), op: 'unwrapKey' },
];

/** What the access policy says about one authenticated request. */
export type AccessDecision = 'allow' | 'unauthorized' | 'forbidden';

/**
 * Decides whether a bearer token may run an operation. Default: any non-empty token may do anything. The emulator
 * never logs or stores tokens.
 */
export type AccessPolicy = (token: string, operation: KvOperation) => AccessDecision;

/** Counters of the Key Vault emulator: the shared ones plus bearer challenges answered. */
export interface AzureKvCounters extends CallCounters {
  challenges: number;
}

/** Settings of the transport. */
export interface KvServiceOptions {
  /** Tenant in the `authorization` URL of the challenge. */
  readonly tenantId: string;
  /** `resource` of the challenge. Default `https://vault.azure.net` (`https://managedhsm.azure.net` for an HSM). */
  readonly resource: string;
}

function b64urlDecode(v: unknown): Buffer | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(v)) return undefined;
  return Buffer.from(v.replace(/=+$/, ''), 'base64url');
}

function send(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.destroyed || res.headersSent) return;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (payload) {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('content-length', payload.length);
  } else {
    res.setHeader('content-length', 0);
  }
  res.end(payload);
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

function withKid<T extends { key: { kid: string } }>(view: T, base: string): T {
  return { ...view, key: { ...view.key, kid: base + view.key.kid } };
}

/** The request handling of one emulator, shared by its HTTP and HTTPS listeners. */
export class KvService {
  readonly faults = new FaultController();
  #counters: AzureKvCounters = { ...newCounters(), challenges: 0 };
  #serverErrors = 0;
  #policy: AccessPolicy = () => 'allow';

  constructor(
    readonly state: KvState,
    readonly options: KvServiceOptions,
  ) {}

  get counters(): AzureKvCounters {
    return { ...this.#counters, byOperation: { ...this.#counters.byOperation } };
  }

  resetCounters(): void {
    this.#counters = { ...newCounters(), challenges: 0 };
  }

  /** Replaces the access policy (`undefined`: allow every token). */
  setAccessPolicy(policy: AccessPolicy | undefined): void {
    this.#policy = policy ?? (() => 'allow');
  }

  async handle(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https'): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const base = `${scheme}://${req.headers.host ?? '127.0.0.1'}`;
    const route = ROUTES.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    const c = this.#counters;
    c.requests++;
    const op = route?.op ?? 'unknown';
    c.byOperation[op] = (c.byOperation[op] ?? 0) + 1;

    const delay = this.faults.latencyMs(op);
    if (delay > 0) {
      const left = await new Promise<boolean>((resolve) => {
        const onClose = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          res.off('close', onClose);
          resolve(false);
        }, delay);
        res.once('close', onClose);
      });
      if (left) return;
    }
    switch (this.faults.decide(op)) {
      case 'outage':
        c.outageRejected++;
        if (!req.socket.destroyed) req.socket.resetAndDestroy();
        return;
      case 'reset':
        c.resets++;
        if (!req.socket.destroyed) req.socket.resetAndDestroy();
        return;
      case 'throttle':
        c.throttled++;
        {
          // Key Vault answers 429 with a Retry-After header in seconds ("Azure Key Vault throttling guidance",
          // learn.microsoft.com/azure/key-vault/general/overview-throttling); the value varies with the load.
          const seconds = this.faults.drawRetryAfterSeconds();
          send(
            res,
            429,
            new KvError(429, 'Throttled', `Operation ${op} was throttled. Reason: VaultRequestTypeLimitReached.`).body(),
            seconds === undefined ? {} : { 'retry-after': String(seconds) },
          );
        }
        return;
      case 'server-error': {
        c.serverErrors++;
        const e =
          this.#serverErrors++ % 2 === 0
            ? new KvError(500, 'InternalServerError', 'The service encountered an internal error. Please try again.')
            : new KvError(503, 'ServiceUnavailable', 'The service is currently unavailable.');
        send(res, e.status, e.body());
        return;
      }
      case 'serve':
        break;
    }
    c.served++;
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) {
      c.challenges++;
      send(res, 401, new KvError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.').body(), {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.options.tenantId}", resource="${this.options.resource}"`,
      });
      return;
    }
    const fail = (e: KvError): void => {
      c.serviceErrors++;
      send(res, e.status, e.body());
    };
    if (!route) {
      fail(new KvError(404, 'NotFound', `no route for ${req.method ?? ''} ${url.pathname}`));
      return;
    }
    if (!url.searchParams.get('api-version')) {
      fail(new KvError(400, 'BadParameter', 'The api-version query parameter is missing.'));
      return;
    }
    const decision = this.#policy(token, route.op);
    if (decision === 'unauthorized') {
      fail(new KvError(401, 'Unauthorized', 'AKV10032: Invalid issuer.'));
      return;
    }
    if (decision === 'forbidden') {
      fail(new KvError(403, 'Forbidden', `The caller does not have keys ${route.op} permission on this key vault.`, 'ForbiddenByPolicy'));
      return;
    }
    let body: Record<string, unknown> = {};
    if (raw === undefined) {
      fail(new KvError(413, 'RequestTooLarge', 'The request body is too large.'));
      return;
    }
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('not an object');
        body = parsed as Record<string, unknown>;
      } catch {
        fail(new KvError(400, 'BadParameter', 'The request body is not a JSON object.'));
        return;
      }
    }
    const m = route.pattern.exec(url.pathname) as RegExpExecArray;
    const name = m[1] as string;
    const version = m[2];
    try {
      send(res, 200, this.#execute(route.op, name, version, body, base));
    } catch (err) {
      if (err instanceof KvError) fail(err);
      else fail(new KvError(500, 'InternalServerError', `emulator failure: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  #execute(op: KvOperation, name: string, version: string | undefined, body: Record<string, unknown>, base: string): unknown {
    const s = this.state;
    switch (op) {
      case 'createKey':
        return withKid(s.createKey(name, body), base);
      case 'rotateKey':
        return withKid(s.rotateKey(name), base);
      case 'getKey':
        return withKid(s.getKey(name, version), base);
      case 'getKeyVersions':
        return {
          value: s.listVersions(name).map((v: KeyBundleView) => ({ kid: base + v.key.kid, attributes: v.attributes })),
          nextLink: null,
        };
      case 'updateKey':
        return withKid(s.updateKey(name, version, body as { key_ops?: unknown; attributes?: { enabled?: unknown } }), base);
      case 'deleteKey':
      case 'getDeletedKey': {
        const d = op === 'deleteKey' ? s.deleteKey(name) : s.getDeletedKey(name);
        return { ...withKid(d, base), recoveryId: base + d.recoveryId };
      }
      case 'wrapKey':
      case 'unwrapKey': {
        const value = b64urlDecode(body.value);
        if (value === undefined) throw new KvError(400, 'BadParameter', 'The parameter value must be base64url.');
        const r = op === 'wrapKey' ? s.wrapKey(name, version, body.alg, value) : s.unwrapKey(name, version, body.alg, value);
        const out = { kid: base + r.kid, value: r.value.toString('base64url') };
        if (op === 'unwrapKey') r.value.fill(0);
        return out;
      }
    }
  }
}

/** A running listener. */
export interface KvListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `service` on 127.0.0.1 over HTTP, or HTTPS when `tls` is given.
 * @throws the listen error.
 */
export async function startKvListener(service: KvService, port: number, tls?: { key: string | Buffer; cert: string | Buffer }): Promise<KvListener> {
  const scheme = tls ? 'https' : 'http';
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    service.handle(req, res, scheme).catch((err: unknown) => {
      send(res, 500, new KvError(500, 'InternalServerError', `emulator failure: ${err instanceof Error ? err.message : String(err)}`).body());
    });
  };
  const server: Server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert, keepAlive: true }, onRequest) : createHttpServer({ keepAlive: true }, onRequest);
  return listenOnLoopback(server, port, tls ? 'secureConnection' : 'connection');
}
