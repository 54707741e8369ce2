/**
 * Escaping of text on its way to a terminal or a log. Envelope headers, key store rows, configuration files and key
 * service answers are untrusted: a value carrying ESC, CR, BEL, C1 controls or bidi overrides could clear the
 * operator's screen, retitle the window, hide text or forge a `keyfold: ...` line if printed raw. `output.ts`
 * passes everything it prints through these functions, so no command has to remember to.
 * @module
 */

/**
 * Characters that never reach a terminal raw: C0 controls (newline included), DEL, C1 controls (U+0080-U+009F, 8-bit
 * CSI/OSC among them), the bidirectional marks, embeddings, overrides and isolates, and the Unicode line and
 * paragraph separators.
 */
const UNSAFE_CHAR = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Same set without C0 (JSON.stringify already escapes C0 inside strings, and those are the only place they occur). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * The colour sequences `output.ts` itself emits (bold, dim, red, green, yellow and their resets) followed by the
 * unsafe characters: kept when colour is on, so styling survives; a value can use them to colour text, nothing more.
 */
const OWN_SGR_OR_UNSAFE = /\u001b\[(?:1|2|22|31|32|33|39)m|[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

function escapeAll(text: string): string {
  return text.replace(UNSAFE_CHAR, escapeChar);
}

/**
 * `text` as one printable line: every unsafe character (see above), newlines included, written as `\uXXXX`.
 * Idempotent (the escapes are plain ASCII), so a value escaped twice reads the same.
 * @example printable('a\u001b]0;x\u0007') === 'a\\u001b]0;x\\u0007'
 */
export function printable(text: string): string {
  return escapeAll(text);
}

/** What {@link terminalText} lets through raw. */
export interface TerminalTextOptions {
  /** Keep `\n` (the line structure of a rendered table or report). */
  readonly newlines: boolean;
  /** Keep the CLI's own colour sequences (only when colour is on for the stream). */
  readonly colour: boolean;
}

/**
 * `text` made safe for a terminal: every unsafe character is escaped except, as `options` allow, newlines and the
 * CLI's own colour sequences.
 */
export function terminalText(text: string, options: TerminalTextOptions): string {
  return text.replace(OWN_SGR_OR_UNSAFE, (match) => {
    if (match.length > 1) return options.colour ? match : escapeAll(match);
    if (match === '\n' && options.newlines) return match;
    return escapeChar(match);
  });
}

/**
 * A JSON document made safe for a terminal without changing its value: the characters JSON.stringify leaves raw
 * (DEL, C1, bidi controls, U+2028/U+2029) can only occur inside strings, where `\uXXXX` means the same character.
 */
export function jsonText(json: string): string {
  return json.replace(UNSAFE_IN_JSON, escapeChar);
}
