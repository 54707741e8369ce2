/**
 * `verifyKek`: proves every stored data key still unwraps, and to the key it was created with (key check value).
 * Read-only apart from one `kek.verify` audit entry with the counts.
 * @module
 */
import { KeyfoldError, constantTimeEqual, wipe, type KeyProvider } from '@keyfold/envelope-core';
import { AUDIT_KEY_LENGTH, auditKeyContext, dataKeyContext, kekName, keyCheckValue, type DataKeyRecord, type KeyStore, type ProviderRef } from '@keyfold/keystore';
import { AUDIT_KEY_ID, mapLimit, yieldToEventLoop, type RotationFailure } from './rotate.js';

/**
 * Options of {@link verifyKek}.
 * @example
 * ```ts
 * const options: VerifyKekOptions = { store, providers: [provider], kek: { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' } };
 * ```
 */
export interface VerifyKekOptions {
  store: KeyStore;
  /** Providers to unwrap with, matched by kind + keyId. */
  providers: readonly KeyProvider[];
  /** Only keys under this KEK (all its versions when `version` is absent). Default: every key. */
  kek?: ProviderRef & { readonly version?: string };
  concurrency?: number;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { readonly checked: number; readonly total: number; readonly failed: number; readonly elapsedMs: number }) => void;
  /** Audit actor. Default `rotation`. */
  actor?: string;
}

/**
 * What {@link verifyKek} found.
 * @example
 * ```ts
 * const { checked, ok, failed, byVersion } = await verifyKek({ store, providers: [provider] });
 * ```
 */
export interface VerifyKekReport {
  readonly checked: number;
  readonly ok: number;
  readonly failed: readonly RotationFailure[];
  /** Keys checked per KEK version (`kind:keyId@version`). */
  readonly byVersion: Readonly<Record<string, number>>;
  /**
   * The audit key (checked like a data key when it is under the KEK checked): the KEK version it is wrapped under
   * and whether it unwraps; a failure is also listed in `failed` with id `keyfold:audit-key`. Absent when the store
   * has no audit key or it is under another KEK than `kek`.
   */
  readonly auditKey?: { readonly kek: string; readonly ok: boolean };
  readonly aborted: boolean;
  readonly durationMs: number;
}

/**
 * Unwraps every live data key (or those under `kek`) with the matching provider and compares its key check value.
 * @returns the report; failures carry the error code (`UNWRAP_FAILED`, `NO_PROVIDER`, `INTEGRITY_FAILED`, ...).
 * @throws store errors; TypeError for bad options.
 * @example
 * ```ts
 * import { verifyKek } from '@keyfold/rotation';
 *
 * const report = await verifyKek({ store, providers: [provider] });
 * if (report.failed.length > 0) process.exitCode = 3;
 * ```
 */
export async function verifyKek(options: VerifyKekOptions): Promise<VerifyKekReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store, signal, onProgress } = options;
  if (!store || typeof store.listDataKeys !== 'function') throw new TypeError('store must be a KeyStore');
  const providerList: unknown = options.providers;
  if (!Array.isArray(providerList) || providerList.length === 0) throw new TypeError('providers must be a non-empty array of KeyProvider');
  const batchSize = options.batchSize ?? 1000;
  const concurrency = options.concurrency ?? 16;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new RangeError('batchSize must be an integer from 1 to 10000');
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  const providers = new Map(options.providers.map((p) => [`${p.kind}\u0000${p.keyId}`, p]));
  const started = performance.now();
  const filter = { states: ['active', 'retired'] as ('active' | 'retired')[], ...(options.kek ? { kek: options.kek } : {}) };
  const total = await store.countDataKeys(filter);
  let checked = 0;
  const failed: RotationFailure[] = [];
  const byVersion: Record<string, number> = {};
  let aborted = false;
  for (let after: string | undefined; ; ) {
    await yieldToEventLoop();
    if (signal?.aborted) {
      aborted = true;
      break;
    }
    const page = await store.listDataKeys({ ...filter, limit: batchSize, ...(after === undefined ? {} : { after }) });
    await mapLimit(page, concurrency, async (key: DataKeyRecord) => {
      const w = key.wrapped;
      if (!w) return;
      const name = kekName({ kind: w.kind, keyId: w.keyId, version: w.keyVersion });
      byVersion[name] = (byVersion[name] ?? 0) + 1;
      const provider = providers.get(`${w.kind}\u0000${w.keyId}`);
      let dataKey: Uint8Array | undefined;
      try {
        if (!provider) throw new KeyfoldError('NO_PROVIDER', `no provider for ${w.kind}:${w.keyId}`);
        const unwrapped = await provider.unwrapKey(w, dataKeyContext(key));
        dataKey = unwrapped;
        if (key.keyCheck && !constantTimeEqual(keyCheckValue(unwrapped), key.keyCheck)) throw new KeyfoldError('INTEGRITY_FAILED', 'key check value mismatch');
      } catch (err) {
        failed.push({ id: key.id, code: err instanceof KeyfoldError ? err.code : 'INTERNAL' });
      } finally {
        wipe(dataKey);
      }
    });
    checked += page.length;
    onProgress?.({ checked, total, failed: failed.length, elapsedMs: performance.now() - started });
    if (page.length < batchSize) break;
    after = (page[page.length - 1] as DataKeyRecord).id;
  }
  let auditKey: VerifyKekReport['auditKey'];
  const record = aborted ? undefined : await store.getAuditKey();
  const aw = record?.wrapped;
  if (record && aw && (!options.kek || (aw.kind === options.kek.kind && aw.keyId === options.kek.keyId && (options.kek.version === undefined || aw.keyVersion === options.kek.version)))) {
    const provider = providers.get(`${aw.kind}\u0000${aw.keyId}`);
    let key: Uint8Array | undefined;
    let code: string | undefined;
    try {
      if (!provider) throw new KeyfoldError('NO_PROVIDER', `no provider for ${aw.kind}:${aw.keyId}`);
      key = await provider.unwrapKey(aw, auditKeyContext(record.installation));
      if (key.length !== AUDIT_KEY_LENGTH) throw new KeyfoldError('INTEGRITY_FAILED', 'the audit key has the wrong length');
    } catch (err) {
      code = err instanceof KeyfoldError ? err.code : 'INTERNAL';
      failed.push({ id: AUDIT_KEY_ID, code });
    } finally {
      wipe(key);
    }
    auditKey = { kek: kekName({ kind: aw.kind, keyId: aw.keyId, version: aw.keyVersion }), ok: code === undefined };
  }
  const dataFailed = failed.filter((f) => f.id !== AUDIT_KEY_ID).length;
  await store.appendAudit({
    actor: options.actor ?? 'rotation',
    event: 'kek.verify',
    subject: options.kek ? kekName(options.kek) : 'all',
    details: { checked, failed: failed.length, aborted, byVersion, ...(auditKey ? { auditKey: auditKey.ok ? 'ok' : 'failed' } : {}) },
  });
  return { checked, ok: checked - dataFailed, failed, byVersion, ...(auditKey ? { auditKey } : {}), aborted, durationMs: performance.now() - started };
}
