/**
 * networkErrorCode: the one classifier of "the service could not be reached" that every provider uses.
 */
import { describe, expect, it } from 'vitest';
import { KeyfoldError, networkErrorCode } from '../src/index.js';

const withCode = (code: unknown, cause?: unknown): Error => Object.assign(new Error('x', cause === undefined ? undefined : { cause }), { code });

describe('networkErrorCode', () => {
  it.each([
    'ECONNREFUSED',
    'ECONNRESET',
    'ECONNABORTED',
    'EPIPE',
    'ETIMEDOUT',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'EAI_AGAIN',
    'ENOTFOUND',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
    'ERR_STREAM_PREMATURE_CLOSE',
  ])('names %s on the error itself', (code) => {
    expect(networkErrorCode(withCode(code))).toBe(code);
  });

  it('finds the system error under wrappers (fetch failed -> cause), up to four links deep', () => {
    let err: unknown = withCode('ECONNREFUSED');
    for (let depth = 1; depth <= 4; depth++) {
      err = new TypeError(`wrapper ${depth}`, { cause: err });
      expect(networkErrorCode(err)).toBe('ECONNREFUSED');
    }
    expect(networkErrorCode(new TypeError('wrapper 5', { cause: err }))).toBeUndefined();
  });

  it('the outermost network code wins', () => {
    expect(networkErrorCode(withCode('ECONNRESET', withCode('ETIMEDOUT')))).toBe('ECONNRESET');
  });

  it('answers from a service, other codes and non-errors are not network failures', () => {
    for (const err of [
      withCode('ENOENT'),
      withCode('EACCES'),
      withCode(503),
      withCode('NotFoundException'),
      new KeyfoldError('UNAVAILABLE', 'coded, but not a transport error'),
      new Error('ECONNREFUSED in a message only'),
      { code: { toString: () => 'ECONNRESET' } },
      'ECONNRESET',
      null,
      undefined,
      42,
    ]) {
      expect(networkErrorCode(err)).toBeUndefined();
    }
  });

  it('a cause cycle ends', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(networkErrorCode(a)).toBeUndefined();
  });
});
