/**
 * `keyfold secrets decrypt FILE [--in-place | --extract PATH]`: verifies and decrypts; the plaintext goes to stdout
 * (the one place a `secrets` command prints secrets), or back into FILE with `--in-place`.
 * @module
 */
import { decryptSecrets, loadSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { CliError, UsageError } from '../exit-codes.js';
import { formatOf, positionalArgs, readText, replaceFile, withFileProviders, writeToStdout } from './secrets-common.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const inPlace = ctx.args.flag('in-place');
  const extract = ctx.args.string('extract');
  if (inPlace && extract !== undefined) throw new UsageError('--in-place and --extract cannot be combined', ctx.name);
  if (ctx.out.json && !inPlace) throw new UsageError('--json needs --in-place: stdout carries the plaintext', ctx.name);
  const content = await readText(file);
  if (extract !== undefined) {
    const value = await withFileProviders(ctx, file, content, format, async (providers) => {
      const store = await loadSecrets({ content, format }, { providers, format });
      try {
        if (store.has(extract)) return store.get(extract) ?? '';
        const section = store.getSection(extract);
        if (section === undefined) throw new CliError('IO_ERROR', `${file} has no value at ${JSON.stringify(extract)}`);
        return `${JSON.stringify(section, null, 2)}`;
      } finally {
        store.destroy();
      }
    });
    await writeToStdout(ctx, file, value.endsWith('\n') ? value : `${value}\n`);
    return undefined;
  }
  const plain = await withFileProviders(ctx, file, content, format, (providers) => decryptSecrets(content, { format, providers }));
  if (!inPlace) {
    await writeToStdout(ctx, file, plain);
    return undefined;
  }
  await replaceFile(file, plain);
  ctx.out.result({ file, decrypted: true }, () => `decrypted ${file} (it now holds plaintext)`);
  return undefined;
}
