/**
 * TOML files, rewritten in place: a scanner walks tables, arrays of tables, dotted keys, arrays and inline tables
 * and records the span of every scalar; a value is replaced inside its span and nothing else moves. `smol-toml`
 * validates the whole file first and reads scalar values. Metadata is a `[keyfold]` table at the end of the file.
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
import { FormatError } from '@keyfold/envelope-core';
import { parse } from 'smol-toml';
import type { SecretPath } from '../value-crypto.js';
import { META_KEYS, META_SECTION, insertBlock, metadataFrom, removeBlock, type FormatAdapter, type Leaf, type Metadata, type SecretValue } from './types.js';

function fail(message: string): never {
  throw new FormatError(`TOML: ${message}`);
}

interface Scan {
  leaves: Leaf[];
  metaRecord: Record<string, unknown> | undefined;
  /** [start, end) of the `[keyfold]` table, header included. */
  metaSpan: [number, number] | undefined;
}

const BARE_KEY = /[A-Za-z0-9_-]+/y;
const BARE_VALUE = /[A-Za-z0-9_:.+-]+/y;
const TIME_AFTER_DATE = / \d{2}:\d{2}[0-9:.+\-Zz]*/y;

/** The typed value of one scalar's source text. Dates and times stay as their text. */
function scalarValue(raw: string): SecretValue {
  const v = (parse(`v = ${raw}`) as { v: unknown }).v;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : typeof v === 'bigint' ? v.toString() : raw;
}

function scan(text: string): Scan {
  try {
    parse(text);
  } catch (cause) {
    throw new FormatError(`TOML: not valid TOML (${(cause as Error).message.split('\n')[0] ?? ''})`, { cause });
  }
  const leaves: Leaf[] = [];
  let metaRecord: Record<string, unknown> | undefined;
  let metaSpan: [number, number] | undefined;
  let inMeta = false;
  const arrays = new Map<string, number>();
  let table: SecretPath = [];
  let i = 0;
  const blank = (newlines: boolean): void => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || (newlines && (c === '\n' || c === '\r'))) i++;
      else if (c === '#') while (i < text.length && text[i] !== '\n') i++;
      else return;
    }
  };
  const quoted = (): string => {
    const q = text[i] as string;
    const s = i++;
    while (text[i] !== q) i += q === '"' && text[i] === '\\' ? 2 : 1;
    i++;
    return scalarValue(text.slice(s, i)) as string;
  };
  const key = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      blank(false);
      if (text[i] === '"' || text[i] === "'") parts.push(quoted());
      else {
        BARE_KEY.lastIndex = i;
        const m = BARE_KEY.exec(text);
        if (!m) fail(`expected a key at offset ${i}`);
        parts.push(m[0]);
        i += m[0].length;
      }
      blank(false);
      if (text[i] !== '.') return parts;
      i++;
    }
  };
  const resolve = (keys: readonly string[], arrayTable: boolean): SecretPath => {
    const out: (string | number)[] = [];
    keys.forEach((k, n) => {
      out.push(k);
      const id = JSON.stringify(out);
      if (arrayTable && n === keys.length - 1) {
        const idx = (arrays.get(id) ?? -1) + 1;
        arrays.set(id, idx);
        out.push(idx);
      } else if (arrays.has(id)) out.push(arrays.get(id) as number);
    });
    return out;
  };
  const value = (path: SecretPath): void => {
    const start = i;
    const c = text[i];
    if (c === '[' || c === '{') {
      const close = c === '[' ? ']' : '}';
      i++;
      let n = 0;
      for (;;) {
        blank(true);
        if (text[i] === close) break;
        if (c === '[') value([...path, n++]);
        else {
          const k = key();
          i++; // '='
          blank(false);
          value([...path, ...k]);
        }
        blank(true);
        if (text[i] === ',') i++;
      }
      i++;
      return;
    }
    if (text.startsWith('"""', i) || text.startsWith("'''", i)) {
      const q = text.slice(i, i + 3);
      i += 3;
      while (!text.startsWith(q, i)) i += q === '"""' && text[i] === '\\' ? 2 : 1;
      i += 3;
      while (text[i] === q[0] && i - start < text.length) i++;
    } else if (c === '"' || c === "'") {
      quoted();
    } else {
      BARE_VALUE.lastIndex = i;
      const m = BARE_VALUE.exec(text);
      if (!m) fail(`expected a value at offset ${i}`);
      i += m[0].length;
      TIME_AFTER_DATE.lastIndex = i;
      const t = /^\d{4}-\d{2}-\d{2}$/.test(m[0]) ? TIME_AFTER_DATE.exec(text) : null;
      if (t) i += t[0].length;
    }
    const raw = text.slice(start, i);
    leaves.push({ path, start, end: i, raw, value: scalarValue(raw) });
  };
  while (i < text.length) {
    blank(true);
    if (i >= text.length) break;
    const lineStart = i;
    if (text[i] === '[') {
      const arrayTable = text[i + 1] === '[';
      i += arrayTable ? 2 : 1;
      const keys = key();
      i += arrayTable ? 2 : 1;
      if (inMeta && metaSpan) metaSpan[1] = lineStart;
      inMeta = !arrayTable && keys.length === 1 && keys[0] === META_SECTION;
      if (inMeta) {
        metaRecord = {};
        metaSpan = [lineStart, text.length];
      } else if (keys[0] === META_SECTION) fail('the "keyfold" table is reserved for metadata');
      table = resolve(keys, arrayTable);
      continue;
    }
    const k = key();
    i++; // '='
    blank(false);
    if (inMeta && metaRecord) {
      const before = leaves.length;
      value([]);
      const leaf = leaves.pop();
      leaves.length = before;
      if (k.length === 1 && leaf) metaRecord[k[0] as string] = leaf.value;
      continue;
    }
    if (table.length === 0 && k[0] === META_SECTION) fail('the "keyfold" key is reserved for metadata');
    value([...table, ...k]);
  }
  return { leaves, metaRecord, metaSpan };
}

function renderMeta(meta: Metadata): string {
  const q = (s: string): string => JSON.stringify(s);
  return (
    `[${META_SECTION}]\n` +
    `${META_KEYS.version} = ${meta.version}\n` +
    `${META_KEYS.dataKey} = ${q(meta.dataKey)}\n` +
    `${META_KEYS.mac} = ${q(meta.mac)}\n` +
    `${META_KEYS.lastModified} = ${q(meta.lastModified)}\n`
  );
}

export const tomlFormat: FormatAdapter = {
  name: 'toml',
  parse(text) {
    const s = scan(text);
    return { leaves: s.leaves, metadata: s.metaRecord ? metadataFrom(s.metaRecord, fail) : undefined };
  },
  encode(_leaf, enc) {
    return JSON.stringify(enc);
  },
  decodeSpan(leaf) {
    return [leaf.start, leaf.end];
  },
  setMetadata(text, meta) {
    const { metaSpan } = scan(text);
    const out = metaSpan ? removeBlock(text, metaSpan[0], metaSpan[1]) : text;
    if (!meta) return out;
    return insertBlock(out, metaSpan ? Math.min(metaSpan[0], out.length) : out.length, renderMeta(meta));
  },
};

const BARE_KEY_ONLY = /^[A-Za-z0-9_-]+$/;
const HEADER = /^[ \t]*\[[ \t]*([A-Za-z0-9_-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_-]+)*)[ \t]*\][ \t]*(?:#.*)?$/;
const ANY_HEADER = /^[ \t]*\[/;

function tomlKey(key: string): string {
  return BARE_KEY_ONLY.test(key) ? key : JSON.stringify(key);
}

/** `root` with the value at `segments` set to `value` or removed (undefined); false when unsetting a missing path. */
function applyPlain(root: Record<string, unknown>, segments: readonly string[], value: string | undefined): boolean {
  let node: Record<string, unknown> = root;
  for (const seg of segments.slice(0, -1)) {
    const next = Array.isArray(node) ? (node as unknown[])[Number(seg)] : node[seg];
    if (next === undefined && value !== undefined) node[seg] = Object.create(null) as Record<string, unknown>; // as smol-toml's tables
    else if (next === null || typeof next !== 'object') return false;
    node = (Array.isArray(node) ? (node as unknown[])[Number(seg)] : node[seg]) as Record<string, unknown>;
  }
  const last = segments[segments.length - 1] as string;
  if (value !== undefined) node[last] = value;
  else if (!Object.prototype.hasOwnProperty.call(node, last)) return false;
  else delete node[last];
  return true;
}

/** Where a new `key = value` line for the table `table` (bare keys; [] for the root) goes, or undefined. */
function insertionLine(lines: readonly string[], table: readonly string[]): number | undefined {
  let start: number | undefined;
  if (table.length === 0) start = 0;
  else {
    for (let n = 0; n < lines.length; n++) {
      const m = HEADER.exec(lines[n] as string);
      if (m && !(lines[n] as string).trimStart().startsWith('[[') && isDeepStrictEqual((m[1] as string).split('.').map((k) => k.trim()), table)) {
        start = n + 1;
        break;
      }
    }
    if (start === undefined) return undefined;
  }
  let end = start;
  while (end < lines.length && !ANY_HEADER.test(lines[end] as string)) end++;
  // Before the blank lines and comments that lead into the next table.
  while (end > start && /^[ \t]*(#.*)?\r?$/.test(lines[end - 1] as string)) end--;
  return end;
}

/**
 * Sets (`value` a string) or removes (`value` undefined) the value at the dotted `path` of a plaintext TOML file by
 * editing its text in place: an existing value is replaced inside its span; a `key = value` line is removed; a new key
 * is added as a line at the end of its `[table]` (a bare-key table header; the table is appended when missing). The
 * result is parsed again and must equal the original with exactly that change, else nothing is returned.
 * @returns the new text, or undefined when unsetting a path that is not there
 * @throws FormatError when the text does not parse, or the change cannot be made by a safe in-place edit
 */
export function editTomlText(text: string, path: string, value: string | undefined): string | undefined {
  const { leaves } = scan(text);
  const segments = path.split('.');
  const expected = parse(text) as Record<string, unknown>;
  if (!applyPlain(expected, segments, value)) {
    if (value === undefined) return undefined;
    fail(`${JSON.stringify(path)} does not lead to a table`);
  }
  const leaf = leaves.find((l) => l.path.length === segments.length && l.path.every((p, n) => String(p) === segments[n]));
  let out: string | undefined;
  if (leaf !== undefined) {
    if (value !== undefined) out = text.slice(0, leaf.start) + JSON.stringify(value) + text.slice(leaf.end);
    else {
      const lineStart = text.lastIndexOf('\n', leaf.start - 1) + 1;
      const nl = text.indexOf('\n', leaf.end);
      const lineEnd = nl === -1 ? text.length : nl + 1;
      const before = text.slice(lineStart, leaf.start);
      const after = text.slice(leaf.end, nl === -1 ? text.length : nl);
      if (/^[ \t]*[^=\[\]{},]+=[ \t]*$/.test(before) && /^[ \t]*(#.*)?\r?$/.test(after)) out = text.slice(0, lineStart) + text.slice(lineEnd);
    }
  } else if (value !== undefined) {
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    const lines = text.split('\n');
    const table = segments.slice(0, -1);
    const line = `${tomlKey(segments[segments.length - 1] as string)} = ${JSON.stringify(value)}${eol === '\r\n' ? '\r' : ''}`;
    const at = table.every((k) => BARE_KEY_ONLY.test(k)) ? insertionLine(lines, table) : undefined;
    if (at !== undefined) {
      lines.splice(at, 0, line);
      out = lines.join('\n');
    } else {
      const body = text.length === 0 || text.endsWith('\n') ? text : text + eol;
      out = `${body}${body.trim() === '' ? '' : eol}[${table.map(tomlKey).join('.')}]${eol}${line.replace(/\r$/, '')}${eol}`;
    }
  }
  let result: unknown;
  try {
    result = out === undefined ? undefined : parse(out);
  } catch {
    result = undefined;
  }
  if (out === undefined || !isDeepStrictEqual(result, expected)) {
    fail(`cannot ${value === undefined ? 'remove' : 'set'} ${JSON.stringify(path)} by an in-place edit (an array, inline table or dotted key?): use 'keyfold secrets edit'`);
  }
  return out;
}
