/**
 * `keyfold secrets edit FILE`: decrypt into a private temporary file, run the editor, re-encrypt (unchanged values
 * keep their ciphertext). The temporary directory (0700) and file (0600) are overwritten with zeros and removed in
 * every case: success, editor failure, invalid result, SIGTERM/SIGHUP, and process exit.
 *
 * The editor (and whatever it starts: plugins, language servers, a shell) gets keyfold's environment without the
 * Keyfold credential variables (`credential-env.ts`): it edits one file's values and needs no root key.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fsyncSync, lstatSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { decryptSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { CliError, errorCodeFor } from '../exit-codes.js';
import { MAX_SECRETS_FILE_BYTES, readTextFile } from '../input-limits.js';
import { childEnvironment, encryptText, formatOf, positionalArgs, readText, replaceFile, withFileProviders } from './secrets-common.js';

/** Overwrites every regular file under `dir` with zeros, then removes `dir`. Synchronous: usable in signal handlers. */
export function wipeDir(dir: string): void {
  const wipe = (path: string): void => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) wipe(join(path, name));
      return;
    }
    if (!st.isFile() || st.size === 0) return;
    try {
      const fd = openSync(path, 'r+');
      try {
        const zeros = Buffer.alloc(Math.min(st.size, 1 << 20));
        for (let off = 0; off < st.size; off += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, st.size - off), off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // Removed below regardless.
    }
  };
  wipe(dir);
  rmSync(dir, { recursive: true, force: true });
}

function runEditor(
  editor: string,
  path: string,
  env: NodeJS.ProcessEnv,
  started: (child: ChildProcess) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolvePromise, reject) => {
    // Through the shell, so EDITOR may carry arguments (`code --wait`); the path is passed as $1, never interpolated.
    const child = spawn('/bin/sh', ['-c', `${editor} "$1"`, 'keyfold-editor', path], { stdio: 'inherit', env });
    started(child);
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal }));
  });
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const content = await readText(file);
  const editor = [ctx.env.EDITOR, ctx.env.VISUAL].find((e) => e !== undefined && e.trim() !== '') ?? 'vi';

  const result = await withFileProviders(ctx, file, content, format, async (providers, pool) => {
    const plain = await decryptSecrets(content, { format, providers });
    const base = ctx.env.TMPDIR !== undefined && ctx.env.TMPDIR !== '' ? ctx.env.TMPDIR : tmpdir();
    let dir: string | undefined;
    let cleaned = false;
    let editorProcess: ChildProcess | undefined;
    const cleanup = (): void => {
      if (cleaned || dir === undefined) return;
      cleaned = true;
      wipeDir(dir);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      editorProcess?.kill('SIGTERM');
      cleanup();
      process.exit(signal === 'SIGHUP' ? 129 : 143);
    };
    // Ctrl-C goes to the editor (same process group); keyfold ignores it while the editor runs.
    const onInterrupt = (): void => undefined;
    // Handlers first, so no signal can end the process between creating the directory and watching for signals.
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    process.on('SIGINT', onInterrupt);
    process.on('exit', cleanup);
    try {
      dir = mkdtempSync(join(base, 'keyfold-edit-')); // mode 0700
      const tempFile = join(dir, basename(file));
      await writeFile(tempFile, plain, { mode: 0o600, flag: 'wx' });
      const { code, signal } = await runEditor(editor, tempFile, await childEnvironment(ctx, file, pool), (child) => {
        editorProcess = child;
      });
      if (code !== 0) {
        throw new CliError('EDIT_FAILED', `the editor ${signal === null ? `exited with status ${code}` : `was killed by ${signal}`}; ${file} was not changed`);
      }
      const edited = await readTextFile(tempFile, MAX_SECRETS_FILE_BYTES, `${file} was not changed`);
      if (edited === plain) return 'unchanged' as const;
      let encrypted: string;
      try {
        encrypted = await encryptText(ctx, file, edited, format, providers, content);
      } catch (err) {
        if (errorCodeFor(err) !== 'FORMAT_INVALID') throw err;
        // The parser's message may quote the edited text: do not print it.
        throw new CliError('EDIT_FAILED', `the edited file is not a valid ${format} file; ${file} was not changed`);
      }
      await replaceFile(file, encrypted);
      return 'changed' as const;
    } finally {
      cleanup();
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGHUP', onSignal);
      process.removeListener('SIGINT', onInterrupt);
      process.removeListener('exit', cleanup);
    }
  });
  ctx.out.result({ file, changed: result === 'changed' }, () => (result === 'changed' ? `re-encrypted ${file}` : `no changes to ${file}`));
  return undefined;
}
