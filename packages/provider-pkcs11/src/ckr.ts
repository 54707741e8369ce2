/**
 * The PKCS#11 return values (CKR_*) and token flags this package acts on, with their numbers from the PKCS#11
 * 2.40 base specification (stable across versions). pkcs11js reports a failed call as a `Pkcs11Error` whose
 * `message` is the CKR name and whose `code` is the number; both are read here, nothing else about the error.
 * @module
 */

/** CKR values, by name. */
export const CKR = {
  CKR_HOST_MEMORY: 0x02,
  CKR_SLOT_ID_INVALID: 0x03,
  CKR_GENERAL_ERROR: 0x05,
  CKR_FUNCTION_FAILED: 0x06,
  CKR_ARGUMENTS_BAD: 0x07,
  CKR_ATTRIBUTE_SENSITIVE: 0x11,
  CKR_ATTRIBUTE_TYPE_INVALID: 0x12,
  CKR_ATTRIBUTE_VALUE_INVALID: 0x13,
  CKR_DATA_INVALID: 0x20,
  CKR_DATA_LEN_RANGE: 0x21,
  CKR_DEVICE_ERROR: 0x30,
  CKR_DEVICE_MEMORY: 0x31,
  CKR_DEVICE_REMOVED: 0x32,
  CKR_ENCRYPTED_DATA_INVALID: 0x40,
  CKR_ENCRYPTED_DATA_LEN_RANGE: 0x41,
  CKR_FUNCTION_CANCELED: 0x50,
  CKR_FUNCTION_NOT_SUPPORTED: 0x54,
  CKR_KEY_HANDLE_INVALID: 0x60,
  CKR_KEY_SIZE_RANGE: 0x62,
  CKR_KEY_TYPE_INCONSISTENT: 0x63,
  CKR_KEY_FUNCTION_NOT_PERMITTED: 0x68,
  CKR_KEY_NOT_WRAPPABLE: 0x69,
  CKR_KEY_UNEXTRACTABLE: 0x6a,
  CKR_MECHANISM_INVALID: 0x70,
  CKR_MECHANISM_PARAM_INVALID: 0x71,
  CKR_OBJECT_HANDLE_INVALID: 0x82,
  CKR_OPERATION_ACTIVE: 0x90,
  CKR_OPERATION_NOT_INITIALIZED: 0x91,
  CKR_PIN_INCORRECT: 0xa0,
  CKR_PIN_INVALID: 0xa1,
  CKR_PIN_LEN_RANGE: 0xa2,
  CKR_PIN_EXPIRED: 0xa3,
  CKR_PIN_LOCKED: 0xa4,
  CKR_SESSION_CLOSED: 0xb0,
  CKR_SESSION_COUNT: 0xb1,
  CKR_SESSION_HANDLE_INVALID: 0xb3,
  CKR_SESSION_READ_ONLY: 0xb5,
  CKR_TEMPLATE_INCOMPLETE: 0xd0,
  CKR_TEMPLATE_INCONSISTENT: 0xd1,
  CKR_TOKEN_NOT_PRESENT: 0xe0,
  CKR_TOKEN_NOT_RECOGNIZED: 0xe1,
  CKR_TOKEN_WRITE_PROTECTED: 0xe2,
  CKR_UNWRAPPING_KEY_HANDLE_INVALID: 0xf0,
  CKR_USER_ALREADY_LOGGED_IN: 0x100,
  CKR_USER_NOT_LOGGED_IN: 0x101,
  CKR_USER_PIN_NOT_INITIALIZED: 0x102,
  CKR_USER_TYPE_INVALID: 0x103,
  CKR_USER_ANOTHER_ALREADY_LOGGED_IN: 0x104,
  CKR_WRAPPED_KEY_INVALID: 0x110,
  CKR_WRAPPED_KEY_LEN_RANGE: 0x112,
  CKR_WRAPPING_KEY_HANDLE_INVALID: 0x113,
  CKR_CRYPTOKI_NOT_INITIALIZED: 0x190,
  CKR_CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

export type CkrName = keyof typeof CKR;

const NAME_BY_CODE = new Map<number, CkrName>(Object.entries(CKR).map(([name, code]) => [code, name as CkrName]));

/** `C_Initialize` flag: the library may use the operating system's locking (needed for calls from worker threads). */
export const CKF_OS_LOCKING_OK = 0x02;

/** Token flags (CK_TOKEN_INFO.flags) read for operator messages. */
export const TOKEN_FLAGS = {
  CKF_LOGIN_REQUIRED: 0x04,
  CKF_USER_PIN_INITIALIZED: 0x08,
  CKF_TOKEN_INITIALIZED: 0x400,
  CKF_USER_PIN_COUNT_LOW: 0x10000,
  CKF_USER_PIN_FINAL_TRY: 0x20000,
  CKF_USER_PIN_LOCKED: 0x40000,
} as const;

/** What a PKCS#11 failure looks like once recognised. */
export interface Pkcs11Failure {
  /** The CKR name (`CKR_PIN_INCORRECT`), or `CKR_0x...` for a value not in {@link CKR}. */
  readonly name: string;
  readonly code: number;
  /** The PKCS#11 function that failed (`C_Login`), when pkcs11js names it. */
  readonly method: string;
}

/** The raw native form, `CKR_SESSION_HANDLE_INVALID:179`, which a few pkcs11js calls (C_CreateObject) throw unwrapped. */
const RAW_MESSAGE = /^(CKR_[A-Z0-9_]+):(\d+)/;

/**
 * Recognises a PKCS#11 failure from pkcs11js: a `Pkcs11Error` (recognised by shape, not class: the ESM and CJS
 * copies are two classes), or the plain Error some calls throw with the message `CKR_NAME:code`. Returns
 * `undefined` for anything else.
 */
export function pkcs11Failure(err: unknown): Pkcs11Failure | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: unknown; method?: unknown };
  let code: number;
  if (e.name === 'Pkcs11Error' && typeof e.code === 'number') {
    code = e.code;
  } else {
    const m = RAW_MESSAGE.exec(e.message);
    if (!m) return undefined;
    code = Number(m[2]);
  }
  const known = NAME_BY_CODE.get(code);
  const name = known ?? (/^CKR_[A-Z0-9_]+$/.test(e.message) ? e.message : `CKR_0x${code.toString(16)}`);
  return { name, code, method: typeof e.method === 'string' ? e.method : '' };
}

/** True when `err` is the PKCS#11 failure `name`. */
export function isCkr(err: unknown, name: CkrName): boolean {
  return pkcs11Failure(err)?.code === CKR[name];
}
