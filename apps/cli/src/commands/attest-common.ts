/**
 * Shared by `keyfold attest verify` and `keyfold attest fetch`: hex option values, the SHA-256 fingerprint that
 * names a public key in the output (never the key bytes), the trusted roots (`--root` files or the pinned AWS Nitro
 * root) and document verification with them. No static import of a `@keyfold` package: `@keyfold/attestation` is
 * loaded when a command needs it, and its absence is what the command reports.
 * @module
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AttestationDocument } from '@keyfold/attestation';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { ioError } from '../input.js';

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
