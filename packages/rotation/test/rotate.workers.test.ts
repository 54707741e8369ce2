/**
 * Several workers, one rotation (issue 4): four processes run rotateKek against one PostgreSQL store at once. Row
 * leasing with FOR UPDATE SKIP LOCKED gives them disjoint batches: every key is re-wrapped exactly once, as the
 * revisions and the audit log both show.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { countOpening, fixture, freshSchema, makeKeks, pgStore, pgUrl, seedKeys } from './helpers.js';

const KEYS = 20_000;
const WORKERS = 4;

interface WorkerResult {
  code: number | null;
  report: { rewrapped: number; skipped: number; failed: unknown[] } | undefined;
  stderr: string;
}

function runWorker(env: Record<string, string>): Promise<WorkerResult> {
  const child = spawn(process.execPath, [fixture('rotate-child.mjs')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let report: WorkerResult['report'];
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('report ')) report = JSON.parse(line.slice(7)) as WorkerResult['report'];
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, report, stderr })));
}

describe('rotateKek with several PostgreSQL workers', () => {
  it(`${WORKERS} worker processes re-wrap each of ${KEYS.toLocaleString('en-US')} keys exactly once`, async () => {
    const schema = freshSchema();
    const keks = makeKeks();
    const store = await pgStore(schema);
    try {
      const plain = await seedKeys(store, keks.v1, KEYS);
      const env = {
        KF_PG_URL: pgUrl(),
        KF_PG_SCHEMA: schema,
        KF_KEK_V1: keks.env.KEYFOLD_KEK_V1!,
        KF_KEK_V2: keks.env.KEYFOLD_KEK_V2!,
        KF_BATCH: '200',
      };
      const results = await Promise.all(Array.from({ length: WORKERS }, (_, i) => runWorker({ ...env, KF_WORKER: `w${i + 1}` })));
      for (const r of results) {
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.report?.failed).toEqual([]);
      }
      // The workers' reports add up to exactly the number of keys.
      expect(results.reduce((s, r) => s + (r.report?.rewrapped ?? 0), 0)).toBe(KEYS);

      // Revisions: each key was written once (1 -> 2), and is on the target.
      const keys = await store.listDataKeys({ limit: KEYS });
      expect(keys).toHaveLength(KEYS);
      expect(keys.every((k) => k.revision === 2 && k.wrapped?.keyVersion === '2')).toBe(true);

      // Audit: the kek.rewrap entries name every key exactly once, each entry by one of the workers.
      const seen = new Map<string, number>();
      const byWorker = new Map<string, number>();
      for (let after = 0; ; ) {
        const page = await store.listAudit({ after, event: 'kek.rewrap', limit: 1000 });
        for (const e of page) {
          const ids = e.details.ids as string[];
          for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
          byWorker.set(e.actor, (byWorker.get(e.actor) ?? 0) + ids.length);
        }
        if (page.length < 1000) break;
        after = page[page.length - 1]!.seq;
      }
      expect(seen.size).toBe(KEYS);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
      for (const [actor, count] of byWorker) {
        expect(actor).toMatch(/^rotation:w[1-4]$/);
        const w = results[Number(actor.slice(-1)) - 1]!;
        expect(count).toBe(w.report!.rewrapped);
      }
      expect((await store.verifyAudit()).ok).toBe(true);
      expect(await countOpening(store, keks.v2, plain)).toBe(KEYS);
    } finally {
      await store.close();
    }
  }, 180_000);
});

describe('rotateKek with several SQLite processes, sharded', () => {
  it('two processes on one SQLite file, shards 0/2 and 1/2, re-wrap each key exactly once', async () => {
    const { freshPath, sqliteStore } = await import('./helpers.js');
    const path = freshPath();
    const keks = makeKeks();
    const store = await sqliteStore(path);
    const plain = await seedKeys(store, keks.v1, 6000);
    await store.close();
    const env = { KF_STORE: path, KF_KEK_V1: keks.env.KEYFOLD_KEK_V1!, KF_KEK_V2: keks.env.KEYFOLD_KEK_V2!, KF_BATCH: '250' };
    const results = await Promise.all([0, 1].map((i) => runWorker({ ...env, KF_SHARD: `${i}/2` })));
    for (const r of results) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.report?.failed).toEqual([]);
      expect(r.report?.rewrapped).toBeGreaterThan(0);
    }
    expect(results[0]!.report!.rewrapped + results[1]!.report!.rewrapped).toBe(6000);
    const after = await sqliteStore(path);
    try {
      expect((await after.listDataKeys({ limit: 6000 })).every((k) => k.revision === 2 && k.wrapped?.keyVersion === '2')).toBe(true);
      const actors = new Set((await after.listAudit({ event: 'kek.rewrap', limit: 1000 })).map((e) => e.actor));
      expect(actors).toEqual(new Set(['rotation:shard-0-of-2', 'rotation:shard-1-of-2']));
      expect(await countOpening(after, keks.v2, plain)).toBe(6000);
    } finally {
      await after.close();
    }
  }, 120_000);
});
