/**
 * `generatePkcs11KekVersion`: creates the next KEK version inside the token, for `keyfold kek add` and for
 * operators who rotate outside a running provider. Running providers keep their active version until they are
 * re-created (or call `rotate()` themselves); keys wrapped under the new version still unwrap in them, because an
 * unknown version is looked up on the token by label.
 * @module
 */
import { assertCapabilities, KEYGEN_REQUIREMENT } from './capabilities.js';
import { mechanismsOf, openSession, slotId, type Session } from './graphene-adapter.js';
import { assertKeyLabel, nextVersion } from './kek-labels.js';
import { createKekVersion, listKekVersions } from './kek-objects.js';
import {
  acquireLibrary,
  acquireToken,
  describeSlot,
  ensureLoggedIn,
  findSlot,
  releaseLibrary,
  releaseToken,
  type TokenState,
} from './library.js';
import { resolveTokenOptions, type Pkcs11KekVersionOptions } from './options.js';
import { toKeyfoldError } from './error-mapping.js';

/** What {@link generatePkcs11KekVersion} created. */
export interface Pkcs11KekVersionResult {
  readonly keyLabel: string;
  /** The new version (`"3"`). */
  readonly version: string;
  /** Label of the new token object (`"payments.v3"`). */
  readonly objectLabel: string;
  /** Every version now on the token, oldest first. */
  readonly versions: readonly string[];
  readonly tokenLabel: string;
  readonly slot: string;
}

/**
 * Creates version N+1 of `keyLabel` inside the token (C_GenerateKey: AES-256, token, private, sensitive, not
 * extractable, encrypt/decrypt/wrap/unwrap), where N is the highest version there (0 when there is none). The key
 * material never exists outside the token.
 *
 * @throws TypeError / RangeError for invalid options; KeyfoldError CONFIG_INVALID (token cannot generate AES keys,
 *   is write-protected, no such token), ACCESS_DENIED (wrong or locked PIN), ALREADY_EXISTS (another process made
 *   the same version at the same moment: run again).
 * @example
 * ```ts
 * const { version, objectLabel } = await generatePkcs11KekVersion({
 *   library: '/usr/lib/softhsm/libsofthsm2.so',
 *   tokenLabel: 'keyfold',
 *   pinEnv: 'KEYFOLD_HSM_PIN',
 *   keyLabel: 'payments',
 * }); // '2', 'payments.v2'
 * ```
 */
export async function generatePkcs11KekVersion(options: Pkcs11KekVersionOptions): Promise<Pkcs11KekVersionResult> {
  await Promise.resolve();
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  assertKeyLabel(options.keyLabel);
  const o = resolveTokenOptions(options);
  const lib = acquireLibrary(o.library);
  let token: TokenState | undefined;
  let session: Session | undefined;
  let where = o.library;
  try {
    const { slot, tokenLabel } = findSlot(lib, { slot: o.slot, tokenLabel: o.tokenLabel });
    where = describeSlot(slot, tokenLabel);
    assertCapabilities(mechanismsOf(slot), [KEYGEN_REQUIREMENT], where);
    token = acquireToken(lib, slot);
    session = openSession(slot, true);
    ensureLoggedIn(token, session, o.pin, where, () => slot.getToken().flags);
    const existing = listKekVersions(session, options.keyLabel, where);
    const version = nextVersion(existing[existing.length - 1]?.version);
    const created = createKekVersion(session, options.keyLabel, version, where);
    return {
      keyLabel: options.keyLabel,
      version,
      objectLabel: created.label,
      versions: [...existing.map((k) => k.version), version],
      tokenLabel,
      slot: slotId(slot).toString(),
    };
  } catch (err) {
    throw toKeyfoldError(err, 'generate', { token: where, key: options.keyLabel });
  } finally {
    if (token) releaseToken(lib, token, session);
    if (session) {
      try {
        session.close();
      } catch {
        // already closed
      }
    }
    releaseLibrary(lib);
  }
}
