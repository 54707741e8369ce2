/**
 * Finding, checking and creating the KEK objects of one key label on a token.
 *
 * A KEK object is accepted only if it is a 256-bit AES secret key that cannot leave the token (CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false) and allows the operations the mode needs. An object that fails is refused with a message
 * naming the attribute and the fix, never used "for now".
 * @module
 */
import { ConfigError, ProviderError } from '@keyfold/envelope-core';
import {
  CKK_AES,
  findByLabel,
  findSecretKeys,
  generateKek,
  readKekAttributes,
  type SecretKey,
  type Session,
} from './graphene-adapter.js';
import { compareVersions, objectLabel, versionOfLabel } from './kek-labels.js';
import type { Pkcs11WrapMechanism } from './wrap-format.js';

/** One KEK version found on the token. */
export interface KekObject {
  readonly version: string;
  readonly label: string;
  readonly key: SecretKey;
}

/** What a version is used for: the active one wraps and unwraps, older ones only unwrap. */
export type KekUse = 'wrap' | 'unwrap';

/**
 * Every version of `keyLabel` on the token, oldest first.
 * @throws ConfigError when two objects carry the same version label (ambiguous: which one wrapped a key?).
 */
export function listKekVersions(session: Session, keyLabel: string, where: string): KekObject[] {
  const found = findSecretKeys(session, (label) => versionOfLabel(keyLabel, label) !== undefined);
  const byVersion = new Map<string, KekObject>();
  for (const { label, key } of found) {
    const version = versionOfLabel(keyLabel, label) as string;
    if (byVersion.has(version)) {
      throw new ConfigError(
        `${where} holds more than one secret key labelled ${JSON.stringify(label)}; a KEK version must be one object. ` +
          'Relabel or delete the extra one (pkcs11-tool --list-objects --type secrkey shows them)',
      );
    }
    byVersion.set(version, { version, label, key });
  }
  return [...byVersion.values()].sort((a, b) => compareVersions(a.version, b.version));
}

/**
 * The object of one version, or `undefined` when there is none.
 * @throws ConfigError when the label is ambiguous.
 */
export function findKekVersion(session: Session, keyLabel: string, version: string, where: string): KekObject | undefined {
  const label = objectLabel(keyLabel, version);
  const found = findByLabel(session, label);
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    throw new ConfigError(`${where} holds ${found.length} secret keys labelled ${JSON.stringify(label)}; a KEK version must be one object`);
  }
  return { version, label, key: found[0] as SecretKey };
}

/**
 * Checks a KEK object before use.
 * @throws ConfigError naming what is wrong and how to fix it.
 */
export function assertUsableKek(kek: KekObject, mechanism: Pkcs11WrapMechanism, use: KekUse, where: string): void {
  const a = readKekAttributes(kek.key);
  const name = `${where}, key ${JSON.stringify(kek.label)}`;
  const problems: string[] = [];
  if (a.keyType !== CKK_AES) problems.push(`it is not an AES key (CKA_KEY_TYPE 0x${a.keyType.toString(16)})`);
  if (a.valueLen !== 32) problems.push(`it is ${a.valueLen * 8} bits; Keyfold requires AES-256 (CKA_VALUE_LEN 32)`);
  if (!a.sensitive) problems.push('CKA_SENSITIVE is false, so its value can be read out of the token (set it to true)');
  if (a.extractable) problems.push('CKA_EXTRACTABLE is true, so it can be wrapped out of the token (set it to false)');
  if (mechanism === 'AES_GCM') {
    if (use === 'wrap' && !a.encrypt) problems.push('CKA_ENCRYPT is false (AES_GCM needs it to wrap)');
    if (!a.decrypt) problems.push('CKA_DECRYPT is false (AES_GCM needs it to unwrap)');
  } else {
    if (use === 'wrap' && !a.wrap) problems.push('CKA_WRAP is false (AES_KEY_WRAP_PAD needs it to wrap)');
    if (!a.unwrap) problems.push('CKA_UNWRAP is false (AES_KEY_WRAP_PAD needs it to unwrap)');
  }
  if (problems.length > 0) throw new ConfigError(`${name} cannot be used as a KEK: ${problems.join('; ')}`);
}

/**
 * Creates version `version` of `keyLabel` inside the token (C_GenerateKey; the key never exists outside it) and
 * checks that no other process created the same version at the same moment.
 * @throws ProviderError ALREADY_EXISTS when the version already exists or was created concurrently.
 */
export function createKekVersion(session: Session, keyLabel: string, version: string, where: string): KekObject {
  const label = objectLabel(keyLabel, version);
  if (findByLabel(session, label).length > 0) {
    throw new ProviderError('ALREADY_EXISTS', `${where} already holds ${JSON.stringify(label)}`);
  }
  const key = generateKek(session, label);
  if (findByLabel(session, label).length > 1) {
    // Another process made the same version between our look-up and C_GenerateKey: withdraw ours.
    try {
      key.destroy();
    } catch {
      // the ambiguity is reported either way
    }
    throw new ProviderError('ALREADY_EXISTS', `another process created ${JSON.stringify(label)} on ${where} at the same time; run again`);
  }
  return { version, label, key };
}
