/**
 * `--provider vault-transit` against the Vault transit emulator of @keyfold/emulators, running in this process:
 * a token from VAULT_TOKEN, AppRole from KEYFOLD_VAULT_ROLE_ID / KEYFOLD_VAULT_SECRET_ID, and a sealed Vault.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startVaultTransitEmulator, type VaultTransitEmulator } from '@keyfold/emulators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldAsync, makeTempDir, removeDir } from './helpers.js';

const ROOT_TOKEN = `root-${randomBytes(8).toString('hex')}`;

let emu: VaultTransitEmulator;
let work: string;
let dir: string;
const env = (token = ROOT_TOKEN): Record<string, string> => ({ VAULT_ADDR: emu.url, VAULT_TOKEN: token });

beforeAll(async () => {
  emu = await startVaultTransitEmulator({ port: 0, rootToken: ROOT_TOKEN });
  emu.createKey('keyfold');
  work = makeTempDir();
  dir = join(work, 'kf');
});
afterAll(async () => {
  await emu.close();
  removeDir(work);
});

describe('keyfold with --provider vault-transit', () => {
  it('init records address, mount and key, never the token; encrypt/decrypt round-trip', async () => {
    const r = await keyfoldAsync(['init', '--dir', dir, '--provider', 'vault-transit', '--key-name', 'keyfold'], { env: env() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toMatch(/provider\s+vault-transit/);
    expect(r.out).toContain('VAULT_TOKEN');
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    expect(JSON.parse(text).provider).toEqual({
      kind: 'vault-transit',
      keyId: 'transit/keys/keyfold',
      keyName: 'keyfold',
      endpoint: emu.url,
      mount: 'transit',
      auth: 'token',
    });
    expect(text + r.out + r.stderr).not.toContain(ROOT_TOKEN);

    const plainFile = join(work, 'plain.bin');
    const sealedFile = join(work, 'sealed.kf');
    const payload = randomBytes(200_000);
    writeFileSync(plainFile, payload);
    const sealed = await keyfoldAsync(['encrypt', '--dir', dir, '--in', plainFile, '--out', sealedFile, '--context', 'app=billing'], { env: env() });
    expect(sealed.status, sealed.stderr).toBe(0);
    const opened = await keyfoldAsync(['decrypt', '--dir', dir, '--in', sealedFile], { env: env() });
    expect(opened.status, opened.stderr).toBe(0);
    expect(opened.stdout.equals(payload)).toBe(true);
  });

  it('status and provider probe report versions, latency and capabilities', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir, '--json'], { env: env() });
    expect(status.status, status.stderr).toBe(0);
    const s = JSON.parse(status.out);
    expect(s.provider).toMatchObject({ kind: 'vault-transit', keyId: 'transit/keys/keyfold', activeVersion: '1', capabilities: { rewrapKey: true } });
    expect(typeof s.provider.latencyMs).toBe('number');
    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
    expect(probe.status, probe.stderr).toBe(0);
    const p = JSON.parse(probe.out);
    expect(p).toMatchObject({ ok: true, kind: 'vault-transit', capabilities: { rewrapKey: true } });
    expect(typeof p.latencyMs).toBe('number');
  });

  it('a token Vault refuses: exit 3 ACCESS_DENIED; a missing VAULT_TOKEN: exit 1 CONFIG_INVALID naming it', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir], { env: env('not-a-token') });
    expect(status.status).toBe(3);
    expect(status.stderr).toContain('[ACCESS_DENIED]');
    const missing = await keyfoldAsync(['status', '--dir', dir], { env: { VAULT_ADDR: emu.url } });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('VAULT_TOKEN is not set');
  });

  it('AppRole: init --auth approle reads the role and secret ids from the environment and records neither', async () => {
    emu.setPolicy('keyfold-app', ['transit/keys/keyfold', 'transit/encrypt/keyfold', 'transit/decrypt/keyfold']);
    const { roleId, secretId } = emu.createAppRole({ name: 'keyfold-app', policies: ['keyfold-app'] });
    const appDir = join(work, 'approle');
    const appEnv = { VAULT_ADDR: emu.url, KEYFOLD_VAULT_ROLE_ID: roleId, KEYFOLD_VAULT_SECRET_ID: secretId };
    const r = await keyfoldAsync(['init', '--dir', appDir, '--provider', 'vault-transit', '--key-name', 'keyfold', '--json'], { env: appEnv });
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync(join(appDir, 'config.json'), 'utf8');
    expect(JSON.parse(text).provider.auth).toBe('approle');
    expect(text).not.toContain(roleId);
    expect(text).not.toContain(secretId);
    const sealed = await keyfoldAsync(['encrypt', '--dir', appDir, '--armor'], { env: appEnv, input: 'via approle' });
    expect(sealed.status, sealed.stderr).toBe(0);
    // The root token's installation opens what the AppRole one sealed: same transit key.
    const opened = await keyfoldAsync(['decrypt', '--dir', dir], { env: env(), input: sealed.stdout });
    expect(opened.out).toBe('via approle');
  });

  it('a sealed Vault: probe reports ok:false UNAVAILABLE and exits 1', async () => {
    emu.seal();
    try {
      const r = await keyfoldAsync(['provider', 'probe', '--dir', dir], { env: env() });
      expect(r.status).toBe(1);
      expect(r.out).toMatch(/status\s+FAILED/);
      expect(r.out).toContain('[UNAVAILABLE]');
      expect(r.stderr).toContain('[PROBE_FAILED]');
    } finally {
      emu.unseal();
    }
  });

  it('kek add points at transit rotation instead: exit 1 UNSUPPORTED', async () => {
    const r = await keyfoldAsync(['kek', 'add', '--dir', dir, '--json'], { env: env() });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.out).error).toMatchObject({ code: 'UNSUPPORTED' });
    expect(JSON.parse(r.out).error.message).toContain('vault write -f transit/keys/keyfold/rotate');
  });

  it('without an address: usage error naming --vault-addr and VAULT_ADDR', async () => {
    const r = await keyfoldAsync(['init', '--dir', join(work, 'noaddr'), '--provider', 'vault-transit', '--key-name', 'keyfold'], {
      env: { VAULT_TOKEN: ROOT_TOKEN },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--vault-addr URL or VAULT_ADDR');
  });
});
