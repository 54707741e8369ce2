/**
 * The KeyProvider conformance checks. Each check makes its own providers through the {@link ConformanceTarget},
 * closes them when done, and throws a {@link ConformanceError} naming the rule the provider broke. They use no test
 * framework, so any runner can host them (`runProviderConformance` registers them with vitest, jest or node:test).
 *
 * The rules are those of DESIGN.md "The one interface": the context is bound; a tampered, relabelled or foreign
 * ciphertext fails with `UNWRAP_FAILED` and never echoes key material; caller buffers are neither retained nor
 * mutated; returned keys are fresh buffers; every version still unwraps after a rotation; `probe()` reports instead
 * of throwing; `close()` is idempotent; backend failures surface as coded errors with the original as `cause`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { EncryptionContext, KeyProvider, ProviderDescription, WrappedKey } from '@keyfold/envelope-core';
import {
  ConformanceError,
  containsBytes,
  describeError,
  describeValue,
  ensure,
  ensureBytesEqual,
  ensureNoKeyMaterial,
  expectCallerError,
  expectKeyfoldError,
  fail,
} from './assert.js';
import type { ConformanceTarget } from './target.js';

/**
 * Names of the checks in {@link providerChecks}, in the order they run.
 * @example
 * ```ts
 * const name: ProviderCheckName = 'context binding';
 * ```
 */
export type ProviderCheckName =
  | 'round trip'
  | 'context binding'
  | 'tampered ciphertext'
  | 'relabelled wrapped key'
  | 'foreign KEK'
  | 'caller buffers'
  | 'returned keys own their memory'
  | 'concurrency'
  | 'generateDataKey'
  | 'rewrapKey'
  | 'rotation'
  | 'write version'
  | 'describe'
  | 'probe'
  | 'close'
  | 'argument validation'
  | 'backend errors';

/**
 * One conformance check. `run` rejects with a `ConformanceError` when the provider breaks the rule.
 * @example
 * ```ts
 * for (const check of providerChecks) console.log(`${check.name}: ${check.rule}`);
 * ```
 */
export interface ProviderCheck {
  readonly name: ProviderCheckName;
  /** The rule it checks, in one sentence. */
  readonly rule: string;
  /** The optional target hook it needs; without that hook the check is not applicable and is not registered. */
  readonly requires?: 'makeFailingProvider';
  /** Runs the check; rejects with a {@link ConformanceError} when the provider breaks the rule. */
  run(target: ConformanceTarget): Promise<void>;
}

const DATA_KEY_LENGTH = 32;
const CONTEXT: EncryptionContext = Object.freeze({ tenant: 'acme', purpose: 'conformance' });

function randomKey(): Uint8Array {
  const key = new Uint8Array(DATA_KEY_LENGTH);
  const src = randomBytes(DATA_KEY_LENGTH);
  key.set(src);
  src.fill(0);
  return key;
}

function copy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

function relabel(wrapped: WrappedKey, changes: Partial<WrappedKey>): WrappedKey {
  return {
    kind: changes.kind ?? wrapped.kind,
    keyId: changes.keyId ?? wrapped.keyId,
    keyVersion: changes.keyVersion ?? wrapped.keyVersion,
    ciphertext: changes.ciphertext ?? copy(wrapped.ciphertext),
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/**
 * Makes providers for one check and closes every one of them afterwards, whatever the outcome. A failure to close
 * is not reported here (the `close` check covers `close()`), so it never hides the check's own failure.
 */
class Session {
  readonly #target: ConformanceTarget;
  readonly #open = new Set<KeyProvider>();

  constructor(target: ConformanceTarget) {
    this.#target = target;
  }

  async make(): Promise<KeyProvider> {
    const provider = await this.#target.makeProvider();
    ensure(
      provider !== null && typeof provider === 'object' && typeof provider.wrapKey === 'function',
      `makeProvider must return a KeyProvider; got ${describeValue(provider)}`,
    );
    this.#open.add(provider);
    return provider;
  }

  async rotate(provider: KeyProvider): Promise<KeyProvider> {
    const rotate = this.#target.rotate;
    ensure(rotate, 'the target has no rotate hook');
    const next = await rotate(provider);
    ensure(
      next !== null && typeof next === 'object' && typeof next.wrapKey === 'function',
      `rotate must return a KeyProvider; got ${describeValue(next)}`,
    );
    this.#open.add(next);
    return next;
  }

  async closeAll(): Promise<void> {
    const all = [...this.#open];
    this.#open.clear();
    await Promise.allSettled(all.map((p) => p.close()));
  }
}

async function withSession(target: ConformanceTarget, fn: (session: Session) => Promise<void>): Promise<void> {
  const session = new Session(target);
  try {
    await fn(session);
  } finally {
    await session.closeAll();
  }
}

async function describeOf(provider: KeyProvider): Promise<ProviderDescription> {
  const d = await provider.describe();
  ensure(d !== null && typeof d === 'object', `describe() must return an object; got ${describeValue(d)}`);
  return d;
}

/** Awaits a call that must succeed with `expected`; a rejection becomes a ConformanceError that says which call. */
async function ensureResolvesTo(pending: Promise<Uint8Array>, expected: Uint8Array, what: string): Promise<void> {
  let actual: Uint8Array;
  try {
    actual = await pending;
  } catch (err) {
    return fail(`${what} must succeed; it failed with ${describeError(err)}`, err);
  }
  ensureBytesEqual(actual, expected, what);
  actual.fill(0);
}

async function ensureRoundTrip(provider: KeyProvider, key: Uint8Array, context: EncryptionContext, what: string): Promise<WrappedKey> {
  const wrapped = await provider.wrapKey(key, context);
  await ensureResolvesTo(provider.unwrapKey(wrapped, context), key, `${what}: unwrapKey`);
  return wrapped;
}

async function ensureUnwrapFails(
  provider: KeyProvider,
  wrapped: WrappedKey,
  context: EncryptionContext,
  what: string,
  key?: Uint8Array,
): Promise<void> {
  const err = await expectKeyfoldError(provider.unwrapKey(wrapped, context), 'UNWRAP_FAILED', what);
  if (key) ensureNoKeyMaterial(err, key, what);
}

const roundTrip: ProviderCheck = {
  name: 'round trip',
  rule: 'wrapKey then unwrapKey returns the same 32 bytes, for empty, plain and non-ASCII contexts, Buffers and views',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const contexts: EncryptionContext[] = [{}, CONTEXT, { 'clé': 'värde ✓', emoji: '🔑', empty: '' }];
      for (const context of contexts) {
        const key = randomKey();
        const wrapped = await p.wrapKey(key, context);
        ensure(wrapped !== null && typeof wrapped === 'object', 'wrapKey must return a WrappedKey object');
        ensure(wrapped.kind === p.kind, `wrapped.kind must be the provider's kind "${p.kind}"; got "${wrapped.kind}"`);
        ensure(wrapped.keyId === p.keyId, `wrapped.keyId must be the provider's keyId "${p.keyId}"; got "${wrapped.keyId}"`);
        ensure(
          typeof wrapped.keyVersion === 'string' && wrapped.keyVersion.length > 0,
          'wrapped.keyVersion must be a non-empty string',
        );
        ensure(
          wrapped.ciphertext instanceof Uint8Array && wrapped.ciphertext.length > 0,
          'wrapped.ciphertext must be a non-empty Uint8Array',
        );
        ensure(!containsBytes(wrapped.ciphertext, key), 'wrapped.ciphertext contains the data key in clear');
        const back = await p.unwrapKey(wrapped, context);
        ensureBytesEqual(back, key, `unwrapKey with context ${JSON.stringify(context)}`);
      }
      // Buffers (what databases and fs hand back) work as well as plain Uint8Arrays.
      const key = randomKey();
      const wrapped = await p.wrapKey(Buffer.from(key), CONTEXT);
      const fromDb = relabel(wrapped, { ciphertext: Buffer.from(wrapped.ciphertext) });
      await ensureResolvesTo(p.unwrapKey(fromDb, CONTEXT), key, 'unwrapKey of a wrapped key whose ciphertext is a Buffer');
      // A data key that is a view into a larger buffer wraps only its own 32 bytes.
      const big = new Uint8Array(96);
      big.set(randomKey(), 0);
      big.set(key, 32);
      big.set(randomKey(), 64);
      const view = big.subarray(32, 64);
      const wrappedView = await p.wrapKey(view, CONTEXT);
      await ensureResolvesTo(p.unwrapKey(wrappedView, { ...CONTEXT }), key, 'unwrapKey of a key wrapped from a subarray view');
    }),
};

const contextBinding: ProviderCheck = {
  name: 'context binding',
  rule: 'a wrapped key unwraps only with the exact context it was wrapped with (order of keys irrelevant)',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      const wrong: ReadonlyArray<[string, EncryptionContext]> = [
        ['a different value', { ...CONTEXT, tenant: 'acme2' }],
        ['a value with trailing space', { ...CONTEXT, purpose: 'conformance ' }],
        ['a missing key', { tenant: 'acme' }],
        ['an extra key', { ...CONTEXT, extra: '1' }],
        ['the empty context', {}],
        ['key and value swapped', { acme: 'tenant', purpose: 'conformance' }],
      ];
      for (const [what, context] of wrong) {
        await ensureUnwrapFails(p, wrapped, context, `unwrapKey with ${what}`, key);
      }
      const reordered: EncryptionContext = { purpose: 'conformance', tenant: 'acme' };
      await ensureResolvesTo(p.unwrapKey(wrapped, reordered), key, 'unwrapKey with the same context in another key order');

      // The canonical encoding must be unambiguous: {a:'bc'} and {ab:'c'} are different contexts.
      const wrappedAbc = await p.wrapKey(key, { a: 'bc' });
      await ensureUnwrapFails(p, wrappedAbc, { ab: 'c' }, 'unwrapKey of {a:"bc"} with {ab:"c"}', key);
      await ensureUnwrapFails(p, wrappedAbc, { a: 'b', c: '' }, 'unwrapKey of {a:"bc"} with {a:"b",c:""}', key);
      // Strings are compared as given: no Unicode normalisation (NFC "é" is not NFD "é").
      const wrappedNfc = await p.wrapKey(key, { name: '\u00e9' });
      await ensureUnwrapFails(p, wrappedNfc, { name: 'e\u0301' }, 'unwrapKey with the NFD form of an NFC value', key);
      // A key wrapped with no context does not unwrap with one.
      const wrappedEmpty = await p.wrapKey(key, {});
      await ensureUnwrapFails(p, wrappedEmpty, { x: '1' }, 'unwrapKey of an empty-context key with a context', key);
      await ensureResolvesTo(p.unwrapKey(wrappedEmpty, {}), key, 'unwrapKey with the empty context');
    }),
};

const tamperedCiphertext: ProviderCheck = {
  name: 'tampered ciphertext',
  rule: 'every modified byte, truncation or extension of wrapped.ciphertext fails with UNWRAP_FAILED without key material',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      const ct = wrapped.ciphertext;
      for (let i = 0; i < ct.length; i++) {
        for (const mask of [0x01, 0xff]) {
          const bad = copy(ct);
          bad[i] = (bad[i] as number) ^ mask;
          await ensureUnwrapFails(
            p,
            relabel(wrapped, { ciphertext: bad }),
            CONTEXT,
            `unwrapKey with ciphertext byte ${i} of ${ct.length} XOR ${hex(mask)}`,
            key,
          );
        }
      }
      const shapes: ReadonlyArray<[string, Uint8Array]> = [
        ['the last byte removed', ct.slice(0, ct.length - 1)],
        ['the first byte removed', ct.slice(1)],
        ['half of it', ct.slice(0, ct.length >> 1)],
        ['a zero byte appended', Uint8Array.from([...ct, 0])],
        ['itself appended', Uint8Array.from([...ct, ...ct])],
        ['all zeros', new Uint8Array(ct.length)],
        ['no bytes', new Uint8Array(0)],
      ];
      for (const [what, bad] of shapes) {
        await ensureUnwrapFails(p, relabel(wrapped, { ciphertext: bad }), CONTEXT, `unwrapKey with ciphertext ${what}`, key);
      }
      // The failures must not have damaged the provider.
      await ensureResolvesTo(p.unwrapKey(wrapped, CONTEXT), key, 'unwrapKey of the original after the tampered attempts');
    }),
};

const relabelledWrappedKey: ProviderCheck = {
  name: 'relabelled wrapped key',
  rule: 'a wrapped key whose keyVersion, keyId or kind was changed fails with UNWRAP_FAILED',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      const d = await describeOf(p);
      const v = wrapped.keyVersion;
      const versions = new Set<string>(['', `${v}0`, `0${v}`, `x${v}`, `${v} `, '999999999', v.toUpperCase(), v.toLowerCase()]);
      for (const other of Array.isArray(d.versions) ? (d.versions as readonly unknown[]) : []) {
        if (typeof other === 'string') versions.add(other);
      }
      versions.delete(v);
      for (const keyVersion of versions) {
        await ensureUnwrapFails(p, relabel(wrapped, { keyVersion }), CONTEXT, `unwrapKey with keyVersion changed to ${JSON.stringify(keyVersion)}`, key);
      }
      const keyIds = new Set<string>(['', `${wrapped.keyId}x`, `x${wrapped.keyId}`, wrapped.keyId.toUpperCase(), wrapped.keyId.toLowerCase()]);
      keyIds.delete(wrapped.keyId);
      for (const keyId of keyIds) {
        await ensureUnwrapFails(p, relabel(wrapped, { keyId }), CONTEXT, `unwrapKey with keyId changed to ${JSON.stringify(keyId)}`, key);
      }
      const kinds = new Set<string>(['', `${wrapped.kind}x`, 'memory', 'env', 'file', 'aws-kms']);
      kinds.delete(wrapped.kind);
      for (const kind of kinds) {
        await ensureUnwrapFails(p, relabel(wrapped, { kind }), CONTEXT, `unwrapKey with kind changed to ${JSON.stringify(kind)}`, key);
      }
    }),
};

const foreignKek: ProviderCheck = {
  name: 'foreign KEK',
  rule: 'a key wrapped under another KEK fails with UNWRAP_FAILED, as is and relabelled to this provider',
  run: (target) =>
    withSession(target, async (s) => {
      const a = await s.make();
      const b = await s.make();
      const keyA = randomKey();
      const keyB = randomKey();
      const fromA = await ensureRoundTrip(a, keyA, CONTEXT, 'provider A');
      const fromB = await ensureRoundTrip(b, keyB, CONTEXT, 'provider B');
      const hint = ' (makeProvider must return a provider with a fresh, independent KEK on every call)';
      await ensureUnwrapFails(b, fromA, CONTEXT, `provider B unwrapping a key wrapped by provider A${hint}`, keyA);
      await ensureUnwrapFails(a, fromB, CONTEXT, `provider A unwrapping a key wrapped by provider B${hint}`, keyB);
      // Relabelled as B's own key, A's ciphertext reaches B's KEK, which must refuse it.
      const disguised = relabel(fromA, { kind: fromB.kind, keyId: fromB.keyId, keyVersion: fromB.keyVersion });
      await ensureUnwrapFails(b, disguised, CONTEXT, `provider B unwrapping A's ciphertext relabelled as B's${hint}`, keyA);
    }),
};

const callerBuffers: ProviderCheck = {
  name: 'caller buffers',
  rule: 'caller buffers are copied at the call, never mutated, never retained, and never returned',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const key = randomKey();
      const snapshot = copy(key);
      const context = { tenant: 'acme', purpose: 'conformance' };
      const wrapped = await p.wrapKey(key, context);
      ensureBytesEqual(key, snapshot, 'the data key passed to wrapKey (it must not be mutated)');
      ensure(context.tenant === 'acme' && context.purpose === 'conformance' && Object.keys(context).length === 2, 'wrapKey mutated the context');
      ensure(wrapped.ciphertext.buffer !== key.buffer, 'wrapped.ciphertext shares memory with the caller\'s data key');

      // Mutating the caller's key after wrapKey returned does not change what unwraps.
      key.fill(0x55);
      const ctSnapshot = copy(wrapped.ciphertext);
      const back = await p.unwrapKey(wrapped, context);
      ensureBytesEqual(back, snapshot, 'unwrapKey after the caller overwrote its data key');
      ensureBytesEqual(wrapped.ciphertext, ctSnapshot, 'wrapped.ciphertext after unwrapKey (it must not be mutated)');
      ensure(back !== key && back.buffer !== key.buffer, 'unwrapKey returned the caller\'s buffer');

      // Wiping a returned key does not affect the next unwrap: keys are not cached and handed out twice.
      back.fill(0);
      const again = await p.unwrapKey(wrapped, context);
      ensureBytesEqual(again, snapshot, 'a second unwrapKey after the caller wiped the first result');
      ensure(again.buffer !== back.buffer, 'two unwrapKey calls returned views of one buffer');
      again.fill(0);

      // Inputs are copied when the call is made: changing them before the promise settles changes nothing.
      const key2 = randomKey();
      const snapshot2 = copy(key2);
      const ctx2 = { tenant: 'acme', purpose: 'late-mutation' };
      const pendingWrap = p.wrapKey(key2, ctx2);
      key2.fill(0);
      ctx2.purpose = 'changed';
      const wrapped2 = await pendingWrap;
      const ciphertext2 = copy(wrapped2.ciphertext);
      const pendingUnwrap = p.unwrapKey(relabel(wrapped2, { ciphertext: ciphertext2 }), { tenant: 'acme', purpose: 'late-mutation' });
      ciphertext2.fill(0);
      await ensureResolvesTo(pendingUnwrap, snapshot2, 'unwrapKey of a key whose data key, context and ciphertext buffers the caller changed while the calls were pending');

      // A frozen context works: providers must not write to it.
      const frozen = Object.freeze({ tenant: 'acme' });
      await ensureRoundTrip(p, snapshot, frozen, 'a frozen context');
    }),
};

function ensureOwned(key: Uint8Array, what: string): void {
  ensure(
    key.byteOffset === 0 && key.buffer.byteLength === key.byteLength,
    `${what} is a view into a larger buffer (byteOffset ${key.byteOffset}, buffer ${key.buffer.byteLength} bytes): ` +
      'returned keys must own their memory so that wiping them leaves no copy behind',
  );
}

const ownedKeys: ProviderCheck = {
  name: 'returned keys own their memory',
  rule: 'returned data keys are fresh 32-byte Uint8Arrays that own their whole buffer, so wiping them leaves no copy',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      const a = await p.unwrapKey(wrapped, CONTEXT);
      const b = await p.unwrapKey(wrapped, CONTEXT);
      ensureBytesEqual(a, key, 'unwrapKey result');
      ensureOwned(a, 'the key returned by unwrapKey');
      ensure(a.buffer !== b.buffer, 'two unwrapKey calls returned the same buffer');
      a.fill(0);
      b.fill(0);
      if (typeof p.generateDataKey === 'function') {
        const { dataKey } = await p.generateDataKey(CONTEXT);
        ensure(dataKey instanceof Uint8Array && dataKey.length === DATA_KEY_LENGTH, 'generateDataKey must return a 32-byte dataKey');
        ensureOwned(dataKey, 'the key returned by generateDataKey');
        dataKey.fill(0);
      }
    }),
};

const concurrency: ProviderCheck = {
  name: 'concurrency',
  rule: 'many concurrent wrapKey and unwrapKey calls each return their own correct result',
  run: (target) =>
    withSession(target, async (s) => {
      const n = target.concurrency ?? 200;
      ensure(Number.isInteger(n) && n >= 2, `concurrency must be an integer >= 2; got ${n}`);
      const p = await s.make();
      const keys = Array.from({ length: n }, () => randomKey());
      const contexts = keys.map((_, i): EncryptionContext => ({ index: String(i) }));
      const wrapped = await Promise.all(keys.map((k, i) => p.wrapKey(k, contexts[i] as EncryptionContext)));
      const back = await Promise.all(wrapped.map((w, i) => p.unwrapKey(w, contexts[i] as EncryptionContext)));
      back.forEach((b, i) => ensureBytesEqual(b, keys[i] as Uint8Array, `concurrent unwrapKey #${i}`));

      // Wraps and unwraps interleaved in one batch.
      const fresh = Array.from({ length: n >> 1 }, () => randomKey());
      const mixed = await Promise.all([
        ...fresh.map(async (k, i) => {
          const ctx = { fresh: String(i) };
          const w = await p.wrapKey(k, ctx);
          return { kind: 'wrap' as const, i, out: await p.unwrapKey(w, ctx) };
        }),
        ...wrapped.slice(0, n >> 1).map(async (w, i) => ({
          kind: 'unwrap' as const,
          i,
          out: await p.unwrapKey(w, contexts[i] as EncryptionContext),
        })),
      ]);
      for (const r of mixed) {
        const expected = r.kind === 'wrap' ? fresh[r.i] : keys[r.i];
        ensureBytesEqual(r.out, expected as Uint8Array, `interleaved ${r.kind} #${r.i}`);
      }
      // Results are bound to their own context, not a neighbour's.
      await ensureUnwrapFails(p, wrapped[0] as WrappedKey, contexts[1] as EncryptionContext, 'unwrapKey #0 with the context of #1');
    }),
};

const generateDataKey: ProviderCheck = {
  name: 'generateDataKey',
  rule: 'generateDataKey (when present) returns a random 32-byte key and its wrapped form under the active version',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const d = await describeOf(p);
      if (typeof p.generateDataKey !== 'function') {
        ensure(
          d.capabilities.generateDataKey === false,
          'describe().capabilities.generateDataKey is true but the provider has no generateDataKey method',
        );
        return;
      }
      const first = await p.generateDataKey(CONTEXT);
      const second = await p.generateDataKey(CONTEXT);
      ensure(first.dataKey instanceof Uint8Array && first.dataKey.length === DATA_KEY_LENGTH, 'generateDataKey must return a 32-byte dataKey');
      ensure(!first.dataKey.every((b) => b === 0), 'generateDataKey returned an all-zero key');
      ensure(first.wrapped.kind === p.kind && first.wrapped.keyId === p.keyId, 'generateDataKey returned a wrapped key of another kind or keyId');
      ensure(first.wrapped.keyVersion === d.activeVersion, `generateDataKey must wrap under the active version ${d.activeVersion}; got ${first.wrapped.keyVersion}`);
      ensure(!containsBytes(first.wrapped.ciphertext, first.dataKey), 'the wrapped key from generateDataKey contains the data key in clear');
      ensure(
        !(first.dataKey.length === second.dataKey.length && first.dataKey.every((b, i) => b === second.dataKey[i])),
        'two generateDataKey calls returned the same key',
      );
      await ensureResolvesTo(p.unwrapKey(first.wrapped, CONTEXT), first.dataKey, 'unwrapKey of the generateDataKey result');
      await ensureUnwrapFails(p, first.wrapped, { ...CONTEXT, tenant: 'other' }, 'unwrapKey of a generated key with another context', first.dataKey);
      first.dataKey.fill(0);
      second.dataKey.fill(0);
    }),
};

const rewrapKey: ProviderCheck = {
  name: 'rewrapKey',
  rule: 'rewrapKey (when present) returns a wrapped key under the active version that unwraps to the same key',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const d = await describeOf(p);
      if (typeof p.rewrapKey !== 'function') {
        ensure(d.capabilities.rewrapKey === false, 'describe().capabilities.rewrapKey is true but the provider has no rewrapKey method');
        return;
      }
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      const rewrapped = await p.rewrapKey(wrapped, CONTEXT);
      ensure(rewrapped.kind === p.kind && rewrapped.keyId === p.keyId, 'rewrapKey returned a wrapped key of another kind or keyId');
      ensure(rewrapped.keyVersion === d.activeVersion, `rewrapKey must wrap under the active version ${d.activeVersion}; got ${rewrapped.keyVersion}`);
      await ensureResolvesTo(p.unwrapKey(rewrapped, CONTEXT), key, 'unwrapKey of the rewrapKey result');
      await expectKeyfoldError(p.rewrapKey(wrapped, { ...CONTEXT, tenant: 'other' }), 'UNWRAP_FAILED', 'rewrapKey with another context');
      const bad = copy(wrapped.ciphertext);
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01;
      await expectKeyfoldError(p.rewrapKey(relabel(wrapped, { ciphertext: bad }), CONTEXT), 'UNWRAP_FAILED', 'rewrapKey of a tampered key');
    }),
};

const rotation: ProviderCheck = {
  name: 'rotation',
  rule: 'after a rotation new wraps use the new version and keys wrapped under every earlier version still unwrap',
  run: (target) =>
    withSession(target, async (s) => {
      const p1 = await s.make();
      const d1 = await describeOf(p1);
      if (!target.rotate) {
        ensure(
          d1.capabilities.rotate === false,
          'describe().capabilities.rotate is true but the suite was given no rotate hook: pass rotate to test it',
        );
        return;
      }
      const k1 = randomKey();
      const w1 = await p1.wrapKey(k1, CONTEXT);
      ensure(w1.keyVersion === d1.activeVersion, `wrapKey must use the active version ${d1.activeVersion}; got ${w1.keyVersion}`);

      const p2 = await s.rotate(p1);
      const d2 = await describeOf(p2);
      ensure(d2.activeVersion !== d1.activeVersion, `rotate must activate a new version; the active version is still ${d1.activeVersion}`);
      ensure(d2.versions.includes(d1.activeVersion), `describe().versions after rotate must still list ${d1.activeVersion}`);
      ensure(d2.versions.includes(d2.activeVersion), `describe().versions must list the active version ${d2.activeVersion}`);
      const k2 = randomKey();
      const w2 = await p2.wrapKey(k2, CONTEXT);
      ensure(w2.keyVersion === d2.activeVersion, `after rotate, wrapKey must use ${d2.activeVersion}; got ${w2.keyVersion}`);
      await ensureResolvesTo(p2.unwrapKey(w1, CONTEXT), k1, `unwrapKey after rotate of a key wrapped under ${d1.activeVersion}`);
      await ensureResolvesTo(p2.unwrapKey(w2, CONTEXT), k2, `unwrapKey of a key wrapped under ${d2.activeVersion}`);

      // A wrapped key moved to the other (existing) version fails.
      await ensureUnwrapFails(p2, relabel(w1, { keyVersion: w2.keyVersion }), CONTEXT, `a ${w1.keyVersion} key relabelled as ${w2.keyVersion}`, k1);
      await ensureUnwrapFails(p2, relabel(w2, { keyVersion: w1.keyVersion }), CONTEXT, `a ${w2.keyVersion} key relabelled as ${w1.keyVersion}`, k2);

      if (typeof p2.rewrapKey === 'function') {
        const moved = await p2.rewrapKey(w1, CONTEXT);
        ensure(moved.keyVersion === d2.activeVersion, `rewrapKey after rotate must move the key to ${d2.activeVersion}; got ${moved.keyVersion}`);
        await ensureResolvesTo(p2.unwrapKey(moved, CONTEXT), k1, 'unwrapKey of a key rewrapped after rotate');
      }

      // A second rotation: all three versions still unwrap.
      const p3 = await s.rotate(p2);
      const d3 = await describeOf(p3);
      ensure(
        d3.activeVersion !== d1.activeVersion && d3.activeVersion !== d2.activeVersion,
        `a second rotate must activate a third version; got ${d3.activeVersion}`,
      );
      const k3 = randomKey();
      const w3 = await p3.wrapKey(k3, CONTEXT);
      for (const [w, k, what] of [[w1, k1, 'first'], [w2, k2, 'second'], [w3, k3, 'third']] as const) {
        await ensureResolvesTo(p3.unwrapKey(w, CONTEXT), k, `unwrapKey after two rotations of a key wrapped under the ${what} version`);
      }
    }),
};

/** A version no provider under test has: numeric, so services that parse versions parse it, and far beyond any real one. */
const ABSENT_VERSION = '987654321';

const writeVersion: ProviderCheck = {
  name: 'write version',
  rule:
    'withWriteVersion (when present) writes under exactly the version asked for, refuses one it cannot write with KEY_NOT_FOUND ' +
    'while still unwrapping, and closing the view leaves the provider open',
  run: (target) =>
    withSession(target, async (s) => {
      let p = await s.make();
      if (typeof p.withWriteVersion !== 'function') return;
      const d1 = await describeOf(p);
      const k1 = randomKey();
      const w1 = await p.wrapKey(k1, CONTEXT);
      if (target.rotate && d1.capabilities.writeVersion === true) p = await s.rotate(p);
      const d = await describeOf(p);
      const writable = d.capabilities.writeVersion === true ? d.versions : [d.activeVersion];
      for (const version of writable) {
        const view = p.withWriteVersion!(version);
        ensure(view.kind === p.kind && view.keyId === p.keyId, `withWriteVersion(${version}) must keep kind and keyId`);
        ensure((await describeOf(view)).activeVersion === version, `withWriteVersion(${version}).describe().activeVersion must be ${version}`);
        const k = randomKey();
        const w = await view.wrapKey(k, CONTEXT);
        ensure(w.keyVersion === version, `withWriteVersion(${version}).wrapKey must wrap under ${version}; got ${w.keyVersion}`);
        await ensureResolvesTo(p.unwrapKey(w, CONTEXT), k, `unwrapKey by the provider of a key its ${version} view wrapped`);
        if (typeof view.generateDataKey === 'function') {
          const g = await view.generateDataKey(CONTEXT);
          ensure(g.wrapped.keyVersion === version, `withWriteVersion(${version}).generateDataKey must wrap under ${version}; got ${g.wrapped.keyVersion}`);
          await ensureResolvesTo(p.unwrapKey(g.wrapped, CONTEXT), copy(g.dataKey), `unwrapKey of a data key the ${version} view generated`);
          g.dataKey.fill(0);
        }
        if (typeof view.rewrapKey === 'function') {
          const moved = await view.rewrapKey(w1, CONTEXT);
          ensure(moved.keyVersion === version, `withWriteVersion(${version}).rewrapKey must move the key to ${version}; got ${moved.keyVersion}`);
          await ensureResolvesTo(p.unwrapKey(moved, CONTEXT), k1, `unwrapKey of a key the ${version} view rewrapped`);
        }
        await view.close();
      }

      const absent = d.capabilities.writeVersion === true ? ABSENT_VERSION : d.versions.find((v) => v !== d.activeVersion) ?? ABSENT_VERSION;
      const missing = p.withWriteVersion!(absent);
      const err = await expectKeyfoldError(missing.wrapKey(k1, CONTEXT), 'KEY_NOT_FOUND', `wrapKey of a view of version ${absent}, which the provider cannot write`);
      ensureNoKeyMaterial(err, k1, `the KEY_NOT_FOUND of a view of version ${absent}`);
      if (typeof missing.generateDataKey === 'function') {
        await expectKeyfoldError(missing.generateDataKey(CONTEXT), 'KEY_NOT_FOUND', `generateDataKey of a view of version ${absent}`);
      }
      if (typeof missing.rewrapKey === 'function') {
        await expectKeyfoldError(missing.rewrapKey(w1, CONTEXT), 'KEY_NOT_FOUND', `rewrapKey of a view of version ${absent}`);
      }
      await ensureResolvesTo(missing.unwrapKey(w1, CONTEXT), k1, `unwrapKey through a view of version ${absent} (unwraps must keep working)`);

      await missing.close();
      await expectKeyfoldError(missing.wrapKey(k1, CONTEXT), 'PROVIDER_CLOSED', 'wrapKey of a closed view');
      await ensureResolvesTo(p.unwrapKey(w1, CONTEXT), k1, 'unwrapKey by the provider after one of its views was closed');
      const again = await p.wrapKey(randomKey(), CONTEXT);
      ensure(again.keyVersion === d.activeVersion, `the provider must keep writing under its own active version ${d.activeVersion}; got ${again.keyVersion}`);
    }),
};

const describeCheck: ProviderCheck = {
  name: 'describe',
  rule: 'describe() reports the provider identity, its versions (including the active one) and its capabilities',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      ensure(typeof p.kind === 'string' && p.kind.length > 0, 'provider.kind must be a non-empty string');
      ensure(typeof p.keyId === 'string' && p.keyId.length > 0, 'provider.keyId must be a non-empty string');
      const d = await describeOf(p);
      ensure(d.kind === p.kind, `describe().kind must be "${p.kind}"; got "${d.kind}"`);
      ensure(d.keyId === p.keyId, `describe().keyId must be "${p.keyId}"; got "${d.keyId}"`);
      ensure(d.protection === p.protection, `describe().protection must be "${p.protection}"; got "${d.protection}"`);
      ensure(['hsm', 'kms', 'software', 'memory'].includes(d.protection), `describe().protection "${d.protection}" is not a known protection level`);
      ensure(Array.isArray(d.versions) && d.versions.length > 0, 'describe().versions must be a non-empty array');
      ensure(d.versions.every((v) => typeof v === 'string' && v.length > 0), 'describe().versions must hold non-empty strings');
      ensure(new Set(d.versions).size === d.versions.length, 'describe().versions must not repeat a version');
      ensure(d.versions.includes(d.activeVersion), `describe().versions must include the active version ${d.activeVersion}`);
      const caps = d.capabilities as unknown as Record<string, unknown> | undefined;
      ensure(caps !== null && typeof caps === 'object', 'describe().capabilities must be an object');
      for (const c of ['generateDataKey', 'rewrapKey', 'rotate']) {
        ensure(typeof caps[c] === 'boolean', `describe().capabilities.${c} must be a boolean`);
      }
      if (d.details !== undefined) {
        for (const [k, v] of Object.entries(d.details)) {
          ensure(['string', 'number', 'boolean'].includes(typeof v), `describe().details.${k} must be a string, number or boolean`);
        }
      }
      const wrapped = await p.wrapKey(randomKey(), CONTEXT);
      ensure(wrapped.keyVersion === d.activeVersion, `wrapKey must use the active version ${d.activeVersion}; got ${wrapped.keyVersion}`);
    }),
};

async function probeWithoutThrowing(p: KeyProvider, when: string): Promise<Awaited<ReturnType<KeyProvider['probe']>>> {
  try {
    const r = await p.probe();
    ensure(r !== null && typeof r === 'object', `probe() ${when} must return a ProbeResult; got ${describeValue(r)}`);
    return r;
  } catch (err) {
    if (err instanceof ConformanceError) throw err;
    return fail(`probe() ${when} must report problems in its result, never throw; it threw ${describeError(err)}`, err);
  }
}

const probe: ProviderCheck = {
  name: 'probe',
  rule: 'probe() reports health with a latency and never throws, also after close()',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const r = await probeWithoutThrowing(p, 'on a healthy provider');
      ensure(r.ok === true, `probe() of a healthy provider must report ok: true; got ${r.error ? `${r.error.code}: ${r.error.message}` : String(r.ok)}`);
      ensure(typeof r.latencyMs === 'number' && Number.isFinite(r.latencyMs) && r.latencyMs >= 0, 'probe().latencyMs must be a finite number >= 0');
      ensure(r.kind === p.kind && r.keyId === p.keyId, 'probe() must report the provider kind and keyId');
      ensure(r.error === undefined, 'a healthy probe() must not carry an error');
      if (r.activeVersion !== undefined) {
        const d = await describeOf(p);
        ensure(r.activeVersion === d.activeVersion, `probe().activeVersion must match describe(); got ${r.activeVersion}`);
      }
      await p.close();
      const closed = await probeWithoutThrowing(p, 'after close()');
      ensure(closed.ok === false, 'probe() after close() must report ok: false');
      ensure(
        closed.error !== undefined && closed.error.code === 'PROVIDER_CLOSED' && typeof closed.error.message === 'string',
        `probe() after close() must report error code PROVIDER_CLOSED; got ${closed.error ? closed.error.code : 'no error'}`,
      );
      ensure(typeof closed.latencyMs === 'number' && Number.isFinite(closed.latencyMs), 'probe().latencyMs must be a number also when not ok');
    }),
};

const close: ProviderCheck = {
  name: 'close',
  rule: 'close() is idempotent and every later call fails with PROVIDER_CLOSED',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      try {
        await Promise.all([p.close(), p.close()]);
        await p.close();
      } catch (err) {
        fail(`close() must be idempotent; calling it again threw ${describeError(err)}`, err);
      }
      await expectKeyfoldError(p.wrapKey(randomKey(), CONTEXT), 'PROVIDER_CLOSED', 'wrapKey after close()');
      const err = await expectKeyfoldError(p.unwrapKey(wrapped, CONTEXT), 'PROVIDER_CLOSED', 'unwrapKey after close()');
      ensureNoKeyMaterial(err, key, 'unwrapKey after close()');
      await expectKeyfoldError(p.describe(), 'PROVIDER_CLOSED', 'describe after close()');
      if (typeof p.generateDataKey === 'function') {
        await expectKeyfoldError(p.generateDataKey(CONTEXT), 'PROVIDER_CLOSED', 'generateDataKey after close()');
      }
      if (typeof p.rewrapKey === 'function') {
        await expectKeyfoldError(p.rewrapKey(wrapped, CONTEXT), 'PROVIDER_CLOSED', 'rewrapKey after close()');
      }
    }),
};

const argumentValidation: ProviderCheck = {
  name: 'argument validation',
  rule: 'wrong argument types and sizes are refused with TypeError or RangeError (caller mistakes), never echoing keys',
  run: (target) =>
    withSession(target, async (s) => {
      const p = await s.make();
      const wrapKey = p.wrapKey.bind(p) as (k: unknown, c: unknown) => Promise<WrappedKey>;
      const unwrapKey = p.unwrapKey.bind(p) as (w: unknown, c: unknown) => Promise<Uint8Array>;
      const key31 = randomKey().slice(0, 31);
      const badKeys: ReadonlyArray<[string, unknown]> = [
        ['a 31-byte key', key31],
        ['a 33-byte key', new Uint8Array(33)],
        ['an empty key', new Uint8Array(0)],
        ['a hex string', Buffer.from(randomKey()).toString('hex')],
        ['an array of numbers', Array.from(randomKey())],
        ['an ArrayBuffer', new ArrayBuffer(32)],
        ['null', null],
        ['undefined', undefined],
      ];
      for (const [what, bad] of badKeys) {
        const err = await expectCallerError(() => wrapKey(bad, CONTEXT), `wrapKey with ${what}`);
        if (bad instanceof Uint8Array) ensureNoKeyMaterial(err, bad, `wrapKey with ${what}`);
        if (typeof bad === 'string') ensure(!err.message.includes(bad), `wrapKey with ${what}: the error echoes the key`);
      }
      const badContexts: ReadonlyArray<[string, unknown]> = [
        ['a null context', null],
        ['an undefined context', undefined],
        ['a string context', 'tenant=acme'],
        ['a number context', 42],
        ['an array context', ['tenant', 'acme']],
        ['a context with a number value', { tenant: 1 }],
        ['a context with an undefined value', { tenant: undefined }],
        ['a context with an empty key', { '': 'x' }],
      ];
      const key = randomKey();
      const wrapped = await p.wrapKey(key, CONTEXT);
      for (const [what, bad] of badContexts) {
        await expectCallerError(() => wrapKey(key, bad), `wrapKey with ${what}`);
        await expectCallerError(() => unwrapKey(wrapped, bad), `unwrapKey with ${what}`);
        if (typeof p.generateDataKey === 'function') {
          const gen = p.generateDataKey.bind(p) as (c: unknown) => Promise<unknown>;
          await expectCallerError(() => gen(bad), `generateDataKey with ${what}`);
        }
      }
      const badWrapped: ReadonlyArray<[string, unknown]> = [
        ['null', null],
        ['a string', 'wrapped'],
        ['an empty object', {}],
        ['a string ciphertext', { ...wrapped, ciphertext: Buffer.from(wrapped.ciphertext).toString('base64') }],
        ['an array ciphertext', { ...wrapped, ciphertext: Array.from(wrapped.ciphertext) }],
        ['a number keyVersion', { ...wrapped, keyVersion: 1 }],
        ['a missing keyId', { kind: wrapped.kind, keyVersion: wrapped.keyVersion, ciphertext: wrapped.ciphertext }],
      ];
      for (const [what, bad] of badWrapped) {
        const err = await expectCallerError(() => unwrapKey(bad, CONTEXT), `unwrapKey with ${what} as the wrapped key`);
        ensureNoKeyMaterial(err, key, `unwrapKey with ${what} as the wrapped key`);
      }
      // After all the refusals, the provider still works.
      await ensureResolvesTo(p.unwrapKey(wrapped, CONTEXT), key, 'unwrapKey after the refused calls');
    }),
};

const backendErrors: ProviderCheck = {
  name: 'backend errors',
  rule: 'a backend failure surfaces as a KeyfoldError with the mapped code and the original error as cause',
  requires: 'makeFailingProvider',
  run: async (target) => {
    const make = target.makeFailingProvider;
    ensure(make, 'the target has no makeFailingProvider hook');
    const failing = await make();
    const { provider, expectCode } = failing;
    try {
      const context = failing.context ?? {};
      const key = randomKey();
      const ensureMapped = async (call: Promise<unknown>, what: string): Promise<void> => {
        const err = await expectKeyfoldError(call, expectCode, what);
        ensure(err.cause !== undefined, `${what}: the ${expectCode} error must keep the backend's original error as cause`);
        ensureNoKeyMaterial(err, key, what);
      };
      await ensureMapped(provider.wrapKey(key, context), 'wrapKey against the failing backend');
      if (failing.wrapped) await ensureMapped(provider.unwrapKey(failing.wrapped, context), 'unwrapKey against the failing backend');
      const r = await probeWithoutThrowing(provider, 'against the failing backend');
      ensure(r.ok === false, 'probe() against the failing backend must report ok: false');
      ensure(r.error?.code === expectCode, `probe() against the failing backend must report code ${expectCode}; got ${r.error?.code ?? 'none'}`);
    } finally {
      await provider.close().catch(() => undefined);
    }
  },
};

/**
 * A call the check expected to succeed failed: report it as a ConformanceError (with the original as `cause`), so
 * every failure of a check is a ConformanceError, whatever the provider threw.
 */
function reportUnexpected(check: ProviderCheck): ProviderCheck {
  return Object.freeze({
    ...check,
    run: (target: ConformanceTarget) =>
      check.run(target).catch((err: unknown) => {
        if (err instanceof ConformanceError) throw err;
        return fail(`"${check.name}": a call that must succeed failed with ${describeError(err)}`, err);
      }),
  });
}

/**
 * Every KeyProvider conformance check, in run order. Run one directly with `runProviderCheck`, or register
 * them all with a test framework through `runProviderConformance`. Each `run` rejects with a `ConformanceError`
 * (the original error as `cause`) when the provider breaks its rule.
 * @example
 * ```ts
 * const check = providerChecks.find((c) => c.name === 'tampered ciphertext')!;
 * await check.run({ makeProvider });
 * ```
 */
export const providerChecks: ReadonlyArray<ProviderCheck> = Object.freeze(
  [
  roundTrip,
  contextBinding,
  tamperedCiphertext,
  relabelledWrappedKey,
  foreignKek,
  callerBuffers,
  ownedKeys,
  concurrency,
  generateDataKey,
  rewrapKey,
  rotation,
  writeVersion,
  describeCheck,
  probe,
  close,
  argumentValidation,
  backendErrors,
  ].map(reportUnexpected),
);
