/**
 * Shared by the `keyfold secrets ...` commands: the FILE argument, its format, reading it, opening the configured
 * provider, and rewriting FILE atomically (temporary file in the same directory + rename, original mode kept).
 * @module
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { KeyProvider } from '@keyfold/envelope-core';
import {
  encryptSecrets,
  findRulesFile,
  formatFromFileName,
  inspectSecrets,
  type KeyGroups,
  type RulesFile,
  type SecretsFileInfo,
  type SecretsFormat,
} from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { withoutCredentials } from '../credential-env.js';
import { UsageError } from '../exit-codes.js';
import { assertSecretsFileSize, MAX_SECRETS_FILE_BYTES, readTextFile } from '../input-limits.js';
import { AtomicFile, withOutput, writeAll } from '../output-sink.js';
import { printable } from '../output.js';
import { ProviderPool, rulesFileDirs, withKeyGroupProviders } from './secrets-key-groups.js';

const FORMATS: readonly SecretsFormat[] = ['dotenv', 'json', 'yaml', 'toml'];

/** The positional arguments, checked against `min`..`max`; the first is FILE (resolved against the cwd). */
export function positionalArgs(ctx: CommandContext, min: number, max: number, names: string): { file: string; rest: string[] } {
  const args = [...(ctx.positionals ?? [])];
  if (args.length < min || args.length > max) {
    throw new UsageError(`expected ${names}, got ${args.length === 0 ? 'nothing' : `${args.length} argument(s)`}`, ctx.name);
  }
  return { file: resolve(ctx.cwd, args[0] as string), rest: args.slice(1) };
}

/** `--format`, else from FILE's name. */
export function formatOf(ctx: CommandContext, file: string): SecretsFormat {
  const given = ctx.args.string('format');
  if (given !== undefined) {
    if (!(FORMATS as readonly string[]).includes(given)) {
      throw new UsageError(`--format must be one of ${FORMATS.join(', ')}; got ${JSON.stringify(given)}`, ctx.name);
    }
    return given as SecretsFormat;
  }
  const detected = formatFromFileName(file);
  if (detected === undefined) {
    throw new UsageError(`cannot tell the format of ${file} from its name: pass --format dotenv|json|yaml|toml`, ctx.name);
  }
  return detected;
}

/**
 * FILE's text, at most {@link MAX_SECRETS_FILE_BYTES} (config files are parsed in memory).
 * @throws LimitExceededError for a larger file; CliError IO_ERROR when it cannot be read.
 */
export async function readText(path: string): Promise<string> {
  return readTextFile(path, MAX_SECRETS_FILE_BYTES, 'secrets files are parsed in memory: keep large data out of config files');
}

/**
 * Writes a whole `secrets` file's text to stdout, through the same guarded sink as every data command (a closed
 * pipe is IO_ERROR, not a crash); refused over {@link MAX_SECRETS_FILE_BYTES} like {@link replaceFile}.
 * @throws LimitExceededError, CliError IO_ERROR.
 */
export async function writeToStdout(ctx: CommandContext, path: string, content: string): Promise<void> {
  assertSecretsFileSize(path, content);
  await withOutput(ctx, undefined, 0o600, (sink) => writeAll(sink, content));
}

/** FILE's metadata (no key access), or undefined when it is not a keyfold-encrypted file. */
export function inspectOrUndefined(content: string, format: SecretsFormat): SecretsFileInfo | undefined {
  try {
    return inspectSecrets(content, { format });
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` with the providers that open FILE (`content`), all closed afterwards; `pool` lets `fn` open more
 * (key groups to seal under). A file with one data key: the configured provider plus those of
 * `--add-provider-dir` (each must open). A key-group file: every provider available here among the configured
 * one, `--add-provider-dir`, `--key-group` and the rules file's `key_groups` (see `withKeyGroupProviders`).
 */
export async function withFileProviders<T>(
  ctx: CommandContext,
  file: string,
  content: string,
  format: SecretsFormat,
  fn: (providers: KeyProvider[], pool: ProviderPool) => Promise<T>,
): Promise<T> {
  const pool = new ProviderPool(ctx);
  try {
    const groups = inspectOrUndefined(content, format)?.keyGroups;
    if (groups !== undefined) return await withKeyGroupProviders(ctx, pool, file, groups, (providers) => fn(providers, pool));
    const providers = [await pool.open(ctx.dir)];
    for (const dir of ctx.args.list('add-provider-dir')) {
      const p = await pool.open(dir);
      if (!providers.includes(p)) providers.push(p);
    }
    return await fn(providers, pool);
  } finally {
    await pool.close();
  }
}

/**
 * Replaces `path` with `content` atomically, keeping its permission bits (0600 for a new file).
 * @throws LimitExceededError when `content` is over {@link MAX_SECRETS_FILE_BYTES} (nothing written).
 */
export async function replaceFile(path: string, content: string): Promise<void> {
  assertSecretsFileSize(path, content);
  let mode = 0o600;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    // New file: private by default.
  }
  const file = await AtomicFile.create(path, mode);
  try {
    await writeAll(file.stream(), content);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** True when `content` already carries keyfold metadata (an encrypted file). */
export function isEncrypted(content: string, format: SecretsFormat): boolean {
  return inspectOrUndefined(content, format) !== undefined;
}

/** The selection options of the `.keyfold.yaml` rules file found from FILE's directory upwards (none: encrypt all). */
export async function rulesFor(file: string): Promise<RulesFile | undefined> {
  return (await findRulesFile(dirname(file)))?.rules;
}

/**
 * Encrypts `plain` (FILE's new plaintext) with `previous` (FILE's current encrypted text, if any) so unchanged values
 * keep their ciphertext (and its data key, key groups included); without `previous`, a new data key is sealed under
 * `keyGroups` when given, else under `providers`. Warnings go to stderr (paths only, never values).
 */
export async function encryptText(
  ctx: CommandContext,
  file: string,
  plain: string,
  format: SecretsFormat,
  providers: KeyProvider[],
  previous: string | undefined,
  keyGroups?: KeyGroups,
): Promise<string> {
  const rules = await rulesFor(file);
  const result = await encryptSecrets(plain, {
    format,
    providers,
    ...(rules === undefined ? {} : { rules: rules.rules }),
    ...(rules?.unencryptedSuffix === undefined ? {} : { unencryptedSuffix: rules.unencryptedSuffix }),
    ...(previous === undefined ? {} : { previous }),
    ...(keyGroups === undefined || previous !== undefined ? {} : { keyGroups }),
  });
  for (const w of result.warnings) ctx.out.note(`warning: ${printable(w.path)}: ${printable(w.message)}`);
  return result.content;
}

/**
 * The environment for a child process of a `secrets` command (`exec`'s command, `edit`'s editor): keyfold's own
 * without any Keyfold credential variable (see `credential-env.ts`) except those named in `keep`. The credential
 * variables are those of every configuration `pool` loaded (the configured directory, --add-provider-dir, key
 * groups) and of the key groups of FILE's rules file, which may name installations whose variables are set here
 * even when FILE does not use them.
 */
export async function childEnvironment(
  ctx: CommandContext,
  file: string,
  pool: ProviderPool,
  keep: ReadonlySet<string> = new Set(),
): Promise<NodeJS.ProcessEnv> {
  for (const dir of await rulesFileDirs(file).catch(() => [])) await pool.config(dir).catch(() => undefined);
  const { credentialVariablesOf } = await import('../providers/registry.js');
  return withoutCredentials(ctx.env, await credentialVariablesOf(pool.configs()), keep);
}
