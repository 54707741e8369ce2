/**
 * Counting, without key access, which KEK versions the envelopes of a table source are wrapped under: the
 * read-only side of `rewrapEnvelopes` (`keyfold rewrap --table ... --check`), and the classification both share.
 *
 * Rules, and why they hold:
 * - Only headers are parsed (`inspectEnvelope`): nothing is unwrapped or decrypted, and nothing is written, so a
 *   check may run with read-only database credentials and never changes a row.
 * - An envelope is "current" exactly when `rewrapEnvelopes` would skip it (one wrapped key, under the target's active
 *   version); "foreign" when none of its wrapped keys belongs to the target's KEK or to a `from` provider (tenant
 *   envelopes, another installation's KEK): re-wrapping cannot reach those, so they are counted apart.
 * @module
 */
import { inspectEnvelope, type EnvelopeInfo, type KeyProvider } from '@keyfold/envelope-core';
import { kekName, type KekRef, type ProviderRef } from '@keyfold/keystore';
import { codeOf, targetOf, yieldToEventLoop } from './rotate.js';
import type { EnvelopeRow, EnvelopeSource } from './table-source.js';

/** Where one envelope stands relative to a target KEK version. */
export type EnvelopeStanding = 'current' | 'stale' | 'foreign';

/**
 * Classifies an envelope's header against `target` (kind, key id, active version) and the KEKs that may open it
 * (`owners`, which should include the target's kind and key id).
 * @example
 * ```ts
 * const standing = envelopeStanding(inspectEnvelope(bytes), target, [target]);
 * ```
 */
export function envelopeStanding(info: Pick<EnvelopeInfo, 'wrappedKeys'>, target: KekRef, owners: readonly ProviderRef[]): EnvelopeStanding {
  const w = info.wrappedKeys;
  if (w.length === 1 && w[0]?.kind === target.kind && w[0].keyId === target.keyId && w[0].keyVersion === target.version) return 'current';
  const owned = w.some((k) => (k.kind === target.kind && k.keyId === target.keyId) || owners.some((o) => o.kind === k.kind && o.keyId === k.keyId));
  return owned ? 'stale' : 'foreign';
}

/**
 * Options of {@link checkEnvelopes}.
 * @example
 * ```ts
 * const options: CheckEnvelopesOptions = { source, to: provider, batchSize: 1000 };
 * ```
 */
export interface CheckEnvelopesOptions {
  source: EnvelopeSource;
  /** The target: its active version is what "current" means. Only `describe()` is called. */
  to: KeyProvider;
  /** Other KEKs whose envelopes count as stale rather than foreign (as for `rewrapEnvelopes`' `from`). */
  from?: readonly ProviderRef[];
  /** Rows read per page (default 1000). */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { readonly scanned: number; readonly elapsedMs: number }) => void;
}

/**
 * What {@link checkEnvelopes} found. `versions` counts envelopes per wrapped key (`kind:keyId@version`; an envelope
 * with two wrapped keys counts under both); rows whose header does not parse are listed in `failed`.
 * @example
 * ```ts
 * const { current, stale, versions } = await checkEnvelopes({ source, to: provider });
 * ```
 */
export interface CheckEnvelopesReport {
  readonly source: string;
  readonly target: KekRef;
  readonly scanned: number;
  readonly current: number;
  readonly stale: number;
  readonly foreign: number;
  readonly versions: Readonly<Record<string, number>>;
  readonly failed: readonly { readonly id: string | number; readonly code: string }[];
  readonly aborted: boolean;
  readonly durationMs: number;
}


/**
 * Reads every envelope header of `source` and counts them by KEK version and by standing against `to`'s active
 * version. Writes nothing and needs no key access beyond `to.describe()`.
 * @returns the report; `aborted` when `signal` fired (counts cover the pages read).
 * @throws source errors; ConfigError when `to` reports no active version; TypeError / RangeError for bad options.
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import { checkEnvelopes, sqliteTableSource } from '@keyfold/rotation';
 *
 * const report = await checkEnvelopes({ source: sqliteTableSource({ db: new Database('app.db'), table: 'documents' }), to: provider });
 * if (report.stale > 0) console.log(`${report.stale} envelopes still need 'rewrapEnvelopes'`);
 * ```
 */
export async function checkEnvelopes(options: CheckEnvelopesOptions): Promise<CheckEnvelopesReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { source, to, signal, onProgress } = options;
  if (!source || typeof source.list !== 'function') throw new TypeError('source must be an EnvelopeSource');
  if (!to || typeof to.describe !== 'function') throw new TypeError('to must be a KeyProvider');
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new RangeError('batchSize must be an integer from 1 to 10000');
  const owners = options.from ?? [];
  const batch = Math.min(batchSize, source.batchLimit ?? batchSize);
  const started = performance.now();
  const target = await targetOf(to);
  const versions: Record<string, number> = {};
  const failed: { id: string | number; code: string }[] = [];
  let scanned = 0;
  let current = 0;
  let stale = 0;
  let foreign = 0;
  let aborted = false;
  for (let after: string | number | undefined; ; ) {
    await yieldToEventLoop();
    if (signal?.aborted) {
      aborted = true;
      break;
    }
    const rows = await source.list(after, batch);
    if (rows.length === 0) break;
    scanned += rows.length;
    for (const row of rows) {
      let info: EnvelopeInfo;
      try {
        info = inspectEnvelope(row.envelope);
      } catch (err) {
        failed.push({ id: row.id, code: codeOf(err) });
        continue;
      }
      for (const name of new Set(info.wrappedKeys.map((w) => kekName({ kind: w.kind, keyId: w.keyId, version: w.keyVersion })))) {
        versions[name] = (versions[name] ?? 0) + 1;
      }
      const standing = envelopeStanding(info, target, owners);
      if (standing === 'current') current++;
      else if (standing === 'stale') stale++;
      else foreign++;
    }
    after = (rows[rows.length - 1] as EnvelopeRow).id;
    onProgress?.({ scanned, elapsedMs: performance.now() - started });
    if (rows.length < batch) break;
  }
  return { source: source.name, target, scanned, current, stale, foreign, versions, failed, aborted, durationMs: performance.now() - started };
}
