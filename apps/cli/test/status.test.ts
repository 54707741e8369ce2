import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir } from './helpers.js';

let work: string;
let dir: string;
const env = (): Record<string, string> => ({ KEYFOLD_PASSPHRASE: PASSPHRASE });

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = keyfold(['init', '--dir', dir], { env: env() });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => removeDir(work));

describe('keyfold status', () => {
  it('--json is one parseable document with config, provider, versions and security mode', () => {
    const r = keyfold(['status', '--dir', dir, '--json'], { env: env() });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.out);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(s).toMatchObject({
      config: { dir, path: join(dir, 'config.json') },
      securityMode: 'production',
      provider: { kind: 'file', keyId: config.provider.keyId, protection: 'software', activeVersion: '1', versions: ['1'] },
    });
    expect(r.out).not.toContain(PASSPHRASE);
  });

  it('text output names the provider, key id and versions', () => {
    const r = keyfold(['status', '--dir', dir], { env: env() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toMatch(/provider\s+file \(software\)/);
    expect(r.out).toMatch(/active version\s+1/);
    expect(r.out).toMatch(/latency\s+[\d.]+ ms \(describe\)/);
    expect(r.out).toMatch(/security mode\s+production/);
  });

  it('before init: exit 1 NOT_INITIALIZED telling to run keyfold init', () => {
    const r = keyfold(['status', '--dir', join(work, 'empty')], { env: env() });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("run 'keyfold init'");
    expect(r.stderr).toContain('[NOT_INITIALIZED]');
  });

  it('refuses a configuration directory open to group/other in production, allows it in development', () => {
    chmodSync(dir, 0o755);
    try {
      const r = keyfold(['status', '--dir', dir], { env: env() });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('[INSECURE_PERMISSIONS]');
      expect(r.stderr).toContain(`chmod 700 ${dir}`);
      const dev = keyfold(['status', '--dir', dir, '--json'], { env: { ...env(), KEYFOLD_SECURITY_MODE: 'development' } });
      expect(dev.status, dev.stderr).toBe(0);
      expect(JSON.parse(dev.out).securityMode).toBe('development');
    } finally {
      chmodSync(dir, 0o700);
    }
  });

  it('an invalid KEYFOLD_SECURITY_MODE fails closed with CONFIG_INVALID', () => {
    const r = keyfold(['status', '--dir', dir], { env: { ...env(), KEYFOLD_SECURITY_MODE: 'relaxed' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[CONFIG_INVALID]');
  });

  it('a config whose key id does not match the keyring: exit 3 PROVIDER_MISMATCH', () => {
    const path = join(dir, 'config.json');
    const original = readFileSync(path, 'utf8');
    const config = JSON.parse(original);
    config.provider.keyId = 'file-00000000';
    writeFileSync(path, JSON.stringify(config));
    try {
      const r = keyfold(['status', '--dir', dir], { env: env() });
      expect(r.status).toBe(3);
      expect(r.stderr).toContain('[PROVIDER_MISMATCH]');
    } finally {
      writeFileSync(path, original);
    }
  });

  it('a malformed config: exit 1 CONFIG_INVALID naming the field', () => {
    const path = join(dir, 'config.json');
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, JSON.stringify({ version: 1, createdAt: 'x', provider: { kind: 'hsm', keyId: 'k' } }));
    try {
      const r = keyfold(['status', '--dir', dir], { env: env() });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('provider.kind');
      expect(r.stderr).toContain('[CONFIG_INVALID]');
    } finally {
      writeFileSync(path, original);
    }
  });
});

describe('keyfold provider probe', () => {
  it('reports ok, latency and capabilities; exit 0', () => {
    const r = keyfold(['provider', 'probe', '--dir', dir], { env: env() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toMatch(/status\s+ok/);
    expect(r.out).toMatch(/latency\s+[\d.]+ ms/);
    const j = keyfold(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
    expect(j.status).toBe(0);
    const probe = JSON.parse(j.out);
    expect(probe).toMatchObject({ ok: true, kind: 'file', activeVersion: '1' });
    expect(typeof probe.latencyMs).toBe('number');
  });

  it('with a wrong passphrase the provider cannot open: exit 3', () => {
    const r = keyfold(['provider', 'probe', '--dir', dir], { env: { KEYFOLD_PASSPHRASE: 'wrong' } });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[WRONG_PASSPHRASE]');
  });

  it('a KEK file open to group/other is an operational failure: the probe reports it (exit 1), on stdout and with --json', () => {
    const kekFile = join(dir, 'keys', 'keyring.json');
    chmodSync(kekFile, 0o644);
    try {
      const j = keyfold(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
      expect(j.status, j.stderr).toBe(1);
      expect(JSON.parse(j.out)).toMatchObject({ ok: false, kind: 'file', error: { code: 'INSECURE_PERMISSIONS' } });
      const r = keyfold(['provider', 'probe', '--dir', dir], { env: env() });
      expect(r.status).toBe(1);
      expect(r.out).toMatch(/status\s+FAILED/);
      expect(r.out).toContain('[INSECURE_PERMISSIONS]');
      expect(r.stderr).toContain('[PROBE_FAILED]');
      expect(`${r.out}${r.stderr}${j.out}`).not.toContain(PASSPHRASE);
    } finally {
      chmodSync(kekFile, 0o600);
    }
  });
});
