import { describe, expect, it } from 'vitest';
import { keyfold } from './helpers.js';

const COMMANDS = ['init', 'status', 'provider probe', 'encrypt', 'decrypt', 'inspect', 'demo', 'help'];

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

  it("'provider --help' lists the subcommands", () => {
    const r = keyfold(['provider', '--help']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('probe');
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
