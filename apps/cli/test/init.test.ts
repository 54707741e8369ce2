import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir } from './helpers.js';

const HEX_KEK = 'a1'.repeat(32);

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files[p] = `${mode(p).toString(8)}:${readFileSync(p, 'base64')}`;
    }
  };
  walk(dir);
  return files;
}

let work: string;
beforeEach(() => {
  work = makeTempDir();
});
afterEach(() => removeDir(work));

describe('keyfold init (file provider)', () => {
  it('creates DIR 0700, keys/ 0700, keyring and config 0600, and records no secret', () => {
    const r = keyfold(['init'], { cwd: work, env: { KEYFOLD_PASSPHRASE: PASSPHRASE } });
    expect(r.status, r.stderr).toBe(0);
    const dir = join(work, '.keyfold');
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'keys'))).toBe(0o700);
    expect(mode(join(dir, 'keys', 'keyring.json'))).toBe(0o600);
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    const configText = readFileSync(join(dir, 'config.json'), 'utf8');
    const config = JSON.parse(configText);
    expect(config).toMatchObject({ version: 1, provider: { kind: 'file', keyring: 'keys' } });
    expect(config.provider.keyId).toMatch(/^file-[0-9a-f]{8}$/);
    expect(configText).not.toContain(PASSPHRASE);
    expect(r.out + r.stderr).not.toContain(PASSPHRASE);
    expect(r.out).toContain(config.provider.keyId);
  });

  it('refuses a second init with exit 1 ALREADY_EXISTS and changes nothing', () => {
    expect(keyfold(['init'], { cwd: work, env: { KEYFOLD_PASSPHRASE: PASSPHRASE } }).status).toBe(0);
    const before = snapshot(work);
    const r = keyfold(['init'], { cwd: work, env: { KEYFOLD_PASSPHRASE: 'another passphrase' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/already initialised.*\[ALREADY_EXISTS\]/);
    expect(snapshot(work)).toEqual(before);
  });

  it('refuses with --json as {"error":{"code":"ALREADY_EXISTS"}}', () => {
    expect(keyfold(['init', '--dir', 'cfg'], { cwd: work, env: { KEYFOLD_PASSPHRASE: PASSPHRASE } }).status).toBe(0);
    const r = keyfold(['init', '--dir', 'cfg', '--json'], { cwd: work, env: { KEYFOLD_PASSPHRASE: PASSPHRASE } });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.out).error.code).toBe('ALREADY_EXISTS');
  });

  it('without KEYFOLD_PASSPHRASE and without a terminal: usage error (exit 2) naming the variable; nothing written', () => {
    const r = keyfold(['init'], { cwd: work });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('KEYFOLD_PASSPHRASE');
    expect(existsSync(join(work, '.keyfold'))).toBe(false);
  });

  it('honours --dir and KEYFOLD_DIR, and --json prints the installation', () => {
    const a = keyfold(['init', '--dir', 'a', '--json'], { cwd: work, env: { KEYFOLD_PASSPHRASE: PASSPHRASE } });
    expect(a.status, a.stderr).toBe(0);
    const info = JSON.parse(a.out);
    expect(info).toMatchObject({ ok: true, dir: join(work, 'a'), provider: { kind: 'file', activeVersion: '1' } });
    expect(info.provider.kdf.name).toBe('pbkdf2-sha256');
    const b = keyfold(['init', '--kdf', 'scrypt', '--json'], {
      cwd: work,
      env: { KEYFOLD_PASSPHRASE: PASSPHRASE, KEYFOLD_DIR: join(work, 'b') },
    });
    expect(b.status, b.stderr).toBe(0);
    expect(JSON.parse(b.out).provider.kdf.name).toBe('scrypt');
    expect(existsSync(join(work, 'b', 'config.json'))).toBe(true);
  });

  it('does not create missing parent directories: exit 1 IO_ERROR', () => {
    const r = keyfold(['init', '--dir', join(work, 'missing', 'kf')], { env: { KEYFOLD_PASSPHRASE: PASSPHRASE } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('its parent directory does not exist [IO_ERROR]');
    expect(existsSync(join(work, 'missing'))).toBe(false);
  });

  it('rejects bad option values as usage errors without writing anything', () => {
    const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
    expect(keyfold(['init', '--provider', 'cloud'], { cwd: work, env }).status).toBe(2);
    expect(keyfold(['init', '--kdf', 'md5'], { cwd: work, env }).status).toBe(2);
    expect(keyfold(['init', '--prefix', 'X_V'], { cwd: work, env }).status).toBe(2);
    expect(existsSync(join(work, '.keyfold'))).toBe(false);
  });
});

describe('keyfold init --provider env', () => {
  it('records prefix and key id when the variables are usable, and the installation encrypts and decrypts', () => {
    const env = { KEYFOLD_KEK_V1: HEX_KEK };
    const r = keyfold(['init', '--provider', 'env', '--json'], { cwd: work, env });
    expect(r.status, r.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(work, '.keyfold', 'config.json'), 'utf8'));
    expect(config.provider).toEqual({ kind: 'env', keyId: 'KEYFOLD_KEK', prefix: 'KEYFOLD_KEK_V' });
    expect(readFileSync(join(work, '.keyfold', 'config.json'), 'utf8')).not.toContain(HEX_KEK);
    const sealed = keyfold(['encrypt'], { cwd: work, env, input: 'env secret' });
    expect(sealed.status, sealed.stderr).toBe(0);
    const opened = keyfold(['decrypt'], { cwd: work, env, input: sealed.stdout });
    expect(opened.status, opened.stderr).toBe(0);
    expect(opened.out).toBe('env secret');
  });

  it('fails with exit 1 CONFIG_INVALID when no KEK variable is set; nothing written', () => {
    const r = keyfold(['init', '--provider', 'env'], { cwd: work });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[CONFIG_INVALID]');
    expect(r.stderr).toContain('KEYFOLD_KEK_V1');
    expect(existsSync(join(work, '.keyfold'))).toBe(false);
  });

  it('a malformed --prefix is a usage error', () => {
    const r = keyfold(['init', '--provider', 'env', '--prefix', 'BAD-PREFIX'], { cwd: work });
    expect(r.status).toBe(2);
  });
});
