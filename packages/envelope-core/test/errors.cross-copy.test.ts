/**
 * Errors from another copy of the core: an application that loads the ESM build through one dependency and the CJS
 * build through another (or two installed versions) must still recognise every Keyfold error, with `isKeyfoldError`
 * and with `instanceof` on the exported classes. Runs against the BUILT outputs (`dist/`), loaded side by side in
 * this one process, plus a copy of the package in a temporary directory that stands for "another version".
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as source from '../src/index.js';

type Core = typeof source;

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

/** The error classes every copy exports, by name. */
const CLASS_NAMES = [
  'KeyfoldError',
  'DecryptFailedError',
  'UnwrapFailedError',
  'ContextMismatchError',
  'FormatError',
  'UnsupportedFormatError',
  'LimitExceededError',
  'ProviderError',
  'TimeoutError',
  'CircuitOpenError',
  'ConfigError',
  'PolicyError',
] as const;

type ClassName = (typeof CLASS_NAMES)[number];

/** Makes one instance of the named class with the given copy of the core. */
function make(core: Core, name: ClassName): Error {
  switch (name) {
    case 'KeyfoldError':
      return new core.KeyfoldError('INTERNAL', 'x');
    case 'DecryptFailedError':
      return new core.DecryptFailedError();
    case 'UnwrapFailedError':
      return new core.UnwrapFailedError();
    case 'ProviderError':
      return new core.ProviderError('THROTTLED', 'slow down');
    case 'PolicyError':
      return new core.PolicyError('POLICY_VIOLATION', 'no');
    default:
      return new core[name]('message');
  }
}

/** Class names an instance of `name` is an instance of (itself, its parents). */
function ancestry(name: ClassName): ClassName[] {
  if (name === 'KeyfoldError') return ['KeyfoldError'];
  return [name, 'KeyfoldError'];
}

let tempDir: string;
const copies: Record<string, Core> = {};

beforeAll(async () => {
  for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/errors.js', 'dist/errors.cjs']) {
    if (!existsSync(join(packageDir, f))) throw new Error(`${f} missing: build @keyfold/envelope-core before this test`);
  }
  copies.source = source;
  copies.esm = (await import(pathToFileURL(join(packageDir, 'dist/index.js')).href)) as Core;
  copies.cjs = require(join(packageDir, 'dist/index.cjs')) as Core;
  // "Another version": the package copied to node_modules of an unrelated project, with another version number.
  tempDir = mkdtempSync(join(tmpdir(), 'keyfold-core-copy-'));
  const other = join(tempDir, 'node_modules/@keyfold/envelope-core');
  cpSync(join(packageDir, 'dist'), join(other, 'dist'), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };
  manifest.version = '0.0.1-other';
  writeFileSync(join(other, 'package.json'), JSON.stringify(manifest));
  const otherRequire = createRequire(join(tempDir, 'index.cjs'));
  copies.otherCjs = otherRequire('@keyfold/envelope-core') as Core;
  copies.otherEsm = (await import(pathToFileURL(join(other, 'dist/index.js')).href)) as Core;
});

afterAll(() => {
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

describe('errors from another copy of @keyfold/envelope-core', () => {
  it('really are separate copies (distinct classes)', () => {
    const classes = new Set(Object.values(copies).map((c) => c.KeyfoldError));
    expect(classes.size).toBe(Object.keys(copies).length);
    // The plain prototype check says no across copies: that is what the brand is for.
    const ordinary = Function.prototype[Symbol.hasInstance];
    expect(ordinary.call(copies.esm!.KeyfoldError, new copies.cjs!.DecryptFailedError())).toBe(false);
  });

  it('isKeyfoldError of every copy recognises errors of every copy, with and without a code', () => {
    for (const [thrower, a] of Object.entries(copies)) {
      for (const [catcher, b] of Object.entries(copies)) {
        const err = new a.ProviderError('THROTTLED', 'slow down');
        expect(b.isKeyfoldError(err), `${thrower} -> ${catcher}`).toBe(true);
        expect(b.isKeyfoldError(err, 'THROTTLED'), `${thrower} -> ${catcher}`).toBe(true);
        expect(b.isKeyfoldError(err, 'UNAVAILABLE'), `${thrower} -> ${catcher}`).toBe(false);
        expect(b.isKeyfoldError(new a.DecryptFailedError(), 'DECRYPT_FAILED'), `${thrower} -> ${catcher}`).toBe(true);
      }
    }
  });

  it('instanceof every exported class holds exactly for the class and its parents, across copies', () => {
    for (const [thrower, a] of Object.entries(copies)) {
      for (const [catcher, b] of Object.entries(copies)) {
        for (const made of CLASS_NAMES) {
          const err = make(a, made);
          const parents = ancestry(made);
          for (const cls of CLASS_NAMES) {
            expect(err instanceof b[cls], `${thrower} ${made} instanceof ${catcher} ${cls}`).toBe(parents.includes(cls));
          }
          expect(err instanceof Error).toBe(true);
        }
      }
    }
  });

  it('the subclass members work on a foreign error (code, retryable, circuitOpen)', () => {
    const err: unknown = new copies.cjs!.CircuitOpenError('open');
    const { CircuitOpenError } = copies.esm!;
    expect(err instanceof CircuitOpenError).toBe(true);
    if (!(err instanceof CircuitOpenError)) return;
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(false);
    expect(err.circuitOpen).toBe(true);
  });

  it('the ./errors subpath of one build and the root of another agree', async () => {
    const errorsEsm = (await import(pathToFileURL(join(packageDir, 'dist/errors.js')).href)) as Core;
    const errorsCjs = require(join(packageDir, 'dist/errors.cjs')) as Core;
    expect(errorsEsm.isKeyfoldError(new copies.otherCjs!.UnwrapFailedError(), 'UNWRAP_FAILED')).toBe(true);
    expect(new errorsCjs.FormatError('bad') instanceof copies.otherEsm!.FormatError).toBe(true);
  });

  it('does not recognise look-alikes: plain errors, objects with a code, a user subclass by name only', () => {
    const lookAlikes: unknown[] = [
      new Error('x'),
      Object.assign(new Error('x'), { code: 'THROTTLED', name: 'KeyfoldError' }),
      { code: 'DECRYPT_FAILED', name: 'DecryptFailedError', message: 'decryption failed' },
      null,
      undefined,
      'KeyfoldError',
      new Proxy({}, { getPrototypeOf: () => { throw new Error('trap'); } }),
    ];
    for (const core of Object.values(copies)) {
      for (const value of lookAlikes) {
        expect(core.isKeyfoldError(value)).toBe(false);
        expect(value instanceof core.KeyfoldError).toBe(false);
        expect(value instanceof core.DecryptFailedError).toBe(false);
      }
    }
    // A caller's own subclass has no brand of its own: only its own instances match it, in any copy.
    class AppError extends copies.esm!.KeyfoldError {}
    expect(new copies.cjs!.KeyfoldError('INTERNAL', 'x') instanceof AppError).toBe(false);
    expect(new AppError('INTERNAL', 'x') instanceof AppError).toBe(true);
    expect(copies.cjs!.isKeyfoldError(new AppError('INTERNAL', 'x'))).toBe(true);
  });
});
