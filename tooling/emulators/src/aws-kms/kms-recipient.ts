/**
 * Recipient support of the AWS KMS emulator (Nitro Enclaves): reads the enclave's RSA public key from the
 * attestation document (an untagged or tagged COSE_Sign1 whose CBOR payload has `public_key`), and returns the
 * plaintext as `CiphertextForRecipient`: a CMS ContentInfo(EnvelopedData v2) with one KeyTransRecipientInfo v2
 * (subjectKeyIdentifier), RSAES-OAEP with SHA-256 and MGF1-SHA-256, content AES-256-CBC with PKCS#7 padding — the
 * shape real KMS sends, DER-encoded here (KMS uses BER indefinite lengths; a BER reader reads both).
 *
 * With `attestationRoots` (option of `startAwsKmsEmulator`) the emulator also verifies the document as KMS does: the
 * COSE_Sign1 ES384 signature over `Sig_structure` with the leaf certificate, and the chain leaf <- cabundle (root
 * first, ignored) <- one of the roots, every certificate valid now. A bad document is a `ValidationException` (the
 * error the emulator already used for malformed documents; real KMS's exact error for a badly signed document is not
 * documented, and a 400 client error is what a caller must treat as "this document was refused"). Without
 * `attestationRoots` the document is not verified (unsigned test documents keep working). This is a minimal check
 * written here on purpose: the emulators package must not depend on `@keyfold/attestation` (whose tests use the
 * emulator), which would make a workspace build cycle.
 * @module
 */
import { X509Certificate, constants, createCipheriv, createHash, createPublicKey, publicEncrypt, randomBytes, verify, type KeyObject } from 'node:crypto';
import { KmsError } from './kms-errors.js';

type Cbor = number | bigint | string | boolean | null | undefined | Uint8Array | Cbor[] | Map<Cbor, Cbor>;

const invalidDocument = (why: string): KmsError => new KmsError('ValidationException', `The attestation document is not valid: ${why}`);

/** A small CBOR reader: definite lengths, the types an attestation document uses. */
function readCbor(buf: Uint8Array): Cbor {
  let pos = 0;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (n: number): void => {
    if (pos + n > buf.length) throw invalidDocument('truncated CBOR');
  };
  const length = (info: number): number => {
    if (info < 24) return info;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0) throw invalidDocument('indefinite or reserved CBOR length');
    need(size);
    let v = 0;
    for (let i = 0; i < size; i++) v = v * 256 + (buf[pos + i] as number);
    pos += size;
    if (!Number.isSafeInteger(v)) throw invalidDocument('CBOR length too large');
    return v;
  };
  const item = (depth: number): Cbor => {
    if (depth > 16) throw invalidDocument('CBOR nested too deeply');
    need(1);
    const head = buf[pos++] as number;
    const major = head >> 5;
    const info = head & 31;
    switch (major) {
      case 0:
        return length(info);
      case 1:
        return -1 - length(info);
      case 2: {
        const n = length(info);
        need(n);
        const out = buf.slice(pos, pos + n);
        pos += n;
        return out;
      }
      case 3: {
        const n = length(info);
        need(n);
        const s = Buffer.from(buf.subarray(pos, pos + n)).toString('utf8');
        pos += n;
        return s;
      }
      case 4: {
        const n = length(info);
        const arr: Cbor[] = [];
        for (let i = 0; i < n; i++) arr.push(item(depth + 1));
        return arr;
      }
      case 5: {
        const n = length(info);
        const map = new Map<Cbor, Cbor>();
        for (let i = 0; i < n; i++) map.set(item(depth + 1), item(depth + 1));
        return map;
      }
      case 6:
        length(info);
        return item(depth + 1);
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        if (info === 25 || info === 26 || info === 27) {
          const size = info === 25 ? 2 : info === 26 ? 4 : 8;
          need(size);
          const v = size === 2 ? view.getUint16(pos) : size === 4 ? view.getFloat32(pos) : view.getFloat64(pos);
          pos += size;
          return v;
        }
        throw invalidDocument('unsupported CBOR simple value');
    }
  };
  const value = item(0);
  if (pos !== buf.length) throw invalidDocument('trailing bytes after the COSE_Sign1');
  return value;
}

function cborHead(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}
const cborBytes = (b: Uint8Array): Buffer => Buffer.concat([cborHead(2, b.length), b]);

/** Certificates valid now, each signed by the next; the last signed by one of `roots`. */
function verifyChain(chain: X509Certificate[], roots: readonly X509Certificate[]): void {
  const now = Date.now();
  const valid = (c: X509Certificate): boolean => now >= Date.parse(c.validFrom) && now <= Date.parse(c.validTo);
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    if (!valid(cert)) throw invalidDocument('a certificate of the chain is expired or not yet valid');
    const issuer = chain[i + 1];
    if (issuer && !(issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey))) throw invalidDocument('the certificate chain is broken');
  }
  const top = chain[chain.length - 1] as X509Certificate;
  const root = roots.find((r) => r.ca && top.checkIssued(r) && top.verify(r.publicKey));
  if (!root || !valid(root)) throw invalidDocument('the certificate chain does not lead to a trusted root');
}

/** COSE_Sign1 ES384 signature and certificate chain of a Nitro document. @throws KmsError ValidationException */
function verifyDocument(cose: Cbor[], payload: Map<Cbor, Cbor>, roots: readonly X509Certificate[]): void {
  const [protectedHeader, , body, signature] = cose;
  if (!(protectedHeader instanceof Uint8Array) || !(body instanceof Uint8Array) || !(signature instanceof Uint8Array)) throw invalidDocument('not a COSE_Sign1');
  const header = readCbor(protectedHeader);
  if (!(header instanceof Map) || header.get(1) !== -35) throw invalidDocument('the algorithm must be ES384');
  const leafDer = payload.get('certificate');
  const bundle = payload.get('cabundle');
  if (!(leafDer instanceof Uint8Array) || !Array.isArray(bundle) || bundle.length === 0 || !bundle.every((b) => b instanceof Uint8Array)) {
    throw invalidDocument('no certificate or cabundle');
  }
  let chain: X509Certificate[];
  try {
    chain = [leafDer, ...(bundle as Uint8Array[]).slice(1).reverse()].map((der) => new X509Certificate(Buffer.from(der)));
  } catch {
    throw invalidDocument('a certificate is not DER X.509');
  }
  verifyChain(chain, roots);
  const toBeSigned = Buffer.concat([Buffer.from([0x84]), cborHead(3, 10), Buffer.from('Signature1'), cborBytes(protectedHeader), Buffer.from([0x40]), cborBytes(body)]);
  let ok = false;
  try {
    ok = signature.length === 96 && verify('sha384', toBeSigned, { key: (chain[0] as X509Certificate).publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw invalidDocument('the signature does not verify');
}

/** What a Recipient's attestation document told the emulator: the enclave key and the PCRs (index -> bytes). */
export interface RecipientAttestation {
  readonly key: KeyObject;
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
}

/** The `pcrs` map of a document payload (absent or malformed entries are left out: a condition on them then fails). */
function pcrsOf(payload: Map<Cbor, Cbor>): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const pcrs = payload.get('pcrs');
  if (!(pcrs instanceof Map)) return out;
  for (const [index, value] of pcrs) {
    if (typeof index === 'number' && Number.isInteger(index) && value instanceof Uint8Array) out.set(index, value);
  }
  return out;
}

/**
 * The RSA public key (RSA 2048 or more) an attestation document names in `public_key`, with its PCRs; with `roots`,
 * the document's signature and certificate chain are verified first.
 * @throws KmsError ValidationException for anything else.
 */
export function recipientAttestation(document: Uint8Array, roots?: readonly X509Certificate[]): RecipientAttestation {
  const cose = readCbor(document);
  if (!Array.isArray(cose) || cose.length !== 4 || !(cose[2] instanceof Uint8Array)) throw invalidDocument('not a COSE_Sign1');
  const payload = readCbor(cose[2]);
  if (!(payload instanceof Map)) throw invalidDocument('the payload is not a map');
  if (roots) verifyDocument(cose, payload, roots);
  const der = payload.get('public_key');
  if (!(der instanceof Uint8Array) || der.length === 0) throw invalidDocument('no public_key');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch {
    throw invalidDocument('public_key is not a DER SubjectPublicKeyInfo');
  }
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw invalidDocument('public_key must be an RSA key of at least 2048 bits');
  }
  return { key, pcrs: pcrsOf(payload) };
}

/**
 * Key policy conditions on the Recipient's attestation document, as `kms:RecipientAttestation:<name>` condition keys
 * of a real key policy: `ImageSha384` (PCR0 of a Nitro document) or `PCR0` .. `PCR31`, each to a hex value.
 */
export type RecipientConditions = Readonly<Record<string, string>>;

const CONDITION = /^(ImageSha384|PCR([0-9]|[12][0-9]|3[01]))$/;

/** Validates conditions given to the emulator. @throws TypeError naming the bad condition. */
export function assertRecipientConditions(conditions: RecipientConditions): void {
  if (conditions === null || typeof conditions !== 'object') throw new TypeError('conditions must be an object of condition name -> hex value');
  const names = Object.keys(conditions);
  if (names.length === 0) throw new TypeError('conditions must name at least one of ImageSha384, PCR0 .. PCR31');
  for (const name of names) {
    if (!CONDITION.test(name)) throw new TypeError(`unknown kms:RecipientAttestation condition ${JSON.stringify(name)}: use ImageSha384 or PCR0 .. PCR31`);
    const value = conditions[name];
    if (typeof value !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(value)) throw new TypeError(`condition ${name} must be a hex string`);
  }
}

/**
 * The key policy check of a Decrypt / GenerateDataKey on a key with Recipient conditions: every condition must hold
 * for the document (no Recipient: no condition holds). Real KMS answers a policy that does not allow the call with
 * AccessDeniedException; so does the emulator, naming the key and the action (not the expected values).
 * @throws KmsError AccessDeniedException
 */
export function checkRecipientConditions(conditions: RecipientConditions, attestation: RecipientAttestation | undefined, action: string, arn: string): void {
  const holds = (name: string, hex: string): boolean => {
    const pcr = attestation?.pcrs.get(name === 'ImageSha384' ? 0 : Number(name.slice(3)));
    return pcr !== undefined && Buffer.from(pcr).toString('hex') === hex.toLowerCase();
  };
  if (attestation && Object.entries(conditions).every(([name, hex]) => holds(name, hex))) return;
  throw new KmsError(
    'AccessDeniedException',
    `User is not authorized to perform: kms:${action} on resource: ${arn} because no resource-based policy allows the kms:${action} action` +
      (attestation ? ' with this recipient attestation document' : ' without a recipient attestation document'),
  );
}

// ---------------------------------------------------------------------------------------------------- DER writer

function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}
const seq = (...parts: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(parts));
const octets = (b: Uint8Array): Buffer => tlv(0x04, b);
const int = (v: number): Buffer => tlv(0x02, Buffer.from([v]));
const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 + n, inner);

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [(parts[0] as number) * 40 + (parts[1] as number)];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = p >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const OID = {
  envelopedData: '1.2.840.113549.1.7.3',
  data: '1.2.840.113549.1.7.1',
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  sha256: '2.16.840.1.101.3.4.2.1',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
};

/** `CiphertextForRecipient` for `plaintext`: CMS EnvelopedData to the recipient's RSA key. */
export function envelopeForRecipient(key: KeyObject, plaintext: Uint8Array): Buffer {
  const cek = randomBytes(32);
  const iv = randomBytes(16);
  try {
    const cipher = createCipheriv('aes-256-cbc', cek, iv);
    const content = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const encryptedKey = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
    const spki = key.export({ format: 'der', type: 'spki' });
    const ski = createHash('sha1').update(spki).digest();
    const sha256 = seq(oid(OID.sha256));
    const oaepParams = seq(explicit(0, sha256), explicit(1, seq(oid(OID.mgf1), sha256)));
    const ktri = seq(int(2), tlv(0x80, ski), seq(oid(OID.rsaesOaep), oaepParams), octets(encryptedKey));
    const eci = seq(oid(OID.data), seq(oid(OID.aes256Cbc), octets(iv)), tlv(0x80, content));
    return seq(oid(OID.envelopedData), explicit(0, seq(int(2), set(ktri), eci)));
  } finally {
    cek.fill(0);
  }
}
