/**
 * Checkpoint leases (schema 3) on both backends: a worker's claim creates or takes a checkpoint with a lease; a
 * live lease of another worker is respected; an expired one (or one whose owner is known dead) is taken over with
 * the cursor kept; a checkpoint write under a lost lease writes nothing.
 */
import { describe, expect, it } from 'vitest';
import { CheckpointLeasedError, checkpointLeaseOwner, leaseOwnerIsDead, type KeyStore } from '../src/index.js';
import { pgStore, sqliteStore } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStore()],
] as const)('checkpoint leases on %s', (_name, open) => {
  it('a live lease is respected; an expired one is taken over and the cursor kept; the old owner can no longer write', async () => {
    const store: KeyStore = await open();
    const a = checkpointLeaseOwner();
    const b = checkpointLeaseOwner();
    try {
      const first = await store.claimCheckpoint({ name: 'rotate:x', owner: a, ttlMs: 400, data: { target: 'x' } });
      expect(first).toMatchObject({ existed: false, takenOver: undefined, checkpoint: { cursor: undefined, processed: 0, data: { target: 'x' }, lease: { owner: a } } });
      await store.saveCheckpoint({ name: 'rotate:x', cursor: 'k10', processedDelta: 10, lease: { owner: a, ttlMs: 400 } });
      // B is refused while A's lease lives, and A's renewals keep it alive.
      const refused = await store.claimCheckpoint({ name: 'rotate:x', owner: b, ttlMs: 400 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(CheckpointLeasedError);
      expect(refused).toMatchObject({ code: 'UNAVAILABLE', lease: { owner: a } });
      await sleep(250);
      expect(await store.renewCheckpointLease('rotate:x', a, 400)).toBe(true);
      await sleep(250);
      await expect(store.claimCheckpoint({ name: 'rotate:x', owner: b, ttlMs: 400 })).rejects.toBeInstanceOf(CheckpointLeasedError);
      // A stops renewing (dies): after the TTL, B takes over and resumes from A's cursor.
      await sleep(500);
      const taken = await store.claimCheckpoint({ name: 'rotate:x', owner: b, ttlMs: 400 });
      expect(taken).toMatchObject({ existed: true, takenOver: { owner: a }, checkpoint: { cursor: 'k10', processed: 10, lease: { owner: b } } });
      // A, back from the dead, can neither renew nor write its checkpoint, nor delete it.
      expect(await store.renewCheckpointLease('rotate:x', a, 400)).toBe(false);
      await expect(store.saveCheckpoint({ name: 'rotate:x', cursor: 'k20', processedDelta: 10, lease: { owner: a, ttlMs: 400 } })).rejects.toMatchObject({
        code: 'UNAVAILABLE',
      });
      await store.deleteCheckpoint('rotate:x', a);
      expect(await store.getCheckpoint('rotate:x')).toMatchObject({ cursor: 'k10', processed: 10, lease: { owner: b } });
      // B's own claim again is granted (not a take-over); release leaves the checkpoint for the next run.
      expect(await store.claimCheckpoint({ name: 'rotate:x', owner: b, ttlMs: 400 })).toMatchObject({ existed: true, takenOver: undefined });
      await store.releaseCheckpointLease('rotate:x', b);
      expect(await store.getCheckpoint('rotate:x')).toMatchObject({ cursor: 'k10', lease: undefined });
      expect(await store.claimCheckpoint({ name: 'rotate:x', owner: a, ttlMs: 400 })).toMatchObject({ existed: true, takenOver: undefined });
      await store.deleteCheckpoint('rotate:x', a);
      expect(await store.getCheckpoint('rotate:x')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('a lease whose owner is known dead is taken over at once; concurrent claims grant one owner', async () => {
    const store = await open();
    try {
      const a = checkpointLeaseOwner();
      await store.claimCheckpoint({ name: 'rotate:y', owner: a, ttlMs: 60_000 });
      const b = checkpointLeaseOwner();
      await expect(store.claimCheckpoint({ name: 'rotate:y', owner: b, ttlMs: 60_000, isDead: () => false })).rejects.toBeInstanceOf(CheckpointLeasedError);
      expect(await store.claimCheckpoint({ name: 'rotate:y', owner: b, ttlMs: 60_000, isDead: (o) => o === a })).toMatchObject({ takenOver: { owner: a } });
      const owners = Array.from({ length: 6 }, () => checkpointLeaseOwner());
      const results = await Promise.allSettled(owners.map((owner) => store.claimCheckpoint({ name: 'rotate:z', owner, ttlMs: 60_000 })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r).reason instanceof CheckpointLeasedError)).toBe(true);
      expect(() => store.claimCheckpoint({ name: 'rotate:z', owner: a, ttlMs: 10 })).toThrow(RangeError);
    } finally {
      await store.close();
    }
  });
});

describe('leaseOwnerIsDead', () => {
  it('is true only for an owner of this machine whose pid no longer runs', () => {
    const mine = checkpointLeaseOwner();
    expect(leaseOwnerIsDead(mine)).toBe(false);
    const [host, , machine, rand] = mine.split('/');
    expect(leaseOwnerIsDead(`${host}/${process.ppid}/${machine}/${rand}`)).toBe(false);
    expect(leaseOwnerIsDead(`${host}/4194303/${machine}/${rand}`)).toBe(machine !== '-');
    expect(leaseOwnerIsDead(`${host}/4194303/0123456789abcdef/${rand}`)).toBe(false);
    expect(leaseOwnerIsDead('not an owner')).toBe(false);
  });
});
