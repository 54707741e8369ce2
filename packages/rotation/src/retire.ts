/**
 * `retireKekVersion`: marks a KEK version as retired in the store's registry, refused while anything references it.
 * @module
 */
import type { KekRef, KekVersionRecord, KeyStore } from '@keyfold/keystore';

/**
 * Options of {@link retireKekVersion}.
 * @example
 * ```ts
 * const options: RetireKekVersionOptions = { store, kek: { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' } };
 * ```
 */
export interface RetireKekVersionOptions {
  store: KeyStore;
  kek: KekRef;
  actor?: string;
}

/**
 * Retires a KEK version once no data key is wrapped under it and it is not the active version (checked in the
 * same transaction as the change; audited `kek.retire`). After this, remove the version from the provider (unset
 * `KEYFOLD_KEK_V1`, disable the KMS key version) at your own pace: nothing in the store needs it.
 * @returns the retired version record.
 * @throws PolicyError `POLICY_VIOLATION` naming how many keys still reference it (run `rotateKek` first) or when it
 *   is the active version; ProviderError `KEY_NOT_FOUND` when the store never registered it.
 * @example
 * ```ts
 * import { retireKekVersion, rotateKek } from '@keyfold/rotation';
 *
 * await rotateKek({ store, to: provider });
 * await retireKekVersion({ store, kek: { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' } });
 * ```
 */
export function retireKekVersion(options: RetireKekVersionOptions): Promise<KekVersionRecord> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (!options.store || typeof options.store.retireKekVersion !== 'function') throw new TypeError('store must be a KeyStore');
  return options.store.retireKekVersion(options.kek, options.actor ?? 'rotation');
}
