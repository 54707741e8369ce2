/**
 * Issue 13, item 1: every command that writes data to stdout ends a refusal like `--out FILE` does: the documented
 * exit code and one `keyfold: ... [CODE]` line, never a Node stack trace. And a reader that closes the pipe early
 * (`keyfold decrypt | head -c1`) is IO_ERROR (exit 1), one line: the output was not delivered in full.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './helpers.js';
import { installation, KEK_ENV, makeEnvelopes, oneCodedLine, runChild, tempFiles, type Envelopes } from './output-paths.js';

let work: string;
let run: ReturnType<typeof installation>;
let envelopes: Envelopes;

beforeAll(() => {
  work = makeTempDir();
  run = installation(work);
  envelopes = makeEnvelopes(work, run);
});
afterAll(() => removeDir(work));

describe('decrypt refusals end the same on stdout as with --out', () => {
  const cases: { name: string; args: () => string[]; code: string; status: number }[] = [
    { name: 'wrong --context (binary)', args: () => ['--in', envelopes.good, '--context', 'app=other'], code: 'CONTEXT_MISMATCH', status: 3 },
    { name: 'wrong --context (armored)', args: () => ['--in', envelopes.armored, '--context', 'app=other'], code: 'CONTEXT_MISMATCH', status: 3 },
    { name: 'a tenant envelope without --tenant', args: () => ['--in', envelopes.tenant], code: 'NO_PROVIDER', status: 1 },
    { name: 'a flipped byte in the last frame', args: () => ['--in', envelopes.flippedLastFrame], code: 'DECRYPT_FAILED', status: 3 },
    { name: 'a truncated envelope', args: () => ['--in', envelopes.truncated], code: 'DECRYPT_FAILED', status: 3 },
  ];
  for (const c of cases) {
    it(`${c.name}: exit ${c.status}, one [${c.code}] line, on stdout and with --out`, () => {
      const toStdout = run(['decrypt', ...c.args()]);
      expect(oneCodedLine(toStdout.stderr)).toBe(c.code);
      expect(toStdout.status).toBe(c.status);

      const toFile = run(['decrypt', ...c.args(), '--out', 'refused.out']);
      expect(oneCodedLine(toFile.stderr)).toBe(c.code);
      expect(toFile.status).toBe(c.status);
      expect(existsSync(join(work, 'refused.out'))).toBe(false);
      expect(tempFiles(work)).toEqual([]);
    });
  }

  it('armored input from stdin refused for its context: exit 3, one line', () => {
    const r = run(['decrypt', '--context', 'app=other'], { input: readFileSync(join(work, envelopes.armored)) });
    expect(oneCodedLine(r.stderr)).toBe('CONTEXT_MISMATCH');
    expect(r.status).toBe(3);
  });
});

describe('other commands that write to stdout', () => {
  it('encrypt to stdout with an unknown tenant: one coded line, exit 1', () => {
    const r = run(['encrypt', '--tenant', 'nobody', '--in', 'plain.bin']);
    oneCodedLine(r.stderr);
    expect(r.status).toBe(1);
    expect(r.stdout.length).toBe(0);
  });

  it('inspect of a cut-off header: one coded line, exit 3', () => {
    const r = run(['inspect'], { input: readFileSync(join(work, envelopes.good)).subarray(0, 12) });
    expect(oneCodedLine(r.stderr)).toBe('FORMAT_INVALID');
    expect(r.status).toBe(3);
  });

  it('secrets decrypt of a tampered file to stdout: one coded line, exit 3, nothing printed', () => {
    writeFileSync(join(work, 'app.env'), 'DB_PASSWORD=hunter2\n');
    expect(run(['secrets', 'encrypt', 'app.env', '--in-place']).status).toBe(0);
    const sealed = readFileSync(join(work, 'app.env'), 'utf8');
    writeFileSync(join(work, 'app.env'), sealed.replace(/ENC\[kf1,([A-Za-z0-9_-])/, (_, c: string) => `ENC[kf1,${c === 'A' ? 'B' : 'A'}`));
    const r = run(['secrets', 'decrypt', 'app.env']);
    oneCodedLine(r.stderr);
    expect(r.status).toBe(3);
    expect(r.out).toBe('');
  });
});

describe('a reader that closes stdout early (| head -c1)', () => {
  const env = (): Record<string, string> => ({ ...KEK_ENV, KEYFOLD_DIR: join(work, 'kf') });

  it('decrypt: exit 1, one IO_ERROR line naming the closed pipe', async () => {
    const r = await runChild(['decrypt', '--in', envelopes.good], { cwd: work, env: env(), closeStdoutEarly: true });
    expect(oneCodedLine(r.stderr)).toBe('IO_ERROR');
    expect(r.stderr).toContain('stdout');
    expect(r.status).toBe(1);
  });

  it('decrypt of armor: exit 1, one IO_ERROR line', async () => {
    const r = await runChild(['decrypt', '--in', envelopes.armored], { cwd: work, env: env(), closeStdoutEarly: true });
    expect(oneCodedLine(r.stderr)).toBe('IO_ERROR');
    expect(r.status).toBe(1);
  });

  it('encrypt: exit 1, one IO_ERROR line', async () => {
    const r = await runChild(['encrypt', '--in', 'plain.bin'], { cwd: work, env: env(), closeStdoutEarly: true });
    expect(oneCodedLine(r.stderr)).toBe('IO_ERROR');
    expect(r.status).toBe(1);
  });

  it('secrets decrypt of a 2 MB file (more than the pipe holds): exit 1, one IO_ERROR line', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `VALUE_${i}=${'x'.repeat(50_000)}`).join('\n');
    writeFileSync(join(work, 'big.env'), `${lines}\n`);
    expect(run(['secrets', 'encrypt', 'big.env', '--in-place']).status).toBe(0);
    const r = await runChild(['secrets', 'decrypt', 'big.env'], { cwd: work, env: env(), closeStdoutEarly: true });
    expect(oneCodedLine(r.stderr)).toBe('IO_ERROR');
    expect(r.status).toBe(1);
  });

  it('a reader that reads everything: exit 0, nothing on stderr', async () => {
    const r = await runChild(['decrypt', '--in', envelopes.good], { cwd: work, env: env() });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.equals(envelopes.plaintext)).toBe(true);
  });
});
