/**
 * A test enclave: an RSA key pair, an attestation document naming its public key (COSE_Sign1 with a CBOR payload,
 * shaped like a Nitro document; unsigned, which the emulator does not check), and a CMS EnvelopedData reader for
 * `CiphertextForRecipient`. Written here from the RFCs so the test does not trust the emulator's own encoder.
 */
import { constants, createDecipheriv, generateKeyPairSync, privateDecrypt } from 'node:crypto';

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}
const bstr = (b: Uint8Array): Buffer => Buffer.concat([head(2, b.length), b]);
const tstr = (s: string): Buffer => Buffer.concat([head(3, Buffer.byteLength(s)), Buffer.from(s)]);
const map = (entries: [Buffer, Buffer][]): Buffer => Buffer.concat([head(5, entries.length), ...entries.flat()]);
const uint = (n: number): Buffer => head(0, n);

interface Der {
  tag: number;
  content: Buffer;
}

function der(buf: Buffer): Der[] {
  const out: Der[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const tag = buf[pos++]!;
    let len = buf[pos++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[pos++]!;
    }
    out.push({ tag, content: buf.subarray(pos, pos + len) });
    pos += len;
  }
  return out;
}

export interface TestEnclave {
  readonly attestationDocument: () => Uint8Array;
  readonly decrypt: (cms: Uint8Array) => Uint8Array;
  readonly documents: number;
  readonly opened: number;
}

export function testEnclave(): TestEnclave {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  let documents = 0;
  let opened = 0;
  return {
    attestationDocument() {
      documents++;
      const payload = map([
        [tstr('module_id'), tstr('i-0123456789abcdef0-enc0123456789abcdef')],
        [tstr('digest'), tstr('SHA384')],
        [tstr('timestamp'), uint(Math.floor(Date.now() / 1000))],
        [tstr('public_key'), bstr(spki)],
      ]);
      const protectedHeader = map([[uint(1), Buffer.from([0x38, 0x22])]]); // {1: -35} (ES384)
      return Buffer.concat([head(4, 4), bstr(protectedHeader), map([]), bstr(payload), bstr(Buffer.alloc(96))]);
    },
    decrypt(cms) {
      opened++;
      const [contentInfo] = der(Buffer.from(cms));
      const [oid, wrapped] = der(contentInfo!.content);
      if (oid!.content.toString('hex') !== '2a864886f70d010703') throw new Error('not EnvelopedData');
      const [envelopedData] = der(wrapped!.content);
      const [version, recipientInfos, encryptedContentInfo] = der(envelopedData!.content);
      if (version!.content[0] !== 2) throw new Error('EnvelopedData version is not 2');
      const [ktri] = der(recipientInfos!.content);
      const ktriParts = der(ktri!.content);
      const encryptedKey = ktriParts[3]!.content;
      const [, algorithm, content] = der(encryptedContentInfo!.content);
      const [, iv] = der(algorithm!.content);
      const cek = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, encryptedKey);
      const decipher = createDecipheriv('aes-256-cbc', cek, iv!.content);
      const plaintext = Buffer.concat([decipher.update(content!.content), decipher.final()]);
      cek.fill(0);
      return new Uint8Array(plaintext);
    },
    get documents() {
      return documents;
    },
    get opened() {
      return opened;
    },
  };
}
