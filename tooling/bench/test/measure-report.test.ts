import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { interleave, median, pairedRatio, ratio, runFor, summarise } from '../src/measure.js';
import { fillBlock, makePattern, PatternVerifier, patternSource, verifyingSink } from '../src/pattern.js';
import {
  buildReport,
  evaluateTarget,
  fmtBytes,
  fmtNum,
  fmtRatio,
  renderReport,
  renderTable,
  writeJson,
  type SectionResult,
  type TargetSpec,
} from '../src/report.js';

describe('median / ratio / summarise', () => {
  it('median of odd and even lists, unsorted input untouched', () => {
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow(RangeError);
  });

  it('ratio refuses missing or non-positive denominators', () => {
    expect(ratio(3, 4)).toBe(0.75);
    expect(ratio(3, 0)).toBeNull();
    expect(ratio(3, -1)).toBeNull();
    expect(ratio(undefined, 4)).toBeNull();
    expect(ratio(3, null)).toBeNull();
    expect(ratio(Number.NaN, 4)).toBeNull();
  });

  it('summarise computes per-round rates, their median and spread', () => {
    const r = summarise([
      { iterations: 100, elapsedMs: 1000 }, // 100/s
      { iterations: 300, elapsedMs: 1000 }, // 300/s
      { iterations: 100, elapsedMs: 500 }, // 200/s
    ]);
    expect(r.rounds).toEqual([100, 300, 200]);
    expect(r.opsPerSec).toBe(200);
    expect(r.iterations).toBe(500);
    expect(r.elapsedMs).toBe(2500);
    expect(r.spread).toBe(1); // (300 - 100) / 200
  });
});

describe('pairedRatio', () => {
  it('is the median of same-round ratios, wall or CPU', () => {
    const a = summarise([
      { iterations: 10, elapsedMs: 1000, cpuMs: 500 },
      { iterations: 40, elapsedMs: 1000, cpuMs: 1000 },
      { iterations: 30, elapsedMs: 1000, cpuMs: 1000 },
    ]);
    const b = summarise([
      { iterations: 20, elapsedMs: 1000, cpuMs: 1000 },
      { iterations: 50, elapsedMs: 1000, cpuMs: 1000 },
      { iterations: 100, elapsedMs: 1000, cpuMs: 1000 },
    ]);
    // wall: 0.5, 0.8, 0.3 -> 0.5 (a ratio of medians would say 30/50 = 0.6)
    expect(pairedRatio(a, b)).toBe(0.5);
    // cpu: 20/20, 40/50, 30/100 -> 1, 0.8, 0.3 -> 0.8
    expect(pairedRatio(a, b, 'cpu')).toBeCloseTo(0.8);
    expect(pairedRatio(a, undefined)).toBeNull();
    expect(pairedRatio(a, summarise([{ iterations: 1, elapsedMs: 1 }]))).toBeNull();
  });
});

describe('runFor / interleave', () => {
  it('runFor runs at least once and awaits promises', async () => {
    let n = 0;
    let resolved = 0;
    const s = await runFor(async () => {
      n++;
      await Promise.resolve();
      resolved++;
    }, 0);
    expect(s.iterations).toBe(1);
    expect(n).toBe(1);
    expect(resolved).toBe(1);
  });

  it('interleave warms up every case, runs every round, rotates the order', async () => {
    const order: string[] = [];
    const mk = (id: string) => ({ id, op: () => void order.push(id) });
    let hooks = 0;
    const res = await interleave([mk('a'), mk('b'), mk('c')], {
      warmupMs: 0,
      sliceMs: 0,
      rounds: 3,
      warmupIterations: 2,
      beforeSlice: () => void hooks++,
    });
    // warm-up aa bb cc, then rounds: a b c | b c a | c a b (sliceMs 0 => one call per slice)
    expect(order.join('')).toBe('aabbcc' + 'abc' + 'bca' + 'cab');
    expect(hooks).toBe(3 + 9);
    expect([...res.keys()]).toEqual(['a', 'b', 'c']);
    for (const r of res.values()) {
      expect(r.rounds).toHaveLength(3);
      expect(r.iterations).toBe(3);
    }
  });

  it('interleave refuses zero rounds', async () => {
    await expect(interleave([], { warmupMs: 0, sliceMs: 0, rounds: 0 })).rejects.toThrow(RangeError);
  });
});

describe('targets and formatting', () => {
  const spec = (comparator: TargetSpec['comparator'], threshold: number): TargetSpec => ({
    id: 't',
    description: 'd',
    comparator,
    threshold,
    unit: 'x',
  });

  it('evaluateTarget: PASS / MISS per comparator, N/A when unmeasured', () => {
    expect(evaluateTarget(spec('>=', 0.4), 0.4).status).toBe('PASS');
    expect(evaluateTarget(spec('>=', 0.4), 0.39).status).toBe('MISS');
    expect(evaluateTarget(spec('<=', 160), 160).status).toBe('PASS');
    expect(evaluateTarget(spec('<=', 160), 161).status).toBe('MISS');
    expect(evaluateTarget(spec('<', 64), 64).status).toBe('MISS');
    expect(evaluateTarget(spec('<', 64), 63.9).status).toBe('PASS');
    const na = evaluateTarget(spec('>=', 1), null, 'not built');
    expect(na.status).toBe('N/A');
    expect(na.actual).toBeNull();
    expect(na.note).toBe('not built');
    expect(evaluateTarget(spec('>=', 1), Number.NaN).status).toBe('N/A');
  });

  it('formats numbers, ratios and sizes', () => {
    expect(fmtNum(123456.7)).toBe('123,457');
    expect(fmtNum(12.34)).toBe('12.3');
    expect(fmtNum(1.234)).toBe('1.23');
    expect(fmtRatio(0.456)).toBe('0.46x');
    expect(fmtRatio(null)).toBe('n/a');
    expect(fmtBytes(64)).toBe('64 B');
    expect(fmtBytes(1024)).toBe('1 KiB');
    expect(fmtBytes(64 * 1024)).toBe('64 KiB');
    expect(fmtBytes(2 ** 30)).toBe('1 GiB');
    expect(fmtBytes(1.5 * 2 ** 20)).toBe('1.50 MiB');
  });

  it('renderTable aligns columns', () => {
    const out = renderTable({ title: 'T', columns: ['name', 'v'], rows: [['a', '1'], ['long name', '100']] });
    expect(out.split('\n')).toEqual(['T', 'name         v', '---------  ---', 'a            1', 'long name  100']);
  });

  it('buildReport collects targets and writes parseable JSON', async () => {
    const section: SectionResult = {
      id: 'overhead',
      title: 'x',
      notes: ['n'],
      tables: [{ title: 't', columns: ['a'], rows: [['1']] }],
      targets: [evaluateTarget(spec('<=', 160), 100)],
      data: { k: 1 },
    };
    const report = buildReport('quick', new Date(), [section]);
    expect(report.targets).toHaveLength(1);
    expect(report.machine.nproc).toBeGreaterThan(0);
    expect(renderReport(report)).toContain('PASS');
    const dir = await mkdtemp(join(tmpdir(), 'bench-test-'));
    try {
      const path = join(dir, 'sub', 'r.json');
      await writeJson(path, report);
      const back = JSON.parse(await readFile(path, 'utf8'));
      expect(back.schema).toBe('keyfold-bench/1');
      expect(back.sections[0].data).toEqual({ k: 1 });
      expect(back.targets[0].status).toBe('PASS');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pattern source and verifier', () => {
  const pattern = makePattern(1024);

  it('the source output verifies, across odd chunk boundaries', async () => {
    const total = 10 * 1024 + 7;
    const chunks: Buffer[] = [];
    for await (const c of patternSource(total, pattern)) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(total);
    const v = new PatternVerifier(pattern);
    for (let i = 0; i < all.length; i += 333) expect(v.update(all.subarray(i, i + 333))).toBe(true);
    expect(v.offset).toBe(total);
  });

  it('the source never hands out a modified block and stamps cycle through the ring', async () => {
    const total = 70 * 1024;
    const seen: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      patternSource(total, pattern)
        .on('data', (c: Buffer) => seen.push(c))
        .on('end', resolve)
        .on('error', reject);
    });
    expect(seen).toHaveLength(70);
    expect(seen[64]).toBe(seen[0]); // same prepared buffer again
    expect(seen[1]!.readBigUInt64BE(0)).toBe(1n);
    expect(seen[65]!.readBigUInt64BE(0)).toBe(1n);
  });

  it('detects a flipped byte and swapped blocks', () => {
    const b0 = fillBlock(Buffer.alloc(1024), pattern, 0);
    const b1 = fillBlock(Buffer.alloc(1024), pattern, 1);
    expect(new PatternVerifier(pattern).update(Buffer.concat([b1, b0]))).toBe(false);
    const bad = Buffer.concat([b0, b1]);
    bad[1500] = bad[1500]! ^ 1;
    expect(new PatternVerifier(pattern).update(bad)).toBe(false);
  });

  it('the sink fails a short stream', async () => {
    const b0 = fillBlock(Buffer.alloc(1024), pattern, 0);
    await expect(pipeline(Readable.from([b0]), verifyingSink(pattern, 2048))).rejects.toThrow(/shorter/);
    await expect(pipeline(Readable.from([b0]), verifyingSink(pattern, 1024))).resolves.toBeUndefined();
  });
});
