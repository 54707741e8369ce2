/**
 * Hostile input to both public parsers: random bytes and random CBOR/ASN.1-shaped bytes only ever produce the typed
 * errors (AttestationError MALFORMED for documents; FORMAT_INVALID / UNWRAP_FAILED for CMS), never another exception.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError, unwrapCiphertextForRecipient, verifyAttestationDocument } from '../src/index.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('hostile input', () => {
  it('verifyAttestationDocument: random bytes are MALFORMED (or UNTRUSTED_ROOT for a well-formed shell)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([0x84, ...b]))), (bytes) => {
        try {
          verifyAttestationDocument(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(AttestationError);
          return;
        }
        throw new Error('accepted random bytes');
      }),
      { numRuns: 300 },
    );
  });

  it('unwrapCiphertextForRecipient: random bytes are FORMAT_INVALID or UNWRAP_FAILED', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, ...b]))), async (bytes) => {
        await expect(unwrapCiphertextForRecipient(bytes, privateKey)).rejects.toMatchObject({ code: expect.stringMatching(/^(FORMAT_INVALID|UNWRAP_FAILED)$/) as unknown });
      }),
      { numRuns: 300 },
    );
  });
});
