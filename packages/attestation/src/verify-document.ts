/**
 * Verification of an AWS Nitro attestation document: an (untagged or tag-18) COSE_Sign1 signed with ES384 by a leaf
 * certificate that chains, through the document's `cabundle`, to a pinned root. The checks, in order: CBOR shape,
 * certificate chain (signatures, issuer names, CA flags, validity at `now`) to a trusted root, the COSE signature over
 * `Sig_structure`, then the policy: PCRs, nonce, age. Nothing in the document is trusted before its signature is.
 * @module
 */
import { X509Certificate, timingSafeEqual, verify } from 'node:crypto';
import { Decoder, Encoder, Tag } from 'cbor-x';
import { AttestationError } from './errors.js';
import { AWS_NITRO_ROOT_PEM } from './nitro-root.js';

/** A verified attestation document's payload. Byte fields are fresh copies. */
export interface AttestationDocument {
  readonly moduleId: string;
  /** Always `SHA384` for Nitro. */
  readonly digest: string;
  /** When the NSM produced the document (milliseconds since the epoch). */
  readonly timestamp: number;
  /** PCR index -> 48-byte value. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** The leaf certificate (DER) that signed the document. */
  readonly certificate: Uint8Array;
  /** The CA bundle (DER), root first, as sent. */
  readonly cabundle: readonly Uint8Array[];
  /** Fields the enclave asked the NSM to include; absent when missing or null. */
  readonly publicKey?: Uint8Array;
  readonly userData?: Uint8Array;
  readonly nonce?: Uint8Array;
}

/** Options of {@link verifyAttestationDocument}. */
export interface VerifyAttestationOptions {
  /** Trusted roots (PEM, DER or X509Certificate). Default: the pinned AWS Nitro root ({@link AWS_NITRO_ROOT_PEM}). */
  readonly roots?: readonly (string | Uint8Array | X509Certificate)[];
  /** PCRs that must match exactly: index -> bytes or hex. PCRs not named are not checked. */
  readonly expectedPcrs?: Readonly<Record<number, Uint8Array | string>>;
  /** Largest accepted age of the document in milliseconds (from its `timestamp`). Default: not checked. */
  readonly maxAge?: number;
  /** The nonce the document must carry (the verifier's challenge). Default: not checked. */
  readonly nonce?: Uint8Array;
  /** The clock, in milliseconds since the epoch, for certificate validity and age. Default `Date.now`. */
  readonly now?: () => number;
}

/** How far in the future a document's timestamp may be (clock skew), in milliseconds. */
const MAX_FUTURE_SKEW = 60_000;
const decoder = new Decoder({ mapsAsObjects: false });
const encoder = new Encoder({ tagUint8Array: false, useRecords: false });

const malformed = (why: string, cause?: unknown): AttestationError =>
  new AttestationError('MALFORMED', why, cause === undefined ? {} : { cause });

function decode(bytes: Uint8Array, what: string): unknown {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw malformed(`${what} is not valid CBOR`, cause);
  }
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function bytesField(map: Map<unknown, unknown>, key: string, optional: true): Uint8Array | undefined;
function bytesField(map: Map<unknown, unknown>, key: string, optional: false): Uint8Array;
function bytesField(map: Map<unknown, unknown>, key: string, optional: boolean): Uint8Array | undefined {
  const v = map.get(key);
  if ((v === undefined || v === null) && optional) return undefined;
  if (!isBytes(v)) throw malformed(`${key} must be a byte string`);
  return new Uint8Array(v);
}

function toCert(c: string | Uint8Array | X509Certificate, what: string): X509Certificate {
  if (c instanceof X509Certificate) return c;
  try {
    return new X509Certificate(typeof c === 'string' ? c : Buffer.from(c));
  } catch (cause) {
    throw malformed(`${what} is not an X.509 certificate`, cause);
  }
}

/** Parses the COSE_Sign1 and its payload without verifying anything. @throws AttestationError MALFORMED */
function parse(bytes: Uint8Array): { protectedHeader: Uint8Array; payload: Uint8Array; signature: Uint8Array; doc: AttestationDocument } {
  if (!isBytes(bytes) || bytes.length === 0) throw malformed('the document must be a non-empty Uint8Array');
  let cose = decode(bytes, 'the document');
  if (cose instanceof Tag) {
    if (cose.tag !== 18) throw malformed(`unexpected CBOR tag ${cose.tag} (COSE_Sign1 is 18)`);
    cose = cose.value;
  }
  if (!Array.isArray(cose) || cose.length !== 4) throw malformed('not a COSE_Sign1 array of four items');
  const [protectedHeader, , payload, signature] = cose as unknown[];
  if (!isBytes(protectedHeader) || !isBytes(payload) || !isBytes(signature)) throw malformed('COSE_Sign1 items must be byte strings');
  const header = decode(protectedHeader, 'the protected header');
  if (!(header instanceof Map) || header.get(1) !== -35) throw malformed('the protected header must name ES384 (alg -35)');
  const decoded = decode(payload, 'the payload');
  if (!(decoded instanceof Map)) throw malformed('the payload is not a CBOR map');
  const map = decoded as Map<unknown, unknown>;
  const moduleId = map.get('module_id');
  const digest = map.get('digest');
  const ts = map.get('timestamp');
  if (typeof moduleId !== 'string' || moduleId.length === 0) throw malformed('module_id must be a non-empty text string');
  if (digest !== 'SHA384') throw malformed('digest must be SHA384');
  const timestamp = typeof ts === 'bigint' ? Number(ts) : ts;
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp <= 0) throw malformed('timestamp must be a positive integer (ms)');
  const rawPcrs = map.get('pcrs');
  if (!(rawPcrs instanceof Map) || rawPcrs.size === 0 || rawPcrs.size > 32) throw malformed('pcrs must be a map of 1 to 32 entries');
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of rawPcrs as Map<unknown, unknown> & Iterable<[unknown, unknown]>) {
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 31) throw malformed('PCR indexes must be integers 0..31');
    if (!isBytes(v) || ![32, 48, 64].includes(v.length)) throw malformed(`PCR${k} must be 32, 48 or 64 bytes`);
    pcrs.set(k, new Uint8Array(v));
  }
  const certificate = bytesField(map, 'certificate', false);
  const rawBundle = map.get('cabundle');
  if (!Array.isArray(rawBundle) || rawBundle.length === 0 || !rawBundle.every(isBytes)) throw malformed('cabundle must be a non-empty array of byte strings');
  const cabundle = rawBundle.map((b) => new Uint8Array(b));
  const publicKey = bytesField(map, 'public_key', true);
  const userData = bytesField(map, 'user_data', true);
  const nonce = bytesField(map, 'nonce', true);
  const doc: AttestationDocument = {
    moduleId,
    digest,
    timestamp,
    pcrs,
    certificate,
    cabundle,
    ...(publicKey ? { publicKey } : {}),
    ...(userData ? { userData } : {}),
    ...(nonce ? { nonce } : {}),
  };
  return { protectedHeader, payload, signature, doc };
}

function checkValidity(cert: X509Certificate, now: number, what: string): void {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (!(now >= from && now <= to)) throw new AttestationError('CERT_EXPIRED', `the ${what} certificate is not valid now (${cert.validFrom} to ${cert.validTo})`);
}

/**
 * Checks leaf <- intermediates (cabundle after its first entry, nearest last) <- a trusted root. The bundle's first
 * entry (the claimed root) is never trusted: the chain must end in a certificate signed by one of `roots`.
 */
function checkChain(leaf: X509Certificate, cabundle: readonly Uint8Array[], roots: readonly X509Certificate[], now: number): void {
  const intermediates = cabundle.slice(1).map((b, i) => toCert(b, `cabundle[${i + 1}]`)).reverse();
  const chain = [leaf, ...intermediates];
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    checkValidity(cert, now, i === 0 ? 'leaf' : `cabundle[${chain.length - i}]`);
    const issuer = chain[i + 1];
    if (issuer === undefined) break;
    if (!issuer.ca || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new AttestationError('UNTRUSTED_ROOT', 'the certificate chain in cabundle is broken (an issuer did not sign its subject)');
    }
  }
  const top = chain[chain.length - 1] as X509Certificate;
  const root = roots.find((r) => r.ca && top.checkIssued(r) && top.verify(r.publicKey));
  if (!root) throw new AttestationError('UNTRUSTED_ROOT', 'the certificate chain does not lead to a trusted root; pass roots for a test CA');
  checkValidity(root, now, 'root');
}

function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Buffer {
  return encoder.encode(['Signature1', protectedHeader, new Uint8Array(0), payload]);
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function pcrBytes(v: Uint8Array | string, index: number): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== 'string' || !/^(?:[0-9a-f]{2})+$/i.test(v)) throw new TypeError(`expectedPcrs[${index}] must be bytes or a hex string`);
  return Buffer.from(v, 'hex');
}

/**
 * Verifies an AWS Nitro attestation document and returns its payload.
 *
 * Security rule: a document proves what it says only once its COSE signature verifies under a leaf whose chain ends
 * at a root you pinned; so the chain and signature are checked before any field is used, and the bundle's own root
 * is ignored. Then the policy: `expectedPcrs` (constant-time compare), `nonce`, `maxAge`.
 * @param bytes the COSE_Sign1 document (tagged or untagged).
 * @throws AttestationError with `reason` MALFORMED, UNTRUSTED_ROOT, CERT_EXPIRED, BAD_SIGNATURE (code
 *   INTEGRITY_FAILED), PCR_MISMATCH, NONCE_MISMATCH or STALE (code ACCESS_DENIED).
 * @throws TypeError / RangeError for malformed options.
 * @example
 * ```ts
 * const doc = verifyAttestationDocument(bytes, { expectedPcrs: { 0: pcr0Hex }, maxAge: 5 * 60_000, nonce });
 * const enclaveKey = doc.publicKey;
 * ```
 */
export function verifyAttestationDocument(bytes: Uint8Array, options: VerifyAttestationOptions = {}): AttestationDocument {
  if (options.maxAge !== undefined && !(Number.isFinite(options.maxAge) && options.maxAge > 0)) throw new RangeError('maxAge must be a positive number of milliseconds');
  if (options.nonce !== undefined && !(options.nonce instanceof Uint8Array)) throw new TypeError('nonce must be a Uint8Array');
  const roots = (options.roots ?? [AWS_NITRO_ROOT_PEM]).map((r, i) => toCert(r, `roots[${i}]`));
  if (roots.length === 0) throw new TypeError('roots must name at least one trusted root');
  const now = (options.now ?? Date.now)();

  const { protectedHeader, payload, signature, doc } = parse(bytes);
  const leaf = toCert(doc.certificate, 'certificate');
  checkChain(leaf, doc.cabundle, roots, now);

  const key = leaf.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new AttestationError('BAD_SIGNATURE', 'the leaf certificate key is not P-384');
  }
  let valid = false;
  try {
    valid = signature.length === 96 && verify('sha384', sigStructure(protectedHeader, payload), { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new AttestationError('BAD_SIGNATURE', 'the COSE_Sign1 signature does not verify under the leaf certificate');

  for (const [k, v] of Object.entries(options.expectedPcrs ?? {})) {
    const index = Number(k);
    const want = pcrBytes(v, index);
    const got = doc.pcrs.get(index);
    if (!got || !eq(got, want)) throw new AttestationError('PCR_MISMATCH', `PCR${index} does not have the expected value`);
  }
  if (options.nonce !== undefined && (!doc.nonce || !eq(doc.nonce, options.nonce))) {
    throw new AttestationError('NONCE_MISMATCH', 'the document does not carry the expected nonce');
  }
  if (options.maxAge !== undefined) {
    const age = now - doc.timestamp;
    if (age > options.maxAge || age < -MAX_FUTURE_SKEW) {
      throw new AttestationError('STALE', `the document is ${Math.round(age / 1000)} s old; at most ${Math.round(options.maxAge / 1000)} s is accepted`);
    }
  }
  return doc;
}
