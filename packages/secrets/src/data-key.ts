/**
 * The file data key: 32 random bytes, sealed as a `kf1.` envelope under every configured provider (any one opens),
 * bound to a fixed encryption context so a data key envelope from another use cannot be substituted.
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  DecryptFailedError,
  FormatError,
  type KeyfoldError,
  createEnvelope,
  isKeyfoldError,
  wipe,
  type EnvelopePolicy,
  type KeyProvider,
  type KeyfoldErrorCode,
} from '@keyfold/envelope-core';
import { combineShares, splitSecret } from './shamir.js';

const CONTEXT = { purpose: 'keyfold-secrets-data-key', v: '1' } as const;

/** Provider failures that are about the backend, not the file: surfaced unchanged so operators can act on them. */
const OPERATIONAL: ReadonlySet<KeyfoldErrorCode> = new Set<KeyfoldErrorCode>([
  'THROTTLED',
  'UNAVAILABLE',
  'TIMEOUT',
  'ACCESS_DENIED',
  'ATTESTATION_REFUSED',
  'KEY_DISABLED',
  'PROVIDER_CLOSED',
  'POLICY_VIOLATION',
]);

/**
 * k-of-n key groups: the data key is split into one Shamir share per group, each share sealed under every provider
 * of its group (any one of them opens that share); any `threshold` groups together open the file.
 */
export interface KeyGroups {
  threshold: number;
  groups: readonly (readonly KeyProvider[])[];
}

/** Providers and policy used to seal and open data keys. */
export interface KeyOptions {
  /**
   * Key providers. Sealing: the data key is wrapped under every one and any one opens the file (unless
   * `keyGroups` is given). Opening: every provider available to this process; for a key-group file, shares are
   * opened with these until the threshold is reached.
   */
  providers: readonly KeyProvider[];
  /** Seal under k-of-n key groups instead of `providers` (which then only serve to open). */
  keyGroups?: KeyGroups;
  /** Passed to `createEnvelope` (e.g. `{ securityMode: 'development' }` for the memory provider in tests). */
  policy?: EnvelopePolicy;
}

export function newDataKey(): Uint8Array {
  const buf = randomBytes(32);
  return new Uint8Array(buf.buffer, buf.byteOffset, 32).slice();
}

function envelopeFor(options: KeyOptions) {
  return createEnvelope(options.policy === undefined ? { providers: options.providers } : { providers: options.providers, policy: options.policy });
}

/** Prefix of a key-group data key field: `sss1~<threshold>~<kf1 armor of share 1>~<share 2>...`. */
export const KEY_GROUPS_PREFIX = 'sss1~';

function shareContext(x: number, threshold: number): Record<string, string> {
  return { purpose: 'keyfold-secrets-data-key-share', v: '1', share: String(x), threshold: String(threshold) };
}

/** True when the data key field holds key-group shares. */
export function isKeyGroupField(field: string): boolean {
  return field.startsWith(KEY_GROUPS_PREFIX);
}

/** Splits a key-group field into its threshold and share armors. @throws FormatError */
export function parseKeyGroupField(field: string): { threshold: number; armors: string[] } {
  const [, t, ...armors] = field.split('~');
  const threshold = Number(t);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > armors.length || armors.length > 255) {
    throw new FormatError('the keyfold metadata has a malformed key-group data_key');
  }
  return { threshold, armors };
}

/** Seals `dataKey` under every provider (or as key-group shares). Returns the metadata `data_key` field. */
export async function sealDataKey(dataKey: Uint8Array, options: KeyOptions): Promise<string> {
  const kg = options.keyGroups;
  if (kg !== undefined) {
    if (!Array.isArray(kg.groups) || kg.groups.length === 0) throw new TypeError('keyGroups.groups must be a non-empty array of provider arrays');
    const shares = splitSecret(dataKey, kg.groups.length, kg.threshold);
    try {
      const armors: string[] = [];
      for (let i = 0; i < kg.groups.length; i++) {
        const group = kg.groups[i] as readonly KeyProvider[];
        const env = envelopeFor({ providers: group, ...(options.policy === undefined ? {} : { policy: options.policy }) });
        try {
          armors.push(await env.sealToString(shares[i] as Uint8Array, shareContext(i + 1, kg.threshold)));
        } finally {
          await env.close();
        }
      }
      return `${KEY_GROUPS_PREFIX}${kg.threshold}~${armors.join('~')}`;
    } finally {
      for (const s of shares) wipe(s);
    }
  }
  const env = envelopeFor(options);
  try {
    return await env.sealToString(dataKey, CONTEXT);
  } finally {
    await env.close();
  }
}

async function openKeyGroups(field: string, options: KeyOptions): Promise<Uint8Array> {
  const { threshold, armors } = parseKeyGroupField(field);
  const env = envelopeFor(options);
  const shares: Uint8Array[] = [];
  let operational: KeyfoldError | undefined;
  try {
    for (const [i, armor] of armors.entries()) {
      if (shares.length === threshold) break;
      try {
        const share = await env.open(armor, { context: shareContext(i + 1, threshold) });
        if (share.length !== 33 || share[0] !== i + 1) {
          wipe(share);
          throw new DecryptFailedError();
        }
        shares.push(share);
      } catch (err) {
        if (isKeyfoldError(err) && OPERATIONAL.has(err.code)) operational ??= err;
        else if (err instanceof TypeError || err instanceof RangeError) throw err;
      }
    }
    if (shares.length < threshold) {
      if (operational !== undefined) throw operational;
      throw new DecryptFailedError();
    }
    return combineShares(shares);
  } finally {
    for (const s of shares) wipe(s);
    await env.close();
  }
}

/**
 * Opens the armored data key. Every failure that is not operational (wrong or missing provider, tampered envelope)
 * becomes the one {@link DecryptFailedError}.
 */
export async function openDataKey(armored: string, options: KeyOptions): Promise<Uint8Array> {
  if (isKeyGroupField(armored)) return openKeyGroups(armored, options);
  const env = envelopeFor(options);
  let key: Uint8Array | undefined;
  try {
    key = await env.open(armored, { context: CONTEXT });
    if (key.length !== 32) throw new DecryptFailedError();
    return key;
  } catch (err) {
    if (key !== undefined) wipe(key);
    if (isKeyfoldError(err) && OPERATIONAL.has(err.code)) throw err;
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw new DecryptFailedError({ cause: err });
  } finally {
    await env.close();
  }
}

/** Re-wraps the data key envelope under `to` without changing the key (the file's values stay as they are). */
export async function rewrapDataKey(armored: string, options: KeyOptions, to: readonly KeyProvider[]): Promise<string> {
  if (isKeyGroupField(armored)) {
    throw new TypeError('this file uses key groups: change them with rotateDataKey({ keyGroups }) instead of updateKeys');
  }
  const env = envelopeFor(options);
  try {
    return await env.rewrap(armored, { to });
  } catch (err) {
    if (isKeyfoldError(err) && OPERATIONAL.has(err.code)) throw err;
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw new DecryptFailedError({ cause: err });
  } finally {
    await env.close();
  }
}
