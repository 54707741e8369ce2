/**
 * What `keyfold attest fetch` checks in the answer of the NSM or an attestation endpoint before writing it: that it
 * is authentic (as `attest verify` checks) and that it answers this request (the public key, nonce and user data it
 * sent), so an old, replayed or foreign document is never written under the fingerprint of the key just made.
 * @module
 */
import type { AttestationDocument } from '@keyfold/attestation';
import { constantTimeEqual, KeyfoldError } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { sha256Fingerprint, verifyDocument, type TrustedRoot } from './attest-common.js';

/** Why an authentic fetched document is not the answer to this request. */
export type FetchMismatch = 'PUBLIC_KEY_MISMATCH' | 'USER_DATA_MISMATCH';

/**
 * An authentic attestation document that does not answer the request `attest fetch` made (another public key:
 * an old or replayed document; other user data). `ACCESS_DENIED` (exit 3) like the library's NONCE_MISMATCH; the
 * `reason` reaches `--json` output as `error.reason`.
 */
export class FetchedDocumentMismatchError extends KeyfoldError {
  static override readonly code = 'ACCESS_DENIED' as const;
  readonly reason: FetchMismatch;
  constructor(reason: FetchMismatch, message: string) {
    super('ACCESS_DENIED', `attestation document refused (${reason}): ${message}`);
    this.name = 'FetchedDocumentMismatchError';
    this.reason = reason;
  }
}

/**
 * The checks `attest fetch` runs on what the source answered, before anything is written: the document verifies
 * (chain to `roots`, validity, signature; the nonce when one was sent), carries exactly the public key the request
 * sent (a fresh key: an old or replayed document carries another) and, when user data was sent, exactly that.
 * Comparisons are constant-time.
 * @throws AttestationError (see {@link verifyDocument}); FetchedDocumentMismatchError ACCESS_DENIED.
 */
export async function checkFetchedDocument(
  ctx: CommandContext,
  document: Uint8Array,
  roots: readonly TrustedRoot[],
  request: { readonly publicKey: Uint8Array; readonly nonce: Uint8Array | undefined; readonly userData: Uint8Array | undefined },
): Promise<AttestationDocument> {
  const doc = await verifyDocument(ctx, document, roots, { ...(request.nonce === undefined ? {} : { nonce: request.nonce }), now: Date.now() });
  const sent = sha256Fingerprint(request.publicKey);
  if (doc.publicKey === undefined) {
    throw new FetchedDocumentMismatchError('PUBLIC_KEY_MISMATCH', `the document carries no public key; the request sent ${sent}`);
  }
  if (!constantTimeEqual(doc.publicKey, request.publicKey)) {
    throw new FetchedDocumentMismatchError(
      'PUBLIC_KEY_MISMATCH',
      `the document names the public key ${sha256Fingerprint(doc.publicKey)}, not ${sent} that this request sent: an old or replayed document`,
    );
  }
  if (request.userData !== undefined) {
    const got = doc.userData;
    if (got === undefined || !constantTimeEqual(got, request.userData)) {
      throw new FetchedDocumentMismatchError('USER_DATA_MISMATCH', 'the document does not carry the user data this request sent');
    }
  }
  return doc;
}
