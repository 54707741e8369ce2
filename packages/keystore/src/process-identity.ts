/**
 * Who this process is, for the process registry and the checkpoint leases: host, pid, start time, and a machine
 * token that tells whether another record's process ran on this machine in this pid namespace (so its pid can be
 * checked for liveness here).
 *
 * Rule, and why it holds: a lease or record is judged dead from its pid only when its machine token equals this
 * process's (same kernel boot, same pid namespace, same host name) and no process with that pid exists. Anything
 * else (another machine, another container, a platform without the token) is judged by expiry alone, so a live
 * worker elsewhere is never taken for dead.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

let token: string | undefined | null = null;

/** A 16-hex-digit token of this machine, boot and pid namespace, or `undefined` where it cannot be told (not Linux). */
export function machineToken(): string | undefined {
  if (token !== null) return token;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const pidNs = readlinkSync('/proc/self/ns/pid');
    token = createHash('sha256').update(`${hostname()}\u0000${boot}\u0000${pidNs}`).digest('hex').slice(0, 16);
  } catch {
    token = undefined;
  }
  return token;
}

/** The host name as records show it (control characters replaced, at most 255 characters). */
export function hostName(): string {
  const h = hostname().replace(/[\u0000-\u001f\u007f/]/g, '_').slice(0, 255);
  return h === '' ? 'unknown' : h;
}

/** When this process started (ISO 8601 UTC, to the second). */
export function processStartedAt(): string {
  return new Date(Math.floor((Date.now() - process.uptime() * 1000) / 1000) * 1000).toISOString();
}

/**
 * A lease owner id for this process: `<host>/<pid>/<machine token or ->/<random>`. Unique per call.
 * @example
 * ```ts
 * const owner = checkpointLeaseOwner(); // 'db-worker-2/4711/9f2c4e1a0b3d5e7f/5c1e...'
 * ```
 */
export function checkpointLeaseOwner(): string {
  return `${hostName()}/${process.pid}/${machineToken() ?? '-'}/${randomBytes(8).toString('hex')}`;
}

/** Whether a process with this pid runs here (EPERM: it runs, under another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when `owner` (a {@link checkpointLeaseOwner} id) names a process of this machine and pid namespace that no
 * longer runs. False whenever that cannot be told.
 * @example
 * ```ts
 * await store.claimCheckpoint({ name, owner, ttlMs, isDead: leaseOwnerIsDead });
 * ```
 */
export function leaseOwnerIsDead(owner: string): boolean {
  const parts = owner.split('/');
  if (parts.length !== 4) return false;
  const [, pidText, machine] = parts;
  const mine = machineToken();
  if (mine === undefined || machine !== mine || !/^[1-9][0-9]{0,9}$/.test(pidText ?? '')) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return false;
  return !pidAlive(pid);
}
