/**
 * Typing Ctrl-C during `keyfold kek rotate`, for real: the binary runs on a pseudo-terminal (util-linux `script`),
 * so the progress bar is drawn, and the byte 0x03 typed on that terminal becomes SIGINT through the line discipline.
 * It is typed once the bar shows the run under way (waiting for output, never for a time).
 */
import { spawnSync } from 'node:child_process';
import { baseEnv, BIN, spawnAsync } from './helpers.js';

/** Throws unless util-linux `script` is available. */
export function requireScript(): void {
  const r = spawnSync('script', ['--version']);
  if (r.error !== undefined || r.status !== 0) {
    throw new Error('this test needs util-linux `script` (a pseudo-terminal for Ctrl-C and the progress bar); install util-linux');
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Pseudo-terminal output without control sequences (colour, line clearing), carriage returns as new lines. */
export function plain(output: string): string {
  return output.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '\n');
}

const count = (s: string): number => Number(s.replace(/,/g, ''));

/** The last `done/total` the progress bar drew, or undefined. */
function lastProgress(output: string): { done: number; total: number } | undefined {
  const m = [...plain(output).matchAll(/rotating \[[#-]+\] ([\d,]+)\/([\d,]+)/g)].at(-1);
  return m === undefined ? undefined : { done: count(m[1] as string), total: count(m[2] as string) };
}

export interface InterruptedRotation {
  /** Exit status of the run (`script -e` passes the CLI's on). */
  readonly status: number | null;
  /** Everything the run wrote to the terminal, without control sequences. */
  readonly text: string;
  /** The progress the bar showed when Ctrl-C was typed (undefined: it never showed any). */
  readonly typedAt: { readonly done: number; readonly total: number } | undefined;
  /** The `re-wrapped` count of the final report (undefined: no report). */
  readonly rewrapped: number | undefined;
}

/**
 * Runs `keyfold kek rotate --batch-size N --dir DIR` on a pseudo-terminal and types Ctrl-C as soon as the
 * progress bar shows at least one batch done.
 */
export async function ctrlCDuringRotate(options: {
  dir: string;
  cwd: string;
  env: Record<string, string | undefined>;
  batchSize: number;
}): Promise<InterruptedRotation> {
  const argv = [process.execPath, BIN, 'kek', 'rotate', '--batch-size', String(options.batchSize), '--dir', options.dir];
  // `exec`: the CLI itself is the terminal's foreground process, not a shell waiting for it.
  const command = ['exec', ...argv.map(shellQuote)].join(' ');
  let typedAt: { done: number; total: number } | undefined;
  const r = await spawnAsync('script', ['-qfec', command, '/dev/null'], {
    cwd: options.cwd,
    env: baseEnv({ TERM: 'xterm', NO_COLOR: undefined, ...options.env }),
    converse: (output, write) => {
      const p = lastProgress(output);
      if (typedAt === undefined && p !== undefined && p.done > 0) {
        typedAt = p;
        write('\u0003');
      }
    },
  });
  const text = plain(r.output);
  const reported = /re-wrapped\s+([\d,]+)/.exec(text);
  return { status: r.status, text, typedAt, rewrapped: reported === null ? undefined : count(reported[1] as string) };
}
