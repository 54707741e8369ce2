/**
 * `keyfold decrypt`: envelope in (binary or `kf1.` armor, detected from the first bytes), plaintext out. Binary
 * envelopes are opened as a stream; `--out FILE` is replaced only after the whole envelope verified. Armor is
 * decoded in memory, so it is bounded (`input-limits.ts`).
 * @module
 */
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { inspectEnvelope, type OpenOptions } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { withEnvelope } from '../config.js';
import { withTenantEnvelope } from '../store.js';
import { contextOption } from '../context-option.js';
import { isStdio, openInput, type Input } from '../input.js';
import { assertJsonOutput, ByteCounter, withOutput, writeAll } from '../output-sink.js';
import { readEnvelopeStart } from '../envelope-input.js';
import { formatCount } from '../output.js';

interface Opened {
  armored: boolean;
  bytesOut: number;
}

/**
 * Reads the start of the input and checks the envelope header (no key access) before the provider is opened, so
 * that input which is not an envelope fails without asking for a passphrase.
 */
async function readHeader(input: Input): Promise<{ armored: boolean; text: string | undefined; stream: Readable }> {
  const start = await readEnvelopeStart(input);
  if (start.armored) {
    inspectEnvelope(start.text);
    return { armored: true, text: start.text, stream: start.stream };
  }
  inspectEnvelope(start.head);
  return { armored: false, text: undefined, stream: start.stream };
}

async function open(ctx: CommandContext, input: Input, outPath: string | undefined, options: OpenOptions): Promise<Opened> {
  const { armored, text, stream } = await readHeader(input);
  const bytesOut = await withEnvelopeFor(ctx, (envelope) =>
    withOutput(ctx, outPath, 0o600, async (sink) => {
      if (text !== undefined) {
        const plaintext = await envelope.open(text, options);
        try {
          await writeAll(sink, plaintext);
          return plaintext.length;
        } finally {
          plaintext.fill(0);
        }
      }
      const counter = new ByteCounter();
      await pipeline(stream, envelope.openStream(options), counter, sink);
      return counter.bytes;
    }),
  );
  return { armored, bytesOut };
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const inPath = ctx.args.string('in');
  const outPath = ctx.args.string('out');
  assertJsonOutput(ctx, outPath);
  const context = contextOption(ctx);
  const input = await openInput(ctx, inPath);
  let opened: Opened;
  try {
    opened = await open(ctx, input, outPath, context === undefined ? {} : { context });
  } finally {
    input.close();
  }

  const result = {
    ok: true,
    in: input.name,
    out: isStdio(outPath) ? 'stdout' : outPath,
    armored: opened.armored,
    plaintextBytes: opened.bytesOut,
  };
  ctx.out.result(result, () =>
    isStdio(outPath) ? '' : `opened ${input.name} -> ${outPath} (${formatCount(opened.bytesOut)} bytes)`,
  );
  return undefined;
}

/** `--tenant ID`: an envelope over the tenant's key from the key store; else over the installation's KEK. */
function withEnvelopeFor<T>(ctx: CommandContext, fn: Parameters<typeof withEnvelope<T>>[1]): Promise<T> {
  const tenant = ctx.args.string('tenant');
  return tenant === undefined ? withEnvelope(ctx, fn) : withTenantEnvelope(ctx, tenant, fn);
}
