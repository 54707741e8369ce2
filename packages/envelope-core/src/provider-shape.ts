/**
 * The one structural check that a value given as a provider is a {@link KeyProvider}: everything that accepts
 * providers from callers (envelopes, rewrap, rotation, migration, the key store) refuses a wrong value up front, as
 * a caller mistake (TypeError), instead of failing later inside a key operation.
 * @module
 */
import type { KeyProvider } from './types.js';

/**
 * True when `value` has the shape of a {@link KeyProvider}: an object with string `kind` and `keyId` and the
 * `wrapKey` / `unwrapKey` methods. Structural only: it cannot tell whether the provider works (see `probe()`). The
 * boolean form of {@link assertKeyProvider}, for code that accepts either a provider or a `{ kind, keyId }`
 * reference.
 * @throws never
 * @example
 * ```ts
 * const target = isKeyProvider(to) ? await to.describe() : to; // a provider, or a { kind, keyId } reference
 * ```
 */
export function isKeyProvider(value: unknown): value is KeyProvider {
  const x = value as Partial<KeyProvider> | null;
  return (
    x !== null &&
    typeof x === 'object' &&
    typeof x.kind === 'string' &&
    typeof x.keyId === 'string' &&
    typeof x.wrapKey === 'function' &&
    typeof x.unwrapKey === 'function'
  );
}

/**
 * Asserts `value` has the shape of a {@link KeyProvider} (see {@link isKeyProvider}).
 * @param name how the argument is named in the message (`providers[0]`, `options.to[1]`, `provider`).
 * @throws TypeError naming the argument.
 * @example
 * ```ts
 * options.providers.forEach((p, i) => assertKeyProvider(p, `providers[${i}]`));
 * ```
 */
export function assertKeyProvider(value: unknown, name: string): asserts value is KeyProvider {
  if (!isKeyProvider(value)) throw new TypeError(`${name} must be a KeyProvider (kind, keyId, wrapKey, unwrapKey)`);
}
