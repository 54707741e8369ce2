/**
 * `--context k=v`: parsed by the CLI, then checked with the core's own rules so that a bad entry is a usage error
 * (exit 2) before any key is touched.
 * @module
 */
import { assertContext, type EncryptionContext } from '@keyfold/envelope-core';
import type { CommandContext } from './command.js';
import { UsageError } from './exit-codes.js';

/** The context given with `--context`, or undefined when the flag is absent. */
export function contextOption(ctx: CommandContext): EncryptionContext | undefined {
  const entries = ctx.args.list('context');
  if (entries.length === 0) return undefined;
  const context = parseContext(entries, ctx.name);
  try {
    assertContext(context, '--context');
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
    throw err;
  }
  return context;
}

/** Parses repeated `--context k=v` values into a context object. */
export function parseContext(values: readonly string[], command: string): Record<string, string> {
  const context: Record<string, string> = {};
  for (const entry of values) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`--context expects k=v with a non-empty key; got ${JSON.stringify(entry)}`, command);
    const key = entry.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(context, key)) {
      throw new UsageError(`--context ${JSON.stringify(key)} is given twice`, command);
    }
    context[key] = entry.slice(eq + 1);
  }
  return context;
}
