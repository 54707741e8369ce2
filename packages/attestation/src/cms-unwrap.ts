/**
 * Opens `CiphertextForRecipient`: a CMS ContentInfo(EnvelopedData) with a KeyTransRecipientInfo (RSAES-OAEP,
 * SHA-256, MGF1-SHA-256) and AES-256-CBC content, DER or BER with indefinite lengths, as AWS KMS sends it for a
 * Nitro Enclave. pkijs/asn1js parse the structure; node:crypto does the RSA and AES work.
 *
 * Security rule: only the one algorithm suite KMS uses is accepted (no downgrade to PKCS#1 v1.5 or another cipher),
 * and every failure after parsing (wrong key, bad OAEP, bad padding, wrong algorithm) is the one generic
 * UNWRAP_FAILED with a fixed message, so the error does not act as a padding oracle.
 * @module
 */
import { KeyObject, X509Certificate, constants, createDecipheriv, createHash, createPublicKey, privateDecrypt, type webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AlgorithmIdentifier, Certificate, ContentInfo, EnvelopedData, IssuerAndSerialNumber, PublicKeyInfo, RSAESOAEPParams, type KeyTransRecipientInfo } from 'pkijs';
import { FormatError, UnwrapFailedError } from '@keyfold/envelope-core';

const OID = {
  envelopedData: '1.2.840.113549.1.7.3',
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  sha256: '2.16.840.1.101.3.4.2.1',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
};

/** Largest CMS accepted (KMS sends a few hundred bytes; a data key is 32). */
const MAX_CMS = 64 * 1024;

/** Options of {@link unwrapCiphertextForRecipient}. */
export interface UnwrapOptions {
  /** The recipient certificate, to match a recipient named by issuer and serial number. */
  readonly certificate?: X509Certificate | Uint8Array;
}

function formatError(why: string, cause?: unknown): FormatError {
  return new FormatError(`CiphertextForRecipient is not a CMS EnvelopedData: ${why}`, cause === undefined ? {} : { cause });
}

function sha256Alg(a: AlgorithmIdentifier | undefined): boolean {
  return a !== undefined && a.algorithmId === OID.sha256;
}

/** RSAES-OAEP with SHA-256 and MGF1-SHA-256, else false. */
function isOaepSha256(alg: AlgorithmIdentifier): boolean {
  if (alg.algorithmId !== OID.rsaesOaep || !alg.algorithmParams) return false;
  const params = new RSAESOAEPParams({ schema: alg.algorithmParams });
  if (!sha256Alg(params.hashAlgorithm)) return false;
  const mgf = params.maskGenAlgorithm;
  if (mgf.algorithmId !== OID.mgf1 || !mgf.algorithmParams) return false;
  if (!sha256Alg(new AlgorithmIdentifier({ schema: mgf.algorithmParams }))) return false;
  // A non-empty OAEP label (pSourceAlgorithm) is not something KMS sends; decryption with the empty label then fails.
  return true;
}

/** Subject key identifiers our key may be named by: RFC 5280 method 1 (SHA-1 of the key bits) and SHA-1 of the SPKI. */
function keyIdentifiers(privateKey: KeyObject): Buffer[] {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const info = new PublicKeyInfo({ schema: asn1js.fromBER(spki).result });
  const bits = Buffer.from(info.subjectPublicKey.valueBlock.valueHexView);
  return [createHash('sha1').update(bits).digest(), createHash('sha1').update(spki).digest()];
}

function matches(ktri: KeyTransRecipientInfo, ids: readonly Buffer[], cert: Certificate | undefined): boolean {
  try {
    const rid = ktri.rid;
    if (rid instanceof IssuerAndSerialNumber) {
      return cert !== undefined && rid.issuer.isEqual(cert.issuer) && rid.serialNumber.isEqual(cert.serialNumber);
    }
    const ski = Buffer.from(rid.valueBlock.valueHexView);
    return ids.some((id) => id.equals(ski));
  } catch {
    return false; // an odd identifier is not a match; the recipient may still be tried
  }
}

function toKeyObject(key: KeyObject | webcrypto.CryptoKey): KeyObject {
  const k = key instanceof KeyObject ? key : KeyObject.from(key);
  if (k.type !== 'private' || k.asymmetricKeyType !== 'rsa') throw new TypeError('privateKey must be an RSA private key');
  return k;
}

/**
 * Parses `cms` into the KeyTransRecipientInfos and the encrypted content.
 * @throws FormatError (FORMAT_INVALID) when it is not a ContentInfo(EnvelopedData) with key-transport recipients.
 */
function parseEnvelope(cms: Uint8Array): { recipients: KeyTransRecipientInfo[]; algorithm: AlgorithmIdentifier; content: Uint8Array } {
  if (!(cms instanceof Uint8Array)) throw new TypeError('cms must be a Uint8Array');
  if (cms.length === 0 || cms.length > MAX_CMS) throw formatError(`length ${cms.length} is outside 1..${MAX_CMS}`);
  const ber = asn1js.fromBER(cms);
  if (ber.offset === -1 || ber.offset !== cms.length) throw formatError(ber.offset === -1 ? ber.result.error || 'bad BER' : 'trailing bytes');
  let env: EnvelopedData;
  try {
    const info = new ContentInfo({ schema: ber.result });
    if (info.contentType !== OID.envelopedData) throw new Error(`content type ${info.contentType}`);
    env = new EnvelopedData({ schema: info.content });
  } catch (cause) {
    throw formatError('not a ContentInfo(EnvelopedData)', cause);
  }
  const recipients = env.recipientInfos.filter((r) => r.variant === 1).map((r) => r.value as KeyTransRecipientInfo);
  if (recipients.length === 0) throw formatError('no KeyTransRecipientInfo');
  const eci = env.encryptedContentInfo;
  if (!eci.encryptedContent) throw formatError('no encrypted content (detached content is not supported)');
  let content: Uint8Array;
  try {
    content = new Uint8Array(eci.getEncryptedContent());
  } catch (cause) {
    throw formatError('unreadable encrypted content', cause);
  }
  return { recipients, algorithm: eci.contentEncryptionAlgorithm, content };
}

/**
 * Opens a CMS EnvelopedData addressed to `privateKey` and returns the content (for KMS: the plaintext data key).
 * The recipient is found by subjectKeyIdentifier (SHA-1 of the key bits, or of the SPKI) or, with
 * `options.certificate`, by issuer and serial number; with no match every key-transport recipient is tried.
 *
 * Security rule: only RSAES-OAEP-SHA-256/MGF1-SHA-256 and AES-256-CBC are accepted; every failure past parsing is
 * the same UNWRAP_FAILED with a fixed message (no padding oracle). The content-encryption key is wiped after use.
 * @param cms DER or BER (indefinite length) ContentInfo.
 * @param privateKey the enclave's RSA private key (node `KeyObject` or WebCrypto `CryptoKey`, extractable).
 * @returns a fresh buffer the caller owns; wipe it after use.
 * @throws FormatError (FORMAT_INVALID) for bytes that are not a ContentInfo(EnvelopedData) with a key-transport
 *   recipient; UnwrapFailedError (UNWRAP_FAILED) for every decryption failure; TypeError for a bad argument type.
 * @example
 * ```ts
 * const dataKey = await unwrapCiphertextForRecipient(answer.CiphertextForRecipient, enclaveKey.privateKey);
 * ```
 */
export function unwrapCiphertextForRecipient(cms: Uint8Array, privateKey: KeyObject | webcrypto.CryptoKey, options: UnwrapOptions = {}): Promise<Uint8Array> {
  try {
    return Promise.resolve(unwrapSync(cms, toKeyObject(privateKey), options));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function certificateOf(c: X509Certificate | Uint8Array | undefined): Certificate | undefined {
  if (c === undefined) return undefined;
  try {
    return Certificate.fromBER(c instanceof X509Certificate ? c.raw : c);
  } catch (cause) {
    throw new TypeError('options.certificate must be an X509Certificate or DER certificate bytes', { cause });
  }
}

/** @internal Synchronous core of {@link unwrapCiphertextForRecipient}. */
export function unwrapSync(cms: Uint8Array, key: KeyObject, options: UnwrapOptions = {}): Uint8Array {
  const { recipients, algorithm, content } = parseEnvelope(cms);
  const ids = keyIdentifiers(key);
  const cert = certificateOf(options.certificate);
  const matched = recipients.filter((r) => matches(r, ids, cert));
  const candidates = matched.length > 0 ? matched : recipients;
  let iv: Buffer | undefined;
  try {
    if (algorithm.algorithmId === OID.aes256Cbc && algorithm.algorithmParams instanceof asn1js.OctetString) {
      iv = Buffer.from(algorithm.algorithmParams.valueBlock.valueHexView);
    }
  } catch {
    iv = undefined;
  }
  if (!iv || iv.length !== 16 || content.length === 0 || content.length % 16 !== 0) throw new UnwrapFailedError();
  for (const ktri of candidates) {
    let cek: Buffer | undefined;
    try {
      if (!isOaepSha256(ktri.keyEncryptionAlgorithm)) continue;
      cek = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ktri.encryptedKey.valueBlock.valueHexView);
      if (cek.length !== 32) continue;
      const decipher = createDecipheriv('aes-256-cbc', cek, iv);
      const out = Buffer.concat([decipher.update(content), decipher.final()]);
      const copy = new Uint8Array(out);
      out.fill(0);
      return copy;
    } catch {
      // fall through to the next candidate; the caller only ever sees UNWRAP_FAILED
    } finally {
      cek?.fill(0);
    }
  }
  throw new UnwrapFailedError();
}
