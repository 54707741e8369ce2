/**
 * `keyfold secrets rotate FILE` (new data key, every value re-encrypted; optionally split over new key groups) and
 * `keyfold secrets updatekeys FILE` (the data key re-wrapped for the configured provider plus those of
 * `--add-provider-dir` configurations). Both rewrite FILE in place, atomically; values are never printed.
 * @module
 */
import { inspectSecrets, rotateDataKey, updateKeys } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { CliError, UsageError } from '../exit-codes.js';
import { formatOf, inspectOrUndefined, positionalArgs, readText, replaceFile, withFileProviders } from './secrets-common.js';
import { describeOpeners, openKeyGroups, requestedKeyGroups } from './secrets-key-groups.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const content = await readText(file);
  const rotate = ctx.name === 'secrets rotate';
  const current = inspectOrUndefined(content, format)?.keyGroups;
  let next: string;
  if (rotate) {
    const spec = await requestedKeyGroups(ctx, file);
    if (spec === undefined && current !== undefined) {
      throw new UsageError(
        `${file} uses key groups (${current.threshold} of ${current.groups.length}); say which groups the new data key is ` +
          'split over: --key-group DIR[,DIR...] once per group [--shamir-threshold K], or key_groups in .keyfold.yaml',
        ctx.name,
      );
    }
    next = await withFileProviders(ctx, file, content, format, async (providers, pool) => {
      if (spec === undefined) return rotateDataKey(content, { format, providers, to: providers });
      // Every provider of every new group opens before the file is decrypted or anything is written.
      const keyGroups = await openKeyGroups(ctx, pool, spec);
      return rotateDataKey(content, { format, providers, keyGroups });
    });
  } else {
    if (current !== undefined) {
      // The library refuses too, but only after opening the file; say what to do instead, before any key access.
      throw new CliError(
        'UNSUPPORTED',
        `${file} uses key groups (${current.threshold} of ${current.groups.length}): its data key is split into one share ` +
          'per group, so updatekeys cannot re-wrap it. Change the groups with a new data key: keyfold secrets rotate ' +
          'FILE --key-group DIR[,DIR...] (once per group) [--shamir-threshold K]',
      );
    }
    next = await withFileProviders(ctx, file, content, format, (all) => updateKeys(content, { format, providers: all, to: all }));
  }
  await replaceFile(file, next);
  const info = inspectSecrets(next, { format });
  const wrappedBy = info.wrappedKeys.map((k) => ({ kind: k.kind, keyId: k.keyId, keyVersion: k.keyVersion }));
  ctx.out.result(
    { file, rotated: rotate, wrappedBy, ...(info.keyGroups === undefined ? {} : { keyGroups: info.keyGroups }) },
    () => `${rotate ? 'new data key for' : 'updated the keys of'} ${file}; opened by: ${describeOpeners(info)}`,
  );
  return undefined;
}
