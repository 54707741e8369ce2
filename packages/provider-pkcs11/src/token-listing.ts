/**
 * `listPkcs11Tokens`: what a PKCS#11 library offers, without logging in. For `keyfold provider probe` and
 * `keyfold init --provider pkcs11` (choose a token, see which modes it supports before asking for a PIN).
 * @module
 */
import { flagNames, missingCapabilities, MODE_REQUIREMENTS, KEYGEN_REQUIREMENT } from './capabilities.js';
import { TOKEN_FLAGS } from './ckr.js';
import { mechanismsOf, slotId } from './graphene-adapter.js';
import { acquireLibrary, releaseLibrary } from './library.js';
import { toKeyfoldError } from './error-mapping.js';
import type { Pkcs11WrapMechanism } from './wrap-format.js';

/** One mechanism of a token. */
export interface Pkcs11MechanismListing {
  /** `CKM_AES_GCM` */
  readonly name: string;
  /** `ENCRYPT`, `DECRYPT`, `WRAP`, `UNWRAP`, `GENERATE` as reported by the token. */
  readonly flags: readonly string[];
}

/** One token and what Keyfold can do with it. */
export interface Pkcs11TokenListing {
  readonly slot: string;
  readonly label: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly serialNumber: string;
  /** Token state flags that matter to an operator (`USER_PIN_LOCKED`, `USER_PIN_COUNT_LOW`, ...). */
  readonly flags: readonly string[];
  readonly mechanisms: readonly Pkcs11MechanismListing[];
  /** Per wrapping mode: what is missing for it (empty: supported). */
  readonly modes: Readonly<Record<Pkcs11WrapMechanism, readonly string[]>>;
  /** What is missing to create KEK versions (empty: `kek add` works). */
  readonly keyGeneration: readonly string[];
}

/** The library and its tokens. */
export interface Pkcs11LibraryListing {
  readonly library: string;
  readonly manufacturer: string;
  readonly description: string;
  readonly cryptokiVersion: string;
  readonly tokens: readonly Pkcs11TokenListing[];
}

/**
 * Lists the tokens of a PKCS#11 library with their mechanisms and which Keyfold modes they support. Needs no PIN.
 * @throws TypeError when `library` is not a string; KeyfoldError CONFIG_INVALID when the library does not load.
 * @example
 * ```ts
 * const { tokens } = await listPkcs11Tokens({ library: '/usr/lib/softhsm/libsofthsm2.so' });
 * for (const t of tokens) console.log(t.slot, t.label, t.modes.AES_GCM.length === 0 ? 'AES_GCM ok' : t.modes.AES_GCM);
 * ```
 */
export async function listPkcs11Tokens(options: { library: string }): Promise<Pkcs11LibraryListing> {
  await Promise.resolve();
  if (options === null || typeof options !== 'object' || typeof options.library !== 'string' || options.library === '') {
    throw new TypeError('library must be the path of the PKCS#11 library');
  }
  const lib = acquireLibrary(options.library);
  try {
    const m = lib.module;
    const slots = m.getSlots(true);
    const tokens: Pkcs11TokenListing[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      const token = slot.getToken();
      const mechanisms = mechanismsOf(slot);
      tokens.push({
        slot: slotId(slot).toString(),
        label: token.label,
        manufacturer: token.manufacturerID,
        model: token.model,
        serialNumber: token.serialNumber,
        flags: (Object.keys(TOKEN_FLAGS) as Array<keyof typeof TOKEN_FLAGS>)
          .filter((f) => (token.flags & TOKEN_FLAGS[f]) !== 0)
          .map((f) => f.replace(/^CKF_/, '')),
        mechanisms: mechanisms.map((x) => ({ name: x.name, flags: flagNames(x.flags) })),
        modes: {
          AES_GCM: missingCapabilities(mechanisms, MODE_REQUIREMENTS.AES_GCM),
          AES_KEY_WRAP_PAD: missingCapabilities(mechanisms, MODE_REQUIREMENTS.AES_KEY_WRAP_PAD),
        },
        keyGeneration: missingCapabilities(mechanisms, [KEYGEN_REQUIREMENT]),
      });
    }
    return {
      library: options.library,
      manufacturer: m.manufacturerID,
      description: m.libraryDescription,
      cryptokiVersion: `${m.cryptokiVersion.major}.${m.cryptokiVersion.minor}`,
      tokens,
    };
  } catch (err) {
    throw toKeyfoldError(err, 'describe', { token: options.library });
  } finally {
    releaseLibrary(lib);
  }
}
