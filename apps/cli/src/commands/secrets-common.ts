/**
 * Shared by the `keyfold secrets ...` commands: the FILE argument, its format, reading it, opening the configured
 * provider, and rewriting FILE atomically (temporary file in the same directory + rename, original mode kept).
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { KeyProvider } from '@keyfold/envelope-core';
import { encryptSecrets, findRulesFile, formatFromFileName, inspectSecrets, type RulesFile, type SecretsFormat } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { withProvider } from '../config.js';
import { UsageError } from '../exit-codes.js';
import { AtomicFile, ioError, writeAll } from '../io.js';
import { printable } from '../output.js';

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

export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw ioError('read', path, err);
  }
}

/** Runs `fn` with the configured provider (closed afterwards). */
export function withProviders<T>(ctx: CommandContext, fn: (providers: KeyProvider[]) => Promise<T>): Promise<T> {
  return withProvider(ctx, (provider) => fn([provider]));
}

/** Replaces `path` with `content` atomically, keeping its permission bits (0600 for a new file). */
export async function replaceFile(path: string, content: string): Promise<void> {
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
  try {
    inspectSecrets(content, { format });
    return true;
  } catch {
    return false;
  }
}

/** The selection options of the `.keyfold.yaml` rules file found from FILE's directory upwards (none: encrypt all). */
export async function rulesFor(file: string): Promise<RulesFile | undefined> {
  return (await findRulesFile(dirname(file)))?.rules;
}

/**
 * Encrypts `plain` (FILE's new plaintext) with `previous` (FILE's current encrypted text, if any) so unchanged values
 * keep their ciphertext. Warnings go to stderr (paths only, never values).
 */
export async function encryptText(
  ctx: CommandContext,
  file: string,
  plain: string,
  format: SecretsFormat,
  providers: KeyProvider[],
  previous: string | undefined,
): Promise<string> {
  const rules = await rulesFor(file);
  const result = await encryptSecrets(plain, {
    format,
    providers,
    ...(rules === undefined ? {} : rules),
    ...(previous === undefined ? {} : { previous }),
  });
  for (const w of result.warnings) ctx.out.note(`warning: ${printable(w.path)}: ${printable(w.message)}`);
  return result.content;
}
