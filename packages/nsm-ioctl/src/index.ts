/**
 * @keyfold/nsm-ioctl: the `ioctl` Node cannot make, for the AWS Nitro Secure Module (`/dev/nsm`).
 *
 * One function, {@link nsmRequest}: send a CBOR-encoded NSM request, get the CBOR response bytes. Encoding and
 * decoding the CBOR (and everything else about attestation) is `@keyfold/attestation`'s job; this package is the
 * smallest native part that can do the system call, built from C with node-gyp when it is installed. It is an
 * optional dependency of `@keyfold/attestation`, so a machine without a C toolchain still installs that package and
 * `nsmSource()` reports the missing binding clearly.
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';

/** Largest request the NSM driver accepts (`NSM_REQUEST_MAX_SIZE`). */
export const NSM_REQUEST_MAX_SIZE = 0x1000;
/** Largest response the NSM driver returns (`NSM_RESPONSE_MAX_SIZE`). */
export const NSM_RESPONSE_MAX_SIZE = 0x3000;

interface NativeBinding {
  request(devicePath: string, request: Uint8Array): Promise<Uint8Array>;
  readonly ioctlRequestCode: number;
  readonly requestMaxSize: number;
  readonly responseMaxSize: number;
}

/** An NSM system call failed; `code` is the errno name (`ENOENT`, `EACCES`, `ENOTTY`, ...), `syscall` which call. */
export class NsmIoError extends Error {
  override readonly name = 'NsmIoError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly devicePath: string;
  constructor(devicePath: string, errno: number, syscall: string) {
    const code = errnoName(errno);
    super(`${syscall} on ${devicePath} failed: ${code}`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.devicePath = devicePath;
  }
}

/** The binding could not be loaded (not built: no C toolchain at install time, or a different Node ABI). */
export class NsmBindingUnavailableError extends Error {
  override readonly name = 'NsmBindingUnavailableError';
  readonly code = 'ERR_NSM_BINDING_UNAVAILABLE';
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

let binding: NativeBinding | undefined;
let loadError: unknown;

function load(): NativeBinding {
  if (binding) return binding;
  if (loadError === undefined) {
    try {
      binding = createRequire(import.meta.url)('../build/Release/nsm_ioctl.node') as NativeBinding;
      return binding;
    } catch (cause) {
      loadError = cause;
    }
  }
  throw new NsmBindingUnavailableError(
    '@keyfold/nsm-ioctl was not built (it is compiled with node-gyp when installed: that needs python3, make and a C compiler); reinstall it where those exist',
    { cause: loadError },
  );
}

/**
 * Whether the native binding loaded. Does not touch the device.
 * @example
 * ```ts
 * if (!isNsmBindingAvailable()) console.warn('no NSM binding: use an HTTP attestation source');
 * ```
 */
export function isNsmBindingAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/**
 * The `ioctl` request number the binding uses: `_IOWR(0x0A, 0, struct nsm_raw)`, 0xC0200A00 on Linux.
 * @throws NsmBindingUnavailableError when the binding was not built.
 */
export function nsmIoctlRequestCode(): number {
  return load().ioctlRequestCode;
}

/**
 * Sends one raw NSM request: opens `devicePath` read-write, issues `NSM_IOCTL_RAW` with `request` (CBOR, 1..4096
 * bytes) and a 12 KiB response buffer, closes the device. Runs on the libuv thread pool.
 * @returns the CBOR response bytes the device wrote.
 * @throws TypeError or RangeError for bad arguments (before any system call); NsmBindingUnavailableError when the
 *   binding was not built; (rejects with) NsmIoError when `open` or `ioctl` fails (`ENOENT`: no device; `EACCES`;
 *   `ENOTTY`: the path is not an NSM device; `EMSGSIZE`: request or response too large for the driver).
 * @example
 * ```ts
 * const response = await nsmRequest('/dev/nsm', cborEncodedRequest);
 * ```
 */
export async function nsmRequest(devicePath: string, request: Uint8Array): Promise<Uint8Array> {
  if (typeof devicePath !== 'string' || devicePath.length === 0 || devicePath.includes('\0')) {
    throw new TypeError('devicePath must be a non-empty path without NUL characters');
  }
  if (!(request instanceof Uint8Array)) throw new TypeError('request must be a Uint8Array');
  if (request.length === 0 || request.length > NSM_REQUEST_MAX_SIZE) {
    throw new RangeError(`an NSM request is 1..${NSM_REQUEST_MAX_SIZE} bytes; got ${request.length}`);
  }
  const native = load();
  try {
    const response = await native.request(devicePath, request);
    return new Uint8Array(response.buffer, response.byteOffset, response.byteLength);
  } catch (cause) {
    const e = cause as { errno?: unknown; syscall?: unknown };
    if (typeof e.errno === 'number' && typeof e.syscall === 'string') throw new NsmIoError(devicePath, e.errno, e.syscall);
    throw cause;
  }
}
