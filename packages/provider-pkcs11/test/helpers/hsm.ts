/**
 * Real SoftHSM2 for the tests: a token directory and softhsm2.conf of our own in a temp dir (SOFTHSM2_CONF is set
 * for this test process), tokens made with softhsm2-util, keys made with OpenSC's pkcs11-tool, and a raw graphene
 * handle on the same library for the things an operator or an outage would do behind the provider's back.
 *
 * SoftHSM2 reads its token directory at C_Initialize, so every token a test file needs is created before the file's
 * first provider opens (at module top level): the library is then loaded once per test process.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyType, Module, ObjectClass, SessionFlag, UserType, type Session, type Slot } from 'graphene-pk11';
import { inject } from 'vitest';

export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
export const PKCS11_SPY_LIBRARY = '/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so';
export const OPENCRYPTOKI_LIBRARY = '/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so';

/** A token made for a test. The PINs are random per token and never printed. */
export interface TestToken {
  readonly label: string;
  readonly soPin: string;
  readonly pin: string;
}

export interface SoftHsm {
  readonly dir: string;
  readonly conf: string;
  /** Creates a token (softhsm2-util --init-token --free). Call before the first provider opens. */
  token(label?: string): TestToken;
}

let counter = 0;

/** A unique label for keys and tokens. */
export function uniqueLabel(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid.toString(36)}-${counter}-${randomBytes(3).toString('hex')}`;
}

/**
 * Creates the temp token directory and softhsm2.conf and points SOFTHSM2_CONF at it for this process.
 * @param mechanisms SoftHSM2's `slots.mechanisms` (e.g. `-CKM_AES_GCM` to take AES-GCM away from every token).
 */
export function createSoftHsm(mechanisms?: string): SoftHsm {
  // Below the run's temp root (removed by the global setup's teardown when the run ends).
  const dir = mkdtempSync(join(inject('pkcs11TmpRoot'), 'softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  const lines = [`directories.tokendir = ${tokens}`, 'objectstore.backend = file', 'log.level = ERROR', 'slots.removable = false'];
  if (mechanisms) lines.push(`slots.mechanisms = ${mechanisms}`);
  writeFileSync(conf, `${lines.join('\n')}\n`, { mode: 0o600 });
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    token(label = uniqueLabel('t').slice(0, 32)): TestToken {
      const t = { label, soPin: randomBytes(8).toString('hex'), pin: randomBytes(8).toString('hex') };
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', t.label, '--so-pin', t.soPin, '--pin', t.pin], {
        env: process.env,
        stdio: 'ignore',
      });
      return t;
    },
  };
}

/** Runs OpenSC's pkcs11-tool against `library` (SoftHSM2 by default), logged in as the user. */
export function pkcs11Tool(token: TestToken, args: readonly string[], library = SOFTHSM_LIBRARY): string {
  return execFileSync('pkcs11-tool', ['--module', library, '--token-label', token.label, '--login', '--pin', token.pin, ...args], {
    env: process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A 256-bit AES key made by pkcs11-tool the way an operator would, not by our code. */
export function toolKeygen(token: TestToken, label: string, extra: readonly string[] = ['--sensitive', '--private']): void {
  pkcs11Tool(token, ['--keygen', '--key-type', 'AES:32', '--label', label, ...extra]);
}

let raw: Module | undefined;

/**
 * A graphene handle on the library outside the provider (another part of the application, an operator, an outage).
 * Loaded once and never finalised or unloaded, so the provider's own load/finalise cycle is unaffected; initialised
 * again on every use because the provider's C_Finalize ends it.
 */
export function rawModule(library = SOFTHSM_LIBRARY): Module {
  raw ??= Module.load(library);
  raw.initialize({ flags: 2 });
  return raw;
}

export function rawSlot(token: TestToken, library = SOFTHSM_LIBRARY): Slot {
  const slots = rawModule(library).getSlots(true);
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    if (slot.getToken().label === token.label) return slot;
  }
  throw new Error(`token ${token.label} not found`);
}

/** Runs `fn` in a logged-in RW session of the raw handle (tolerating the provider's login being shared). */
export function withRawSession<T>(token: TestToken, fn: (session: Session) => T, library = SOFTHSM_LIBRARY): T {
  const session = rawSlot(token, library).open(SessionFlag.SERIAL_SESSION | SessionFlag.RW_SESSION);
  try {
    try {
      session.login(token.pin, UserType.USER);
    } catch (err) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test((err as Error).message)) throw err;
    }
    return fn(session);
  } finally {
    session.close();
  }
}

/** Imports a known AES-256 value as a sensitive, non-extractable token key: the value is known only to the test. */
export function importKek(token: TestToken, label: string, value: Uint8Array, extra: Record<string, unknown> = {}): void {
  withRawSession(token, (s) => {
    s.create({
      class: ObjectClass.SECRET_KEY,
      keyType: KeyType.AES,
      token: true,
      private: true,
      label,
      value: Buffer.from(value),
      sensitive: true,
      extractable: false,
      encrypt: true,
      decrypt: true,
      wrap: true,
      unwrap: true,
      ...extra,
    });
  });
}

/** Deletes every secret key with this label. */
export function deleteKey(token: TestToken, label: string): number {
  return withRawSession(token, (s) => s.destroy({ class: ObjectClass.SECRET_KEY, label }));
}

/** C_CloseAllSessions on the token: every session of this application (the provider's too) is invalidated. */
export function closeAllSessions(token: TestToken): void {
  rawSlot(token).closeAll();
}
