/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Cloud KMS uses for its end-to-end integrity
 * fields. Node has no built-in CRC32C, and the algorithm is 20 lines, so it lives here instead of in a dependency.
 *
 * Slicing-by-8 tables: eight bytes per step. Check value: `crc32c("123456789") === 0xE3069283`.
 * @module
 */

const POLY = 0x82f63b78;

/** TABLES[k][b]: the CRC of byte b followed by k zero bytes. */
const TABLES: readonly Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1] as Uint32Array;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      t[n] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
    tables.push(t);
  }
  return tables;
})();

/**
 * The CRC32C of `data`, as an unsigned 32-bit number.
 * @example
 * ```ts
 * crc32c(new TextEncoder().encode('123456789')) === 0xe3069283; // true
 * ```
 */
export function crc32c(data: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let crc = 0xffffffff;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const lo = (crc ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0;
    crc =
      (t7[lo & 0xff] as number) ^
      (t6[(lo >>> 8) & 0xff] as number) ^
      (t5[(lo >>> 16) & 0xff] as number) ^
      (t4[lo >>> 24] as number) ^
      (t3[data[i + 4] as number] as number) ^
      (t2[data[i + 5] as number] as number) ^
      (t1[data[i + 6] as number] as number) ^
      (t0[data[i + 7] as number] as number);
  }
  for (; i < n; i++) crc = (crc >>> 8) ^ (t0[(crc ^ (data[i] as number)) & 0xff] as number);
  return (crc ^ 0xffffffff) >>> 0;
}
