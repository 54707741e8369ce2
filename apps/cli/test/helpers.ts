/**
 * Test helpers: run the BUILT `keyfold` binary (`dist/bin.js`) as a child process with a controlled environment,
 * in throwaway directories.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = join(CLI_ROOT, 'dist', 'bin.js');

export interface RunResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  /** stdout as UTF-8. */
  out: string;
}

export interface RunOptions {
  cwd?: string;
  /** Added to the base environment (PATH, HOME, TMPDIR, NO_COLOR=1); `undefined` values remove a variable. */
  env?: Record<string, string | undefined>;
  input?: Buffer | string;
  bin?: string;
}

/** The environment children get: nothing KEYFOLD_* from the parent, no colour. */
export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'SYSTEMROOT']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs `node dist/bin.js ...args` to completion. stdin is `input`, or empty (a pipe, never a terminal). */
export function keyfold(args: readonly string[], options: RunOptions = {}): RunResult {
  if (!existsSync(options.bin ?? BIN)) {
    throw new Error(`${options.bin ?? BIN} is missing: build first (turbo run build --filter=@keyfold/cli...)`);
  }
  const r = spawnSync(process.execPath, [options.bin ?? BIN, ...args], {
    cwd: options.cwd ?? CLI_ROOT,
    env: baseEnv(options.env),
    input: options.input ?? '',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8'), out: r.stdout.toString('utf8') };
}

/**
 * Like {@link keyfold} without blocking this process: for tests whose emulators run in this process (a synchronous
 * spawn would stop them from answering the child).
 */
export function keyfoldAsync(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const bin = options.bin ?? BIN;
  if (!existsSync(bin)) return Promise.reject(new Error(`${bin} is missing: build first (turbo run build --filter=@keyfold/cli...)`));
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd ?? CLI_ROOT,
      env: baseEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      const stdout = Buffer.concat(out);
      resolvePromise({ status, stdout, stderr: Buffer.concat(err).toString('utf8'), out: stdout.toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Like {@link keyfold} but asynchronous (for running the binary under `script` with a conversation). */
export function spawnAsync(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; converse?: (output: string, write: (s: string) => void) => void },
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      options.converse?.(output, (s) => child.stdin.write(s));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, output }));
  });
}

/** A fresh temporary directory; remove it with {@link removeDir}. */
export function makeTempDir(prefix = 'keyfold-cli-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const PASSPHRASE = 'correct horse battery staple';
