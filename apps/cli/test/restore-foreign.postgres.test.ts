/**
 * `keyfold restore` into a PostgreSQL key store refuses a backup of another installation before it writes anything
 * (a PostgreSQL restore commits as it goes, so the check runs on a private scratch copy first), through the built
 * CLI on a throwaway PostgreSQL server this file starts (tooling/postgres-server.ts) and stops.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../../../tooling/postgres-server.js';
import { keyfold, makeTempDir, removeDir, type RunOptions } from './helpers.js';

let server: PostgresServer;
let work: string;
const KEKS = { KEYFOLD_KEK_V1: 'a1'.repeat(32), OTHER_V1: 'b2'.repeat(32) };
const run = (args: string[], options: RunOptions = {}) => keyfold(args, { cwd: work, ...options, env: { ...KEKS, ...options.env } });

function psql(statement: string): string {
  const root = '/usr/lib/postgresql';
  const version = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'psql'))).sort((a, b) => Number(b) - Number(a))[0] ?? '';
  const r = spawnSync(join(root, version, 'bin', 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-d', 'postgres', '-c', statement], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  return r.stdout.trim();
}

beforeAll(async () => {
  server = await startPostgres();
  work = makeTempDir('keyfold-restore-pg-');
  for (const [dir, prefix] of [['mine', 'KEYFOLD_KEK_V'], ['theirs', 'OTHER_V']] as const) {
    const r = run(['init', '--provider', 'env', '--prefix', prefix, '--dir', join(work, dir), '--store', server.url, '--store-schema', `kf_${dir}`]);
    expect(r.status, r.stderr).toBe(0);
    const b = run(['backup', '--out', join(work, `${dir}.backup`), '--dir', join(work, dir)]);
    expect(b.status, b.stderr).toBe(0);
  }
  // The installation's store is to be restored into a new, empty schema.
  const config = JSON.parse(readFileSync(join(work, 'mine', 'config.json'), 'utf8')) as { store: { schema: string } };
  config.store.schema = 'kf_restored';
  writeFileSync(join(work, 'mine', 'config.json'), JSON.stringify(config), { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) removeDir(work);
});

const tablesIn = (schema: string): number => Number(psql(`SELECT count(*) FROM information_schema.tables WHERE table_schema = '${schema}'`));

describe('keyfold restore on PostgreSQL', () => {
  it('a backup of another installation: exit 3, PROVIDER_MISMATCH, nothing written to the database', () => {
    const r = run(['restore', '--in', join(work, 'theirs.backup'), '--dir', join(work, 'mine')]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/is a backup of another installation: its install lock is env:OTHER but .*env:KEYFOLD_KEK.*\[PROVIDER_MISMATCH\]\n$/);
    expect(tablesIn('kf_restored')).toBe(0);
  });

  it("the installation's own backup restores", () => {
    const r = run(['restore', '--in', join(work, 'mine.backup'), '--dir', join(work, 'mine')]);
    expect(r.status, r.stderr).toBe(0);
    expect(tablesIn('kf_restored')).toBeGreaterThan(0);
    const s = run(['kek', 'list', '--dir', join(work, 'mine'), '--json']);
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(s.out)).toMatchObject({ installLock: { kind: 'env', keyId: 'KEYFOLD_KEK' } });
  });
});
