/**
 * `keyfold encrypt`: plaintext in (file or stdin), envelope out (file or stdout). Binary output is streamed
 * frame by frame; `--armor` seals in memory (bounded: `input-limits.ts`) and writes one `kf1.` line.
 * @module
 */
import { pipeline } from 'node:stream/promises';
import type { EncryptionContext } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { withEnvelope } from '../config.js';
import { withTenantEnvelope } from '../store.js';
import { contextOption } from '../context-option.js';
import { MAX_ARMOR_PLAINTEXT_BYTES, readBounded } from '../input-limits.js';
import { isStdio, openInput, type Input } from '../input.js';
import { assertJsonOutput, ByteCounter, withOutput, writeAll } from '../output-sink.js';
import { formatContext, formatCount } from '../output.js';

const ARMOR_PLAINTEXT_ADVICE = '--armor seals in memory and decrypt reads at most 64 MiB of armor: seal large data as binary (without --armor)';

interface Sealed {
  bytesIn: number;
  bytesOut: number;
}

function seal(ctx: CommandContext, input: Input, outPath: string | undefined, context: EncryptionContext, armored: boolean) {
  return withEnvelopeFor(ctx, (envelope) =>
    withOutput(ctx, outPath, 0o666, async (sink): Promise<Sealed> => {
      if (armored) {
        const plaintext = await readBounded(input.stream, input.name, MAX_ARMOR_PLAINTEXT_BYTES, ARMOR_PLAINTEXT_ADVICE);
        try {
          const text = `${await envelope.sealToString(plaintext, context)}\n`;
          await writeAll(sink, text);
          return { bytesIn: plaintext.length, bytesOut: Buffer.byteLength(text) };
        } finally {
          plaintext.fill(0);
        }
      }
      const counterIn = new ByteCounter();
      const counterOut = new ByteCounter();
      await pipeline(input.stream, counterIn, envelope.sealStream(context), counterOut, sink);
      return { bytesIn: counterIn.bytes, bytesOut: counterOut.bytes };
    }),
  );
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const inPath = ctx.args.string('in');
  const outPath = ctx.args.string('out');
  const armored = ctx.args.flag('armor');
  assertJsonOutput(ctx, outPath);
  const context = contextOption(ctx) ?? {};
  const input = await openInput(ctx, inPath);
  let sealed: Sealed;
  try {
    sealed = await seal(ctx, input, outPath, context, armored);
  } finally {
    input.close();
  }

  const result = {
    ok: true,
    in: input.name,
    out: isStdio(outPath) ? 'stdout' : outPath,
    armor: armored,
    context,
    plaintextBytes: sealed.bytesIn,
    envelopeBytes: sealed.bytesOut,
  };
  // With data on stdout the text result stays silent: stdout is the envelope.
  ctx.out.result(result, () =>
    isStdio(outPath)
      ? ''
      : `sealed ${input.name} -> ${outPath} (${formatCount(sealed.bytesIn)} -> ${formatCount(sealed.bytesOut)} bytes, ` +
        `context ${formatContext(context)})`,
  );
  return undefined;
}

/** `--tenant ID`: an envelope over the tenant's key from the key store; else over the installation's KEK. */
function withEnvelopeFor<T>(ctx: CommandContext, fn: Parameters<typeof withEnvelope<T>>[1]): Promise<T> {
  const tenant = ctx.args.string('tenant');
  return tenant === undefined ? withEnvelope(ctx, fn) : withTenantEnvelope(ctx, tenant, fn);
}
