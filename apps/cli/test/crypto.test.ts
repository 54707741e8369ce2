import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir, type RunOptions } from './helpers.js';

let work: string;
let dir: string;
const env = (): Record<string, string> => ({ KEYFOLD_PASSPHRASE: PASSPHRASE, KEYFOLD_DIR: dir });
const run = (args: string[], options: RunOptions = {}) =>
  keyfold(args, { cwd: work, ...options, env: { ...env(), ...options.env } });

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = keyfold(['init'], { cwd: work, env: env() });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => removeDir(work));

/** Files in `work` whose name marks a temporary output file. */
function tempFiles(): string[] {
  return readdirSync(work).filter((f) => f.includes('keyfold-tmp'));
}

describe('encrypt / decrypt round trips', () => {
  it('binary, files, multi-frame (200 KiB of random bytes)', () => {
    const data = randomBytes(200 * 1024 + 17);
    writeFileSync(join(work, 'plain.bin'), data);
    const e = run(['encrypt', '--in', 'plain.bin', '--out', 'plain.kf', '--context', 'tenant=acme', '-c', 'table=users']);
    expect(e.status, e.stderr).toBe(0);
    expect(e.out).toContain('sealed plain.bin -> plain.kf');
    const sealed = readFileSync(join(work, 'plain.kf'));
    expect(sealed.subarray(0, 2).toString('latin1')).toBe('KF');
    expect(sealed.includes(data.subarray(0, 64))).toBe(false);
    const d = run(['decrypt', '--in', 'plain.kf', '--out', 'plain.out', '--context', 'table=users', '--context', 'tenant=acme']);
    expect(d.status, d.stderr).toBe(0);
    expect(readFileSync(join(work, 'plain.out')).equals(data)).toBe(true);
    expect(statSync(join(work, 'plain.out')).mode & 0o777).toBe(0o600);
    expect(tempFiles()).toEqual([]);
  });

  it('binary, stdin to stdout, and decrypt without --context accepts any stored context', () => {
    const data = randomBytes(5000);
    const e = run(['encrypt', '-c', 'k=v'], { input: data });
    expect(e.status, e.stderr).toBe(0);
    expect(e.stderr).toBe('');
    const d = run(['decrypt'], { input: e.stdout });
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout.equals(data)).toBe(true);
  });

  it("armored, stdin to stdout: one 'kf1.' line that decrypt detects (with surrounding whitespace)", () => {
    const e = run(['encrypt', '--armor', '--context', 'app=billing'], { input: 'db-password' });
    expect(e.status, e.stderr).toBe(0);
    expect(e.out).toMatch(/^kf1\.[A-Za-z0-9_-]+\n$/);
    const d = run(['decrypt', '--context', 'app=billing'], { input: `\n  ${e.out}\n` });
    expect(d.status, d.stderr).toBe(0);
    expect(d.out).toBe('db-password');
  });

  it('armored, files', () => {
    writeFileSync(join(work, 'secret.txt'), 'line one\nline two\n');
    expect(run(['encrypt', '-a', '-i', 'secret.txt', '-o', 'secret.kf1']).status).toBe(0);
    expect(readFileSync(join(work, 'secret.kf1'), 'utf8')).toMatch(/^kf1\./);
    const d = run(['decrypt', '-i', 'secret.kf1', '-o', 'secret.out']);
    expect(d.status, d.stderr).toBe(0);
    expect(readFileSync(join(work, 'secret.out'), 'utf8')).toBe('line one\nline two\n');
  });

  it('empty plaintext round-trips', () => {
    const e = run(['encrypt'], { input: '' });
    expect(e.status, e.stderr).toBe(0);
    const d = run(['decrypt'], { input: e.stdout });
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout.length).toBe(0);
  });

  it('--json reports the result and requires --out FILE', () => {
    writeFileSync(join(work, 'j.txt'), 'json please');
    const e = run(['encrypt', '--in', 'j.txt', '--out', 'j.kf', '--json']);
    expect(e.status, e.stderr).toBe(0);
    expect(JSON.parse(e.out)).toMatchObject({ ok: true, in: 'j.txt', out: 'j.kf', armor: false, plaintextBytes: 11 });
    const d = run(['decrypt', '--in', 'j.kf', '--out', 'j.out', '--json']);
    expect(JSON.parse(d.out)).toMatchObject({ ok: true, armored: false, plaintextBytes: 11 });
    const bad = run(['decrypt', '--in', 'j.kf', '--json']);
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.out).error.code).toBe('USAGE');
  });
});

describe('refusals', () => {
  let sealedPath: string;
  beforeAll(() => {
    writeFileSync(join(work, 'r.bin'), randomBytes(150 * 1024));
    const e = run(['encrypt', '-i', 'r.bin', '-o', 'r.kf', '-c', 'tenant=acme']);
    expect(e.status, e.stderr).toBe(0);
    sealedPath = join(work, 'r.kf');
  });

  it('a different --context: exit 3 CONTEXT_MISMATCH, no output file', () => {
    const r = run(['decrypt', '-i', 'r.kf', '-o', 'ctx.out', '-c', 'tenant=globex']);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[CONTEXT_MISMATCH]');
    expect(existsSync(join(work, 'ctx.out'))).toBe(false);
    // A subset of the stored context is a mismatch too.
    expect(run(['decrypt', '-i', 'r.kf', '-o', 'ctx.out', '-c', 'tenant=acme', '-c', 'extra=1']).status).toBe(3);
  });

  it('a tampered byte in the last frame: exit 3 DECRYPT_FAILED, no output file and no temporary file left', () => {
    const bytes = readFileSync(sealedPath);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0x01;
    writeFileSync(join(work, 'tampered.kf'), bytes);
    writeFileSync(join(work, 'existing.out'), 'previous contents');
    for (const out of ['tampered.out', 'existing.out']) {
      const r = run(['decrypt', '-i', 'tampered.kf', '-o', out]);
      expect(r.status).toBe(3);
      expect(r.stderr).toContain('keyfold: decryption failed [DECRYPT_FAILED]');
    }
    expect(existsSync(join(work, 'tampered.out'))).toBe(false);
    expect(readFileSync(join(work, 'existing.out'), 'utf8')).toBe('previous contents');
    expect(tempFiles()).toEqual([]);
  });

  it('a tampered header, a truncated envelope and a tampered armor are refused with exit 3', () => {
    const bytes = readFileSync(sealedPath);
    const header = Buffer.from(bytes);
    header[10] = header[10]! ^ 0x01;
    writeFileSync(join(work, 'h.kf'), header);
    expect(run(['decrypt', '-i', 'h.kf', '-o', 'h.out']).status).toBe(3);
    writeFileSync(join(work, 't.kf'), bytes.subarray(0, bytes.length - 10));
    expect(run(['decrypt', '-i', 't.kf', '-o', 't.out']).status).toBe(3);
    expect(existsSync(join(work, 't.out'))).toBe(false);

    const armored = run(['encrypt', '--armor'], { input: 'armored secret' }).out.trim();
    const i = armored.length - 10;
    const flipped = armored.slice(0, i) + (armored[i] === 'A' ? 'B' : 'A') + armored.slice(i + 1);
    const r = run(['decrypt'], { input: flipped });
    expect(r.status).toBe(3);
    expect(r.out).toBe('');
  });

  it('input that is not an envelope: exit 3 FORMAT_INVALID', () => {
    const r = run(['decrypt'], { input: 'hello, not an envelope' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[FORMAT_INVALID]');
    expect(run(['decrypt'], { input: '' }).status).toBe(3);
  });

  it('a wrong passphrase: exit 3 WRONG_PASSPHRASE, and the passphrase is never printed', () => {
    const wrong = 'not the passphrase at all';
    const r = run(['decrypt', '-i', 'r.kf', '-o', 'wp.out'], { env: { KEYFOLD_PASSPHRASE: wrong } });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[WRONG_PASSPHRASE]');
    expect(r.stderr).not.toContain(wrong);
    expect(existsSync(join(work, 'wp.out'))).toBe(false);
  });

  it('decrypt without a passphrase source is a usage error naming KEYFOLD_PASSPHRASE', () => {
    const r = run(['decrypt', '-i', 'r.kf'], { env: { KEYFOLD_PASSPHRASE: undefined } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('set KEYFOLD_PASSPHRASE');
  });

  it('a missing input file is an I/O failure (exit 1); a bad --context is a usage error (exit 2)', () => {
    const r = run(['encrypt', '-i', 'does-not-exist', '-o', 'x.kf']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[IO_ERROR]');
    expect(run(['encrypt', '-c', 'novalue'], { input: 'x' }).status).toBe(2);
    expect(run(['encrypt', '-c', '=v'], { input: 'x' }).status).toBe(2);
    expect(run(['encrypt', '-c', 'a=1', '-c', 'a=2'], { input: 'x' }).status).toBe(2);
  });
});

describe('inspect', () => {
  it('shows the header of a binary envelope without a passphrase or any configuration', () => {
    writeFileSync(join(work, 'i.txt'), 'x'.repeat(70_000));
    expect(run(['encrypt', '-i', 'i.txt', '-o', 'i.kf', '-c', 'tenant=acme', '-c', 'table=users']).status).toBe(0);
    const size = statSync(join(work, 'i.kf')).size;
    const noKeys = { KEYFOLD_PASSPHRASE: undefined, KEYFOLD_DIR: join(work, 'nowhere') };
    const r = run(['inspect', '--in', 'i.kf', '--json'], { env: noKeys });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.out);
    expect(info).toMatchObject({
      formatVersion: 1,
      framed: true,
      frameSize: 65536,
      context: { tenant: 'acme', table: 'users' },
      armored: false,
    });
    expect(info.wrappedKeys).toHaveLength(1);
    expect(info.wrappedKeys[0].kind).toBe('file');
    expect(info.headerLength + info.bodyLength).toBe(size);
    // The same from stdin (body counted while streaming), and as text.
    const fromStdin = run(['inspect', '--json'], { env: noKeys, input: readFileSync(join(work, 'i.kf')) });
    expect(JSON.parse(fromStdin.out)).toEqual(info);
    const text = run(['inspect', '-i', 'i.kf'], { env: noKeys });
    expect(text.out).toContain('table=users, tenant=acme');
    expect(text.out).toContain('framed, 65,536-byte frames');
  });

  it('shows the header of an armored envelope', () => {
    const armored = run(['encrypt', '--armor', '-c', 'app=x'], { input: 'abc' }).out;
    const r = run(['inspect', '--json'], { env: { KEYFOLD_PASSPHRASE: undefined }, input: armored });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ armored: true, context: { app: 'x' } });
  });

  it('escapes control characters from the (untrusted) header in text output', () => {
    const sealed = run(['encrypt', '-c', 'note=\u001b[31mred'], { input: 'x' });
    expect(sealed.status, sealed.stderr).toBe(0);
    const r = run(['inspect'], { input: sealed.stdout });
    expect(r.status).toBe(0);
    expect(r.out).not.toContain('\u001b');
    expect(r.out).toContain('note=\\u001b[31mred');
  });

  it('refuses garbage with exit 3 FORMAT_INVALID', () => {
    const r = run(['inspect'], { input: randomBytes(100) });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('[FORMAT_INVALID]');
  });
});
