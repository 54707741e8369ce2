/**
 * Symmetric KMS keys (SYMMETRIC_DEFAULT): GenerateDataKey is the fast path, Encrypt / Decrypt wrap and unwrap with
 * the envelope context as KMS EncryptionContext, ReEncrypt rewraps server-side, RotateKeyOnDemand rotates.
 *
 * Key versions: KMS names each backing key by a **KeyMaterialId** (64 hex characters) and reports it on Decrypt,
 * GenerateDataKey, ReEncrypt (source and destination) and DescribeKey (`CurrentKeyMaterialId`); ListKeyRotations
 * lists every material. A wrapped key's `keyVersion` is that id, taken from KMS's own answer, and unwrap requires
 * Decrypt to name the same material, so a relabelled wrapped key fails. Encrypt is the one call whose answer does not
 * name the material, so `wrapKey` decrypts its result once (a second call) to learn it exactly — which also proves
 * the wrap opens. Seal uses GenerateDataKey (one call) and rotation uses ReEncrypt (one call).
 *
 * Two cases where KMS does not report material ids, documented in the README: a KMS-compatible service that does
 * not send them (then every key is version `kms`, and rotation is not tracked), and the Recipient mode (KMS omits
 * KeyMaterialId when a Recipient is sent: labels then come from DescribeKey and unwrap cannot check them).
 * @module
 */
import type { KeyMetadata } from '@aws-sdk/client-kms';
import {
  ProviderError,
  UnwrapFailedError,
  constantTimeEqual,
  wipe,
  type BaseProviderOptions,
  type EncryptionContext,
  type ProviderDescription,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { AwsKmsProvider, type AwsKmsProviderInit } from './aws-kms-provider.js';
import { callWithRecipient, plaintextOf } from './recipient.js';

/**
 * The version label when KMS reports no KeyMaterialId (a KMS-compatible service without it).
 * @example
 * ```ts
 * if ((await provider.describe()).activeVersion === UNVERSIONED) console.warn('rotation is not tracked');
 * ```
 */
export const UNVERSIONED = 'kms';

/** How long a DescribeKey answer is trusted for Recipient-mode labels, ms. */
const CURRENT_MATERIAL_TTL_MS = 60_000;

/**
 * Options of {@link SymmetricKmsProvider.rotate}.
 * @example
 * ```ts
 * const options: RotateOptions = { waitMs: 120_000, pollMs: 2000 };
 * ```
 */
export interface RotateOptions {
  /** How long to wait for KMS to make the new material current, ms. Default 60,000. */
  waitMs?: number;
  /** Interval between DescribeKey polls while waiting, ms. Default 1000. */
  pollMs?: number;
}

function ctx(context: EncryptionContext): Record<string, string> | undefined {
  return Object.keys(context).length === 0 ? undefined : { ...context };
}

/**
 * A symmetric KMS key. See the module documentation for how key versions are tracked.
 * @example
 * ```ts
 * const provider = (await createAwsKmsProvider({ keyId: 'alias/keyfold-kek' })) as SymmetricKmsProvider;
 * const next = await provider.rotate(); // RotateKeyOnDemand; resolves with the new KeyMaterialId
 * ```
 */
export class SymmetricKmsProvider extends AwsKmsProvider {
  /** True when KMS reports KeyMaterialIds (real KMS does): versions and rotation are tracked. */
  readonly versioned: boolean;
  #current: { id: string; at: number } | undefined;

  /** @internal Use {@link createAwsKmsProvider}. */
  constructor(init: AwsKmsProviderInit, options: BaseProviderOptions) {
    super(init, options);
    const current = init.metadata.CurrentKeyMaterialId;
    this.versioned = typeof current === 'string' && current.length > 0;
    if (this.versioned && current) this.#current = { id: current, at: performance.now() };
  }

  protected override get capabilities(): { generateDataKey: boolean; rewrapKey: boolean; rotate: boolean } {
    return { generateDataKey: true, rewrapKey: true, rotate: this.versioned };
  }

  /** The label of a material id KMS reported (or did not). */
  #label(materialId: string | undefined): string | undefined {
    if (!this.versioned) return UNVERSIONED;
    return materialId && materialId.length > 0 ? materialId : undefined;
  }

  /** The current material from a recent DescribeKey (Recipient mode only: KMS names no material there). */
  async #currentLabel(signal: AbortSignal): Promise<string> {
    if (!this.versioned) return UNVERSIONED;
    if (this.#current && performance.now() - this.#current.at < CURRENT_MATERIAL_TTL_MS) return this.#current.id;
    const { KeyMetadata: m } = await this.calls.describeKey({ KeyId: this.arn, ...this.grants() }, signal);
    const id = m?.CurrentKeyMaterialId;
    if (!id) throw new ProviderError('INTERNAL', `AWS KMS DescribeKey of ${this.arn} named no CurrentKeyMaterialId`);
    this.#current = { id, at: performance.now() };
    return id;
  }

  protected override async _wrapKey(dataKey: Uint8Array, context: EncryptionContext, signal: AbortSignal): Promise<WrappedKey> {
    const encryptionContext = ctx(context);
    const out = await this.calls.encrypt(
      { KeyId: this.arn, Plaintext: dataKey, ...(encryptionContext ? { EncryptionContext: encryptionContext } : {}), ...this.grants() },
      signal,
    );
    const blob = out.CiphertextBlob;
    if (!blob || blob.length === 0) throw new ProviderError('INTERNAL', 'AWS KMS Encrypt returned no CiphertextBlob');
    const ciphertext = new Uint8Array(blob);
    if (this.recipient || !this.versioned) {
      // No plain Decrypt in Recipient mode (the key policy may forbid it): label from DescribeKey.
      return { kind: this.kind, keyId: this.keyId, keyVersion: await this.#currentLabel(signal), ciphertext };
    }
    // Encrypt's answer does not name the key material: decrypt once to learn it exactly (and prove the wrap opens).
    const check = await this.calls.decrypt(
      { KeyId: this.arn, CiphertextBlob: ciphertext, ...(encryptionContext ? { EncryptionContext: encryptionContext } : {}), ...this.grants() },
      signal,
    );
    const back = await plaintextOf(check, undefined, false);
    try {
      if (!constantTimeEqual(back, dataKey)) throw new ProviderError('INTERNAL', `AWS KMS did not return the wrapped key when decrypting it for ${this.arn}`);
    } finally {
      wipe(back);
    }
    const label = this.#label(check.KeyMaterialId);
    if (!label) throw new ProviderError('INTERNAL', `AWS KMS Decrypt named no KeyMaterialId for ${this.arn}`);
    return { kind: this.kind, keyId: this.keyId, keyVersion: label, ciphertext };
  }

  protected override async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<Uint8Array> {
    if (wrapped.ciphertext.length === 0) throw new UnwrapFailedError();
    const encryptionContext = ctx(context);
    const { answer: out, sent: recipient } = await callWithRecipient(this.recipient, { operation: 'Decrypt', arn: this.arn }, (r) =>
      this.calls.decrypt(
        {
          KeyId: this.arn,
          CiphertextBlob: wrapped.ciphertext,
          ...(encryptionContext ? { EncryptionContext: encryptionContext } : {}),
          ...(r ? { Recipient: r } : {}),
          ...this.grants(),
        },
        signal,
      ),
    );
    const key = await plaintextOf(out, this.recipient, recipient !== undefined);
    // The material KMS used must be the one the wrapped key claims (not checkable with a Recipient: KMS omits it).
    const labelOk = recipient !== undefined || this.#label(out.KeyMaterialId) === wrapped.keyVersion;
    if (!labelOk || out.KeyId !== this.arn) {
      wipe(key);
      throw new UnwrapFailedError();
    }
    return key;
  }

  protected override async _generateDataKey(
    context: EncryptionContext,
    signal: AbortSignal,
  ): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> {
    const encryptionContext = ctx(context);
    const { answer: out, sent: recipient } = await callWithRecipient(this.recipient, { operation: 'GenerateDataKey', arn: this.arn }, (r) =>
      this.calls.generateDataKey(
        {
          KeyId: this.arn,
          KeySpec: 'AES_256',
          ...(encryptionContext ? { EncryptionContext: encryptionContext } : {}),
          ...(r ? { Recipient: r } : {}),
          ...this.grants(),
        },
        signal,
      ),
    );
    const dataKey = await plaintextOf(out, this.recipient, recipient !== undefined);
    try {
      const blob = out.CiphertextBlob;
      if (!blob || blob.length === 0) throw new ProviderError('INTERNAL', 'AWS KMS GenerateDataKey returned no CiphertextBlob');
      const label = recipient ? await this.#currentLabel(signal) : this.#label(out.KeyMaterialId);
      if (!label) throw new ProviderError('INTERNAL', `AWS KMS GenerateDataKey named no KeyMaterialId for ${this.arn}`);
      return { dataKey, wrapped: { kind: this.kind, keyId: this.keyId, keyVersion: label, ciphertext: new Uint8Array(blob) } };
    } catch (err) {
      wipe(dataKey);
      throw err;
    }
  }

  protected override async _rewrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<WrappedKey> {
    if (wrapped.ciphertext.length === 0) throw new UnwrapFailedError();
    const encryptionContext = ctx(context);
    const out = await this.calls.reEncrypt(
      {
        CiphertextBlob: wrapped.ciphertext,
        SourceKeyId: this.arn,
        DestinationKeyId: this.arn,
        ...(encryptionContext ? { SourceEncryptionContext: encryptionContext, DestinationEncryptionContext: encryptionContext } : {}),
        ...this.grants(),
      },
      signal,
    );
    if (this.#label(out.SourceKeyMaterialId) !== wrapped.keyVersion || out.SourceKeyId !== this.arn) throw new UnwrapFailedError();
    const label = this.#label(out.DestinationKeyMaterialId);
    const blob = out.CiphertextBlob;
    if (!label || !blob || blob.length === 0) throw new ProviderError('INTERNAL', `AWS KMS ReEncrypt returned no ciphertext or KeyMaterialId for ${this.arn}`);
    return { kind: this.kind, keyId: this.keyId, keyVersion: label, ciphertext: new Uint8Array(blob) };
  }

  /** Every material id of the key, oldest first (ListKeyRotations with ALL_KEY_MATERIAL, all pages). */
  async #materials(current: string, signal: AbortSignal): Promise<{ versions: string[]; listed: boolean }> {
    const entries: { id: string; date: number; first: boolean }[] = [];
    let marker: string | undefined;
    try {
      do {
        const page = await this.calls.listKeyRotations(
          { KeyId: this.arn, IncludeKeyMaterial: 'ALL_KEY_MATERIAL', ...(marker ? { Marker: marker } : {}) },
          signal,
        );
        for (const r of page.Rotations ?? []) {
          if (!r.KeyMaterialId) continue;
          entries.push({ id: r.KeyMaterialId, date: r.RotationDate ? r.RotationDate.getTime() : 0, first: r.RotationDate === undefined });
        }
        marker = page.Truncated ? page.NextMarker : undefined;
      } while (marker);
    } catch (err) {
      // Listing needs kms:ListKeyRotations, which a minimal application role may lack: report the current one only.
      if ((err as { name?: unknown }).name === 'AccessDeniedException') return { versions: [current], listed: false };
      throw err;
    }
    entries.sort((a, b) => (a.first === b.first ? a.date - b.date : a.first ? -1 : 1));
    const versions = [...new Set(entries.map((e) => e.id))];
    if (!versions.includes(current)) versions.push(current);
    return { versions, listed: true };
  }

  protected override async _describe(signal: AbortSignal): Promise<ProviderDescription> {
    const { KeyMetadata: m } = await this.calls.describeKey({ KeyId: this.arn, ...this.grants() }, signal);
    const metadata: KeyMetadata | undefined = m;
    const current = metadata?.CurrentKeyMaterialId;
    let activeVersion = UNVERSIONED;
    let versions = [UNVERSIONED];
    let listed = true;
    if (this.versioned) {
      if (!current) throw new ProviderError('INTERNAL', `AWS KMS DescribeKey of ${this.arn} named no CurrentKeyMaterialId`);
      this.#current = { id: current, at: performance.now() };
      activeVersion = current;
      ({ versions, listed } = await this.#materials(current, signal));
    }
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion,
      versions,
      capabilities: this.capabilities,
      details: {
        ...this.baseDetails(metadata),
        versionSource: this.versioned ? 'KeyMaterialId' : 'none (the service reports no KeyMaterialId)',
        versionsListed: listed,
      },
    };
  }

  /**
   * Rotates the key in KMS (RotateKeyOnDemand) and waits until DescribeKey names the new current material, so the
   * next wrap uses it. Keys wrapped under earlier materials keep unwrapping (KMS keeps them). Needs
   * `kms:RotateKeyOnDemand`; KMS limits on-demand rotations per key.
   * @returns the new active version (KeyMaterialId).
   * @throws ProviderError CONFIG_INVALID when the service reports no key material ids; TIMEOUT when the new material
   *   is not current within `waitMs`; the mapped KMS codes otherwise; PROVIDER_CLOSED after `close()`.
   * @example
   * ```ts
   * const before = (await provider.describe()).activeVersion;
   * const after = await provider.rotate();
   * ```
   */
  async rotate(options: RotateOptions = {}): Promise<string> {
    this.assertOpen();
    if (!this.versioned) throw new ProviderError('CONFIG_INVALID', `rotation of ${this.arn} cannot be tracked: the service reports no KeyMaterialId`);
    const waitMs = options.waitMs ?? 60_000;
    const pollMs = options.pollMs ?? 1000;
    const current = async (): Promise<string | undefined> =>
      (await this.runBackend('describe', (signal) => this.calls.describeKey({ KeyId: this.arn, ...this.grants() }, signal))).KeyMetadata
        ?.CurrentKeyMaterialId;
    const before = await current();
    await this.runBackend('rotate', (signal) => this.calls.rotateKeyOnDemand({ KeyId: this.arn }, signal));
    const deadline = performance.now() + waitMs;
    for (;;) {
      const now = await current();
      if (now && now !== before) {
        this.#current = { id: now, at: performance.now() };
        return now;
      }
      if (performance.now() >= deadline) {
        throw new ProviderError('TIMEOUT', `AWS KMS did not make a new key material current for ${this.arn} within ${waitMs} ms after RotateKeyOnDemand`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
