import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { testStores } from '../../../tooling/keystore-test-stores.js';
import { createEnvProvider, type EnvProvider } from '@keyfold/provider-local';
import {
  dataKeyContext,
  keyCheckValue,
  openPostgresKeyStore,
  openSqliteKeyStore,
  type KeyStore,
  type NewDataKey,
} from '@keyfold/keystore';

export const { tempDir, freshPath, sqliteStore, pgUrl, freshSchema, pgStore } = testStores('rot', {
  sqlite: openSqliteKeyStore,
  postgres: openPostgresKeyStore,
});

/** Two KEK versions in env form, and providers active on each. */
export interface Keks {
  readonly env: Record<string, string>;
  readonly v1: EnvProvider;
  readonly v2: EnvProvider;
}

export function makeKeks(): Keks {
  const env = { KEYFOLD_KEK_V1: randomBytes(32).toString('hex'), KEYFOLD_KEK_V2: randomBytes(32).toString('hex') };
  return { env, v1: createEnvProvider({ env, activeVersion: 1 }), v2: createEnvProvider({ env, activeVersion: 2 }) };
}

export function keyId(i: number): string {
  return `k${String(i).padStart(7, '0')}`;
}

/**
 * Stores `count` random data keys wrapped under `provider` (owner `table:t:<i>`), returns the plaintext keys
 * concatenated (key i at offset 32 * i) so a test can check every key still opens to the same bytes.
 */
export async function seedKeys(store: KeyStore, provider: EnvProvider, count: number, start = 0): Promise<Uint8Array> {
  await store.ensureInstallLock(provider);
  const all = new Uint8Array(randomBytes(32 * count));
  for (let b = 0; b < count; b += 5000) {
    const batch: NewDataKey[] = [];
    for (let i = b; i < Math.min(count, b + 5000); i++) {
      const id = keyId(start + i);
      const owner = `table:t:${start + i}`;
      const dk = all.subarray(32 * i, 32 * i + 32).slice();
      batch.push({ id, owner, version: 1, wrapped: await provider.wrapKey(dk, dataKeyContext({ id, owner })), keyCheck: keyCheckValue(dk) });
      dk.fill(0);
    }
    await store.insertDataKeys(batch);
  }
  return all;
}

/** Asserts every key opens with `provider` to the seeded bytes; returns how many did. */
export async function countOpening(store: KeyStore, provider: EnvProvider, keys: Uint8Array, start = 0): Promise<number> {
  let ok = 0;
  for (let after: string | undefined; ; ) {
    const page = await store.listDataKeys({ limit: 5000, ...(after === undefined ? {} : { after }) });
    for (const k of page) {
      if (!k.wrapped) continue;
      const i = Number(k.id.slice(1)) - start;
      const got = await provider.unwrapKey(k.wrapped, dataKeyContext(k));
      if (Buffer.from(got).equals(Buffer.from(keys.subarray(32 * i, 32 * i + 32)))) ok++;
      got.fill(0);
    }
    if (page.length < 5000) break;
    after = page[page.length - 1]!.id;
  }
  return ok;
}

export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
