/**
 * Rotation throughput (issue 4): `rotateKek` re-wrapping 1,000,000 data keys (100,000 with --quick) from KEK
 * version 1 to version 2 of the env provider, on SQLite (one process, and two processes sharing the file by shard)
 * and on a throwaway PostgreSQL server (one worker, and four worker processes leasing rows with SKIP LOCKED).
 *
 * Every configuration runs in child processes that open the store, report `ready`, and start together on `go`;
 * the figure is keys / (time from `go` to the last worker's report), so process start-up and store opening are
 * not counted. Each key is unwrapped, checked, wrapped, and unwrapped again to verify before it is written.
 * @module
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  dataKeyContext,
  keyCheckValue,
  openPostgresKeyStore,
  openSqliteKeyStore,
  type DataKeyRecord,
  type KeyStore,
  type NewDataKey,
} from '@keyfold/keystore';
import { createEnvProvider } from '@keyfold/provider-local';
import { startPostgres, type PostgresServer } from '../../../postgres-server.js';
import { fmtNum, fmtRate, type Table } from '../report.js';

/** Target from the issue: keys per second on SQLite. */
export const SQLITE_TARGET = 25_000;

export interface RotationBenchOptions {
  /** Keys to rotate: 1,000,000 for the full run, 100,000 with --quick. */
  readonly keys: number;
  /** True for --quick (noted in the report). */
  readonly quick: boolean;
  /** Keys per transaction. Default 1000. */
  readonly batchSize?: number;
}

export interface RotationRun {
  readonly backend: 'sqlite' | 'postgres';
  readonly workers: number;
  readonly mode: string;
  readonly keys: number;
  readonly rewrapped: number;
  readonly seconds: number;
  readonly keysPerSecond: number;
  readonly perWorker: readonly number[];
  readonly error?: string;
}

/** What the section returns: the shape of the bench's `SectionResult`, with its own id. */
export interface RotationSectionResult {
  readonly id: 'rotation';
  readonly title: string;
  readonly notes: readonly string[];
  readonly tables: readonly Table[];
  readonly targets: readonly [];
  readonly data: { readonly keys: number; readonly quick: boolean; readonly runs: readonly RotationRun[]; readonly targetKeysPerSecond: number };
}

const here = dirname(fileURLToPath(import.meta.url));

/** The bench package directory (where `@keyfold/*` resolve for the child processes). */
function benchDir(): string {
  // src/sections (tsc, tests) or dist (bundled run.js).
  return here.endsWith(join('src', 'sections')) ? resolve(here, '..', '..') : resolve(here, '..');
}

/** The worker: opens the store, says `ready`, waits for `go`, rotates, prints `report <json>`. */
const CHILD = `
import { createEnvProvider } from '@keyfold/provider-local';
import { openPostgresKeyStore, openSqliteKeyStore } from '@keyfold/keystore';
import { rotateKek } from '@keyfold/rotation';
const env = process.env;
const store = env.KF_PG_URL
  ? await openPostgresKeyStore({ connectionString: env.KF_PG_URL, schema: env.KF_PG_SCHEMA, maxConnections: 2 })
  : await openSqliteKeyStore({ path: env.KF_STORE, integrityCheck: false });
const to = createEnvProvider({ env: { KEYFOLD_KEK_V1: env.KF_KEK_V1, KEYFOLD_KEK_V2: env.KF_KEK_V2 }, activeVersion: 2 });
process.stdout.write('ready\\n');
await new Promise((r) => process.stdin.once('data', r));
const shard = env.KF_SHARD ? { index: Number(env.KF_SHARD.split('/')[0]), count: Number(env.KF_SHARD.split('/')[1]) } : undefined;
const report = await rotateKek({ store, to, batchSize: Number(env.KF_BATCH), ...(env.KF_WORKER ? { workerId: env.KF_WORKER } : {}), ...(shard ? { shard } : {}) });
process.stdout.write('report ' + JSON.stringify({ rewrapped: report.rewrapped, failed: report.failed.length }) + '\\n');
await store.close();
await to.close();
process.exit(0);
`;

interface Child {
  ready: Promise<void>;
  done: Promise<{ rewrapped: number; failed: number }>;
  go(): void;
}

function startChild(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    cwd: benchDir(),
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  let report: { rewrapped: number; failed: number } | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') onReady();
    if (line.startsWith('report ')) report = JSON.parse(line.slice(7)) as { rewrapped: number; failed: number };
  });
  const done = new Promise<{ rewrapped: number; failed: number }>((res, rej) =>
    child.on('exit', (code) => {
      onReady();
      if (code === 0 && report) res(report);
      else rej(new Error(`rotation worker exited with ${String(code)}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    }),
  );
  return { ready, done, go: () => child.stdin.end('go\n') };
}

async function runWorkers(envs: readonly Record<string, string>[]): Promise<{ seconds: number; perWorker: number[] }> {
  const children = envs.map(startChild);
  await Promise.all(children.map((c) => c.ready));
  const t0 = performance.now();
  for (const c of children) c.go();
  const reports = await Promise.all(children.map((c) => c.done));
  const seconds = (performance.now() - t0) / 1000;
  if (reports.some((r) => r.failed > 0)) throw new Error('some keys failed to re-wrap');
  return { seconds, perWorker: reports.map((r) => r.rewrapped) };
}

/** Seeds `keys` data keys wrapped under V1 into an SQLite store (the crypto is done once; other stores copy rows). */
async function seedSqlite(path: string, kek: { v1: string; v2: string }, keys: number): Promise<void> {
  const store = await openSqliteKeyStore({ path, create: true, synchronous: 'normal' });
  const v1 = createEnvProvider({ env: { KEYFOLD_KEK_V1: kek.v1, KEYFOLD_KEK_V2: kek.v2 }, activeVersion: 1 });
  try {
    await store.ensureInstallLock(v1, 'bench');
    const all = randomBytes(32 * 10_000);
    for (let b = 0; b < keys; b += 10_000) {
      const batch: NewDataKey[] = [];
      for (let i = b; i < Math.min(keys, b + 10_000); i++) {
        const id = `k${String(i).padStart(8, '0')}`;
        const owner = `table:bench:${i}`;
        const dk = new Uint8Array(all.subarray(32 * (i - b), 32 * (i - b) + 32));
        batch.push({ id, owner, version: 1, wrapped: await v1.wrapKey(dk, dataKeyContext({ id, owner })), keyCheck: keyCheckValue(dk) });
        dk.fill(0);
      }
      await store.insertDataKeys(batch);
    }
    all.fill(0);
  } finally {
    await v1.close();
    await store.close();
  }
}

async function copyRows(from: KeyStore, to: KeyStore): Promise<void> {
  const lock = await from.getInstallLock();
  if (lock) await to.ensureInstallLock(lock, 'bench');
  for (let after: string | undefined; ; ) {
    const page = await from.listDataKeys({ limit: 10_000, ...(after === undefined ? {} : { after }) });
    await to.insertDataKeys(
      page.map((k) => ({ id: k.id, owner: k.owner, version: k.version, wrapped: k.wrapped!, keyCheck: k.keyCheck! })),
    );
    if (page.length < 10_000) break;
    after = (page[page.length - 1] as DataKeyRecord).id;
  }
}

/**
 * Runs the rotation section.
 * @example
 * ```ts
 * const section = await runRotation({ keys: quick ? 100_000 : 1_000_000, quick });
 * ```
 */
export async function runRotation(opts: RotationBenchOptions): Promise<RotationSectionResult> {
  const keys = opts.keys;
  const batch = String(opts.batchSize ?? 1000);
  const kek = { v1: randomBytes(32).toString('hex'), v2: randomBytes(32).toString('hex') };
  const base = { KF_KEK_V1: kek.v1, KF_KEK_V2: kek.v2, KF_BATCH: batch };
  const dir = mkdtempSync(join(tmpdir(), 'keyfold-bench-rot-'));
  const runs: RotationRun[] = [];
  const notes: string[] = [];
  let pg: PostgresServer | undefined;
  const record = (backend: RotationRun['backend'], workers: number, mode: string, r: { seconds: number; perWorker: number[] }): void => {
    const rewrapped = r.perWorker.reduce((s, n) => s + n, 0);
    runs.push({ backend, workers, mode, keys, rewrapped, seconds: r.seconds, keysPerSecond: rewrapped / r.seconds, perWorker: r.perWorker });
  };
  const failed = (backend: RotationRun['backend'], workers: number, mode: string, err: unknown): void => {
    const error = err instanceof Error ? err.message : String(err);
    runs.push({ backend, workers, mode, keys, rewrapped: 0, seconds: 0, keysPerSecond: 0, perWorker: [], error });
    notes.push(`NOT MEASURED: ${backend} ${mode}: ${error}`);
  };
  try {
    const seed = join(dir, 'seed.db');
    const t0 = performance.now();
    await seedSqlite(seed, kek, keys);
    notes.push(`seeded ${keys.toLocaleString('en-US')} keys under V1 in ${((performance.now() - t0) / 1000).toFixed(1)} s (not timed below)`);

    // SQLite, one process.
    try {
      const path = join(dir, 'one.db');
      copyFileSync(seed, path);
      record('sqlite', 1, '1 process', await runWorkers([{ ...base, KF_STORE: path }]));
    } catch (err) {
      failed('sqlite', 1, '1 process', err);
    }
    // SQLite, two processes, sharded.
    try {
      const path = join(dir, 'two.db');
      copyFileSync(seed, path);
      record('sqlite', 2, '2 processes (shards)', await runWorkers([0, 1].map((i) => ({ ...base, KF_STORE: path, KF_SHARD: `${i}/2` }))));
    } catch (err) {
      failed('sqlite', 2, '2 processes (shards)', err);
    }

    // PostgreSQL, 1 and 4 workers.
    try {
      pg = await startPostgres();
      const seedStore = await openSqliteKeyStore({ path: seed, integrityCheck: false });
      try {
        for (const workers of [1, 4]) {
          const schema = `bench_rot_${workers}`;
          const store = await openPostgresKeyStore({ connectionString: pg.url, schema, create: true });
          try {
            await copyRows(seedStore, store);
          } finally {
            await store.close();
          }
          try {
            const envs = Array.from({ length: workers }, (_, i) => ({ ...base, KF_PG_URL: pg!.url, KF_PG_SCHEMA: schema, KF_WORKER: `w${i + 1}` }));
            record('postgres', workers, workers === 1 ? '1 worker' : `${workers} workers (SKIP LOCKED)`, await runWorkers(envs));
          } catch (err) {
            failed('postgres', workers, `${workers} worker(s)`, err);
          }
        }
      } finally {
        await seedStore.close();
      }
    } catch (err) {
      failed('postgres', 0, 'server', err);
    }
  } finally {
    await pg?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }

  const sqliteOne = runs.find((r) => r.backend === 'sqlite' && r.workers === 1 && !r.error);
  const sqliteBest = Math.max(0, ...runs.filter((r) => r.backend === 'sqlite' && !r.error).map((r) => r.keysPerSecond));
  const table: Table = {
    title: `KEK rotation: ${keys.toLocaleString('en-US')} data keys, env provider V1 -> V2 (unwrap, check, wrap, verify, CAS write)`,
    columns: ['store', 'workers', 'seconds', 'keys/s', 'keys per worker'],
    rows: runs
      .filter((r) => !r.error)
      .map((r) => [r.backend === 'sqlite' ? 'SQLite (WAL, synchronous=FULL)' : 'PostgreSQL 15 (fsync=off)', r.mode, r.seconds.toFixed(2), fmtRate(r.keysPerSecond), r.perWorker.map((n) => fmtNum(n)).join(' / ')]),
  };
  const status = (v: number | undefined): string => (v === undefined ? 'N/A' : v >= SQLITE_TARGET ? 'PASS' : 'MISS');
  const targetTable: Table = {
    title: 'Target',
    columns: ['target', 'actual', 'wanted', 'status'],
    rows: [
      ['rotation on SQLite, 1 process', sqliteOne ? fmtRate(sqliteOne.keysPerSecond) : 'n/a', `>= ${fmtRate(SQLITE_TARGET)}`, status(sqliteOne?.keysPerSecond)],
      ['rotation on SQLite, best configuration', sqliteBest > 0 ? fmtRate(sqliteBest) : 'n/a', `>= ${fmtRate(SQLITE_TARGET)}`, status(sqliteBest > 0 ? sqliteBest : undefined)],
    ],
  };
  return {
    id: 'rotation',
    title: 'Rotation throughput',
    notes: [
      opts.quick
        ? `--quick: ${keys.toLocaleString('en-US')} keys instead of 1,000,000 (the rate is per key, so it compares; larger stores are a little slower)`
        : `${keys.toLocaleString('en-US')} keys`,
      'time from the start signal to the last worker finishing; process start and store opening are not counted',
      `batches of ${batch} keys: one transaction each with the writes, the checkpoint and one audit entry`,
      ...notes,
    ],
    tables: [table, targetTable],
    targets: [],
    data: { keys, quick: opts.quick, runs, targetKeysPerSecond: SQLITE_TARGET },
  };
}
