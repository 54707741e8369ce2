/**
 * `checkReadiness`: before a rotation to KEK version N, proves that N works here and that every live process
 * registered in the key store (see `KeyStore.registerProcess`) has loaded N, so that no running process is left
 * unable to open keys once they are re-wrapped under N.
 *
 * Rules, and why they hold:
 * - The probe here: when N is this provider's active (write) version, a throwaway random key is wrapped under it,
 *   unwrapped again and compared in constant time (the wrapped key must name N). For another version N the probe
 *   checks N is among the versions the provider loaded, then unwraps one existing data key under N (comparing its
 *   key check value: this proves this host's N is the fleet's N) when the store holds one; with none, and a provider
 *   that can write under a chosen version (`describe().capabilities.writeVersion`: env, KEK file, PKCS#11, Vault,
 *   Cloud KMS, Key Vault), the throwaway key is wrapped under N through `writeUnderVersion` and unwrapped; only a
 *   provider that cannot address versions (AWS KMS) reports `loaded-only` (listed, not exercised). The throwaway key
 *   and every unwrapped key are wiped.
 * - A process counts as ready only when its record is live (not expired), names the same KEK (kind and key id) and
 *   lists N among its loaded versions. A process of another KEK is not ready: it could not open keys under N.
 * - Nothing is written: no audit entry, no registration.
 * @module
 */
import { PolicyError, constantTimeEqual, randomOwnedBytes, wipe, writeUnderVersion, type KeyProvider } from '@keyfold/envelope-core';
import { dataKeyContext, kekName, keyCheckValue, type KekRef, type KeyStore, type ProcessRecord } from '@keyfold/keystore';
import { codeOf } from './rotate.js';

/** The encryption context of the throwaway probe key (never stored). */
const PROBE_CONTEXT = Object.freeze({ 'keyfold:purpose': 'readiness-probe' });

/**
 * How the target version was probed here: `wrap-unwrap` (a throwaway key wrapped under it and unwrapped),
 * `unwrap-existing` (a stored key under it unwrapped), `loaded-only` (the provider lists it; no key under it to
 * unwrap), `not-loaded` (the provider does not have it).
 */
export type ReadinessProbeMethod = 'wrap-unwrap' | 'unwrap-existing' | 'loaded-only' | 'not-loaded';

/**
 * The result of {@link checkReadiness}.
 * @example
 * ```ts
 * const r = await checkReadiness({ store, provider, version: '3' });
 * if (!r.ready) for (const p of r.processes.notReady) console.log(p.host, p.pid, p.versions);
 * ```
 */
export interface ReadinessReport {
  /** True when the probe succeeded and every live registered process (not excluded) has loaded the target. */
  readonly ready: boolean;
  readonly target: KekRef;
  readonly probe: {
    readonly method: ReadinessProbeMethod;
    readonly ok: boolean;
    /** The error code when the probe failed (`UNWRAP_FAILED`, `KEY_NOT_FOUND`, ...). */
    readonly code?: string;
    /** The data key unwrapped (`unwrap-existing`). */
    readonly keyId?: string;
  };
  readonly processes: {
    /** Live registered processes looked at (excluded ones not counted). */
    readonly live: number;
    /** Those that have not loaded the target (host, pid, start time, loaded versions). */
    readonly notReady: readonly ProcessRecord[];
  };
}

/**
 * Options of {@link checkReadiness}.
 * @example
 * ```ts
 * const options: ReadinessOptions = { store, provider, version: '2', exclude: [registration.id] };
 * ```
 */
export interface ReadinessOptions {
  store: KeyStore;
  /** The provider of the KEK to rotate to, as this process opened it. */
  provider: KeyProvider;
  /** The target version N. */
  version: string;
  /** Registration ids not to count (this process's own record). */
  exclude?: readonly string[];
}

/**
 * A rotation refused because its target is not ready: `readiness` says what failed. Code `POLICY_VIOLATION`.
 * @example
 * ```ts
 * try { await rotateKek({ store, to, readiness: {} }); }
 * catch (err) { if (err instanceof RotationNotReadyError) console.log(err.readiness.processes.notReady); }
 * ```
 */
export class RotationNotReadyError extends PolicyError {
  readonly readiness: ReadinessReport;
  constructor(readiness: ReadinessReport) {
    super('POLICY_VIOLATION', `KEK version ${kekName(readiness.target)} is not ready: ${notReadyReason(readiness)}`);
    this.name = 'RotationNotReadyError';
    this.readiness = readiness;
  }
}

/** One line for operators: why a readiness report is not ready (never key material). */
export function notReadyReason(r: ReadinessReport): string {
  const parts: string[] = [];
  if (!r.probe.ok) {
    parts.push(
      r.probe.method === 'not-loaded'
        ? `this process's ${r.target.kind} provider has not loaded version ${r.target.version}`
        : `version ${r.target.version} does not work here (probe ${r.probe.method}: ${r.probe.code ?? 'failed'})`,
    );
  }
  const n = r.processes.notReady.length;
  if (n > 0) {
    const list = r.processes.notReady
      .slice(0, 5)
      .map((p) => `${p.host} pid ${p.pid} (${p.label}, loaded ${p.kind === r.target.kind && p.keyId === r.target.keyId ? p.versions.join(',') || 'none' : `another KEK: ${p.kind}:${p.keyId}`})`)
      .join('; ');
    parts.push(`${n} live process(es) have not loaded it: ${list}${n > 5 ? '; ...' : ''}`);
  }
  return parts.join('; ') || 'ready';
}

function isReadyProcess(p: ProcessRecord, target: KekRef): boolean {
  return p.kind === target.kind && p.keyId === target.keyId && p.versions.includes(target.version);
}

async function probe(store: KeyStore, provider: KeyProvider, target: KekRef): Promise<ReadinessReport['probe']> {
  const d = await provider.describe();
  if (!d.versions.map(String).includes(target.version)) return { method: 'not-loaded', ok: false, code: 'KEY_NOT_FOUND' };
  const [existing] = d.activeVersion === target.version ? [] : await store.listDataKeys({ states: ['active', 'retired'], kek: target, limit: 1 });
  if (existing?.wrapped === undefined && (d.activeVersion === target.version || d.capabilities.writeVersion === true)) {
    const key = randomOwnedBytes(32);
    let back: Uint8Array | undefined;
    try {
      const wrapped = await writeUnderVersion(provider, target.version).wrapKey(key, PROBE_CONTEXT);
      if (wrapped.kind !== target.kind || wrapped.keyId !== target.keyId || wrapped.keyVersion !== target.version) {
        return { method: 'wrap-unwrap', ok: false, code: 'KEY_NOT_FOUND' };
      }
      back = await provider.unwrapKey(wrapped, PROBE_CONTEXT);
      return constantTimeEqual(back, key) ? { method: 'wrap-unwrap', ok: true } : { method: 'wrap-unwrap', ok: false, code: 'INTEGRITY_FAILED' };
    } catch (err) {
      return { method: 'wrap-unwrap', ok: false, code: codeOf(err) };
    } finally {
      wipe(key);
      wipe(back);
    }
  }
  if (existing?.wrapped === undefined) return { method: 'loaded-only', ok: true };
  let key: Uint8Array | undefined;
  try {
    key = await provider.unwrapKey(existing.wrapped, dataKeyContext(existing));
    const ok = existing.keyCheck === undefined || constantTimeEqual(keyCheckValue(key), existing.keyCheck);
    return ok ? { method: 'unwrap-existing', ok: true, keyId: existing.id } : { method: 'unwrap-existing', ok: false, code: 'INTEGRITY_FAILED', keyId: existing.id };
  } catch (err) {
    return { method: 'unwrap-existing', ok: false, code: codeOf(err), keyId: existing.id };
  } finally {
    wipe(key);
  }
}

/**
 * Checks that KEK version `version` of `provider` is ready for a rotation (see the module rules). Writes nothing.
 * @returns the report; `ready` is false when the probe failed or a live process has not loaded the version.
 * @throws store errors (`UNAVAILABLE`, ...); the provider's `describe()` errors; TypeError for bad options.
 * @example
 * ```ts
 * import { checkReadiness } from '@keyfold/rotation';
 *
 * const r = await checkReadiness({ store, provider, version: '3', exclude: [myRegistration.id] });
 * if (!r.ready) throw new Error(`not yet: ${r.processes.notReady.length} process(es) lack version 3`);
 * ```
 */
export async function checkReadiness(options: ReadinessOptions): Promise<ReadinessReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store, provider, version } = options;
  if (!store || typeof store.listProcesses !== 'function') throw new TypeError('store must be a KeyStore with a process registry');
  if (!provider || typeof provider.describe !== 'function') throw new TypeError('provider must be a KeyProvider');
  if (typeof version !== 'string' || version === '' || version.length > 256) throw new TypeError('version must be a non-empty string');
  const exclude = new Set(options.exclude ?? []);
  const target: KekRef = { kind: provider.kind, keyId: provider.keyId, version };
  const result = await probe(store, provider, target);
  const live = (await store.listProcesses()).filter((p) => !exclude.has(p.id));
  const notReady = live.filter((p) => !isReadyProcess(p, target));
  return { ready: result.ok && notReady.length === 0, target, probe: result, processes: { live: live.length, notReady } };
}
