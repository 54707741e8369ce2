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
import { printable } from '../output.js';
import { childEnvironment, formatOf, positionalArgs, readText, withFileProviders } from './secrets-common.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The environment variable name of a dotted path: every character other than A-Z a-z 0-9 _ becomes `_`. */
export function envName(path: string): string {
  return path.replace(/[^A-Za-z0-9_]/g, '_');
}

/**
 * The environment variables of the file's values, refused (before anything runs) when one cannot be passed as it
 * is: an empty name, two paths that map to the same name (the child would silently get one of them), or a NUL
 * character (no environment can hold one; Node's own error would quote the value). Messages name paths, never values.
 * @throws CliError UNSUPPORTED.
 */
function toEnvironment(values: Iterable<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  const from = new Map<string, string>();
  for (const [path, value] of values) {
    const name = envName(path);
    if (name === '') throw new CliError('UNSUPPORTED', 'a value of the file has an empty name: it cannot be an environment variable; nothing was run');
    const other = from.get(name);
    if (other !== undefined) {
      throw new CliError(
        'UNSUPPORTED',
        `${printable(other)} and ${printable(path)} would both be the environment variable ${printable(name)}; rename one. Nothing was run`,
      );
    }
    if (value.includes('\0')) {
      throw new CliError('UNSUPPORTED', `the value of ${printable(path)} contains a NUL character, which an environment variable cannot hold; nothing was run`);
    }
    from.set(name, path);
    out[name] = value;
  }
  return out;
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
    let secrets: Record<string, string>;
    try {
      secrets = toEnvironment([...store.keys()].map((key) => [key, store.get(key) ?? ''] as const));
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
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(command, args, { stdio: 'inherit', env });
    } catch (err) {
      // Node's message may quote the environment (secret values): only its code goes out.
      reject(new CliError('IO_ERROR', `cannot run ${JSON.stringify(command)}: ${(err as NodeJS.ErrnoException).code ?? 'spawn failed'}`));
      return;
    }
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
