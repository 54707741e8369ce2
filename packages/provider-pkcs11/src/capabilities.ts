/**
 * Capability probe: before a provider uses a token, it checks that the token offers the mechanisms its mode needs
 * with the right flags (C_GetMechanismList + C_GetMechanismInfo), and refuses with one message naming everything
 * that is missing, instead of failing later on the first wrap with CKR_MECHANISM_INVALID.
 * @module
 */
import { ConfigError } from '@keyfold/envelope-core';
import { MECHANISM_FLAGS, type MechanismFlagName, type MechanismInfo } from './graphene-adapter.js';
import type { Pkcs11WrapMechanism } from './wrap-format.js';

/** One mechanism and the flags a use of it needs. */
export interface MechanismRequirement {
  readonly mechanism: string;
  readonly flags: readonly MechanismFlagName[];
  /** What it is needed for, for the message. */
  readonly purpose: string;
}

/** What each wrapping mode needs from the token. */
export const MODE_REQUIREMENTS: Readonly<Record<Pkcs11WrapMechanism, readonly MechanismRequirement[]>> = {
  AES_GCM: [{ mechanism: 'CKM_AES_GCM', flags: ['ENCRYPT', 'DECRYPT'], purpose: 'wrapping data keys with AES_GCM' }],
  AES_KEY_WRAP_PAD: [
    { mechanism: 'CKM_AES_KEY_WRAP_PAD', flags: ['WRAP', 'UNWRAP'], purpose: 'wrapping data keys with AES_KEY_WRAP_PAD (RFC 5649)' },
  ],
};

/** What creating a KEK version needs. */
export const KEYGEN_REQUIREMENT: MechanismRequirement = {
  mechanism: 'CKM_AES_KEY_GEN',
  flags: ['GENERATE'],
  purpose: 'generating a KEK version',
};

/** Each unmet requirement as one sentence; empty when all are met. */
export function missingCapabilities(mechanisms: readonly MechanismInfo[], requirements: readonly MechanismRequirement[]): string[] {
  const byName = new Map(mechanisms.map((m) => [m.name, m]));
  const out: string[] = [];
  for (const req of requirements) {
    const m = byName.get(req.mechanism);
    if (!m) {
      out.push(`${req.mechanism} is not offered by the token (needed for ${req.purpose})`);
      continue;
    }
    const lacking = req.flags.filter((f) => (m.flags & MECHANISM_FLAGS[f]) === 0);
    if (lacking.length > 0) {
      out.push(`${req.mechanism} is offered without ${lacking.join(' and ')} (needed for ${req.purpose})`);
    }
  }
  return out;
}

/**
 * @throws ConfigError naming every missing mechanism or flag.
 */
export function assertCapabilities(mechanisms: readonly MechanismInfo[], requirements: readonly MechanismRequirement[], where: string): void {
  const missing = missingCapabilities(mechanisms, requirements);
  if (missing.length > 0) {
    throw new ConfigError(`${where} lacks what Keyfold needs: ${missing.join('; ')}`);
  }
}

/** Flag names set on a mechanism, for listings (`ENCRYPT|DECRYPT`). */
export function flagNames(flags: number): string[] {
  return (Object.keys(MECHANISM_FLAGS) as MechanismFlagName[]).filter((f) => (flags & MECHANISM_FLAGS[f]) !== 0);
}
