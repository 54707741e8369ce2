/**
 * .env files: `KEY=value` lines with optional `export `, bare values with ` # comments`, single-quoted literals and
 * double-quoted values with escapes, both of which may span lines. Comments, blank lines and everything around a
 * value stay byte for byte. Metadata is the `KEYFOLD_SECRETS_*` lines, kept at the end of the file.
 *
 * Not the same rule as `@keyfold/provider-local`'s `parseDotenv` (which reads the env provider's KEK/secrets files),
 * on purpose: encrypting and editing in place needs the byte span of every value, quoted values that span lines,
 * unknown escapes kept as written and names with `.` and `-`, none of which a strict one-line-per-variable reader of
 * key files should accept; that one returns only a name-to-value map and refuses anything ambiguous.
 * @module
 */
import { FormatError } from '@keyfold/envelope-core';
import { insertBlock, metadataFrom, removeBlock, type FormatAdapter, type Leaf, type Metadata, type ParsedFile } from './types.js';

/** Prefix of the reserved metadata variables in .env files (`KEYFOLD_SECRETS_MAC=...`); plaintext files may not use it. */
export const DOTENV_META_PREFIX = 'KEYFOLD_SECRETS_';
const META_NAMES: Record<string, string> = {
  VERSION: 'version',
  DATA_KEY: 'data_key',
  MAC: 'mac',
  LAST_MODIFIED: 'last_modified',
};

const ASSIGN = /^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*/;

function fail(message: string): never {
  throw new FormatError(`.env: ${message}`);
}

function lineOf(text: string, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

function unescapeDouble(body: string): string {
  return body.replace(/\\([nrt"\\$])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c));
}

interface Scan extends ParsedFile {
  metaSpans: [number, number][];
}

function scan(text: string): Scan {
  const leaves: Leaf[] = [];
  const metaRecord: Record<string, string> = {};
  const metaSpans: [number, number][] = [];
  const seen = new Set<string>();
  let pos = 0;
  while (pos < text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = text.length;
    const line = text.slice(pos, eol);
    if (/^[ \t\r]*(#.*)?$/.test(line)) {
      pos = eol + 1;
      continue;
    }
    const m = ASSIGN.exec(line);
    if (!m?.[1]) fail(`line ${lineOf(text, pos)}: expected KEY=value, a comment or a blank line`);
    const name = m[1];
    const start = pos + m[0].length;
    let end: number;
    let value: string;
    const q = text[start];
    if (q === '"' || q === "'") {
      let i = start + 1;
      while (i < text.length && text[i] !== q) i += q === '"' && text[i] === '\\' ? 2 : 1;
      if (i >= text.length) fail(`line ${lineOf(text, start)}: ${name} has an unterminated ${q === '"' ? 'double' : 'single'}-quoted value`);
      end = i + 1;
      const body = text.slice(start + 1, i);
      value = q === '"' ? unescapeDouble(body) : body;
      eol = text.indexOf('\n', end);
      if (eol === -1) eol = text.length;
      if (!/^[ \t\r]*(#.*)?$/.test(text.slice(end, eol))) fail(`line ${lineOf(text, end)}: unexpected text after the quoted value of ${name}`);
    } else {
      const rest = text.slice(start, eol);
      const hash = /(^|[ \t])#/.exec(rest);
      const valueText = (hash ? rest.slice(0, hash.index) : rest).replace(/[ \t\r]+$/, '');
      end = start + valueText.length;
      value = valueText;
    }
    if (name.startsWith(DOTENV_META_PREFIX)) {
      const field = META_NAMES[name.slice(DOTENV_META_PREFIX.length)];
      if (field === undefined) fail(`${name} is not a keyfold metadata variable (the KEYFOLD_SECRETS_ prefix is reserved)`);
      metaRecord[field] = value;
      metaSpans.push([pos, Math.min(eol + 1, text.length)]);
    } else {
      if (seen.has(name)) fail(`${name} is defined twice`);
      seen.add(name);
      leaves.push({ path: [name], start, end, raw: text.slice(start, end), value });
    }
    pos = eol + 1;
  }
  const metadata = metaSpans.length === 0 ? undefined : metadataFrom(metaRecord, fail);
  return { leaves, metadata, metaSpans };
}

function renderMeta(meta: Metadata): string {
  return (
    `${DOTENV_META_PREFIX}VERSION=${meta.version}\n` +
    `${DOTENV_META_PREFIX}DATA_KEY=${meta.dataKey}\n` +
    `${DOTENV_META_PREFIX}MAC=${meta.mac}\n` +
    `${DOTENV_META_PREFIX}LAST_MODIFIED=${meta.lastModified}\n`
  );
}

export const dotenvFormat: FormatAdapter = {
  name: 'dotenv',
  parse(text) {
    const { leaves, metadata } = scan(text);
    return { leaves, metadata };
  },
  encode(_leaf, enc) {
    // ENC[kf1,<base64url>] holds no space, quote or '#', so it is safe bare.
    return enc;
  },
  decodeSpan(leaf) {
    return [leaf.start, leaf.end];
  },
  setMetadata(text, meta) {
    const { metaSpans } = scan(text);
    let out = text;
    // Contiguous metadata lines form one block, removed at once (so its added newline, if any, goes with it).
    const blocks: [number, number][] = [];
    for (const [s, e] of metaSpans) {
      const last = blocks[blocks.length - 1];
      if (last && last[1] === s) last[1] = e;
      else blocks.push([s, e]);
    }
    for (const [s, e] of blocks.reverse()) out = removeBlock(out, s, e);
    return meta === undefined ? out : insertBlock(out, out.length, renderMeta(meta));
  },
};
