/**
 * JSON files, rewritten at the token level: a value is replaced inside its own span and every other byte (key
 * order, whitespace, indentation, line endings) stays as it was. Metadata is a top-level `"keyfold"` member.
 * @module
 */
import { FormatError } from '@keyfold/envelope-core';
import type { SecretPath } from '../value-crypto.js';
import { META_KEYS, META_SECTION, metadataFrom, type FormatAdapter, type Leaf, type Metadata, type SecretValue } from './types.js';

function fail(message: string): never {
  throw new FormatError(`JSON: ${message}`);
}

interface Member {
  key: string;
  keyStart: number;
  valueStart: number;
  valueEnd: number;
}

interface Scan {
  leaves: Leaf[];
  rootIsObject: boolean;
  rootOpen: number;
  rootClose: number;
  members: Member[];
}

const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

function scan(text: string): Scan {
  try {
    JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`JSON: not valid JSON (${(cause as Error).message})`, { cause });
  }
  const leaves: Leaf[] = [];
  const members: Member[] = [];
  let rootOpen = -1;
  let rootClose = -1;
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i] as string)) i++;
  };
  const str = (): string => {
    const s = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(s, i)) as string;
  };
  const value = (path: SecretPath, depth: number): void => {
    const c = text[i];
    const start = i;
    if (c === '{') {
      if (depth === 0) rootOpen = i;
      i++;
      ws();
      const seen = new Set<string>();
      while (text[i] !== '}') {
        const keyStart = i;
        const key = str();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)} at ${JSON.stringify(path)}`);
        seen.add(key);
        ws();
        i++; // ':'
        ws();
        const valueStart = i;
        if (depth === 0 && key === META_SECTION) skipValue();
        else value([...path, key], depth + 1);
        if (depth === 0) members.push({ key, keyStart, valueStart, valueEnd: i });
        ws();
        if (text[i] === ',') {
          i++;
          ws();
        }
      }
      if (depth === 0) rootClose = i;
      i++;
    } else if (c === '[') {
      i++;
      ws();
      let n = 0;
      while (text[i] !== ']') {
        value([...path, n++], depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          ws();
        }
      }
      i++;
    } else if (c === '"') {
      const v = str();
      leaves.push({ path, start, end: i, raw: text.slice(start, i), value: v });
    } else {
      LITERAL.lastIndex = i;
      const m = LITERAL.exec(text);
      if (!m) fail(`unexpected character at offset ${i}`);
      i += m[0].length;
      leaves.push({ path, start, end: i, raw: m[0], value: JSON.parse(m[0]) as SecretValue });
    }
  };
  const skipValue = (): void => {
    const saved = leaves.length;
    value([META_SECTION], 1);
    leaves.length = saved;
  };
  ws();
  const rootIsObject = text[i] === '{';
  value([], 0);
  return { leaves, rootIsObject, rootOpen, rootClose, members };
}

function renderMeta(meta: Metadata, indent: string | undefined): string {
  const obj = {
    [META_KEYS.version]: Number(meta.version),
    [META_KEYS.dataKey]: meta.dataKey,
    [META_KEYS.mac]: meta.mac,
    [META_KEYS.lastModified]: meta.lastModified,
  };
  if (indent === undefined) return JSON.stringify(obj);
  const inner = indent + (indent.length > 0 ? indent : '  ');
  const eol = '\n';
  const body = Object.entries(obj)
    .map(([k, v]) => `${inner}${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(`,${eol}`);
  return `{${eol}${body}${eol}${indent}}`;
}

export const jsonFormat: FormatAdapter = {
  name: 'json',
  parse(text) {
    const s = scan(text);
    const meta = s.members.find((m) => m.key === META_SECTION);
    let metadata: Metadata | undefined;
    if (meta) {
      const rec = JSON.parse(text.slice(meta.valueStart, meta.valueEnd)) as unknown;
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) fail('"keyfold" must be an object');
      metadata = metadataFrom(rec as Record<string, unknown>, fail);
    }
    return { leaves: s.leaves, metadata };
  },
  encode(_leaf, enc) {
    return JSON.stringify(enc);
  },
  decodeSpan(leaf) {
    return [leaf.start, leaf.end];
  },
  setMetadata(text, meta) {
    const s = scan(text);
    if (!s.rootIsObject) fail('the top level must be an object to hold the "keyfold" metadata');
    const idx = s.members.findIndex((m) => m.key === META_SECTION);
    const first = s.members[0];
    const sep = first ? text.slice(s.rootOpen + 1, first.keyStart) : '';
    const indent = sep.includes('\n') ? sep.slice(sep.lastIndexOf('\n') + 1) : undefined;
    const existing = s.members[idx];
    if (existing) {
      if (meta) return text.slice(0, existing.valueStart) + renderMeta(meta, indent) + text.slice(existing.valueEnd);
      const prev = s.members[idx - 1];
      const next = s.members[idx + 1];
      if (prev) return text.slice(0, prev.valueEnd) + text.slice(existing.valueEnd);
      if (next) return text.slice(0, existing.keyStart) + text.slice(next.keyStart);
      return text.slice(0, existing.keyStart) + text.slice(existing.valueEnd);
    }
    if (!meta) return text;
    const member = `${JSON.stringify(META_SECTION)}: ${renderMeta(meta, indent)}`;
    const last = s.members[s.members.length - 1];
    if (!last) return text.slice(0, s.rootOpen + 1) + member + text.slice(s.rootOpen + 1);
    return text.slice(0, last.valueEnd) + `,${indent === undefined ? ' ' : sep}` + member + text.slice(last.valueEnd);
  },
};
