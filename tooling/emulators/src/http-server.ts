/**
 * The HTTP plumbing both emulators share: a server bound to 127.0.0.1 only, body limits, the fault pipeline
 * (latency, throttling, 5xx, resets, outage), call counters and the admin endpoints under `/__keyfold/`.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FaultController, newCounters, type CallCounters, type FaultSettings } from './faults.js';

/** Largest request body accepted (KMS caps plaintext at 4 KiB; Vault batches stay well below this). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** One answer of an emulated service. */
export interface ServiceResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON-serialisable body, or undefined for an empty body (204). */
  readonly body?: unknown;
}

/** What a service plugs into the shared server. */
export interface ServiceDefinition {
  /** Names the operation of a request (for counters and fault filters); `undefined` if the request is malformed. */
  operationOf(req: IncomingMessage, body: Buffer): string | undefined;
  handle(operation: string | undefined, req: IncomingMessage, body: Buffer): ServiceResponse | Promise<ServiceResponse>;
  /** The service's throttling answer; `retryAfterSeconds` is the delay to ask for (drawn by the fault settings). */
  throttleResponse(operation: string, retryAfterSeconds: number | undefined): ServiceResponse;
  serverErrorResponse(operation: string): ServiceResponse;
  /** Extra admin routes (`/__keyfold/<name>`), for example Vault's seal and unseal. */
  admin?(name: string, body: unknown): ServiceResponse | undefined;
  /** The content type of this service's JSON bodies. */
  readonly contentType: string;
}

/** Common surface of a running emulator. */
export interface EmulatorServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Fault settings, changeable while the emulator runs. */
  readonly faults: FaultController;
  /** A snapshot of the call counters. */
  readonly counters: CallCounters;
  /** Zeroes the counters. */
  resetCounters(): void;
  /** Stops listening and drops every open connection. Idempotent. */
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
}

function snapshot(c: CallCounters): CallCounters {
  return { ...c, byOperation: { ...c.byOperation } };
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ms: number, socket: Socket): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    socket.once('close', done);
  });
}

function send(res: ServerResponse, r: ServiceResponse, contentType: string): void {
  if (res.destroyed || res.headersSent) return;
  const payload = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body));
  res.statusCode = r.status;
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  if (payload) {
    res.setHeader('content-type', contentType);
    res.setHeader('content-length', payload.length);
  }
  res.end(payload);
}

function reset(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && !socket.destroyed) socket.resetAndDestroy();
}

/** A server listening on 127.0.0.1, with a close that also ends open keep-alive connections. */
export interface LoopbackListener {
  readonly port: number;
  /** Idempotent. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 only (never another address), tracks connections so `close()` ends keep-alive sockets at
 * once, and drops connections that send malformed HTTP. `connectionEvent` is `secureConnection` for HTTPS.
 * @throws the listen error (EADDRINUSE, ...).
 */
export async function listenOnLoopback(
  server: Server,
  port: number,
  connectionEvent: 'connection' | 'secureConnection' = 'connection',
): Promise<LoopbackListener> {
  const sockets = new Set<Socket>();
  server.on(connectionEvent, (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s: Socket) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * Starts an emulated service on 127.0.0.1.
 * @throws the listen error (EADDRINUSE, ...).
 */
export async function startServer(service: ServiceDefinition, options: ListenOptions = {}): Promise<EmulatorServer> {
  const faults = new FaultController();
  let counters = newCounters();

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    if (body === undefined) {
      send(res, { status: 413, body: { message: `request body larger than ${MAX_BODY_BYTES} bytes` } }, 'application/json');
      return;
    }
    const url = req.url ?? '/';
    if (url.startsWith('/__keyfold/')) {
      send(res, admin(url.slice('/__keyfold/'.length).split('?')[0] ?? '', req.method ?? 'GET', body), 'application/json');
      return;
    }
    counters.requests++;
    const operation = service.operationOf(req, body);
    const op = operation ?? 'unknown';
    counters.byOperation[op] = (counters.byOperation[op] ?? 0) + 1;
    const socket = req.socket;
    await sleep(faults.latencyMs(op), socket);
    if (socket.destroyed) return;
    switch (faults.decide(op)) {
      case 'outage':
        counters.outageRejected++;
        reset(res);
        return;
      case 'reset':
        counters.resets++;
        reset(res);
        return;
      case 'throttle':
        counters.throttled++;
        send(res, service.throttleResponse(op, faults.drawRetryAfterSeconds()), service.contentType);
        return;
      case 'server-error':
        counters.serverErrors++;
        send(res, service.serverErrorResponse(op), service.contentType);
        return;
      case 'serve':
        break;
    }
    counters.served++;
    const r = await service.handle(operation, req, body);
    if (r.status >= 400) counters.serviceErrors++;
    send(res, r, service.contentType);
  };

  const admin = (name: string, method: string, body: Buffer): ServiceResponse => {
    let json: unknown;
    try {
      json = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      return { status: 400, body: { error: 'admin request body must be JSON' } };
    }
    if (name === 'counters' && method === 'GET') return { status: 200, body: snapshot(counters) };
    if (name === 'counters/reset' && method === 'POST') {
      counters = newCounters();
      return { status: 200, body: {} };
    }
    if (name === 'faults' && method === 'GET') return { status: 200, body: faults.settings };
    if (name === 'faults' && method === 'POST') {
      try {
        faults.set(json as FaultSettings);
      } catch (err) {
        return { status: 400, body: { error: err instanceof Error ? err.message : String(err) } };
      }
      return { status: 200, body: faults.settings };
    }
    return service.admin?.(name, json) ?? { status: 404, body: { error: `unknown admin route ${name}` } };
  };

  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    onRequest(req, res).catch((err: unknown) => {
      send(res, { status: 500, body: { message: `emulator failure: ${err instanceof Error ? err.message : String(err)}` } }, 'application/json');
    });
  });
  const listener = await listenOnLoopback(server, options.port ?? 0);
  const port = listener.port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    faults,
    get counters() {
      return snapshot(counters);
    },
    resetCounters() {
      counters = newCounters();
    },
    close: () => listener.close(),
  };
}
