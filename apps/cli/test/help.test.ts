import { describe, expect, it } from 'vitest';
import { keyfold } from './helpers.js';

const COMMANDS = ['init', 'status', 'provider probe', 'kek add', 'encrypt', 'decrypt', 'inspect', 'attest verify', 'attest fetch', 'demo', 'help'];

describe('keyfold help and usage', () => {
  it('prints the global help with every command, exit 0', () => {
    const r = keyfold(['--help']);
    expect(r.status).toBe(0);
    for (const c of COMMANDS) expect(r.out).toContain(c);
    expect(r.out).toContain('Exit codes');
  });

  it('prints the global help with no arguments, exit 0', () => {
    const r = keyfold([]);
    expect(r.status).toBe(0);
    expect(r.out).toContain('Usage: keyfold <command>');
  });

  for (const c of COMMANDS) {
    it(`'${c} --help' and 'help ${c}' print the command's usage, exit 0`, () => {
      const a = keyfold([...c.split(' '), '--help']);
      expect(a.status).toBe(0);
      expect(a.out).toContain(`keyfold ${c}`);
      expect(a.out).toContain('Usage:');
      const b = keyfold(['help', ...c.split(' ')]);
      expect(b.status).toBe(0);
      expect(b.out).toBe(a.out);
    });
  }

  it("'provider --help' and 'kek --help' list the subcommands", () => {
    const r = keyfold(['provider', '--help']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('probe');
    const k = keyfold(['kek', '--help']);
    expect(k.status).toBe(0);
    expect(k.out).toContain('add');
  });

  it("'init --help' documents every provider and never offers a PIN or token option", () => {
    const r = keyfold(['init', '--help']);
    for (const kind of ['aws-kms', 'vault-transit', 'gcp-kms', 'azure-kv', 'pkcs11']) expect(r.out).toContain(kind);
    for (const flag of ['--pin-env', '--pin-file', '--key-id', '--key-name', '--library']) expect(r.out).toContain(flag);
    expect(r.out).not.toMatch(/--pin\s/);
    expect(r.out).not.toMatch(/--(token|secret-id|password)(?![-\w])/);
  });

  it('provider options that do not fit the provider are usage errors', () => {
    expect(keyfold(['init', '--provider', 'aws-kms', '--key-id', 'k', '--library', '/x.so']).stderr).toContain(
      '--library applies to the pkcs11 provider only',
    );
    expect(keyfold(['init', '--provider', 'vault-transit', '--key-id', 'k']).stderr).toContain(
      '--key-id applies to --provider aws-kms or azure-kv only',
    );
    expect(keyfold(['init', '--provider', 'env', '--endpoint', 'https://kms.example']).stderr).toContain(
      '--endpoint applies to --provider aws-kms or gcp-kms only',
    );
    expect(keyfold(['init', '--kdf', 'scrypt', '--prefix', 'APP_KEK_V']).stderr).toContain('--prefix applies to the env provider only');
    expect(keyfold(['init', '--provider', 'vault-transit', '--key-id', 'k']).status).toBe(2);
    expect(keyfold(['init', '--provider', 'aws-kms']).stderr).toContain('--provider aws-kms needs --key-id');
  });

  it('-h works like --help, even next to other flags', () => {
    const r = keyfold(['encrypt', '--armor', '-h']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('keyfold encrypt');
  });

  it('--version prints the package version, and JSON with --json', () => {
    const r = keyfold(['--version']);
    expect(r.status).toBe(0);
    expect(r.out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const j = keyfold(['--version', '--json']);
    expect(JSON.parse(j.out)).toEqual({ version: r.out.trim() });
  });

  it('an unknown flag is a usage error: exit 2, message and code on stderr', () => {
    const r = keyfold(['encrypt', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("keyfold: Unknown option '--bogus' [USAGE]");
    expect(r.stderr).toContain("keyfold help encrypt");
    expect(r.out).toBe('');
  });

  it('an unknown command is a usage error with a suggestion', () => {
    const r = keyfold(['encrpyt']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'encrpyt'; did you mean 'encrypt'?");
  });

  it('a stray positional argument, a missing option value and a missing subcommand are usage errors', () => {
    expect(keyfold(['status', 'extra']).status).toBe(2);
    expect(keyfold(['encrypt', '--in']).status).toBe(2);
    expect(keyfold(['provider']).status).toBe(2);
    expect(keyfold(['provider', 'probes']).status).toBe(2);
    expect(keyfold(['help', 'nope']).status).toBe(2);
  });

  it('with --json a usage error is one JSON document on stdout', () => {
    const r = keyfold(['status', '--json', '--bogus']);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.out)).toEqual({ error: { code: 'USAGE', message: "Unknown option '--bogus'" } });
  });

  it('prints no colour when output is not a terminal, even without NO_COLOR', () => {
    const r = keyfold(['--help'], { env: { NO_COLOR: undefined } });
    expect(r.out).not.toContain('\u001b[');
  });
});
