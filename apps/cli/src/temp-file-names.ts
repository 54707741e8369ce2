/**
 * Names of the temporary files output is written to before it is renamed into place, and the removal of stale ones.
 *
 * A temporary file is `.<target name>.<host tag>.<pid>.<random>.keyfold-tmp` in the target's directory. A run that
 * was killed where no handler runs (SIGKILL, power loss) leaves it behind, possibly full of plaintext; the next write
 * to the same target removes it, but only when it is certainly a leftover of this kind, never another run's live
 * file: same target name, written on this host (the tag is a hash of the host name), by a process that no longer
 * exists, a regular file (not a link) owned by the user running now. Anything else, including temporary files named
 * by older versions (without host and pid), is left alone.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

const SUFFIX = '.keyfold-tmp';

/** 8 hex digits identifying this host, so a pid is only ever judged on the host that wrote it. */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** The part after the target's prefix: `<pid>.<12 hex digits>`. */
const OWNER_AND_RANDOM = /^([1-9][0-9]{0,9})\.[0-9a-f]{12}$/;

function prefixFor(targetName: string): string {
  return `.${targetName}.${HOST_TAG}.`;
}

/** A fresh temporary file name for the target named `targetName` (its base name), for this process. */
export function tempFileName(targetName: string): string {
  return `${prefixFor(targetName)}${process.pid}.${randomBytes(6).toString('hex')}${SUFFIX}`;
}

/** True while a process with this pid exists (EPERM: it exists, under another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes, in `dir`, the temporary files of earlier runs for the target `targetName` whose process is gone (see the
 * module comment for the rules). Best effort: a file that cannot be examined or removed is left, never an error.
 * @returns the names removed.
 */
export async function removeStaleTempFiles(dir: string, targetName: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const prefix = prefixFor(targetName);
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(SUFFIX)) continue;
    const owner = OWNER_AND_RANDOM.exec(name.slice(prefix.length, name.length - SUFFIX.length));
    if (owner === null) continue;
    const pid = Number(owner[1]);
    if (pid === process.pid || processExists(pid)) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
      await unlink(path);
      removed.push(name);
    } catch {
      // Gone meanwhile, or not ours to remove.
    }
  }
  return removed;
}
