/**
 * What every format adapter provides: leaves with their source spans, the metadata section, and text edits that
 * touch nothing but those spans.
 * @module
 */
import type { SecretPath } from '../value-crypto.js';

/** The formats `@keyfold/secrets` reads and writes. */
export type SecretsFormat = 'dotenv' | 'json' | 'yaml' | 'toml';

/** A scalar as the format parser sees it. */
export type SecretValue = string | number | boolean | null;

/** One value of a file and where its source text sits. */
export interface Leaf {
  path: SecretPath;
  /** Offset of the first character of the value's source text. */
  start: number;
  /** Offset after the last character of the value's source text. */
  end: number;
  /** The value's source text (`text.slice(start, end)`): quotes, escapes and block style included. */
  raw: string;
  /** The parsed value. */
  value: SecretValue;
}

/** The `keyfold` metadata section. */
export interface Metadata {
  version: string;
  dataKey: string;
  mac: string;
  lastModified: string;
}

export interface ParsedFile {
  leaves: Leaf[];
  /** Undefined when the file has no metadata section (a plaintext file). */
  metadata: Metadata | undefined;
}

export interface FormatAdapter {
  readonly name: SecretsFormat;
  /** @throws FormatError for malformed input or metadata. */
  parse(text: string): ParsedFile;
  /** The text to put in place of `leaf`'s span for the encrypted value `enc`. */
  encode(leaf: Leaf, enc: string): string;
  /** The span `[start, end)` to replace with the decrypted source text `raw` of the encrypted `leaf`. */
  decodeSpan(leaf: Leaf, raw: string, text: string): [number, number];
  /** Returns `text` with its metadata section set to `meta`, or removed when `meta` is undefined. */
  setMetadata(text: string, meta: Metadata | undefined): string;
}

/** The field names of the metadata section in structured formats. */
export const META_KEYS = { version: 'version', dataKey: 'data_key', mac: 'mac', lastModified: 'last_modified' } as const;

/** The reserved top-level key holding metadata in JSON and YAML. */
export const META_SECTION = 'keyfold';

/** Replaces spans (non-overlapping) in `text`, back to front. */
export function applyEdits(text: string, edits: readonly { start: number; end: number; text: string }[]): string {
  const sorted = [...edits].sort((a, b) => b.start - a.start);
  let out = text;
  for (const e of sorted) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

/** Builds a {@link Metadata} from a record read out of a file. @throws FormatError via `fail` */
export function metadataFrom(record: Record<string, unknown>, fail: (msg: string) => never): Metadata {
  const get = (k: string): string => {
    const v = record[k];
    if (typeof v !== 'string' && typeof v !== 'number') fail(`the keyfold metadata is missing "${k}"`);
    return String(v);
  };
  const meta = { version: get(META_KEYS.version), dataKey: get(META_KEYS.dataKey), mac: get(META_KEYS.mac), lastModified: get(META_KEYS.lastModified) };
  if (meta.version !== '1') fail(`the keyfold metadata has version ${JSON.stringify(meta.version)}; this build reads version 1`);
  return meta;
}

/**
 * Inserts a metadata `block` (ending in a newline) at `at`. At the end of a text without a final newline the block
 * goes after an added newline and loses its own, so {@link removeBlock} can restore the text exactly.
 */
export function insertBlock(text: string, at: number, block: string): string {
  if (at === text.length && at > 0 && !text.endsWith('\n')) return `${text}\n${block.replace(/\n$/, '')}`;
  const prefix = at > 0 && text[at - 1] !== '\n' ? '\n' : '';
  return text.slice(0, at) + prefix + block + text.slice(at);
}

/** Removes the block `[start, end)` that {@link insertBlock} added, with the newline it added before it, if any. */
export function removeBlock(text: string, start: number, end: number): string {
  if (end === text.length && end > start && !text.endsWith('\n') && start > 0 && text[start - 1] === '\n') {
    return text.slice(0, start - 1);
  }
  return text.slice(0, start) + text.slice(end);
}
