/**
 * A throwaway self-signed certificate for the HTTPS listener of the Key Vault emulator, made with the openssl CLI
 * (node:crypto cannot issue X.509 certificates). Valid for 127.0.0.1 and localhost, for two days; the private key
 * never touches disk beyond a private temporary directory that is removed at once.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM key pair for a TLS server, and the certificate for clients to trust. */
export interface SelfSignedCertificate {
  readonly key: string;
  readonly cert: string;
}

/**
 * Makes a P-256 self-signed certificate for `127.0.0.1` / `localhost`.
 * @throws when the `openssl` binary is missing or fails (the message says so).
 */
export function createSelfSignedCertificate(): SelfSignedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'keyfold-tls-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    try {
      execFileSync(
        'openssl',
        [
          'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=127.0.0.1',
          '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (err) {
      throw new Error(`openssl could not make the emulator's TLS certificate (is the openssl CLI installed?): ${err instanceof Error ? err.message : String(err)}`);
    }
    return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
