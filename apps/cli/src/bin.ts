/**
 * Entry point of the `keyfold` binary. Deliberately tiny: it loads the dispatcher and the command table only;
 * each command module, the core and the provider packages are imported when a command runs, so `keyfold --help`
 * starts nearly as fast as `node` itself.
 * @module
 */
import { main } from './cli.js';

// A reader that goes away (`keyfold status | head -1`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2), {
  get stdin() {
    return process.stdin;
  },
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
