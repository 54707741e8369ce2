/**
 * The one structural check that a value given as a provider is a {@link KeyProvider}: everything that accepts
 * providers from callers (envelopes, rewrap, rotation, migration, the key store) refuses a wrong value up front, as
 * a caller mistake (TypeError), instead of failing later inside a key operation.
 * @module
 */
import type { KeyProvider } from './types.js';

/**
 * Asserts `value` has the shape of a {@link KeyProvider}: an object with string `kind` and `keyId` and the
 * `wrapKey` / `unwrapKey` methods. Structural only: it cannot tell whether the provider works (see `probe()`).
 * @param name how the argument is named in the message (`providers[0]`, `options.to[1]`, `provider`).
 * @throws TypeError naming the argument.
 * @example
 * ```ts
 * options.providers.forEach((p, i) => assertKeyProvider(p, `providers[${i}]`));
 * ```
 */
export function assertKeyProvider(value: unknown, name: string): asserts value is KeyProvider {
  const x = value as Partial<KeyProvider> | null;
  if (
    x === null ||
    typeof x !== 'object' ||
    typeof x.kind !== 'string' ||
    typeof x.keyId !== 'string' ||
    typeof x.wrapKey !== 'function' ||
    typeof x.unwrapKey !== 'function'
  ) {
    throw new TypeError(`${name} must be a KeyProvider (kind, keyId, wrapKey, unwrapKey)`);
  }
}
