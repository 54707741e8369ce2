/**
 * RSA KMS keys (RSA_2048 / 3072 / 4096, ENCRYPT_DECRYPT): the public key is fetched once (GetPublicKey) and cached,
 * wrapping is local RSAES-OAEP-SHA-256 (no KMS call), unwrapping is KMS Decrypt. Anyone holding the public key can
 * wrap, but only principals allowed to Decrypt can unwrap.
 *
 * KMS does not accept an encryption context for asymmetric keys, so the context is bound inside the OAEP
 * plaintext: `0x01 || dataKey (32) || SHA-256("keyfold/aws-kms/rsa-oaep-sha256/v1" || canonical context)` — 65 bytes,
 * within the OAEP limit of every RSA size (190 B for 2048). Unwrap compares the digest in constant time.
 *
 * Key versions: KMS cannot rotate asymmetric keys. `keyVersion` is `spki:` + the first 16 bytes (hex) of SHA-256 of
 * the public key, so it names exactly the key pair that wrapped, and a relabelled wrapped key fails before any call.
 * @module
 */
import { constants, createHash, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';
import {
  ProviderError,
  UnwrapFailedError,
  constantTimeEqual,
  encodeContext,
  wipe,
  type EncryptionContext,
  type ProviderDescription,
  type WrappedKey,
} from '@keyfold/envelope-core';
import { AwsKmsProvider } from './aws-kms-provider.js';
import { callWithRecipient, plaintextOf } from './recipient.js';

const FORMAT = 0x01;
const DOMAIN = Buffer.from('keyfold/aws-kms/rsa-oaep-sha256/v1', 'utf8');
const PAYLOAD = 1 + 32 + 32;

interface PublicKeyInfo {
  readonly key: KeyObject;
  readonly label: string;
}

function contextDigest(context: EncryptionContext): Buffer {
  return createHash('sha256').update(DOMAIN).update(encodeContext(context)).digest();
}

/**
 * An RSA KMS key: local wrap with the cached public key, KMS Decrypt to unwrap.
 * @example
 * ```ts
 * const provider = await createAwsKmsProvider({ keyId: 'alias/keyfold-rsa' }); // an RSA_3072 key
 * const wrapped = await provider.wrapKey(dataKey, { table: 'users' }); // no KMS call
 * ```
 */
export class RsaKmsProvider extends AwsKmsProvider {
  #publicKey: Promise<PublicKeyInfo> | undefined;

  protected override get capabilities(): { generateDataKey: boolean; rewrapKey: boolean; rotate: boolean } {
    return { generateDataKey: false, rewrapKey: false, rotate: false };
  }

  /** The public key, fetched once; a failed fetch is retried by the next call. */
  #public(signal: AbortSignal): Promise<PublicKeyInfo> {
    this.#publicKey ??= (async () => {
      const out = await this.calls.getPublicKey({ KeyId: this.arn, ...this.grants() }, signal);
      const der = out.PublicKey;
      if (!der || der.length === 0) throw new ProviderError('INTERNAL', `AWS KMS GetPublicKey of ${this.arn} returned no public key`);
      if (out.KeyId !== undefined && out.KeyId !== this.arn) throw new ProviderError('INTERNAL', `AWS KMS GetPublicKey answered for another key than ${this.arn}`);
      if (out.EncryptionAlgorithms && !out.EncryptionAlgorithms.includes('RSAES_OAEP_SHA_256')) {
        throw new ProviderError('CONFIG_INVALID', `AWS KMS key ${this.arn} does not support RSAES_OAEP_SHA_256`);
      }
      const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
      const label = `spki:${createHash('sha256').update(der).digest('hex').slice(0, 32)}`;
      return { key, label };
    })();
    const pending = this.#publicKey;
    pending.catch(() => {
      if (this.#publicKey === pending) this.#publicKey = undefined;
    });
    return pending;
  }

  protected override async _wrapKey(dataKey: Uint8Array, context: EncryptionContext, signal: AbortSignal): Promise<WrappedKey> {
    const { key, label } = await this.#public(signal);
    const payload = Buffer.alloc(PAYLOAD);
    try {
      payload[0] = FORMAT;
      payload.set(dataKey, 1);
      contextDigest(context).copy(payload, 33);
      const ct = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, payload);
      return { kind: this.kind, keyId: this.keyId, keyVersion: label, ciphertext: new Uint8Array(ct) };
    } finally {
      wipe(payload);
    }
  }

  protected override async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<Uint8Array> {
    const { label } = await this.#public(signal);
    if (wrapped.keyVersion !== label || wrapped.ciphertext.length === 0) throw new UnwrapFailedError();
    const { answer: out, sent: recipient } = await callWithRecipient(this.recipient, { operation: 'Decrypt', arn: this.arn }, (r) =>
      this.calls.decrypt(
        {
          KeyId: this.arn,
          CiphertextBlob: wrapped.ciphertext,
          EncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
          ...(r ? { Recipient: r } : {}),
          ...this.grants(),
        },
        signal,
      ),
    );
    const payload = await plaintextOf(out, this.recipient, recipient !== undefined);
    try {
      if (
        payload.length !== PAYLOAD ||
        payload[0] !== FORMAT ||
        !constantTimeEqual(payload.subarray(33), contextDigest(context)) ||
        out.KeyId !== this.arn
      ) {
        throw new UnwrapFailedError();
      }
      return payload.slice(1, 33);
    } finally {
      wipe(payload);
    }
  }

  protected override async _describe(signal: AbortSignal): Promise<ProviderDescription> {
    const { KeyMetadata: m } = await this.calls.describeKey({ KeyId: this.arn, ...this.grants() }, signal);
    const { label } = await this.#public(signal);
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: label,
      versions: [label],
      capabilities: this.capabilities,
      details: { ...this.baseDetails(m), versionSource: 'public key (SHA-256 of the SPKI)', wrapAlgorithm: 'RSAES_OAEP_SHA_256' },
    };
  }
}
