/**
 * The shared KeyProvider conformance suite against all three local providers. Env and file run in production
 * security mode (their directories and files are 0700 / 0600), memory in development mode (production refuses it).
 */
import { describe, expect, it } from 'vitest';
import { runProviderConformance } from '@keyfold/conformance';
import type { KeyProvider } from '@keyfold/envelope-core';
import {
  createEnvProvider,
  createFileProvider,
  createMemoryProvider,
  initFileKeyring,
  type FileProvider,
  type MemoryProvider,
} from '../src/index.js';
import { FAST_KDF, randomHexKey, tempRoot } from './helpers.js';

// Env: each provider gets its own random KEK; rotating makes a new provider with one more variable.
const envOf = new WeakMap<KeyProvider, Record<string, string>>();
runProviderConformance({
  name: 'env',
  makeProvider: () => {
    const env = { KEYFOLD_KEK_V1: randomHexKey() };
    const p = createEnvProvider({ env, securityMode: 'production' });
    envOf.set(p, env);
    return p;
  },
  rotate: (p) => {
    const env = envOf.get(p);
    if (!env) throw new Error('not made by makeProvider');
    const next = Object.keys(env).length + 1;
    const rotated = { ...env, [`KEYFOLD_KEK_V${next}`]: randomHexKey() };
    const q = createEnvProvider({ env: rotated, securityMode: 'production' });
    envOf.set(q, rotated);
    return q;
  },
  describe,
  it,
  expect,
});

// File: a new keyring (0700 directory, 0600 file) per provider; rotate() adds a version to the file.
const tmp = tempRoot('conformance-file');
runProviderConformance({
  name: 'file',
  makeProvider: async () => {
    const dir = await tmp.dir('keys');
    await initFileKeyring({ dir, passphrase: 'correct horse battery staple', kdf: FAST_KDF, securityMode: 'production' });
    return createFileProvider({ dir, passphrase: 'correct horse battery staple', securityMode: 'production' });
  },
  rotate: async (p) => {
    await (p as FileProvider).rotate();
    return p;
  },
  describe,
  it,
  expect,
});

// Memory: development only.
runProviderConformance({
  name: 'memory',
  makeProvider: () => createMemoryProvider({ securityMode: 'development' }),
  rotate: async (p) => {
    await (p as MemoryProvider).rotate();
    return p;
  },
  describe,
  it,
  expect,
});
