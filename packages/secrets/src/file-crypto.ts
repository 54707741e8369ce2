/**
 * Encrypting, decrypting and re-keying whole files. The rule that holds every one together: the MAC is verified,
 * in constant time, before any value is decrypted or returned, and a function either returns the complete new text
 * or throws; it never writes anywhere.
 * @module
 */
import { FormatError, inspectEnvelope, wipe, type KeyProvider } from '@keyfold/envelope-core';
import { isKeyGroupField, newDataKey, openDataKey, parseKeyGroupField, rewrapDataKey, sealDataKey, type KeyOptions } from './data-key.js';
import { adapterFor } from './formats/index.js';
import { applyEdits, type FormatAdapter, type Leaf, type Metadata, type ParsedFile, type SecretsFormat } from './formats/types.js';
import { Selector, pathToString, secretLooking, type SecretWarning, type SelectionOptions } from './rules.js';
import {
  computeMac,
  deriveFileKeys,
  isEncryptedValue,
  openValue,
  sealValue,
  verifyMac,
  wipeFileKeys,
  type FileKeys,
  type MacEntry,
  type SecretPath,
} from './value-crypto.js';

/** Options of every call that opens a file: its format and the providers (any one of which can open it). */
export interface SecretsFileOptions extends KeyOptions {
  format: SecretsFormat;
}

/** Options of {@link encryptSecrets}. */
export interface EncryptOptions extends SecretsFileOptions, SelectionOptions {
  /**
   * The previous encrypted version of this file. Its MAC is verified, its data key reused, and every value whose
   * plaintext did not change keeps its old ciphertext, so a diff shows only the values that really changed.
   */
  previous?: string;
  /** Clock for `last_modified` (tests). Default `() => new Date()`. */
  now?: () => Date;
}

/** What {@link encryptSecrets} returns. */
export interface EncryptResult {
  /** The encrypted file text. */
  content: string;
  /** Dotted paths of encrypted values, in file order. */
  encrypted: string[];
  /** Dotted paths of values left in plaintext. */
  plaintext: string[];
  /** Plaintext values that look like secrets. For the caller to show; the library prints nothing. */
  warnings: SecretWarning[];
}

/** One wrapped key as the envelope header shows it. */
export interface WrappedKeyInfo {
  kind: string;
  keyId: string;
  keyVersion: string;
}

/** What {@link inspectSecrets} returns: read from the file alone, with no key access. */
export interface SecretsFileInfo {
  format: SecretsFormat;
  encrypted: string[];
  plaintext: string[];
  lastModified: string;
  /** The providers whose keys wrap the data key (any one opens the file), or the shares' (all groups). */
  wrappedKeys: WrappedKeyInfo[];
  /** For a key-group file: the threshold and each group's wrapped keys. */
  keyGroups?: { threshold: number; groups: WrappedKeyInfo[][] };
}

function macEntries(leaves: readonly Leaf[]): MacEntry[] {
  return leaves.map((l) => ({ path: l.path, stored: isEncryptedValue(l.value) ? l.value : l.raw }));
}

function requireMetadata(parsed: ParsedFile, format: SecretsFormat): Metadata {
  if (!parsed.metadata) {
    throw new FormatError(`this ${format} file has no keyfold metadata: it is not encrypted by keyfold (encrypt it first)`);
  }
  return parsed.metadata;
}

/** An opened file: MAC verified, every encrypted value decrypted to its source text. Wipe `keys` when done. */
export interface OpenedFile {
  adapter: FormatAdapter;
  parsed: ParsedFile;
  metadata: Metadata;
  dataKey: Uint8Array;
  keys: FileKeys;
  /** Leaf index -> decrypted source text, for encrypted leaves. */
  plaintexts: Map<number, string>;
}

/**
 * Parses `content`, opens its data key, verifies the MAC (constant time) and only then decrypts the values.
 * @throws FormatError (FORMAT_INVALID), DecryptFailedError (DECRYPT_FAILED), IntegrityFailedError (INTEGRITY_FAILED)
 */
export async function openSecretsFile(content: string, options: SecretsFileOptions): Promise<OpenedFile> {
  if (typeof content !== 'string') throw new TypeError('content must be a string');
  const adapter = adapterFor(options.format);
  const parsed = adapter.parse(content);
  const metadata = requireMetadata(parsed, options.format);
  const dataKey = await openDataKey(metadata.dataKey, options);
  const keys = deriveFileKeys(dataKey);
  try {
    verifyMac(keys, metadata.mac, metadata.lastModified, macEntries(parsed.leaves));
    const plaintexts = new Map<number, string>();
    parsed.leaves.forEach((l, i) => {
      if (isEncryptedValue(l.value)) plaintexts.set(i, openValue(keys, l.path, l.value));
    });
    return { adapter, parsed, metadata, dataKey, keys, plaintexts };
  } catch (err) {
    wipeFileKeys(keys);
    wipe(dataKey);
    throw err;
  }
}

function closeOpened(o: OpenedFile): void {
  wipeFileKeys(o.keys);
  wipe(o.dataKey);
  o.plaintexts.clear();
}

/** Replaces every encrypted value of an opened file by its source text and drops the metadata. */
function renderPlaintext(o: OpenedFile, content: string): string {
  const edits = [...o.plaintexts].map(([i, raw]) => {
    const leaf = o.parsed.leaves[i] as Leaf;
    const [start, end] = o.adapter.decodeSpan(leaf, raw, content);
    return { start, end, text: raw };
  });
  return o.adapter.setMetadata(applyEdits(content, edits), undefined);
}

interface SealPlan {
  adapter: FormatAdapter;
  content: string;
  shouldEncrypt: (path: SecretPath) => boolean;
  keys: FileKeys;
  armored: string;
  /** JSON path -> [source text, ciphertext] of the previous version. */
  previous: Map<string, [string, string]>;
  now: () => Date;
}

function seal(plan: SealPlan): EncryptResult {
  const { adapter } = plan;
  const parsed = adapter.parse(plan.content);
  if (parsed.metadata) {
    throw new FormatError('this file already holds keyfold metadata; decrypt it first (or pass the old version as `previous`)');
  }
  const result: EncryptResult = { content: '', encrypted: [], plaintext: [], warnings: [] };
  const edits: { start: number; end: number; text: string }[] = [];
  for (const leaf of parsed.leaves) {
    const p = pathToString(leaf.path);
    const value: unknown = leaf.value;
    if (isEncryptedValue(value)) {
      throw new FormatError(`the plaintext value at ${p} starts with "ENC[": decrypt the file first, or change the value`);
    }
    if (leaf.value === null || leaf.value === '' || !plan.shouldEncrypt(leaf.path)) {
      result.plaintext.push(p);
      const why = secretLooking(leaf.path, leaf.value);
      if (why !== undefined) result.warnings.push({ path: p, message: `${p} is left in plaintext but ${why}` });
      continue;
    }
    const prev = plan.previous.get(JSON.stringify(leaf.path));
    // Decrypt-compare-keep: an unchanged value keeps its ciphertext, so diffs show only real changes.
    const enc = prev !== undefined && prev[0] === leaf.raw ? prev[1] : sealValue(plan.keys, leaf.path, leaf.raw);
    edits.push({ start: leaf.start, end: leaf.end, text: adapter.encode(leaf, enc) });
    result.encrypted.push(p);
  }
  const body = applyEdits(plan.content, edits);
  const lastModified = plan.now().toISOString();
  // The MAC is computed over the leaves as the final file shows them: insert metadata with a dummy MAC of
  // the same length first, because a value's source span can depend on what follows it (YAML block scalars).
  const meta = { version: '1', dataKey: plan.armored, mac: 'A'.repeat(43), lastModified };
  meta.mac = computeMac(plan.keys, lastModified, macEntries(adapter.parse(adapter.setMetadata(body, meta)).leaves));
  result.content = adapter.setMetadata(body, meta);
  return result;
}

/**
 * Encrypts the values of a plaintext file (all by default, or as the rules select) and adds the `keyfold`
 * metadata. Everything but the selected values stays byte for byte.
 * @throws FormatError (FORMAT_INVALID) for a malformed file or one already encrypted; with `previous`, the errors
 *   of {@link openSecretsFile}; provider errors when wrapping the data key fails.
 * @example
 * ```ts
 * const { content, warnings } = await encryptSecrets(plain, { format: 'yaml', providers: [createEnvProvider()] });
 * ```
 */
export async function encryptSecrets(content: string, options: EncryptOptions): Promise<EncryptResult> {
  if (typeof content !== 'string') throw new TypeError('content must be a string');
  const adapter = adapterFor(options.format);
  const selector = new Selector(options);
  let opened: OpenedFile | undefined;
  let dataKey: Uint8Array | undefined;
  let keys: FileKeys | undefined;
  try {
    const previous = new Map<string, [string, string]>();
    let armored: string;
    if (options.previous !== undefined) {
      opened = await openSecretsFile(options.previous, options);
      for (const [i, raw] of opened.plaintexts) {
        const leaf = opened.parsed.leaves[i] as Leaf;
        previous.set(JSON.stringify(leaf.path), [raw, leaf.value as string]);
      }
      keys = opened.keys;
      armored = opened.metadata.dataKey;
    } else {
      dataKey = newDataKey();
      armored = await sealDataKey(dataKey, options);
      keys = deriveFileKeys(dataKey);
    }
    return seal({ adapter, content, shouldEncrypt: (p) => selector.shouldEncrypt(p), keys, armored, previous, now: options.now ?? (() => new Date()) });
  } finally {
    if (opened) closeOpened(opened);
    else if (keys) wipeFileKeys(keys);
    wipe(dataKey);
  }
}

/**
 * Verifies and decrypts a file, returning its plaintext text without the `keyfold` metadata (the exact text that
 * was encrypted, for files encrypted by {@link encryptSecrets}).
 * @throws FormatError, DecryptFailedError, IntegrityFailedError; the input is never modified.
 * @example
 * ```ts
 * const plain = await decryptSecrets(text, { format: 'dotenv', providers: [provider] });
 * ```
 */
export async function decryptSecrets(content: string, options: SecretsFileOptions): Promise<string> {
  const o = await openSecretsFile(content, options);
  try {
    return renderPlaintext(o, content);
  } finally {
    closeOpened(o);
  }
}

/**
 * Re-wraps the file's data key under `to` (for example the existing providers plus a new one). Values, MAC and
 * `last_modified` stay as they are; only the `data_key` field changes. The MAC is verified first.
 * @throws as {@link openSecretsFile}
 * @example
 * ```ts
 * const both = await updateKeys(text, { format: 'json', providers: [a], to: [a, b] });
 * ```
 */
export async function updateKeys(content: string, options: SecretsFileOptions & { to: readonly KeyProvider[] }): Promise<string> {
  if (!Array.isArray(options.to) || options.to.length === 0) throw new TypeError('to must be a non-empty array of KeyProvider');
  const o = await openSecretsFile(content, options);
  try {
    const dataKey = await rewrapDataKey(o.metadata.dataKey, options, options.to);
    return o.adapter.setMetadata(content, { ...o.metadata, dataKey });
  } finally {
    closeOpened(o);
  }
}

/**
 * Rotates the data key: decrypts, then encrypts the same values under a fresh data key wrapped under `to`
 * (default: `providers`), or split over `keyGroups` when given. Every ciphertext changes.
 * @throws as {@link openSecretsFile}
 * @example
 * ```ts
 * const rotated = await rotateDataKey(text, { format: 'yaml', providers: [kms] });
 * ```
 */
export async function rotateDataKey(
  content: string,
  options: SecretsFileOptions & { to?: readonly KeyProvider[]; now?: () => Date },
): Promise<string> {
  const o = await openSecretsFile(content, options);
  const encryptedPaths = new Set([...o.plaintexts.keys()].map((i) => JSON.stringify((o.parsed.leaves[i] as Leaf).path)));
  let plain: string;
  try {
    plain = renderPlaintext(o, content);
  } finally {
    closeOpened(o);
  }
  const providers = options.to ?? options.providers;
  const dataKey = newDataKey();
  const keys = deriveFileKeys(dataKey);
  try {
    const armored = await sealDataKey(dataKey, {
      providers,
      ...(options.policy === undefined ? {} : { policy: options.policy }),
      ...(options.keyGroups === undefined ? {} : { keyGroups: options.keyGroups }),
    });
    return seal({
      adapter: o.adapter,
      content: plain,
      shouldEncrypt: (p) => encryptedPaths.has(JSON.stringify(p)),
      keys,
      armored,
      previous: new Map(),
      now: options.now ?? (() => new Date()),
    }).content;
  } finally {
    wipeFileKeys(keys);
    wipe(dataKey);
  }
}

/**
 * Which values are encrypted and which providers can open the file, from the file alone (no key access, no MAC
 * check: do not trust the answer for anything but display).
 * @throws FormatError for a malformed or unencrypted file
 */
export function inspectSecrets(content: string, options: { format: SecretsFormat }): SecretsFileInfo {
  const parsed = adapterFor(options.format).parse(content);
  const metadata = requireMetadata(parsed, options.format);
  const groups = isKeyGroupField(metadata.dataKey) ? parseKeyGroupField(metadata.dataKey) : undefined;
  const armors = groups ? groups.armors : [metadata.dataKey];
  const wrappedKeys = armors.map((a) => inspectEnvelope(a).wrappedKeys.map((w) => ({ kind: w.kind, keyId: w.keyId, keyVersion: w.keyVersion })));
  return {
    ...(groups ? { keyGroups: { threshold: groups.threshold, groups: wrappedKeys } } : {}),
    format: options.format,
    encrypted: parsed.leaves.filter((l) => isEncryptedValue(l.value)).map((l) => pathToString(l.path)),
    plaintext: parsed.leaves.filter((l) => !isEncryptedValue(l.value)).map((l) => pathToString(l.path)),
    lastModified: metadata.lastModified,
    wrappedKeys: wrappedKeys.flat(),
  };
}
