/**
 * Property tests (fast-check): round trips over random sizes and contexts, single-shot and streamed with random
 * chunking; hostile input to every public parser (open, inspect, openStream) throws only coded errors and never
 * opens.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEnvelope, inspectEnvelope, KeyfoldError } from '../src/index.js';
import { caught, LocalKekProvider, pseudoRandomBytes, runTransform, split } from './helpers.js';

const RUNS = 200;
const provider = new LocalKekProvider({ keyId: 'prop-kek' });
const env = createEnvelope({ providers: [provider] });
const streamEnv = createEnvelope({ providers: [provider], frameSize: 4096 });

/** Unicode strings without lone surrogates (graphemes); keys non-empty. */
const contextArb = fc.dictionary(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  { maxKeys: 5 },
);
const payloadArb = fc.record({ size: fc.integer({ min: 0, max: 70_000 }), seed: fc.integer({ min: 1, max: 0x7fff_ffff }) });

/** Errors a parser may throw for hostile input: coded errors, or TypeError for a non-bytes/non-string argument. */
function assertOnlyCodedErrors(err: unknown): void {
  if (err instanceof KeyfoldError) return;
  expect(err).toBeInstanceOf(TypeError);
  expect(err).not.toBeInstanceOf(RangeError);
}

describe('round trips', () => {
  it('seal/open over random sizes (0..70000) and random unicode contexts', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, contextArb, async ({ size, seed }, context) => {
        const data = pseudoRandomBytes(size, seed);
        const sealed = await env.seal(data, context);
        expect(env.inspect(sealed).context).toEqual({ ...context });
        const opened = await env.open(sealed, { context });
        expect(Buffer.from(opened).equals(Buffer.from(data))).toBe(true);
        const armored = await env.sealToString(data.subarray(0, 100), context);
        expect(Buffer.from(await env.open(armored, { context })).equals(Buffer.from(data.subarray(0, 100)))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('sealStream/openStream over random sizes, contexts and chunkings', async () => {
    const chunksArb = fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(payloadArb, contextArb, chunksArb, chunksArb, async ({ size, seed }, context, writeSizes, readSizes) => {
        const data = pseudoRandomBytes(size, seed);
        const sealed = await runTransform(streamEnv.sealStream(context), split(data, writeSizes));
        expect(sealed.length).toBe(streamEnv.inspect(sealed).headerLength + size + Math.max(1, Math.ceil(size / 4096)) * 20);
        const opened = await runTransform(streamEnv.openStream({ context }), split(sealed, readSizes));
        expect(opened.equals(Buffer.from(data))).toBe(true);
        expect(Buffer.from(await streamEnv.open(sealed)).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('hostile input', () => {
  it('random bytes into open / inspect / inspectEnvelope / openStream: only coded errors, never opens', async () => {
    const hostile = fc.oneof(
      fc.uint8Array({ maxLength: 4096 }),
      // Past the magic, version and suite checks, so the rest of the parser sees the random bytes.
      fc.uint8Array({ maxLength: 4096 }).map((b) => Uint8Array.from([0x4b, 0x46, 1, 1, ...b])),
      // ... and with a frame size of 0 and a small context count, deeper still.
      fc.uint8Array({ maxLength: 4096 }).map((b) => Uint8Array.from([0x4b, 0x46, 1, 1, 0, 0, 0, 0, 0, 0, 1, ...b])),
    );
    await fc.assert(
      fc.asyncProperty(hostile, async (bytes) => {
        const err = await caught(() => env.open(bytes));
        expect(err).toBeInstanceOf(KeyfoldError);
        expect(() => env.inspect(bytes)).toSatisfy(throwsOnlyCoded);
        expect(() => inspectEnvelope(bytes)).toSatisfy(throwsOnlyCoded);
        const streamErr = await caught(() => runTransform(env.openStream(), [bytes]));
        expect(streamErr).toBeInstanceOf(KeyfoldError);
      }),
      { numRuns: RUNS },
    );
  });

  it('random strings into open / inspect: only coded errors', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');
    const hostile = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 300 }).map((s) => `kf1.${s}`),
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 300 }).map((s) => `kf1.S0YBAQ${s}`),
    );
    await fc.assert(
      fc.asyncProperty(hostile, async (text) => {
        const err = await caught(() => env.open(text));
        expect(err).toBeInstanceOf(KeyfoldError);
        expect(() => env.inspect(text)).toSatisfy(throwsOnlyCoded);
      }),
      { numRuns: RUNS },
    );
  });

  it('non-bytes arguments are caller mistakes (TypeError)', async () => {
    for (const bad of [undefined, null, 42, {}, [1, 2, 3], new ArrayBuffer(8)]) {
      const err = await caught(() => env.open(bad as never));
      expect(err).toBeInstanceOf(TypeError);
      expect(() => env.inspect(bad as never)).toThrow(TypeError);
    }
  });

  it('random mutations of valid envelopes (single-shot and framed) never open', async () => {
    const base = await env.seal(pseudoRandomBytes(300, 3), { tenant: 't' });
    const framed = Uint8Array.from(await runTransform(createEnvelope({ providers: [provider], frameSize: 64 }).sealStream({ tenant: 't' }), [pseudoRandomBytes(200, 4)]));
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ op: fc.constant('swap' as const), at: fc.nat(), other: fc.nat() }),
    );
    type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
    const apply = (input: Uint8Array, ms: readonly Mutation[]): Uint8Array => {
      let b = Buffer.from(input);
      for (const m of ms) {
        const at = m.at % (b.length + 1);
        switch (m.op) {
          case 'flip':
            if (at < b.length) b[at] = b[at]! ^ (1 << m.bit);
            break;
          case 'set':
            if (at < b.length) b[at] = m.value;
            break;
          case 'truncate':
            b = b.subarray(0, at);
            break;
          case 'insert':
            b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
            break;
          case 'delete':
            b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
            break;
          case 'swap': {
            const o = m.other % (b.length || 1);
            if (at < b.length) [b[at], b[o]] = [b[o]!, b[at]!];
            break;
          }
        }
      }
      return Uint8Array.from(b);
    };
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (useFramed, ms) => {
        const original = useFramed ? framed : base;
        const mutated = apply(original, ms);
        fc.pre(!Buffer.from(mutated).equals(Buffer.from(original)));
        tried++;
        const err = await caught(() => env.open(mutated));
        expect(err).toBeInstanceOf(KeyfoldError);
        expect(() => env.inspect(mutated)).toSatisfy(throwsOnlyCoded);
        const streamErr = await caught(() => runTransform(env.openStream(), split(mutated, [37])));
        expect(streamErr).toBeInstanceOf(KeyfoldError);
      }),
      { numRuns: RUNS * 2 },
    );
    expect(tried).toBeGreaterThan(RUNS);
  });
});

/** For `toSatisfy`: calling `fn` returns normally or throws only a KeyfoldError / TypeError. */
function throwsOnlyCoded(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    assertOnlyCodedErrors(err);
    return true;
  }
}
