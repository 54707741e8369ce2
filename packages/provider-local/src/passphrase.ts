/**
 * Where a KEK file passphrase comes from, and how it becomes bytes.
 * @module
 */
import { ConfigError } from '@keyfold/envelope-core';

/**
 * A passphrase, or a function that returns one (from a prompt, a secrets manager, a file). The function is called
 * once per operation that needs the passphrase; the provider keeps only the keys stretched from it.
 * @example
 * ```ts
 * const passphrase: PassphraseSource = async () => (await readFile('/run/secrets/passphrase', 'utf8')).trimEnd();
 * ```
 */
export type PassphraseSource = string | (() => string | Promise<string>);

/**
 * Default environment variable for the KEK file passphrase.
 * @example
 * ```ts
 * process.env[PASSPHRASE_ENV] = await askPassphrase(); // then createFileProvider({ dir }) reads it
 * ```
 */
export const PASSPHRASE_ENV = 'KEYFOLD_PASSPHRASE';

/**
 * Resolves a passphrase to its NFC-normalised UTF-8 bytes (so the same passphrase typed on two systems that
 * compose accents differently opens the same KEK file), in a buffer the caller wipes. JavaScript strings cannot be
 * wiped: keep passphrases in strings as briefly as possible.
 * @param envName variable to read when `source` is undefined; without it a passphrase is required.
 * @throws ConfigError when the variable is unset or empty; TypeError / RangeError when the given passphrase (or
 *   what its function returned) is not a string or is empty.
 */
export async function resolvePassphrase(source: PassphraseSource | undefined, envName: string | undefined, name: string): Promise<Uint8Array> {
  let text: unknown;
  if (source === undefined) {
    if (envName === undefined) throw new TypeError(`${name} is required`);
    text = process.env[envName];
    if (text === undefined) throw new ConfigError(`no KEK file passphrase: pass ${name} or set ${envName}`);
    if (text === '') throw new ConfigError(`${envName} is empty; set it to the KEK file passphrase`);
  } else if (typeof source === 'function') {
    text = await source();
    if (typeof text !== 'string') throw new TypeError(`the ${name} function must return a string; got ${typeof text}`);
  } else {
    text = source;
  }
  if (typeof text !== 'string') throw new TypeError(`${name} must be a string or a function returning one; got ${typeof text}`);
  if (text.length === 0) throw new RangeError(`${name} must not be empty`);
  return new TextEncoder().encode(text.normalize('NFC'));
}
