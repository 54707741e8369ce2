/**
 * Ctrl-C during `keyfold kek rotate` on the embedded SQLite store with an env KEK: the rotation stops after the
 * batch in progress with exit 130 and says how to resume, every key still opens (part of them under the old KEK
 * version, part under the new one), and the next run resumes and re-wraps exactly the rest.
 *
 * Ctrl-C is typed on a pseudo-terminal once the progress bar shows the run under way (./rotate-interrupt.ts), on a
 * store seeded with enough keys that the run takes far longer than the signal needs to arrive. (The PostgreSQL
 * variant is in store-postgres.test.ts.)
 */
import { join } from 'node:path';
import { openSqliteKeyStore } from '@keyfold/keystore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir } from './helpers.js';
import { ctrlCDuringRotate, requireScript } from './rotate-interrupt.js';
import { countIntact, envKeks, seedDataKeys } from './seed.js';

/** Seeded keys; with `--batch-size 25` that is 1,200 batches, each its own transaction. */
const SEEDED = 30_000;
/** The tenant key `tenant create` adds on top of the seeded ones. */
const TOTAL = SEEDED + 1;

let work: string;
beforeAll(() => {
  requireScript();
  work = makeTempDir();
});
afterAll(() => removeDir(work));

describe('Ctrl-C during keyfold kek rotate', () => {
  it('stops after the batch in progress (exit 130), leaves every key opening, and the next run finishes the rest', async () => {
    const dir = join(work, 'kf');
    const kek = envKeks();
    const v1Only = { KEYFOLD_KEK_V1: kek.KEYFOLD_KEK_V1 };
    const run = (args: string[], env: Record<string, string>, input?: string | Buffer) =>
      keyfold([...args, '--dir', dir], { env, ...(input === undefined ? {} : { input }) });
    const json = (args: string[], env: Record<string, string>): ReturnType<typeof JSON.parse> => {
      const r = run([...args, '--json'], env);
      expect(r.status, r.stderr + r.out).toBe(0);
      return JSON.parse(r.out);
    };

    // An env-KEK installation (v1 only), a tenant with a sealed message, and SEEDED keys stored directly.
    expect(run(['init', '--provider', 'env'], v1Only).status).toBe(0);
    expect(run(['tenant', 'create', '--tenant', 'acme'], v1Only).status).toBe(0);
    const sealed = run(['encrypt', '--tenant', 'acme', '--armor'], v1Only, 'sealed before the rotation');
    expect(sealed.status, sealed.stderr).toBe(0);
    const storePath = join(dir, 'keystore.db');
    let store = await openSqliteKeyStore({ path: storePath, securityMode: 'production' });
    let seeded: Uint8Array;
    try {
      seeded = await seedDataKeys(store, kek, SEEDED);
    } finally {
      await store.close();
    }

    // KEYFOLD_KEK_V2 appears and is made the store's active version: `kek rotate` re-wraps onto it. Ctrl-C once the
    // bar shows the run under way.
    expect(json(['kek', 'activate', '--kek-version', '2'], kek)).toMatchObject({ from: '1', to: '2' });
    const { status: exit, text, typedAt, rewrapped } = await ctrlCDuringRotate({ dir, cwd: work, env: kek, batchSize: 25 });
    expect(typedAt, text).toBeDefined();
    expect(typedAt?.total).toBe(TOTAL);
    // Most of the run was still ahead when Ctrl-C was typed, so a run that ignored it would have exited 0.
    expect(typedAt?.done).toBeLessThan(TOTAL / 4);
    expect(exit, text).toBe(130);
    expect(text).toContain('interrupted: finishing the batch in progress (Ctrl-C again to stop at once)');
    expect(text).toContain('Interrupted: the batches done are saved; run the command again to resume.');
    expect(text).not.toContain('Every key is on the target version.');
    expect(rewrapped, text).toBeDefined();
    const rewrappedFirst = rewrapped ?? Number.NaN;
    expect(rewrappedFirst).toBeGreaterThanOrEqual(typedAt?.done ?? Infinity);
    expect(rewrappedFirst).toBeLessThan(TOTAL);
    expect(rewrappedFirst % 25).toBe(0); // whole batches only

    // Consistent in between: the store knows the interrupted rotation, every key unwraps to its key check value,
    // the split between the versions is what the run reported, and the audit chain verifies.
    const status = json(['status'], kek);
    expect(status.store.interruptedRotations).toHaveLength(1);
    expect(status.store.interruptedRotations[0].processed).toBe(rewrappedFirst);
    const versions = (list: { versions: { version: string; keys: { active: number } }[] }) =>
      Object.fromEntries(list.versions.map((v) => [v.version, v.keys.active]));
    expect(versions(json(['kek', 'list'], kek))).toEqual({ '1': TOTAL - rewrappedFirst, '2': rewrappedFirst });
    expect(json(['kek', 'verify'], kek)).toMatchObject({ ok: true, checked: TOTAL, failed: [] });
    expect(json(['audit', 'verify'], kek)).toMatchObject({ ok: true });

    // The next run resumes from the checkpoint and re-wraps exactly the rest; a third has nothing to do.
    expect(json(['kek', 'rotate'], kek)).toMatchObject({ ok: true, aborted: false, resumed: true, rewrapped: TOTAL - rewrappedFirst, failed: [] });
    expect(json(['kek', 'rotate'], kek)).toMatchObject({ ok: true, rewrapped: 0, skipped: TOTAL });
    expect(versions(json(['kek', 'list'], kek))).toEqual({ '1': 0, '2': TOTAL });
    expect(json(['status'], kek).store.interruptedRotations).toEqual([]);
    expect(json(['kek', 'verify'], kek)).toMatchObject({ ok: true, checked: TOTAL, failed: [] });
    expect(json(['audit', 'verify'], kek)).toMatchObject({ ok: true });

    // Nothing lost: every seeded key opens to the very bytes it was created with, and the tenant's data opens.
    store = await openSqliteKeyStore({ path: storePath, securityMode: 'production' });
    try {
      expect(await countIntact(store, kek, seeded)).toEqual({ intact: SEEDED, byVersion: { '2': SEEDED } });
    } finally {
      await store.close();
    }
    const opened = run(['decrypt', '--tenant', 'acme'], kek, sealed.stdout);
    expect(opened.status, opened.stderr).toBe(0);
    expect(opened.out).toBe('sealed before the rotation');
  });
});
