/**
 * `rotateKek`: re-wraps every data key of a key store under a target KEK version, without touching any data.
 *
 * Rules, and why they hold:
 * - Never loses a key: a key is unwrapped with its current KEK, its key check value is compared, it is wrapped under
 *   the target, and the new wrapped key is unwrapped again and compared (constant time) with the original before
 *   it is written. Anything that fails is left as it was and reported.
 * - Compare-and-swap: a write applies only if the key's revision is still the one read, so a concurrent writer
 *   (another worker, a tenant rotation) is never overwritten.
 * - Crash-safe and resumable: each batch's writes, its checkpoint and its audit entry commit in one transaction.
 *   A killed run leaves whole batches only; the next run resumes from the checkpoint cursor and then makes a pass
 *   from the start, so nothing behind the cursor is missed.
 * - Idempotent: only keys not yet under the target are leased, so a second run finds nothing to do.
 * - Several workers (PostgreSQL): leases use `FOR UPDATE SKIP LOCKED`, so workers re-wrap disjoint keys; each key
 *   is re-wrapped exactly once.
 * - Never reports a key as done that is not: a key the lease passed over because another transaction holds it locked
 *   (another worker's batch, an application's `SELECT ... FOR UPDATE`) is still under its old version. The run comes
 *   back for such keys until they are free (up to `lockWaitMs`); any still locked then are reported in `failed` with
 *   code `LOCKED`, so the run is not taken as complete and the old version cannot be retired before a re-run.
 * @module
 */
import {
  ConfigError,
  KeyfoldError,
  PolicyError,
  ProviderError,
  constantTimeEqual,
  wipe,
  type KeyProvider,
  type WrappedKey,
  assertKeyProvider,
} from '@keyfold/envelope-core';
import {
  checkpointLeaseOwner,
  dataKeyContext,
  kekName,
  keyCheckValue,
  leaseOwnerIsDead,
  type CheckpointLease,
  type DataKeyRecord,
  type KekRef,
  type KeyStore,
  type ProviderRef,
  type RewrapUpdate,
} from '@keyfold/keystore';
import { RotationNotReadyError, checkReadiness, type ReadinessReport } from './readiness.js';

/**
 * Progress of a run, passed to `onProgress` after every batch.
 * @example
 * ```ts
 * const onProgress = (p: RotationProgress) => bar.update(p.done / p.total, { rate: p.ratePerSecond });
 * ```
 */
export interface RotationProgress {
  readonly target: KekRef;
  /** Keys that were not under the target when the run started. */
  readonly total: number;
  /** Keys this run has dealt with (re-wrapped, failed or found done by another worker). */
  readonly done: number;
  readonly rewrapped: number;
  readonly failed: number;
  readonly elapsedMs: number;
  /** Keys dealt with per second so far. */
  readonly ratePerSecond: number;
}

/** A key that could not be re-wrapped, with the code of the error. Never key material. */
export interface RotationFailure {
  readonly id: string;
  readonly code: string;
}

/**
 * What a run did.
 * @example
 * ```ts
 * const { rewrapped, skipped, failed } = await rotateKek({ store, to: provider });
 * ```
 */
export interface RotationReport {
  readonly target: KekRef;
  /** Keys looked at: `skipped` plus those this run leased. */
  readonly scanned: number;
  /** Keys re-wrapped by this run (in a dry run: keys that would be, each verified to unwrap). */
  readonly rewrapped: number;
  /** Keys already under the target when the run started, or re-wrapped first by another worker. */
  readonly skipped: number;
  /**
   * Keys not re-wrapped, each left as it was, with the error code; `LOCKED`: another transaction held the key
   * locked for all of `lockWaitMs` (PostgreSQL). Empty (and not `aborted`) means every key the run covers (its
   * `shard`, the KEKs of `from` when given) is on the target.
   */
  readonly failed: readonly RotationFailure[];
  readonly dryRun: boolean;
  /** True when `signal` stopped the run; the checkpoint is kept so the next run resumes. */
  readonly aborted: boolean;
  /** True when the run resumed from a checkpoint a killed or aborted run left. */
  readonly resumed: boolean;
  /** The lease this run took over from a worker that stopped renewing it (died, hung), if any. */
  readonly takenOver?: CheckpointLease;
  /** Only keys under this version of the target's KEK were re-wrapped (`fromVersion`); absent: every other version. */
  readonly fromVersion?: string;
  /** The readiness check made before writing (`readiness` option), with whether it was overridden (`force`). */
  readonly readiness?: ReadinessReport & { readonly forced: boolean };
  readonly durationMs: number;
}

/**
 * Options of {@link rotateKek}.
 * @example
 * ```ts
 * const options: RotateKekOptions = { store, to: provider, batchSize: 1000, concurrency: 16, onProgress: console.log };
 * ```
 */
export interface RotateKekOptions {
  store: KeyStore;
  /** The target: keys end up wrapped under this provider's active version. */
  to: KeyProvider;
  /**
   * Providers that can unwrap the keys as they are now (matched by kind + keyId). Default `[to]`, which unwraps
   * every version it still knows.
   */
  from?: readonly KeyProvider[];
  /** Keys unwrapped / wrapped at once within a batch (matters for remote KMS). Default 16. */
  concurrency?: number;
  /** Keys per transaction (lease, writes, checkpoint, audit entry). Default 500. */
  batchSize?: number;
  /** Check every key unwraps and count what would change; write nothing. */
  dryRun?: boolean;
  /** Stops after the batch in progress; the report says `aborted`. */
  signal?: AbortSignal;
  onProgress?: (progress: RotationProgress) => void;
  /** Audit actor. Default `rotation`. */
  actor?: string;
  /** Names this worker when several share one rotation (its own checkpoint, named in the audit). */
  workerId?: string;
  /**
   * This worker's share of the keys, for several processes on one SQLite store (which has no row locks): keys whose
   * id hashes to `index` modulo `count`. Run `count` processes with indexes 0..count-1. Not needed on PostgreSQL,
   * where workers lease rows with `SKIP LOCKED`. Default: every key.
   */
  shard?: { readonly index: number; readonly count: number };
  /**
   * PostgreSQL: how long, in milliseconds, to keep coming back for keys another transaction holds locked (another
   * worker's batch, an application's `SELECT ... FOR UPDATE`) once nothing else is left. Keys still locked then are
   * reported in `failed` with code `LOCKED` (left as they were; run again). Default 30 000; 0 reports them at once.
   * A dry run never waits.
   */
  lockWaitMs?: number;
  /**
   * Only keys wrapped under this version of `to`'s KEK (same kind and key id) are re-wrapped; keys under other
   * versions stay as they are. Default: every key not under the target.
   */
  fromVersion?: string;
  /**
   * The version to rotate to. Refused unless it is the store's active version of `to`'s KEK (its registry; see
   * `kek activate`) and the version `to` writes with (its active version). Default: `to`'s active version, which the
   * run records as the store's active version.
   */
  toVersion?: string;
  /**
   * Checks the target is ready before writing anything ({@link checkReadiness}: it works here and every live
   * registered process has loaded it) and refuses with {@link RotationNotReadyError} when it is not. `exclude`: this
   * process's own registration ids. `force`: rotate anyway; the processes not ready are recorded on the `kek.rotate`
   * audit entry. Not given: no check (a dry run never checks).
   */
  readiness?: { readonly exclude?: readonly string[]; readonly force?: boolean };
  /**
   * How long this worker's lease on its checkpoint lasts without renewal, in ms (renewed every third of it while the
   * run works). Another worker takes the checkpoint over (and resumes from its cursor) only once the lease expired,
   * or at once when its owner is a process of this machine that no longer runs. Default 30 000.
   */
  leaseTtlMs?: number;
  /** @internal Set by `migrateProvider`: `to` may differ from the install lock. */
  allowProviderChange?: boolean;
}

/** The id under which a failure of the audit key is reported (no data key id can look like it). */
export const AUDIT_KEY_ID = 'keyfold:audit-key';

const DEFAULT_BATCH = 500;
const DEFAULT_CONCURRENCY = 16;
const DEFAULT_LOCK_WAIT_MS = 30_000;
const DEFAULT_LEASE_TTL_MS = 30_000;
/** First and longest pause between passes that come back for locked keys. */
const LOCK_RETRY_MIN_MS = 20;
const LOCK_RETRY_MAX_MS = 1000;
const WORKER_ID = /^[A-Za-z0-9._-]{1,64}$/;

function providerOf(value: unknown, name: string): KeyProvider {
  assertKeyProvider(value, name);
  return value;
}

function positiveInt(value: unknown, fallback: number, name: string, max: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > max) throw new RangeError(`${name} must be an integer from 1 to ${max}; got ${JSON.stringify(v)}`);
  return v as number;
}

/** The code reported for a failed key or row: a Keyfold error's code, another error's string `code`, else INTERNAL. */
export function codeOf(err: unknown): string {
  return err instanceof KeyfoldError ? err.code : err instanceof Error && typeof (err as { code?: unknown }).code === 'string' ? String((err as { code?: unknown }).code) : 'INTERNAL';
}

/** The target KEK version of a provider: its kind, key id and active version. */
export async function targetOf(provider: KeyProvider): Promise<KekRef> {
  const d = await provider.describe();
  if (typeof d.activeVersion !== 'string' || d.activeVersion === '') {
    throw new ConfigError(`the ${provider.kind} provider ${provider.keyId} reports no active version`);
  }
  return { kind: provider.kind, keyId: provider.keyId, version: d.activeVersion };
}

/**
 * Lets the event loop run (timers, I/O, signal handlers) before the next batch. With a synchronous store (SQLite)
 * and an in-process provider (env, file, memory) a batch never waits for I/O, so without this a run would hold the
 * event loop until it ends: an `AbortSignal` aborted from a Ctrl-C handler or a timer could not stop it.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Waits `ms` milliseconds, or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Re-wraps one stored key: unwrap with its current provider, check its key check value, wrap under `to`, unwrap
 * the result and compare. Returns the new wrapped key, or throws a coded error. The data key is wiped.
 */
export async function rewrapOne(key: DataKeyRecord, source: KeyProvider, to: KeyProvider, target: KekRef, dryRun: boolean): Promise<WrappedKey | undefined> {
  const wrapped = key.wrapped as WrappedKey;
  const context = dataKeyContext(key);
  const dataKey = await source.unwrapKey(wrapped, context);
  let back: Uint8Array | undefined;
  try {
    // The unwrap authenticated the key and its row (AEAD + context); the key check value is compared only on the
    // paths that never see the old plaintext compared with the new one: a dry run (and verifyKek).
    if (dryRun) {
      if (key.keyCheck && !constantTimeEqual(keyCheckValue(dataKey), key.keyCheck)) {
        throw new KeyfoldError('INTEGRITY_FAILED', `data key ${key.id} does not match its key check value`);
      }
      return undefined;
    }
    const next = await to.wrapKey(dataKey, context);
    if (next.kind !== target.kind || next.keyId !== target.keyId || next.keyVersion !== target.version) {
      throw new ConfigError(
        `the active version of ${kekName(target)} changed during the rotation (a wrap came back under ${kekName({ kind: next.kind, keyId: next.keyId, version: next.keyVersion })}); run the rotation again`,
      );
    }
    back = await to.unwrapKey(next, context);
    if (!constantTimeEqual(back, dataKey)) throw new KeyfoldError('INTEGRITY_FAILED', `the re-wrapped key ${key.id} did not unwrap to the same key`);
    return next;
  } finally {
    wipe(dataKey);
    wipe(back);
  }
}

/**
 * Checkpoint name of a rotation to `target` (per worker). A checkpoint with this name means a run was interrupted.
 * @example
 * ```ts
 * const pending = await store.getCheckpoint(checkpointName({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' }));
 * ```
 */
export function checkpointName(target: KekRef, workerId?: string): string {
  return `rotate:${kekName(target)}${workerId === undefined ? '' : `#${workerId}`}`;
}

/**
 * Re-wraps every data key of `store` that is not yet under `to`'s active version (see the module rules). Records
 * the target as the active KEK version, writes a checkpoint per batch, one `kek.rewrap` audit entry per batch (with
 * the ids it changed) and a `kek.rotate` summary at the end.
 *
 * @returns the report; keys that failed are listed with their error code, and stay as they were.
 * @throws PolicyError `PROVIDER_MISMATCH` when `to` is not the install lock's provider (use `migrateProvider`);
 *   ConfigError when `to`'s active version changes during the run; store errors (`UNAVAILABLE`, ...); TypeError /
 *   RangeError for bad options.
 * @example
 * ```ts
 * import { rotateKek } from '@keyfold/rotation';
 *
 * // KEYFOLD_KEK_V2 was added: move every key from V1 to V2.
 * const report = await rotateKek({ store, to: createEnvProvider(), onProgress: (p) => console.log(p.done, '/', p.total) });
 * if (report.failed.length > 0) console.error(report.failed);
 * ```
 */
export async function rotateKek(options: RotateKekOptions): Promise<RotationReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store } = options;
  if (!store || typeof store.leaseForRewrap !== 'function') throw new TypeError('store must be a KeyStore');
  const to = providerOf(options.to, 'to');
  const from = (options.from ?? [to]).map((p, i) => providerOf(p, `from[${i}]`));
  if (from.length === 0) throw new TypeError('from must name at least one provider');
  const batchSize = positiveInt(options.batchSize, DEFAULT_BATCH, 'batchSize', 10_000);
  const concurrency = positiveInt(options.concurrency, DEFAULT_CONCURRENCY, 'concurrency', 1024);
  const dryRun = options.dryRun ?? false;
  const lockWaitMs = options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
  if (!Number.isSafeInteger(lockWaitMs) || lockWaitMs < 0 || lockWaitMs > 86_400_000) {
    throw new RangeError(`lockWaitMs must be an integer from 0 to 86400000; got ${JSON.stringify(lockWaitMs)}`);
  }
  const actor = options.actor ?? 'rotation';
  const { signal, onProgress, shard } = options;
  const workerId = options.workerId ?? (shard === undefined ? undefined : `shard-${shard.index}-of-${shard.count}`);
  if (workerId !== undefined && (typeof workerId !== 'string' || !WORKER_ID.test(workerId))) {
    throw new TypeError('workerId must be 1-64 characters of A-Z a-z 0-9 . _ -');
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('onProgress must be a function');
  const { fromVersion, toVersion, readiness } = options;
  for (const [name, v] of [['fromVersion', fromVersion], ['toVersion', toVersion]] as const) {
    if (v !== undefined && (typeof v !== 'string' || !/^[A-Za-z0-9._:/-]{1,256}$/.test(v))) throw new TypeError(`${name} must be a KEK version (1-256 of A-Z a-z 0-9 . _ : / -)`);
  }
  if (readiness !== undefined && (readiness === null || typeof readiness !== 'object')) throw new TypeError('readiness must be an object');
  const leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isSafeInteger(leaseTtlMs) || leaseTtlMs < 300 || leaseTtlMs > 86_400_000) {
    throw new RangeError(`leaseTtlMs must be an integer from 300 to 86400000; got ${JSON.stringify(leaseTtlMs)}`);
  }
  const started = performance.now();

  const target = await targetOf(to);
  if (fromVersion !== undefined && fromVersion === target.version) {
    throw new PolicyError('POLICY_VIOLATION', `fromVersion ${fromVersion} is the target version itself: keys under it are already on ${kekName(target)}`);
  }
  if (toVersion !== undefined) {
    const active = (await store.listKekVersions({ kind: to.kind, keyId: to.keyId })).find((v) => v.state === 'active');
    if (active !== undefined && active.version !== toVersion) {
      throw new PolicyError(
        'POLICY_VIOLATION',
        `KEK version ${kekName({ ...target, version: toVersion })} is not the store's active version (${active.version}): activate it first, ` +
          'then rotate to it. Nothing was written.',
      );
    }
    if (target.version !== toVersion) {
      throw new ConfigError(
        `this ${to.kind} provider writes with version ${target.version}, not ${toVersion}: a rotation can only wrap under the version the provider writes with. Nothing was written.`,
      );
    }
  }
  let ready: (ReadinessReport & { forced: boolean }) | undefined;
  if (readiness !== undefined && !dryRun) {
    const report = await checkReadiness({ store, provider: to, version: target.version, ...(readiness.exclude ? { exclude: readiness.exclude } : {}) });
    if (!report.ready && readiness.force !== true) throw new RotationNotReadyError(report);
    ready = { ...report, forced: !report.ready };
  }
  const lock = await store.getInstallLock();
  if (!options.allowProviderChange) {
    if (lock && (lock.kind !== to.kind || lock.keyId !== to.keyId)) {
      throw new PolicyError(
        'PROVIDER_MISMATCH',
        `this store was installed with the ${lock.kind} provider "${lock.keyId}" but the rotation target is the ${to.kind} provider ` +
          `"${to.keyId}"; to move to another provider use migrateProvider (keyfold migrate)`,
      );
    }
    if (!lock && !dryRun) await store.ensureInstallLock(to, actor);
  }
  // The audit key: opened with the provider it is wrapped under, so this run's entries are MAC'd and the key can be
  // re-wrapped at the end like every data key (a store with none is keyed now; a dry run only checks it unwraps).
  await store.openAuditKey([...from, to], { actor, create: !dryRun });
  if (!dryRun) await store.recordKekVersion(target, { activate: true, actor: workerId === undefined ? actor : `${actor}:${workerId}` });

  const sources = new Map<string, KeyProvider>(from.map((p) => [`${p.kind}\u0000${p.keyId}`, p]));
  const fromRefs: (ProviderRef & { version?: string })[] | undefined =
    fromVersion !== undefined
      ? [{ kind: to.kind, keyId: to.keyId, version: fromVersion }]
      : options.from === undefined
        ? undefined
        : from.map((p) => ({ kind: p.kind, keyId: p.keyId }));
  const live = ['active', 'retired'] as const;
  const all = fromVersion === undefined ? await store.countDataKeys({ states: [...live] }) : 0;
  const onTarget = fromVersion === undefined ? await store.countDataKeys({ states: [...live], kek: target }) : 0;
  const total = fromVersion === undefined ? all - onTarget : await store.countDataKeys({ states: [...live], kek: { kind: to.kind, keyId: to.keyId, version: fromVersion } });
  let skipped = onTarget;
  let leased = 0;
  let rewrapped = 0;
  const failed: RotationFailure[] = [];
  const failedIds = new Set<string>();

  const name = checkpointName(target, workerId);
  // The checkpoint is this worker's under a lease it renews while it works: a live lease of another worker is
  // respected (CheckpointLeasedError), an expired one (or one whose owner died on this machine) is taken over.
  const owner = checkpointLeaseOwner();
  const claim = dryRun
    ? undefined
    : await store.claimCheckpoint({
        name,
        owner,
        ttlMs: leaseTtlMs,
        data: { target: kekName(target), startedAt: new Date().toISOString(), worker: workerId ?? null },
        isDead: leaseOwnerIsDead,
      });
  const checkpoint = claim?.existed === true ? claim.checkpoint : undefined;
  const resumed = checkpoint !== undefined;
  const lease = claim === undefined ? undefined : new LeaseKeeper(store, name, owner, leaseTtlMs);
  try {
    return await rotateBatches();
  } finally {
    await lease?.stop();
  }

  async function rotateBatches(): Promise<RotationReport> {
    const auditActor = workerId === undefined ? actor : `${actor}:${workerId}`;
    const progress = (): void => {
      if (!onProgress) return;
      const elapsedMs = performance.now() - started;
      const done = rewrapped + failed.length + (skipped - onTarget);
      onProgress({ target, total, done, rewrapped, failed: failed.length, elapsedMs, ratePerSecond: elapsedMs > 0 ? (done * 1000) / elapsedMs : 0 });
    };

    let cursor = checkpoint?.cursor;
    let passFromStart = cursor === undefined;
    let passDidWork = false;
    // Keys this pass found locked by another transaction (not leased, so still under their old version).
    let lockedInPass = new Set<string>();
    let lockDeadline: number | undefined;
    let lockRetryMs = LOCK_RETRY_MIN_MS;
    let aborted = false;
    for (;;) {
      await yieldToEventLoop();
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      await lease?.assertHeld();
      const batch = await store.leaseForRewrap({
        target,
        limit: batchSize,
        ...(cursor === undefined ? {} : { after: cursor }),
        ...(fromRefs ? { from: fromRefs } : {}),
        ...(shard ? { shard } : {}),
      });
      for (const id of batch.locked ?? []) if (!failedIds.has(id)) lockedInPass.add(id);
      if (batch.keys.length === 0) {
        await batch.release();
        // End of a pass. Another pass from the start catches keys behind the cursor (a resumed run, a worker that
        // died holding a lease) unless this pass already started there and found nothing new.
        // A dry run writes nothing, so a second pass would see the same keys again: one pass is the whole run.
        const last = (passFromStart && !passDidWork) || dryRun;
        if (last && lockedInPass.size > 0 && !dryRun) {
          // Only keys locked by another transaction are left: come back for them once they may be free.
          lockDeadline ??= performance.now() + lockWaitMs;
          const left = lockDeadline - performance.now();
          if (left > 0) {
            await pause(Math.min(lockRetryMs, left), signal);
            lockRetryMs = Math.min(lockRetryMs * 2, LOCK_RETRY_MAX_MS);
            cursor = undefined;
            passFromStart = true;
            passDidWork = false;
            lockedInPass = new Set();
            continue;
          }
        }
        if (last) {
          // Still locked: not re-wrapped, so reported as not done. Never counted as finished.
          for (const id of lockedInPass) {
            failed.push({ id, code: 'LOCKED' });
            failedIds.add(id);
          }
          if (lockedInPass.size > 0) progress();
          break;
        }
        cursor = undefined;
        passFromStart = true;
        passDidWork = false;
        lockedInPass = new Set();
        continue;
      }
      const updates: RewrapUpdate[] = [];
      try {
        const work = batch.keys.filter((k) => !failedIds.has(k.id));
        if (work.length > 0) passDidWork = true;
        leased += work.length;
        await mapLimit(work, concurrency, async (key) => {
          const w = key.wrapped as WrappedKey;
          const source = sources.get(`${w.kind}\u0000${w.keyId}`);
          try {
            if (!source) throw new KeyfoldError('NO_PROVIDER', `no provider given for ${w.kind}:${w.keyId}`);
            const next = await rewrapOne(key, source, to, target, dryRun);
            if (next) updates.push({ id: key.id, revision: key.revision, wrapped: next });
            else rewrapped++; // dry run: verified, would be re-wrapped
          } catch (err) {
            if (err instanceof ConfigError) throw err;
            failed.push({ id: key.id, code: codeOf(err) });
            failedIds.add(key.id);
          }
        });
        const last = (batch.keys[batch.keys.length - 1] as DataKeyRecord).id;
        if (dryRun) {
          await batch.release();
        } else {
          const result = await batch.commit(updates, {
            checkpoint: { name, cursor: last, processedDelta: updates.length, lease: { owner, ttlMs: leaseTtlMs } },
            audit: (applied) =>
              applied.length === 0
                ? undefined
                : {
                    actor: auditActor,
                    event: 'kek.rewrap',
                    subject: kekName(target),
                    details: { count: applied.length, ids: [...applied], ...(workerId === undefined ? {} : { worker: workerId }) },
                  },
          });
          rewrapped += result.applied.length;
          skipped += result.conflicts.length;
        }
        cursor = last;
      } catch (err) {
        await batch.release();
        throw err;
      }
      progress();
    }

    if (!dryRun && !aborted && !options.allowProviderChange) {
      // The audit key follows the data keys to the target version (a migration moves it with the install lock).
      try {
        await store.rewrapAuditKey(to, auditActor);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        // Another worker may have re-wrapped it first; only a key still off the target is a failure.
        const now = (await store.getAuditKey())?.wrapped;
        if (!now || now.kind !== target.kind || now.keyId !== target.keyId || now.keyVersion !== target.version) {
          failed.push({ id: AUDIT_KEY_ID, code: codeOf(err) });
        }
      }
    }
    if (!dryRun && !aborted) {
      await lease?.assertHeld();
      await store.deleteCheckpoint(name, owner);
      await store.appendAudit({
        actor: auditActor,
        event: 'kek.rotate',
        subject: kekName(target),
        details: {
          rewrapped,
          skipped,
          failed: failed.length,
          resumed,
          from: fromVersion ?? null,
          to: target.version,
          ...(claim?.takenOver ? { takenOver: claim.takenOver.owner } : {}),
          ...(ready === undefined
            ? {}
            : {
                readiness: ready.forced ? 'forced' : 'ready',
                ...(ready.forced
                  ? {
                      notReady: ready.processes.notReady.map((p) => `${p.host}:${p.pid}`),
                      ...(ready.probe.ok ? {} : { probe: `${ready.probe.method}:${ready.probe.code ?? 'failed'}` }),
                    }
                  : {}),
              }),
          ...(workerId === undefined ? {} : { worker: workerId }),
        },
      });
    }
    return {
      target,
      scanned: onTarget + leased,
      rewrapped,
      skipped,
      failed,
      dryRun,
      aborted,
      resumed,
      ...(claim?.takenOver ? { takenOver: claim.takenOver } : {}),
      ...(fromVersion === undefined ? {} : { fromVersion }),
      ...(ready === undefined ? {} : { readiness: ready }),
      durationMs: performance.now() - started,
    };
  }
}

/**
 * Keeps a worker's checkpoint lease: renewed every third of its TTL by an unref'd timer, and checked before each
 * batch, so a worker that was stopped (SIGSTOP, a paused VM) past its TTL finds out before it writes anything more.
 */
class LeaseKeeper {
  readonly #store: KeyStore;
  readonly #name: string;
  readonly #owner: string;
  readonly #ttlMs: number;
  #renewedAt = Date.now();
  #lost = false;
  #done = false;
  readonly #timer: NodeJS.Timeout;

  constructor(store: KeyStore, name: string, owner: string, ttlMs: number) {
    this.#store = store;
    this.#name = name;
    this.#owner = owner;
    this.#ttlMs = ttlMs;
    this.#timer = setInterval(() => void this.#renew().catch(() => undefined), Math.max(100, Math.floor(ttlMs / 3)));
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#lost || this.#done) return;
    const at = Date.now();
    if (await this.#store.renewCheckpointLease(this.#name, this.#owner, this.#ttlMs)) {
      if (at > this.#renewedAt) this.#renewedAt = at;
    } else this.#lost = true;
  }

  /** @throws ProviderError UNAVAILABLE when the lease was lost (taken over after it expired). */
  async assertHeld(): Promise<void> {
    // Not renewed for half a TTL (the timer could not run): renew now, and find out whether it is still ours.
    if (!this.#lost && Date.now() - this.#renewedAt > this.#ttlMs / 2) await this.#renew();
    if (this.#lost) {
      throw new ProviderError(
        'UNAVAILABLE',
        `this worker lost its lease on the checkpoint ${this.#name} (it was not renewed in time and another worker took the rotation over); it stopped without writing more`,
      );
    }
  }

  /** Stops renewing and gives the lease up (the checkpoint stays when the run did not finish). */
  async stop(): Promise<void> {
    this.#done = true;
    clearInterval(this.#timer);
    if (!this.#lost) await this.#store.releaseCheckpointLease(this.#name, this.#owner).catch(() => undefined);
  }
}
