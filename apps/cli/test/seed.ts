/**
 * Seeding a key store the CLI created with many data keys at once, straight through `@keyfold/keystore` (thousands
 * a second; a `tenant create` per key would start a process each), and checking afterwards that every one of them
 * still unwraps to the bytes it was created with. The keys are wrapped under the env provider's KEK version 1, so the
 * installation must be `init --provider env` with the same `KEYFOLD_KEK_V1`.
 */
import { randomBytes } from 'node:crypto';
import { dataKeyContext, keyCheckValue, type KeyStore, type NewDataKey } from '@keyfold/keystore';
import { createEnvProvider } from '@keyfold/provider-local';

/** Two random env KEK versions (`KEYFOLD_KEK_V1`, `KEYFOLD_KEK_V2`). */
export function envKeks(): { KEYFOLD_KEK_V1: string; KEYFOLD_KEK_V2: string } {
  return { KEYFOLD_KEK_V1: randomBytes(32).toString('hex'), KEYFOLD_KEK_V2: randomBytes(32).toString('hex') };
}

const seededId = (i: number): string => `seed-${String(i).padStart(7, '0')}`;

/**
 * Stores `count` random data keys (ids `seed-0000000`, ..., owner `table:seed:<i>`) wrapped under
 * `KEYFOLD_KEK_V1` of `kek`, and returns their plaintext concatenated (key i at offset 32 * i).
 */
export async function seedDataKeys(store: KeyStore, kek: { KEYFOLD_KEK_V1: string }, count: number): Promise<Uint8Array> {
  const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: kek.KEYFOLD_KEK_V1 } });
  const all = new Uint8Array(randomBytes(32 * count));
  try {
    for (let start = 0; start < count; start += 5000) {
      const batch: NewDataKey[] = [];
      for (let i = start; i < Math.min(count, start + 5000); i++) {
        const id = seededId(i);
        const owner = `table:seed:${i}`;
        const dataKey = all.slice(32 * i, 32 * i + 32);
        batch.push({ id, owner, version: 1, wrapped: await provider.wrapKey(dataKey, dataKeyContext({ id, owner })), keyCheck: keyCheckValue(dataKey) });
        dataKey.fill(0);
      }
      await store.insertDataKeys(batch);
    }
  } finally {
    await provider.close();
  }
  return all;
}

/**
 * How many of the seeded keys unwrap (with either KEK version, each read from the key's own wrapped record) to
 * exactly the bytes {@link seedDataKeys} returned, and under which KEK version they are now.
 */
export async function countIntact(
  store: KeyStore,
  kek: { KEYFOLD_KEK_V1: string; KEYFOLD_KEK_V2: string },
  seeded: Uint8Array,
): Promise<{ intact: number; byVersion: Record<string, number> }> {
  const provider = createEnvProvider({ env: { ...kek } });
  let intact = 0;
  const byVersion: Record<string, number> = {};
  try {
    for (let after: string | undefined; ; ) {
      const page = await store.listDataKeys({ ownerPrefix: 'table:seed:', limit: 5000, ...(after === undefined ? {} : { after }) });
      for (const key of page) {
        if (key.wrapped === undefined) continue;
        byVersion[key.wrapped.keyVersion] = (byVersion[key.wrapped.keyVersion] ?? 0) + 1;
        const i = Number(key.id.slice('seed-'.length));
        const got = await provider.unwrapKey(key.wrapped, dataKeyContext(key));
        if (Buffer.from(got).equals(seeded.subarray(32 * i, 32 * i + 32))) intact++;
        got.fill(0);
      }
      const last = page.at(-1);
      if (page.length < 5000 || last === undefined) break;
      after = last.id;
    }
  } finally {
    await provider.close();
  }
  return { intact, byVersion };
}
