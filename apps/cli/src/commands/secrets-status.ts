/**
 * `keyfold secrets status FILE`: which values are encrypted, which are plaintext, and which providers wrap the data
 * key (for a key-group file: the threshold and each group's providers). Metadata only: no provider is opened and
 * nothing is decrypted.
 * @module
 */
import { inspectSecrets } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { formatFields, printable } from '../output.js';
import { formatOf, positionalArgs, readText } from './secrets-common.js';
import { describeOpeners } from './secrets-key-groups.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const { file } = positionalArgs(ctx, 1, 1, 'FILE');
  const format = formatOf(ctx, file);
  const info = inspectSecrets(await readText(file), { format });
  const wrappedBy = info.wrappedKeys.map((k) => ({ kind: k.kind, keyId: k.keyId, keyVersion: k.keyVersion }));
  const result = {
    file,
    format: info.format,
    lastModified: info.lastModified,
    encrypted: info.encrypted,
    plaintext: info.plaintext,
    wrappedBy,
    ...(info.keyGroups === undefined ? {} : { keyGroups: info.keyGroups }),
  };
  ctx.out.result(result, () => {
    const list = (xs: readonly string[]): string => (xs.length === 0 ? '-' : xs.map(printable).join(', '));
    return formatFields(
      [
        ['file', printable(file)],
        ['format', info.format],
        ['last modified', printable(info.lastModified)],
        [`encrypted (${info.encrypted.length})`, list(info.encrypted)],
        [`plaintext (${info.plaintext.length})`, list(info.plaintext)],
        ...(info.keyGroups === undefined
          ? [['opened by', describeOpeners(info)] as const]
          : [
              ['key groups', `any ${info.keyGroups.threshold} of ${info.keyGroups.groups.length} open the file`] as const,
              ...info.keyGroups.groups.map(
                (g, i) => [`  group ${i + 1}`, list(g.map((k) => `${k.kind}:${k.keyId}#${k.keyVersion}`))] as const,
              ),
            ]),
      ],
      ctx.out.out,
    );
  });
  return undefined;
}
