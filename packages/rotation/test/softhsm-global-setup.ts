/**
 * The PKCS#11 migration test (pkcs11-migration.test.ts) runs against a real SoftHSM2 token, as the provider's own
 * tests do. When SoftHSM2 is missing and the tests run as root (CI), it is installed with apt-get here; otherwise the
 * run fails and says how to install it. No mocks, no opt-out.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const NEEDED = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/bin/softhsm2-util'] as const;

export default function setup(): void {
  if (NEEDED.every((p) => existsSync(p))) return;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('@keyfold/rotation tests need SoftHSM2 (real token, no mocks). Install it as root: apt-get update && apt-get install -y softhsm2');
  }
  process.stderr.write('rotation tests: installing softhsm2\n');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'softhsm2'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const still = NEEDED.filter((p) => !existsSync(p));
  if (still.length > 0) throw new Error(`installing softhsm2 did not provide ${still.join(', ')}`);
}
