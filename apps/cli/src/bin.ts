/**
 * Entry point of the `keyfold` binary. Deliberately tiny: it loads the dispatcher and the command table only;
 * each command module, the core and the provider packages are imported when a command runs, so `keyfold --help`
 * starts nearly as fast as `node` itself.
 * @module
 */
import { main } from './cli.js';
import { errorLine } from './output.js';

// Stream errors (a reader that went away: EPIPE) are reported by `main` through Output, which listens for them on
// stdout and stderr. This last resort only catches what escaped every handler: one coded line, exit 1, never a
// stack trace (KEYFOLD_DEBUG=1 adds it).
process.on('uncaughtException', (err) => {
  try {
    process.stderr.write(errorLine(`internal error: ${err instanceof Error ? err.message : String(err)}`, 'INTERNAL'));
    if (process.env.KEYFOLD_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  } finally {
    process.exit(1);
  }
});

process.exitCode = await main(process.argv.slice(2), {
  get stdin() {
    return process.stdin;
  },
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
