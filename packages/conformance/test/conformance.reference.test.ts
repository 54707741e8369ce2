import { describe, expect, it } from 'vitest';
import { providerChecks, runProviderConformance } from '../src/index.js';
import { NaiveProvider, OutageProvider, ReferenceProvider } from './reference-providers.js';

// A deliberately correct provider on BaseKeyProvider passes every check, backend errors included.
const registered = runProviderConformance({
  name: 'reference (BaseKeyProvider)',
  makeProvider: () => new ReferenceProvider(),
  rotate: async (p) => {
    await (p as ReferenceProvider).rotate();
    return p;
  },
  makeFailingProvider: () => ({ provider: new OutageProvider(true), expectCode: 'UNAVAILABLE' }),
  describe,
  it,
  expect,
});

// A correct provider written from scratch (no base class, no rotation) passes too: the suite checks the
// interface contract, not BaseKeyProvider's implementation of it.
runProviderConformance({
  name: 'naive (KeyProvider from scratch)',
  makeProvider: () => new NaiveProvider(),
  describe,
  it,
});

describe('runProviderConformance', () => {
  it('registers every check when every hook is given', () => {
    expect(registered).toEqual(providerChecks.map((c) => c.name));
  });
});
