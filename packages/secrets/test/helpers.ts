import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createEnvProvider, createMemoryProvider } from '@keyfold/provider-local';

export const policy = { securityMode: 'development' } as const;

/** An env provider over a random KEK held in a private env object (never process.env). */
export function envProvider(prefix = 'KEYFOLD_KEK_V') {
  return createEnvProvider({ prefix, env: { [`${prefix}1`]: randomBytes(32).toString('hex') } });
}

export function memoryProvider(keyId = 'memory') {
  return createMemoryProvider({ securityMode: 'development', keyId });
}

export function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
}

export const fixedNow = () => new Date('2026-01-02T03:04:05.000Z');
