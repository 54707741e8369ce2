/** The shared test helpers: rejections and the bounded pool. */
import { describe, expect, it } from 'vitest';
import { createEnvelope, ProviderError } from '@keyfold/envelope-core';
import { ReferenceProvider } from './reference-providers.js';
import { ConformanceError, inPool, keyfoldRejectionOf, rejectionOf, sealAndOpenMany } from '../src/index.js';

describe('test helpers', () => {
  it('rejectionOf returns the rejection and fails on success', async () => {
    const boom = new Error('boom');
    expect(await rejectionOf(Promise.reject(boom))).toBe(boom);
    await expect(rejectionOf(Promise.resolve(1))).rejects.toBeInstanceOf(ConformanceError);
  });

  it('keyfoldRejectionOf returns Keyfold errors and rethrows anything else', async () => {
    const err = new ProviderError('THROTTLED', 'slow down');
    expect(await keyfoldRejectionOf(Promise.reject(err))).toBe(err);
    const other = new TypeError('not ours');
    await expect(keyfoldRejectionOf(Promise.reject(other))).rejects.toBe(other);
    await expect(keyfoldRejectionOf(Promise.resolve())).rejects.toBeInstanceOf(ConformanceError);
  });

  it('inPool keeps at most width calls in flight and returns results in order', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await inPool(50, 4, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return i * 2;
    });
    expect(out).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(peak).toBe(4);
    expect(await inPool(0, 3, () => Promise.resolve(1))).toEqual([]);
    await expect(inPool(1, 0, () => Promise.resolve(1))).rejects.toThrow(RangeError);
    await expect(inPool(3, 2, (i) => (i === 1 ? Promise.reject(new Error('second')) : Promise.resolve(i)))).rejects.toThrow('second');
  });

  it('sealAndOpenMany round-trips every message under its own context and catches one that comes back wrong', async () => {
    const envelope = createEnvelope({ providers: [new ReferenceProvider()], cache: false });
    expect(await sealAndOpenMany(envelope, 50, 8)).toBe(50);
    const swapping = {
      seal: (p: Uint8Array | string, c?: Record<string, string>) => envelope.seal(p, c),
      open: async (e: Uint8Array | string, o?: { context?: Record<string, string> }) => {
        const plain = await envelope.open(e, o);
        return o?.context?.n === '7' ? new TextEncoder().encode('message 8') : plain;
      },
    };
    await expect(sealAndOpenMany(swapping as never, 20, 4)).rejects.toThrow(/message 7 did not open/);
    await envelope.close();
  });
});
