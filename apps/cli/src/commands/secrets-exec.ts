/**
 * `keyfold secrets exec FILE [--pristine] [--pass-env NAME]... -- COMMAND [ARGS...]`: runs COMMAND with the
 * decrypted values added to its environment only. keyfold's own `process.env` is never changed; nothing is written
 * to disk.
 *
 * Security rule: the child gets the application's secrets, not keyfold's. Every Keyfold credential variable
 * (`credential-env.ts`: the passphrase, KEK variables, PIN variable, database URL and password, Vault and Azure
 * tokens, of the configured directory and of every other configuration the command loaded) is removed from its
 * environment, unless the operator names it with `--pass-env`. The file's own values are added last: a value the
 * file itself holds is what the operator asked to pass.
 * @module
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { loadSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { CliError, UsageError } from '../exit-codes.js';
import { childEnvironment, formatOf, positionalArgs, readText, withFileProviders } from './secrets-common.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The environment variable name of a dotted path: every character other than A-Z a-z 0-9 _ becomes `_`. */
export function envName(path: string): string {
  return path.replace(/[^A-Za-z0-9_]/g, '_');
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE -- COMMAND [ARGS...]');
  const [command, ...args] = ctx.rest ?? [];
  if (command === undefined) throw new UsageError("give the command after '--': keyfold secrets exec FILE -- COMMAND [ARGS...]", ctx.name);
  const passed = new Set(ctx.args.list('pass-env'));
  for (const name of passed) {
    if (!ENV_NAME.test(name)) throw new UsageError(`--pass-env takes the name of an environment variable; got ${JSON.stringify(name)}`, ctx.name);
  }
  const format = formatOf(ctx, file);
  const content = await readText(file);
  const env = await withFileProviders(ctx, file, content, format, async (providers, pool) => {
    const store = await loadSecrets({ content, format }, { providers, format });
    const secrets: Record<string, string> = {};
    try {
      for (const key of store.keys()) secrets[envName(key)] = store.get(key) ?? '';
    } finally {
      store.destroy();
    }
    let base: NodeJS.ProcessEnv;
    if (ctx.args.flag('pristine')) {
      base = ctx.env.PATH === undefined ? {} : { PATH: ctx.env.PATH };
      for (const name of passed) if (ctx.env[name] !== undefined) base[name] = ctx.env[name];
    } else {
      base = await childEnvironment(ctx, file, pool, passed);
    }
    return { ...base, ...secrets };
  });

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
