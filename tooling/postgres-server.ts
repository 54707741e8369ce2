/**
 * A throwaway PostgreSQL server for tests and benchmarks: a fresh cluster in a temporary directory, listening on a
 * Unix socket in that directory and on a free TCP port of 127.0.0.1 only, with `fsync=off` (the data is thrown
 * away). Stopped and deleted by `stop()`.
 *
 * The binaries are looked up in /usr/lib/postgresql/<version>/bin (not on PATH on Debian). When they are missing
 * and we are root, `apt-get install postgresql` provides them; otherwise it fails with a message saying what to
 * install. `initdb` refuses to run as root, so as root the cluster is created and run as the `postgres` user
 * (`runuser`), in a directory that user owns.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PostgresServer {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** Directory holding the Unix socket. */
  readonly socketDir: string;
  stop(): Promise<void>;
}

function findBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  const preferred = versions.includes('15') ? '15' : versions[0];
  return preferred === undefined ? undefined : join(root, preferred, 'bin');
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function installPostgres(): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-q', 'postgresql'], { stdio: 'pipe', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { stdio: 'pipe', env });
    r = spawnSync('apt-get', ['install', '-y', '-q', 'postgresql'], { stdio: 'pipe', env });
  }
  if (r.status !== 0) throw new Error(`apt-get install postgresql failed:\n${String(r.stderr)}`);
}

/** A 127.0.0.1 port that was free a moment ago (for a server to listen on, or as one nothing listens on). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway cluster.
 * @throws Error with what to install when PostgreSQL is missing and cannot be installed.
 */
export async function startPostgres(): Promise<PostgresServer> {
  let bin = findBinDir();
  if (!bin && isRoot()) {
    installPostgres();
    bin = findBinDir();
  }
  if (!bin) {
    throw new Error(
      'PostgreSQL server binaries were not found in /usr/lib/postgresql/<version>/bin. Install them ' +
        '(Debian/Ubuntu: apt-get install postgresql) to run the PostgreSQL key store tests.',
    );
  }
  const asRoot = isRoot();
  const dir = mkdtempSync(join(tmpdir(), 'keyfold-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  let uid = -1;
  let gid = -1;
  if (asRoot) {
    uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]): void => {
    const full = join(bin, cmd);
    const r = asRoot
      ? spawnSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe', cwd: dir })
      : spawnSync(full, args, { stdio: 'pipe', cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} failed (${String(r.status)}):\n${String(r.stdout)}${String(r.stderr)}`);
  };
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
    const port = await freePort();
    const opts = [
      `-p ${port}`,
      `-k ${dir}`,
      "-c listen_addresses='127.0.0.1'",
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c max_connections=60',
      '-c shared_buffers=128MB',
    ].join(' ');
    run('pg_ctl', ['-D', data, '-l', log, '-o', opts, '-w', '-t', '60', 'start']);
    let stopped = false;
    return {
      url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
      port,
      socketDir: dir,
      stop: () => {
        if (stopped) return Promise.resolve();
        stopped = true;
        try {
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        return Promise.resolve();
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
