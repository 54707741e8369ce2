/**
 * Crash safety (issue 4): a child process runs rotateKek over 100,000 keys and is SIGKILLed at 10 random moments;
 * after each restart it resumes; at the end every key opens to the same bytes, none is lost, all are on the target,
 * and the audit log names every key exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { checkpointName } from '../src/index.js';
import { countOpening, fixture, freshPath, makeKeks, seedKeys, sqliteStore } from './helpers.js';

const KEYS = 100_000;
const KILLS = 10;

interface Run {
  child: ChildProcess;
  /** Resolves on the first `batch` line (the rotation is writing). */
  writing: Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; report: string | undefined }>;
}

function start(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [fixture('rotate-child.mjs')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let report: string | undefined;
  let stderr = '';
  let onWriting: () => void = () => undefined;
  const writing = new Promise<void>((resolve) => (onWriting = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'batch') onWriting();
    if (line.startsWith('report ')) report = line.slice(7);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; report: string | undefined }>((resolve) =>
    child.on('exit', (code, signal) => {
      onWriting();
      if (code !== 0 && signal === null) process.stderr.write(stderr);
      resolve({ code, signal, report });
    }),
  );
  return { child, writing, exit };
}

describe('rotateKek crash safety', () => {
  it(`survives ${KILLS} SIGKILLs at random moments over ${KEYS.toLocaleString('en-US')} keys: resumes, loses nothing, re-wraps each key once`, async () => {
    const path = freshPath();
    const keks = makeKeks();
    const store = await sqliteStore(path);
    const plain = await seedKeys(store, keks.v1, KEYS);
    await store.close();
    const env = { KF_STORE: path, KF_KEK_V1: keks.env.KEYFOLD_KEK_V1!, KF_KEK_V2: keks.env.KEYFOLD_KEK_V2!, KF_BATCH: '500' };

    let kills = 0;
    let finished: string | undefined;
    for (let attempt = 0; attempt < KILLS * 3 && kills < KILLS; attempt++) {
      const run = start(env);
      await run.writing;
      // A random moment while batches are being written: anywhere in the next ~5 batches.
      await new Promise((r) => setTimeout(r, randomInt(0, 120)));
      const killed = run.child.kill('SIGKILL');
      const result = await run.exit;
      if (result.signal === 'SIGKILL' && killed) kills++;
      else if (result.code === 0) {
        finished = result.report;
        break;
      } else throw new Error(`the rotation child failed with exit code ${String(result.code)}`);
    }
    expect(kills).toBe(KILLS);

    // Restart after the last kill: it resumes from the checkpoint and finishes.
    const last = finished === undefined ? await start(env).exit : { code: 0, signal: null, report: finished };
    expect(last.code).toBe(0);
    const report = JSON.parse(last.report!) as { resumed: boolean; failed: unknown[]; aborted: boolean };
    expect(report.failed).toEqual([]);
    expect(report.aborted).toBe(false);
    expect(report.resumed).toBe(true);

    const after = await sqliteStore(path);
    try {
      expect(await after.countDataKeys()).toBe(KEYS);
      expect(await after.countDataKeys({ kek: { kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' } })).toBe(KEYS);
      expect(await countOpening(after, keks.v2, plain)).toBe(KEYS);
      // Every batch committed with its audit entry: the log names each key exactly once, across all the runs.
      const seen = new Map<string, number>();
      for (let after_ = 0; ; ) {
        const page = await after.listAudit({ after: after_, event: 'kek.rewrap', limit: 1000 });
        for (const e of page) for (const id of e.details.ids as string[]) seen.set(id, (seen.get(id) ?? 0) + 1);
        if (page.length < 1000) break;
        after_ = page[page.length - 1]!.seq;
      }
      expect(seen.size).toBe(KEYS);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
      const revisions = await after.listDataKeys({ limit: 100_000 });
      expect(revisions.every((k) => k.revision === 2)).toBe(true);
      expect((await after.verifyAudit()).ok).toBe(true);
      expect(await after.getCheckpoint(checkpointName({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' }))).toBeUndefined();
    } finally {
      await after.close();
    }
  }, 240_000);
});
