/**
 * `--compare BASE.json`: the ratios of two saved runs side by side (base, this run, this / base), so a change's
 * effect shows in one table. Only ratios are compared (each measured side by side within its own run); absolute
 * rates of two runs on a shared machine are not comparable and are left out on purpose.
 * @module
 */
import { readFileSync } from 'node:fs';
import { fmtBytes, fmtRatio, renderTable, type BenchReport, type Table, type TargetResult } from './report.js';
import type { RoundtripData } from './sections/roundtrip.js';
import type { StreamingData } from './sections/streaming.js';

/**
 * Reads a JSON report written by `--json` (or the default `results/latest.json`).
 * @throws Error naming the file when it is not a keyfold-bench/1 report.
 */
export function loadReport(path: string): BenchReport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`--compare: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if ((parsed as { schema?: unknown } | null)?.schema !== 'keyfold-bench/1') {
    throw new Error(`--compare: ${path} is not a keyfold-bench/1 JSON report`);
  }
  return parsed as BenchReport;
}

/** `new / base` as a ratio, or `n/a` when either side is missing. */
function change(base: number | null | undefined, now: number | null | undefined): string {
  if (base == null || now == null || !Number.isFinite(base) || !Number.isFinite(now) || base === 0) return 'n/a';
  return fmtRatio(now / base);
}

function sectionData<T>(r: BenchReport, id: string): T | undefined {
  return r.sections.find((s) => s.id === id)?.data as T | undefined;
}

/** One row per (ratio label, size) of the round-trip section present in either run, wall clock and per CPU-second. */
function roundtripTable(base: BenchReport, now: BenchReport): Table | undefined {
  const b = sectionData<RoundtripData>(base, 'roundtrip');
  const n = sectionData<RoundtripData>(now, 'roundtrip');
  if (!b && !n) return undefined;
  const sizes = [...new Set([...(b?.sizes ?? []), ...(n?.sizes ?? [])])].sort((x, y) => x - y);
  const labels = [...new Set([...Object.keys(b?.ratios[String(sizes[0])] ?? {}), ...Object.keys(n?.ratios[String(sizes[0])] ?? {})])];
  for (const s of sizes) for (const l of [...Object.keys(b?.ratios[String(s)] ?? {}), ...Object.keys(n?.ratios[String(s)] ?? {})]) if (!labels.includes(l)) labels.push(l);
  const rows: string[][] = [];
  for (const label of labels) {
    for (const s of sizes) {
      const key = String(s);
      const bw = b?.ratios[key]?.[label] ?? null;
      const nw = n?.ratios[key]?.[label] ?? null;
      const bc = b?.cpuRatios[key]?.[label] ?? null;
      const nc = n?.cpuRatios[key]?.[label] ?? null;
      if (bw === null && nw === null && bc === null && nc === null) continue;
      rows.push([label, fmtBytes(s), fmtRatio(bw), fmtRatio(nw), change(bw, nw), fmtRatio(bc), fmtRatio(nc), change(bc, nc)]);
    }
  }
  return {
    title: 'Round-trip ratios: base vs this run (wall clock, then per CPU-second; "change" = this / base)',
    columns: ['ratio', 'size', 'base', 'this', 'change', 'base CPU', 'this CPU', 'change CPU'],
    rows,
  };
}

function streamingTable(base: BenchReport, now: BenchReport): Table | undefined {
  const b = sectionData<StreamingData>(base, 'streaming');
  const n = sectionData<StreamingData>(now, 'streaming');
  if (!b && !n) return undefined;
  const row = (label: string, pick: (d: StreamingData['ratios']) => number | null): string[] => {
    const bw = b ? pick(b.ratios) : null;
    const nw = n ? pick(n.ratios) : null;
    const bc = b ? pick(b.cpuRatios) : null;
    const nc = n ? pick(n.cpuRatios) : null;
    return [label, fmtRatio(bw), fmtRatio(nw), change(bw, nw), fmtRatio(bc), fmtRatio(nc), change(bc, nc)];
  };
  return {
    title: 'Streaming ratios: base vs this run',
    columns: ['ratio', 'base', 'this', 'change', 'base CPU', 'this CPU', 'change CPU'],
    rows: [row('Keyfold / raw node:crypto pipeline', (d) => d.keyfoldVsRaw), row('Keyfold / best ESDK', (d) => d.keyfoldVsBestEsdk)],
  };
}

function fmtTarget(t: TargetResult | undefined): string {
  if (!t) return 'not run';
  if (t.actual === null) return 'n/a';
  return `${t.unit === 'x' ? fmtRatio(t.actual) : `${Math.round(t.actual * 10) / 10} ${t.unit}`} ${t.status}`;
}

/** Every target of either run: base actual + status, this run's, and the change. */
function targetTable(base: BenchReport, now: BenchReport): Table | undefined {
  const ids = [...new Set([...base.targets.map((t) => t.id), ...now.targets.map((t) => t.id)])];
  if (ids.length === 0) return undefined;
  return {
    title: 'Targets: base vs this run',
    columns: ['target', 'base', 'this', 'change'],
    rows: ids.map((id) => {
      const b = base.targets.find((t) => t.id === id);
      const n = now.targets.find((t) => t.id === id);
      return [(n ?? b)!.description, fmtTarget(b), fmtTarget(n), change(b?.actual, n?.actual)];
    }),
  };
}

/** The comparison tables of two runs (only sections that either run has). */
export function compareTables(base: BenchReport, now: BenchReport): Table[] {
  return [roundtripTable(base, now), streamingTable(base, now), targetTable(base, now)].filter((t): t is Table => t !== undefined);
}

/** The printed comparison: which runs, their load, then the tables. */
export function renderComparison(base: BenchReport, now: BenchReport, basePath: string, nowPath: string): string {
  const who = (label: string, r: BenchReport, path: string): string =>
    `${label}: ${path} (${r.mode} run of ${r.startedAt}, load average at start ${r.machine.loadAvg.join(' / ')})`;
  const head = ['== Comparison ==', who('base', base, basePath), who('this', now, nowPath)];
  return `${[...head, ...compareTables(base, now).map((t) => `\n${renderTable(t)}`)].join('\n')}\n`;
}
