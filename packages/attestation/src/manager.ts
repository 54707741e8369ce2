/**
 * The attestation manager of an enclave: one ephemeral RSA key pair and one attestation document naming its public
 * key, cached, refreshed before a maximum age, shared by all concurrent callers, and handed to the AWS KMS provider
 * as its `recipient`.
 * @module
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { FormatError, ProviderError, UnwrapFailedError, constantTimeEqual } from '@keyfold/envelope-core';
import { unwrapSync } from './cms-unwrap.js';
import { assertKnownOptions } from './options-check.js';
import { functionSource, type AttestationFunction, type AttestationSource } from './sources.js';

const generateRsa = promisify(generateKeyPair);

/** Where warnings go. Messages never contain documents, keys or plaintext. */
export interface AttestationLogger {
  warn(message: string): void;
}

/** Options of {@link createAttestationManager}. */
export interface AttestationManagerOptions {
  /** The document source: {@link nsmSource}, {@link httpSource}, any {@link AttestationSource}, or a function. */
  readonly source: AttestationSource | AttestationFunction;
  /** Our own freshness policy (KMS publishes none): a document is replaced before it is this old. Default 5 minutes. */
  readonly maxDocumentAge?: number;
  /** RSA modulus of the ephemeral key pair: 2048 (default), 3072 or 4096. */
  readonly keyBits?: 2048 | 3072 | 4096;
  /** `user_data` to ask the NSM to include. */
  readonly userData?: Uint8Array;
  /** `nonce` to include: fixed bytes, or a function called for every new document. */
  readonly nonce?: Uint8Array | (() => Uint8Array);
  /** Clock in milliseconds since the epoch (tests). Default `Date.now`. */
  readonly now?: () => number;
  /** Where fallbacks and rejections are reported. Default `console`. */
  readonly logger?: AttestationLogger;
}

/** What {@link AttestationManager.getStatus} reports. */
export interface AttestationStatus {
  readonly state: 'empty' | 'initializing' | 'ready' | 'destroyed';
  readonly source: string;
  /** Age of the current document in milliseconds (absent without one). */
  readonly documentAge?: number;
  /** Key pairs generated so far (one per document). */
  readonly keyPairsGenerated: number;
  /** Documents fetched from the source so far. */
  readonly documentsFetched: number;
  /** Documents KMS rejected (each triggered one regeneration and retry). */
  readonly rejections: number;
  /** Calls that fell back to a plain KMS call (recipient with `required: false`). */
  readonly fallbacks: number;
  /** The last initialisation error's message, if the last attempt failed. */
  readonly lastError?: string;
}

/**
 * The object `@keyfold/provider-aws` takes as its `recipient` option (structurally its `KmsRecipient`).
 */
export interface ManagedRecipient {
  readonly attestationDocument: () => Promise<Uint8Array>;
  readonly decrypt: (ciphertextForRecipient: Uint8Array) => Promise<Uint8Array>;
  readonly required: boolean;
  readonly onFallback: (reason: unknown) => void;
  readonly onDocumentRejected: (document: Uint8Array, error: unknown) => void;
}

/** The attestation manager. See {@link createAttestationManager}. */
export interface AttestationManager {
  /** The current document (a copy), fetching or refreshing it first when needed. */
  getDocument(): Promise<Uint8Array>;
  /** Opens a `CiphertextForRecipient` with the current key (or the one before it, for calls that raced a refresh). */
  decrypt(ciphertextForRecipient: Uint8Array): Promise<Uint8Array>;
  /** The `recipient` option of `createAwsKmsProvider`. `required` defaults to true. */
  recipient(options?: { required?: boolean }): ManagedRecipient;
  getStatus(): AttestationStatus;
  /** Drops the key pair and document and fetches new ones now. */
  reinitialize(): Promise<void>;
  /** Drops the key pairs and documents; every later call fails with PROVIDER_CLOSED. */
  destroy(): void;
}

interface Slot {
  readonly document: Uint8Array;
  readonly privateKey: KeyObject;
  readonly publicKeyDer: Buffer;
  readonly fetchedAt: number;
}

const DEFAULT_MAX_AGE = 5 * 60_000;

const MANAGER_OPTIONS = ['source', 'maxDocumentAge', 'keyBits', 'userData', 'nonce', 'now', 'logger'] as const satisfies readonly (keyof AttestationManagerOptions)[];

function wipeSlot(slot: Slot | undefined): void {
  // A KeyObject cannot be zeroed from JavaScript: dropping the last reference is all that can be done. The public
  // DER copy is not secret but is wiped anyway, so nothing we hold outlives destroy().
  slot?.publicKeyDer.fill(0);
}

class Manager implements AttestationManager {
  readonly #source: AttestationSource;
  readonly #maxAge: number;
  readonly #refreshAt: number;
  readonly #keyBits: number;
  readonly #userData: Uint8Array | undefined;
  readonly #nonce: Uint8Array | (() => Uint8Array) | undefined;
  readonly #now: () => number;
  readonly #logger: AttestationLogger;
  #current: Slot | undefined;
  #previous: Slot | undefined;
  #inflight: Promise<Slot> | undefined;
  #destroyed = false;
  #keyPairs = 0;
  #documents = 0;
  #rejections = 0;
  #fallbacks = 0;
  #lastError: string | undefined;

  constructor(options: AttestationManagerOptions) {
    const src = options.source;
    this.#source = typeof src === 'function' ? functionSource(src) : src;
    if (!this.#source || typeof this.#source.attest !== 'function') throw new TypeError('source must be an AttestationSource or a function');
    this.#maxAge = options.maxDocumentAge ?? DEFAULT_MAX_AGE;
    if (!Number.isFinite(this.#maxAge) || this.#maxAge < 1000) throw new RangeError(`maxDocumentAge must be at least 1000 ms; got ${this.#maxAge}`);
    // Refresh a little before the limit so a document is never used at the very edge of its age.
    this.#refreshAt = this.#maxAge - Math.min(30_000, this.#maxAge / 10);
    this.#keyBits = options.keyBits ?? 2048;
    if (![2048, 3072, 4096].includes(this.#keyBits)) throw new RangeError(`keyBits must be 2048, 3072 or 4096; got ${this.#keyBits}`);
    if (options.userData !== undefined && !(options.userData instanceof Uint8Array)) throw new TypeError('userData must be a Uint8Array');
    if (options.nonce !== undefined && !(options.nonce instanceof Uint8Array) && typeof options.nonce !== 'function') {
      throw new TypeError('nonce must be a Uint8Array or a function returning one');
    }
    this.#userData = options.userData;
    this.#nonce = options.nonce;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger ?? console;
  }

  #assertOpen(): void {
    if (this.#destroyed) throw new ProviderError('PROVIDER_CLOSED', 'the attestation manager was destroyed');
  }

  /** The current slot; one shared initialisation when there is none or it is due for refresh. */
  #slot(): Promise<Slot> {
    this.#assertOpen();
    const slot = this.#current;
    if (slot && this.#now() - slot.fetchedAt < this.#refreshAt) return Promise.resolve(slot);
    if (!this.#inflight) {
      const run = this.#initialise();
      this.#inflight = run;
      const clear = (): void => {
        if (this.#inflight === run) this.#inflight = undefined;
      };
      run.then(clear, clear);
    }
    return this.#inflight;
  }

  async #initialise(): Promise<Slot> {
    try {
      const { publicKey, privateKey } = await generateRsa('rsa', { modulusLength: this.#keyBits, publicExponent: 0x10001 });
      this.#keyPairs++;
      const publicKeyDer = publicKey.export({ format: 'der', type: 'spki' });
      const nonce = typeof this.#nonce === 'function' ? this.#nonce() : this.#nonce;
      this.#documents++;
      const document = await this.#source.attest({
        publicKey: new Uint8Array(publicKeyDer),
        ...(this.#userData ? { userData: this.#userData } : {}),
        ...(nonce ? { nonce } : {}),
      });
      const slot: Slot = { document: new Uint8Array(document), privateKey, publicKeyDer, fetchedAt: this.#now() };
      if (this.#destroyed) {
        wipeSlot(slot);
        throw new ProviderError('PROVIDER_CLOSED', 'the attestation manager was destroyed');
      }
      // Keep the slot before this one: a call that took the old document may still bring back CMS for its key.
      if (this.#current) {
        wipeSlot(this.#previous);
        this.#previous = this.#current;
      }
      this.#current = slot;
      this.#lastError = undefined;
      return slot;
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  async getDocument(): Promise<Uint8Array> {
    const slot = await this.#slot();
    return new Uint8Array(slot.document);
  }

  decrypt(cms: Uint8Array): Promise<Uint8Array> {
    try {
      this.#assertOpen();
      const keys = [this.#current?.privateKey, this.#previous?.privateKey].filter((k): k is KeyObject => k !== undefined);
      for (const key of keys) {
        try {
          return Promise.resolve(unwrapSync(cms, key));
        } catch (err) {
          if (err instanceof FormatError || err instanceof TypeError) throw err;
        }
      }
      throw new UnwrapFailedError();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  recipient(options: { required?: boolean } = {}): ManagedRecipient {
    assertKnownOptions(options, ['required'], 'recipient');
    const required = options.required ?? true;
    if (typeof required !== 'boolean') throw new TypeError('required must be a boolean');
    return {
      required,
      attestationDocument: () => this.getDocument(),
      decrypt: (cms) => this.decrypt(cms),
      onFallback: (reason) => {
        this.#fallbacks++;
        const kind = reason instanceof Error ? `${reason.name}${'code' in reason && typeof reason.code === 'string' ? ` ${reason.code}` : ''}` : typeof reason;
        this.#logger.warn(`keyfold/attestation: no attestation document (${kind}); KMS call sent without a Recipient because required is false (fallback #${this.#fallbacks})`);
      },
      onDocumentRejected: (document, error) => {
        this.#onRejected(document, error);
      },
    };
  }

  /** KMS refused `document`: if it is still the current one, drop it so the next call makes a new key pair and document. */
  #onRejected(document: Uint8Array, error: unknown): void {
    const slot = this.#current;
    if (!slot || !constantTimeEqual(slot.document, document)) return; // already replaced by a concurrent caller
    this.#rejections++;
    wipeSlot(this.#previous);
    this.#previous = slot;
    this.#current = undefined;
    this.#logger.warn(`keyfold/attestation: AWS KMS rejected the attestation document (${error instanceof Error ? error.name : typeof error}); generating a new key pair and document`);
  }

  getStatus(): AttestationStatus {
    const slot = this.#current;
    const state = this.#destroyed ? 'destroyed' : this.#inflight ? 'initializing' : slot ? 'ready' : 'empty';
    return {
      state,
      source: this.#source.kind,
      ...(slot && !this.#destroyed ? { documentAge: this.#now() - slot.fetchedAt } : {}),
      keyPairsGenerated: this.#keyPairs,
      documentsFetched: this.#documents,
      rejections: this.#rejections,
      fallbacks: this.#fallbacks,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  async reinitialize(): Promise<void> {
    this.#assertOpen();
    if (this.#current) {
      wipeSlot(this.#previous);
      this.#previous = this.#current;
      this.#current = undefined;
    }
    await this.#slot();
  }

  destroy(): void {
    this.#destroyed = true;
    wipeSlot(this.#current);
    wipeSlot(this.#previous);
    this.#current = undefined;
    this.#previous = undefined;
  }
}

/**
 * Creates the attestation manager of an enclave.
 *
 * Security rule: the private key never leaves this object (it is not exported, logged or returned); KMS only ever sees
 * the public key inside an NSM-signed document, so only this process can open what KMS sends. Documents are replaced
 * before `maxDocumentAge`, and a document KMS rejects is replaced together with its key pair, once per rejection.
 * @throws TypeError / RangeError for bad options (an unknown option is refused by name). Calls fail with the source's error (UNAVAILABLE outside an
 *   enclave), UNWRAP_FAILED / FORMAT_INVALID from `decrypt`, PROVIDER_CLOSED after `destroy()`.
 * @example
 * ```ts
 * const attestation = createAttestationManager({ source: httpSource({ baseUrl: 'http://localhost:50123' }) });
 * const kms = await createAwsKmsProvider({ keyId: 'alias/enclave-kek', recipient: attestation.recipient({ required: true }) });
 * ```
 */
export function createAttestationManager(options: AttestationManagerOptions): AttestationManager {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object with a source');
  assertKnownOptions(options, MANAGER_OPTIONS, 'createAttestationManager');
  return new Manager(options);
}
