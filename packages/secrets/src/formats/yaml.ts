/**
 * YAML files (also multi-document), edited through source offsets from the `yaml` parser: a scalar is replaced
 * inside its own span, so comments, key order, indentation, anchors and the other documents stay byte for byte.
 * Metadata is a top-level `keyfold` mapping at the end of the first document's root mapping.
 * @module
 */
import { FormatError } from '@keyfold/envelope-core';
import { isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { SecretPath } from '../value-crypto.js';
import { META_KEYS, META_SECTION, insertBlock, metadataFrom, removeBlock, type FormatAdapter, type Leaf, type Metadata, type SecretValue } from './types.js';

function fail(message: string): never {
  throw new FormatError(`YAML: ${message}`);
}

interface Scan {
  leaves: Leaf[];
  docs: Document.Parsed[];
  metaPair: Pair | undefined;
  root: YAMLMap | undefined;
}

function scan(text: string): Scan {
  const docs = parseAllDocuments(text, { keepSourceTokens: true, uniqueKeys: true });
  if (!Array.isArray(docs)) fail('not a YAML stream');
  for (const d of docs) {
    const err = d.errors[0];
    if (err) throw new FormatError(`YAML: ${err.message}`, { cause: err });
  }
  const leaves: Leaf[] = [];
  let metaPair: Pair | undefined;
  const walk = (node: unknown, path: SecretPath, isRoot: boolean): void => {
    if (isAlias(node) || node === null || node === undefined) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) fail(`only scalar keys are supported (at ${JSON.stringify(path)})`);
        const key = String(pair.key.value);
        if (isRoot && key === META_SECTION) {
          metaPair = pair;
          continue;
        }
        walk(pair.value, [...path, key], false);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i], false));
    } else if (isScalar(node)) {
      const range = node.range;
      if (!range) return;
      const v = node.value;
      const raw = text.slice(range[0], range[1]);
      // Other scalar types (a tagged !!binary, say) are kept as their source text.
      const value: SecretValue = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null ? v : raw;
      leaves.push({ path, start: range[0], end: range[1], raw, value });
    }
  };
  const multi = docs.length > 1;
  docs.forEach((d, i) => {
    const before = metaPair;
    walk(d.contents, multi ? [i] : [], i === 0);
    if (i > 0 && metaPair !== before) fail('only the first document may hold the "keyfold" metadata');
  });
  const first = docs[0]?.contents;
  const root = isMap(first) ? first : undefined;
  return { leaves, docs, metaPair, root };
}

function quote(value: string): string {
  return JSON.stringify(value);
}

function renderMeta(meta: Metadata, indent: string): string {
  const inner = `${indent}  `;
  return (
    `${META_SECTION}:\n` +
    `${inner}${META_KEYS.version}: ${meta.version}\n` +
    `${inner}${META_KEYS.dataKey}: ${quote(meta.dataKey)}\n` +
    `${inner}${META_KEYS.mac}: ${quote(meta.mac)}\n` +
    `${inner}${META_KEYS.lastModified}: ${quote(meta.lastModified)}\n`
  );
}

function trailingNewlines(raw: string): string {
  return /\n*$/.exec(raw)?.[0] ?? '';
}

export const yamlFormat: FormatAdapter = {
  name: 'yaml',
  parse(text) {
    const s = scan(text);
    let metadata: Metadata | undefined;
    if (s.metaPair) {
      const rec = (s.metaPair.value as Node | null)?.toJSON() as unknown;
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) fail('"keyfold" must be a mapping');
      metadata = metadataFrom(rec as Record<string, unknown>, fail);
    }
    return { leaves: s.leaves, metadata };
  },
  encode(leaf, enc) {
    // Block scalars own their line break; keep it outside the quoted replacement so the next line stays put.
    return quote(enc) + trailingNewlines(leaf.raw);
  },
  decodeSpan(leaf, raw, text) {
    const nl = trailingNewlines(raw);
    return [leaf.start, nl.length > 0 && text.startsWith(nl, leaf.end) ? leaf.end + nl.length : leaf.end];
  },
  setMetadata(text, meta) {
    const s = scan(text);
    const root = s.root;
    if (!root || root.flow || !root.range) fail('the first document must have a block mapping at its root to hold the "keyfold" metadata');
    const lineStart = text.lastIndexOf('\n', root.range[0] - 1) + 1;
    const indent = text.slice(lineStart, root.range[0]);
    const pair = s.metaPair;
    if (pair) {
      const keyStart = (pair.key as Node).range?.[0];
      const valueEnd = (pair.value as Node | null)?.range?.[2];
      if (keyStart === undefined || valueEnd === undefined) fail('"keyfold" metadata without a source range');
      const end = valueEnd < text.length && text[valueEnd - 1] !== '\n' && text[valueEnd] === '\n' ? valueEnd + 1 : valueEnd;
      if (meta === undefined) return removeBlock(text, text.lastIndexOf('\n', keyStart - 1) + 1, end);
      const block = renderMeta(meta, indent);
      // Keep the block's final newline only if the old one had it (see insertBlock).
      return text.slice(0, keyStart) + (text[end - 1] === '\n' ? block : block.replace(/\n$/, '')) + text.slice(end);
    }
    if (!meta) return text;
    // Insert at the start of the line after the root mapping's last value (its trailing comment stays with it).
    let at = root.range[1];
    if (at > 0 && text[at - 1] !== '\n') {
      const nl = text.indexOf('\n', at);
      at = nl === -1 ? text.length : nl + 1;
    }
    return insertBlock(text, at, indent + renderMeta(meta, indent));
  },
};

/**
 * Sets (`value` a string) or removes (`value` undefined) the value at the dotted `path` of a plaintext YAML document
 * through the `yaml` Document API, so comments and the other entries stay (the document is re-serialised: spacing
 * inside a line may be normalised). A path segment under a sequence is an index. Missing mappings are created on set.
 * @returns the new text, or undefined when unsetting a path that is not there
 * @throws FormatError when the text does not parse (or holds several documents) or `path` crosses a non-collection
 */
export function editYamlText(text: string, path: string, value: string | undefined): string | undefined {
  const doc = parseDocument(text, { uniqueKeys: true });
  const err = doc.errors[0];
  if (err) throw new FormatError(`YAML: ${err.message}`, { cause: err });
  const segments = path.split('.');
  const keys: (string | number)[] = [];
  let node: unknown = doc.contents;
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1;
    if (node === null || node === undefined) {
      if (value === undefined) return undefined;
      keys.push(seg);
      continue;
    }
    if (isSeq(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) fail(`${JSON.stringify(path)}: ${JSON.stringify(seg)} is not a sequence index`);
      const index = Number(seg);
      if (index > node.items.length || (index === node.items.length && value === undefined)) {
        if (value === undefined) return undefined;
        fail(`${JSON.stringify(path)}: index ${index} is past the end of the sequence`);
      }
      keys.push(index);
      node = node.items[index];
    } else if (isMap(node)) {
      if (!node.has(seg)) {
        if (value === undefined) return undefined;
        keys.push(seg);
        node = undefined;
        continue;
      }
      keys.push(seg);
      node = node.get(seg, true);
    } else {
      fail(`${JSON.stringify(path)} does not lead to a mapping or sequence`);
    }
    if (!last && (isScalar(node) || isAlias(node))) fail(`${JSON.stringify(path)} does not lead to a mapping or sequence`);
  }
  if (value === undefined) {
    doc.deleteIn(keys);
  } else if (doc.contents === null) {
    doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
    doc.setIn(keys, value);
  } else {
    doc.setIn(keys, value);
  }
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
