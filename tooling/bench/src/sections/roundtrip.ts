/**
 * Section 1: seal + open round trips per second at 64 B, 1 KiB, 64 KiB and 1 MiB, every contender interleaved
 * in this one process.
 * @module
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { createEsdkOneShot, type EsdkOptions } from '../contenders/esdk.js';
import { createKeyfoldOneShot } from '../contenders/keyfold.js';
import { createRawOneShot } from '../contenders/raw.js';
import type { OneShot } from '../contenders/types.js';
import { interleave, pairedRatio, type Case, type RateResult } from '../measure.js';
import { evaluateTarget, fmtBytes, fmtRate, fmtRatio, type SectionResult, type Table } from '../report.js';

export const ROUNDTRIP_SIZES = [64, 1024, 64 * 1024, 1024 * 1024] as const;

export interface RoundtripOptions {
  readonly sizes?: readonly number[];
  readonly warmupMs: number;
  readonly sliceMs: number;
  readonly rounds: number;
  /** Full GC before every slice (see `getGc`). */
  readonly gc?: () => void;
  /** Only these contender ids (e.g. to profile one); default all. */
  readonly contenders?: readonly string[];
}

interface ContenderDef {
  readonly id: string;
  readonly label: string;
  readonly make: () => Promise<OneShot>;
}

const esdk = (o: EsdkOptions): ContenderDef => {
  const suite = `0x${o.suite.toString(16).padStart(4, '0')}`;
  return {
    id: `esdk-${suite}${o.cache ? '-cache' : ''}`,
    label: `ESDK ${suite}${o.cache ? ', caching CMM' : ''}`,
    make: () => createEsdkOneShot(o),
  };
};

export const ROUNDTRIP_CONTENDERS: readonly ContenderDef[] = [
  { id: 'raw', label: 'node:crypto AES-256-GCM (no wrapping)', make: () => createRawOneShot('fresh') },
  { id: 'raw-pooled-iv', label: 'node:crypto AES-256-GCM, pooled IV (info)', make: () => createRawOneShot('pooled') },
  { id: 'keyfold', label: 'Keyfold env, no cache', make: () => createKeyfoldOneShot({ cache: false }) },
  { id: 'keyfold-cache', label: 'Keyfold env, data key cache', make: () => createKeyfoldOneShot({ cache: true }) },
  esdk({ suite: 0x0478, cache: false }),
  esdk({ suite: 0x0478, cache: true }),
  esdk({ suite: 0x0578, cache: false }),
  esdk({ suite: 0x0578, cache: true }),
];

/** The ratios printed for every size: [label, numerator id, denominator id]. */
export const ROUNDTRIP_RATIOS: readonly (readonly [string, string, string])[] = [
  ['Keyfold no cache / raw', 'keyfold', 'raw'],
  ['Keyfold cache / raw', 'keyfold-cache', 'raw'],
  ['Keyfold no cache / raw pooled IV (info)', 'keyfold', 'raw-pooled-iv'],
  ['Keyfold cache / raw pooled IV (info)', 'keyfold-cache', 'raw-pooled-iv'],
  ['Keyfold no cache / ESDK 0x0478', 'keyfold', 'esdk-0x0478'],
  ['Keyfold cache / ESDK 0x0478 cache', 'keyfold-cache', 'esdk-0x0478-cache'],
  ['Keyfold no cache / ESDK 0x0578', 'keyfold', 'esdk-0x0578'],
  ['Keyfold cache / ESDK 0x0578 cache', 'keyfold-cache', 'esdk-0x0578-cache'],
];

export interface RoundtripCaseData extends RateResult {
  /** Plaintext MB/s (10^6 B/s) implied by the round-trip rate. */
  readonly mbPerSec: number;
}

export interface RoundtripData {
  readonly sizes: readonly number[];
  readonly budget: { warmupMs: number; sliceMs: number; rounds: number; gcBetweenSlices: boolean };
  readonly contenders: readonly { id: string; label: string; available: boolean; verified: boolean; error?: string }[];
  /** results[size][contender id] */
  readonly results: Record<string, Record<string, RoundtripCaseData>>;
  /** ratios[size][ratio label]: median over rounds of the same-round ratio of wall-clock rates */
  readonly ratios: Record<string, Record<string, number | null>>;
  /** The same ratios of the per-CPU-second rates (load-insensitive cross-check) */
  readonly cpuRatios: Record<string, Record<string, number | null>>;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export async function runRoundtrip(opts: RoundtripOptions): Promise<SectionResult> {
  const sizes = opts.sizes ?? ROUNDTRIP_SIZES;
  const made: { def: ContenderDef; impl?: OneShot; error?: string; verified: boolean }[] = [];
  const wanted = opts.contenders;
  for (const def of ROUNDTRIP_CONTENDERS.filter((c) => !wanted || wanted.includes(c.id))) {
    try {
      made.push({ def, impl: await def.make(), verified: false });
    } catch (err) {
      made.push({ def, error: err instanceof Error ? err.message : String(err), verified: false });
    }
  }

  const results: RoundtripData['results'] = {};
  const ratios: RoundtripData['ratios'] = {};
  const cpuRatios: RoundtripData['cpuRatios'] = {};
  try {
    for (const size of sizes) {
      const pt = new Uint8Array(randomBytes(size));
      const cases: Case[] = [];
      for (const m of made) {
        const impl = m.impl;
        if (!impl) continue;
        // Correctness first: what this contender opens must be exactly what it sealed.
        try {
          const back = await impl.open(await impl.seal(pt));
          if (!bytesEqual(back, pt)) throw new Error(`open(seal(x)) != x at ${size} B`);
          m.verified = true;
        } catch (err) {
          m.error = err instanceof Error ? err.message : String(err);
          m.verified = false;
          delete m.impl;
          continue;
        }
        // Synchronous contenders (raw node:crypto) run without an await per call: their natural speed.
        cases.push(
          impl.sync
            ? { id: m.def.id, op: () => impl.open(impl.seal(pt) as Uint8Array) }
            : {
                id: m.def.id,
                op: async () => {
                  await impl.open(await impl.seal(pt));
                },
              },
        );
      }
      const rates = await interleave(cases, { ...opts, ...(opts.gc ? { beforeSlice: opts.gc } : {}) });
      const row: Record<string, RoundtripCaseData> = {};
      for (const [id, r] of rates) row[id] = { ...r, mbPerSec: (r.opsPerSec * size) / 1e6 };
      results[String(size)] = row;
      ratios[String(size)] = Object.fromEntries(
        ROUNDTRIP_RATIOS.map(([label, a, b]) => [label, pairedRatio(row[a], row[b], 'wall')]),
      );
      cpuRatios[String(size)] = Object.fromEntries(
        ROUNDTRIP_RATIOS.map(([label, a, b]) => [label, pairedRatio(row[a], row[b], 'cpu')]),
      );
    }
  } finally {
    for (const m of made) await m.impl?.close();
  }

  const rateTable: Table = {
    title: 'Round trips per second (seal + open, sequential; higher is better)',
    columns: ['contender', ...sizes.map(fmtBytes), 'noise'],
    rows: made.map((m) => {
      const cells = sizes.map((s) => {
        const r = results[String(s)]?.[m.def.id];
        return r ? fmtRate(r.opsPerSec) : 'n/a';
      });
      const spreads = sizes.map((s) => results[String(s)]?.[m.def.id]?.spread).filter((x): x is number => x !== undefined);
      const noise = spreads.length > 0 ? `±${Math.round((Math.max(...spreads) / 2) * 100)}%` : (m.error ?? 'n/a');
      return [m.def.label, ...cells, noise];
    }),
  };
  const ratioTable: Table = {
    title: 'Ratios, wall clock / per CPU-second (median of same-round ratios; these are the figures to compare)',
    columns: ['ratio', ...sizes.map(fmtBytes)],
    rows: ROUNDTRIP_RATIOS.map(([label]) => [
      label,
      ...sizes.map((s) => `${fmtRatio(ratios[String(s)]?.[label] ?? null)} / ${fmtRatio(cpuRatios[String(s)]?.[label] ?? null)}`),
    ]),
  };

  const at1k = ratios['1024'];
  const cpu1k = cpuRatios['1024'] ?? {};
  const cpuNote = (label: string): string => `per CPU-second: ${fmtRatio(cpu1k[label] ?? null)}`;
  const targets = at1k
    ? [
        evaluateTarget(
          { id: 'roundtrip.1k.nocache.vs-raw', description: '1 KiB round trips, no cache, vs raw node:crypto', comparator: '>=', threshold: 0.4, unit: 'x' },
          at1k['Keyfold no cache / raw'] ?? null,
          cpuNote('Keyfold no cache / raw'),
        ),
        evaluateTarget(
          { id: 'roundtrip.1k.nocache.vs-esdk-0478', description: '1 KiB round trips, no cache, vs ESDK 0x0478 (no cache)', comparator: '>=', threshold: 10, unit: 'x' },
          at1k['Keyfold no cache / ESDK 0x0478'] ?? null,
          cpuNote('Keyfold no cache / ESDK 0x0478'),
        ),
        evaluateTarget(
          { id: 'roundtrip.1k.cache.vs-raw', description: '1 KiB round trips, cache, vs raw node:crypto', comparator: '>=', threshold: 0.7, unit: 'x' },
          at1k['Keyfold cache / raw'] ?? null,
          cpuNote('Keyfold cache / raw'),
        ),
      ]
    : [];

  const data: RoundtripData = {
    sizes,
    budget: { warmupMs: opts.warmupMs, sliceMs: opts.sliceMs, rounds: opts.rounds, gcBetweenSlices: opts.gc !== undefined },
    contenders: made.map((m) => ({
      id: m.def.id,
      label: m.def.label,
      available: m.impl !== undefined,
      verified: m.verified,
      ...(m.error ? { error: m.error } : {}),
    })),
    results,
    ratios,
    cpuRatios,
  };
  const unavailable = made.filter((m) => m.error).map((m) => `${m.def.label}: ${m.error}`);
  return {
    id: 'roundtrip',
    title: '1. Seal + open round trips',
    notes: [
      `${opts.rounds} interleaved rounds of ${opts.sliceMs} ms per contender and size after ${opts.warmupMs} ms warm-up; ` +
        `(at least 3 warm-up calls); rates are the median round; ratios are the median over rounds of the two ` +
        `contenders' same-round ratio; "noise" is half the max-min spread of a contender's rounds` +
        (opts.gc ? '; a full GC (untimed) before every slice so no case pays for another\'s garbage' : ''),
      'per CPU-second = iterations / CPU time of this process (all threads) in the slice: insensitive to other ' +
        'processes on a shared machine; targets use the wall-clock ratio, the CPU one is given beside it',
      'one call at a time (await seal, await open); no encryption context; ESDK: raw AES keyring, ' +
        'commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT; cache limits identical for Keyfold and the ESDK caching CMM',
      'every contender was checked to open exactly what it sealed at every size before timing',
      ...unavailable.map((u) => `NOT MEASURED: ${u}`),
    ],
    tables: [rateTable, ratioTable],
    targets,
    data,
  };
}
