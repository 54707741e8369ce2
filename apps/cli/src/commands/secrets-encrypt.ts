/**
 * `keyfold secrets encrypt FILE [--in-place] [--key-group DIR[,DIR...]]... [--shamir-threshold K]`: encrypts a
 * config file's values; stdout by default. A plaintext FILE gets a new data key, sealed under the key groups
 * (`--key-group`, else `key_groups` of `.keyfold.yaml`) when there are any, else under the configured provider.
 * @module
 */
import { decryptSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import {
  encryptText,
  formatOf,
  inspectOrUndefined,
  positionalArgs,
  readText,
  replaceFile,
  withFileProviders,
  writeToStdout,
} from './secrets-common.js';
import { keyGroupFlagsGiven, openKeyGroups, ProviderPool, requestedKeyGroups } from './secrets-key-groups.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const inPlace = ctx.args.flag('in-place');
  if (ctx.out.json && !inPlace) throw new UsageError('--json needs --in-place: stdout carries the encrypted file', ctx.name);
  const content = await readText(file);
  const info = inspectOrUndefined(content, format);
  let encrypted: string;
  if (info === undefined) {
    // Checked (flags, rules file, every group's provider) before anything is sealed or written.
    const spec = await requestedKeyGroups(ctx, file);
    if (spec === undefined) {
      encrypted = await withFileProviders(ctx, file, content, format, (providers) =>
        encryptText(ctx, file, content, format, providers, undefined),
      );
    } else {
      const pool = new ProviderPool(ctx);
      try {
        const keyGroups = await openKeyGroups(ctx, pool, spec);
        encrypted = await encryptText(ctx, file, content, format, keyGroups.groups.flat(), undefined, keyGroups);
      } finally {
        await pool.close();
      }
    }
  } else {
    if (keyGroupFlagsGiven(ctx)) {
      throw new UsageError(
        `${file} is already encrypted, and re-encrypting keeps its data key: to seal it under other key groups use ` +
          `'keyfold secrets rotate FILE --key-group DIR[,DIR...] ... [--shamir-threshold K]'`,
        ctx.name,
      );
    }
    // Already encrypted: re-encrypt its plaintext with itself as `previous` (unchanged values keep their
    // ciphertext, the data key and its key groups stay; values the rules now select get encrypted).
    encrypted = await withFileProviders(ctx, file, content, format, async (providers) => {
      const plain = await decryptSecrets(content, { format, providers });
      return encryptText(ctx, file, plain, format, providers, content);
    });
  }
  if (!inPlace) {
    await writeToStdout(ctx, file, encrypted);
    return undefined;
  }
  await replaceFile(file, encrypted);
  const sealed = inspectOrUndefined(encrypted, format)?.keyGroups;
  ctx.out.result(
    { file, encrypted: true, ...(sealed === undefined ? {} : { keyGroups: sealed }) },
    () => `encrypted ${file}${sealed === undefined ? '' : ` (${sealed.threshold} of ${sealed.groups.length} key groups open it)`}`,
  );
  return undefined;
}
