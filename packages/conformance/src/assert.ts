/**
 * Framework-agnostic assertions for the conformance checks. They throw {@link ConformanceError}, which every test
 * runner reports as a failure, and their messages never print key bytes (a failing provider may be a real one).
 * @module
 */
import { KeyfoldError, type KeyfoldErrorCode } from '@keyfold/envelope-core';

/**
 * Thrown by a conformance check when the provider breaks one of the `KeyProvider` rules.
 * @example
 * ```ts
 * try { await runProviderCheck('probe', target); } catch (err) { if (err instanceof ConformanceError) report(err.message); }
 * ```
 */
export class ConformanceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConformanceError';
  }
}

/** Throws a {@link ConformanceError} with `message`. */
export function fail(message: string, cause?: unknown): never {
  throw new ConformanceError(message, cause === undefined ? undefined : { cause });
}

/** Asserts `condition`; `message` says which rule the provider broke. */
export function ensure(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Byte equality for test assertions (not constant time: test data only). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Asserts `actual` is a Uint8Array with the same bytes as `expected`, without printing either. */
export function ensureBytesEqual(actual: unknown, expected: Uint8Array, what: string): asserts actual is Uint8Array {
  ensure(actual instanceof Uint8Array, `${what} must be a Uint8Array; got ${describeValue(actual)}`);
  ensure(actual.length === expected.length, `${what} must be ${expected.length} bytes; got ${actual.length}`);
  ensure(bytesEqual(actual, expected), `${what} does not hold the expected bytes`);
}

/** True when `needle` occurs in `haystack` as a contiguous run of bytes. */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(
    Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength),
  );
}

/** A short description of a value for messages: its type, never its contents. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.constructor.name}(${value.length})`;
  if (typeof value === 'object') return (value.constructor as { name?: string } | undefined)?.name ?? 'object';
  return typeof value;
}

/**
 * A coded Keyfold error, recognised across module copies (ESM and CJS builds of the core are two classes).
 * @example
 * ```ts
 * const err: KeyfoldErrorLike = await expectKeyfoldError(call, 'UNWRAP_FAILED');
 * ```
 */
export type KeyfoldErrorLike = Error & { readonly code: KeyfoldErrorCode };

/**
 * True when `err` is a `KeyfoldError` (from any copy of `@keyfold/envelope-core`, so a provider bundled with the
 * CJS build still counts) with a string `code`.
 * @throws nothing: any value is accepted.
 * @example
 * ```ts
 * if (isKeyfoldErrorLike(err) && err.code === 'THROTTLED') retryLater();
 * ```
 */
export function isKeyfoldErrorLike(err: unknown): err is KeyfoldErrorLike {
  if (!(err instanceof Error)) return false;
  if (typeof (err as { code?: unknown }).code !== 'string') return false;
  if (err instanceof KeyfoldError) return true;
  for (let proto: unknown = Object.getPrototypeOf(err); proto && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: string } }).constructor?.name === 'KeyfoldError') return true;
  }
  return false;
}

/** `name: message` (plus the code of a coded error) for failure messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${err.message}`;
  }
  return `a thrown ${describeValue(err)}`;
}

/**
 * Runs `action` and asserts that it rejects (or throws) with a `KeyfoldError` of `code`. A resolved `Uint8Array`
 * (a key that should not have been released) is wiped before the failure is reported.
 * @returns the error, for further checks.
 * @throws ConformanceError when the action succeeds, or fails in another way.
 * @example
 * ```ts
 * await expectKeyfoldError(provider.unwrapKey(tampered, context), 'UNWRAP_FAILED', 'unwrapKey of a tampered key');
 * ```
 */
export async function expectKeyfoldError(
  action: Promise<unknown> | (() => unknown),
  code: KeyfoldErrorCode,
  what = 'the call',
): Promise<KeyfoldErrorLike> {
  let result: unknown;
  try {
    result = typeof action === 'function' ? await action() : await action;
  } catch (err) {
    if (!isKeyfoldErrorLike(err)) {
      fail(`${what} must fail with a KeyfoldError of code ${code}; it failed with ${describeError(err)}`, err);
    }
    if (err.code !== code) fail(`${what} must fail with code ${code}; it failed with ${describeError(err)}`, err);
    return err;
  }
  if (result instanceof Uint8Array) result.fill(0);
  else if (result && typeof result === 'object' && (result as { dataKey?: unknown }).dataKey instanceof Uint8Array) {
    (result as { dataKey: Uint8Array }).dataKey.fill(0);
  }
  return fail(`${what} must fail with code ${code}; it succeeded`);
}

/**
 * Asserts that `call` returns a promise that rejects with a caller-mistake error (`TypeError` or `RangeError`, not
 * a coded `KeyfoldError`). A synchronous throw is a failure too: every `KeyProvider` method returns a promise.
 * @returns the error.
 * @throws ConformanceError when the call throws synchronously, succeeds, or fails with anything but a TypeError /
 *   RangeError.
 * @example
 * ```ts
 * await expectCallerError(() => provider.wrapKey(new Uint8Array(31), {}), 'wrapKey with a 31-byte key');
 * ```
 */
export async function expectCallerError(call: () => Promise<unknown>, what: string): Promise<Error> {
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (err) {
    return fail(`${what} must return a rejected promise; it threw synchronously (${describeError(err)})`, err);
  }
  ensure(pending instanceof Promise || typeof (pending as { then?: unknown })?.then === 'function', `${what} must return a promise`);
  try {
    const result = await pending;
    if (result instanceof Uint8Array) result.fill(0);
  } catch (err) {
    if (isKeyfoldErrorLike(err)) {
      fail(`${what} is a caller mistake and must reject with TypeError or RangeError, not ${describeError(err)}`, err);
    }
    if (!(err instanceof TypeError || err instanceof RangeError)) {
      fail(`${what} must reject with TypeError or RangeError; it rejected with ${describeError(err)}`, err);
    }
    return err;
  }
  return fail(`${what} must reject with TypeError or RangeError; it succeeded`);
}

const MIN_DISTINCTIVE_KEY = 16;

/**
 * Asserts that neither `err` nor any error in its `cause` chain mentions `key` in hex, base64 or base64url
 * (in `message` or `stack`). Unwrap errors must never echo key material, however they are logged. Keys shorter than
 * 16 bytes are not searched: too short to be told apart from chance.
 * @throws ConformanceError when key material is found.
 * @example
 * ```ts
 * const err = await expectKeyfoldError(provider.unwrapKey(tampered, {}), 'UNWRAP_FAILED');
 * ensureNoKeyMaterial(err, dataKey, 'unwrapKey of a tampered key');
 * ```
 */
export function ensureNoKeyMaterial(err: unknown, key: Uint8Array, what: string): void {
  if (key.length < MIN_DISTINCTIVE_KEY) return;
  const buf = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const forms = [buf.toString('hex'), buf.toString('hex').toUpperCase(), buf.toString('base64'), buf.toString('base64url')];
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    const text =
      current instanceof Error ? `${current.message}\n${current.stack ?? ''}` : typeof current === 'string' ? current : '';
    for (const form of forms) {
      ensure(!text.includes(form), `${what}: the error (or its cause) contains the data key`);
    }
    current = current instanceof Error ? current.cause : undefined;
  }
}
