/**
 * `keyfold secrets set FILE PATH [VALUE|--stdin|--from-file F]` and `keyfold secrets unset FILE PATH`: change one
 * value of an encrypted .env, JSON, YAML or TOML file (decrypt, change the plaintext, re-encrypt with the old file as
 * `previous` so the other values keep their ciphertext). YAML goes through the `yaml` Document API (comments kept);
 * TOML is edited in place (a change that needs more than that, say inside an array, exits UNSUPPORTED: use `edit`).
 * @module
 */
import { decryptSecrets, editTomlText, editYamlText, FormatError, type SecretsFormat } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { CliError, UsageError } from '../exit-codes.js';
import { MAX_SECRETS_FILE_BYTES, readBounded, readTextFile } from '../input-limits.js';
import { encryptText, formatOf, positionalArgs, readText, replaceFile, withFileProviders } from './secrets-common.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** A .env value in the form that reads back as `value`: bare when safe, else double-quoted with escapes. */
function dotenvValue(value: string): string {
  if (/^[A-Za-z0-9_./:@+,=-]*$/.test(value)) return value;
  const escaped = value.replace(/[\\"$\n\r\t]/g, (c) => ({ '\\': '\\\\', '"': '\\"', $: '\\$', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] ?? c);
  return `"${escaped}"`;
}

/** Index range [start, end) of the lines holding `name`'s assignment (a quoted value may span lines), or undefined. */
function findDotenv(lines: readonly string[], name: string): [number, number] | undefined {
  const re = new RegExp(`^\\s*(?:export\\s+)?${name.replace(/[.-]/g, (c) => `\\${c}`)}\\s*=\\s*(.*)$`);
  for (let i = 0; i < lines.length; i++) {
    const m = re.exec(lines[i] as string);
    if (m === null) continue;
    const rest = m[1] as string;
    const quote = rest[0];
    if (quote !== '"' && quote !== "'") return [i, i + 1];
    const closes = (text: string, from: number): boolean => {
      for (let j = from; j < text.length; j++) {
        if (quote === '"' && text[j] === '\\') {
          j++;
          continue;
        }
        if (text[j] === quote) return true;
      }
      return false;
    };
    if (closes(rest, 1)) return [i, i + 1];
    for (let k = i + 1; k < lines.length; k++) if (closes(lines[k] as string, 0)) return [i, k + 1];
    return [i, lines.length];
  }
  return undefined;
}

function changeDotenv(text: string, name: string, value: string | undefined): string {
  if (!ENV_NAME.test(name)) throw new UsageError(`${JSON.stringify(name)} is not a valid .env name`, 'secrets set');
  const lines = text.split('\n');
  const found = findDotenv(lines, name);
  if (value === undefined) {
    if (found === undefined) throw new CliError('IO_ERROR', `there is no ${name} to unset`);
    lines.splice(found[0], found[1] - found[0]);
    return lines.join('\n');
  }
  const line = `${name}=${dotenvValue(value)}`;
  if (found !== undefined) {
    const prefix = /^\s*export\s+/.test(lines[found[0]] as string) ? 'export ' : '';
    lines.splice(found[0], found[1] - found[0], `${prefix}${line}`);
    return lines.join('\n');
  }
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.splice(lines.length - 1, 0, line);
  else lines.push(line);
  return lines.join('\n');
}

function changeJson(text: string, path: string, value: string | undefined): string {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    throw new CliError('IO_ERROR', 'the decrypted JSON does not parse');
  }
  const segments = path.split('.');
  let node = root as Record<string, unknown>;
  for (const seg of segments.slice(0, -1)) {
    const next = node[seg];
    if (next === undefined && value !== undefined) node[seg] = {};
    else if (next === null || typeof next !== 'object') throw new CliError('IO_ERROR', `${JSON.stringify(path)} does not lead to an object`);
    node = node[seg] as Record<string, unknown>;
  }
  const last = segments[segments.length - 1] as string;
  if (value === undefined) {
    if (!Object.prototype.hasOwnProperty.call(node, last)) throw new CliError('IO_ERROR', `there is no ${path} to unset`);
    delete node[last];
  } else {
    node[last] = value;
  }
  const indent = /^[{[]\r?\n([ \t]+)/.exec(text)?.[1] ?? '  ';
  return `${JSON.stringify(root, null, indent)}${text.endsWith('\n') ? '\n' : ''}`;
}

function change(format: SecretsFormat, text: string, path: string, value: string | undefined, command: string): string {
  if (path === '' || path === 'keyfold' || path.startsWith('keyfold.') || path.startsWith('KEYFOLD_SECRETS_')) {
    throw new UsageError(`${JSON.stringify(path)} is reserved or empty`, command);
  }
  if (format === 'dotenv') return changeDotenv(text, path, value);
  if (format === 'json') return changeJson(text, path, value);
  return changeStructured(format, text, path, value);
}

/** YAML and TOML, through the @keyfold/secrets editors; a path they cannot change is an error, not a bad file. */
function changeStructured(format: 'yaml' | 'toml', text: string, path: string, value: string | undefined): string {
  let changed: string | undefined;
  try {
    changed = format === 'yaml' ? editYamlText(text, path, value) : editTomlText(text, path, value);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    throw new CliError(err.message.includes("'keyfold secrets edit'") ? 'UNSUPPORTED' : 'IO_ERROR', err.message);
  }
  if (changed === undefined) throw new CliError('IO_ERROR', `there is no ${path} to unset`);
  return changed;
}

const VALUE_ADVICE = 'a secrets value cannot be larger than a secrets file';

async function valueFrom(ctx: CommandContext, positional: string | undefined): Promise<string> {
  const fromFile = ctx.args.string('from-file');
  const sources = [positional !== undefined, ctx.args.flag('stdin'), fromFile !== undefined].filter(Boolean).length;
  if (sources !== 1) throw new UsageError('give the value exactly one way: VALUE, --stdin or --from-file F', ctx.name);
  if (positional !== undefined) return positional;
  if (fromFile !== undefined) return readTextFile(fromFile, MAX_SECRETS_FILE_BYTES, VALUE_ADVICE);
  const buf = await readBounded(ctx.stdin, 'stdin', MAX_SECRETS_FILE_BYTES, VALUE_ADVICE);
  return buf.toString('utf8').replace(/\r?\n$/, '');
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const unset = ctx.name === 'secrets unset';
  const { file, rest } = unset ? positionalArgs(ctx, 2, 2, 'FILE PATH') : positionalArgs(ctx, 2, 3, 'FILE PATH [VALUE]');
  const path = rest[0] as string;
  const format = formatOf(ctx, file);
  const value = unset ? undefined : await valueFrom(ctx, rest[1]);
  const content = await readText(file);
  await withFileProviders(ctx, file, content, format, async (providers) => {
    const plain = await decryptSecrets(content, { format, providers });
    const changed = change(format, plain, path, value, ctx.name);
    await replaceFile(file, await encryptText(ctx, file, changed, format, providers, content));
  });
  ctx.out.result({ file, path, [unset ? 'removed' : 'set']: true }, () => `${unset ? 'removed' : 'set'} ${path} in ${file}`);
  return undefined;
}
