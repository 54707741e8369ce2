import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../src/index.js';
import { TestKekProvider } from './helpers.js';

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('smoke', () => {
  it('round trips', async () => {
    const env = createEnvelope({ providers: [new TestKekProvider('KEYFOLD_KEK')] });
    const sealed = await env.seal(new Uint8Array(64).fill(7));
    console.log('overhead', sealed.length - 64);
    const out = await env.open(sealed);
    expect(Buffer.from(out)).toEqual(Buffer.alloc(64, 7));
    const s = await env.sealToString('hello', { a: 'b' });
    expect(new TextDecoder().decode(await env.open(s, { context: { a: 'b' } }))).toBe('hello');
  });
  it('streams', async () => {
    const env = createEnvelope({ providers: [new TestKekProvider()], frameSize: 1000 });
    const data = Buffer.alloc(10_000, 3);
    const sealed = await collect(Readable.from([data.subarray(0, 3333), data.subarray(3333)]).pipe(env.sealStream({ x: 'y' })));
    expect(Buffer.from(await env.open(sealed))).toEqual(data);
    const opened = await collect(Readable.from([sealed]).pipe(env.openStream()));
    expect(opened).toEqual(data);
    await expect(pipeline(Readable.from([sealed.subarray(0, sealed.length - 1)]), env.openStream(), async function* (src) { for await (const _ of src) { /* drain */ } })).rejects.toThrow();
  });
});
