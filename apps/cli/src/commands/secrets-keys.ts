/**
 * `keyfold secrets rotate FILE` (new data key, every value re-encrypted) and `keyfold secrets updatekeys FILE`
 * (the data key re-wrapped for the configured provider plus those of `--add-provider-dir` configurations). Both
 * rewrite FILE in place, atomically; values are never printed.
 * @module
 */
import { resolve } from 'node:path';
import type { KeyProvider } from '@keyfold/envelope-core';
import { inspectSecrets, rotateDataKey, updateKeys } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { loadConfig, openProvider, withProvider } from '../config.js';
import { printable } from '../output.js';
import { formatOf, positionalArgs, readText, replaceFile } from './secrets-common.js';

/** Opens the provider configured in `dir` (another keyfold configuration directory). */
async function providerIn(ctx: CommandContext, dir: string): Promise<KeyProvider> {
  const other = Object.create(ctx, { dir: { value: resolve(ctx.cwd, dir) } }) as CommandContext;
  return openProvider(other, await loadConfig(other));
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const content = await readText(file);
  const rotate = ctx.name === 'secrets rotate';
  const next = await withProvider(ctx, async (configured) => {
    if (rotate) return rotateDataKey(content, { format, providers: [configured] });
    const extra: KeyProvider[] = [];
    try {
      for (const dir of ctx.args.list('add-provider-dir')) extra.push(await providerIn(ctx, dir));
      const all = [configured, ...extra];
      return await updateKeys(content, { format, providers: all, to: all });
    } finally {
      for (const p of extra) await p.close().catch(() => undefined);
    }
  });
  await replaceFile(file, next);
  const info = inspectSecrets(next, { format });
  const wrappedBy = info.wrappedKeys.map((k) => ({ kind: k.kind, keyId: k.keyId, keyVersion: k.keyVersion }));
  ctx.out.result({ file, rotated: rotate, wrappedBy }, () =>
    `${rotate ? 'new data key for' : 'updated the keys of'} ${file}; opened by: ` +
    wrappedBy.map((k) => printable(`${k.kind}:${k.keyId}#${k.keyVersion}`)).join(', '),
  );
  return undefined;
}
