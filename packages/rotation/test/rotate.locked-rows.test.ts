/**
 * Keys locked by another transaction during a PostgreSQL rotation. Leases use `FOR UPDATE SKIP LOCKED`, so a row
 * another transaction holds (an application's `SELECT ... FOR UPDATE`, a long tenant update) is not handed out. The
 * run must never report success while such a key is still under the old version: either it waits and re-wraps the
 * key once the lock is gone, or it names the key as not done (`LOCKED`), and `retireKekVersion` refuses the old
 * version until a second run has moved it.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { KeyfoldError } from '@keyfold/envelope-core';
import type { KeyStore } from '@keyfold/keystore';
import { retireKekVersion, rotateKek } from '../src/index.js';
import { countOpening, freshSchema, keyId, makeKeks, pgStore, pgUrl, seedKeys } from './helpers.js';

const V1 = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' };
const V2 = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' };
const KEYS = 40;

/** A separate connection holding `FOR UPDATE` row locks on `ids` in an open transaction until `release()`. */
async function lockRows(schema: string, ids: readonly string[]): Promise<{ release: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: pgUrl() });
  await client.connect();
  await client.query('BEGIN');
  const locked = await client.query(`SELECT id FROM "${schema}".keyfold_data_keys WHERE id = ANY($1::text[]) FOR UPDATE`, [ids]);
  expect(locked.rowCount).toBe(ids.length);
  let done = false;
  return {
    release: async () => {
      if (done) return;
      done = true;
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

/**
 * `store`, except that `fn` runs at the `nth` lease that hands out no key while every key but the `locked` ones is
 * already on v2: the run has nothing left but keys another transaction holds.
 */
function onlyLockedLeft(store: KeyStore, locked: number, nth: number, fn: () => void): KeyStore {
  let seen = 0;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'leaseForRewrap') {
        return async (request: Parameters<KeyStore['leaseForRewrap']>[0]) => {
          const lease = await target.leaseForRewrap(request);
          if (lease.keys.length === 0 && (await target.countDataKeys({ kek: V2 })) === KEYS - locked && ++seen === nth) fn();
          return lease;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Ids of live keys whose wrapped key is not under version `version`. */
async function notOn(store: KeyStore, version: string): Promise<string[]> {
  const keys = await store.listDataKeys({ limit: 10_000 });
  return keys.filter((k) => k.wrapped && k.wrapped.keyVersion !== version).map((k) => k.id);
}

describe('rotateKek on PostgreSQL with rows locked by another transaction', () => {
  it('names keys that stay locked as not done, never as finished; retire refuses; a second run finishes them', async () => {
    const schema = freshSchema();
    const keks = makeKeks();
    const store = await pgStore(schema);
    const lockedIds = [keyId(3), keyId(17), keyId(39)];
    let lock: { release: () => Promise<void> } | undefined;
    try {
      const plain = await seedKeys(store, keks.v1, KEYS);
      await store.recordKekVersion(V1, { activate: true, actor: 'test' });
      lock = await lockRows(schema, lockedIds);
      // lockWaitMs: 0 — report locked keys at once rather than wait for them (the lock is held throughout).
      const report = await rotateKek({ store, to: keks.v2, batchSize: 5, concurrency: 1, lockWaitMs: 0 });

      // What holds whatever the engine did: every key still under v1 is named in the report.
      const left = await notOn(store, '2');
      expect(left).toEqual(lockedIds);
      expect(report.aborted).toBe(false);
      expect(report.rewrapped).toBe(KEYS - lockedIds.length);
      expect([...report.failed].sort((a, b) => a.id.localeCompare(b.id))).toEqual(lockedIds.map((id) => ({ id, code: 'LOCKED' })));
      const summary = (await store.listAudit({ event: 'kek.rotate' })).at(-1);
      expect(summary?.details).toMatchObject({ rewrapped: KEYS - lockedIds.length, failed: lockedIds.length });

      // The old version still wraps the locked keys: retiring it is refused, with a coded error naming how many.
      const refused = await retireKekVersion({ store, kek: V1 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(KeyfoldError);
      expect((refused as KeyfoldError).code).toBe('POLICY_VIOLATION');
      expect((refused as KeyfoldError).message).toContain(`still wraps ${lockedIds.length} data key(s)`);
      expect((await store.listKekVersions()).find((v) => v.version === '1')?.state).not.toBe('retired');

      // Once the lock is gone a second run moves exactly those keys; then the version can be retired.
      await lock.release();
      const again = await rotateKek({ store, to: keks.v2, batchSize: 5, concurrency: 1, lockWaitMs: 0 });
      expect(again.failed).toEqual([]);
      expect(again.rewrapped).toBe(lockedIds.length);
      expect(await notOn(store, '2')).toEqual([]);
      expect((await store.listDataKeys({ limit: KEYS })).every((k) => k.revision === 2)).toBe(true);
      expect(await countOpening(store, keks.v2, plain)).toBe(KEYS);
      expect((await retireKekVersion({ store, kek: V1 })).state).toBe('retired');
      expect((await store.verifyAudit()).ok).toBe(true);
    } finally {
      await lock?.release();
      await store.close();
    }
  });

  it('waits for a lock released at the end of the run and re-wraps those keys too', async () => {
    const schema = freshSchema();
    const keks = makeKeks();
    const store = await pgStore(schema);
    const lockedIds = [keyId(0), keyId(21), keyId(39)];
    await seedKeys(store, keks.v1, KEYS);
    await store.recordKekVersion(V1, { activate: true, actor: 'test' });
    const lock = await lockRows(schema, lockedIds);
    // The other transaction ends only once the run has nothing else left: at the second lease that finds no key
    // while every unlocked key is already on v2 (the end of a pass that started from the first key and did nothing).
    let releasing: Promise<void> | undefined;
    const watched = onlyLockedLeft(store, lockedIds.length, 2, () => {
      releasing = lock.release();
    });
    try {
      const report = await rotateKek({ store: watched, to: keks.v2, batchSize: 5, concurrency: 1 });
      expect(releasing).toBeDefined();
      await releasing;
      expect(report.failed).toEqual([]);
      expect(report.rewrapped).toBe(KEYS);
      expect(await notOn(store, '2')).toEqual([]);
      // Each key written exactly once.
      expect((await store.listDataKeys({ limit: KEYS })).every((k) => k.revision === 2)).toBe(true);
      expect((await retireKekVersion({ store, kek: V1 })).state).toBe('retired');
    } finally {
      await lock.release();
      await store.close();
    }
  });

  it('an abort while waiting for locked keys stops the run as aborted, not as finished', async () => {
    const schema = freshSchema();
    const keks = makeKeks();
    const store = await pgStore(schema);
    await seedKeys(store, keks.v1, KEYS);
    const lock = await lockRows(schema, [keyId(12)]);
    const controller = new AbortController();
    try {
      const watched = onlyLockedLeft(store, 1, 2, () => controller.abort());
      const report = await rotateKek({ store: watched, to: keks.v2, batchSize: 5, lockWaitMs: 600_000, signal: controller.signal });
      expect(report.aborted).toBe(true);
      expect(report.rewrapped).toBe(KEYS - 1);
      expect(await notOn(store, '2')).toEqual([keyId(12)]);
      // The checkpoint stays: the next run resumes, and finishes once the lock is gone.
      expect((await store.listCheckpoints('rotate:')).length).toBe(1);
      await lock.release();
      const again = await rotateKek({ store, to: keks.v2, batchSize: 5 });
      expect(again.resumed).toBe(true);
      expect(again.failed).toEqual([]);
      expect(again.rewrapped).toBe(1);
      expect(await notOn(store, '2')).toEqual([]);
    } finally {
      await lock.release();
      await store.close();
    }
  });

  it('rejects a bad lockWaitMs', async () => {
    const keks = makeKeks();
    const store = await pgStore();
    try {
      await expect(rotateKek({ store, to: keks.v2, lockWaitMs: -1 })).rejects.toThrow(RangeError);
      await expect(rotateKek({ store, to: keks.v2, lockWaitMs: 1.5 })).rejects.toThrow(/lockWaitMs must be an integer/);
    } finally {
      await store.close();
    }
  });

  it('a dry run names locked keys as not checked', async () => {
    const schema = freshSchema();
    const keks = makeKeks();
    const store = await pgStore(schema);
    await seedKeys(store, keks.v1, KEYS);
    const lock = await lockRows(schema, [keyId(8)]);
    try {
      const report = await rotateKek({ store, to: keks.v2, batchSize: 5, dryRun: true });
      expect(report.rewrapped).toBe(KEYS - 1);
      expect(report.failed).toEqual([{ id: keyId(8), code: 'LOCKED' }]);
    } finally {
      await lock.release();
      await store.close();
    }
  });
});
