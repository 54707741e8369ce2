/**
 * A throwaway P-384 certificate chain shaped like the Nitro one (root -> intermediate -> leaf), made with the
 * `openssl` command line, for signing emulated attestation documents in tests.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NitroSigner } from './index.js';

export interface TestNitroCa {
  readonly rootPem: string;
  readonly rootPemPath: string;
  readonly rootDer: Buffer;
  readonly intermediateDer: Buffer;
  readonly leafDer: Buffer;
  readonly leafKey: KeyObject;
  /** The leaf is valid for one day from creation; the intermediate 30, the root 365. */
  readonly leafExpiresAt: number;
  /** Leaf key and certificate with the bundle `[root, intermediate]`, for `startNsmEmulator` / `signNitroDocument`. */
  readonly signer: NitroSigner;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

let serial = 0;

/**
 * Creates a fresh chain named `name` in `dir` (key and certificate files are written there; the caller removes the
 * directory). @throws Error when openssl is missing or fails.
 */
export function createTestNitroCa(dir: string, name: string): TestNitroCa {
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const f = (s: string): string => `${name}-${s}`;
  writeFileSync(join(dir, f('ca.ext')), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  writeFileSync(join(dir, f('leaf.ext')), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
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
  const read = (n: string): string => readFileSync(join(dir, f(n)), 'utf8');
  const rootPem = read('root.pem');
  const rootDer = pemToDer(rootPem);
  const intermediateDer = pemToDer(read('int.pem'));
  const leafDer = pemToDer(read('leaf.pem'));
  const leafKey = createPrivateKey(read('leaf.key'));
  return {
    rootPem,
    rootPemPath: join(dir, f('root.pem')),
    rootDer,
    intermediateDer,
    leafDer,
    leafKey,
    leafExpiresAt: created + 86_400_000,
    signer: { key: leafKey, certificate: leafDer, cabundle: [rootDer, intermediateDer] },
  };
}
