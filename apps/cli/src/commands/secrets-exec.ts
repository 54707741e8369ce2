/**
 * `keyfold secrets exec FILE [--pristine] -- COMMAND [ARGS...]`: runs COMMAND with the decrypted values added to
 * its environment only. keyfold's own `process.env` is never changed; nothing is written to disk.
 * @module
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { loadSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { CliError, UsageError } from '../exit-codes.js';
import { formatOf, positionalArgs, readText, withFileProviders } from './secrets-common.js';

/** The environment variable name of a dotted path: every character other than A-Z a-z 0-9 _ becomes `_`. */
export function envName(path: string): string {
  return path.replace(/[^A-Za-z0-9_]/g, '_');
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE -- COMMAND [ARGS...]');
  const [command, ...args] = ctx.rest ?? [];
  if (command === undefined) throw new UsageError("give the command after '--': keyfold secrets exec FILE -- COMMAND [ARGS...]", ctx.name);
  const format = formatOf(ctx, file);
  const content = await readText(file);
  const secrets = await withFileProviders(ctx, file, content, format, async (providers) => {
    const store = await loadSecrets({ content, format }, { providers, format });
    try {
      const values: Record<string, string> = {};
      for (const key of store.keys()) values[envName(key)] = store.get(key) ?? '';
      return values;
    } finally {
      store.destroy();
    }
  });
  const base: NodeJS.ProcessEnv = ctx.args.flag('pristine') ? (ctx.env.PATH === undefined ? {} : { PATH: ctx.env.PATH }) : { ...ctx.env };
  const env = { ...base, ...secrets };

  return new Promise<number>((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: 'inherit', env });
    // Ctrl-C reaches the child too (same process group): let the child decide; forward termination requests.
    const ignore = (): void => undefined;
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    process.on('SIGHUP', forward);
    const done = (): void => {
      process.removeListener('SIGINT', ignore);
      process.removeListener('SIGTERM', forward);
      process.removeListener('SIGHUP', forward);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(new CliError('IO_ERROR', `cannot run ${JSON.stringify(command)}: ${err.code === 'ENOENT' ? 'command not found' : (err.code ?? err.message)}`));
    });
    child.on('close', (code, signal) => {
      done();
      resolvePromise(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
    });
  });
}
