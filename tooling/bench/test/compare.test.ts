import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareTables, loadReport, renderComparison } from '../src/compare.js';
import { buildReport, evaluateTarget, type BenchReport, type SectionResult } from '../src/report.js';

const machine = { cpuModel: 'test', nproc: 2, node: 'v20', v8: '11', platform: 'linux', arch: 'x64', totalMemGiB: 8, loadAvg: [1.5, 2, 3] };

/** A report with only the fields the comparison reads; the numbers are made up (no timing is involved). */
function report(ratios: Record<string, Record<string, number | null>>, stream: number | null, target: number | null): BenchReport {
  const sizes = Object.keys(ratios).map(Number);
  const cpuRatios = Object.fromEntries(Object.entries(ratios).map(([s, r]) => [s, Object.fromEntries(Object.entries(r).map(([l, v]) => [l, v === null ? null : v / 2]))]));
  const spec = { id: 'roundtrip.1k.cache.vs-raw', description: '1 KiB round trips, cache, vs raw node:crypto', comparator: '>=', threshold: 0.7, unit: 'x' } as const;
  const sections: SectionResult[] = [
    { id: 'roundtrip', title: 'rt', notes: [], tables: [], targets: [evaluateTarget(spec, target)], data: { sizes, budget: {}, contenders: [], results: {}, ratios, cpuRatios } },
    {
      id: 'streaming',
      title: 'st',
      notes: [],
      tables: [],
      targets: [],
      data: { bytes: 1, passes: 1, isolated: true, results: {}, ratios: { keyfoldVsRaw: stream, keyfoldVsBestEsdk: 1.5, bestEsdk: 'e' }, cpuRatios: { keyfoldVsRaw: stream, keyfoldVsBestEsdk: 1.5, bestEsdk: 'e' } },
    },
  ];
  return buildReport('quick', new Date('2026-12-07T15:00:00Z'), sections, machine);
}

const base = report({ '64': { 'Keyfold cache / raw': 0.3 }, '1024': { 'Keyfold cache / raw': 0.35 } }, 1.0, 0.35);
const now = report(
  {
    '64': { 'Keyfold cache / raw': 0.6, 'Keyfold cache / raw pooled IV (info)': 0.5 },
    '1024': { 'Keyfold cache / raw': 0.7, 'Keyfold cache / raw pooled IV (info)': null },
  },
  1.1,
  0.7,
);

describe('--compare tables', () => {
  it('round trips: one row per ratio label and size, base / this / change for wall clock and CPU', () => {
    const [rt] = compareTables(base, now);
    expect(rt!.columns).toEqual(['ratio', 'size', 'base', 'this', 'change', 'base CPU', 'this CPU', 'change CPU']);
    expect(rt!.rows.map((r) => [r[0], r[1]])).toEqual([
      ['Keyfold cache / raw', '64 B'],
      ['Keyfold cache / raw', '1 KiB'],
      ['Keyfold cache / raw pooled IV (info)', '64 B'],
    ]);
    expect(rt!.rows[0]).toEqual(['Keyfold cache / raw', '64 B', '0.30x', '0.60x', '2.00x', '0.15x', '0.30x', '2.00x']);
    // A ratio only the new run has: the base side and the change say n/a.
    expect(rt!.rows[2]!.slice(2)).toEqual(['n/a', '0.50x', 'n/a', 'n/a', '0.25x', 'n/a']);
  });

  it('streaming ratios and targets side by side', () => {
    const [, st, tg] = compareTables(base, now);
    expect(st!.rows.map((r) => r[0])).toEqual(['Keyfold / raw node:crypto pipeline', 'Keyfold / best ESDK']);
    expect(st!.rows[0]!.slice(1, 4)).toEqual(['1.00x', '1.10x', '1.10x']);
    expect(tg!.rows).toEqual([['1 KiB round trips, cache, vs raw node:crypto', '0.35x MISS', '0.70x PASS', '2.00x']]);
  });

  it('a section missing from both runs gives no table; the header names both files and their load', () => {
    const bare = buildReport('quick', new Date(), [], machine);
    expect(compareTables(bare, bare)).toEqual([]);
    const text = renderComparison(base, now, 'a.json', 'b.json');
    expect(text).toContain('base: a.json (quick run of 2026-12-07T15:00:00.000Z, load average at start 1.5 / 2 / 3)');
    expect(text).toContain('this: b.json');
  });

  it('loadReport refuses a file that is not a bench report, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-compare-'));
    try {
      const bad = join(dir, 'bad.json');
      await writeFile(bad, '{"schema":"other"}');
      expect(() => loadReport(bad)).toThrow(/bad\.json is not a keyfold-bench\/1 JSON report/);
      expect(() => loadReport(join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json/);
      const good = join(dir, 'good.json');
      await writeFile(good, JSON.stringify(base));
      expect(loadReport(good).targets).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
