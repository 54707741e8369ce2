/**
 * `keyfold provider probe`: asks the configured provider to prove it works (a wrap and unwrap of a throwaway key,
 * or the backend's cheapest call) and reports health, latency and capabilities. Exit 1 when it is not healthy.
 * @module
 */
import type { CommandContext } from '../command.js';
import { withProvider } from '../config.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { formatFields, printable } from '../output.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const result = await withProvider(ctx, (provider) => provider.probe());
  const s = ctx.out.out;
  ctx.out.result(result, () => {
    const rows: [string, string][] = [
      ['status', result.ok ? s.green('ok') : s.red('FAILED')],
      ['provider', printable(result.kind)],
      ['key id', printable(result.keyId)],
      ['latency', `${result.latencyMs.toFixed(1)} ms`],
    ];
    if (result.activeVersion !== undefined) rows.push(['active version', printable(result.activeVersion)]);
    if (result.capabilities !== undefined) {
      const c = result.capabilities;
      const names = (['generateDataKey', 'rewrapKey', 'rotate'] as const).filter((k) => c[k]);
      rows.push(['capabilities', names.length === 0 ? 'wrap, unwrap' : `wrap, unwrap, ${names.join(', ')}`]);
    }
    if (result.error !== undefined) rows.push(['error', `${printable(result.error.message)} [${printable(result.error.code)}]`]);
    for (const [k, v] of Object.entries(result.details ?? {})) rows.push([printable(k), printable(String(v))]);
    return formatFields(rows, s);
  });
  if (result.ok) return ExitCode.OK;
  if (!ctx.out.json) {
    const reason = result.error === undefined ? 'no reason given' : `${result.error.code}: ${result.error.message}`;
    ctx.out.error(new CliError('PROBE_FAILED', `the ${result.kind} provider is not healthy (${printable(reason)})`));
  }
  return ExitCode.FAILURE;
}
