/**
 * Transit ciphertexts. Vault writes `vault:v<N>:<base64>`; a wrapped key stores `keyVersion = "<N>"` and
 * `ciphertext = the decoded bytes` (nonce || ciphertext || tag: 60 bytes for a data key instead of 89 characters),
 * and the string is rebuilt for Vault from both. The version is therefore taken from the label, which is validated
 * strictly (no sign, no leading zero: Vault would read `v01` as version 1), so a relabelled key names another
 * version and fails to authenticate.
 * @module
 */
import { ProviderError } from '@keyfold/envelope-core';

const PREFIX = /^vault:v([1-9][0-9]{0,9}):([A-Za-z0-9+/]+={0,2})$/;
const VERSION = /^[1-9][0-9]{0,9}$/;

/** Splits a ciphertext Vault returned. @throws ProviderError INTERNAL for anything but `vault:vN:<base64>`. */
export function splitCiphertext(text: unknown): { version: string; bytes: Uint8Array } {
  const m = typeof text === 'string' ? PREFIX.exec(text) : null;
  const b64 = m?.[2];
  if (!m || !m[1] || b64 === undefined || b64.length % 4 !== 0) {
    throw new ProviderError('INTERNAL', 'Vault returned a ciphertext that is not of the form vault:v<N>:<base64>');
  }
  return { version: m[1], bytes: new Uint8Array(Buffer.from(b64, 'base64')) };
}

/** The Vault string for a wrapped key, or `undefined` when its label is not a valid version. */
export function joinCiphertext(version: string, bytes: Uint8Array): string | undefined {
  if (!VERSION.test(version) || bytes.length === 0) return undefined;
  return `vault:v${version}:${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** Strict base64 of a Vault answer's plaintext into a buffer that owns its memory; `undefined` if malformed. */
export function decodePlaintext(value: unknown): Uint8Array | undefined {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return undefined;
  const buf = Buffer.from(value, 'base64');
  const out = new Uint8Array(buf.length);
  out.set(buf);
  buf.fill(0);
  return out;
}

export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
