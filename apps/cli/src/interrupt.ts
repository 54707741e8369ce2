/**
 * Signals during a write. A run that is writing output (`decrypt --out FILE`, data on stdout) and receives SIGINT
 * (Ctrl-C), SIGTERM (kill) or SIGHUP (the terminal went away, an SSH session dropped) cleans up what it must not leave
 * behind (the temporary file of plaintext), prints one coded line and exits 128 + the signal number.
 * @module
 */
import { exitCodeForSignal } from './exit-codes.js';
import { errorLine } from './output.js';

/** The signals that end a write. SIGKILL cannot be caught: the next write to the same target removes its leftovers. */
export const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Until the returned function is called, SIGINT, SIGTERM and SIGHUP run `cleanup` (synchronously: the process exits
 * right after), print `keyfold: interrupted by SIG...; <outcome> [INTERRUPTED]` on stderr and exit 128 + signal.
 * `outcome` says what became of the output ("FILE was not written").
 * @returns a function that removes the handlers (idempotent).
 */
export function onInterrupt(outcome: string, cleanup: () => void = () => undefined): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    try {
      cleanup();
    } finally {
      try {
        process.stderr.write(errorLine(`interrupted by ${signal}; ${outcome}`, 'INTERRUPTED'));
      } finally {
        process.exit(exitCodeForSignal(signal));
      }
    }
  };
  for (const signal of INTERRUPT_SIGNALS) process.on(signal, handler);
  return () => {
    for (const signal of INTERRUPT_SIGNALS) process.removeListener(signal, handler);
  };
}
