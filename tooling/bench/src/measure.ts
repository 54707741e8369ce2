/**
 * Timing primitives. Absolute numbers on shared machines drift by tens of percent from one minute to the next, so
 * every comparison is measured in one process, with the contenders interleaved round by round, and reported as a
 * ratio of medians.
 * @module
 */
import { performance } from 'node:perf_hooks';

/** One operation under test. It may return a promise, which is awaited; a synchronous result is not wrapped. */
export type Op = () => unknown;

export interface Case {
  readonly id: string;
  readonly op: Op;
}

/** What one fixed-time loop measured. */
export interface Slice {
  readonly iterations: number;
  readonly elapsedMs: number;
  /** Process CPU time (user + system, all threads) spent during the slice, ms. */
  readonly cpuMs?: number;
}

/** The result of one case across all rounds. */
export interface RateResult {
  /** Median of the per-round rates, operations per second. */
  readonly opsPerSec: number;
  /** Per-round rates, in round order. */
  readonly rounds: readonly number[];
  /** Total iterations timed (warm-up excluded). */
  readonly iterations: number;
  /** Total time timed, ms (warm-up excluded). */
  readonly elapsedMs: number;
  /** (max - min) / median of the per-round rates: how noisy this case was. */
  readonly spread: number;
  /**
   * Median of the per-round rates per CPU-second of this process. Other processes on a shared machine slow the
   * wall clock but barely this, so it is the cross-check when the machine is busy. `null` if not measured.
   */
  readonly opsPerCpuSec: number | null;
  /** Per-round rates per CPU-second, in round order (`null` if not measured). */
  readonly cpuRounds: readonly number[] | null;
}

export interface InterleaveOptions {
  /** Untimed warm-up per case before the first round, ms. */
  readonly warmupMs: number;
  /** Time per case per round, ms. Each slice runs at least one iteration. */
  readonly sliceMs: number;
  /** Number of rounds; the case order is rotated each round so no case always runs first. */
  readonly rounds: number;
  /** Minimum warm-up iterations per case (slow cases, e.g. 1 MiB through the ESDK, need a few). Default 3. */
  readonly warmupIterations?: number;
  /** Called before every warm-up and slice, untimed (e.g. a full GC so one case's garbage is not another's cost). */
  readonly beforeSlice?: () => void;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Runs `op` repeatedly until at least `ms` have passed and at least `minIterations` (default 1) ran. */
export async function runFor(op: Op, ms: number, minIterations = 1): Promise<Slice> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let iterations = 0;
  let now = start;
  do {
    const r = op();
    if (isPromiseLike(r)) await r;
    iterations++;
    now = performance.now();
  } while (now - start < ms || iterations < minIterations);
  const cpu = process.cpuUsage(cpu0);
  return { iterations, elapsedMs: now - start, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Median of a non-empty list (mean of the two middle values for even lengths). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median: values must not be empty');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `a / b`, or `null` when either side is missing or `b` is not a positive finite number. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

/**
 * The median over rounds of `a`'s rate divided by `b`'s rate in the same round. Both ran within one round, seconds
 * apart, so a burst of load from other processes mostly cancels out; this is steadier than a ratio of medians.
 * `null` when either side is missing or the round counts differ.
 */
export function pairedRatio(
  a: RateResult | undefined,
  b: RateResult | undefined,
  basis: 'wall' | 'cpu' = 'wall',
): number | null {
  const ra = basis === 'wall' ? a?.rounds : a?.cpuRounds;
  const rb = basis === 'wall' ? b?.rounds : b?.cpuRounds;
  if (!ra || !rb || ra.length === 0 || ra.length !== rb.length) return null;
  const per = ra.map((x, i) => ratio(x, rb[i]));
  if (per.some((r) => r === null)) return null;
  return median(per as number[]);
}

/** Summarises per-round slices into a `RateResult`. */
export function summarise(slices: readonly Slice[]): RateResult {
  if (slices.length === 0) throw new RangeError('summarise: slices must not be empty');
  const rounds = slices.map((s) => (s.iterations * 1000) / Math.max(s.elapsedMs, 1e-6));
  const med = median(rounds);
  const cpuRounds = slices.every((s) => s.cpuMs !== undefined && s.cpuMs > 0)
    ? slices.map((s) => (s.iterations * 1000) / s.cpuMs!)
    : undefined;
  return {
    opsPerSec: med,
    rounds,
    iterations: slices.reduce((n, s) => n + s.iterations, 0),
    elapsedMs: slices.reduce((n, s) => n + s.elapsedMs, 0),
    spread: med > 0 ? (Math.max(...rounds) - Math.min(...rounds)) / med : 0,
    opsPerCpuSec: cpuRounds ? median(cpuRounds) : null,
    cpuRounds: cpuRounds ?? null,
  };
}

/**
 * Measures every case side by side: a warm-up per case, then `rounds` rounds in which each case runs for
 * `sliceMs`, the order rotated each round. Returns one `RateResult` per case id.
 */
export async function interleave(cases: readonly Case[], opts: InterleaveOptions): Promise<Map<string, RateResult>> {
  if (opts.rounds < 1) throw new RangeError('interleave: rounds must be >= 1');
  for (const c of cases) {
    opts.beforeSlice?.();
    await runFor(c.op, opts.warmupMs, opts.warmupIterations ?? 3);
  }
  const slices = new Map<string, Slice[]>(cases.map((c) => [c.id, []]));
  for (let r = 0; r < opts.rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + r) % cases.length]!;
      opts.beforeSlice?.();
      slices.get(c.id)!.push(await runFor(c.op, opts.sliceMs));
    }
  }
  return new Map([...slices].map(([id, s]) => [id, summarise(s)]));
}

/**
 * A full-GC function: `globalThis.gc` when node runs with --expose-gc, else one obtained by enabling the flag at run
 * time (V8 exposes `gc` to contexts created after the flag is set). `undefined` if neither works.
 */
export async function getGc(): Promise<(() => void) | undefined> {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  try {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
