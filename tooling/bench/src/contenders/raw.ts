/**
 * The floor: raw node:crypto AES-256-GCM with one fixed key, no key wrapping, no header, no KDF.
 * Wire format for the one-shot: iv (12) || ciphertext || tag (16).
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { benchKey, type OneShot, type StreamPair } from './types.js';

const IV = 12;
const TAG = 16;

/** IVs cut from a 4 KiB block refilled by the CSPRNG, as Keyfold takes its salts (for information only). */
function pooledIvs(): () => Uint8Array {
  const pool = new Uint8Array(4096);
  let off = pool.length;
  return () => {
    if (off + IV > pool.length) {
      randomFillSync(pool);
      off = 0;
    }
    const iv = pool.slice(off, off + IV);
    off += IV;
    return iv;
  };
}

/**
 * @param ivs `fresh`: `randomBytes(12)` per seal (the floor the targets are judged against); `pooled`: IVs from a
 *   CSPRNG-filled pool (a row for information: on these machines one `randomBytes` call costs several µs).
 */
export async function createRawOneShot(ivs: 'fresh' | 'pooled' = 'fresh'): Promise<OneShot> {
  const key = await benchKey('raw');
  const nextIv = ivs === 'pooled' ? pooledIvs() : () => randomBytes(IV);
  return {
    id: ivs === 'pooled' ? 'raw-pooled-iv' : 'raw',
    label: ivs === 'pooled' ? 'node:crypto AES-256-GCM, pooled IV' : 'node:crypto AES-256-GCM',
    sync: true,
    seal(plaintext: Uint8Array): Uint8Array {
      const iv = nextIv();
      const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
      const body = c.update(plaintext);
      const fin = c.final();
      return Buffer.concat([iv, body, fin, c.getAuthTag()]);
    },
    open(sealed: Uint8Array): Uint8Array {
      if (sealed.length < IV + TAG) throw new Error('raw: message too short');
      const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV), { authTagLength: TAG });
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
      const body = d.update(sealed.subarray(IV, sealed.length - TAG));
      const fin = d.final();
      return fin.length === 0 ? body : Buffer.concat([body, fin]);
    },
    close: () => Promise.resolve(),
  };
}

/**
 * A node:crypto stream pipeline: one GCM message through a cipher transform and a decipher transform; the tag is
 * handed from the first to the second when the cipher flushes. (Unlike a framed format this releases plaintext
 * before the tag verifies: it is the speed floor, not a safe design.)
 */
export async function createRawStreamPair(): Promise<StreamPair> {
  const key = await benchKey('raw');
  return {
    id: 'raw',
    label: 'node:crypto GCM stream pipeline',
    pair() {
      const iv = randomBytes(IV);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
      const seal = new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          cb(null, cipher.update(chunk));
        },
        flush(cb: TransformCallback) {
          const fin = cipher.final();
          decipher.setAuthTag(cipher.getAuthTag());
          cb(null, fin.length > 0 ? fin : undefined);
        },
      });
      const open = new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          cb(null, decipher.update(chunk));
        },
        flush(cb: TransformCallback) {
          try {
            const fin = decipher.final();
            cb(null, fin.length > 0 ? fin : undefined);
          } catch (err) {
            cb(err as Error);
          }
        },
      });
      return { seal, open };
    },
    close: () => Promise.resolve(),
  };
}
