/**
 * "Rotate my key" for one tenant, with shredding: `reencryptTenant` rotates the tenant's key, moves every envelope
 * of the tenant in the sources given from the old key version(s) to the new one, and only then destroys the old
 * version(s), so what the old versions sealed elsewhere can never be opened again while nothing given is lost.
 *
 * What "re-encrypt" means here: a tenant envelope's body is sealed under its own random data key; the tenant key
 * only wraps that data key (in the header). Destroying an old tenant key version makes exactly the wrapped keys under
 * it useless. So each envelope's data key is re-wrapped under the new version (`envelope.rewrap`: the body bytes are
 * untouched, the key commitment kept), which is what the destruction needs and costs one small AES-GCM operation per
 * envelope. It does not change the data key: whoever read an envelope's data key before (a plaintext copy of it, or
 * the old tenant key together with an old copy of the header) can still open the body. Seal the data again if that
 * is your threat.
 *
 * Rules, and why they hold:
 * - Nothing is destroyed unless every source was read to its end, no envelope failed to re-wrap (a tampered one, a
 *   row that does not parse, a write refused), and a final header-only pass over every source finds no envelope of
 *   the tenant still under an old version (a row the application rewrote meanwhile is caught here). Otherwise the
 *   old versions stay, the report says why, and the run can be repeated.
 * - Resumable and idempotent: the run keeps a checkpoint (`tenant-reencrypt:<id>`, the version that was active when
 *   it began) until it completes. A run that finds it does not rotate again (unless the earlier run was stopped
 *   before its rotation), it re-wraps only what is left (envelopes already on the active version are skipped by
 *   their header) and destroys what is still to destroy.
 * - Other processes keep using a tenant's active version from their cache for up to the cache TTL (60 s by
 *   default). The run waits until the new version is `settleMs` old before it reads the sources, so envelopes
 *   sealed meanwhile under the old version are re-wrapped too, instead of being lost with it.
 * @module
 */
import { ProviderError, type SecurityMode } from '@keyfold/envelope-core';
import { assertTenantId, kekName, tenantOwner, type TenantKeys } from '@keyfold/keystore';
import { checkEnvelopes } from './envelope-check.js';
import { pause } from './rotate.js';
import { rewrapEnvelopes, type EnvelopeSource } from './table-source.js';

/** The default wait for other processes' caches: the tenant key cache's default TTL. */
export const DEFAULT_SETTLE_MS = 60_000;

/**
 * Options of {@link reencryptTenant}.
 * @example
 * ```ts
 * const options: ReencryptTenantOptions = { tenantKeys, tenant: 'acme', sources: [documents, invoices] };
 * ```
 */
export interface ReencryptTenantOptions {
  tenantKeys: TenantKeys;
  tenant: string;
  /**
   * Where the tenant's envelopes live (table sources, or any other {@link EnvelopeSource}): all of them, since the
   * old versions are destroyed afterwards. Empty means "nothing is sealed under the old versions": they are then
   * destroyed right after the rotation.
   */
  sources: readonly EnvelopeSource[];
  /** Rows per batch (default 500). */
  batchSize?: number;
  /** Envelopes re-wrapped at once (default 1: tenant keys are local). */
  concurrency?: number;
  /** Destroy the old versions once every envelope is on the new one (default true). */
  destroyOld?: boolean;
  /** Wait until the new version is this many milliseconds old before reading the sources (default 60 000). */
  settleMs?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { readonly source: string; readonly scanned: number; readonly rewrapped: number; readonly failed: number }) => void;
  /** Passed to the envelopes (memory KEK providers need `development`). */
  securityMode?: SecurityMode;
}

/** What happened in one source. */
export interface TenantSourceReport {
  readonly source: string;
  readonly scanned: number;
  readonly rewrapped: number;
  /** Envelopes of the tenant already on the new version. */
  readonly current: number;
  /** Envelopes under other keys (other tenants, the KEK), left alone. */
  readonly foreign: number;
  /** Rows that could not be re-wrapped or read, with the error code; each keeps the old versions alive. */
  readonly failed: readonly { readonly id: string | number; readonly code: string }[];
  /** Envelopes of the tenant still under an old version after the final pass (0 when complete). */
  readonly remaining: number;
}

/**
 * What {@link reencryptTenant} did.
 * @example
 * ```ts
 * const { complete, destroyed, kept } = await reencryptTenant({ tenantKeys, tenant: 'acme', sources });
 * ```
 */
export interface ReencryptTenantReport {
  readonly tenant: string;
  /** The version every envelope was moved to (the active one). */
  readonly version: number;
  /** True when this run created `version`. */
  readonly rotated: boolean;
  /** True when the run continued one that did not complete. */
  readonly resumed: boolean;
  readonly sources: readonly TenantSourceReport[];
  /** Old versions destroyed by this run. */
  readonly destroyed: readonly number[];
  /** Old versions still alive (not destroyed, because something failed, remained, or `destroyOld` was false). */
  readonly kept: readonly number[];
  /** Every source done, nothing failed or remained, and every old version destroyed (or none to destroy). */
  readonly complete: boolean;
  readonly aborted: boolean;
}

/** The checkpoint of a tenant's re-encryption. */
export function reencryptCheckpointName(tenant: string): string {
  return `tenant-reencrypt:${tenant}`;
}

/**
 * Rotates `tenant`'s key (or resumes an earlier run), re-wraps the tenant's envelopes in `sources` under the new
 * version, and destroys the old versions when nothing is left under them. Audited: `tenant.rotate`, one
 * `envelope.rewrap` per batch written, `tenant.shred-version` per destroyed version and one `tenant.reencrypt`
 * summary.
 * @returns the report; when `complete` is false the old versions were kept and the run can be repeated.
 * @throws ProviderError `KEY_NOT_FOUND` when the tenant does not exist or was shredded; the sources' errors
 *   (nothing is destroyed then); TypeError / RangeError for bad options.
 * @example
 * ```ts
 * import { reencryptTenant, sqliteTableSource } from '@keyfold/rotation';
 *
 * const source = sqliteTableSource({ db, table: 'vault_items', envelopeColumn: 'secret' });
 * const report = await reencryptTenant({ tenantKeys, tenant: 'alice', sources: [source] });
 * if (!report.complete) console.error('old key kept:', report.sources.flatMap((s) => s.failed));
 * ```
 */
export async function reencryptTenant(options: ReencryptTenantOptions): Promise<ReencryptTenantReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { tenantKeys, tenant, sources, signal } = options;
  if (!tenantKeys || typeof tenantKeys.tenant !== 'function') throw new TypeError('tenantKeys must be TenantKeys (openTenantKeys)');
  assertTenantId(tenant);
  const given: unknown = sources;
  if (!Array.isArray(given)) throw new TypeError('sources must be an array of EnvelopeSource');
  for (const s of sources) if (!s || typeof s.list !== 'function' || typeof s.replace !== 'function') throw new TypeError('sources must be an array of EnvelopeSource');
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  if (!Number.isSafeInteger(settleMs) || settleMs < 0) throw new RangeError('settleMs must be a non-negative integer');
  const batchSize = options.batchSize ?? 500;
  const concurrency = options.concurrency ?? 1;
  const { store, actor } = tenantKeys;
  const name = reencryptCheckpointName(tenant);

  // Rotate, or resume: the checkpoint says which version was active when the unfinished run began.
  const info = await tenantKeys.getTenant(tenant);
  if (!info || info.shredded || info.activeVersion === undefined) {
    throw new ProviderError('KEY_NOT_FOUND', info ? `tenant ${tenant} was shredded: its keys are destroyed` : `tenant ${tenant} does not exist`);
  }
  const checkpoint = await store.getCheckpoint(name);
  const from = checkpoint?.data.from;
  const resumed = typeof from === 'number';
  let version = info.activeVersion;
  let rotated = false;
  if (!resumed || from === version) {
    if (!resumed) await store.saveCheckpoint({ name, cursor: undefined, processedDelta: 0, processed: 0, data: { from: version } });
    version = (await tenantKeys.rotateTenantKey(tenant)).activeVersion ?? version;
    rotated = true;
  }

  // Let other processes' caches of the old active version run out before reading the sources.
  const active = await store.findDataKey(tenantOwner(tenant), version);
  const age = active ? Date.now() - Date.parse(active.createdAt) : settleMs;
  if (age < settleMs) await pause(settleMs - age, signal);

  const provider = tenantKeys.tenant(tenant);
  const target = kekName({ kind: provider.kind, keyId: provider.keyId, version: String(version) });
  const ofTenant = `${kekName({ kind: provider.kind, keyId: provider.keyId })}@`;
  const reports: TenantSourceReport[] = [];
  let aborted = signal?.aborted ?? false;
  for (const source of sources) {
    if (aborted) break;
    const r = await rewrapEnvelopes({
      source,
      to: provider,
      batchSize,
      concurrency,
      skipForeign: true,
      store,
      actor,
      ...(signal ? { signal } : {}),
      ...(options.securityMode ? { securityMode: options.securityMode } : {}),
      onProgress: (p) => options.onProgress?.({ source: source.name, scanned: p.scanned, rewrapped: p.rewrapped, failed: p.failed }),
    });
    aborted = r.aborted;
    reports.push({ source: r.source, scanned: r.scanned, rewrapped: r.rewrapped, current: r.skipped, foreign: r.foreign, failed: r.failed, remaining: 0 });
  }

  // The final pass, headers only: anything of the tenant still under an old version keeps the old versions alive.
  let clean = !aborted && reports.every((r) => r.failed.length === 0);
  if (clean) {
    for (const [i, source] of sources.entries()) {
      const c = await checkEnvelopes({ source, to: provider, batchSize, ...(signal ? { signal } : {}) });
      const remaining = Object.entries(c.versions).reduce((n, [k, count]) => (k.startsWith(ofTenant) && k !== target ? n + count : n), 0);
      const r = reports[i] as TenantSourceReport;
      reports[i] = { ...r, remaining, failed: [...r.failed, ...c.failed] };
      if (c.aborted) aborted = true;
      if (c.aborted || remaining > 0 || c.failed.length > 0) clean = false;
    }
  }

  const old = (await tenantKeys.tenantKeyVersions(tenant)).filter((v) => v.state === 'retired').map((v) => v.version);
  const destroyed: number[] = [];
  if (clean && options.destroyOld !== false) {
    for (const v of old) if ((await tenantKeys.shredTenantKeyVersion(tenant, v)).destroyed) destroyed.push(v);
  }
  const kept = old.filter((v) => !destroyed.includes(v));
  const complete = clean && kept.length === 0;
  await store.appendAudit({
    actor,
    event: 'tenant.reencrypt',
    subject: tenantOwner(tenant),
    details: {
      tenant,
      version,
      rotated,
      resumed,
      sources: reports.map((r) => ({ source: r.source, rewrapped: r.rewrapped, current: r.current, foreign: r.foreign, failed: r.failed.length, remaining: r.remaining })),
      destroyed,
      kept,
      complete,
      aborted,
    },
  });
  if (complete) await store.deleteCheckpoint(name);
  return { tenant, version, rotated, resumed, sources: reports, destroyed, kept, complete, aborted };
}
