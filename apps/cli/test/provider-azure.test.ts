/**
 * `--provider azure-kv` against the Key Vault emulator of @keyfold/emulators over HTTPS (a self-signed certificate
 * passed with --ca-file), running in this process. The credential is the development-only fixed token of
 * KEYFOLD_AZURE_STATIC_TOKEN, which needs KEYFOLD_SECURITY_MODE=development.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCertificate, startAzureKeyVaultEmulator, type AzureKeyVaultEmulator } from '@keyfold/emulators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldAsync, makeTempDir, removeDir } from './helpers.js';

const TOKEN = `azure-token-${randomBytes(8).toString('hex')}`;

let emu: AzureKeyVaultEmulator;
let work: string;
let dir: string;
let caFile: string;
let rsaKid: string;
const env = (token = TOKEN): Record<string, string> => ({ KEYFOLD_AZURE_STATIC_TOKEN: token, KEYFOLD_SECURITY_MODE: 'development' });

/** The versionless kid of a versioned one. */
const versionless = (kid: string): string => kid.replace(/\/[0-9a-f]{32}$/, '');

beforeAll(async () => {
  const tls = createSelfSignedCertificate();
  emu = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
  emu.setAccessPolicy((token) => (token === TOKEN ? 'allow' : 'forbidden'));
  rsaKid = versionless(emu.createKey('kek', { kty: 'RSA' }));
  work = makeTempDir();
  dir = join(work, 'kf');
  caFile = join(work, 'emulator-ca.pem');
  writeFileSync(caFile, tls.cert);
});
afterAll(async () => {
  await emu.close();
  removeDir(work);
});

describe('keyfold with --provider azure-kv', () => {
  it('init over HTTPS with --ca-file records kid, algorithm and CA file, never the token; round-trip', async () => {
    const init = await keyfoldAsync(['init', '--dir', dir, '--provider', 'azure-kv', '--key-id', rsaKid, '--ca-file', caFile], { env: env() });
    expect(init.status, init.stderr).toBe(0);
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    expect(JSON.parse(text).provider).toEqual({ kind: 'azure-kv', keyId: rsaKid, kid: rsaKid, algorithm: 'RSA-OAEP-256', caFile });
    expect(text + init.out + init.stderr).not.toContain(TOKEN);

    const sealed = await keyfoldAsync(['encrypt', '--dir', dir, '--armor', '--context', 'tenant=acme'], { env: env(), input: 'key vault secret' });
    expect(sealed.status, sealed.stderr).toBe(0);
    const opened = await keyfoldAsync(['decrypt', '--dir', dir, '--context', 'tenant=acme'], { env: env(), input: sealed.stdout });
    expect(opened.status, opened.stderr).toBe(0);
    expect(opened.out).toBe('key vault secret');
  });

  it('status and provider probe report versions, latency and capabilities', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir, '--json'], { env: env() });
    expect(status.status, status.stderr).toBe(0);
    const s = JSON.parse(status.out);
    expect(s.provider).toMatchObject({ kind: 'azure-kv', keyId: rsaKid, capabilities: { rotate: true } });
    expect(s.provider.activeVersion).toMatch(/^[0-9a-f]{32}$/);
    expect(typeof s.provider.latencyMs).toBe('number');
    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir], { env: env() });
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.out).toMatch(/status\s+ok/);
    expect(probe.out).toMatch(/latency\s+[\d.]+ ms/);
  });

  it('A256KW with a Managed HSM oct-HSM key', async () => {
    const kid = versionless(emu.createKey('octkek', { kty: 'oct-HSM' }));
    const octDir = join(work, 'oct');
    const init = await keyfoldAsync(['init', '--dir', octDir, '--provider', 'azure-kv', '--key-id', kid, '--algorithm', 'A256KW', '--ca-file', caFile, '--json'], {
      env: env(),
    });
    expect(init.status, init.stderr).toBe(0);
    expect(JSON.parse(init.out).provider).toMatchObject({ kind: 'azure-kv', protection: 'hsm', settings: { algorithm: 'A256KW' } });
    const sealed = await keyfoldAsync(['encrypt', '--dir', octDir, '--armor'], { env: env(), input: 'hsm secret' });
    expect(sealed.status, sealed.stderr).toBe(0);
    const opened = await keyfoldAsync(['decrypt', '--dir', octDir], { env: env(), input: sealed.stdout });
    expect(opened.out).toBe('hsm secret');
  });

  it('a token Key Vault refuses: exit 3 ACCESS_DENIED; probe reports it, exit 1', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir], { env: env('another-token') });
    expect(status.status).toBe(3);
    expect(status.stderr).toContain('[ACCESS_DENIED]');
    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env('another-token') });
    expect(probe.status).toBe(1);
    expect(JSON.parse(probe.out)).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
  });

  it('the fixed token is refused in production mode', async () => {
    const r = await keyfoldAsync(['status', '--dir', dir], { env: { KEYFOLD_AZURE_STATIC_TOKEN: TOKEN } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('refused in production');
    expect(r.stderr).toContain('[CONFIG_INVALID]');
    expect(r.stderr).not.toContain(TOKEN);
  });

  it('with the service down, probe reports ok:false UNAVAILABLE and exits 1', async () => {
    emu.faults.set({ outage: true });
    try {
      const r = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
      expect(r.status).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({ ok: false, kind: 'azure-kv', error: { code: 'UNAVAILABLE' } });
    } finally {
      emu.faults.clear();
    }
  });

  it('kek add points at Key Vault rotation instead: exit 1 UNSUPPORTED', async () => {
    const r = await keyfoldAsync(['kek', 'add', '--dir', dir], { env: env() });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`az keyvault key rotate --id ${rsaKid}`);
  });
});
