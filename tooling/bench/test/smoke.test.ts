// Runs real sections with tiny budgets. Asserts shapes and correctness only, never timings.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyfoldOneShot } from '../src/contenders/keyfold.js';
import { buildReport } from '../src/report.js';
import { runOverhead, type OverheadData } from '../src/sections/overhead.js';
import { ROUNDTRIP_CONTENDERS, runRoundtrip, type RoundtripData } from '../src/sections/roundtrip.js';
import { runStreaming } from '../src/sections/streaming.js';
import { runStreamCase, runStreamPhases } from '../src/stream-case.js';

describe('bench smoke', () => {
  it('Keyfold opens exactly what it sealed, with and without the cache', async () => {
    for (const cache of [false, true]) {
      const kf = await createKeyfoldOneShot({ cache });
      try {
        for (const size of [0, 1, 64, 1024, 70_000]) {
          const pt = new Uint8Array(randomBytes(size));
          const back = await kf.open(await kf.seal(pt));
          expect(Buffer.from(back).equals(Buffer.from(pt))).toBe(true);
        }
      } finally {
        await kf.close();
      }
    }
  });

  it('roundtrip section: every contender measured and verified, ratios and targets present', async () => {
    const section = await runRoundtrip({ sizes: [64, 1024], warmupMs: 1, sliceMs: 1, rounds: 2 });
    expect(section.id).toBe('roundtrip');
    const data = section.data as RoundtripData;
    expect(data.contenders.map((c) => c.id)).toEqual(ROUNDTRIP_CONTENDERS.map((c) => c.id));
    for (const c of data.contenders) {
      expect(c.error).toBeUndefined();
      expect(c.available).toBe(true);
      expect(c.verified).toBe(true);
    }
    for (const size of ['64', '1024']) {
      for (const c of ROUNDTRIP_CONTENDERS) {
        const r = data.results[size]![c.id]!;
        expect(r.rounds).toHaveLength(2);
        expect(r.iterations).toBeGreaterThanOrEqual(2);
        expect(r.opsPerSec).toBeGreaterThan(0);
      }
      expect(typeof data.ratios[size]!['Keyfold no cache / raw']).toBe('number');
    }
    expect(section.targets.map((t) => t.id)).toEqual([
      'roundtrip.1k.nocache.vs-raw',
      'roundtrip.1k.nocache.vs-esdk-0478',
      'roundtrip.1k.cache.vs-raw',
    ]);
    for (const t of section.targets) expect(['PASS', 'MISS']).toContain(t.status);

    const overhead = await runOverhead();
    const od = overhead.data as OverheadData;
    for (const id of ['keyfold', 'keyfold-armor', 'esdk-0x0478', 'esdk-0x0578', 'raw']) {
      const row = od.rows.find((r) => r.id === id)!;
      expect(row.error).toBeUndefined();
      expect(row.overhead).toBeGreaterThan(0);
    }
    expect(od.rows.find((r) => r.id === 'raw')!.overhead).toBe(28);
    expect(overhead.targets[0]!.id).toBe('overhead.64b');
    expect(typeof overhead.targets[0]!.actual).toBe('number');

    // The JSON report has the documented shape.
    const json = JSON.parse(JSON.stringify(buildReport('quick', new Date(), [section, overhead])));
    expect(json).toMatchObject({ schema: 'keyfold-bench/1', mode: 'quick' });
    expect(Object.keys(json.machine).sort()).toEqual(['arch', 'cpuModel', 'loadAvg', 'node', 'nproc', 'platform', 'totalMemGiB', 'v8']);
    expect(json.sections.map((s: { id: string }) => s.id)).toEqual(['roundtrip', 'overhead']);
    expect(json.targets).toHaveLength(4);
    for (const t of json.targets) expect(Object.keys(t)).toEqual(expect.arrayContaining(['id', 'description', 'comparator', 'threshold', 'unit', 'actual', 'status']));
  });

  it('streaming cases round-trip every byte (in-process, 1 MiB + a partial frame)', async () => {
    const bytes = 2 ** 20 + 12_345;
    for (const spec of [{ kind: 'raw' }, { kind: 'keyfold' }, { kind: 'esdk', suite: 0x0478, frameLength: 4096 }] as const) {
      const r = await runStreamCase(spec, bytes, 0);
      expect(r.verified).toBe(true);
      expect(r.bytes).toBe(bytes);
    }
  });
});

describe('streaming, one direction at a time', () => {
  it('seal-only counts every byte and open-only returns exactly the input (in-process, 1 MiB + a partial frame)', async () => {
    const bytes = 2 ** 20 + 12_345;
    for (const spec of [{ kind: 'raw' }, { kind: 'keyfold' }] as const) {
      const r = await runStreamPhases(spec, bytes, 0);
      expect(r.verified).toBe(true);
      expect(r.sealBytes).toBe(bytes);
      expect(r.openBytes).toBe(bytes);
      expect(r.sealMbPerSec).toBeGreaterThan(0);
      expect(r.openMbPerSec).toBeGreaterThan(0);
    }
  });

  it('the streaming section prints seal-only / open-only rows for raw and Keyfold', async () => {
    const section = await runStreaming({ bytes: 2 ** 20, warmupBytes: 0, passes: 1, specs: [{ kind: 'raw' }, { kind: 'keyfold' }] });
    const phaseTable = section.tables[2]!;
    expect(phaseTable.columns[1]).toBe('seal MB/s');
    expect(phaseTable.rows.map((r) => r[0])).toEqual(['node:crypto GCM stream pipeline', 'Keyfold sealStream -> openStream (64 KiB frames)']);
    expect(phaseTable.rows.map((r) => r.at(-1))).toEqual(['yes', 'yes']);
    expect(phaseTable.rows[0]![2]).toBe('1.00x');
  });
});
