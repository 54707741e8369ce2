import { describe, expect, it } from 'vitest';
import {
  ConformanceError,
  applicableChecks,
  expectCallerError,
  expectKeyfoldError,
  isKeyfoldErrorLike,
  providerChecks,
  runProviderCheck,
  runProviderConformance,
  type ItFunction,
} from '../src/index.js';
import { KeyfoldError, ProviderError, UnwrapFailedError } from '@keyfold/envelope-core';
import { ReferenceProvider } from './reference-providers.js';

interface Registration {
  title: string;
  skipped: boolean;
  timeout: number | undefined;
}

function recorder(): { it: ItFunction; describe: (name: string, fn: () => void) => void; suites: string[]; tests: Registration[] } {
  const suites: string[] = [];
  const tests: Registration[] = [];
  const it = Object.assign(
    (title: string, _fn: () => Promise<void>, timeout?: number) => {
      tests.push({ title, skipped: false, timeout });
    },
    {
      skip: (title: string, _fn: () => Promise<void>, timeout?: number) => {
        tests.push({ title, skipped: true, timeout });
      },
    },
  );
  return {
    it,
    describe: (name, fn) => {
      suites.push(name);
      fn();
    },
    suites,
    tests,
  };
}

describe('runProviderConformance registration', () => {
  it('registers one test per applicable check under one describe block', () => {
    const r = recorder();
    const names = runProviderConformance({ name: 'x', makeProvider: () => new ReferenceProvider(), describe: r.describe, it: r.it, timeoutMs: 1234 });
    expect(r.suites).toEqual(['KeyProvider conformance: x']);
    expect(names).not.toContain('backend errors');
    expect(names).toHaveLength(providerChecks.length - 1);
    expect(r.tests.every((t) => t.timeout === 1234 && !t.skipped)).toBe(true);
    expect(r.tests[0]?.title).toMatch(/^round trip: /);
  });

  it('refuses a skip option and missing functions', () => {
    const r = recorder();
    const base = { name: 'x', makeProvider: () => new ReferenceProvider(), describe: r.describe, it: r.it };
    expect(() => runProviderConformance({ ...base, skip: { concurrency: 'slow emulator' } } as never)).toThrow(/no skip option/);
    expect(r.tests).toHaveLength(0);
    expect(() => runProviderConformance({ ...base, makeProvider: undefined as never })).toThrow(/makeProvider must be a function/);
    expect(() => runProviderConformance({ ...base, it: 'it' as never })).toThrow(/it must be a function/);
    expect(() => runProviderConformance({ ...base, name: '' })).toThrow(/name/);
    expect(() => runProviderConformance({ ...base, timeoutMs: 0 })).toThrow(RangeError);
  });

  it('includes "backend errors" only with makeFailingProvider', () => {
    const makeProvider = () => new ReferenceProvider();
    expect(applicableChecks({ makeProvider }).map((c) => c.name)).not.toContain('backend errors');
    expect(
      applicableChecks({ makeProvider, makeFailingProvider: () => ({ provider: new ReferenceProvider(), expectCode: 'UNAVAILABLE' }) }).map((c) => c.name),
    ).toContain('backend errors');
  });

  it('runProviderCheck refuses an unknown check and a missing hook', async () => {
    await expect(runProviderCheck('nope' as never, { makeProvider: () => new ReferenceProvider() })).rejects.toThrow(TypeError);
    await expect(runProviderCheck('backend errors', { makeProvider: () => new ReferenceProvider() })).rejects.toThrow(/makeFailingProvider/);
  });

  it('names and rules are unique and non-empty', () => {
    expect(new Set(providerChecks.map((c) => c.name)).size).toBe(providerChecks.length);
    for (const c of providerChecks) expect(c.rule.length).toBeGreaterThan(20);
  });
});

describe('assertion helpers', () => {
  it('expectKeyfoldError returns the error of the expected code', async () => {
    const err = await expectKeyfoldError(Promise.reject(new UnwrapFailedError()), 'UNWRAP_FAILED');
    expect(err.code).toBe('UNWRAP_FAILED');
    await expect(expectKeyfoldError(() => Promise.reject(new UnwrapFailedError()), 'UNWRAP_FAILED')).resolves.toBeInstanceOf(KeyfoldError);
  });

  it('expectKeyfoldError fails on success, other codes and uncoded errors, and wipes a released key', async () => {
    const leaked = new Uint8Array(32).fill(7);
    await expect(expectKeyfoldError(Promise.resolve(leaked), 'UNWRAP_FAILED')).rejects.toThrow(ConformanceError);
    expect(leaked.every((b) => b === 0)).toBe(true);
    await expect(expectKeyfoldError(Promise.reject(new ProviderError('THROTTLED', 'slow down')), 'UNWRAP_FAILED')).rejects.toThrow(
      /code UNWRAP_FAILED; it failed with ProviderError \[THROTTLED\]/,
    );
    const raw = Object.assign(new Error('boom'), { code: 'UNWRAP_FAILED' });
    await expect(expectKeyfoldError(Promise.reject(raw), 'UNWRAP_FAILED')).rejects.toThrow(/must fail with a KeyfoldError/);
  });

  it('isKeyfoldErrorLike recognises a KeyfoldError from another copy of the core by its class chain', () => {
    class KeyfoldError extends Error {
      constructor(readonly code: string) {
        super('from another module copy');
      }
    }
    class UnwrapFailedError extends KeyfoldError {}
    expect(isKeyfoldErrorLike(new UnwrapFailedError('UNWRAP_FAILED'))).toBe(true);
    expect(isKeyfoldErrorLike(Object.assign(new Error('x'), { code: 'UNWRAP_FAILED' }))).toBe(false);
    expect(isKeyfoldErrorLike({ code: 'UNWRAP_FAILED', message: 'x' })).toBe(false);
  });

  it('expectCallerError insists on a rejected promise with TypeError or RangeError', async () => {
    await expect(expectCallerError(() => Promise.reject(new RangeError('bad')), 'x')).resolves.toBeInstanceOf(RangeError);
    await expect(
      expectCallerError(() => {
        throw new TypeError('sync');
      }, 'x'),
    ).rejects.toThrow(/threw synchronously/);
    await expect(expectCallerError(() => Promise.reject(new ProviderError('INTERNAL', 'x')), 'x')).rejects.toThrow(/caller mistake/);
    await expect(expectCallerError(() => Promise.resolve(1), 'x')).rejects.toThrow(/it succeeded/);
  });
});
