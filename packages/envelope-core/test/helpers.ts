/**
 * Test-only KEK provider for the core's own tests (the core cannot depend on @keyfold/provider-local, which
 * depends on it). It is a complete BaseKeyProvider over core's localWrap; provider-local's real providers are
 * tested against the conformance suite in their own package.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  KeyfoldError,
  type Envelope,
  type KeyfoldErrorCode,
  type Protection,
  BaseKeyProvider,
  encodeContext,
  localUnwrap,
  localWrap,
  localWrapAad,
  UnwrapFailedError,
  type BaseProviderOptions,
  type EncryptionContext,
  type ProviderDescription,
  type WrappedKey,
} from '../src/index.js';

export class TestKekProvider extends BaseKeyProvider {
  readonly kind = 'test';
  readonly protection = 'software' as const;
  readonly keyId: string;
  readonly kek = new Uint8Array(randomBytes(32));
  wraps = 0;
  unwraps = 0;

  constructor(keyId = `test-${randomBytes(4).toString('hex')}`, options: BaseProviderOptions = {}) {
    super(options);
    this.keyId = keyId;
  }

  protected _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.wraps++;
    const aad = localWrapAad(this.kind, this.keyId, '1', encodeContext(context));
    return Promise.resolve({ kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: localWrap(this.kek, dataKey, aad) });
  }

  protected _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.unwraps++;
    const aad = localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context));
    const key = wrapped.keyVersion === '1' ? localUnwrap(this.kek, wrapped.ciphertext, aad) : undefined;
    if (!key) throw new UnwrapFailedError();
    return Promise.resolve(key);
  }

  protected _describe(): Promise<ProviderDescription> {
    return Promise.resolve({
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: '1',
      versions: ['1'],
      capabilities: this.capabilities,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers for the envelope-core suite (everything below is test-only).
// ---------------------------------------------------------------------------------------------------------------

export interface LocalKekOptions extends BaseProviderOptions {
  kind?: string;
  keyId?: string;
  protection?: Protection;
  /** Implement `_generateDataKey` natively and remember the exact buffers handed out (to watch them get wiped). */
  nativeGenerate?: boolean;
}

/**
 * A local-wrap provider with a configurable kind / keyId / protection that records what it sees:
 * - `wrappedDataKeys`: copies of every data key it wrapped (lets a test recompute the documented construction);
 * - `passedDataKeys`: the very buffers `_wrapKey` received (the base class must wipe them after the call);
 * - `generated`: the very buffers a native `_generateDataKey` returned (owned by the envelope / its cache after).
 * `beforeWrap` / `beforeUnwrap` let a test hold a call open (a gate) or make it fail.
 */
export class LocalKekProvider extends BaseKeyProvider {
  readonly kind: string;
  readonly keyId: string;
  readonly protection: Protection;
  readonly kek = new Uint8Array(randomBytes(32));
  wraps = 0;
  unwraps = 0;
  generates = 0;
  readonly wrappedDataKeys: Uint8Array[] = [];
  readonly passedDataKeys: Uint8Array[] = [];
  readonly generated: Uint8Array[] = [];
  beforeWrap: (() => Promise<void>) | undefined;
  beforeUnwrap: (() => Promise<void>) | undefined;

  constructor(options: LocalKekOptions = {}) {
    super(options);
    this.kind = options.kind ?? 'test';
    this.keyId = options.keyId ?? `kek-${randomBytes(4).toString('hex')}`;
    this.protection = options.protection ?? 'software';
    if (options.nativeGenerate === true) {
      this._generateDataKey = async (context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> => {
        this.generates++;
        const dataKey = new Uint8Array(randomBytes(32));
        this.generated.push(dataKey);
        const wrapped = await this._wrapKey(dataKey, context);
        return { dataKey, wrapped };
      };
    }
  }

  protected override _generateDataKey?: (context: EncryptionContext) => Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }>;

  protected async _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.wraps++;
    this.passedDataKeys.push(dataKey);
    this.wrappedDataKeys.push(Uint8Array.from(dataKey));
    if (this.beforeWrap) await this.beforeWrap();
    const aad = localWrapAad(this.kind, this.keyId, '1', encodeContext(context));
    return { kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: localWrap(this.kek, dataKey, aad) };
  }

  protected async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.unwraps++;
    if (this.beforeUnwrap) await this.beforeUnwrap();
    const aad = localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context));
    const key = wrapped.keyVersion === '1' ? localUnwrap(this.kek, wrapped.ciphertext, aad) : undefined;
    if (!key) throw new UnwrapFailedError();
    return key;
  }

  protected _describe(): Promise<ProviderDescription> {
    return Promise.resolve({
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: '1',
      versions: ['1'],
      capabilities: this.capabilities,
    });
  }
}

/** A gate: `wait()` resolves once `open()` is called; `reached` resolves when someone first waits. */
export function gate(): { wait: () => Promise<void>; open: () => void; reached: Promise<void> } {
  let release!: () => void;
  let signalReached!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (signalReached = r));
  return {
    wait: () => {
      signalReached();
      return opened;
    },
    open: () => release(),
    reached,
  };
}

/** Runs `fn` and returns what it threw (or rejected with); fails the test when it did not throw. */
export async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the call succeeded');
}

/** Like {@link caught}, and asserts a KeyfoldError (optionally of `code`); returns it. */
export async function expectKeyfold(fn: () => unknown, code?: KeyfoldErrorCode): Promise<KeyfoldError> {
  const err = await caught(fn);
  if (!(err instanceof KeyfoldError)) {
    throw new Error(`expected a KeyfoldError${code ? ` (${code})` : ''}, got ${String(err)}`, { cause: err });
  }
  if (code !== undefined && err.code !== code) {
    throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`, { cause: err });
  }
  return err;
}

/** Pipes `chunks` through `transform` and returns everything it produced; rejects with the stream's error. */
export async function runTransform(transform: Transform, chunks: readonly Uint8Array[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))),
    transform,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

/**
 * Writes `chunks` one by one into `transform` (each write waits for its callback) and records every `data` chunk
 * emitted, until the stream ends or fails. Never rejects: returns the emitted chunks and the error, if any.
 */
export function feed(transform: Transform, chunks: readonly Uint8Array[]): Promise<{ emitted: Buffer[]; error: unknown }> {
  const emitted: Buffer[] = [];
  transform.on('data', (c: Buffer) => emitted.push(c));
  return new Promise((resolve) => {
    transform.once('error', (error) => resolve({ emitted, error }));
    transform.once('end', () => resolve({ emitted, error: undefined }));
    const writeAll = async (): Promise<void> => {
      for (const c of chunks) {
        if (transform.destroyed) return;
        await new Promise<void>((res) => transform.write(Buffer.from(c), () => res()));
      }
      if (!transform.destroyed) transform.end();
    };
    void writeAll();
  });
}

/** Seals `data` as a stream, split into `chunks` sized pieces (round robin over the sizes given). */
export async function sealStreamed(env: Envelope, data: Uint8Array, sizes: readonly number[] = [data.length || 1], context?: EncryptionContext): Promise<Buffer> {
  return runTransform(env.sealStream(context), split(data, sizes));
}

/** Splits `data` into pieces of the given sizes (cycled); an empty input gives no pieces. */
export function split(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length] ?? 1);
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

/** The frames of a framed envelope: header bytes and each frame's bytes (u32 word || ct || tag). */
export function splitFrames(envelope: Uint8Array, headerLength: number): { header: Uint8Array; frames: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  let off = headerLength;
  while (off < envelope.length) {
    const word = new DataView(envelope.buffer, envelope.byteOffset + off, 4).getUint32(0);
    const len = word & 0x7fff_ffff;
    const end = off + 4 + len + 16;
    frames.push(envelope.subarray(off, end));
    off = end;
  }
  return { header: envelope.subarray(0, headerLength), frames };
}

/** Deterministic pseudo-random bytes (xorshift32), for reproducible payloads. */
export function pseudoRandomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p))));
}
