/**
 * Key commitment: an envelope carrying two wrapped keys for two different data keys opens under the committed key
 * only, and the commitment is checked before any decryption is attempted (openFrame is never reached).
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createEnvelope } from '../src/index.js';
import * as frameCodec from '../src/frame-codec.js';

type FrameCodec = typeof frameCodec;
import { expectKeyfold, LocalKekProvider } from './helpers.js';
import { refParseHeader, refSerializeHeader } from './reference.js';

vi.mock('../src/frame-codec.js', async (importOriginal) => {
  const original = await importOriginal<FrameCodec>();
  return { ...original, openFrame: vi.fn(original.openFrame) };
});

const openFrame = vi.mocked(frameCodec.openFrame);

/**
 * Builds an envelope whose header carries two wrapped keys for different data keys: A wraps k1 (the body key), B
 * wraps k2. The commitment is computed from k1 over the spliced header (docs/FORMAT.md), so A opens it. Opening with
 * B alone unwraps k2 successfully; only the commitment check can refuse it.
 */
async function spliced() {
  const a = new LocalKekProvider({ keyId: 'A' });
  const b = new LocalKekProvider({ keyId: 'B' });
  const context = { purpose: 'commitment' };
  const e1 = await createEnvelope({ providers: [a, b] }).seal('plaintext under k1', context);
  const e2 = await createEnvelope({ providers: [b] }).seal('plaintext under k2', context);
  const k1 = a.wrappedDataKeys[0]!;
  const k2 = b.wrappedDataKeys[1]!;
  expect(Buffer.from(k1)).toEqual(Buffer.from(b.wrappedDataKeys[0]!)); // A and B wrapped the same key in e1
  expect(Buffer.from(k1)).not.toEqual(Buffer.from(k2));
  const h1 = refParseHeader(e1);
  const h2 = refParseHeader(e2);
  const header = refSerializeHeader({
    contextBytes: h1.contextBytes,
    wrappedKeys: [h1.wrappedKeys[0]!, h2.wrappedKeys[0]!],
    salt: h1.salt,
    dataKey: k1,
  });
  // The header core (magic..context) is unchanged, so e1's body still authenticates under k1.
  return { out: Uint8Array.from(Buffer.concat([header, e1.subarray(h1.length)])), a, b };
}

describe('key commitment', () => {
  beforeEach(() => {
    openFrame.mockClear(); // (a block: a function returned from beforeEach would run as teardown)
  });

  it('the committed key opens the spliced envelope', async () => {
    const { out, a } = await spliced();
    openFrame.mockClear();
    expect(new TextDecoder().decode(await createEnvelope({ providers: [a] }).open(out))).toBe('plaintext under k1');
    expect(openFrame).toHaveBeenCalledTimes(1);
  });

  it('the other wrapped key unwraps fine but is refused by the commitment, before any decryption', async () => {
    const { out, b } = await spliced();
    openFrame.mockClear();
    const unwrapsBefore = b.unwraps;
    await expectKeyfold(() => createEnvelope({ providers: [b] }).open(out), 'DECRYPT_FAILED');
    expect(b.unwraps).toBe(unwrapsBefore + 1); // B's unwrap itself succeeded (k2)
    expect(openFrame).not.toHaveBeenCalled(); // refused by the commitment: no decryption attempted
  });

  it('with both providers configured (B first), only the committed key is used', async () => {
    const { out, a, b } = await spliced();
    openFrame.mockClear();
    expect(new TextDecoder().decode(await createEnvelope({ providers: [b, a] }).open(out))).toBe('plaintext under k1');
    expect(openFrame).toHaveBeenCalledTimes(1);
  });

  it('a flipped commitment bit is refused even with the right data key, before decryption', async () => {
    const { out, a } = await spliced();
    const m = Uint8Array.from(out);
    const h = refParseHeader(m);
    m[h.commitmentOffset + 31] = (m[h.commitmentOffset + 31] as number) ^ 1;
    openFrame.mockClear();
    await expectKeyfold(() => createEnvelope({ providers: [a] }).open(m), 'DECRYPT_FAILED');
    expect(openFrame).not.toHaveBeenCalled();
  });

  it('a tampered body with a valid commitment reaches decryption and fails its tag', async () => {
    const { out, a } = await spliced();
    const m = Uint8Array.from(out);
    m[m.length - 1] = (m[m.length - 1] as number) ^ 1;
    openFrame.mockClear();
    const err = await expectKeyfold(() => createEnvelope({ providers: [a] }).open(m), 'DECRYPT_FAILED');
    expect(openFrame).toHaveBeenCalledTimes(1);
    expect(err.message).toBe('decryption failed'); // same message whichever check refused
  });
});
