/**
 * With `attestationRoots`, the AWS KMS emulator verifies Recipient attestation documents (COSE_Sign1 ES384 signature,
 * certificate chain to a configured root, validity) and refuses bad ones with ValidationException (400).
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAwsKmsEmulator } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-attest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
const der = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

/** A P-384 root and a leaf it signed. */
function chain(name: string): { rootPem: string; root: Buffer; leaf: Buffer; leafKey: KeyObject } {
  writeFileSync(join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\n');
  for (const k of ['root', 'leaf']) openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', `${name}-${k}.key`);
  openssl('req', '-x509', '-new', '-key', `${name}-root.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}-root.pem`, '-addext', 'basicConstraints=critical,CA:TRUE');
  openssl('req', '-new', '-key', `${name}-leaf.key`, '-subj', `/CN=${name} leaf`, '-out', `${name}-leaf.csr`);
  openssl('x509', '-req', '-in', `${name}-leaf.csr`, '-CA', `${name}-root.pem`, '-CAkey', `${name}-root.key`, '-set_serial', '7', '-days', '1', '-extfile', 'leaf.ext', '-out', `${name}-leaf.pem`);
  const rootPem = readFileSync(join(dir, `${name}-root.pem`), 'utf8');
  return { rootPem, root: der(rootPem), leaf: der(readFileSync(join(dir, `${name}-leaf.pem`), 'utf8')), leafKey: createPrivateKey(readFileSync(join(dir, `${name}-leaf.key`))) };
}

const head = (major: number, n: number): Buffer =>
  n < 24 ? Buffer.from([(major << 5) | n]) : n < 256 ? Buffer.from([(major << 5) | 24, n]) : Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
const bstr = (b: Uint8Array): Buffer => Buffer.concat([head(2, b.length), b]);
const tstr = (s: string): Buffer => Buffer.concat([head(3, Buffer.byteLength(s)), Buffer.from(s)]);

function document(c: ReturnType<typeof chain>, spki: Buffer, signer = c.leafKey): Buffer {
  const entries: Buffer[] = [
    tstr('module_id'), tstr('i-0-enc0'), tstr('digest'), tstr('SHA384'), tstr('timestamp'), Buffer.concat([Buffer.from([0x1b]), Buffer.from(BigInt(Date.now()).toString(16).padStart(16, '0'), 'hex')]),
    tstr('certificate'), bstr(c.leaf), tstr('cabundle'), Buffer.concat([head(4, 1), bstr(c.root)]), tstr('public_key'), bstr(spki), tstr('nonce'), Buffer.from([0xf6]),
  ];
  const payload = Buffer.concat([head(5, 7), ...entries]);
  const prot = Buffer.from([0xa1, 0x01, 0x38, 0x22]);
  const sig = sign('sha384', Buffer.concat([Buffer.from([0x84]), tstr('Signature1'), bstr(prot), Buffer.from([0x40]), bstr(payload)]), { key: signer, dsaEncoding: 'ieee-p1363' });
  return Buffer.concat([Buffer.from([0x84]), bstr(prot), Buffer.from([0xa0]), bstr(payload), bstr(sig)]);
}

const trusted = chain('trusted');
const rogue = chain('rogue');
const emu = await startAwsKmsEmulator({ port: 0, attestationRoots: [trusted.rootPem] });
afterAll(() => emu.close());
const AUTH = `AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/${emu.region}/kms/aws4_request, SignedHeaders=host, Signature=00`;

async function generateDataKey(doc: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  const { Arn } = await emu.createKey();
  const res = await fetch(emu.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.GenerateDataKey', authorization: AUTH },
    body: JSON.stringify({ KeyId: Arn, KeySpec: 'AES_256', Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: doc.toString('base64') } }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('aws-kms emulator: attestation document verification', () => {
  const spki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' });

  it('a document signed under a configured root is accepted', async () => {
    const ok = await generateDataKey(document(trusted, spki));
    expect(ok.status).toBe(200);
    expect(typeof ok.json.CiphertextForRecipient).toBe('string');
    expect(ok.json.Plaintext).toBeUndefined();
  });

  it('untrusted chain, bad signature and unsigned documents are ValidationException', async () => {
    const flipped = document(trusted, spki);
    flipped[flipped.length - 1]! ^= 1;
    for (const doc of [document(rogue, spki), document(trusted, spki, rogue.leafKey), flipped]) {
      expect(await generateDataKey(doc)).toMatchObject({ status: 400, json: { __type: 'ValidationException', message: expect.stringMatching(/attestation document is not valid/) as unknown } });
    }
  });

  it('attestationRoots must be certificates', async () => {
    await expect(startAwsKmsEmulator({ attestationRoots: ['not a pem'] })).rejects.toBeInstanceOf(TypeError);
  });
});
