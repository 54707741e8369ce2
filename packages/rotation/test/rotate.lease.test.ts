/**
 * Checkpoint leases (issue 14, item 5): a rotation worker holds its checkpoint under a lease it renews while it
 * works. Two workers on one rotation, on SQLite and PostgreSQL: worker A (a child process) commits two batches and
 * then stops (SIGSTOP: alive, but no longer renewing). Worker B is refused while A's lease lives, takes the rotation
 * over once it expired and resumes from A's cursor; every key is re-wrapped exactly once; A, resumed, finds its lease
 * lost and stops without writing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { CheckpointLeasedError, type KeyStore } from '@keyfold/keystore';
import { checkpointName, rotateKek } from '../src/index.js';
import { countOpening, fixture, freshPath, freshSchema, makeKeks, pgStore, pgUrl, seedKeys, sqliteStore } from './helpers.js';

const KEYS = 300;
const BATCH = 50;
const TTL = 1500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Worker {
  child: ChildProcess;
  /** Resolves after `n` committed batches. */
  batches(n: number): Promise<void>;
  exit: Promise<{ code: number | null; lines: string[] }>;
}

function startWorker(env: Record<string, string>): Worker {
  const child = spawn(process.execPath, [fixture('rotate-child.mjs')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let seen = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    if (line === 'batch') seen++;
    for (const w of waiters) if (seen >= w.n) w.resolve();
  });
  const exit = new Promise<{ code: number | null; lines: string[] }>((resolve) => child.on('exit', (code) => resolve({ code, lines })));
  return { child, batches: (n) => new Promise((resolve) => waiters.push({ n, resolve })), exit };
}

/** Whether the process is stopped (state T in /proc/<pid>/stat). */
function stopped(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
}

describe.each([
  ['SQLite', async () => {
    const path = freshPath();
    return { store: await sqliteStore(path), env: { KF_STORE: path } };
  }],
  ['PostgreSQL', async () => {
    const schema = freshSchema();
    return { store: await pgStore(schema), env: { KF_PG_URL: pgUrl(), KF_PG_SCHEMA: schema } };
  }],
] as const)('checkpoint leases on %s', (_name, open) => {
  it('a worker that stops renewing is respected until its lease expires, then taken over from its cursor; each key is re-wrapped once', async () => {
    const keks = makeKeks();
    const { store, env } = (await open()) as { store: KeyStore; env: Record<string, string> };
    const plain = await seedKeys(store, keks.v1, KEYS);
    const a = startWorker({ ...env, KF_KEK_V1: keks.env.KEYFOLD_KEK_V1!, KF_KEK_V2: keks.env.KEYFOLD_KEK_V2!, KF_BATCH: String(BATCH), KF_LEASE_TTL: String(TTL), KF_STOP_AFTER: '2' });
    try {
      await a.batches(2);
      for (let i = 0; i < 50 && !stopped(a.child.pid!); i++) await sleep(20);
      expect(stopped(a.child.pid!)).toBe(true);
      const name = checkpointName({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' });
      const held = await store.getCheckpoint(name);
      expect(held).toMatchObject({ processed: 2 * BATCH, lease: { owner: expect.stringContaining(`/${a.child.pid!}/`) } });

      // A's lease is live: B respects it and writes nothing.
      const head = await store.auditHead();
      const refused = await rotateKek({ store, to: keks.v2, batchSize: BATCH, leaseTtlMs: TTL }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(CheckpointLeasedError);
      expect(await store.countDataKeys({ kek: { kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' } })).toBe(2 * BATCH);

      // A's lease expires; B takes over and resumes from A's cursor.
      await sleep(TTL + 300);
      const report = await rotateKek({ store, to: keks.v2, batchSize: BATCH, leaseTtlMs: TTL });
      expect(report).toMatchObject({ resumed: true, failed: [], aborted: false, rewrapped: KEYS - 2 * BATCH });
      expect(report.takenOver?.owner).toBe(held!.lease!.owner);
      expect(await store.getCheckpoint(name)).toBeUndefined();
      const summary = (await store.listAudit({ after: head.seq, event: 'kek.rotate' })).at(-1);
      expect(summary?.details).toMatchObject({ takenOver: held!.lease!.owner, resumed: true, to: '2', from: null });

      // A comes back: its lease is gone, it stops without writing.
      a.child.kill('SIGCONT');
      const ended = await a.exit;
      expect(ended.code).toBe(1);
      expect(ended.lines).toContain('error UNAVAILABLE');

      // Every key on v2, written exactly once (revision 2), opening to its bytes; the audit names each key once.
      const all = await store.listDataKeys({ limit: 10_000 });
      expect(all.every((k) => k.wrapped?.keyVersion === '2' && k.revision === 2)).toBe(true);
      expect(await countOpening(store, keks.v2, plain)).toBe(KEYS);
      const ids = (await store.listAudit({ event: 'kek.rewrap', limit: 10_000 })).flatMap((e) => e.details.ids as string[]);
      expect(ids).toHaveLength(KEYS);
      expect(new Set(ids).size).toBe(KEYS);
      expect((await store.verifyAudit()).ok).toBe(true);
    } finally {
      a.child.kill('SIGKILL');
      await store.close();
    }
  });
});
