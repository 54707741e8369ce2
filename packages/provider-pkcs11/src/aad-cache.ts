/**
 * A small cache of wrap AADs (mode + version + canonical context, see `wrap-format.ts`), per provider. Services wrap
 * and unwrap with a handful of distinct contexts over and over, and building the AAD (sort + UTF-8 of every context
 * key and value, length prefixes) is a measurable share of a call to a local token. AADs are not secret (the
 * context is stored in clear in every envelope; kind, key id and version in every wrapped key), so caching them
 * exposes nothing.
 *
 * The cache key is unambiguous (each context key and value length-prefixed), so two different contexts never share
 * an entry; the same context given in another key order is only a second entry, not a wrong one. Returned bytes are
 * shared and read-only: pkcs11js and HMAC only read them.
 * @module
 */
import { encodeContext, type EncryptionContext } from '@keyfold/envelope-core';
import { aadPrefix, aadWithPrefix, type Pkcs11WrapMechanism } from './wrap-format.js';

const MAX_ENTRIES = 256;
/** Contexts longer than this (in key characters) are encoded every time rather than cached. */
const MAX_KEY_CHARS = 512;

export class AadCache {
  readonly #kind: string;
  readonly #keyId: string;
  readonly #entries = new Map<string, Buffer>();
  readonly #prefixes = new Map<string, Uint8Array>();

  constructor(kind: string, keyId: string) {
    this.#kind = kind;
    this.#keyId = keyId;
  }

  /**
   * The AAD of one wrap. `cacheable` is false for versions the token may not have (an attacker-chosen keyVersion in
   * a wrapped key), so those never take a cache slot.
   */
  aad(mode: Pkcs11WrapMechanism, version: string, context: EncryptionContext, cacheable: boolean): Buffer {
    let key = `${mode}\u0000${version}\u0000`;
    for (const k in context) {
      const v = context[k] as string;
      key += `${k.length}:${k}${v.length}:${v}`;
      if (key.length > MAX_KEY_CHARS) return this.#build(mode, version, context, false);
    }
    if (!cacheable) return this.#build(mode, version, context, false);
    const hit = this.#entries.get(key);
    if (hit) return hit;
    const aad = this.#build(mode, version, context, true);
    if (this.#entries.size >= MAX_ENTRIES) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, aad);
    return aad;
  }

  #build(mode: Pkcs11WrapMechanism, version: string, context: EncryptionContext, keepPrefix: boolean): Buffer {
    const pk = `${mode}\u0000${version}`;
    let prefix = this.#prefixes.get(pk);
    if (!prefix) {
      prefix = aadPrefix(mode, this.#kind, this.#keyId, version);
      if (keepPrefix) this.#prefixes.set(pk, prefix);
    }
    const aad = aadWithPrefix(prefix, encodeContext(context));
    return Buffer.from(aad.buffer, aad.byteOffset, aad.byteLength);
  }
}
