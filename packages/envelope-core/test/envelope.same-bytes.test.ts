/**
 * Pins the bytes of suite 1 as written by this code before the hot-path work (issue 15): envelopes sealed then are
 * kept here as fixtures and must still open, and a seal with the CSPRNG replaced by a fixed stream must produce
 * exactly the same envelope as it did then. Together with the reference cross-checks this shows that speed-ups
 * left the format untouched.
 */
import type * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

// Every random byte the core uses (data keys, salts, wrap IVs) comes from randomFillSync; a fixed stream makes a
// seal deterministic.
let counter = 0;
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof nodeCrypto>();
  return {
    ...real,
    randomFillSync: <T extends NodeJS.ArrayBufferView>(buf: T): T => {
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      for (let off = 0; off < bytes.length; off += 32) {
        const block = real.createHash('sha256').update(`keyfold-fixture:${counter++}`).digest();
        bytes.set(block.subarray(0, Math.min(32, bytes.length - off)), off);
      }
      return buf;
    },
  };
});

const { createEnvelope } = await import('../src/index.js');
const { TestKekProvider, runTransform, sealStreamed } = await import('./helpers.js');

function fixedProvider(keyId: string): InstanceType<typeof TestKekProvider> {
  const p = new TestKekProvider(keyId);
  p.kek.set(createHash('sha256').update(`keyfold-fixture-kek:${keyId}`).digest());
  return p;
}

const PLAINTEXT_64 = new Uint8Array(64).map((_, i) => i);
const PLAINTEXT_1K = new Uint8Array(1024).map((_, i) => (i * 7) & 0xff);
const CONTEXT = { tenant: 'acme', table: 'orders', 'ünï': 'cödé ☃' };

interface Fixture {
  readonly name: string;
  readonly providers: readonly string[];
  readonly context?: Record<string, string>;
  readonly plaintextHex: string;
  readonly envelopeHex: string;
}

/** Seals every fixture case from a fresh random stream; the order of calls is part of the fixture. */
async function sealCases(): Promise<Fixture[]> {
  counter = 0;
  const a = fixedProvider('fixture-kek-a');
  const b = fixedProvider('fixture-kek-b');
  const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
  const out: Fixture[] = [];
  const plain = createEnvelope({ providers: [a], cache: false });
  out.push({ name: '64 B, no context, no cache', providers: ['fixture-kek-a'], plaintextHex: hex(PLAINTEXT_64), envelopeHex: hex(await plain.seal(PLAINTEXT_64)) });
  out.push({
    name: '1 KiB, context, no cache',
    providers: ['fixture-kek-a'],
    context: CONTEXT,
    plaintextHex: hex(PLAINTEXT_1K),
    envelopeHex: hex(await plain.seal(PLAINTEXT_1K, CONTEXT)),
  });
  const cached = createEnvelope({ providers: [a], cache: true });
  for (const n of ['first', 'second']) {
    out.push({
      name: `64 B, context, data key cache (${n} message)`,
      providers: ['fixture-kek-a'],
      context: CONTEXT,
      plaintextHex: hex(PLAINTEXT_64),
      envelopeHex: hex(await cached.seal(PLAINTEXT_64, CONTEXT)),
    });
  }
  const two = createEnvelope({ providers: [a, b], cache: false });
  out.push({ name: '0 B, two providers', providers: ['fixture-kek-a', 'fixture-kek-b'], plaintextHex: '', envelopeHex: hex(await two.seal(new Uint8Array(0))) });
  const framed = createEnvelope({ providers: [a], cache: false, frameSize: 300 });
  out.push({
    name: '1 KiB stream, 300-byte frames, context',
    providers: ['fixture-kek-a'],
    context: CONTEXT,
    plaintextHex: hex(PLAINTEXT_1K),
    envelopeHex: hex(await sealStreamed(framed, PLAINTEXT_1K, [100, 700, 224], CONTEXT)),
  });
  const first = Buffer.from(out[0]!.envelopeHex, 'hex');
  out.push({ name: '64 B rewrapped to two providers', providers: ['fixture-kek-a', 'fixture-kek-b'], plaintextHex: hex(PLAINTEXT_64), envelopeHex: hex(await plain.rewrap(first, { to: [a, b] })) });
  return out;
}

const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/suite1-envelopes.json', import.meta.url), 'utf8'),
) as Fixture[];

describe('suite 1 bytes are unchanged', () => {
  it('every stored envelope sealed before the hot-path work opens to its plaintext, with and without the expected context', async () => {
    expect(fixtures.length).toBe(7);
    for (const f of fixtures) {
      const providers = f.providers.map(fixedProvider);
      // Any one provider of the envelope opens it.
      for (const p of providers) {
        const env = createEnvelope({ providers: [p], cache: false });
        const sealed = Buffer.from(f.envelopeHex, 'hex');
        expect(Buffer.from(await env.open(sealed)).toString('hex'), f.name).toBe(f.plaintextHex);
        expect(Buffer.from(await env.open(sealed, { context: f.context ?? {} })).toString('hex'), f.name).toBe(f.plaintextHex);
        expect(Buffer.from(await runTransform(env.openStream(), [sealed])).toString('hex'), f.name).toBe(f.plaintextHex);
        expect(env.inspect(sealed).context, f.name).toEqual(f.context ?? {});
      }
    }
  });

  it('a seal from a fixed random stream writes exactly the stored envelopes (seal, cached seal, stream, rewrap)', async () => {
    const now = await sealCases();
    expect(now.map((f) => f.name)).toEqual(fixtures.map((f) => f.name));
    for (let i = 0; i < now.length; i++) expect(now[i]!.envelopeHex, now[i]!.name).toBe(fixtures[i]!.envelopeHex);
  });
});
