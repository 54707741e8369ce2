/**
 * Rotation policy: how old the active KEK version may get (`maxAge`, default 90 days) and how long a new version
 * must have been active before keys are re-wrapped to it (`gracePeriod`, default 24 h: time for every process to
 * load it, e.g. a new `KEYFOLD_KEK_V3` rolled out everywhere, before anything depends on it).
 * @module
 */
import { ConfigError, type KeyProvider } from '@keyfold/envelope-core';
import { kekName, type KekRef, type KeyStore } from '@keyfold/keystore';
import { rotateKek, targetOf, type RotateKekOptions, type RotationReport } from './rotate.js';

/** 90 days. */
export const DEFAULT_MAX_AGE_MS = 90 * 24 * 60 * 60 * 1000;
/** 24 hours. */
export const DEFAULT_GRACE_PERIOD_MS = 24 * 60 * 60 * 1000;

/**
 * A rotation policy.
 * @example
 * ```ts
 * const policy: RotationPolicy = { maxAgeMs: 30 * 86_400_000, gracePeriodMs: 3_600_000 };
 * ```
 */
export interface RotationPolicy {
  /** Age of the active KEK version after which a new version is due. Default 90 days. */
  maxAgeMs?: number;
  /** How long a new version must have been active before keys are re-wrapped to it. Default 24 hours. */
  gracePeriodMs?: number;
}

/**
 * What {@link isDue} decided.
 * @example
 * ```ts
 * const { due, action, reason } = await isDue({ store, provider });
 * ```
 */
export interface DueStatus {
  readonly due: boolean;
  /** `add-version`: the active version is older than maxAge; `rewrap`: keys wait on an older version past the grace period. */
  readonly action: 'none' | 'add-version' | 'rewrap';
  readonly reason: string;
  readonly active: KekRef;
  /** When the store first saw the active version active (`undefined`: not registered yet). */
  readonly activeSince: string | undefined;
  readonly ageMs: number;
  /** Live keys of this KEK not under the active version. */
  readonly pendingKeys: number;
  /** When the next action falls due (ISO), when nothing is due now. */
  readonly nextDueAt: string | undefined;
}

/**
 * Options of {@link isDue}.
 * @example
 * ```ts
 * const options: IsDueOptions = { store, provider, policy: { maxAgeMs: 30 * 86_400_000 } };
 * ```
 */
export interface IsDueOptions {
  store: KeyStore;
  provider: KeyProvider;
  policy?: RotationPolicy;
  /** The time to judge against (ms since epoch). Default now. */
  now?: number;
}

function resolvePolicy(policy: RotationPolicy | undefined): { maxAgeMs: number; gracePeriodMs: number } {
  const maxAgeMs = policy?.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const gracePeriodMs = policy?.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
  if (!Number.isFinite(maxAgeMs) || maxAgeMs <= 0) throw new RangeError(`policy.maxAgeMs must be a positive number; got ${String(maxAgeMs)}`);
  if (!Number.isFinite(gracePeriodMs) || gracePeriodMs < 0) throw new RangeError(`policy.gracePeriodMs must be a non-negative number; got ${String(gracePeriodMs)}`);
  return { maxAgeMs, gracePeriodMs };
}

function days(ms: number): string {
  return `${(ms / 86_400_000).toFixed(1)} days`;
}

/**
 * Decides whether rotation work is due for `provider`'s KEK: a new version (active version older than maxAge), or
 * a re-wrap (keys still under older versions and the active one has been active for the grace period). Reads only.
 * @throws store and provider errors; RangeError for a bad policy.
 * @example
 * ```ts
 * import { isDue } from '@keyfold/rotation';
 *
 * const status = await isDue({ store, provider });
 * console.log(status.due ? `due: ${status.reason}` : `next at ${status.nextDueAt}`);
 * ```
 */
export async function isDue(options: IsDueOptions): Promise<DueStatus> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store, provider } = options;
  const { maxAgeMs, gracePeriodMs } = resolvePolicy(options.policy);
  const now = options.now ?? Date.now();
  const active = await targetOf(provider);
  const registry = await store.listKekVersions({ kind: active.kind, keyId: active.keyId });
  const rec = registry.find((r) => r.version === active.version);
  const activeSince = rec?.state === 'active' ? rec.activatedAt : undefined;
  const ageMs = activeSince === undefined ? 0 : Math.max(0, now - Date.parse(activeSince));
  const states = ['active', 'retired'] as ('active' | 'retired')[];
  const underKek = await store.countDataKeys({ states, kek: { kind: active.kind, keyId: active.keyId } });
  const onActive = await store.countDataKeys({ states, kek: active });
  const pendingKeys = underKek - onActive;
  const base = { active, activeSince, ageMs, pendingKeys };
  if (activeSince !== undefined && ageMs >= maxAgeMs) {
    return { ...base, due: true, action: 'add-version', reason: `${kekName(active)} has been active for ${days(ageMs)}, longer than the maximum of ${days(maxAgeMs)}`, nextDueAt: undefined };
  }
  if (pendingKeys > 0 && (activeSince === undefined || ageMs >= gracePeriodMs)) {
    return { ...base, due: true, action: 'rewrap', reason: `${pendingKeys} key(s) are still under older versions of ${kekName({ kind: active.kind, keyId: active.keyId })}`, nextDueAt: undefined };
  }
  const since = activeSince === undefined ? now : Date.parse(activeSince);
  const next = pendingKeys > 0 ? since + gracePeriodMs : since + maxAgeMs;
  return {
    ...base,
    due: false,
    action: 'none',
    reason:
      pendingKeys > 0
        ? `${pendingKeys} key(s) wait for the grace period of ${kekName(active)} to end`
        : `${kekName(active)} is ${days(ageMs)} old; a new version is due after ${days(maxAgeMs)}`,
    nextDueAt: new Date(next).toISOString(),
  };
}

/**
 * Options of {@link runIfDue}: those of {@link rotateKek} (with `to` the provider) plus the policy.
 * @example
 * ```ts
 * const options: RunIfDueOptions = { store, provider, policy: {}, addVersion: (p) => (p as FileProvider).rotate() };
 * ```
 */
export interface RunIfDueOptions extends Omit<RotateKekOptions, 'to' | 'allowProviderChange'> {
  provider: KeyProvider;
  policy?: RotationPolicy;
  now?: number;
  /**
   * Adds a KEK version and makes it active; returns the new version. Default: the provider's own `rotate()` (file,
   * memory and tenant providers have one). Providers whose versions are managed outside (env variables, KMS
   * rotation schedules) need this, or the version added outside first.
   */
  addVersion?: (provider: KeyProvider) => Promise<string>;
}

/**
 * What {@link runIfDue} did.
 * @example
 * ```ts
 * const result = await runIfDue({ store, provider });
 * if (result.action === 'rewrapped') console.log(result.report.rewrapped);
 * ```
 */
export type RunIfDueResult =
  | { readonly action: 'none'; readonly status: DueStatus }
  | { readonly action: 'added-version'; readonly status: DueStatus; readonly version: string }
  | { readonly action: 'rewrapped'; readonly status: DueStatus; readonly report: RotationReport };

/**
 * `keyfold rotate --if-due`: does what {@link isDue} says is due. A new version is added (and registered, which
 * starts its grace period) when the active one is too old; keys are re-wrapped once a version has been active for
 * the grace period. Run it from cron; a run with nothing due changes nothing.
 * @throws ConfigError when a version is due but the provider cannot add one itself and no `addVersion` was given;
 *   the errors of {@link rotateKek}.
 * @example
 * ```ts
 * import { runIfDue } from '@keyfold/rotation';
 *
 * const result = await runIfDue({ store, provider, policy: { maxAgeMs: 90 * 86_400_000 } });
 * console.log(result.action, result.status.reason);
 * ```
 */
export async function runIfDue(options: RunIfDueOptions): Promise<RunIfDueResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { provider, policy, now, addVersion, ...rotate } = options;
  const status = await isDue({ store: options.store, provider, ...(policy ? { policy } : {}), ...(now === undefined ? {} : { now }) });
  if (status.action === 'none') return { action: 'none', status };
  if (status.action === 'add-version') {
    const add =
      addVersion ??
      ((p: KeyProvider): Promise<string> => {
        const r = (p as { rotate?: unknown }).rotate;
        if (typeof r !== 'function') {
          return Promise.reject(
            new ConfigError(
              `a new version of ${kekName(status.active)} is due but the ${p.kind} provider cannot add one itself; add one ` +
                '(for the env provider: set the next KEYFOLD_KEK_V<n> and restart) and run again',
            ),
          );
        }
        return (r as () => Promise<string>).call(p);
      });
    const version = await add(provider);
    // The version added, not what the provider describes as active: a provider bound to the store's pointer keeps
    // describing the old active version until this activation moves the pointer.
    const next = { kind: provider.kind, keyId: provider.keyId, version };
    await options.store.recordKekVersion(next, { activate: true, actor: options.actor ?? 'rotation' });
    return { action: 'added-version', status, version };
  }
  const report = await rotateKek({ ...rotate, to: provider });
  return { action: 'rewrapped', status, report };
}
