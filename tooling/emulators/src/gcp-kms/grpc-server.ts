/**
 * The gRPC transport of the Cloud KMS emulator: `google.cloud.kms.v1.KeyManagementService` loaded from the protos
 * shipped in `@google-cloud/kms` (build/protos), served with google-gax's own copy of @grpc/grpc-js and loaded with
 * its proto-loader options (camelCase fields, int64 as strings, enums as names), on 127.0.0.1 only. RPCs the
 * emulator does not model answer UNIMPLEMENTED.
 *
 * A "reset" or outage answers UNAVAILABLE ("Connection reset by peer"), which is what a gRPC client reports when
 * its stream is reset: grpc-js has no public way to reset one stream of a server.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as gax from 'google-gax';
import { Code, KmsError, type DecryptOutput, type EncryptOutput, type KeyView, type VersionView } from './kms-state.js';
import { statusWithRetryInfo } from './retry-info.js';
import type { KmsService, Outcome, Rpc, RpcRequest } from './service.js';

const grpc = gax.grpc;

/** Where `@google-cloud/kms` keeps its .proto files. */
export function kmsProtosDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@google-cloud/kms/package.json')), 'build', 'protos');
}

type Unary = (call: { request: Record<string, unknown>; on(event: 'cancelled', fn: () => void): void }, callback: (err: unknown, value?: unknown) => void) => void;

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function bytes(v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.alloc(0);
}

/** An Int64Value `{ value: "123" }` (or null) as a number; `undefined` when unset. */
function checksum(v: unknown): number | undefined {
  if (v === null || v === undefined || typeof v !== 'object') return undefined;
  const value = (v as { value?: unknown }).value;
  if (value === null || value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function enumText(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && !v.endsWith('_UNSPECIFIED') ? v : undefined;
}

function timestamp(d: Date): { seconds: string; nanos: number } {
  const ms = d.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

function version(v: VersionView): Record<string, unknown> {
  return {
    name: v.name,
    state: v.state,
    protectionLevel: v.protectionLevel,
    algorithm: v.algorithm,
    createTime: timestamp(v.createTime),
    generateTime: timestamp(v.generateTime),
    ...(v.destroyTime ? { destroyTime: timestamp(v.destroyTime) } : {}),
  };
}

function key(k: KeyView): Record<string, unknown> {
  return {
    name: k.name,
    purpose: k.purpose,
    createTime: timestamp(k.createTime),
    ...(k.primary ? { primary: version(k.primary) } : {}),
    versionTemplate: k.versionTemplate,
  };
}

/** The gRPC request of `rpc` as the service's typed request. */
function parse(rpc: Rpc, q: Record<string, unknown>): RpcRequest {
  switch (rpc) {
    case 'CreateKeyRing':
      return { rpc, parent: str(q.parent), keyRingId: str(q.keyRingId) };
    case 'CreateCryptoKey': {
      const ck = (q.cryptoKey ?? {}) as { purpose?: unknown; versionTemplate?: { protectionLevel?: unknown } | null };
      return {
        rpc,
        parent: str(q.parent),
        cryptoKeyId: str(q.cryptoKeyId),
        purpose: enumText(ck.purpose),
        protectionLevel: enumText(ck.versionTemplate?.protectionLevel),
        skipInitialVersionCreation: q.skipInitialVersionCreation === true,
      };
    }
    case 'CreateCryptoKeyVersion':
      return { rpc, parent: str(q.parent) };
    case 'UpdateCryptoKeyPrimaryVersion':
      return { rpc, name: str(q.name), cryptoKeyVersionId: str(q.cryptoKeyVersionId) };
    case 'UpdateCryptoKeyVersion': {
      const v = (q.cryptoKeyVersion ?? {}) as { name?: unknown; state?: unknown };
      const mask = (q.updateMask ?? {}) as { paths?: unknown };
      return { rpc, name: str(v.name), state: str(v.state), updateMask: Array.isArray(mask.paths) ? (mask.paths as string[]) : [] };
    }
    case 'DestroyCryptoKeyVersion':
      return { rpc, name: str(q.name) };
    case 'GetCryptoKey':
      return { rpc, name: str(q.name) };
    case 'ListCryptoKeyVersions':
      return { rpc, parent: str(q.parent), filter: str(q.filter) };
    case 'Encrypt':
      return {
        rpc,
        name: str(q.name),
        plaintext: bytes(q.plaintext),
        additionalAuthenticatedData: bytes(q.additionalAuthenticatedData),
        plaintextCrc32c: checksum(q.plaintextCrc32c),
        additionalAuthenticatedDataCrc32c: checksum(q.additionalAuthenticatedDataCrc32c),
      };
    case 'Decrypt':
      return {
        rpc,
        name: str(q.name),
        ciphertext: bytes(q.ciphertext),
        additionalAuthenticatedData: bytes(q.additionalAuthenticatedData),
        ciphertextCrc32c: checksum(q.ciphertextCrc32c),
        additionalAuthenticatedDataCrc32c: checksum(q.additionalAuthenticatedDataCrc32c),
      };
  }
}

/** The service's result of `rpc` as a gRPC response object. */
function render(rpc: Rpc, value: unknown): unknown {
  switch (rpc) {
    case 'CreateKeyRing': {
      const r = value as { name: string; createTime: Date };
      return { name: r.name, createTime: timestamp(r.createTime) };
    }
    case 'CreateCryptoKey':
    case 'UpdateCryptoKeyPrimaryVersion':
    case 'GetCryptoKey':
      return key(value as KeyView);
    case 'CreateCryptoKeyVersion':
    case 'UpdateCryptoKeyVersion':
    case 'DestroyCryptoKeyVersion':
      return version(value as VersionView);
    case 'ListCryptoKeyVersions': {
      const list = value as VersionView[];
      return { cryptoKeyVersions: list.map(version), nextPageToken: '', totalSize: list.length };
    }
    case 'Encrypt': {
      const r = value as EncryptOutput;
      return {
        name: r.name,
        ciphertext: r.ciphertext,
        ciphertextCrc32c: { value: String(r.ciphertextCrc32c) },
        verifiedPlaintextCrc32c: r.verifiedPlaintextCrc32c,
        verifiedAdditionalAuthenticatedDataCrc32c: r.verifiedAdditionalAuthenticatedDataCrc32c,
        protectionLevel: r.protectionLevel,
      };
    }
    case 'Decrypt': {
      const r = value as DecryptOutput;
      return {
        plaintext: r.plaintext,
        plaintextCrc32c: { value: String(r.plaintextCrc32c) },
        usedPrimary: r.usedPrimary,
        protectionLevel: r.protectionLevel,
      };
    }
  }
}

function grpcError(e: KmsError): { code: number; details: string; message: string; metadata?: gax.grpc.Metadata } {
  if (e.retryDelaySeconds === undefined) return { code: e.code, details: e.message, message: e.message };
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', statusWithRetryInfo(e.code, e.message, e.retryDelaySeconds));
  return { code: e.code, details: e.message, message: e.message, metadata };
}

/** A running gRPC server. */
export interface GrpcListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `service` over gRPC on 127.0.0.1.
 * @throws the bind error.
 */
export async function startGrpcServer(service: KmsService, port = 0): Promise<GrpcListener> {
  const client = new gax.GrpcClient();
  const loaded = client.loadProto(kmsProtosDir(), 'google/cloud/kms/v1/service.proto') as unknown as {
    google: { cloud: { kms: { v1: { KeyManagementService: { service: gax.grpc.ServiceDefinition } } } } };
  };
  const definition = loaded.google.cloud.kms.v1.KeyManagementService.service;
  const handlers: Record<string, Unary> = {};
  const rpcs: readonly Rpc[] = [
    'CreateKeyRing',
    'CreateCryptoKey',
    'CreateCryptoKeyVersion',
    'UpdateCryptoKeyPrimaryVersion',
    'UpdateCryptoKeyVersion',
    'DestroyCryptoKeyVersion',
    'GetCryptoKey',
    'ListCryptoKeyVersions',
    'Encrypt',
    'Decrypt',
  ];
  for (const rpc of rpcs) {
    const method = rpc.charAt(0).toLowerCase() + rpc.slice(1);
    handlers[method] = (call, callback) => {
      const gone = new Promise<void>((resolve) => call.on('cancelled', () => resolve()));
      let outcome: Promise<Outcome<unknown>>;
      try {
        outcome = service.run(parse(rpc, call.request), gone);
      } catch (err) {
        callback(grpcError(new KmsError(Code.INTERNAL, `emulator failure: ${err instanceof Error ? err.message : String(err)}`)));
        return;
      }
      outcome.then(
        (o) => {
          if (o.kind === 'ok') callback(null, render(rpc, o.value));
          else if (o.kind === 'error') callback(grpcError(o.error));
          else callback(grpcError(new KmsError(Code.UNAVAILABLE, 'Connection reset by peer (emulated)')));
        },
        (err: unknown) => callback(grpcError(new KmsError(Code.INTERNAL, `emulator failure: ${err instanceof Error ? err.message : String(err)}`))),
      );
    };
  }
  const server = new grpc.Server();
  server.addService(definition, handlers as unknown as gax.grpc.UntypedServiceImplementation);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      });
      return closing;
    },
  };
}
