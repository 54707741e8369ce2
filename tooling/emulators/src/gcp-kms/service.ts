/**
 * What both Cloud KMS transports share: the fault pipeline (latency, throttling, 5xx, resets, outage from the shared
 * {@link FaultController}), response corruption (a bad checksum or bad data the client must catch), counters, and
 * the dispatch of one RPC to the {@link KmsState}.
 * @module
 */
import { FaultController, newCounters, type CallCounters } from '../faults.js';
import { Code, KmsError, type DecryptOutput, type EncryptOutput, type KmsState } from './kms-state.js';

/** RPC names the emulator serves (also the operation names of fault filters and counters). */
export const RPCS = [
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
] as const;
export type Rpc = (typeof RPCS)[number];

/** How a corrupted Encrypt / Decrypt response is corrupted. */
export type CorruptionMode = 'checksum' | 'data' | 'unverified';

/** Settings of {@link CorruptionController}. */
export interface CorruptionSettings {
  /** Share of successful Encrypt / Decrypt responses to corrupt, in [0, 1]. */
  readonly ratio?: number;
  /** Corrupt exactly the next N successful Encrypt / Decrypt responses (before `ratio` applies). */
  readonly next?: number;
  /**
   * `checksum`: the returned `ciphertext_crc32c` / `plaintext_crc32c` is wrong (the data is intact);
   * `data`: one bit of the returned ciphertext / plaintext is flipped and the checksum is that of the original;
   * `unverified`: Encrypt answers `verified_plaintext_crc32c` and `verified_additional_authenticated_data_crc32c`
   * false, as the service does when the checksums did not reach it (Decrypt responses are left intact).
   * Default `checksum`.
   */
  readonly mode?: CorruptionMode;
  /** Only these RPCs (`Encrypt`, `Decrypt`). Default both. */
  readonly operations?: readonly ('Encrypt' | 'Decrypt')[];
  /** PRNG seed for `ratio`. */
  readonly seed?: number;
}

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decides which responses are corrupted in transit. */
export class CorruptionController {
  #settings: CorruptionSettings = {};
  #next = 0;
  #random: () => number = prng(0x6763);

  get settings(): CorruptionSettings {
    return { ...this.#settings, next: this.#next };
  }

  /**
   * Replaces the settings.
   * @throws RangeError for a ratio outside [0, 1] or a negative `next`.
   */
  set(settings: CorruptionSettings): void {
    const ratio = settings.ratio ?? 0;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw new RangeError(`ratio must be in [0, 1]; got ${String(ratio)}`);
    const next = settings.next ?? 0;
    if (!Number.isInteger(next) || next < 0) throw new RangeError(`next must be an integer >= 0; got ${String(next)}`);
    if (settings.mode !== undefined && settings.mode !== 'checksum' && settings.mode !== 'data' && settings.mode !== 'unverified') {
      throw new TypeError(`mode must be "checksum", "data" or "unverified"; got ${String(settings.mode)}`);
    }
    this.#settings = { ...settings };
    this.#next = next;
    this.#random = prng(settings.seed ?? 0x6763);
  }

  clear(): void {
    this.set({});
  }

  /** The corruption to apply to one successful response of `rpc`, if any. */
  decide(rpc: 'Encrypt' | 'Decrypt'): CorruptionMode | undefined {
    const s = this.#settings;
    if (s.operations && !s.operations.includes(rpc)) return undefined;
    const mode = s.mode ?? 'checksum';
    if (mode === 'unverified' && rpc !== 'Encrypt') return undefined;
    if (this.#next > 0) {
      this.#next--;
      return mode;
    }
    if (s.ratio && this.#random() < s.ratio) return mode;
    return undefined;
  }
}

/** Counters of the Cloud KMS emulator: the shared ones plus corrupted responses. */
export interface GcpKmsCounters extends CallCounters {
  corrupted: number;
}

/** What one request came to. */
export type Outcome<T> = { kind: 'ok'; value: T } | { kind: 'error'; error: KmsError } | { kind: 'reset' };

/** A typed view of a request, as both transports produce it. */
export type RpcRequest =
  | { rpc: 'CreateKeyRing'; parent: string; keyRingId: string }
  | {
      rpc: 'CreateCryptoKey';
      parent: string;
      cryptoKeyId: string;
      purpose: string | undefined;
      protectionLevel: string | undefined;
      skipInitialVersionCreation: boolean;
    }
  | { rpc: 'CreateCryptoKeyVersion'; parent: string }
  | { rpc: 'UpdateCryptoKeyPrimaryVersion'; name: string; cryptoKeyVersionId: string }
  | { rpc: 'UpdateCryptoKeyVersion'; name: string; state: string; updateMask: readonly string[] }
  | { rpc: 'DestroyCryptoKeyVersion'; name: string }
  | { rpc: 'GetCryptoKey'; name: string }
  | { rpc: 'ListCryptoKeyVersions'; parent: string; filter: string }
  | {
      rpc: 'Encrypt';
      name: string;
      plaintext: Buffer;
      additionalAuthenticatedData: Buffer;
      plaintextCrc32c: number | undefined;
      additionalAuthenticatedDataCrc32c: number | undefined;
    }
  | {
      rpc: 'Decrypt';
      name: string;
      ciphertext: Buffer;
      additionalAuthenticatedData: Buffer;
      ciphertextCrc32c: number | undefined;
      additionalAuthenticatedDataCrc32c: number | undefined;
    };

function execute(state: KmsState, r: RpcRequest): unknown {
  switch (r.rpc) {
    case 'CreateKeyRing':
      return state.createKeyRing(r.parent, r.keyRingId);
    case 'CreateCryptoKey':
      return state.createCryptoKey(r.parent, r.cryptoKeyId, {
        ...(r.purpose !== undefined ? { purpose: r.purpose } : {}),
        ...(r.protectionLevel !== undefined ? { protectionLevel: r.protectionLevel } : {}),
        skipInitialVersionCreation: r.skipInitialVersionCreation,
      });
    case 'CreateCryptoKeyVersion':
      return state.createCryptoKeyVersion(r.parent);
    case 'UpdateCryptoKeyPrimaryVersion':
      return state.updateCryptoKeyPrimaryVersion(r.name, r.cryptoKeyVersionId);
    case 'UpdateCryptoKeyVersion':
      if (r.updateMask.length !== 1 || r.updateMask[0] !== 'state') {
        throw new KmsError(Code.INVALID_ARGUMENT, 'the emulator supports update_mask "state" only');
      }
      return state.updateCryptoKeyVersionState(r.name, r.state);
    case 'DestroyCryptoKeyVersion':
      return state.destroyCryptoKeyVersion(r.name);
    case 'GetCryptoKey':
      return state.getCryptoKey(r.name);
    case 'ListCryptoKeyVersions':
      return state.listCryptoKeyVersions(r.parent, r.filter);
    case 'Encrypt':
      return state.encrypt(r);
    case 'Decrypt':
      return state.decrypt(r);
  }
}

/** The fault pipeline and dispatch, shared by the gRPC and REST servers of one emulator. */
export class KmsService {
  readonly faults = new FaultController();
  readonly corruption = new CorruptionController();
  #counters: GcpKmsCounters = { ...newCounters(), corrupted: 0 };
  #serverErrors = 0;

  constructor(readonly state: KmsState) {}

  get counters(): GcpKmsCounters {
    return { ...this.#counters, byOperation: { ...this.#counters.byOperation } };
  }

  resetCounters(): void {
    this.#counters = { ...newCounters(), corrupted: 0 };
  }

  /** Counts a request that could not be parsed (it never reaches the fault pipeline). */
  countMalformed(): void {
    this.#counters.requests++;
    this.#counters.byOperation.unknown = (this.#counters.byOperation.unknown ?? 0) + 1;
    this.#counters.serviceErrors++;
  }

  /**
   * Runs one request through latency, faults, the service and corruption. `gone` resolves when the client went
   * away (the wait for latency stops there).
   */
  async run(request: RpcRequest, gone: Promise<void>): Promise<Outcome<unknown>> {
    const c = this.#counters;
    const op = request.rpc;
    c.requests++;
    c.byOperation[op] = (c.byOperation[op] ?? 0) + 1;
    const delay = this.faults.latencyMs(op);
    if (delay > 0) {
      let timer: NodeJS.Timeout | undefined;
      const left = await Promise.race([
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), delay);
        }),
        gone.then(() => true),
      ]);
      clearTimeout(timer);
      if (left) return { kind: 'reset' };
    }
    switch (this.faults.decide(op)) {
      case 'outage':
        c.outageRejected++;
        return { kind: 'reset' };
      case 'reset':
        c.resets++;
        return { kind: 'reset' };
      case 'throttle':
        c.throttled++;
        return {
          kind: 'error',
          error: new KmsError(
            Code.RESOURCE_EXHAUSTED,
            "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute' of service 'cloudkms.googleapis.com'.",
            this.faults.drawRetryAfterSeconds(),
          ),
        };
      case 'server-error':
        c.serverErrors++;
        // Alternate the two 5xx answers Cloud KMS gives: 500 INTERNAL and 503 UNAVAILABLE.
        return {
          kind: 'error',
          error:
            this.#serverErrors++ % 2 === 0
              ? new KmsError(Code.INTERNAL, 'Internal error encountered.')
              : new KmsError(Code.UNAVAILABLE, 'The service is currently unavailable.'),
        };
      case 'serve':
        break;
    }
    c.served++;
    let value: unknown;
    try {
      value = execute(this.state, request);
    } catch (err) {
      c.serviceErrors++;
      if (err instanceof KmsError) return { kind: 'error', error: err };
      return { kind: 'error', error: new KmsError(Code.INTERNAL, `emulator failure: ${err instanceof Error ? err.message : String(err)}`) };
    }
    if (op === 'Encrypt' || op === 'Decrypt') {
      const mode = this.corruption.decide(op);
      if (mode) {
        c.corrupted++;
        value = op === 'Encrypt' ? corruptEncrypt(value as EncryptOutput, mode) : corruptDecrypt(value as DecryptOutput, mode);
      }
    }
    return { kind: 'ok', value };
  }
}

function flipBit(data: Buffer): Buffer {
  const out = Buffer.from(data);
  if (out.length > 0) out[out.length >> 1] = (out[out.length >> 1] as number) ^ 0x04;
  return out;
}

function corruptEncrypt(r: EncryptOutput, mode: CorruptionMode): EncryptOutput {
  if (mode === 'unverified') return { ...r, verifiedPlaintextCrc32c: false, verifiedAdditionalAuthenticatedDataCrc32c: false };
  return mode === 'checksum' ? { ...r, ciphertextCrc32c: (r.ciphertextCrc32c ^ 1) >>> 0 } : { ...r, ciphertext: flipBit(r.ciphertext) };
}

function corruptDecrypt(r: DecryptOutput, mode: CorruptionMode): DecryptOutput {
  if (mode === 'unverified') return r;
  return mode === 'checksum' ? { ...r, plaintextCrc32c: (r.plaintextCrc32c ^ 1) >>> 0 } : { ...r, plaintext: flipBit(r.plaintext) };
}
