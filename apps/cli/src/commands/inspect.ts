/**
 * `keyfold inspect`: the header of an envelope, with no configuration, no provider and no passphrase. A binary
 * envelope is read only as far as its header (at most the header size limit); the body is counted, not kept.
 * @module
 */
import { inspectEnvelope, type EnvelopeInfo } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { readEnvelopeStart } from '../envelope-input.js';
import { openInput, type Input } from '../input.js';
import { formatContext, formatCount, formatFields, formatTable, printable } from '../output.js';

async function readInfo(input: Input): Promise<EnvelopeInfo & { armored: boolean }> {
  const start = await readEnvelopeStart(input);
  if (start.armored) return { ...inspectEnvelope(start.text), armored: true };
  const info = inspectEnvelope(start.head);
  let total = input.size;
  if (total === undefined) {
    total = 0;
    for await (const chunk of start.stream as AsyncIterable<Buffer>) total += chunk.length;
  }
  return { ...info, bodyLength: total - info.headerLength, armored: false };
}

function render(info: EnvelopeInfo & { armored: boolean }, ctx: CommandContext): string {
  const s = ctx.out.out;
  const lines = formatFields(
    [
      ['format', `v${info.formatVersion}${info.armored ? ' (kf1. text armor)' : ' (binary)'}`],
      ['suite', `${printable(info.suite)} (id ${info.suiteId})`],
      ['framing', info.framed ? `framed, ${formatCount(info.frameSize)}-byte frames` : 'single-shot'],
      ['context', formatContext(info.context)],
      ['header', `${formatCount(info.headerLength)} bytes`],
      ['body', `${formatCount(info.bodyLength)} bytes`],
      ['wrapped keys', String(info.wrappedKeys.length)],
    ],
    s,
  );
  const keys = formatTable(
    [
      ['kind', 'key id', 'version', 'wrapped bytes'],
      ...info.wrappedKeys.map((w) => [printable(w.kind), printable(w.keyId), printable(w.keyVersion), String(w.ciphertextLength)]),
    ],
    s,
    [3],
  );
  return `${lines}\n\n${keys}`;
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const input = await openInput(ctx, ctx.args.string('in'));
  let info: EnvelopeInfo & { armored: boolean };
  try {
    info = await readInfo(input);
  } finally {
    input.close();
  }
  ctx.out.result(info, () => render(info, ctx));
  return undefined;
}
