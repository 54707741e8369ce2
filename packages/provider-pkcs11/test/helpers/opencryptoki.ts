/**
 * openCryptoki's soft token, for the one behaviour SoftHSM2 does not have: it locks the user PIN after three wrong
 * attempts (CKF_USER_PIN_LOCKED, then CKR_PIN_LOCKED from C_Login). Needs its slot daemon, pkcsslotd, which is
 * started here if it is not running (as root, as in CI) and stopped again afterwards if we started it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { OPENCRYPTOKI_LIBRARY, type TestToken } from './hsm.js';

/** The soft token's slot in the stock /etc/opencryptoki/opencryptoki.conf. */
export const SOFT_TOKEN_SLOT = 3;
/** openCryptoki's documented initial SO PIN. */
const DEFAULT_SO_PIN = '87654321';
const PID_FILE = '/var/run/pkcsslotd.pid';

/** True when `pid` is a live process (not gone, not a zombie waiting for a parent that never reaps it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function daemonPid(): number | undefined {
  if (!existsSync(PID_FILE)) return undefined;
  const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Polls `check` every 50 ms for up to 10 s (the daemon writes its pid file after it has forked). */
function waitFor<T>(check: () => T | undefined): T | undefined {
  for (let i = 0; i < 200; i++) {
    const v = check();
    if (v !== undefined) return v;
    sleepSync(50);
  }
  return undefined;
}

/** Starts pkcsslotd if needed. Returns a function that stops it again when this call started it. */
export function ensureSlotDaemon(): () => void {
  if (daemonPid() !== undefined) return () => undefined;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('the locked-token test needs openCryptoki\'s pkcsslotd running; start it as root: /usr/sbin/pkcsslotd');
  }
  if (!existsSync('/var/lock/opencryptoki/swtok')) {
    spawnSync('systemd-tmpfiles', ['--create', '/usr/lib/tmpfiles.d/opencryptoki.conf'], { stdio: 'ignore' });
  }
  execFileSync('/usr/sbin/pkcsslotd', { stdio: 'ignore' });
  const pid = waitFor(daemonPid);
  if (pid === undefined) throw new Error('pkcsslotd did not start (see /var/log/opencryptoki and syslog)');
  return () => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    waitFor(() => (alive(pid) ? undefined : true));
  };
}

function tool(args: readonly string[]): void {
  execFileSync('pkcs11-tool', ['--module', OPENCRYPTOKI_LIBRARY, '--slot', String(SOFT_TOKEN_SLOT), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/**
 * (Re)initialises the soft token with a fresh label and user PIN: C_InitToken with the SO PIN clears its objects and
 * any PIN lock left by an earlier run.
 */
export function resetSoftToken(label: string, pin: string): TestToken {
  try {
    tool(['--init-token', '--label', label, '--so-pin', DEFAULT_SO_PIN]);
    tool(['--login', '--login-type', 'so', '--so-pin', DEFAULT_SO_PIN, '--init-pin', '--new-pin', pin]);
  } catch (err) {
    throw new Error(
      `could not initialise openCryptoki's soft token in slot ${SOFT_TOKEN_SLOT} with its default SO PIN; ` +
        `was its SO PIN changed on this machine? (${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)})`,
    );
  }
  return { label, soPin: DEFAULT_SO_PIN, pin };
}
