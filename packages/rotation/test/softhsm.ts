/**
 * Real SoftHSM2 tokens for the rotation tests, made the way @keyfold/provider-pkcs11's tests make them: a token
 * directory and softhsm2.conf of our own in a temp dir (SOFTHSM2_CONF is set for this test process) and tokens
 * created with softhsm2-util. SoftHSM2 reads its token directory at C_Initialize, so create every token a test file
 * needs at module top level, before the file's first provider opens.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.js';

export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

/** A token made for a test. The PINs are random per token and never printed. */
export interface TestToken {
  readonly label: string;
  readonly pin: string;
}

let counter = 0;

/** A unique label for keys and tokens (token labels are at most 32 characters). */
export function uniqueLabel(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid.toString(36)}-${counter}-${randomBytes(3).toString('hex')}`.slice(0, 32);
}

/** Creates the temp token directory and softhsm2.conf, points SOFTHSM2_CONF at it, and returns a token maker. */
export function createSoftHsm(): { token(label?: string): TestToken } {
  const dir = tempDir();
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  process.env.SOFTHSM2_CONF = conf;
  return {
    token(label = uniqueLabel('rot')): TestToken {
      const t = { label, pin: randomBytes(8).toString('hex') };
      const soPin = randomBytes(8).toString('hex');
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', t.label, '--so-pin', soPin, '--pin', t.pin], { env: process.env, stdio: 'ignore' });
      return t;
    },
  };
}
