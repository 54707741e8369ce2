/**
 * `inspect`: the header fields of an envelope (format, suite, context, wrapped keys), read without any provider or
 * key access.
 * @module
 */
import { assertBytes } from './bytes.js';
import type { EnvelopeInfo } from './envelope-types.js';
import { SUITE_NAMES, dearmor, parseHeader, resolveLimits, type FormatLimits, type ParsedHeader } from './format.js';

/** Header info for `inspect`, from a parsed header. */
export function inspectHeader(header: ParsedHeader, totalLength: number): EnvelopeInfo {
  return {
    formatVersion: header.version,
    suiteId: header.suiteId,
    suite: SUITE_NAMES[header.suiteId] ?? String(header.suiteId),
    framed: header.frameSize !== 0,
    frameSize: header.frameSize,
    context: { ...header.context },
    wrappedKeys: header.wrappedKeys.map((w) => ({
      kind: w.kind,
      keyId: w.keyId,
      keyVersion: w.keyVersion,
      ciphertextLength: w.ciphertext.length,
    })),
    headerLength: header.length,
    bodyLength: totalLength - header.length,
  };
}

/**
 * Inspects an envelope's header without any provider or key: format, suite, context, wrapped keys.
 * @throws FormatError / UnsupportedFormatError / LimitExceededError; RangeError for bad `limits`.
 * @example
 * ```ts
 * const { context, wrappedKeys } = inspectEnvelope(sealed);
 * ```
 */
export function inspectEnvelope(input: Uint8Array | string, limits?: Partial<FormatLimits>): EnvelopeInfo {
  const bytes = typeof input === 'string' ? dearmor(input) : input;
  assertBytes(bytes, undefined, 'envelope');
  return inspectHeader(parseHeader(bytes, resolveLimits(limits), true), bytes.length);
}
