/**
 * Shared by `keyfold attest verify` and `keyfold attest fetch`: hex option values, the SHA-256 fingerprint that
 * names a public key in the output (never the key bytes), the trusted roots (`--root` files or the pinned AWS Nitro
 * root), and the checks a fetched document must pass before it is written.
 * @module
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AttestationDocument } from '@keyfold/attestation';
import { constantTimeEqual, KeyfoldError } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { ioError } from '../io.js';

/**
 * `value` of `--option` as bytes: an even number of hex digits, 1 to `maxBytes` bytes.
 * @throws UsageError naming the option and what was wrong.
 */
export function parseHexOption(value: string, option: string, command: string, maxBytes: number): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(value)) {
    throw new UsageError(`${option} expects an even number of hex digits; got ${JSON.stringify(value.slice(0, 40))}`, command);
  }
  const bytes = Buffer.from(value, 'hex');
  if (bytes.length > maxBytes) throw new UsageError(`${option} is ${bytes.length} bytes; at most ${maxBytes} are accepted`, command);
  return bytes;
}

/** `sha256:<hex>` of `bytes`: how a public key is shown. */
export function sha256Fingerprint(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A certificate trusted as the root of attestation document chains. */
export interface TrustedRoot {
  readonly cert: X509Certificate;
  /** Where it came from: `--root FILE` or the pinned AWS Nitro root. */
  readonly source: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The roots of `--root` (every certificate of every file), or the pinned AWS Nitro root when none is given. The
 * root a document carries is never trusted.
 * @throws UsageError for a file without a PEM certificate or one that does not parse; CliError IO_ERROR when a file
 *   cannot be read.
 */
export async function loadRoots(ctx: CommandContext, files: readonly string[]): Promise<TrustedRoot[]> {
  if (files.length === 0) {
    const { AWS_NITRO_ROOT_PEM } = await import('@keyfold/attestation');
    return [{ cert: new X509Certificate(AWS_NITRO_ROOT_PEM), source: 'the pinned AWS Nitro root' }];
  }
  const roots: TrustedRoot[] = [];
  for (const file of files) {
    const path = resolve(ctx.cwd, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw ioError('read', path, err);
    }
    const blocks = text.match(PEM_CERTIFICATE) ?? [];
    if (blocks.length === 0) throw new UsageError(`--root ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, ctx.name);
    for (const block of blocks) {
      try {
        roots.push({ cert: new X509Certificate(block), source: `--root ${file}` });
      } catch {
        throw new UsageError(`--root ${file}: a certificate in it does not parse`, ctx.name);
      }
    }
  }
  return roots;
}

/**
 * Runs `verifyAttestationDocument` with `roots`; an UNTRUSTED_ROOT refusal is reworded to say which roots were
 * trusted and how to trust a test CA. Every other refusal is the library's, unchanged.
 * @throws AttestationError: INTEGRITY_FAILED (MALFORMED, UNTRUSTED_ROOT, CERT_EXPIRED, BAD_SIGNATURE),
 *   ACCESS_DENIED (PCR_MISMATCH, NONCE_MISMATCH, STALE).
 */
export async function verifyDocument(
  ctx: CommandContext,
  document: Uint8Array,
  roots: readonly TrustedRoot[],
  checks: { readonly expectedPcrs?: Readonly<Record<number, string>>; readonly nonce?: Uint8Array; readonly maxAge?: number; readonly now: number },
): Promise<AttestationDocument> {
  const { AttestationError, verifyAttestationDocument } = await import('@keyfold/attestation');
  try {
    return verifyAttestationDocument(document, {
      roots: roots.map((r) => r.cert),
      ...(checks.expectedPcrs === undefined ? {} : { expectedPcrs: checks.expectedPcrs }),
      ...(checks.nonce === undefined ? {} : { nonce: checks.nonce }),
      ...(checks.maxAge === undefined ? {} : { maxAge: checks.maxAge }),
      now: () => checks.now,
    });
  } catch (err) {
    if (err instanceof AttestationError && err.reason === 'UNTRUSTED_ROOT') {
      const trusted = ctx.args.list('root').length === 0 ? 'the pinned AWS Nitro root (pass --root FILE for a test or emulator CA)' : 'the --root certificates given';
      const detail = err.message.replace(/^attestation document refused \([A-Z_]+\): /, '').replace(/; pass roots for a test CA$/, '');
      throw new AttestationError('UNTRUSTED_ROOT', `${detail}; trusted: ${trusted}`, { cause: err });
    }
    throw err;
  }
}

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
