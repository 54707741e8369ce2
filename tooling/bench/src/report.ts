/**
 * Results, targets, the printed table and the JSON file.
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type Comparator = '>=' | '<=' | '<';
export type TargetStatus = 'PASS' | 'MISS' | 'N/A';

/** A target from the issue: `actual <comparator> threshold`. */
export interface TargetSpec {
  readonly id: string;
  readonly description: string;
  readonly comparator: Comparator;
  readonly threshold: number;
  /** How to print actual and threshold: `x` (ratio), `B`, `MiB`. */
  readonly unit: 'x' | 'B' | 'MiB';
}

export interface TargetResult extends TargetSpec {
  /** `null` when the measurement could not be made (e.g. a contender is not built). */
  readonly actual: number | null;
  readonly status: TargetStatus;
  readonly note?: string;
}

/** A printable table; `rows` are already formatted strings. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export type SectionId = 'roundtrip' | 'streaming' | 'overhead' | 'provider-calls' | 'cli-start' | 'kms-providers' | 'gcp-azure' | 'pkcs11' | 'rotation';
export const SECTION_IDS: readonly SectionId[] = ['roundtrip', 'streaming', 'overhead', 'provider-calls', 'cli-start', 'kms-providers', 'gcp-azure', 'pkcs11', 'rotation'];

export interface SectionResult {
  readonly id: SectionId;
  readonly title: string;
  /** How the section was measured (budgets, scaling, anything --quick changed). */
  readonly notes: readonly string[];
  readonly tables: readonly Table[];
  readonly targets: readonly TargetResult[];
  /** Section-specific raw numbers (unformatted) for the JSON file. */
  readonly data: unknown;
}

export interface MachineInfo {
  readonly cpuModel: string;
  readonly nproc: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly totalMemGiB: number;
  /** 1/5/15-minute load averages when the run started (other work on a shared machine). */
  readonly loadAvg: readonly number[];
}

export interface BenchReport {
  readonly schema: 'keyfold-bench/1';
  readonly mode: 'quick' | 'full';
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineInfo;
  readonly sections: readonly SectionResult[];
  /** Every target of every section that ran, in section order. */
  readonly targets: readonly TargetResult[];
}

/** Compares `actual` against the spec. Missing measurements are `N/A`, never PASS. */
export function evaluateTarget(spec: TargetSpec, actual: number | null, note?: string): TargetResult {
  let status: TargetStatus;
  if (actual === null || !Number.isFinite(actual)) status = 'N/A';
  else if (spec.comparator === '>=') status = actual >= spec.threshold ? 'PASS' : 'MISS';
  else if (spec.comparator === '<=') status = actual <= spec.threshold ? 'PASS' : 'MISS';
  else status = actual < spec.threshold ? 'PASS' : 'MISS';
  return { ...spec, actual: actual !== null && Number.isFinite(actual) ? actual : null, status, ...(note ? { note } : {}) };
}

// ---------------------------------------------------------------------------------------------------- formatting

/** Three significant digits, no exponent. */
export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 100) return Math.round(n).toLocaleString('en-US');
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(3);
}

/** Operations per second, e.g. `12,345/s`. */
export function fmtRate(opsPerSec: number): string {
  return `${fmtNum(opsPerSec)}/s`;
}

/** A ratio, e.g. `0.62x`; `n/a` when missing. */
export function fmtRatio(r: number | null): string {
  return r === null ? 'n/a' : `${r >= 100 ? Math.round(r) : r.toFixed(2)}x`;
}

/** Byte counts in binary units: `64 B`, `1 KiB`, `1.50 MiB`. */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[u]}`;
}

export function fmtMs(ms: number): string {
  return `${ms >= 100 ? Math.round(ms) : ms.toFixed(1)} ms`;
}

function fmtTargetValue(v: number | null, unit: TargetSpec['unit']): string {
  if (v === null) return 'n/a';
  if (unit === 'x') return fmtRatio(v);
  if (unit === 'MiB') return `${v.toFixed(1)} MiB`;
  return `${Math.round(v)} B`;
}

/** Renders a table with a title line, a header, a rule, and right-aligned cells except the first column. */
export function renderTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [t.title, line(t.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

export function targetsTable(targets: readonly TargetResult[]): Table {
  return {
    title: 'Targets',
    columns: ['target', 'actual', 'wanted', 'status'],
    rows: targets.map((t) => [
      t.description,
      fmtTargetValue(t.actual, t.unit),
      `${t.comparator} ${fmtTargetValue(t.threshold, t.unit)}`,
      t.status + (t.note ? ` (${t.note})` : ''),
    ]),
  };
}

export function renderSection(s: SectionResult): string {
  const parts = [`== ${s.title} ==`];
  for (const n of s.notes) parts.push(`  * ${n}`);
  for (const t of s.tables) parts.push('', renderTable(t));
  return parts.join('\n');
}

export function renderReport(r: BenchReport): string {
  const m = r.machine;
  const head = [
    `Keyfold bench (${r.mode}${r.mode === 'quick' ? ': short time budgets, smaller streams; figures are indicative only' : ''})`,
    `machine: ${m.cpuModel}, ${m.nproc} CPUs, ${m.totalMemGiB} GiB, node ${m.node} (${m.platform}/${m.arch}); ` +
      `load average at start ${m.loadAvg.join(' / ')}`,
  ].join('\n');
  const body = r.sections.map(renderSection).join('\n\n');
  const summary = r.targets.length > 0 ? `\n\n${renderTable(targetsTable(r.targets))}` : '';
  return `${head}\n\n${body}${summary}\n\ntotal time ${(r.durationMs / 1000).toFixed(1)} s\n`;
}

// ---------------------------------------------------------------------------------------------------- machine, JSON

function cpuModelFromProc(): string | undefined {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(info);
    return m?.[1]?.trim();
  } catch {
    return undefined;
  }
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: cpuModelFromProc() ?? list[0]?.model.trim() ?? 'unknown',
    nproc: list.length,
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    totalMemGiB: Math.round(totalmem() / 2 ** 30),
    loadAvg: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function buildReport(
  mode: BenchReport['mode'],
  startedAt: Date,
  sections: readonly SectionResult[],
  machine: MachineInfo = machineInfo(),
): BenchReport {
  return {
    schema: 'keyfold-bench/1',
    mode,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    machine,
    sections,
    targets: sections.flatMap((s) => s.targets),
  };
}

export async function writeJson(path: string, report: BenchReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
