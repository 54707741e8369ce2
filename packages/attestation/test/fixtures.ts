/**
 * Test fixtures made with openssl: a P-384 root -> intermediate -> leaf chain (and an unrelated root), Nitro-shaped
 * attestation documents signed with the leaf key (by the emulators' signNitroDocument, which the NSM emulator also
 * uses), and self-signed certificates for RSA keys (for `openssl cms`).
 */
import { execFileSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { EMULATED_PCRS, createTestNitroCa, signNitroDocument, type NitroDocumentFields, type NitroSigner, type TestNitroCa } from '@keyfold/emulators';

export const workDir = mkdtempSync(join(tmpdir(), 'keyfold-attestation-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

export function openssl(...args: string[]): Buffer {
  return execFileSync('openssl', args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
}

export type TestCa = TestNitroCa;

/** A fresh P-384 chain under `name` (root 365 days -> intermediate 30 -> leaf 1). */
export function makeTestCa(name: string): TestCa {
  return createTestNitroCa(workDir, name);
}

export type DocumentFields = NitroDocumentFields;

export const PCR0 = Buffer.from(EMULATED_PCRS.get(0)!);

/** The emulators' signer for `ca`: its leaf key and certificate, bundle `[root, intermediate]`. */
export function signerOf(ca: TestCa): NitroSigner {
  return ca.signer;
}

/** A COSE_Sign1 Nitro-shaped document signed by `ca`'s leaf (or `signWith`), PCR0..2 as the NSM emulator sends. */
export function makeDocument(ca: TestCa, fields: DocumentFields = {}, signWith: KeyObject = ca.leafKey): Uint8Array {
  return signNitroDocument(signerOf(ca), fields, signWith);
}
