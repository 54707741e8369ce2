/**
 * `--provider pkcs11` against real SoftHSM2: a token directory and softhsm2.conf of this test's own (passed to the
 * CLI as SOFTHSM2_CONF), tokens made with softhsm2-util, random PINs that never appear in output or config.
 * SoftHSM2 must be installed (`apt-get install softhsm2`; .ci/run installs it).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldAsync, makeTempDir, removeDir } from './helpers.js';

const LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

interface TestToken {
  readonly label: string;
  readonly pin: string;
  readonly slot: string;
}

let work: string;
let conf: string;
let token: TestToken;
let dir: string;

/** Creates a token with softhsm2-util; returns its label, random user PIN and slot id. */
function makeToken(label: string): TestToken {
  const pin = randomBytes(8).toString('hex');
  const out = execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', randomBytes(8).toString('hex'), '--pin', pin],
    { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8' },
  );
  const slot = /reassigned to slot (\d+)/.exec(out)?.[1];
  if (slot === undefined) throw new Error(`softhsm2-util did not report the slot: ${out}`);
  return { label, pin, slot };
}

const env = (pin = token.pin): Record<string, string> => ({ SOFTHSM2_CONF: conf, KEYFOLD_HSM_PIN: pin });

beforeAll(() => {
  if (!existsSync(LIBRARY)) throw new Error(`${LIBRARY} is missing: install SoftHSM2 (apt-get install softhsm2)`);
  work = makeTempDir();
  const tokens = join(work, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  conf = join(work, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  token = makeToken('keyfold-cli');
  dir = join(work, 'kf');
});
afterAll(() => removeDir(work));

function initArgs(target: string, extra: readonly string[]): string[] {
  return ['init', '--dir', target, '--provider', 'pkcs11', '--library', LIBRARY, ...extra];
}

describe('keyfold with --provider pkcs11 (SoftHSM2)', () => {
  it('init creates KEK version 1 inside the token and records where the PIN is, never the PIN', async () => {
    const r = await keyfoldAsync(initArgs(dir, ['--token-label', token.label, '--key-label', 'payments', '--pin-env', 'KEYFOLD_HSM_PIN', '--json']), {
      env: env(),
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out).provider).toMatchObject({ kind: 'pkcs11', keyId: 'payments', protection: 'hsm', activeVersion: '1', createdVersion: '1' });
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    expect(JSON.parse(text).provider).toEqual({
      kind: 'pkcs11',
      keyId: 'payments',
      library: LIBRARY,
      tokenLabel: token.label,
      mechanism: 'AES_GCM',
      pinEnv: 'KEYFOLD_HSM_PIN',
    });
    expect(text + r.out + r.stderr).not.toContain(token.pin);
  });

  it('encrypt/decrypt round-trip; kek add makes version 2 in the token; old envelopes still open', async () => {
    const before = await keyfoldAsync(['encrypt', '--dir', dir, '--armor', '--context', 'tenant=acme'], { env: env(), input: 'sealed under v1' });
    expect(before.status, before.stderr).toBe(0);

    const added = await keyfoldAsync(['kek', 'add', '--dir', dir, '--json'], { env: env() });
    expect(added.status, added.stderr).toBe(0);
    expect(JSON.parse(added.out)).toMatchObject({
      ok: true,
      kind: 'pkcs11',
      keyId: 'payments',
      version: '2',
      activeVersion: '2',
      versions: ['1', '2'],
      objectLabel: 'payments.v2',
      tokenLabel: token.label,
      slot: token.slot,
    });

    const after = await keyfoldAsync(['encrypt', '--dir', dir, '--armor'], { env: env(), input: 'sealed under v2' });
    expect(after.status, after.stderr).toBe(0);
    const info = await keyfoldAsync(['inspect', '--json'], { input: after.stdout });
    expect(JSON.parse(info.out).wrappedKeys[0]).toMatchObject({ kind: 'pkcs11', keyId: 'payments', keyVersion: '2' });
    const old = await keyfoldAsync(['decrypt', '--dir', dir, '--context', 'tenant=acme'], { env: env(), input: before.stdout });
    expect(old.status, old.stderr).toBe(0);
    expect(old.out).toBe('sealed under v1');
    const opened = await keyfoldAsync(['decrypt', '--dir', dir], { env: env(), input: after.stdout });
    expect(opened.out).toBe('sealed under v2');
  });

  it('status shows the versions; probe lists the mechanisms the token offers', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir, '--json'], { env: env() });
    expect(status.status, status.stderr).toBe(0);
    const s = JSON.parse(status.out);
    expect(s.provider).toMatchObject({ kind: 'pkcs11', keyId: 'payments', protection: 'hsm', activeVersion: '2', versions: ['1', '2'] });
    expect(typeof s.provider.latencyMs).toBe('number');

    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
    expect(probe.status, probe.stderr).toBe(0);
    const p = JSON.parse(probe.out);
    expect(p).toMatchObject({ ok: true, kind: 'pkcs11', activeVersion: '2', token: { label: token.label, slot: token.slot } });
    expect(p.token.mechanisms).toContainEqual({ name: 'CKM_AES_GCM', flags: expect.arrayContaining(['ENCRYPT', 'DECRYPT']) });
    expect(p.token.modes).toEqual({ AES_GCM: [], AES_KEY_WRAP_PAD: [] });

    const text = await keyfoldAsync(['provider', 'probe', '--dir', dir], { env: env() });
    expect(text.status, text.stderr).toBe(0);
    expect(text.out).toMatch(/\d+ mechanisms found:/);
    expect(text.out).toMatch(/CKM_AES_KEY_WRAP_PAD\s+WRAP, UNWRAP/);
  });

  it('a wrong PIN: exit 3 ACCESS_DENIED; probe reports it (exit 1) and still lists the mechanisms', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir], { env: env('00000000') });
    expect(status.status).toBe(3);
    expect(status.stderr).toContain('[ACCESS_DENIED]');
    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env('00000000') });
    expect(probe.status).toBe(1);
    const p = JSON.parse(probe.out);
    expect(p).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
    expect(p.token.mechanisms.length).toBeGreaterThan(0);
    const add = await keyfoldAsync(['kek', 'add', '--dir', dir], { env: env('00000000') });
    expect(add.status).toBe(3);
  });

  it('--slot, --pin-file (mode 0600) and AES_KEY_WRAP_PAD on a second token', async () => {
    const second = makeToken('keyfold-cli-2');
    const pinFile = join(work, 'pin');
    writeFileSync(pinFile, `${second.pin}\n`, { mode: 0o600 });
    const kwpDir = join(work, 'kwp');
    const r = await keyfoldAsync(
      initArgs(kwpDir, ['--slot', second.slot, '--key-label', 'kwp', '--mechanism', 'AES_KEY_WRAP_PAD', '--sessions', '2', '--pin-file', pinFile]),
      { env: { SOFTHSM2_CONF: conf } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(kwpDir, 'config.json'), 'utf8')).provider).toEqual({
      kind: 'pkcs11',
      keyId: 'kwp',
      library: LIBRARY,
      slot: Number(second.slot),
      mechanism: 'AES_KEY_WRAP_PAD',
      sessions: 2,
      pinFile,
    });
    const sealed = await keyfoldAsync(['encrypt', '--dir', kwpDir, '--armor'], { env: { SOFTHSM2_CONF: conf }, input: 'wrapped with RFC 5649' });
    expect(sealed.status, sealed.stderr).toBe(0);
    const opened = await keyfoldAsync(['decrypt', '--dir', kwpDir], { env: { SOFTHSM2_CONF: conf }, input: sealed.stdout });
    expect(opened.out).toBe('wrapped with RFC 5649');
  });

  it('the PIN never comes from the command line; a missing token fails before any login', async () => {
    const target = join(work, 'bad');
    const pin = await keyfoldAsync(initArgs(target, ['--token-label', token.label, '--key-label', 'x', '--pin', token.pin]), { env: env() });
    expect(pin.status).toBe(2);
    expect(pin.stderr + pin.out).not.toContain(token.pin);
    const none = await keyfoldAsync(initArgs(target, ['--token-label', token.label, '--key-label', 'x']), { env: env() });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('there is no --pin');
    const missing = await keyfoldAsync(initArgs(target, ['--token-label', 'no-such-token', '--key-label', 'x', '--pin-env', 'KEYFOLD_HSM_PIN']), { env: env() });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no initialised token');
    expect(missing.stderr).toContain(token.label);
    expect(existsSync(target)).toBe(false);
  });
});
