/**
 * Everything the CLI prints goes through here: results as text or as one JSON document (`--json`), notes and errors
 * on stderr, and colour only when the stream is a terminal and `NO_COLOR` is not set (https://no-color.org).
 *
 * Security rule: nothing printed here may contain key material, passphrases or plaintext. Results are built by the
 * commands from non-secret fields only; errors print their code and message (Keyfold messages never carry
 * secrets), and debug output (`KEYFOLD_DEBUG=1`) adds stack traces and the codes and messages of causes, nothing else.
 *
 * Second rule: nothing untrusted reaches the terminal raw. Every value printed here may come from an envelope header,
 * a key store row, a configuration file or a key service, so every error message, note, text result and JSON
 * document is escaped here (`terminal-text.ts`), in this one place: control characters, C1, bidi overrides and
 * newlines inside a message or a table cell are printed as `\uXXXX`.
 * @module
 */
import { CliError, errorCodeFor, UsageError, type ErrorCode } from './exit-codes.js';
import { jsonText, printable, terminalText } from './terminal-text.js';

export { printable } from './terminal-text.js';

/** The parts of a stream the CLI uses. Narrow on purpose so tests and callers can pass any writable. */
export interface OutStream {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  readonly isTTY?: boolean;
  on?(event: 'error', listener: (error: Error) => void): unknown;
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
  /** True when the styles colour (the stream is a terminal and colour is allowed). */
  readonly colour: boolean;
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
}

function stylesFor(enabled: boolean): Styles {
  return {
    colour: enabled,
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

/** One table cell or field value: one line, unsafe characters escaped (the CLI's own colours kept). */
function cellText(text: string, styles: Styles): string {
  return terminalText(text, { newlines: false, colour: styles.colour });
}

/**
 * Lays out rows as aligned columns. The first row is the header (rendered bold when `styles` colours); columns
 * listed in `alignRight` are right-aligned (numbers). Cells are escaped for the terminal (a newline in a value
 * stays inside its cell, as `\u000a`).
 */
export function formatTable(unsafeRows: readonly (readonly string[])[], styles: Styles, alignRight: readonly number[] = []): string {
  const rows = unsafeRows.map((row) => row.map((cell) => cellText(cell, styles)));
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

/**
 * The one error line: `keyfold: <message> [CODE]`, the message escaped for the terminal (one line, whatever it
 * quotes). Also used where no {@link Output} is at hand (a signal handler).
 */
export function errorLine(message: string, code: ErrorCode, styles?: Styles): string {
  const prefix = styles === undefined ? 'keyfold:' : styles.red('keyfold:');
  return `${prefix} ${printable(message)} [${code}]\n`;
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
  /** The first error each stream reported (EPIPE when the reader went away), kept for {@link Output.settle}. */
  #stdoutError: Error | undefined;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.#stdout = options.stdout;
    this.#stderr = options.stderr;
    this.out = stylesFor(colorAllowed(options.stdout, options.env));
    this.err = stylesFor(colorAllowed(options.stderr, options.env));
    this.#debug = options.env.KEYFOLD_DEBUG === '1';
    // A stream error must never become an uncaught exception (a stack trace): stdout's is reported by `settle`,
    // stderr's cannot be reported anywhere and is dropped.
    options.stdout.on?.('error', (error) => {
      this.#stdoutError ??= error;
    });
    if (options.stderr !== options.stdout) options.stderr.on?.('error', () => undefined);
  }

  /**
   * Prints a command's result: `data` as one JSON document with `--json`, else the text `render` returns.
   * `data` must hold non-secret values only. Both are escaped for the terminal.
   */
  result(data: unknown, render: () => string): void {
    if (this.json) {
      this.#stdout.write(`${jsonText(JSON.stringify(data, null, 2))}\n`);
    } else {
      const text = terminalText(render(), { newlines: true, colour: this.out.colour });
      if (text.length > 0) this.#stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Plain text to stdout (help, version). */
  text(text: string): void {
    const safe = terminalText(text, { newlines: true, colour: this.out.colour });
    this.#stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
  }

  /** A progress or informational line for humans, on stderr; silent with `--json`. */
  note(message: string): void {
    if (!this.json) this.#stderr.write(`${terminalText(message, { newlines: true, colour: this.err.colour })}\n`);
  }

  /**
   * Reports a failure: `keyfold: <message> [CODE]` on stderr, or `{"error":{"code","message"[,"reason"]}}` on stdout with
   * `--json` (with `--json` stdout carries only JSON: commands refuse to write data there). When stdout is gone
   * (the reader closed it), the line goes to stderr even with `--json`.
   */
  error(error: unknown): void {
    const code = errorCodeFor(error);
    const message = error instanceof Error ? error.message : String(error);
    if (this.json && this.#stdoutError === undefined) {
      // A refined reason some errors carry (attestation: UNTRUSTED_ROOT, PCR_MISMATCH, ...), for scripts to branch on.
      const reason = (error as { reason?: unknown } | null)?.reason;
      const refined = typeof reason === 'string' && /^[A-Z][A-Z_]{0,39}$/.test(reason) ? { reason } : {};
      this.#stdout.write(`${jsonText(JSON.stringify({ error: { code, message, ...refined } }))}\n`);
    } else {
      this.#stderr.write(errorLine(message, code, this.err));
      if (error instanceof UsageError) {
        const help = error.command === undefined ? 'keyfold --help' : `keyfold help ${error.command}`;
        this.#stderr.write(`Run '${help}' for usage.\n`);
      }
    }
    if (this.#debug) this.#stderr.write(terminalText(debugReport(error), { newlines: true, colour: false }));
  }

  /**
   * Waits until everything written to stdout was handed to the system, and returns the error stdout reported, if
   * any. A closed pipe (`keyfold decrypt | head -c1`) surfaces here as IO_ERROR: the output was not delivered in
   * full, which a script must not take for success.
   */
  async settle(): Promise<CliError | undefined> {
    if (this.#stdoutError === undefined) {
      await new Promise<void>((resolve) => {
        try {
          this.#stdout.write('', (error) => {
            if (error !== undefined && error !== null) this.#stdoutError ??= error;
            resolve();
          });
        } catch (error) {
          this.#stdoutError ??= error as Error;
          resolve();
        }
      });
    }
    return this.#stdoutError === undefined ? undefined : stdoutClosedError(this.#stdoutError);
  }
}

/**
 * IO_ERROR for output that could not be written to stdout: EPIPE (the reader exited before reading it all), or a
 * refused write (ENOSPC on a full disk, ...).
 */
export function stdoutClosedError(cause: unknown): CliError {
  const errno = (cause as { code?: unknown } | null)?.code;
  if (errno === 'EPIPE') {
    return new CliError('IO_ERROR', 'cannot write to stdout: the reader closed the pipe (EPIPE) before all output was written', { cause });
  }
  const reason =
    errno === 'ENOSPC' ? 'no space left on device' : errno === 'ERR_STREAM_DESTROYED' ? 'it is closed' : typeof errno === 'string' ? errno : 'write failed';
  return new CliError('IO_ERROR', `cannot write to stdout: ${reason}; the output is incomplete`, { cause });
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

/** `label  value` lines with the labels padded to one width; values escaped for the terminal, one line each. */
export function formatFields(rows: readonly (readonly [string, string])[], styles: Styles): string {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${styles.bold(label.padEnd(width))}  ${cellText(value, styles)}`).join('\n');
}
