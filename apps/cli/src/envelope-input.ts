/**
 * The start of an envelope input, shared by `decrypt` and `inspect`: binary or text armor, told apart from the first
 * bytes with the core's `looksArmored`. Binary input is read only as far as its header (at most the header size
 * limit) and stays a stream; armor is read whole, within its bound (`input-limits.ts`).
 * @module
 */
import type { Readable } from 'node:stream';
import { canDetectArmor, DEFAULT_LIMITS, FormatError, looksArmored, skipAsciiWhitespace } from '@keyfold/envelope-core';
import { readArmor } from './input-limits.js';
import { peek, type Input } from './input.js';

/** Armor read whole (`text`), or binary: the first bytes (`head`, the header at least) and the whole input (`stream`). */
export type EnvelopeStart =
  | { readonly armored: true; readonly text: string; readonly stream: Readable }
  | { readonly armored: false; readonly head: Buffer; readonly stream: Readable };

/**
 * Reads the start of `input`: enough to tell armor from binary, then the armor whole or the binary header.
 * @throws FormatError when the input is empty (or only whitespace); LimitExceededError for armor over its bound.
 */
export async function readEnvelopeStart(input: Input): Promise<EnvelopeStart> {
  const limit = DEFAULT_LIMITS.maxHeaderBytes;
  // Binary needs the header, which is never longer than the limit; armor is then read whole (up to its bound).
  const peeked = await peek(input.stream, (head) => canDetectArmor(head) && (looksArmored(head) || head.length >= limit));
  if (peeked.ended && skipAsciiWhitespace(peeked.head) === peeked.head.length) {
    throw new FormatError(`${input.name} is empty: not a Keyfold envelope`);
  }
  if (looksArmored(peeked.head)) return { armored: true, text: await readArmor(input, peeked.stream), stream: peeked.stream };
  return { armored: false, head: peeked.head, stream: peeked.stream };
}
