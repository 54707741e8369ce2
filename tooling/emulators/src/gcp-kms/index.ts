/**
 * Google Cloud KMS emulator: one key store served over gRPC and over the REST fallback at once, on 127.0.0.1, with
 * real AES-256-GCM, CRC32C fields checked and returned as the service does, and fault injection (latency,
 * throttling, 5xx, resets, outage, corrupted responses). For tests, the bench and demos; never a security boundary.
 *
 * ```ts
 * const emu = await startGcpKmsEmulator();
 * const client = new KeyManagementServiceClient({ apiEndpoint: '127.0.0.1', port: emu.grpcPort,
 *   sslCreds: grpc.credentials.createInsecure(), authClient: new PassThroughClient() });
 * // or REST: { fallback: 'rest', protocol: 'http', apiEndpoint: '127.0.0.1', port: emu.restPort, authClient }
 * const keyName = emu.createKey('my-kek'); // projects/keyfold-test/locations/global/keyRings/keyfold/cryptoKeys/my-kek
 * emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1 });
 * emu.corruption.set({ next: 1, mode: 'checksum' });
 * ```
 * @module
 */
import type { FaultController } from '../faults.js';
import { startGrpcServer } from './grpc-server.js';
import { KmsError, KmsState, type ProtectionLevel } from './kms-state.js';
import { startRestServer } from './rest-server.js';
import { KmsService, type CorruptionController, type GcpKmsCounters } from './service.js';

export { KmsError, KmsState } from './kms-state.js';
export type { ProtectionLevel, VersionState, KeyView, VersionView } from './kms-state.js';
export { CorruptionController, RPCS } from './service.js';
export type { CorruptionMode, CorruptionSettings, GcpKmsCounters, Rpc } from './service.js';
export { crc32c } from './crc32c.js';
export { kmsProtosDir } from './grpc-server.js';

/** Options of {@link startGcpKmsEmulator}. */
export interface GcpKmsEmulatorOptions {
  /** gRPC port on 127.0.0.1; 0 (default) picks a free one. */
  readonly grpcPort?: number;
  /** REST port on 127.0.0.1; 0 (default) picks a free one. */
  readonly restPort?: number;
  /** Project and location of keys made with {@link GcpKmsEmulator.createKey}. Default `keyfold-test` / `global`. */
  readonly project?: string;
  readonly location?: string;
}

/** A running Cloud KMS emulator. */
export interface GcpKmsEmulator {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly grpcPort: number;
  readonly restPort: number;
  /** `http://127.0.0.1:<restPort>` */
  readonly restUrl: string;
  /** Latency, throttling, 5xx, resets and outage; RPC names (`Encrypt`, `Decrypt`, ...) as operations. */
  readonly faults: FaultController;
  /** Corrupted Encrypt / Decrypt responses (a bad checksum, or bad data with the original checksum). */
  readonly corruption: CorruptionController;
  /** A snapshot of the counters (both transports together). */
  readonly counters: GcpKmsCounters;
  /** The key store, for setup without a client. */
  readonly state: KmsState;
  resetCounters(): void;
  /**
   * Creates (if needed) the key ring `keyRing` and a new ENCRYPT_DECRYPT key `keyId` with version 1 primary, directly
   * in the store (no request is counted). Returns the CryptoKey resource name.
   * @throws KmsError ALREADY_EXISTS when the key exists.
   */
  createKey(keyId: string, options?: { keyRing?: string; protectionLevel?: ProtectionLevel }): string;
  /** Stops both servers and drops every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the Cloud KMS emulator (gRPC and REST) on 127.0.0.1.
 * @throws the bind / listen error.
 */
export async function startGcpKmsEmulator(options: GcpKmsEmulatorOptions = {}): Promise<GcpKmsEmulator> {
  const state = new KmsState();
  const service = new KmsService(state);
  const grpc = await startGrpcServer(service, options.grpcPort ?? 0);
  let rest: Awaited<ReturnType<typeof startRestServer>>;
  try {
    rest = await startRestServer(service, options.restPort ?? 0);
  } catch (err) {
    await grpc.close();
    throw err;
  }
  const location = `projects/${options.project ?? 'keyfold-test'}/locations/${options.location ?? 'global'}`;
  let closing: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    grpcPort: grpc.port,
    restPort: rest.port,
    restUrl: `http://127.0.0.1:${rest.port}`,
    faults: service.faults,
    corruption: service.corruption,
    get counters() {
      return service.counters;
    },
    state,
    resetCounters: () => service.resetCounters(),
    createKey(keyId, opts = {}) {
      const ring = opts.keyRing ?? 'keyfold';
      try {
        state.createKeyRing(location, ring);
      } catch (err) {
        if (!(err instanceof KmsError && err.code === 6)) throw err;
      }
      return state.createCryptoKey(`${location}/keyRings/${ring}`, keyId, opts.protectionLevel ? { protectionLevel: opts.protectionLevel } : {}).name;
    },
    close() {
      closing ??= Promise.all([grpc.close(), rest.close()]).then(() => undefined);
      return closing;
    },
  };
}
