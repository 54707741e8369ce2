/**
 * A small, strict parser for dotenv-style `KEY=VALUE` files, enough for KEK and secrets files:
 * blank lines and `#` comments, an optional `export ` prefix, unquoted values (trimmed; `#` after whitespace starts
 * a comment),
 * single-quoted values (literal), double-quoted values (escapes `\n \r \t \" \\`), CRLF line ends and a UTF-8 BOM.
 *
 * Strict where a lenient parser would hide mistakes in a key file: a line that is not `KEY=VALUE`, an unterminated
 * quote, text after a closing quote and a variable defined twice are all refused. Errors name the source and line
 * number, never the line's content, since that content may be a key.
 *
 * Not the same rule as `@keyfold/secrets`' .env format (`packages/secrets/src/formats/dotenv.ts`), on purpose: that
 * one edits files in place, so it reports the byte span of every value, keeps quoted values that span lines and
 * unknown escapes as written, accepts `.` and `-` in names and reserves `KEYFOLD_SECRETS_*`; this one only reads
 * variables that become an environment (names a shell accepts), one line each, and refuses anything ambiguous in a
 * key file (ConfigError, not FormatError). One parser serving both would loosen this one or break round trips there.
 * @module
 */
import { ConfigError } from '@keyfold/envelope-core';

/** Files larger than this are refused before parsing: a KEK file is a few hundred bytes. */
export const MAX_DOTENV_BYTES = 1024 * 1024;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

function refuse(source: string, line: number, problem: string): never {
  throw new ConfigError(`${source} line ${line}: ${problem}`);
}

/** Checks that only whitespace or a comment follows a closing quote. */
function assertTrailer(rest: string, source: string, line: number): void {
  const trimmed = rest.trimStart();
  if (trimmed !== '' && !trimmed.startsWith('#')) refuse(source, line, 'unexpected text after the closing quote');
}

function parseDoubleQuoted(body: string, source: string, line: number): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '"') {
      assertTrailer(body.slice(i + 1), source, line);
      return out;
    }
    if (c === '\\') {
      const next = body[i + 1];
      const mapped = next === undefined ? undefined : ESCAPES[next];
      if (mapped === undefined) refuse(source, line, 'unknown escape in a double-quoted value (use \\n \\r \\t \\" or \\\\)');
      out += mapped;
      i++;
      continue;
    }
    out += c;
  }
  return refuse(source, line, 'unterminated double-quoted value');
}

/**
 * Parses dotenv text into a map of variables (a `Map`, so names like `__proto__` are plain keys).
 * @param source the file name, used in error messages.
 * @throws ConfigError naming the source and line for a malformed line, an unterminated quote or a duplicate name.
 * @example
 * ```ts
 * parseDotenv('export KEYFOLD_KEK_V1="ab..."  # first key\n', '.env.keys').get('KEYFOLD_KEK_V1');
 * ```
 */
export function parseDotenv(text: string, source: string): Map<string, string> {
  if (text.length > MAX_DOTENV_BYTES) throw new ConfigError(`${source} is larger than ${MAX_DOTENV_BYTES} bytes`);
  const vars = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let index = 0; index < lines.length; index++) {
    const lineNo = index + 1;
    let line = (lines[index] as string).replace(/\r$/, '');
    let trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (/^export[ \t]/.test(trimmed)) {
      trimmed = trimmed.slice('export'.length).trimStart();
    }
    line = trimmed;
    const eq = line.indexOf('=');
    if (eq <= 0) refuse(source, lineNo, 'expected NAME=VALUE');
    const name = line.slice(0, eq).trimEnd();
    if (!NAME.test(name)) refuse(source, lineNo, 'the variable name must match [A-Za-z_][A-Za-z0-9_]*');
    const raw = line.slice(eq + 1).trimStart();
    let value: string;
    if (raw.startsWith("'")) {
      const end = raw.indexOf("'", 1);
      if (end < 0) refuse(source, lineNo, 'unterminated single-quoted value');
      assertTrailer(raw.slice(end + 1), source, lineNo);
      value = raw.slice(1, end);
    } else if (raw.startsWith('"')) {
      value = parseDoubleQuoted(raw.slice(1), source, lineNo);
    } else {
      // As in a shell: `#` starts a comment only after whitespace (`A= # note` is empty, `A=#1` is "#1").
      const afterEq = line.slice(eq + 1);
      const comment = afterEq.search(/[ \t]#/);
      value = (comment >= 0 ? afterEq.slice(0, comment) : afterEq).trim();
    }
    const previous = firstLine.get(name);
    if (previous !== undefined) refuse(source, lineNo, `${name} is already defined on line ${previous}`);
    firstLine.set(name, lineNo);
    vars.set(name, value);
  }
  return vars;
}
