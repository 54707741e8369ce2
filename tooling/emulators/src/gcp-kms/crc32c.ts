/**
 * CRC32C (Castagnoli), bit by bit: deliberately a different implementation from the provider's table-driven one,
 * so the emulator and the client cross-check each other on every call.
 * @module
 */

/** The CRC32C of `data` as an unsigned 32-bit number. `crc32c("123456789") === 0xE3069283`. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
