/**
 * The provider's call counters for one run of a command (a TDE engine's `key-stats`, provider side): the shared
 * resilience counters the core keeps per provider (calls, attempts, retries, failures, timeouts, calls the circuit
 * breaker refused, and the breaker's state). Numbers only: nothing about keys or data.
 * @module
 */
import type { KeyProvider, ResilienceStats } from '@keyfold/envelope-core';

/** What `keyfold status` reports as `provider.calls`. */
export type ProviderCallCounters = Readonly<ResilienceStats>;

/**
 * A snapshot of `provider`'s counters, or `null` for a provider that keeps none (the local env / file providers run
 * without retries or a breaker, see `BaseProviderOptions.resilience`).
 * @throws never
 * @example
 * ```ts
 * const calls = providerCallCounters(provider); // { calls: 1, attempts: 3, retries: 2, ... } or null
 * ```
 */
export function providerCallCounters(provider: KeyProvider): ProviderCallCounters | null {
  const stats = (provider as { resilienceStats?: unknown }).resilienceStats;
  if (typeof stats !== 'function') return null;
  const s = (stats as () => ResilienceStats | undefined).call(provider);
  return s === undefined ? null : { ...s };
}

/**
 * One line for the text output: `1 call, 3 attempts (2 retries), 0 failed, 0 timed out, 0 refused by the breaker;
 * circuit closed`, or what `null` means.
 * @throws never
 * @example
 * ```ts
 * rows.push(['provider calls', formatProviderCalls(providerCallCounters(provider))]);
 * ```
 */
export function formatProviderCalls(c: ProviderCallCounters | null): string {
  if (c === null) return 'not counted (local provider: no retries, no circuit breaker)';
  const n = (count: number, one: string, many: string): string => `${count} ${count === 1 ? one : many}`;
  return (
    `${n(c.calls, 'call', 'calls')}, ${n(c.attempts, 'attempt', 'attempts')} (${n(c.retries, 'retry', 'retries')}), ` +
    `${c.failures} failed, ${c.timeouts} timed out, ${c.rejectedByBreaker} refused by the breaker; circuit ${c.circuit}`
  );
}
