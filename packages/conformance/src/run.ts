/**
 * Registers the conformance checks with a test framework. Framework-agnostic: the caller passes its own
 * `describe` and `it` (vitest, jest, mocha, node:test all fit), and each check is one test named after its rule.
 * @module
 */
import { providerChecks, type ProviderCheck, type ProviderCheckName } from './provider-checks.js';
import type { ConformanceTarget } from './target.js';

/**
 * A test registration function: `it(name, fn, timeoutMs)`.
 * @example
 * ```ts
 * import { test } from 'node:test';
 * const it: TestFunction = (name, fn, timeout) => test(name, { timeout }, fn);
 * ```
 */
export type TestFunction = (name: string, fn: () => Promise<void>, timeoutMs?: number) => unknown;

/**
 * `it` of the host framework.
 * @example
 * ```ts
 * import { it } from 'vitest';
 * const registerTest: ItFunction = it;
 * ```
 */
export type ItFunction = TestFunction;

/**
 * `describe` of the host framework.
 * @example
 * ```ts
 * import { describe } from 'vitest';
 * const group: DescribeFunction = describe;
 * ```
 */
export type DescribeFunction = (name: string, fn: () => void) => unknown;

/**
 * Options of {@link runProviderConformance}.
 * @example
 * ```ts
 * const options: ProviderConformanceOptions = { name: 'memory', makeProvider, describe, it, timeoutMs: 60_000 };
 * ```
 */
export interface ProviderConformanceOptions extends ConformanceTarget {
  /** Shown in the suite title: `KeyProvider conformance: <name>`. */
  readonly name: string;
  readonly describe: DescribeFunction;
  readonly it: ItFunction;
  /**
   * Not used: the checks carry their own framework-neutral assertions. Accepted so that the common
   * `{ describe, it, expect }` wiring type-checks.
   */
  readonly expect?: unknown;
  /** Timeout per check in ms, passed as the third argument of `it`. Default: the framework's. */
  readonly timeoutMs?: number;
}

function assertFunction(value: unknown, name: string): void {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function; got ${value === null ? 'null' : typeof value}`);
}

/**
 * Checks that apply to `target`: those without a `requires`, and those whose hook the target has.
 * @throws nothing: a pure filter over {@link providerChecks}.
 * @example
 * ```ts
 * applicableChecks({ makeProvider }).map((c) => c.name); // every check but 'backend errors'
 * ```
 */
export function applicableChecks(target: ConformanceTarget): ProviderCheck[] {
  return providerChecks.filter((c) => c.requires === undefined || target[c.requires] !== undefined);
}

/**
 * Registers the KeyProvider conformance suite: one `describe` block with one test per applicable check
 * (see `providerChecks`; `backend errors` needs `makeFailingProvider`).
 *
 * There is no way to skip a check: a provider that cannot pass one is not conformant (a check that does not apply
 * is one whose `requires` hook the target does not give). Options from older versions that skipped checks are refused.
 *
 * @returns the names of the checks registered.
 * @throws TypeError when `name`, `makeProvider`, `describe` or `it` is missing, a hook is not a function, or
 *   `skip` is given.
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { runProviderConformance } from '@keyfold/conformance';
 * import { createMemoryProvider, type MemoryProvider } from '@keyfold/provider-local';
 *
 * runProviderConformance({
 *   name: 'memory',
 *   makeProvider: () => createMemoryProvider({ securityMode: 'development' }),
 *   rotate: async (p) => { await (p as MemoryProvider).rotate(); return p; },
 *   describe,
 *   it,
 * });
 * ```
 */
export function runProviderConformance(options: ProviderConformanceOptions): ProviderCheckName[] {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.name !== 'string' || options.name.length === 0) throw new TypeError('name must be a non-empty string');
  assertFunction(options.makeProvider, 'makeProvider');
  assertFunction(options.describe, 'describe');
  assertFunction(options.it, 'it');
  if (options.rotate !== undefined) assertFunction(options.rotate, 'rotate');
  if (options.makeFailingProvider !== undefined) assertFunction(options.makeFailingProvider, 'makeFailingProvider');
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new RangeError(`timeoutMs must be a positive number; got ${options.timeoutMs}`);
  }
  if ((options as { skip?: unknown }).skip !== undefined) {
    throw new TypeError('runProviderConformance has no skip option: every applicable check runs (a skipped check proves nothing)');
  }
  const target: ConformanceTarget = {
    makeProvider: options.makeProvider,
    ...(options.rotate ? { rotate: options.rotate } : {}),
    ...(options.makeFailingProvider ? { makeFailingProvider: options.makeFailingProvider } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
  };
  const it = options.it;
  const registered: ProviderCheckName[] = [];
  options.describe(`KeyProvider conformance: ${options.name}`, () => {
    for (const check of applicableChecks(target)) {
      it(`${check.name}: ${check.rule}`, () => check.run(target), options.timeoutMs);
      registered.push(check.name);
    }
  });
  return registered;
}

/**
 * Runs one conformance check by name, outside any test framework (for a script, or a test asserting that a
 * broken provider fails a specific check).
 * @throws ConformanceError when the provider breaks the rule; TypeError for an unknown check name or a check whose
 *   required hook the target lacks.
 * @example
 * ```ts
 * await runProviderCheck('context binding', { makeProvider: () => createMemoryProvider({ securityMode: 'development' }) });
 * ```
 */
export async function runProviderCheck(name: ProviderCheckName, target: ConformanceTarget): Promise<void> {
  const check = providerChecks.find((c) => c.name === name);
  if (!check) throw new TypeError(`unknown conformance check "${String(name)}"`);
  assertFunction(target?.makeProvider, 'makeProvider');
  if (check.requires !== undefined && target[check.requires] === undefined) {
    throw new TypeError(`the "${name}" check needs the ${check.requires} hook`);
  }
  await check.run(target);
}
