/**
 * Child-process entry for one streaming contender:
 * `node --expose-gc stream-child.js '<spec json>' <bytes> <warmupBytes> [phases]` (`phases`: seal-only and open-only
 * figures instead of the seal -> open pipeline).
 * Forked with an IPC channel it sends one `{ ok: true, result }` or `{ ok: false, error }` message; run by hand
 * (e.g. under `--cpu-prof`) it prints the result as JSON.
 * @module
 */
import { runStreamCase, runStreamPhases, type StreamSpec } from './stream-case.js';

async function main(): Promise<void> {
  const [specJson, bytes, warmup, mode] = process.argv.slice(2);
  if (!specJson || !bytes || !warmup) {
    throw new Error(`usage: node --expose-gc stream-child.js '{"kind":"keyfold"}' <bytes> <warmupBytes>`);
  }
  const spec = JSON.parse(specJson) as StreamSpec;
  const result =
    mode === 'phases' ? await runStreamPhases(spec, Number(bytes), Number(warmup)) : await runStreamCase(spec, Number(bytes), Number(warmup));
  if (process.send) await new Promise<void>((resolve) => process.send!({ ok: true, result }, () => resolve()));
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    if (process.send) process.send({ ok: false, error }, () => process.exit(1));
    else {
      process.stderr.write(`${error}\n`);
      process.exit(1);
    }
  },
);
