/**
 * How the encryption context is bound to a Key Vault wrapped key. Key Vault `wrapKey` takes no additional
 * authenticated data, so the provider stores a keyed digest beside the wrapped key:
 *
 * ```
 * ciphertext = 0x01 || wrapped || tag
 * tag        = HMAC-SHA-256(dataKey, "keyfold/v1/azure-kv/ctx\0" || lp(kind) || lp(keyId) || lp(version)
 *                                    || lp(algorithm) || lp32(encodeContext(context)))
 * ```
 *
 * (`lp` = u16 big-endian length prefix, `lp32` = u32; `0x01` is the layout version). On unwrap the tag is recomputed
 * with the unwrapped key and compared in constant time; any difference is the generic UNWRAP_FAILED and the
 * unwrapped key is wiped.
 *
 * Why it holds: the tag is a MAC under the data key itself, which only the party that wrapped it and whoever can
 * unwrap it ever hold. Someone who moves a wrapped key to another record (another context), relabels its version,
 * key id or algorithm, or swaps the tag of another wrapped key, would need a valid MAC under a key they do not
 * know: HMAC-SHA-256 is a PRF, so forging one is as hard as guessing the key. The fields are length-prefixed and
 * the context is the canonical, injective encoding, so no two (context, identity) pairs share a MAC input. The
 * label differs from the core's "keyfold/v1/suite1/..." labels in a non-prefix position, so this MAC never equals
 * one of the envelope's own derivations of the same data key. Key Vault unwrap is keyed by the KEK, so a `wrapped`
 * from another key fails there; RSA-OAEP and AES key wrap (RFC 3394) both refuse modified input.
 *
 * What it does not do: the binding is checked by this provider after Key Vault has unwrapped the key, not by Key
 * Vault. A principal with `unwrapKey` permission that calls Key Vault directly gets the data key whatever the
 * context (Key Vault's audit log never sees the context). And with RSA keys anyone holding the public key can wrap
 * a data key of their choosing with a valid tag for any context: RSA wrapping gives confidentiality and context
 * binding, not proof of who wrapped. Use A256KW on a Managed HSM where only principals with `wrapKey` may wrap.
 * @module
 */
import { createHmac } from 'node:crypto';
import { constantTimeEqual, encodeContext, type EncryptionContext } from '@keyfold/envelope-core';

/** First byte of every ciphertext this provider writes. */
export const LAYOUT_VERSION = 0x01;
/** Bytes of the HMAC-SHA-256 tag. */
export const TAG_LENGTH = 32;
const LABEL = Buffer.from('keyfold/v1/azure-kv/ctx\0', 'latin1');

/** The identity fields the tag binds, besides the context. */
export interface TagBinding {
  readonly kind: string;
  readonly keyId: string;
  readonly version: string;
  readonly algorithm: string;
}

function u16(n: number): Buffer {
  if (n > 0xffff) throw new RangeError(`field of ${n} bytes is too long for the context tag`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** The context tag for `dataKey`. */
export function contextTag(dataKey: Uint8Array, binding: TagBinding, context: EncryptionContext): Uint8Array {
  const mac = createHmac('sha256', dataKey).update(LABEL);
  for (const field of [binding.kind, binding.keyId, binding.version, binding.algorithm]) {
    const bytes = Buffer.from(field, 'utf8');
    mac.update(u16(bytes.length)).update(bytes);
  }
  const ctx = encodeContext(context);
  mac.update(u32(ctx.length)).update(ctx);
  return new Uint8Array(mac.digest());
}

/** `0x01 || wrapped || tag`: the stored ciphertext. */
export function sealStored(wrapped: Uint8Array, tag: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + wrapped.length + tag.length);
  out[0] = LAYOUT_VERSION;
  out.set(wrapped, 1);
  out.set(tag, 1 + wrapped.length);
  return out;
}

/** Splits a stored ciphertext; `undefined` when its layout is not one this provider wrote. */
export function openStored(stored: Uint8Array): { wrapped: Uint8Array; tag: Uint8Array } | undefined {
  if (stored.length < 1 + 1 + TAG_LENGTH || stored[0] !== LAYOUT_VERSION) return undefined;
  return {
    wrapped: stored.slice(1, stored.length - TAG_LENGTH),
    tag: stored.slice(stored.length - TAG_LENGTH),
  };
}

/** Constant-time check of a stored tag against the one recomputed from the unwrapped key. */
export function tagMatches(dataKey: Uint8Array, binding: TagBinding, context: EncryptionContext, tag: Uint8Array): boolean {
  const expected = contextTag(dataKey, binding, context);
  return constantTimeEqual(expected, tag);
}
