/**
 * Test fixtures made with openssl: a P-384 root -> intermediate -> leaf chain (and an unrelated root), Nitro-shaped
 * attestation documents signed with the leaf key (by the emulators' signNitroDocument, which the NSM emulator also
 * uses), and self-signed certificates for RSA keys (for `openssl cms`).
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { EMULATED_PCRS, signNitroDocument, type NitroDocumentFields, type NitroSigner } from '@keyfold/emulators';

export const workDir = mkdtempSync(join(tmpdir(), 'keyfold-attestation-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

export function openssl(...args: string[]): Buffer {
  return execFileSync('openssl', args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
}

const DAY = 86_400_000;

export interface TestCa {
  readonly rootPem: string;
  readonly intermediateDer: Buffer;
  readonly rootDer: Buffer;
  readonly leafDer: Buffer;
  readonly leafKey: KeyObject;
  /** The leaf is valid for one day from creation; the intermediate 30, the root 365. */
  readonly leafExpiresAt: number;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

let serial = 0;
/** A fresh P-384 chain under `name`. */
export function makeTestCa(name: string): TestCa {
  const f = (s: string): string => `${name}-${s}`;
  writeFileSync(join(workDir, f('ca.ext')), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  writeFileSync(join(workDir, f('leaf.ext')), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
  for (const k of ['root', 'int', 'leaf']) openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', f(`${k}.key`));
  openssl('req', '-x509', '-new', '-key', f('root.key'), '-subj', `/CN=${name} test root`, '-days', '365', '-sha384', '-out', f('root.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const issue = (key: string, cn: string, caPem: string, caKey: string, days: string, ext: string, out: string): void => {
    openssl('req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', `${out}.csr`);
    openssl('x509', '-req', '-in', `${out}.csr`, '-CA', caPem, '-CAkey', caKey, '-set_serial', String(1000 + ++serial), '-days', days, '-sha384', '-extfile', ext, '-out', out);
  };
  const created = Date.now();
  issue(f('int.key'), `${name} test intermediate`, f('root.pem'), f('root.key'), '30', f('ca.ext'), f('int.pem'));
  issue(f('leaf.key'), `${name} test leaf`, f('int.pem'), f('int.key'), '1', f('leaf.ext'), f('leaf.pem'));
  const read = (n: string): string => readFileSync(join(workDir, f(n)), 'utf8');
  return {
    rootPem: read('root.pem'),
    rootDer: pemToDer(read('root.pem')),
    intermediateDer: pemToDer(read('int.pem')),
    leafDer: pemToDer(read('leaf.pem')),
    leafKey: createPrivateKey(read('leaf.key')),
    leafExpiresAt: created + DAY,
  };
}

export type DocumentFields = NitroDocumentFields;

export const PCR0 = Buffer.from(EMULATED_PCRS.get(0)!);

/** The emulators' signer for `ca`: its leaf key and certificate, bundle `[root, intermediate]`. */
export function signerOf(ca: TestCa): NitroSigner {
  return { key: ca.leafKey, certificate: ca.leafDer, cabundle: [ca.rootDer, ca.intermediateDer] };
}

/** A COSE_Sign1 Nitro-shaped document signed by `ca`'s leaf (or `signWith`), PCR0..2 as the NSM emulator sends. */
export function makeDocument(ca: TestCa, fields: DocumentFields = {}, signWith: KeyObject = ca.leafKey): Uint8Array {
  return signNitroDocument(signerOf(ca), fields, signWith);
}
