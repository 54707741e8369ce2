/**
 * Shared by the tests of the data commands' output paths (stdout and `--out FILE`): an installation with the env
 * provider (no passphrase cost per run), envelopes that must be refused, a reader that closes the pipe early, and a
 * run interrupted by a signal in the middle of a write.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { baseEnv, BIN, keyfold, type RunOptions, type RunResult } from './helpers.js';

export const KEK_ENV = { KEYFOLD_KEK_V1: 'c3'.repeat(32) };

/** An installation (env provider + SQLite store) in `work/kf`, and a runner for it. */
export function installation(work: string): (args: readonly string[], options?: RunOptions) => RunResult {
  const dir = join(work, 'kf');
  const r = keyfold(['init', '--provider', 'env', '--dir', dir], { cwd: work, env: KEK_ENV });
  expect(r.status, r.stderr).toBe(0);
  return (args, options = {}) => keyfold(args, { cwd: work, ...options, env: { ...KEK_ENV, KEYFOLD_DIR: dir, ...options.env } });
}

/** Envelopes in `work` that decrypt must open or refuse, by name. */
export interface Envelopes {
  /** 1 MiB of plaintext, sealed as a binary framed envelope with context app=billing (good.kf). */
  readonly plaintext: Buffer;
  readonly good: string;
  readonly armored: string;
  readonly tenant: string;
  readonly flippedLastFrame: string;
  readonly truncated: string;
}

export function makeEnvelopes(work: string, run: ReturnType<typeof installation>): Envelopes {
  const plaintext = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < plaintext.length; i++) plaintext[i] = (i * 7919 + (i >> 9)) & 0xff;
  writeFileSync(join(work, 'plain.bin'), plaintext);
  const ok = (r: RunResult): void => expect(r.status, r.stderr).toBe(0);
  ok(run(['encrypt', '--in', 'plain.bin', '--out', 'good.kf', '--context', 'app=billing']));
  ok(run(['encrypt', '--armor', '--in', 'plain.bin', '--out', 'good.kf1', '--context', 'app=billing']));
  ok(run(['tenant', 'create', '--tenant', 'acme']));
  ok(run(['encrypt', '--tenant', 'acme', '--in', 'plain.bin', '--out', 'tenant.kf']));
  const sealed = readFileSync(join(work, 'good.kf'));
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 0x01;
  writeFileSync(join(work, 'flipped.kf'), flipped);
  writeFileSync(join(work, 'truncated.kf'), sealed.subarray(0, sealed.length - 70_000));
  return {
    plaintext,
    good: 'good.kf',
    armored: 'good.kf1',
    tenant: 'tenant.kf',
    flippedLastFrame: 'flipped.kf',
    truncated: 'truncated.kf',
  };
}

/**
 * Asserts `stderr` is exactly one `keyfold: ... [CODE]` line (no stack trace, nothing else; a usage error adds its
 * `Run 'keyfold help ...' for usage.` hint) and returns CODE.
 */
export function oneCodedLine(stderr: string): string {
  expect(stderr, 'stderr must be one coded line').toMatch(/^keyfold: [^\n]* \[[A-Z_]+\]\n(Run 'keyfold [a-z ]+' for usage\.\n)?$/);
  expect(stderr).not.toMatch(/\n\s+at |Node\.js v|^\s*throw /m);
  const code = (/^keyfold: [^\n]* \[([A-Z_]+)\]\n/.exec(stderr) as RegExpExecArray)[1] as string;
  if (stderr.includes('\nRun ')) expect(code).toBe('USAGE');
  return code;
}

/** Names of temporary output files left in `dir`. */
export function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.keyfold-tmp'));
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface ChildOptions {
  cwd: string;
  env: Record<string, string>;
  /** Written to stdin at start; stdin stays open when `holdStdin` (a slow producer), else it is ended. */
  input?: Buffer;
  holdStdin?: boolean;
  /** Close our end of the child's stdout after its first chunk (a reader like `head -c1`). */
  closeStdoutEarly?: boolean;
  /** Called once `ready()` holds (polled every 20 ms), with the child's pid: send it a signal, say. */
  whenReady?: { ready: (seen: { stdoutBytes: number }) => boolean; then: (pid: number) => void };
}

/** Runs the built binary asynchronously, for what a synchronous spawn cannot do (signals, slow input, closed pipes). */
export function runChild(args: readonly string[], options: ChildOptions): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: baseEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stdoutBytes = 0;
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      out.push(chunk);
      if (options.closeStdoutEarly === true) child.stdout.destroy();
    });
    child.stdout.on('error', () => undefined);
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      if (timer !== undefined) clearInterval(timer);
      resolvePromise({ status, signal, stdout: Buffer.concat(out), stderr: err });
    });
    if (options.input !== undefined) child.stdin.write(options.input);
    if (options.holdStdin !== true) child.stdin.end();
    const when = options.whenReady;
    if (when !== undefined) {
      timer = setInterval(() => {
        if (!when.ready({ stdoutBytes })) return;
        clearInterval(timer);
        timer = undefined;
        when.then(child.pid as number);
        // The signal ended the run; let stdin go so nothing keeps the child alive if it ignored the signal.
        setTimeout(() => child.stdin.end(), 5_000).unref();
      }, 20);
    }
  });
}

/** True once a temporary output file for a target exists in `dir`. */
export function hasTempFile(dir: string): boolean {
  return existsSync(dir) && tempFiles(dir).length > 0;
}
