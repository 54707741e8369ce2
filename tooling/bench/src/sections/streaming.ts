/**
 * Section 2: streaming seal -> open of one large message: MB/s and RSS growth, each contender in its own child
 * process so one contender's heap does not show up in another's RSS.
 * @module
 */
import { fork } from 'node:child_process';
import { esdkId, esdkLabel } from '../contenders/esdk.js';
import { ratio } from '../measure.js';
import { evaluateTarget, fmtBytes, fmtNum, fmtRatio, type SectionResult, type Table } from '../report.js';
import { OPEN_ONLY_MAX_BYTES, runStreamCase, runStreamPhases, type StreamCaseResult, type StreamPhaseResult, type StreamSpec } from '../stream-case.js';

const MiB = 1024 * 1024;

export interface StreamingOptions {
  /** Plaintext bytes per message. */
  readonly bytes: number;
  /** Untimed warm-up message per child, bytes. */
  readonly warmupBytes: number;
  /**
   * Passes over all contenders; the best MB/s and the worst RSS growth of the passes count. Contenders marked
   * `slow` (the ESDK at 4 KiB frames, ~10x slower than the rest) run in the first pass only.
   */
  readonly passes: number;
  /** Path of the built `stream-child.js`; when absent, cases run in this process (tests: RSS not meaningful). */
  readonly childEntry?: string;
  /** Per-child time limit, ms. */
  readonly timeoutMs?: number;
  readonly specs?: readonly StreamSpec[];
}

export const STREAM_SPECS: readonly StreamSpec[] = [
  { kind: 'raw' },
  { kind: 'keyfold' },
  { kind: 'esdk', suite: 0x0478, frameLength: 4096, slow: true },
  { kind: 'esdk', suite: 0x0478, frameLength: 65536 },
  { kind: 'esdk', suite: 0x0578, frameLength: 4096, slow: true },
  { kind: 'esdk', suite: 0x0578, frameLength: 65536 },
];

export function streamSpecId(s: StreamSpec): string {
  if (s.kind === 'esdk') return esdkId({ suite: s.suite, cache: false, ...(s.frameLength ? { frameLength: s.frameLength } : {}) });
  return s.kind;
}

function streamSpecLabel(s: StreamSpec): string {
  if (s.kind === 'raw') return 'node:crypto GCM stream pipeline';
  if (s.kind === 'keyfold') return 'Keyfold sealStream -> openStream (64 KiB frames)';
  return `${esdkLabel({ suite: s.suite, cache: false, ...(s.frameLength ? { frameLength: s.frameLength } : {}) })}${s.frameLength === 4096 ? ' (ESDK default)' : ''}`;
}

type ChildMessage<T> = { ok: true; result: T } | { ok: false; error: string };

function runInChild(entry: string, spec: StreamSpec, bytes: number, warmupBytes: number, timeoutMs: number): Promise<StreamCaseResult>;
function runInChild(entry: string, spec: StreamSpec, bytes: number, warmupBytes: number, timeoutMs: number, mode: 'phases'): Promise<StreamPhaseResult>;
function runInChild<T>(entry: string, spec: StreamSpec, bytes: number, warmupBytes: number, timeoutMs: number, mode?: 'phases'): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(entry, [JSON.stringify(spec), String(bytes), String(warmupBytes), ...(mode ? [mode] : [])], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('message', (m: ChildMessage<T>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (m.ok) resolve(m.result);
      else reject(new Error(m.error.split('\n')[0]));
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`child exited (${signal ?? code}) without a result`));
    });
  });
}

export interface StreamingData {
  readonly bytes: number;
  readonly passes: number;
  readonly isolated: boolean;
  readonly results: Record<string, { label: string; runs: StreamCaseResult[]; best?: StreamCaseResult; worstRssGrowth?: number; error?: string }>;
  readonly ratios: { keyfoldVsRaw: number | null; keyfoldVsBestEsdk: number | null; bestEsdk: string | null };
  /** The same ratios of MB per CPU-second (best pass each); `bestEsdk` chosen by that measure. */
  readonly cpuRatios: { keyfoldVsRaw: number | null; keyfoldVsBestEsdk: number | null; bestEsdk: string | null };
  /** Seal-only and open-only runs (one each, in a child), by contender id; absent when not run. */
  readonly phases?: Record<string, { label: string; result?: StreamPhaseResult; error?: string }>;
}

/** Contenders that also get seal-only and open-only rows (the fast ones; the ESDK at 4 KiB frames is left out). */
const PHASE_IDS = ['raw', 'keyfold', 'esdk-0x0478-f65536'];

export async function runStreaming(opts: StreamingOptions): Promise<SectionResult> {
  const specs = opts.specs ?? STREAM_SPECS;
  const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
  const results: StreamingData['results'] = {};
  for (const s of specs) results[streamSpecId(s)] = { label: streamSpecLabel(s), runs: [] };

  for (let pass = 0; pass < opts.passes; pass++) {
    for (const spec of specs) {
      const entry = results[streamSpecId(spec)]!;
      if (entry.error || (pass > 0 && spec.kind === 'esdk' && spec.slow)) continue;
      try {
        const r = opts.childEntry
          ? await runInChild(opts.childEntry, spec, opts.bytes, opts.warmupBytes, timeoutMs)
          : await runStreamCase(spec, opts.bytes, opts.warmupBytes);
        entry.runs.push(r);
      } catch (err) {
        entry.error = err instanceof Error ? err.message : String(err);
      }
    }
  }
  const phases: NonNullable<StreamingData['phases']> = {};
  for (const spec of specs) {
    const id = streamSpecId(spec);
    if (!PHASE_IDS.includes(id)) continue;
    const entry: { label: string; result?: StreamPhaseResult; error?: string } = { label: streamSpecLabel(spec) };
    phases[id] = entry;
    try {
      entry.result = opts.childEntry
        ? await runInChild(opts.childEntry, spec, opts.bytes, opts.warmupBytes, timeoutMs, 'phases')
        : await runStreamPhases(spec, opts.bytes, opts.warmupBytes);
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
    }
  }
  for (const e of Object.values(results)) {
    if (e.runs.length === 0) continue;
    e.best = e.runs.reduce((a, b) => (b.mbPerSec > a.mbPerSec ? b : a));
    e.worstRssGrowth = Math.max(...e.runs.map((r) => r.rssGrowth));
  }

  const kf = results['keyfold'];
  const raw = results['raw'];
  let bestEsdk: string | null = null;
  for (const [id, e] of Object.entries(results)) {
    if (!id.startsWith('esdk') || !e.best) continue;
    if (bestEsdk === null || e.best.mbPerSec > results[bestEsdk]!.best!.mbPerSec) bestEsdk = id;
  }
  const ratios: StreamingData['ratios'] = {
    keyfoldVsRaw: ratio(kf?.best?.mbPerSec, raw?.best?.mbPerSec),
    keyfoldVsBestEsdk: ratio(kf?.best?.mbPerSec, bestEsdk ? results[bestEsdk]!.best!.mbPerSec : null),
    bestEsdk,
  };
  const bestCpu = (id: string): number | undefined => {
    const runs = results[id]?.runs ?? [];
    return runs.length > 0 ? Math.max(...runs.map((r) => r.mbPerCpuSec)) : undefined;
  };
  let bestEsdkCpu: string | null = null;
  for (const id of Object.keys(results)) {
    if (!id.startsWith('esdk') || bestCpu(id) === undefined) continue;
    if (bestEsdkCpu === null || bestCpu(id)! > bestCpu(bestEsdkCpu)!) bestEsdkCpu = id;
  }
  const cpuRatios: StreamingData['cpuRatios'] = {
    keyfoldVsRaw: ratio(bestCpu('keyfold'), bestCpu('raw')),
    keyfoldVsBestEsdk: ratio(bestCpu('keyfold'), bestEsdkCpu ? bestCpu(bestEsdkCpu) : null),
    bestEsdk: bestEsdkCpu,
  };

  const table: Table = {
    title: `Streaming seal -> open of one ${fmtBytes(opts.bytes)} message`,
    columns: ['contender', 'MB/s', 'vs raw', 'MB/CPU-s', 'vs raw', 'RSS growth', 'baseline RSS', 'verified'],
    rows: specs.map((s) => {
      const id = streamSpecId(s);
      const e = results[id]!;
      if (!e.best) return [e.label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', e.error ? `ERROR: ${e.error}` : 'n/a'];
      return [
        e.label,
        fmtNum(e.best.mbPerSec),
        fmtRatio(ratio(e.best.mbPerSec, raw?.best?.mbPerSec)),
        fmtNum(bestCpu(id)!),
        fmtRatio(ratio(bestCpu(id), bestCpu('raw'))),
        opts.childEntry ? fmtBytes(Math.round(e.worstRssGrowth! / MiB * 10) / 10 * MiB) : 'n/a (in-process)',
        opts.childEntry ? fmtBytes(Math.round(e.best.baselineRss / MiB) * MiB) : 'n/a',
        e.runs.every((r) => r.verified) ? 'yes' : 'NO',
      ];
    }),
  };
  const ratioTable: Table = {
    title: 'Streaming ratios',
    columns: ['ratio', 'wall clock', 'per CPU-second'],
    rows: [
      ['Keyfold / raw node:crypto pipeline', fmtRatio(ratios.keyfoldVsRaw), fmtRatio(cpuRatios.keyfoldVsRaw)],
      [
        `Keyfold / best ESDK (wall: ${bestEsdk ?? 'n/a'}; CPU: ${bestEsdkCpu ?? 'n/a'})`,
        fmtRatio(ratios.keyfoldVsBestEsdk),
        fmtRatio(cpuRatios.keyfoldVsBestEsdk),
      ],
    ],
  };
  const rawPhase = phases['raw']?.result;
  const phaseTable: Table = {
    title: `Streaming, one direction at a time: seal-only (${fmtBytes(opts.bytes)}) and open-only (${fmtBytes(Math.min(opts.bytes, OPEN_ONLY_MAX_BYTES))}, sealed into memory first)`,
    columns: ['contender', 'seal MB/s', 'vs raw', 'seal MB/CPU-s', 'vs raw', 'open MB/s', 'vs raw', 'open MB/CPU-s', 'vs raw', 'verified'],
    rows: Object.values(phases).map((e) => {
      const r = e.result;
      if (!r) return [e.label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', e.error ? `ERROR: ${e.error}` : 'n/a'];
      return [
        e.label,
        fmtNum(r.sealMbPerSec),
        fmtRatio(ratio(r.sealMbPerSec, rawPhase?.sealMbPerSec)),
        fmtNum(r.sealMbPerCpuSec),
        fmtRatio(ratio(r.sealMbPerCpuSec, rawPhase?.sealMbPerCpuSec)),
        fmtNum(r.openMbPerSec),
        fmtRatio(ratio(r.openMbPerSec, rawPhase?.openMbPerSec)),
        fmtNum(r.openMbPerCpuSec),
        fmtRatio(ratio(r.openMbPerCpuSec, rawPhase?.openMbPerCpuSec)),
        r.verified ? 'yes' : 'NO',
      ];
    }),
  };
  const kfGrowthMiB = opts.childEntry && kf?.worstRssGrowth !== undefined ? kf.worstRssGrowth / MiB : null;
  const scaled = opts.bytes < 1024 * MiB ? `measured on ${fmtBytes(opts.bytes)}, not 1 GiB` : undefined;
  const withCpu = (r: number | null): string => [`per CPU-second: ${fmtRatio(r)}`, scaled].filter(Boolean).join('; ');
  const targets = [
    evaluateTarget(
      { id: 'streaming.vs-raw', description: 'streaming MB/s vs raw node:crypto pipeline', comparator: '>=', threshold: 0.6, unit: 'x' },
      ratios.keyfoldVsRaw,
      withCpu(cpuRatios.keyfoldVsRaw),
    ),
    evaluateTarget(
      { id: 'streaming.vs-esdk-best', description: "streaming MB/s vs the ESDK's best configuration", comparator: '>=', threshold: 2, unit: 'x' },
      ratios.keyfoldVsBestEsdk,
      withCpu(cpuRatios.keyfoldVsBestEsdk),
    ),
    evaluateTarget(
      { id: 'streaming.rss-growth', description: 'streaming RSS growth for 1 GiB', comparator: '<', threshold: 64, unit: 'MiB' },
      kfGrowthMiB,
      opts.childEntry ? scaled : 'not isolated in a child process',
    ),
  ];

  const data: StreamingData = {
    bytes: opts.bytes,
    passes: opts.passes,
    isolated: opts.childEntry !== undefined,
    results,
    ratios,
    cpuRatios,
    ...(Object.keys(phases).length > 0 ? { phases } : {}),
  };
  return {
    id: 'streaming',
    title: '2. Streaming seal -> open',
    notes: [
      `one ${fmtBytes(opts.bytes)} message per contender${opts.bytes < 1024 * MiB ? ' (--quick: 64 MiB instead of 1 GiB)' : ''}, ` +
        `after a ${fmtBytes(opts.warmupBytes)} warm-up message; ${opts.passes} pass(es) (the ESDK at 4 KiB frames: one), ` +
        'best MB/s and worst RSS growth kept',
      'source: 64 KiB blocks of one random pattern, each stamped with its index mod 64, handed out from 64 prepared ' +
        'buffers (no copy per block); the sink compares every output byte with the input (memcmp), so truncation, ' +
        'duplication and reordering fail the run',
      opts.childEntry
        ? 'each contender runs alone in a forked child (node --expose-gc); RSS growth = peak RSS during the timed message ' +
          '(sampled in the sink every 32 chunks, i.e. every 2 MiB, since a synchronous source and transforms rarely let ' +
          'timers run) minus RSS after the warm-up message and three full GCs'
        : 'contenders ran in this process: RSS figures are not meaningful',
      'MB/s = 10^6 plaintext bytes per second of the whole seal -> open pipeline (both directions on one thread); ' +
        'MB/CPU-s = the same per CPU-second of the child (all its threads): the cross-check when the machine is busy, ' +
        'since contenders here run one after another, not interleaved',
      ...(Object.keys(phases).length > 0
        ? [
            `seal-only / open-only rows (${Object.keys(phases).join(', ')}): one run each in a child after the passes; seal-only ` +
              'pipes the source through the seal side into a counting sink; open-only first seals a message of at most ' +
              `${fmtBytes(OPEN_ONLY_MAX_BYTES)} into memory (untimed), then times the open side into the verifying sink`,
          ]
        : []),
    ],
    tables: Object.keys(phases).length > 0 ? [table, ratioTable, phaseTable] : [table, ratioTable],
    targets,
    data,
  };
}
