/**
 * Security policy: the mode (option > KEYFOLD_SECURITY_MODE > production, fail closed on typos), the memory provider
 * refused in production, and key file / directory permissions.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  assertPrivatePath,
  ConfigError,
  createEnvelope,
  PolicyError,
  resolveSecurityMode,
  SECURITY_MODE_ENV,
} from '../src/index.js';
import { LocalKekProvider } from './helpers.js';

describe('resolveSecurityMode', () => {
  it('defaults to production', () => {
    expect(resolveSecurityMode(undefined, {})).toBe('production');
    expect(resolveSecurityMode(undefined, { [SECURITY_MODE_ENV]: '' })).toBe('production');
  });

  it('honours KEYFOLD_SECURITY_MODE=development from the env object given', () => {
    expect(SECURITY_MODE_ENV).toBe('KEYFOLD_SECURITY_MODE');
    expect(resolveSecurityMode(undefined, { KEYFOLD_SECURITY_MODE: 'development' })).toBe('development');
    expect(resolveSecurityMode(undefined, { KEYFOLD_SECURITY_MODE: 'production' })).toBe('production');
  });

  it('the explicit option wins over the environment', () => {
    expect(resolveSecurityMode('production', { KEYFOLD_SECURITY_MODE: 'development' })).toBe('production');
    expect(resolveSecurityMode('development', {})).toBe('development');
  });

  it('an invalid value fails closed with ConfigError naming where it came from', () => {
    for (const bad of ['dev', 'Development', 'prod', 'off', ' development']) {
      let err: unknown;
      try {
        resolveSecurityMode(undefined, { KEYFOLD_SECURITY_MODE: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG_INVALID');
      expect((err as ConfigError).message).toContain('KEYFOLD_SECURITY_MODE');
      expect((err as ConfigError).message).toContain(JSON.stringify(bad));
    }
    expect(() => resolveSecurityMode('test' as never, {})).toThrow(/securityMode/);
  });
});

describe('memory provider', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const memoryByProtection = () => new LocalKekProvider({ kind: 'test', protection: 'memory', keyId: 'm1' });
  const memoryByKind = () => new LocalKekProvider({ kind: 'memory', protection: 'software', keyId: 'm2' });

  it('refused in production with a message that says why and names an alternative', () => {
    for (const make of [memoryByProtection, memoryByKind]) {
      let err: unknown;
      try {
        createEnvelope({ providers: [new LocalKekProvider(), make()], policy: { securityMode: 'production' } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PolicyError);
      const e = err as PolicyError;
      expect(e.code).toBe('POLICY_VIOLATION');
      expect(e.message).toMatch(/memory/);
      expect(e.message).toMatch(/production/);
      expect(e.message).toMatch(/lost at exit|unprotected/); // why
      expect(e.message).toMatch(/env or file provider|KMS|HSM/); // what to use instead
      expect(e.message).toContain('KEYFOLD_SECURITY_MODE=development');
    }
  });

  it('refused by default (no option, no environment variable)', () => {
    vi.stubEnv('KEYFOLD_SECURITY_MODE', '');
    expect(() => createEnvelope({ providers: [memoryByKind()] })).toThrow(PolicyError);
  });

  it('allowed in development, by option or by KEYFOLD_SECURITY_MODE', async () => {
    const env = createEnvelope({ providers: [memoryByKind()], policy: { securityMode: 'development' } });
    expect(new TextDecoder().decode(await env.open(await env.seal('dev')))).toBe('dev');
    vi.stubEnv('KEYFOLD_SECURITY_MODE', 'development');
    expect(() => createEnvelope({ providers: [memoryByProtection()] })).not.toThrow();
  });

  it('an invalid KEYFOLD_SECURITY_MODE makes createEnvelope fail closed', () => {
    vi.stubEnv('KEYFOLD_SECURITY_MODE', 'devel');
    expect(() => createEnvelope({ providers: [new LocalKekProvider()] })).toThrow(ConfigError);
  });
});

describe('assertPrivatePath', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyfold-policy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function file(name: string, mode: number): string {
    const p = join(dir, name);
    writeFileSync(p, 'kek');
    chmodSync(p, mode);
    return p;
  }

  it('a 0644 key file is refused in production with the chmod that fixes it', () => {
    const p = file('kek-644', 0o644);
    let err: unknown;
    try {
      assertPrivatePath(p, { what: 'KEK file', type: 'file', securityMode: 'production' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('INSECURE_PERMISSIONS');
    expect((err as PolicyError).message).toContain('chmod 600');
    expect((err as PolicyError).message).toContain('644');
    expect((err as PolicyError).message).toContain(p);
  });

  it('group- or other-accessible modes are all refused; 0600 / 0400 pass', () => {
    for (const mode of [0o640, 0o604, 0o660, 0o606, 0o610, 0o601]) {
      expect(() => assertPrivatePath(file(`kek-${mode.toString(8)}`, mode), { what: 'KEK file', type: 'file', securityMode: 'production' })).toThrow(PolicyError);
    }
    for (const mode of [0o600, 0o400]) {
      const st = assertPrivatePath(file(`ok-${mode.toString(8)}`, mode), { what: 'KEK file', type: 'file', securityMode: 'production' });
      expect(st.isFile()).toBe(true);
    }
  });

  it('a 0644 key file is allowed in development', () => {
    const p = file('kek-dev', 0o644);
    expect(assertPrivatePath(p, { what: 'KEK file', type: 'file', securityMode: 'development' }).isFile()).toBe(true);
  });

  it('a 0755 directory is refused with chmod 700; 0700 passes', () => {
    const d = join(dir, 'keys-755');
    mkdirSync(d);
    chmodSync(d, 0o755);
    expect(() => assertPrivatePath(d, { what: 'key directory', type: 'directory', securityMode: 'production' })).toThrow(/chmod 700/);
    chmodSync(d, 0o700);
    expect(assertPrivatePath(d, { what: 'key directory', type: 'directory', securityMode: 'production' }).isDirectory()).toBe(true);
  });

  it('a missing path or the wrong type is a ConfigError (in both modes)', () => {
    for (const securityMode of ['production', 'development'] as const) {
      expect(() => assertPrivatePath(join(dir, 'missing'), { what: 'KEK file', type: 'file', securityMode })).toThrow(ConfigError);
      expect(() => assertPrivatePath(dir, { what: 'KEK file', type: 'file', securityMode })).toThrow(ConfigError);
      expect(() => assertPrivatePath(file(`f-${securityMode}`, 0o600), { what: 'key directory', type: 'directory', securityMode })).toThrow(
        ConfigError,
      );
    }
  });
});
