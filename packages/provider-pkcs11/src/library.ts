/**
 * Process-wide state of PKCS#11 libraries and token logins, shared by every provider in the process.
 *
 * Why shared: a PKCS#11 library is initialised once per process (a second C_Initialize fails, and C_Finalize by one
 * user ends every other user's sessions), and the login state belongs to the application, not the session: once one
 * session logs in, all of the application's sessions with that token are logged in, and C_Logout on any of them
 * logs all of them out. So providers take references here: the library is initialised by the first and finalised
 * by the last; the token is logged in by the first and logged out by the last.
 *
 * PIN rules: a PIN the token refused (wrong, locked, expired) is remembered as a keyed digest, never the PIN, and is
 * never tried again by this process, so nothing here can walk a token into its lockout; after fixing the PIN on the
 * token, restart the process (or use the corrected PIN). A second provider that brings a different PIN to a token this
 * process is already logged in to is refused with ACCESS_DENIED rather than silently riding on the other login
 * (the token would not check it: C_Login answers CKR_USER_ALREADY_LOGGED_IN without looking at the PIN).
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError, ProviderError, type KeyfoldError } from '@keyfold/envelope-core';
import { CKR, isCkr, pkcs11Failure } from './ckr.js';
import { mapPkcs11Error } from './error-mapping.js';
import { login, loadModule, slotId, type Module, type Session, type Slot } from './graphene-adapter.js';

/** One loaded, initialised library. */
export interface SharedLibrary {
  readonly path: string;
  readonly module: Module;
  refs: number;
  readonly tokens: Map<string, TokenState>;
}

/** Login state of one token (slot) in this process. */
export interface TokenState {
  readonly key: string;
  users: number;
  loggedIn: boolean;
  /** Keyed digest of the PIN that logged in. */
  pinTag: Buffer | undefined;
  /** Keyed digests of PINs the token refused, with the error to repeat instead of trying them again. */
  readonly refused: Array<{ tag: Buffer; error: KeyfoldError }>;
}

const libraries = new Map<string, SharedLibrary>();
/**
 * PINs refused per token (`library path` + slot id), kept for the life of the process, across providers and library
 * reloads: a service that re-creates its provider in a loop must not walk the token into its lockout.
 */
const refusedPins = new Map<string, Array<{ tag: Buffer; error: KeyfoldError }>>();
/** Per-process key for PIN digests: they are only ever compared within this process. */
const PIN_TAG_KEY = randomBytes(32);

function pinTag(pin: string): Buffer {
  return createHmac('sha256', PIN_TAG_KEY).update(pin, 'utf8').digest();
}

function sameTag(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Loads and initialises the library at `path`, or takes another reference to it.
 * @throws ConfigError when the library cannot be loaded or initialised.
 */
export function acquireLibrary(path: string): SharedLibrary {
  const existing = libraries.get(path);
  if (existing) {
    existing.refs++;
    return existing;
  }
  let module: Module;
  try {
    module = loadModule(path);
  } catch (err) {
    const mapped = mapPkcs11Error(err, 'load', { token: path });
    throw mapped && mapped.code === 'CONFIG_INVALID'
      ? mapped
      : new ConfigError(`the PKCS#11 library ${path} could not be loaded or initialised: ${(err as Error).message}`, { cause: err });
  }
  const lib: SharedLibrary = { path, module, refs: 1, tokens: new Map() };
  libraries.set(path, lib);
  return lib;
}

/** Drops a reference; the last one finalises the library (C_Finalize) and unloads it. Never throws. */
export function releaseLibrary(lib: SharedLibrary): void {
  lib.refs--;
  if (lib.refs > 0) return;
  libraries.delete(lib.path);
  try {
    lib.module.finalize();
  } catch {
    // already finalised by someone else in the process: nothing left to release
  }
  try {
    lib.module.close();
  } catch {
    // unloading is best effort
  }
}

/** How a provider names its token. */
export interface SlotSelector {
  readonly slot?: number | bigint | undefined;
  readonly tokenLabel?: string | undefined;
}

/** A readable name for messages: `token "kf" (slot 0x1a2b)`. */
export function describeSlot(slot: Slot, label?: string): string {
  const id = `slot ${slotId(slot).toString()}`;
  return label !== undefined && label !== '' ? `token ${JSON.stringify(label)} (${id})` : id;
}

/**
 * Finds the slot whose token has `tokenLabel`, or the slot with id `slot`.
 * @throws ConfigError when none (or, by label, more than one) matches, listing the tokens that are there.
 */
export function findSlot(lib: SharedLibrary, selector: SlotSelector): { slot: Slot; tokenLabel: string } {
  const slots = lib.module.getSlots(true);
  const seen: string[] = [];
  const matches: Array<{ slot: Slot; tokenLabel: string }> = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    const label = slot.getToken().label;
    seen.push(describeSlot(slot, label));
    const hit =
      selector.tokenLabel !== undefined ? label === selector.tokenLabel : BigInt(selector.slot ?? -1) === slotId(slot);
    if (hit) matches.push({ slot, tokenLabel: label });
  }
  const wanted = selector.tokenLabel !== undefined ? `a token labelled ${JSON.stringify(selector.tokenLabel)}` : `slot ${String(selector.slot)}`;
  if (matches.length === 0) {
    throw new ConfigError(
      `${lib.path} has no ${wanted} with a token present; found: ${seen.length > 0 ? seen.join(', ') : 'no tokens'}`,
    );
  }
  if (matches.length > 1) {
    throw new ConfigError(`${lib.path} has ${matches.length} tokens labelled ${JSON.stringify(selector.tokenLabel)}; select one by slot`);
  }
  return matches[0] as { slot: Slot; tokenLabel: string };
}

/** Takes a reference to the login state of `slot`'s token. */
export function acquireToken(lib: SharedLibrary, slot: Slot): TokenState {
  const key = slotId(slot).toString();
  let token = lib.tokens.get(key);
  if (!token) {
    const refusedKey = `${lib.path}\u0000${key}`;
    let refused = refusedPins.get(refusedKey);
    if (!refused) {
      refused = [];
      refusedPins.set(refusedKey, refused);
    }
    token = { key, users: 0, loggedIn: false, pinTag: undefined, refused };
    lib.tokens.set(key, token);
  }
  token.users++;
  return token;
}

/**
 * Drops a reference to the token's login state; the last user logs out through `session` (still open), so the
 * application's login ends with it. Never throws.
 */
export function releaseToken(lib: SharedLibrary, token: TokenState, session: Session | undefined): void {
  token.users--;
  if (token.users > 0) return;
  lib.tokens.delete(token.key);
  if (token.loggedIn && session) {
    try {
      session.logout();
    } catch {
      // CKR_USER_NOT_LOGGED_IN / session gone: the login has ended already
    }
  }
  token.loggedIn = false;
  token.pinTag = undefined;
}

/**
 * Makes sure the application is logged in to the token, logging in through `session` if needed. At most one C_Login
 * per call, and none at all with a PIN the token already refused in this process.
 * @throws ACCESS_DENIED (wrong, locked, expired PIN; another PIN already logged in), CONFIG_INVALID (no user PIN).
 */
export function ensureLoggedIn(token: TokenState, session: Session, pin: string, where: string, readFlags: () => number): void {
  const tag = pinTag(pin);
  const refused = token.refused.find((r) => sameTag(r.tag, tag));
  if (refused) throw refused.error;
  if (token.loggedIn) {
    if (token.pinTag && !sameTag(token.pinTag, tag)) {
      throw new ProviderError(
        'ACCESS_DENIED',
        `${where} is already logged in by this process with a different PIN; every provider for one token must use the same PIN`,
      );
    }
    return;
  }
  try {
    login(session, pin);
  } catch (err) {
    if (isCkr(err, 'CKR_USER_ALREADY_LOGGED_IN')) {
      // Logged in outside this registry (another copy of this package, or the application itself). The token did not
      // check this PIN; the next C_Logout/close by that party ends the login and the pool then logs in again.
      token.loggedIn = true;
      token.pinTag = tag;
      return;
    }
    const failure = pkcs11Failure(err);
    let flags = 0;
    if (failure?.code === CKR.CKR_PIN_INCORRECT) {
      try {
        flags = readFlags();
      } catch {
        flags = 0;
      }
    }
    const mapped =
      mapPkcs11Error(err, 'login', { token: where, tokenFlags: flags }) ??
      new ProviderError('INTERNAL', `logging in to ${where} failed unexpectedly`, { cause: err });
    // Only the token's verdict on this PIN is remembered; "the SO is logged in" and the like may pass.
    if (failure?.name.startsWith('CKR_PIN_')) token.refused.push({ tag, error: mapped });
    throw mapped;
  }
  token.loggedIn = true;
  token.pinTag = tag;
}
