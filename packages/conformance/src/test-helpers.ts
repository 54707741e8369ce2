/**
 * Small helpers the providers' own tests share (fault, error and key-state tests): the error a promise rejects with,
 * and a bounded pool of concurrent calls. Framework-agnostic, like the rest of this package.
 * @module
 */
import { isKeyfoldError, type Envelope, type KeyfoldError } from '@keyfold/envelope-core';
import { ConformanceError } from './assert.js';

/**
 * The value `promise` rejects with.
 * @throws ConformanceError when it resolves instead.
 * @example
 * ```ts
 * expect(await rejectionOf(provider.unwrapKey(bad, {}))).toMatchObject({ code: 'UNWRAP_FAILED' });
 * ```
 */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new ConformanceError('expected the call to fail, but it succeeded');
}

/**
 * The {@link KeyfoldError} `promise` rejects with; anything else it rejects with is rethrown as is.
 * @throws ConformanceError when it resolves; the original error when it is not a KeyfoldError.
 * @example
 * ```ts
 * expect((await keyfoldRejectionOf(provider.wrapKey(key, {}))).code).toBe('THROTTLED');
 * ```
 */
export async function keyfoldRejectionOf(promise: Promise<unknown>): Promise<KeyfoldError> {
  const err = await rejectionOf(promise);
  if (isKeyfoldError(err)) return err;
  throw err;
}

/**
 * Runs `fn(0) .. fn(n - 1)` with at most `width` calls in flight; the results come back in index order.
 * @throws RangeError for a negative `n` or a `width` below 1; otherwise the first error `fn` throws.
 * @example
 * ```ts
 * const sealed = await inPool(1000, 32, (i) => envelope.seal(`message ${i}`));
 * ```
 */
export async function inPool<T>(n: number, width: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a whole number >= 0; got ${n}`);
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`width must be a whole number >= 1; got ${width}`);
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/**
 * A workload for fault tests: seals `count` distinct messages (`message <i>`), each under its own encryption context
 * (`{ n: '<i>', tenant: 't<i % 7>' }`), at most `width` in flight, then opens every one with its context and checks it
 * comes back as sealed.
 * @returns `count` (every message opened to its own plaintext).
 * @throws ConformanceError naming the first message that came back different; whatever a seal or open threw.
 * @example
 * ```ts
 * expect(await sealAndOpenMany(envelope, 1000, 16)).toBe(1000);
 * ```
 */
export async function sealAndOpenMany(envelope: Pick<Envelope, 'seal' | 'open'>, count: number, width: number): Promise<number> {
  const contextOf = (i: number): Record<string, string> => ({ n: String(i), tenant: `t${i % 7}` });
  const sealed = await inPool(count, width, (i) => envelope.seal(`message ${i}`, contextOf(i)));
  const opened = await inPool(count, width, (i) => envelope.open(sealed[i]!, { context: contextOf(i) }));
  opened.forEach((plain, i) => {
    if (Buffer.from(plain).toString() !== `message ${i}`) throw new ConformanceError(`message ${i} did not open to what was sealed`);
  });
  return opened.length;
}
