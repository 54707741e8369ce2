/**
 * Everything the CLI prints goes through here: results as text or as one JSON document (`--json`), notes and errors
 * on stderr, and colour only when the stream is a terminal and `NO_COLOR` is not set (https://no-color.org).
 *
 * Security rule: nothing printed here may contain key material, passphrases or plaintext. Results are built by the
 * commands from non-secret fields only; errors print their code and message (Keyfold messages never carry
 * secrets), and debug output (`KEYFOLD_DEBUG=1`) adds stack traces and the codes and messages of causes, nothing else.
 * @module
 */
import { errorCodeFor, UsageError } from './exit-codes.js';

/** The parts of a stream the CLI uses. Narrow on purpose so tests and callers can pass any writable. */
export interface OutStream {
  write(chunk: string): boolean;
  readonly isTTY?: boolean;
}

export interface OutputOptions {
  json: boolean;
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
}

/** True when colour may be used on `stream`: a terminal, `NO_COLOR` unset or empty, and `TERM` not `dumb`. */
export function colorAllowed(stream: OutStream, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

type Paint = (text: string) => string;

function sgr(open: number, close: number, enabled: boolean): Paint {
  return enabled ? (text) => `\u001b[${open}m${text}\u001b[${close}m` : (text) => text;
}

/** Text styles for one stream; each is the identity when colour is off. */
export interface Styles {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
}

function stylesFor(enabled: boolean): Styles {
  return {
    bold: sgr(1, 22, enabled),
    dim: sgr(2, 22, enabled),
    red: sgr(31, 39, enabled),
    green: sgr(32, 39, enabled),
    yellow: sgr(33, 39, enabled),
  };
}

/** Visible width of a string that may hold SGR colour sequences. */
function visibleLength(text: string): number {
  return text.replace(/\u001b\[[0-9;]*m/g, '').length;
}

/**
 * Lays out rows as aligned columns. The first row is the header (rendered bold when `styles` colours); columns
 * listed in `alignRight` are right-aligned (numbers).
 */
export function formatTable(rows: readonly (readonly string[])[], styles: Styles, alignRight: readonly number[] = []): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell));
    });
  }
  return rows
    .map((row, r) =>
      row
        .map((cell, i) => {
          const pad = ' '.repeat((widths[i] ?? 0) - visibleLength(cell));
          const text = r === 0 ? styles.bold(cell) : cell;
          return alignRight.includes(i) ? pad + text : i === row.length - 1 ? text : text + pad;
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Printer for one command run. */
export class Output {
  readonly json: boolean;
  /** Styles for stdout. */
  readonly out: Styles;
  /** Styles for stderr. */
  readonly err: Styles;
  readonly #stdout: OutStream;
  readonly #stderr: OutStream;
  readonly #debug: boolean;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.#stdout = options.stdout;
    this.#stderr = options.stderr;
    this.out = stylesFor(colorAllowed(options.stdout, options.env));
    this.err = stylesFor(colorAllowed(options.stderr, options.env));
    this.#debug = options.env.KEYFOLD_DEBUG === '1';
  }

  /**
   * Prints a command's result: `data` as one JSON document with `--json`, else the text `render` returns.
   * `data` must hold non-secret values only.
   */
  result(data: unknown, render: () => string): void {
    if (this.json) {
      this.#stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    } else {
      const text = render();
      if (text.length > 0) this.#stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Plain text to stdout (help, version). */
  text(text: string): void {
    this.#stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A progress or informational line for humans, on stderr; silent with `--json`. */
  note(message: string): void {
    if (!this.json) this.#stderr.write(`${message}\n`);
  }

  /**
   * Reports a failure: `keyfold: <message> [CODE]` on stderr, or `{"error":{"code","message"[,"reason"]}}` on stdout with
   * `--json` (with `--json` stdout carries only JSON: commands refuse to write data there).
   */
  error(error: unknown): void {
    const code = errorCodeFor(error);
    const message = error instanceof Error ? error.message : String(error);
    if (this.json) {
      // A refined reason some errors carry (attestation: UNTRUSTED_ROOT, PCR_MISMATCH, ...), for scripts to branch on.
      const reason = (error as { reason?: unknown } | null)?.reason;
      const refined = typeof reason === 'string' && /^[A-Z][A-Z_]{0,39}$/.test(reason) ? { reason } : {};
      this.#stdout.write(`${JSON.stringify({ error: { code, message, ...refined } })}\n`);
    } else {
      this.#stderr.write(`${this.err.red('keyfold:')} ${message} [${code}]\n`);
      if (error instanceof UsageError) {
        const help = error.command === undefined ? 'keyfold --help' : `keyfold help ${error.command}`;
        this.#stderr.write(`Run '${help}' for usage.\n`);
      }
    }
    if (this.#debug) this.#stderr.write(debugReport(error));
  }
}

/** Stack and cause chain (names, codes, messages and stacks only) for `KEYFOLD_DEBUG=1`. */
function debugReport(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      lines.push(`${depth === 0 ? 'error' : 'caused by'}: ${current.name}${typeof code === 'string' ? ` [${code}]` : ''}`);
      lines.push(current.stack ?? current.message);
      current = current.cause;
    } else {
      lines.push(`caused by a thrown ${typeof current}`);
      break;
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `text` made safe for a terminal: control characters (C0, DEL, C1) and bidirectional overrides are escaped as
 * `\uXXXX`. Envelope headers are attacker-controlled input to `inspect`; printing them raw would let a crafted
 * context rewrite the operator's screen.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) =>
    `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A context as `k=v, k=v` (keys sorted, escaped for the terminal), or `(none)`. */
export function formatContext(context: Readonly<Record<string, string>>): string {
  const keys = Object.keys(context).sort();
  if (keys.length === 0) return '(none)';
  return keys.map((k) => `${printable(k)}=${printable(context[k] ?? '')}`).join(', ');
}

/** `1234567` -> `1,234,567`. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** `label  value` lines with the labels padded to one width. */
export function formatFields(rows: readonly (readonly [string, string])[], styles: Styles): string {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${styles.bold(label.padEnd(width))}  ${value}`).join('\n');
}
