/**
 * Behaviour on a real terminal: the hidden passphrase prompt and colour. The binary runs under util-linux
 * `script`, which gives it a pseudo-terminal; the test answers each prompt only after it appeared (so no
 * type-ahead is echoed by the terminal before the CLI turns echo off).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { baseEnv, BIN, keyfold, makeTempDir, removeDir, spawnAsync } from './helpers.js';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs keyfold on a pseudo-terminal; `answers` are typed, in order, each after `prompt` appears once more. */
function onTerminal(args: string[], options: { cwd: string; env?: Record<string, string | undefined>; answers?: string[]; prompt?: string }) {
  const command = [process.execPath, BIN, ...args].map(shellQuote).join(' ');
  const answers = [...(options.answers ?? [])];
  const prompt = options.prompt ?? 'assphrase: ';
  let answered = 0;
  return spawnAsync('script', ['-qfec', command, '/dev/null'], {
    cwd: options.cwd,
    env: baseEnv({ TERM: 'xterm', ...options.env }),
    converse: (output, write) => {
      const prompts = output.split(prompt).length - 1;
      while (answered < prompts && answers.length > 0) {
        answered++;
        write(answers.shift() as string);
      }
    },
  });
}

beforeAll(() => {
  const r = spawnSync('script', ['--version']);
  if (r.error !== undefined || r.status !== 0) {
    throw new Error('these tests need util-linux `script` (a pseudo-terminal for the prompt); install util-linux');
  }
});

let work: string;
beforeEach(() => {
  work = makeTempDir();
});
afterEach(() => removeDir(work));

describe('on a terminal', () => {
  it('init asks for the passphrase twice without echoing it; the keyring opens with it', async () => {
    const secret = 'typed on the terminal 42';
    const r = await onTerminal(['init', '--dir', 'kf'], {
      cwd: work,
      env: { NO_COLOR: '1' },
      answers: [`${secret}\r`, `${secret}\r`],
    });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('Passphrase: ');
    expect(r.output).toContain('Repeat passphrase: ');
    expect(r.output).not.toContain(secret);
    const status = keyfold(['status', '--dir', join(work, 'kf'), '--json'], { env: { KEYFOLD_PASSPHRASE: secret } });
    expect(status.status, status.stderr).toBe(0);
  });

  it('init with two different answers: usage error, nothing written', async () => {
    const r = await onTerminal(['init', '--dir', 'kf'], { cwd: work, env: { NO_COLOR: '1' }, answers: ['one one one\r', 'two two two\r'] });
    expect(r.status).toBe(2);
    expect(r.output).toContain('the two passphrases differ');
    expect(existsSync(join(work, 'kf'))).toBe(false);
  });

  it('Ctrl-C at the prompt: exit 130, nothing written', async () => {
    const r = await onTerminal(['init', '--dir', 'kf'], { cwd: work, env: { NO_COLOR: '1' }, answers: ['\u0003'] });
    expect(r.status).toBe(130);
    expect(r.output).toContain('[INTERRUPTED]');
    expect(existsSync(join(work, 'kf'))).toBe(false);
  });

  it('decrypt prompts for the passphrase when KEYFOLD_PASSPHRASE is unset', async () => {
    const secret = 'prompted passphrase 7';
    expect(keyfold(['init', '--dir', join(work, 'kf')], { env: { KEYFOLD_PASSPHRASE: secret } }).status).toBe(0);
    const sealed = keyfold(['encrypt', '--armor', '--dir', join(work, 'kf')], { env: { KEYFOLD_PASSPHRASE: secret }, input: 'hello tty' });
    expect(sealed.status).toBe(0);
    const envelopeFile = join(work, 'msg.kf1');
    writeFileSync(envelopeFile, sealed.out);
    const r = await onTerminal(['decrypt', '--dir', 'kf', '--in', envelopeFile], {
      cwd: work,
      env: { NO_COLOR: '1' },
      answers: [`${secret}\r`],
    });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('hello tty');
    expect(r.output).not.toContain(secret);
  });

  it('uses colour on a terminal, and none with NO_COLOR', async () => {
    const coloured = await onTerminal(['--help'], { cwd: work, env: { NO_COLOR: undefined } });
    expect(coloured.status).toBe(0);
    expect(coloured.output).toContain('\u001b[1m');
    const plain = await onTerminal(['--help'], { cwd: work, env: { NO_COLOR: '1' } });
    expect(plain.status).toBe(0);
    expect(plain.output).not.toContain('\u001b[');
  });
});
