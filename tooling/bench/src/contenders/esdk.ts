/**
 * The one adapter around the AWS Encryption SDK for JavaScript (@aws-crypto/client-node, a devDependency of the
 * bench only). Raw AES keyring (the ESDK's closest equivalent of a local env KEK), commitment policy
 * REQUIRE_ENCRYPT_REQUIRE_DECRYPT, suite 0x0478 (committing, unsigned) or 0x0578 (committing, ECDSA P-384 signed:
 * the ESDK default), optionally behind its caching materials manager.
 * @module
 */
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  getLocalCryptographicMaterialsCache,
  NodeCachingMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  type KeyringNode,
  type NodeMaterialsManager,
} from '@aws-crypto/client-node';
import type { Duplex } from 'node:stream';
import { benchKey, type OneShot, type StreamPair } from './types.js';

export type EsdkSuite = 0x0478 | 0x0578;

export interface EsdkOptions {
  readonly suite: EsdkSuite;
  /** Put a NodeCachingMaterialsManager (local LRU cache) in front of the keyring. */
  readonly cache: boolean;
  /** Frame length for streams (ESDK default 4096). */
  readonly frameLength?: number;
}

/** Cache limits used for both the ESDK caching CMM and Keyfold's data key cache, so they are comparable. */
export const CACHE_LIMITS = { capacity: 100, maxAgeMs: 5 * 60_000, maxMessages: 1_000_000 } as const;

/** The raw AES keyring names; they are stored in every ESDK message and so count towards its overhead. */
export const ESDK_KEY_NAMESPACE = 'keyfold-bench';
export const ESDK_KEY_NAME = 'kek-v1';

const SUITES: Record<EsdkSuite, AlgorithmSuiteIdentifier> = {
  0x0478: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
  0x0578: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
};

export function esdkId(o: EsdkOptions): string {
  const suite = `0x${o.suite.toString(16).padStart(4, '0')}`;
  return `esdk-${suite}${o.cache ? '-cache' : ''}${o.frameLength ? `-f${o.frameLength}` : ''}`;
}

export function esdkLabel(o: EsdkOptions): string {
  const suite = `0x${o.suite.toString(16).padStart(4, '0')}`;
  const frame = o.frameLength ? `, ${o.frameLength >= 1024 ? `${o.frameLength / 1024} KiB` : `${o.frameLength} B`} frames` : '';
  return `ESDK ${suite}${o.cache ? ', caching CMM' : ''}${frame}`;
}

async function materials(o: EsdkOptions): Promise<KeyringNode | NodeMaterialsManager> {
  const keyring = new RawAesKeyringNode({
    keyNamespace: ESDK_KEY_NAMESPACE,
    keyName: ESDK_KEY_NAME,
    unencryptedMasterKey: await benchKey('esdk'),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  if (!o.cache) return keyring;
  return new NodeCachingMaterialsManager({
    backingMaterials: keyring,
    cache: getLocalCryptographicMaterialsCache(CACHE_LIMITS.capacity),
    maxAge: CACHE_LIMITS.maxAgeMs,
    maxMessagesEncrypted: CACHE_LIMITS.maxMessages,
  });
}

function client() {
  return buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
}

export async function createEsdkOneShot(o: EsdkOptions): Promise<OneShot> {
  const cmm = await materials(o);
  const { encrypt, decrypt } = client();
  const suiteId = SUITES[o.suite];
  return {
    id: esdkId(o),
    label: esdkLabel(o),
    sync: false,
    async seal(plaintext: Uint8Array): Promise<Uint8Array> {
      const { result } = await encrypt(cmm, plaintext, { suiteId });
      return result;
    },
    async open(sealed: Uint8Array): Promise<Uint8Array> {
      const { plaintext } = await decrypt(cmm, sealed);
      return plaintext;
    },
    close: () => Promise.resolve(),
  };
}

export async function createEsdkStreamPair(o: EsdkOptions): Promise<StreamPair> {
  const cmm = await materials(o);
  const { encryptStream, decryptStream } = client();
  const suiteId = SUITES[o.suite];
  return {
    id: esdkId(o),
    label: esdkLabel(o),
    pair(): { seal: Duplex; open: Duplex } {
      const seal = encryptStream(cmm, { suiteId, ...(o.frameLength ? { frameLength: o.frameLength } : {}) });
      const open = decryptStream(cmm);
      return { seal, open };
    },
    close: () => Promise.resolve(),
  };
}
