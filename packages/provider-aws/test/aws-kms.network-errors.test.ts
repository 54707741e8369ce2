/**
 * Transport failures are classified by the core's one network classifier: a system error wrapped by the SDK's
 * request handler (as `cause`) is UNAVAILABLE, like one thrown bare.
 */
import { describe, expect, it } from 'vitest';
import { mapKmsError } from '../src/kms-errors.js';

const ARN = 'arn:aws:kms:eu-west-1:111122223333:key/network';
const sysError = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });

describe('mapKmsError: network failures', () => {
  it('a bare system error -> UNAVAILABLE naming the code', () => {
    const err = mapKmsError(sysError('ECONNREFUSED'), ARN);
    expect(err?.code).toBe('UNAVAILABLE');
    expect(err?.message).toContain('ECONNREFUSED');
  });

  it('a system error under a wrapper (fetch failed -> cause) -> UNAVAILABLE', () => {
    const wrapped = new TypeError('fetch failed', { cause: sysError('UND_ERR_SOCKET') });
    const err = mapKmsError(wrapped, ARN);
    expect(err?.code).toBe('UNAVAILABLE');
    expect(err?.message).toContain('UND_ERR_SOCKET');
    expect(err?.cause).toBe(wrapped);
  });

  it("the SDK's socket TimeoutError -> UNAVAILABLE", () => {
    const timeout = Object.assign(new Error('Connection timed out after 1000 ms'), { name: 'TimeoutError' });
    expect(mapKmsError(timeout, ARN)?.code).toBe('UNAVAILABLE');
  });

  it('an error that is not a transport failure is not mapped', () => {
    expect(mapKmsError(sysError('ENOENT'), ARN)).toBeUndefined();
  });
});
