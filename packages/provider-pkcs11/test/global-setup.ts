/**
 * Makes sure the real PKCS#11 parts the tests use are installed: SoftHSM2 (the token), OpenSC (pkcs11-tool, which
 * makes keys the way an operator would, and pkcs11-spy, which records the PKCS#11 calls), and openCryptoki (its soft
 * token locks the user PIN after three wrong attempts; SoftHSM2 has no lockout). When one is missing and the tests
 * run as root (CI), it is installed with apt-get; otherwise the run fails and says how to install it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Temp folder of this run: every token directory and softhsm2.conf the tests make goes below it. */
    pkcs11TmpRoot: string;
  }
}

const NEEDED: ReadonlyArray<{ path: string; pkg: string }> = [
  { path: '/usr/lib/softhsm/libsofthsm2.so', pkg: 'softhsm2' },
  { path: '/usr/bin/softhsm2-util', pkg: 'softhsm2' },
  { path: '/usr/bin/pkcs11-tool', pkg: 'opensc' },
  { path: '/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so', pkg: 'opensc' },
  { path: '/usr/sbin/pkcsslotd', pkg: 'opencryptoki' },
  { path: '/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so', pkg: 'opencryptoki' },
];

export default function setup(project: TestProject): () => void {
  installMissing();
  const root = mkdtempSync(join(tmpdir(), 'keyfold-pkcs11-tests-'));
  project.provide('pkcs11TmpRoot', root);
  return () => rmSync(root, { recursive: true, force: true });
}

function installMissing(): void {
  const missing = [...new Set(NEEDED.filter((n) => !existsSync(n.path)).map((n) => n.pkg))];
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(
      `@keyfold/provider-pkcs11 tests need ${missing.join(', ')} (real SoftHSM2 / OpenSC / openCryptoki, no mocks). ` +
        `Install them as root: ${command}`,
    );
  }
  process.stderr.write(`provider-pkcs11 tests: installing ${missing.join(' ')}\n`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const still = NEEDED.filter((n) => !existsSync(n.path));
  if (still.length > 0) throw new Error(`installing ${missing.join(' ')} did not provide ${still.map((n) => n.path).join(', ')}`);
}
