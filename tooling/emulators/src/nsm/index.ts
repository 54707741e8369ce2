/**
 * Nitro Secure Module emulator: answers the CBOR requests an enclave sends to `/dev/nsm`, with attestation documents
 * signed (COSE_Sign1, ES384) by a test certificate chain, so the whole path — our native ioctl binding, the CBOR
 * request and response, document verification and KMS Recipient — runs outside an enclave.
 *
 * The kernel side is `native/nsm-device.c`, a small LD_PRELOAD library that turns `ioctl(fd, NSM_IOCTL_RAW, ...)` on
 * the emulated device file into a round trip over this emulator's Unix socket. A process started with
 * {@link NsmEmulator.env} in its environment sees a device at {@link NsmEmulator.devicePath} that behaves like
 * `/dev/nsm`. The library is compiled with the system C compiler on first use ({@link buildNsmDeviceShim}).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decoder, Encoder } from 'cbor-x';

const encoder = new Encoder({ tagUint8Array: false, useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

/** The key and certificates that sign documents: leaf key, leaf certificate (DER), and `[root, ..., intermediate]`. */
export interface NitroSigner {
  readonly key: KeyObject;
  readonly certificate: Uint8Array;
  readonly cabundle: readonly Uint8Array[];
}

/** Payload fields of a document; absent optional fields are encoded as null, as the NSM does. */
export interface NitroDocumentFields {
  readonly moduleId?: string | undefined;
  readonly timestamp?: number | undefined;
  readonly pcrs?: ReadonlyMap<number, Uint8Array> | undefined;
  readonly publicKey?: Uint8Array | null;
  readonly userData?: Uint8Array | null;
  readonly nonce?: Uint8Array | null;
}

/** PCR0..2 of the emulated enclave image: 48 bytes of 0xa0, 0x01 and 0x02. */
export const EMULATED_PCRS: ReadonlyMap<number, Uint8Array> = new Map([
  [0, new Uint8Array(48).fill(0xa0)],
  [1, new Uint8Array(48).fill(1)],
  [2, new Uint8Array(48).fill(2)],
]);

/**
 * A Nitro-shaped attestation document: untagged COSE_Sign1 `[protected {1: -35}, {}, payload, signature]`, payload
 * as the NSM writes it, signed ES384 (IEEE P1363 r||s) with `signWith` (default: the signer's key).
 */
export function signNitroDocument(signer: NitroSigner, fields: NitroDocumentFields = {}, signWith: KeyObject = signer.key): Uint8Array {
  const payload = new Map<string, unknown>([
    ['module_id', fields.moduleId ?? 'i-0123456789abcdef0-enc0123456789abcdef'],
    ['digest', 'SHA384'],
    ['timestamp', fields.timestamp ?? Date.now()],
    ['pcrs', new Map(fields.pcrs ?? EMULATED_PCRS)],
    ['certificate', signer.certificate],
    ['cabundle', [...signer.cabundle]],
    ['public_key', fields.publicKey ?? null],
    ['user_data', fields.userData ?? null],
    ['nonce', fields.nonce ?? null],
  ]);
  const protectedHeader = encoder.encode(new Map([[1, -35]]));
  const body = encoder.encode(payload);
  const toBeSigned = encoder.encode(['Signature1', protectedHeader, new Uint8Array(0), body]);
  const signature = sign('sha384', toBeSigned, { key: signWith, dsaEncoding: 'ieee-p1363' });
  return encoder.encode([protectedHeader, new Map(), body, signature]);
}

/** NSM `ErrorCode` values. */
export type NsmErrorCode = 'InvalidArgument' | 'InvalidIndex' | 'InvalidResponse' | 'ReadOnlyIndex' | 'InvalidOperation' | 'BufferTooSmall' | 'InputTooLarge' | 'InternalError';

/** Limits the NSM applies to the optional fields of an attestation request. */
export const NSM_FIELD_LIMITS = { public_key: 1024, user_data: 512, nonce: 512 } as const;

export interface NsmEmulatorOptions {
  readonly signer: NitroSigner;
  readonly pcrs?: ReadonlyMap<number, Uint8Array>;
  readonly moduleId?: string;
  /** Clock for document timestamps (ms). Default Date.now. */
  readonly now?: () => number;
}

/**
 * Faults for the next answers: an NSM error response, bytes that are not CBOR at all, or an answer larger than the
 * 12 KiB response buffer (which the driver refuses with EMSGSIZE).
 */
export interface NsmFaults {
  errorCode?: NsmErrorCode | undefined;
  garbage?: boolean | undefined;
  oversize?: boolean | undefined;
}

export interface NsmEmulator {
  /** The file the preload library treats as the NSM device. */
  readonly devicePath: string;
  readonly socketPath: string;
  /** The compiled LD_PRELOAD library. */
  readonly preloadLibrary: string;
  /** Environment for a child process that should see the emulated device: LD_PRELOAD and the two paths. */
  readonly env: Readonly<Record<string, string>>;
  /** Attestation requests answered, and the decoded fields of the last one. */
  readonly counters: { attestations: number; errors: number; last?: { publicKey: Uint8Array | null; userData: Uint8Array | null; nonce: Uint8Array | null } };
  /** Set to make the following answers fail; clear the fields to recover. */
  readonly faults: NsmFaults;
  close(): Promise<void>;
}

/** The directory of this package (holding native/), from src/nsm/ or dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'native', 'nsm-device.c'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('@keyfold/emulators: native/nsm-device.c not found');
}

/**
 * Compiles `native/nsm-device.c` into `outDir/nsm-device.so` with the system C compiler (`cc`), once per directory.
 * @returns the library's path.
 * @throws Error with the compiler's output when there is no compiler or the build fails.
 */
export function buildNsmDeviceShim(outDir: string): string {
  const out = join(outDir, 'nsm-device.so');
  const source = join(packageRoot(), 'native', 'nsm-device.c');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) return out;
  mkdirSync(outDir, { recursive: true });
  execFileSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O2', '-shared', '-fPIC', '-o', out, source, '-ldl'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

type Fields = { publicKey: Uint8Array | null; userData: Uint8Array | null; nonce: Uint8Array | null };

/** Decodes an NSM request; an answer (error code) when it is not a well-formed Attestation request. */
function parseRequest(bytes: Uint8Array): Fields | NsmErrorCode {
  let request: unknown;
  try {
    request = decoder.decode(bytes);
  } catch {
    return 'InvalidArgument';
  }
  if (typeof request === 'string') return 'InvalidOperation'; // DescribeNSM, GetRandom, ...: not emulated
  if (!(request instanceof Map) || request.size !== 1) return 'InvalidArgument';
  const body: unknown = request.get('Attestation');
  if (body === undefined) return 'InvalidOperation';
  if (!(body instanceof Map)) return 'InvalidArgument';
  const fields: Fields = { publicKey: null, userData: null, nonce: null };
  const names = { public_key: 'publicKey', user_data: 'userData', nonce: 'nonce' } as const;
  for (const [key, value] of body as Map<unknown, unknown>) {
    if (typeof key !== 'string' || !(key in names)) return 'InvalidArgument';
    const name = names[key as keyof typeof names];
    if (value === null) continue;
    if (!(value instanceof Uint8Array)) return 'InvalidArgument';
    if (value.length > NSM_FIELD_LIMITS[key as keyof typeof NSM_FIELD_LIMITS]) return 'InputTooLarge';
    fields[name] = new Uint8Array(value);
  }
  return fields;
}

/**
 * Starts the NSM emulator: a Unix socket server in a new temporary directory, the device file next to it, and the
 * preload library built there.
 * @example
 * ```ts
 * const nsm = await startNsmEmulator({ signer });
 * spawn(process.execPath, ['enclave-app.js'], { env: { ...process.env, ...nsm.env } });
 * ```
 */
export async function startNsmEmulator(options: NsmEmulatorOptions): Promise<NsmEmulator> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'keyfold-nsm-')));
  const devicePath = join(dir, 'nsm');
  const socketPath = join(dir, 'nsm.sock');
  writeFileSync(devicePath, '', { mode: 0o600 });
  const preloadLibrary = buildNsmDeviceShim(dir);
  const now = options.now ?? Date.now;
  const counters: NsmEmulator['counters'] = { attestations: 0, errors: 0 };
  const faults: NsmFaults = {};

  const answer = (request: Uint8Array): Uint8Array => {
    if (faults.garbage) return randomBytes(64);
    if (faults.oversize) return randomBytes(0x3000 + 1);
    const parsed = faults.errorCode ?? parseRequest(request);
    if (typeof parsed === 'string') {
      counters.errors++;
      return encoder.encode(new Map([['Error', parsed]]));
    }
    counters.attestations++;
    counters.last = parsed;
    const document = signNitroDocument(options.signer, {
      moduleId: options.moduleId,
      timestamp: now(),
      pcrs: options.pcrs,
      ...parsed,
    });
    return encoder.encode(new Map([['Attestation', new Map([['document', document]])]]));
  };

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 4) return;
      const length = buffered.readUInt32BE(0);
      if (length > 0x1000) {
        socket.destroy();
        return;
      }
      if (buffered.length < 4 + length) return;
      const response = answer(buffered.subarray(4, 4 + length));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(response.length);
      socket.end(Buffer.concat([header, response]));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });

  return {
    devicePath,
    socketPath,
    preloadLibrary,
    env: { LD_PRELOAD: preloadLibrary, KEYFOLD_NSM_EMULATOR_DEVICE: devicePath, KEYFOLD_NSM_EMULATOR_SOCKET: socketPath },
    counters,
    faults,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
