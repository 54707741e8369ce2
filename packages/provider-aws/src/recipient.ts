/**
 * The Recipient hook for enclaves (AWS Nitro Enclaves, NitroTPM): Decrypt and GenerateDataKey are sent with
 * `Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument }`, and KMS answers with
 * `CiphertextForRecipient` (a CMS EnvelopedData for the enclave's public key) instead of `Plaintext`. The provider
 * does not parse attestation documents or CMS itself: the caller (the `@keyfold/attestation` package) supplies both
 * halves.
 * @module
 */
import type { RecipientInfo } from '@aws-sdk/client-kms';
import { ConfigError, KeyfoldError, ProviderError, assertBytes } from '@keyfold/envelope-core';

/**
 * How to act as a KMS Recipient.
 * @example
 * ```ts
 * const recipient: KmsRecipient = {
 *   attestationDocument: () => nsm.attest({ publicKey: enclaveKey.publicDer }),
 *   decrypt: (cms) => openEnvelopedData(cms, enclaveKey.privateKey),
 * };
 * ```
 */
export interface KmsRecipient {
  /**
   * A fresh attestation document (COSE_Sign1) whose `public_key` is the enclave key that `decrypt` holds. Called
   * for every Decrypt / GenerateDataKey, so the document is never older than the call.
   */
  readonly attestationDocument: () => Promise<Uint8Array> | Uint8Array;
  /**
   * Opens `CiphertextForRecipient` (CMS EnvelopedData, RSAES-OAEP-SHA-256 key transport, AES-256-CBC content)
   * with the enclave's private key and returns the plaintext. The provider wipes the returned buffer after copying.
   */
  readonly decrypt: (ciphertextForRecipient: Uint8Array) => Promise<Uint8Array> | Uint8Array;
  /**
   * `true` (default): every Decrypt / GenerateDataKey must go through the recipient; if no attestation document
   * can be had, or KMS answers with a plaintext anyway, the call fails. `false`: when `attestationDocument()`
   * throws (running outside an enclave, in development), the provider falls back to a plain Decrypt.
   */
  readonly required?: boolean;
  /**
   * Called each time `required: false` lets a call fall back to a plain Decrypt / GenerateDataKey, with the error of
   * `attestationDocument()`; count and log it here. Default: one `console.warn` line naming the error class only
   * (never the document or a key).
   */
  readonly onFallback?: (reason: unknown) => void;
  /**
   * Called when KMS rejects the attestation document (a ValidationException to a request carrying a Recipient), with
   * the rejected document. When set, the provider then asks `attestationDocument()` again and retries the call once
   * (e.g. after the recipient regenerated its key pair and fetched a new document); when absent, the error stands.
   */
  readonly onDocumentRejected?: (document: Uint8Array, error: unknown) => Promise<void> | void;
}

/** Validates the option. @throws TypeError for a malformed recipient. */
export function assertRecipient(r: unknown): asserts r is KmsRecipient {
  if (r === null || typeof r !== 'object') throw new TypeError('recipient must be an object with attestationDocument and decrypt');
  const o = r as Record<string, unknown>;
  if (typeof o.attestationDocument !== 'function') throw new TypeError('recipient.attestationDocument must be a function');
  if (typeof o.decrypt !== 'function') throw new TypeError('recipient.decrypt must be a function');
  if (o.required !== undefined && typeof o.required !== 'boolean') throw new TypeError('recipient.required must be a boolean');
  if (o.onFallback !== undefined && typeof o.onFallback !== 'function') throw new TypeError('recipient.onFallback must be a function');
  if (o.onDocumentRejected !== undefined && typeof o.onDocumentRejected !== 'function') throw new TypeError('recipient.onDocumentRejected must be a function');
}

/**
 * Codes of an attestation source failure that say "try again later" (an attestation endpoint or the NSM that is down,
 * slow or busy): surfaced as themselves, so an unreachable endpoint is UNAVAILABLE, not a configuration error.
 */
const TRANSIENT_SOURCE_CODES: ReadonlySet<string> = new Set(['UNAVAILABLE', 'TIMEOUT', 'THROTTLED']);

/**
 * The `Recipient` parameter for one call, or `undefined` to call without one (recipient absent, or not required
 * and no attestation document available).
 * @throws ProviderError UNAVAILABLE / TIMEOUT / THROTTLED (the source's own code and message, which name the endpoint
 *   or device, never a document) when the attestation source is unreachable or busy; ConfigError (CONFIG_INVALID)
 *   when a required attestation document cannot be obtained for any other reason.
 */
export async function recipientParameter(recipient: KmsRecipient | undefined): Promise<RecipientInfo | undefined> {
  if (!recipient) return undefined;
  let doc: Uint8Array;
  try {
    doc = await recipient.attestationDocument();
    assertBytes(doc, undefined, 'the attestation document');
  } catch (cause) {
    if (recipient.required === false) {
      reportFallback(recipient, cause);
      return undefined;
    }
    if (cause instanceof KeyfoldError && TRANSIENT_SOURCE_CODES.has(cause.code)) {
      throw new ProviderError(cause.code, `no attestation document for the KMS recipient: ${cause.message}`, { cause });
    }
    throw new ConfigError('the KMS recipient has no attestation document (is this running inside the enclave?); set recipient.required to false to allow plain Decrypt outside it', { cause });
  }
  return { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: doc };
}

function reportFallback(recipient: KmsRecipient, cause: unknown): void {
  if (recipient.onFallback) {
    recipient.onFallback(cause);
    return;
  }
  const kind = cause instanceof Error ? cause.name : typeof cause;
  console.warn(`keyfold/aws-kms: no attestation document (${kind}); falling back to a plain KMS call because recipient.required is false`);
}

/** What a refused call was, for the message: `Decrypt` on the key's ARN. */
export interface RecipientCallTarget {
  readonly operation: 'Decrypt' | 'GenerateDataKey';
  readonly arn: string;
}

/** KMS's own words, bounded and reduced to printable ASCII (they name the failed check, never a key). */
function kmsWords(err: Error): string {
  const text = err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  return text === '' ? err.name : `${err.name}: ${text}`;
}

/**
 * Maps KMS's refusal of a request that carried a Recipient to ATTESTATION_REFUSED; `undefined` for other errors.
 * - ValidationException: KMS refused the attestation document itself (malformed, not signed by a trusted Nitro
 *   chain, expired certificates).
 * - AccessDeniedException: the key policy did not allow the call with this document. KMS does not say which
 *   condition failed, so the message names both causes: `kms:RecipientAttestation:*` conditions (ImageSha384, PCRs)
 *   that do not match this enclave, or a role that may not use the key at all.
 */
function attestationRefusal(err: unknown, target: RecipientCallTarget): ProviderError | undefined {
  if (!(err instanceof Error)) return undefined;
  const what = `kms:${target.operation} on ${target.arn}`;
  if (err.name === 'ValidationException') {
    return new ProviderError(
      'ATTESTATION_REFUSED',
      `AWS KMS refused the enclave's attestation document for ${what} (${kmsWords(err)}): the document must come from this enclave's NSM, signed by the AWS Nitro root, with valid certificates`,
      { cause: err },
    );
  }
  if (err.name === 'AccessDeniedException') {
    return new ProviderError(
      'ATTESTATION_REFUSED',
      `AWS KMS denied ${what} to this enclave's attested request (AccessDeniedException): the key policy's kms:RecipientAttestation conditions (ImageSha384, PCRs) do not match this enclave's attestation document, or this role may not use the key; compare the enclave image's PCRs with the key policy`,
      { cause: err },
    );
  }
  return undefined;
}

/**
 * Sends one KMS call with the `Recipient` parameter (see {@link recipientParameter}). When KMS rejects the
 * attestation document (ValidationException) and the recipient has `onDocumentRejected`, that hook runs and the call
 * is sent once more with a new document; never more than once, and never without a Recipient. A refusal that stands
 * (the document again, or the key policy's attestation conditions) is ATTESTATION_REFUSED with KMS's error as `cause`.
 * @returns KMS's answer and the Recipient that was sent (undefined: none).
 * @throws ProviderError ATTESTATION_REFUSED; the errors of {@link recipientParameter}; other KMS errors unchanged
 *   (the provider maps them).
 */
export async function callWithRecipient<T>(
  recipient: KmsRecipient | undefined,
  target: RecipientCallTarget,
  send: (parameter: RecipientInfo | undefined) => Promise<T>,
): Promise<{ answer: T; sent: RecipientInfo | undefined }> {
  const first = await recipientParameter(recipient);
  if (!first) return { answer: await send(first), sent: first };
  try {
    return { answer: await send(first), sent: first };
  } catch (err) {
    const refused = attestationRefusal(err, target);
    if (!refused) throw err;
    if (!recipient?.onDocumentRejected || (err as Error).name !== 'ValidationException') throw refused;
    await recipient.onDocumentRejected(first.AttestationDocument as Uint8Array, err);
    const second = await recipientParameter(recipient);
    if (!second) throw refused;
    try {
      return { answer: await send(second), sent: second };
    } catch (again) {
      throw attestationRefusal(again, target) ?? again;
    }
  }
}

/**
 * The plaintext of a Decrypt / GenerateDataKey answer: `CiphertextForRecipient` opened by the recipient when a
 * Recipient was sent, else `Plaintext`. Always a fresh buffer the caller owns; the SDK's buffer is wiped.
 * @throws ProviderError POLICY_VIOLATION when KMS returned a plaintext although a Recipient was sent;
 *   an error of `recipient.decrypt`, or INTERNAL when the answer has neither field.
 */
export async function plaintextOf(
  answer: { Plaintext?: Uint8Array | undefined; CiphertextForRecipient?: Uint8Array | undefined },
  recipient: KmsRecipient | undefined,
  sentRecipient: boolean,
): Promise<Uint8Array> {
  if (sentRecipient) {
    if (answer.Plaintext) {
      answer.Plaintext.fill(0);
      throw new ProviderError('POLICY_VIOLATION', 'AWS KMS returned a plaintext although the request named a Recipient; refusing it');
    }
    const cms = answer.CiphertextForRecipient;
    if (!cms || !recipient) throw new ProviderError('INTERNAL', 'AWS KMS returned no CiphertextForRecipient');
    const opened = await recipient.decrypt(cms);
    assertBytes(opened, undefined, 'the plaintext recipient.decrypt returned');
    const out = new Uint8Array(opened);
    opened.fill(0);
    return out;
  }
  const pt = answer.Plaintext;
  if (!pt) throw new ProviderError('INTERNAL', 'AWS KMS returned no Plaintext');
  const out = new Uint8Array(pt);
  pt.fill(0);
  return out;
}
