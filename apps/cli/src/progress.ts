/**
 * A one-line progress bar with rate and ETA on stdout, for `kek rotate`, `kek verify` and `migrate`. Shown only
 * when stdout is a terminal, colour is allowed (`NO_COLOR` unset, `TERM` not dumb) and `--json` is off; otherwise
 * every call is a no-op, so piped output and scripts see only the final report.
 * @module
 */
import type { CommandContext } from './command.js';
import { colorAllowed, formatCount } from './output.js';

export interface ProgressState {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly elapsedMs: number;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class ProgressBar {
  readonly #ctx: CommandContext;
  readonly #label: string;
  readonly #enabled: boolean;
  #last = 0;
  #drawn = false;

  constructor(ctx: CommandContext, label: string) {
    this.#ctx = ctx;
    this.#label = label;
    this.#enabled = !ctx.out.json && colorAllowed(ctx.stdout, ctx.env);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Redraws the line (at most ~10 times a second, and always when done). */
  update(p: ProgressState): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (p.done < p.total && now - this.#last < 100) return;
    this.#last = now;
    const width = 30;
    const ratio = p.total === 0 ? 1 : Math.min(1, p.done / p.total);
    const filled = Math.round(ratio * width);
    const rate = p.elapsedMs > 0 ? (p.done * 1000) / p.elapsedMs : 0;
    const eta = rate > 0 ? (p.total - p.done) / rate : Number.NaN;
    const failed = p.failed > 0 ? `, ${formatCount(p.failed)} failed` : '';
    const line =
      `${this.#label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${formatCount(p.done)}/${formatCount(p.total)} ` +
      `${(ratio * 100).toFixed(0)}%  ${formatCount(Math.round(rate))} keys/s  ETA ${duration(eta)}${failed}`;
    this.#ctx.stdout.write(`\r\u001b[2K${line}`);
    this.#drawn = true;
  }

  /** Ends the line so the report starts on its own. */
  finish(): void {
    if (this.#drawn) this.#ctx.stdout.write('\n');
    this.#drawn = false;
  }
}

/**
 * An AbortSignal that fires on the first Ctrl-C (SIGINT) while `fn` runs: the rotation stops after the batch in
 * progress and keeps its checkpoint. A second Ctrl-C exits at once (130).
 */
export async function withInterrupt<T>(ctx: CommandContext, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
    ctx.out.note('\ninterrupted: finishing the batch in progress (Ctrl-C again to stop at once)');
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(controller.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
