/**
 * Telling text armor from the binary envelope by the first bytes of an input, before it is read whole: armor starts
 * (after optional ASCII whitespace, such as the blank line of a config file) with lowercase `kf` and a version
 * (`kf1.`), the binary envelope with the uppercase magic `KF`. Any `kf` counts as armor, so that an armor version this
 * build does not support reaches `dearmor` and gets its own UNSUPPORTED_FORMAT error instead of "not an envelope".
 * @module
 */

/** Offset of the first byte of `bytes` that is not ASCII whitespace (space, tab, LF, CR), or `bytes.length`. */
export function skipAsciiWhitespace(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) break;
    i++;
  }
  return i;
}

/**
 * True when `head` (the first bytes of an input, after leading ASCII whitespace) starts like text armor (`kf`), not
 * like the binary envelope (`KF`). Byte-level counterpart of `isArmored`, for streams: decide with
 * {@link canDetectArmor} bytes, then read armor whole (and `dearmor` it) or stream the binary envelope.
 * @example
 * ```ts
 * if (looksArmored(head)) envelope = dearmor(Buffer.concat(chunks).toString('utf8'));
 * ```
 */
export function looksArmored(head: Uint8Array): boolean {
  const i = skipAsciiWhitespace(head);
  return head[i] === 0x6b /* k */ && head[i + 1] === 0x66 /* f */;
}

/** True when `head` holds enough bytes for {@link looksArmored} to decide: two bytes after leading whitespace. */
export function canDetectArmor(head: Uint8Array): boolean {
  return head.length - skipAsciiWhitespace(head) >= 2;
}
