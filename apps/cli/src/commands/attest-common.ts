/**
 * Shared by `keyfold attest verify` and `keyfold attest fetch`: hex option values and the SHA-256 fingerprint that
 * names a public key in the output (never the key bytes).
 * @module
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../exit-codes.js';

/**
 * `value` of `--option` as bytes: an even number of hex digits, 1 to `maxBytes` bytes.
 * @throws UsageError naming the option and what was wrong.
 */
export function parseHexOption(value: string, option: string, command: string, maxBytes: number): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(value)) {
    throw new UsageError(`${option} expects an even number of hex digits; got ${JSON.stringify(value.slice(0, 40))}`, command);
  }
  const bytes = Buffer.from(value, 'hex');
  if (bytes.length > maxBytes) throw new UsageError(`${option} is ${bytes.length} bytes; at most ${maxBytes} are accepted`, command);
  return bytes;
}

/** `sha256:<hex>` of `bytes`: how a public key is shown. */
export function sha256Fingerprint(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
