import { describe, expect, it } from 'vitest';
import { createMemoryProvider } from '@keyfold/provider-local';
import { DEFAULT_GRACE_PERIOD_MS, DEFAULT_MAX_AGE_MS, isDue, runIfDue } from '../src/index.js';
import { makeKeks, seedKeys, sqliteStore } from './helpers.js';

const DAY = 86_400_000;

describe('rotation policy', () => {
  it('defaults to 90 days maximum age and a 24 hour grace period', () => {
    expect(DEFAULT_MAX_AGE_MS).toBe(90 * DAY);
    expect(DEFAULT_GRACE_PERIOD_MS).toBe(DAY);
  });

  it('isDue: nothing, then a new version after maxAge, then a re-wrap once the grace period has passed', async () => {
    const store = await sqliteStore();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v1, 10);
      await store.recordKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' }, { activate: true, actor: 'test' });
      const t0 = Date.now();
      const fresh = await isDue({ store, provider: keks.v1, now: t0 + DAY });
      expect(fresh).toMatchObject({ due: false, action: 'none', pendingKeys: 0 });
      expect(Date.parse(fresh.nextDueAt!)).toBeGreaterThan(t0 + 89 * DAY);
      expect(await isDue({ store, provider: keks.v1, now: t0 + 91 * DAY })).toMatchObject({ due: true, action: 'add-version' });
      // V2 becomes active: keys wait for the grace period, then a re-wrap is due.
      await store.recordKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' }, { activate: true, actor: 'test' });
      const waiting = await isDue({ store, provider: keks.v2, now: Date.now() + 60_000 });
      expect(waiting).toMatchObject({ due: false, action: 'none', pendingKeys: 10 });
      expect(await isDue({ store, provider: keks.v2, now: Date.now() + DAY + 60_000 })).toMatchObject({ due: true, action: 'rewrap', pendingKeys: 10 });
      await expect(isDue({ store, provider: keks.v2, policy: { maxAgeMs: 0 } })).rejects.toBeInstanceOf(RangeError);
    } finally {
      await store.close();
    }
  });

  it('runIfDue adds a version when the active one is too old, re-wraps after the grace period, and otherwise does nothing', async () => {
    const store = await sqliteStore();
    const provider = createMemoryProvider({ securityMode: 'development' });
    try {
      await store.ensureInstallLock(provider);
      await store.recordKekVersion({ kind: 'memory', keyId: 'memory', version: '1' }, { activate: true, actor: 'test' });
      const { dataKeyContext, keyCheckValue } = await import('@keyfold/keystore');
      const dk = new Uint8Array(32).fill(7);
      await store.insertDataKeys([{ id: 'a', owner: 'o', version: 1, wrapped: await provider.wrapKey(dk, dataKeyContext({ id: 'a', owner: 'o' })), keyCheck: keyCheckValue(dk) }]);
      expect((await runIfDue({ store, provider })).action).toBe('none');
      const added = await runIfDue({ store, provider, now: Date.now() + 91 * DAY });
      expect(added).toMatchObject({ action: 'added-version', version: '2' });
      expect((await store.listKekVersions()).find((v) => v.state === 'active')?.version).toBe('2');
      // Within the grace period: nothing yet.
      expect((await runIfDue({ store, provider })).action).toBe('none');
      const rewrapped = await runIfDue({ store, provider, now: Date.now() + 2 * DAY });
      expect(rewrapped.action).toBe('rewrapped');
      expect(rewrapped.action === 'rewrapped' && rewrapped.report.rewrapped).toBe(1);
      expect((await runIfDue({ store, provider, now: Date.now() + 2 * DAY })).action).toBe('none');
    } finally {
      await store.close();
    }
  });

  it('runIfDue says what to do when the provider cannot add a version itself', async () => {
    const store = await sqliteStore();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v2, 1);
      await store.recordKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' }, { activate: true, actor: 'test' });
      await expect(runIfDue({ store, provider: keks.v2, now: Date.now() + 100 * DAY })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('KEYFOLD_KEK_V<n>'),
      });
    } finally {
      await store.close();
    }
  });
});
