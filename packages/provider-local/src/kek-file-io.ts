/**
 * Reading and writing the KEK file safely: permission checks, a size limit before reading, an exclusive lock
 * for read-modify-write, and atomic replacement (temp file 0600 in the same directory, fsync, rename, fsync of the
 * directory), so a crash or a concurrent writer never leaves a half-written KEK file and never loses a key.
 * @module
 */
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ConfigError,
  KeyfoldError,
  LimitExceededError,
  ProviderError,
  assertPrivatePath,
  writeFileAtomic,
  type SecurityMode,
} from '@keyfold/envelope-core';
import { KEK_FILE_NAME, MAX_KEK_FILE_BYTES, parseKekFile, serializeKekFile, type KekFileDocument } from './kek-file-format.js';

/** Path of the KEK file in `dir`. */
export function kekFilePath(dir: string): string {
  return join(dir, KEK_FILE_NAME);
}

/**
 * Checks `dir` is a directory private to its owner (in production), creating it with mode 0700 when `create` is set
 * and it does not exist.
 * @throws PolicyError (`INSECURE_PERMISSIONS`) / ConfigError from `assertPrivatePath`.
 */
export async function assertKeyDirectory(dir: string, securityMode: SecurityMode, create = false): Promise<void> {
  if (create) await mkdir(dir, { recursive: true, mode: 0o700 });
  assertPrivatePath(dir, { what: 'key directory', type: 'directory', securityMode });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ConfigError(`${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
}

/** True when `dir` holds a KEK file. */
export function kekFileExists(dir: string): Promise<boolean> {
  return exists(kekFilePath(dir));
}

/**
 * Reads and parses the KEK file of `dir`, after checking the directory (0700) and file (0600) permissions in
 * production and the file size.
 * @throws ConfigError when there is no KEK file; PolicyError for loose permissions; FormatError /
 *   UnsupportedFormatError for a malformed file; LimitExceededError for an oversized one.
 */
export async function readKekFile(dir: string, securityMode: SecurityMode): Promise<{ path: string; doc: KekFileDocument }> {
  await assertKeyDirectory(dir, securityMode);
  const path = kekFilePath(dir);
  if (!(await exists(path))) {
    throw new ConfigError(`no KEK file in ${dir}: create one with initKekFile({ dir, passphrase }) (or \`keyfold init\`)`);
  }
  assertPrivatePath(path, { what: 'KEK file', type: 'file', securityMode });
  const fh = await open(path, 'r');
  let text: string;
  try {
    const st = await fh.stat();
    if (st.size > MAX_KEK_FILE_BYTES) throw new LimitExceededError(`${path} is ${st.size} bytes; a KEK file is at most ${MAX_KEK_FILE_BYTES}`);
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  return { path, doc: parseKekFile(text, path) };
}

/**
 * Runs `fn` holding the KEK file lock of `dir`, so two writers never interleave their read-modify-write: writers in
 * this process wait their turn; across processes a `keyring.json.lock` file created exclusively (O_EXCL) is the
 * lock, removed when `fn` settles. Every writer of a KEK file (the provider's `rotate`, the administration
 * functions, the CLI putting a KEK file back after a failed `kek add`) takes this one lock.
 * @throws ProviderError (`UNAVAILABLE`) when another process holds the lock; ConfigError when the lock file cannot
 *   be created; whatever `fn` throws.
 * @example
 * ```ts
 * await withKekFileLock(dir, async () => { await writeFileAtomic(join(dir, KEK_FILE_NAME), before, { mode: 0o600 }); });
 * ```
 */
export async function withKekFileLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  // Writers in this process queue behind each other; the lock file then guards against other processes.
  const key = resolve(dir);
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.then(() => withLockFile(dir, fn));
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, tail);
  try {
    return await run;
  } finally {
    if (queues.get(key) === tail) queues.delete(key);
  }
}

/** The tail of the queue of writers per KEK file directory in this process. */
const queues = new Map<string, Promise<void>>();

async function withLockFile<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${kekFilePath(dir)}.lock`;
  let fh;
  try {
    fh = await open(lockPath, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ProviderError(
        'UNAVAILABLE',
        `the KEK file in ${dir} is being changed by another process (${lockPath} exists); retry when it has finished, ` +
          'or delete the lock file if no keyfold process is running',
        { cause: err },
      );
    }
    throw new ConfigError(`cannot create ${lockPath}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  try {
    await fh.writeFile(`${process.pid}\n`);
  } finally {
    await fh.close();
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

/**
 * Atomically replaces (or creates) the KEK file of `dir` with `doc`, through the core's `writeFileAtomic` (temp
 * file 0600, fsync, rename, fsync of the directory). Call it holding the lock.
 * On any failure the previous file is untouched and the temp file is removed.
 */
export async function writeKekFile(dir: string, doc: KekFileDocument): Promise<void> {
  const path = kekFilePath(dir);
  try {
    await writeFileAtomic(path, serializeKekFile(doc), { mode: 0o600 });
  } catch (err) {
    if (err instanceof KeyfoldError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ProviderError(
      code === 'EACCES' || code === 'EPERM' ? 'ACCESS_DENIED' : 'UNAVAILABLE',
      `writing ${path} failed (${code ?? 'error'}); the KEK file is unchanged`,
      { cause: err },
    );
  }
}
