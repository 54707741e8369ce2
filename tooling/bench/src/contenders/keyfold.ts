/**
 * Keyfold as a contender: `createEnvelope` over the env provider (one versioned hex KEK), with or without the data
 * key cache. The cache limits match the ESDK caching CMM's so the "cache" rows compare like with like.
 * @module
 */
import { createEnvelope, type Envelope, type KeyProvider } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { Buffer } from 'node:buffer';
import { CACHE_LIMITS } from './esdk.js';
import { benchKey, type OneShot, type StreamPair } from './types.js';

export interface KeyfoldOptions {
  readonly cache: boolean;
  /** Wraps the provider (e.g. to count calls) before the envelope sees it. */
  readonly decorate?: (p: KeyProvider) => KeyProvider;
}

export function keyfoldId(o: KeyfoldOptions): string {
  return o.cache ? 'keyfold-cache' : 'keyfold';
}

export function keyfoldLabel(o: KeyfoldOptions): string {
  return `Keyfold env provider${o.cache ? ', data key cache' : ', no cache'}`;
}

export async function createKeyfoldEnvelope(o: KeyfoldOptions): Promise<{ envelope: Envelope; provider: KeyProvider }> {
  const hex = Buffer.from(await benchKey('keyfold-kek-v1')).toString('hex');
  const base = createEnvProvider({ env: { KEYFOLD_KEK_V1: hex } });
  const provider = o.decorate ? o.decorate(base) : base;
  const envelope = createEnvelope({
    providers: [provider],
    cache: o.cache
      ? { capacity: CACHE_LIMITS.capacity, maxAge: CACHE_LIMITS.maxAgeMs, maxMessages: CACHE_LIMITS.maxMessages }
      : false,
  });
  return { envelope, provider };
}

export async function createKeyfoldOneShot(o: KeyfoldOptions): Promise<OneShot> {
  const { envelope, provider } = await createKeyfoldEnvelope(o);
  return {
    id: keyfoldId(o),
    label: keyfoldLabel(o),
    sync: false,
    seal: (plaintext) => envelope.seal(plaintext),
    open: (sealed) => envelope.open(sealed),
    async close() {
      await envelope.close();
      await provider.close();
    },
  };
}

export async function createKeyfoldStreamPair(o: KeyfoldOptions): Promise<StreamPair> {
  const { envelope, provider } = await createKeyfoldEnvelope(o);
  return {
    id: keyfoldId(o),
    label: `Keyfold sealStream -> openStream${o.cache ? ', cache' : ''}`,
    pair: () => ({ seal: envelope.sealStream(), open: envelope.openStream() }),
    async close() {
      await envelope.close();
      await provider.close();
    },
  };
}

/** Provider calls counted at the provider boundary (independent of `envelope.stats()`). */
export interface CallCounts {
  wrapKey: number;
  unwrapKey: number;
  generateDataKey: number;
}

/** A KeyProvider that forwards everything to `inner` and counts the key calls. */
export function countingProvider(inner: KeyProvider, counts: CallCounts): KeyProvider {
  const p: KeyProvider = {
    kind: inner.kind,
    keyId: inner.keyId,
    protection: inner.protection,
    wrapKey(dataKey, context) {
      counts.wrapKey++;
      return inner.wrapKey(dataKey, context);
    },
    unwrapKey(wrapped, context) {
      counts.unwrapKey++;
      return inner.unwrapKey(wrapped, context);
    },
    describe: () => inner.describe(),
    probe: () => inner.probe(),
    close: () => inner.close(),
  };
  const gen = inner.generateDataKey?.bind(inner);
  if (gen) {
    return {
      ...p,
      generateDataKey(context) {
        counts.generateDataKey++;
        return gen(context);
      },
    };
  }
  return p;
}
