/**
 * verifyAttestationDocument: a valid openssl-made P-384 chain passes; each broken property fails with its own reason.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Decoder, Encoder } from 'cbor-x';
import { AWS_NITRO_ROOT_PEM, AttestationError, verifyAttestationDocument } from '../src/index.js';
import { PCR0, makeDocument, makeTestCa } from './fixtures.js';

const ca = makeTestCa('verify');
const other = makeTestCa('other');
const roots = [ca.rootPem];

function reasonOf(fn: () => unknown): { reason: string; code: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AttestationError);
    const err = e as AttestationError;
    return { reason: err.reason, code: err.code };
  }
  throw new Error('expected an AttestationError');
}

describe('verifyAttestationDocument', () => {
  it('pins the AWS Nitro root by its published SHA-256 fingerprint', () => {
    const root = new X509Certificate(AWS_NITRO_ROOT_PEM);
    expect(root.fingerprint256).toBe('64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B');
    expect(root.subject).toContain('CN=aws.nitro-enclaves');
  });

  it('accepts a valid chain and returns the payload; optional fields given as null parse as absent', () => {
    const nonce = new Uint8Array([1, 2, 3]);
    const spki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' });
    const doc = verifyAttestationDocument(makeDocument(ca, { nonce, publicKey: spki }), { roots, nonce, expectedPcrs: { 0: PCR0.toString('hex') }, maxAge: 60_000 });
    expect(doc.moduleId).toMatch(/^i-/);
    expect(Buffer.from(doc.publicKey ?? []).equals(spki)).toBe(true);
    expect(doc.pcrs.get(0)).toEqual(new Uint8Array(PCR0));
    const bare = verifyAttestationDocument(makeDocument(ca), { roots });
    expect(bare.publicKey).toBeUndefined();
    expect(bare.userData).toBeUndefined();
    expect(bare.nonce).toBeUndefined();
  });

  it('accepts a tag-18 COSE_Sign1', () => {
    const decoded = new Decoder({ mapsAsObjects: false }).decode(makeDocument(ca)) as unknown[];
    const tagged = Buffer.concat([Buffer.from([0xd2]), new Encoder({ tagUint8Array: false, useRecords: false }).encode(decoded)]);
    expect(verifyAttestationDocument(tagged, { roots }).digest).toBe('SHA384');
  });

  it('wrong root: UNTRUSTED_ROOT (the default Nitro root does not trust a test chain either)', () => {
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca), { roots: [other.rootPem] }))).toEqual({ reason: 'UNTRUSTED_ROOT', code: 'INTEGRITY_FAILED' });
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca))).reason).toBe('UNTRUSTED_ROOT');
  });

  it('expired leaf: CERT_EXPIRED', () => {
    const later = ca.leafExpiresAt + 3_600_000;
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca), { roots, now: () => later }))).toEqual({ reason: 'CERT_EXPIRED', code: 'INTEGRITY_FAILED' });
  });

  it('bad signature: BAD_SIGNATURE (signed by another key; flipped signature byte)', () => {
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca, {}, other.leafKey), { roots })).reason).toBe('BAD_SIGNATURE');
    const doc = Buffer.from(makeDocument(ca));
    doc[doc.length - 1]! ^= 1;
    expect(reasonOf(() => verifyAttestationDocument(doc, { roots }))).toEqual({ reason: 'BAD_SIGNATURE', code: 'INTEGRITY_FAILED' });
  });

  it('altered PCR: PCR_MISMATCH', () => {
    const pcrs = new Map([[0, Buffer.alloc(48, 0xee)]]);
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca, { pcrs }), { roots, expectedPcrs: { 0: PCR0 } }))).toEqual({ reason: 'PCR_MISMATCH', code: 'ACCESS_DENIED' });
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca), { roots, expectedPcrs: { 7: PCR0 } })).reason).toBe('PCR_MISMATCH');
  });

  it('stale timestamp: STALE', () => {
    const doc = makeDocument(ca, { timestamp: Date.now() - 10 * 60_000 });
    expect(reasonOf(() => verifyAttestationDocument(doc, { roots, maxAge: 5 * 60_000 }))).toEqual({ reason: 'STALE', code: 'ACCESS_DENIED' });
  });

  it('wrong or missing nonce: NONCE_MISMATCH', () => {
    const nonce = new Uint8Array([9, 9]);
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca, { nonce: new Uint8Array([9, 8]) }), { roots, nonce }))).toEqual({ reason: 'NONCE_MISMATCH', code: 'ACCESS_DENIED' });
    expect(reasonOf(() => verifyAttestationDocument(makeDocument(ca), { roots, nonce })).reason).toBe('NONCE_MISMATCH');
  });

  it('malformed input: MALFORMED, never a crash', () => {
    const doc = makeDocument(ca);
    for (const bad of [new Uint8Array([0x80]), doc.subarray(0, doc.length - 20), new Uint8Array([0xa0]), new Uint8Array([0x84, 0x40, 0xa0, 0x40, 0x40])]) {
      expect(reasonOf(() => verifyAttestationDocument(bad, { roots }))).toEqual({ reason: 'MALFORMED', code: 'INTEGRITY_FAILED' });
    }
  });
});
