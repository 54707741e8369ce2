/**
 * Options of the PKCS#11 provider and of KEK version creation, and their validation. Caller mistakes (wrong types,
 * two PIN sources, a bad label) are TypeError / RangeError; a PIN source that is configured but empty or unreadable
 * is a ConfigError (CONFIG_INVALID), and a PIN file readable by group or other is refused in production mode.
 * @module
 */
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  assertPrivatePath,
  resolveSecurityMode,
  type BaseProviderOptions,
  type SecurityMode,
} from '@keyfold/envelope-core';
import type { Pkcs11Execution } from './graphene-adapter.js';
import { assertKeyLabel, isCanonicalVersion } from './kek-labels.js';
import type { Pkcs11WrapMechanism } from './wrap-format.js';

/** Where the token is and how to log in to it. Exactly one of `slot` / `tokenLabel`, one of `pin` / `pinEnv` / `pinFile`. */
export interface Pkcs11TokenOptions {
  /** Path of the PKCS#11 library (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's `libCryptoki2_64.so`, ...). */
  library: string;
  /** Slot id of the token. */
  slot?: number;
  /** Label of the token (CK_TOKEN_INFO.label); must match exactly one token. */
  tokenLabel?: string;
  /** The user PIN. Prefer `pinEnv` or `pinFile` so the PIN stays out of configuration files. */
  pin?: string;
  /** Name of an environment variable holding the user PIN. */
  pinEnv?: string;
  /** Path of a file holding the user PIN (one trailing newline is ignored). Must be mode 600 in production. */
  pinFile?: string;
  /** `production` (default, or `KEYFOLD_SECURITY_MODE`) refuses a PIN file readable by group or other. */
  securityMode?: SecurityMode;
}

/** Options of {@link createPkcs11Provider}. */
export interface Pkcs11ProviderOptions extends Pkcs11TokenOptions, BaseProviderOptions {
  /** The KEK's label; version N is the object labelled `<keyLabel>.vN`, an object labelled exactly `<keyLabel>` is version 0. */
  keyLabel: string;
  /** How data keys are wrapped. Default `AES_GCM`. */
  mechanism?: Pkcs11WrapMechanism;
  /** Pool size: sessions used at once (one operation per session). Default 4, at most 64. */
  sessions?: number;
  /** The version new wraps use (`"2"` or `2`). Default: the highest version on the token. */
  activeVersion?: string | number;
  /** `async` (default): crypto calls on libuv's threads; `sync`: on the main thread (fastest for a local token). */
  execution?: Pkcs11Execution;
}

/** Options of {@link generatePkcs11KekVersion}. */
export interface Pkcs11KekVersionOptions extends Pkcs11TokenOptions {
  keyLabel: string;
}

/** Validated token options, with the PIN read from its source. */
export interface ResolvedTokenOptions {
  readonly library: string;
  readonly slot: number | undefined;
  readonly tokenLabel: string | undefined;
  readonly pin: string;
  /** Where the PIN came from, for messages (`pinEnv KEYFOLD_HSM_PIN`), never the PIN. */
  readonly pinSource: string;
}

export interface ResolvedProviderOptions extends ResolvedTokenOptions {
  readonly keyLabel: string;
  readonly mechanism: Pkcs11WrapMechanism;
  readonly sessions: number;
  readonly activeVersion: string | undefined;
  readonly execution: Pkcs11Execution;
}

export const DEFAULT_SESSIONS = 4;
export const MAX_SESSIONS = 64;

function isSet(v: unknown): boolean {
  return v !== undefined;
}

function readPin(options: Pkcs11TokenOptions): { pin: string; pinSource: string } {
  const sources = (['pin', 'pinEnv', 'pinFile'] as const).filter((k) => isSet(options[k]));
  if (sources.length !== 1) {
    throw new TypeError(
      sources.length === 0
        ? 'give the user PIN as one of pin, pinEnv (an environment variable name) or pinFile (a path)'
        : `give the user PIN one way only; got ${sources.join(' and ')}`,
    );
  }
  if (options.pin !== undefined) {
    if (typeof options.pin !== 'string') throw new TypeError('pin must be a string');
    if (options.pin.length === 0) throw new ConfigError('pin is empty');
    return { pin: options.pin, pinSource: 'pin' };
  }
  if (options.pinEnv !== undefined) {
    if (typeof options.pinEnv !== 'string' || options.pinEnv.length === 0) throw new TypeError('pinEnv must be an environment variable name');
    const value = process.env[options.pinEnv];
    if (value === undefined || value === '') {
      throw new ConfigError(`the environment variable ${options.pinEnv} (pinEnv) is not set or empty; set it to the token's user PIN`);
    }
    return { pin: value, pinSource: `pinEnv ${options.pinEnv}` };
  }
  const path = options.pinFile;
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('pinFile must be a path');
  const securityMode = resolveSecurityMode(options.securityMode);
  assertPrivatePath(path, { what: 'PIN file', type: 'file', securityMode });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`PIN file ${path} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  const pin = text.replace(/\r?\n$/, '');
  if (pin.length === 0) throw new ConfigError(`PIN file ${path} is empty`);
  return { pin, pinSource: `pinFile ${path}` };
}

/**
 * Validates the token options and reads the PIN.
 * @throws TypeError / RangeError for caller mistakes; ConfigError / PolicyError for an unusable PIN source.
 */
export function resolveTokenOptions(options: Pkcs11TokenOptions): ResolvedTokenOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.library !== 'string' || options.library.length === 0) {
    throw new TypeError('library must be the path of the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)');
  }
  if (isSet(options.slot) === isSet(options.tokenLabel)) {
    throw new TypeError('select the token with exactly one of slot (a slot id) or tokenLabel');
  }
  if (options.slot !== undefined && !(Number.isSafeInteger(options.slot) && options.slot >= 0)) {
    throw new RangeError(`slot must be a non-negative integer slot id; got ${String(options.slot)}`);
  }
  if (options.tokenLabel !== undefined && (typeof options.tokenLabel !== 'string' || options.tokenLabel.length === 0 || options.tokenLabel.length > 32)) {
    throw new RangeError('tokenLabel must be 1-32 characters (the PKCS#11 token label field)');
  }
  const { pin, pinSource } = readPin(options);
  return { library: options.library, slot: options.slot, tokenLabel: options.tokenLabel, pin, pinSource };
}

/**
 * Validates every provider option and reads the PIN.
 * @throws TypeError / RangeError for caller mistakes; ConfigError / PolicyError for an unusable PIN source.
 */
export function resolveProviderOptions(options: Pkcs11ProviderOptions): ResolvedProviderOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  assertKeyLabel(options.keyLabel);
  const mechanism = options.mechanism ?? 'AES_GCM';
  if (mechanism !== 'AES_GCM' && mechanism !== 'AES_KEY_WRAP_PAD') {
    throw new RangeError(`mechanism must be "AES_GCM" or "AES_KEY_WRAP_PAD"; got ${JSON.stringify(mechanism)}`);
  }
  const sessions = options.sessions ?? DEFAULT_SESSIONS;
  if (!Number.isSafeInteger(sessions) || sessions < 1 || sessions > MAX_SESSIONS) {
    throw new RangeError(`sessions must be an integer from 1 to ${MAX_SESSIONS}; got ${String(sessions)}`);
  }
  const execution = options.execution ?? 'async';
  if (execution !== 'async' && execution !== 'sync') {
    throw new RangeError(`execution must be "async" or "sync"; got ${JSON.stringify(execution)}`);
  }
  let activeVersion: string | undefined;
  if (options.activeVersion !== undefined) {
    activeVersion = String(options.activeVersion);
    if (!isCanonicalVersion(activeVersion)) {
      throw new RangeError(`activeVersion must be a version number such as 2; got ${JSON.stringify(options.activeVersion)}`);
    }
  }
  const token = resolveTokenOptions(options);
  return { ...token, keyLabel: options.keyLabel, mechanism, sessions, activeVersion, execution };
}
