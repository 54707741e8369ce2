/**
 * Framed streaming: round trips at the frame boundaries, random chunking, and every structural attack on frames
 * (truncation, dropping, reordering, swapping from another stream), plus the rule that no plaintext of a frame is
 * released before its tag verifies.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope, KeyfoldError } from '../src/index.js';
import {
  concat,
  expectKeyfold,
  feed,
  LocalKekProvider,
  pseudoRandomBytes,
  runTransform,
  sealStreamed,
  split,
  splitFrames,
} from './helpers.js';
import { refParseHeader } from './reference.js';

const FRAME = 256;

function makeEnv(cache = false): { env: ReturnType<typeof createEnvelope>; provider: LocalKekProvider } {
  const provider = new LocalKekProvider();
  return { env: createEnvelope({ providers: [provider], frameSize: FRAME, cache }), provider };
}

async function openStreamed(env: ReturnType<typeof createEnvelope>, sealed: Uint8Array, sizes: readonly number[] = [sealed.length]): Promise<Buffer> {
  return runTransform(env.openStream(), split(sealed, sizes));
}

describe('sealStream / openStream round trip', () => {
  const { env } = makeEnv();
  const sizes = [0, 1, FRAME - 1, FRAME, FRAME + 1, 2 * FRAME, 3 * FRAME, 3 * FRAME + 17, 10_000];

  for (const size of sizes) {
    it(`round trips ${size} bytes (frameSize ${FRAME})`, async () => {
      const data = pseudoRandomBytes(size, size + 1);
      const sealed = await sealStreamed(env, data, [size || 1], { size: String(size) });
      const info = env.inspect(sealed);
      expect(info.framed).toBe(true);
      // ceil(size / frame) frames, plus an empty final frame when size is 0.
      const frames = Math.max(1, Math.ceil(size / FRAME));
      expect(info.bodyLength).toBe(size + frames * 20);
      expect(splitFrames(sealed, info.headerLength).frames).toHaveLength(frames);
      expect(Buffer.from(await openStreamed(env, sealed))).toEqual(Buffer.from(data));
      expect(Buffer.from(await env.open(sealed, { context: { size: String(size) } }))).toEqual(Buffer.from(data));
    });
  }

  it('round trips with random chunking on both sides', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const data = pseudoRandomBytes(seed * 97, seed);
      const chunkSizes = Array.from(pseudoRandomBytes(8, seed + 100), (b) => 1 + (b % 300));
      const sealed = await sealStreamed(env, data, chunkSizes);
      const reads = Array.from(pseudoRandomBytes(8, seed + 200), (b) => 1 + (b % 400));
      expect(Buffer.from(await openStreamed(env, sealed, reads))).toEqual(Buffer.from(data));
    }
  });

  it('opens a single-shot envelope through openStream too', async () => {
    const data = pseudoRandomBytes(1000, 3);
    const sealed = await env.seal(data);
    expect(Buffer.from(await openStreamed(env, sealed, [7, 100]))).toEqual(Buffer.from(data));
    await expectKeyfold(() => openStreamed(env, sealed.subarray(0, sealed.length - 1)), 'DECRYPT_FAILED');
  });
});

describe('frame-level attacks are refused with DECRYPT_FAILED', () => {
  const data = pseudoRandomBytes(3 * FRAME, 42); // three equal-size frames (the last one final)

  async function sealed3(env: ReturnType<typeof createEnvelope>, context?: Record<string, string>) {
    const sealed = await sealStreamed(env, data, [100], context);
    const info = env.inspect(sealed);
    const parts = splitFrames(sealed, info.headerLength);
    expect(parts.frames).toHaveLength(3);
    return { sealed, ...parts };
  }

  /** Both the streaming opener and the buffer opener refuse `bytes`. */
  async function refusedBoth(env: ReturnType<typeof createEnvelope>, bytes: Uint8Array): Promise<void> {
    await expectKeyfold(() => openStreamed(env, bytes), 'DECRYPT_FAILED');
    await expectKeyfold(() => openStreamed(env, bytes, [1, 3, 250]), 'DECRYPT_FAILED');
    await expectKeyfold(() => env.open(bytes), 'DECRYPT_FAILED');
  }

  it('truncation at a frame boundary (final frame dropped)', async () => {
    const { env } = makeEnv();
    const { header, frames } = await sealed3(env);
    await refusedBoth(env, concat(header, frames[0]!, frames[1]!));
    await refusedBoth(env, concat(header, frames[0]!));
    await refusedBoth(env, header);
  });

  it('a dropped middle frame', async () => {
    const { env } = makeEnv();
    const { header, frames } = await sealed3(env);
    await refusedBoth(env, concat(header, frames[0]!, frames[2]!));
    await refusedBoth(env, concat(header, frames[1]!, frames[2]!));
  });

  it('reordered frames (two equal-size frames swapped)', async () => {
    const { env } = makeEnv();
    const { header, frames } = await sealed3(env);
    await refusedBoth(env, concat(header, frames[1]!, frames[0]!, frames[2]!));
  });

  it('a final frame marked non-final, or a non-final frame marked final', async () => {
    const { env } = makeEnv();
    const { header, frames } = await sealed3(env);
    const asFinal = Uint8Array.from(frames[1]!);
    asFinal[0] = (asFinal[0] as number) | 0x80;
    await refusedBoth(env, concat(header, frames[0]!, asFinal));
    const notFinal = Uint8Array.from(frames[2]!);
    notFinal[0] = (notFinal[0] as number) & 0x7f;
    await refusedBoth(env, concat(header, frames[0]!, frames[1]!, notFinal));
  });

  it('a frame swapped in from another stream sealed with the same (cached) data key', async () => {
    const { env } = makeEnv(true);
    const a = await sealed3(env, { t: 'same' });
    const b = await sealed3(env, { t: 'same' });
    // Premise: both streams share one data key (the cache), so only the per-message salt separates them.
    const ha = refParseHeader(a.header);
    const hb = refParseHeader(b.header);
    expect(Buffer.from(ha.wrappedKeys[0]!.ciphertext)).toEqual(Buffer.from(hb.wrappedKeys[0]!.ciphertext));
    expect(Buffer.from(ha.salt)).not.toEqual(Buffer.from(hb.salt));
    expect(env.stats().providerCalls.total).toBe(1);
    await refusedBoth(env, concat(a.header, a.frames[0]!, b.frames[1]!, a.frames[2]!));
    await refusedBoth(env, concat(a.header, b.frames[0]!, a.frames[1]!, a.frames[2]!));
    await refusedBoth(env, concat(a.header, a.frames[0]!, a.frames[1]!, b.frames[2]!));
    // A whole body under the other header is refused too.
    await refusedBoth(env, concat(a.header, ...b.frames));
  });

  it('a frame swapped in from a stream under a different data key', async () => {
    const { env } = makeEnv();
    const a = await sealed3(env);
    const b = await sealed3(env);
    await refusedBoth(env, concat(a.header, a.frames[0]!, b.frames[1]!, a.frames[2]!));
  });

  it('garbage appended after the final frame', async () => {
    const { env } = makeEnv();
    const { sealed } = await sealed3(env);
    for (const extra of [new Uint8Array(1), new Uint8Array(4), pseudoRandomBytes(20, 5), sealed.subarray(0, 100)]) {
      await refusedBoth(env, concat(sealed, extra));
    }
  });
});

describe('no plaintext of a frame is emitted before its tag is verified', () => {
  const data = pseudoRandomBytes(3 * FRAME, 9);

  async function setup() {
    const { env } = makeEnv();
    const sealed = Uint8Array.from(await sealStreamed(env, data, [FRAME]));
    const { header, frames } = splitFrames(sealed, env.inspect(sealed).headerLength);
    return { env, sealed, header, frames };
  }

  it('a flipped ciphertext byte in frame 2 of 3: exactly frames 0 and 1 are emitted, then DECRYPT_FAILED', async () => {
    const { env, header, frames } = await setup();
    const bad = Uint8Array.from(frames[2]!);
    bad[4 + 10] = (bad[4 + 10] as number) ^ 0x01;
    for (const chunks of [[header, frames[0]!, frames[1]!, bad], [concat(header, frames[0]!, frames[1]!, bad)]]) {
      const { emitted, error } = await feed(env.openStream(), chunks);
      expect(error).toBeInstanceOf(KeyfoldError);
      expect((error as KeyfoldError).code).toBe('DECRYPT_FAILED');
      expect(Buffer.concat(emitted)).toEqual(Buffer.from(data.subarray(0, 2 * FRAME)));
      expect(emitted.map((c) => c.length)).toEqual([FRAME, FRAME]);
    }
  });

  it('a flipped last byte of frame 0 tag: nothing at all is emitted', async () => {
    const { env, header, frames } = await setup();
    const bad = Uint8Array.from(frames[0]!);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x80;
    for (const chunks of [[header, bad, frames[1]!, frames[2]!], [concat(header, bad, frames[1]!, frames[2]!)], split(concat(header, bad), [1])]) {
      const { emitted, error } = await feed(env.openStream(), chunks);
      expect((error as KeyfoldError).code).toBe('DECRYPT_FAILED');
      expect(emitted).toEqual([]);
    }
  });

  it('byte-by-byte input: output equals input and every data event is one whole frame', async () => {
    const { env } = makeEnv();
    const input = pseudoRandomBytes(3 * FRAME + 100, 77);
    const sealed = await sealStreamed(env, input, [1]);
    const { emitted, error } = await feed(env.openStream(), split(sealed, [1]));
    expect(error).toBeUndefined();
    expect(Buffer.concat(emitted)).toEqual(Buffer.from(input));
    expect(emitted.map((c) => c.length)).toEqual([FRAME, FRAME, FRAME, 100]);
  });

  it('a stream that ends inside the header or inside a frame fails (never ends quietly)', async () => {
    const { env, sealed, header } = await setup();
    for (const cut of [1, 8, header.length - 1, header.length + 3, header.length + 4 + FRAME, sealed.length - 1]) {
      const { error } = await feed(env.openStream(), [sealed.subarray(0, cut)]);
      expect(error).toBeInstanceOf(KeyfoldError);
    }
  });
});

describe('sealStream output', () => {
  it('a seal stream emits no frame until the next one proves it is not final; input chunking does not change the body length', async () => {
    const { env } = makeEnv();
    const data = pseudoRandomBytes(2 * FRAME, 4);
    const a = await sealStreamed(env, data, [FRAME]);
    const b = await sealStreamed(env, data, [1]);
    expect(a.length).toBe(b.length);
    const fa = splitFrames(a, env.inspect(a).headerLength).frames;
    expect(fa.map((f) => f.length)).toEqual([4 + FRAME + 16, 4 + FRAME + 16]);
    expect(new DataView(fa[1]!.buffer, fa[1]!.byteOffset).getUint32(0)).toBe(0x8000_0000 + FRAME);
  });

  it('openStream with an expected context refuses a different one', async () => {
    const { env } = makeEnv();
    const sealed = await sealStreamed(env, pseudoRandomBytes(10, 1), [10], { tenant: 'a' });
    await expectKeyfold(() => runTransform(env.openStream({ context: { tenant: 'b' } }), [sealed]), 'CONTEXT_MISMATCH');
    expect((await runTransform(env.openStream({ context: { tenant: 'a' } }), [sealed])).length).toBe(10);
  });
});
