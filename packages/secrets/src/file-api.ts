/**
 * The public file functions: each checks its options object (an unknown option is a TypeError naming it, never
 * silently ignored) and then runs the implementation in `file-crypto.ts`.
 * @module
 */
import type { KeyProvider } from '@keyfold/envelope-core';
import * as files from './file-crypto.js';
import type { EncryptOptions, EncryptResult, SecretsFileInfo, SecretsFileOptions } from './file-crypto.js';
import type { SecretsFormat } from './formats/types.js';
import { assertKnownOptions } from './options-check.js';

const KEY_OPTIONS = ['providers', 'keyGroups', 'policy'] as const;
const FILE_OPTIONS = ['format', ...KEY_OPTIONS] as const satisfies readonly (keyof SecretsFileOptions)[];
const ENCRYPT_OPTIONS = [...FILE_OPTIONS, 'rules', 'unencryptedSuffix', 'previous', 'now'] as const satisfies readonly (keyof EncryptOptions)[];

/** The nested option objects every file function shares: `keyGroups` and, for encryptSecrets, each of `rules`. */
function checkNested(options: Record<string, unknown>, where: string): void {
  if (options.keyGroups !== undefined) assertKnownOptions(options.keyGroups, ['threshold', 'groups'], `${where} keyGroups`);
  const rules = options.rules;
  if (Array.isArray(rules)) {
    rules.forEach((rule: unknown, i) => {
      const kind = rule !== null && typeof rule === 'object' && 'regex' in rule ? 'regex' : 'path';
      assertKnownOptions(rule, [kind, 'encrypt'], `${where} rules[${i}]`);
    });
  }
}

/**
 * Encrypts the values of a plaintext file (all by default, or as the rules select) and adds the `keyfold`
 * metadata. Everything but the selected values stays byte for byte.
 * @throws TypeError naming an unknown option (`keyGroupRefs` from a rules file included: resolve those references
 *   to providers and pass `keyGroups`); FormatError (FORMAT_INVALID) for a malformed file or one already encrypted;
 *   with `previous`, the errors of opening it; provider errors when wrapping the data key fails.
 * @example
 * ```ts
 * const { content, warnings } = await encryptSecrets(plain, { format: 'yaml', providers: [createEnvProvider()] });
 * ```
 */
export function encryptSecrets(content: string, options: EncryptOptions): Promise<EncryptResult> {
  return checked(() => {
    if (options !== null && typeof options === 'object' && 'keyGroupRefs' in options) {
      throw new TypeError(
        'encryptSecrets has no option "keyGroupRefs": those are provider references from a rules file; resolve them to KeyProviders and pass keyGroups',
      );
    }
    assertKnownOptions(options, ENCRYPT_OPTIONS, 'encryptSecrets');
    checkNested(options, 'encryptSecrets');
    return files.encryptSecrets(content, options);
  });
}

/**
 * Verifies and decrypts a file, returning its plaintext text without the `keyfold` metadata (the exact text that
 * was encrypted, for files encrypted by {@link encryptSecrets}).
 * @throws TypeError naming an unknown option; FormatError, DecryptFailedError, IntegrityFailedError; the input is
 *   never modified.
 * @example
 * ```ts
 * const plain = await decryptSecrets(text, { format: 'dotenv', providers: [provider] });
 * ```
 */
export function decryptSecrets(content: string, options: SecretsFileOptions): Promise<string> {
  return checked(() => {
    assertKnownOptions(options, FILE_OPTIONS, 'decryptSecrets');
    checkNested(options, 'decryptSecrets');
    return files.decryptSecrets(content, options);
  });
}

/**
 * Re-wraps the file's data key under `to` (for example the existing providers plus a new one). Values, MAC and
 * `last_modified` stay as they are; only the `data_key` field changes. The MAC is verified first.
 * @throws TypeError naming an unknown option, or for an empty `to`; the errors of {@link decryptSecrets}.
 * @example
 * ```ts
 * const both = await updateKeys(text, { format: 'json', providers: [a], to: [a, b] });
 * ```
 */
export function updateKeys(content: string, options: SecretsFileOptions & { to: readonly KeyProvider[] }): Promise<string> {
  return checked(() => {
    assertKnownOptions(options, [...FILE_OPTIONS, 'to'], 'updateKeys');
    checkNested(options, 'updateKeys');
    return files.updateKeys(content, options);
  });
}

/**
 * Rotates the data key: decrypts, then encrypts the same values under a fresh data key wrapped under `to`
 * (default: `providers`), or split over `keyGroups` when given. Every ciphertext changes.
 * @throws TypeError naming an unknown option; the errors of {@link decryptSecrets}.
 * @example
 * ```ts
 * const rotated = await rotateDataKey(text, { format: 'yaml', providers: [kms] });
 * ```
 */
export function rotateDataKey(content: string, options: SecretsFileOptions & { to?: readonly KeyProvider[]; now?: () => Date }): Promise<string> {
  return checked(() => {
    assertKnownOptions(options, [...FILE_OPTIONS, 'to', 'now'], 'rotateDataKey');
    checkNested(options, 'rotateDataKey');
    return files.rotateDataKey(content, options);
  });
}

/**
 * Which values are encrypted and which providers can open the file, from the file alone (no key access, no MAC
 * check: do not trust the answer for anything but display).
 * @throws TypeError naming an unknown option; FormatError for a malformed or unencrypted file.
 * @example
 * ```ts
 * const { encrypted, wrappedKeys } = inspectSecrets(text, { format: 'yaml' });
 * ```
 */
export function inspectSecrets(content: string, options: { format: SecretsFormat }): SecretsFileInfo {
  assertKnownOptions(options, ['format'], 'inspectSecrets');
  return files.inspectSecrets(content, options);
}

/** Runs `fn`, turning a synchronous throw (a refused option) into a rejection, as the async implementations do. */
function checked<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
