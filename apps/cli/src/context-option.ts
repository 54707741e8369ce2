/**
 * `--context k=v`: parsed by the CLI, then checked with the core's own rules so that a bad entry is a usage error
 * (exit 2) before any key is touched.
 * @module
 */
import { assertContext, type EncryptionContext } from '@keyfold/envelope-core';
import type { CommandContext } from './command.js';
import { UsageError } from './exit-codes.js';
import { parseContext } from './io.js';

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
