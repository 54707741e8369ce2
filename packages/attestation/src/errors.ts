/**
 * Error classes of `@keyfold/attestation`. CMS unwrap failures reuse the core's generic {@link UnwrapFailedError};
 * document verification failures are one {@link AttestationError} whose `reason` names the failed check.
 * @module
 */
import { KeyfoldError, type KeyfoldErrorOptions } from '@keyfold/envelope-core';

/** Why an attestation document was refused. Stable: callers may branch on it. */
export type AttestationFailure =
  | 'MALFORMED'
  | 'BAD_SIGNATURE'
  | 'UNTRUSTED_ROOT'
  | 'CERT_EXPIRED'
  | 'PCR_MISMATCH'
  | 'NONCE_MISMATCH'
  | 'STALE';

/**
 * The reasons whose document is not authentic (or not even a document): `INTEGRITY_FAILED`. The others
 * (`PCR_MISMATCH`, `NONCE_MISMATCH`, `STALE`) concern an authentic document that policy refuses: `ACCESS_DENIED`.
 */
const INTEGRITY: ReadonlySet<AttestationFailure> = new Set(['MALFORMED', 'BAD_SIGNATURE', 'UNTRUSTED_ROOT', 'CERT_EXPIRED']);

/**
 * A refused attestation document. `reason` names the check that failed; `code` is `INTEGRITY_FAILED` when the
 * document cannot be shown authentic (malformed, bad signature, untrusted or expired chain) and `ACCESS_DENIED` when it
 * is authentic but does not meet the policy (PCRs, nonce, age). Verification failures are not secret (the document is
 * public), so the message says what to check.
 * @example
 * ```ts
 * try { verifyAttestationDocument(doc, { expectedPcrs: { 0: pcr0 } }); }
 * catch (e) { if (e instanceof AttestationError && e.reason === 'PCR_MISMATCH') alertWrongImage(); }
 * ```
 */
export class AttestationError extends KeyfoldError {
  static override readonly code = 'INTEGRITY_FAILED' as const;
  readonly reason: AttestationFailure;
  constructor(reason: AttestationFailure, message: string, options: KeyfoldErrorOptions = {}) {
    super(INTEGRITY.has(reason) ? 'INTEGRITY_FAILED' : 'ACCESS_DENIED', `attestation document refused (${reason}): ${message}`, options);
    this.name = 'AttestationError';
    this.reason = reason;
  }
}
