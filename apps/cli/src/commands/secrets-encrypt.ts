/**
 * `keyfold secrets encrypt FILE [--in-place]`: encrypts a config file's values; stdout by default.
 * @module
 */
import { decryptSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { encryptText, formatOf, isEncrypted, positionalArgs, readText, replaceFile, withProviders } from './secrets-common.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const inPlace = ctx.args.flag('in-place');
  if (ctx.out.json && !inPlace) throw new UsageError('--json needs --in-place: stdout carries the encrypted file', ctx.name);
  const content = await readText(file);
  const encrypted = await withProviders(ctx, async (providers) => {
    if (!isEncrypted(content, format)) return encryptText(ctx, file, content, format, providers, undefined);
    // Already encrypted: re-encrypt its plaintext with itself as `previous` (unchanged values keep their
    // ciphertext; values the rules now select get encrypted).
    const plain = await decryptSecrets(content, { format, providers });
    return encryptText(ctx, file, plain, format, providers, content);
  });
  if (!inPlace) {
    ctx.stdout.write(encrypted);
    return undefined;
  }
  await replaceFile(file, encrypted);
  ctx.out.result({ file, encrypted: true }, () => `encrypted ${file}`);
  return undefined;
}
