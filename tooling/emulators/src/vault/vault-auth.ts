/**
 * Tokens, policies and AppRole of the Vault emulator. A policy is a list of path patterns (Vault's glob rules: a
 * trailing `*` matches any suffix, `+` matches one segment) that grant every capability; the root token may do
 * anything; every token may look itself up and renew itself (Vault's `default` policy).
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { TransitError } from './transit-keys.js';

export interface Token {
  readonly id: string;
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly renewable: boolean;
  /** Lease length granted at creation, ms; 0 = never expires. */
  readonly ttlMs: number;
  /** Upper bound of the token's life from creation, ms; 0 = none. */
  readonly maxTtlMs: number;
  readonly createdAt: number;
  expiresAt: number | undefined;
}

export interface AppRole {
  readonly name: string;
  readonly roleId: string;
  readonly secretIds: Set<string>;
  readonly policies: readonly string[];
  readonly tokenTtlMs: number;
  readonly tokenMaxTtlMs: number;
}

const DEFAULT_POLICY = ['auth/token/lookup-self', 'auth/token/renew-self', 'auth/token/revoke-self'];

function matches(pattern: string, path: string): boolean {
  const prefix = pattern.endsWith('*');
  const p = prefix ? pattern.slice(0, -1) : pattern;
  const pSeg = p.split('/');
  const seg = path.split('/');
  if (!prefix && pSeg.length !== seg.length) return false;
  for (let i = 0; i < pSeg.length; i++) {
    const want = pSeg[i] ?? '';
    const got = seg[i];
    const last = i === pSeg.length - 1;
    if (got === undefined) return false;
    if (want === '+') continue;
    if (prefix && last) return got.startsWith(want);
    if (want !== got) return false;
  }
  return true;
}

export class VaultAuth {
  readonly #tokens = new Map<string, Token>();
  readonly #policies = new Map<string, readonly string[]>();
  readonly #roles = new Map<string, AppRole>();
  readonly #now: () => number;
  readonly rootToken: string;

  constructor(now: () => number, rootToken?: string) {
    this.#now = now;
    this.rootToken = rootToken ?? `hvs.${randomBytes(18).toString('base64url')}`;
    this.#tokens.set(this.rootToken, {
      id: this.rootToken,
      accessor: randomUUID(),
      policies: ['root'],
      renewable: false,
      ttlMs: 0,
      maxTtlMs: 0,
      createdAt: now(),
      expiresAt: undefined,
    });
  }

  setPolicy(name: string, paths: readonly string[]): void {
    if (name === 'root' || name === 'default') throw new RangeError(`policy ${name} is built in`);
    this.#policies.set(name, [...paths]);
  }

  createToken(o: { policies: readonly string[]; ttlMs?: number; maxTtlMs?: number; renewable?: boolean }): Token {
    const now = this.#now();
    const ttlMs = o.ttlMs ?? 0;
    const token: Token = {
      id: `hvs.${randomBytes(18).toString('base64url')}`,
      accessor: randomUUID(),
      policies: ['default', ...o.policies],
      renewable: o.renewable ?? ttlMs > 0,
      ttlMs,
      maxTtlMs: o.maxTtlMs ?? 0,
      createdAt: now,
      expiresAt: ttlMs > 0 ? now + ttlMs : undefined,
    };
    this.#tokens.set(token.id, token);
    return token;
  }

  revoke(id: string): void {
    this.#tokens.delete(id);
  }

  createAppRole(o: { name: string; policies: readonly string[]; tokenTtlMs?: number; tokenMaxTtlMs?: number }): { roleId: string; secretId: string } {
    const role: AppRole = {
      name: o.name,
      roleId: randomUUID(),
      secretIds: new Set([randomUUID()]),
      policies: [...o.policies],
      tokenTtlMs: o.tokenTtlMs ?? 3_600_000,
      tokenMaxTtlMs: o.tokenMaxTtlMs ?? 0,
    };
    this.#roles.set(role.name, role);
    return { roleId: role.roleId, secretId: [...role.secretIds][0] ?? '' };
  }

  /** AppRole login. @throws TransitError 400 for unknown role or secret ids (Vault's message). */
  login(roleId: unknown, secretId: unknown): Token {
    if (typeof roleId !== 'string' || roleId === '') throw new TransitError('missing role_id');
    for (const role of this.#roles.values()) {
      if (role.roleId !== roleId) continue;
      if (typeof secretId !== 'string' || !role.secretIds.has(secretId)) break;
      return this.createToken({ policies: role.policies, ttlMs: role.tokenTtlMs, maxTtlMs: role.tokenMaxTtlMs, renewable: true });
    }
    throw new TransitError('invalid role or secret ID');
  }

  /** The live token with this id, or undefined (unknown or expired: Vault answers both with 403). */
  lookup(id: string | undefined): Token | undefined {
    if (id === undefined) return undefined;
    const t = this.#tokens.get(id);
    if (!t) return undefined;
    if (t.expiresAt !== undefined && this.#now() >= t.expiresAt) {
      this.#tokens.delete(id);
      return undefined;
    }
    return t;
  }

  /** May `token` use `path` (relative to /v1/, without the namespace)? */
  allowed(token: Token, path: string): boolean {
    if (token.policies.includes('root')) return true;
    if (DEFAULT_POLICY.includes(path)) return true;
    for (const name of token.policies) {
      for (const pattern of this.#policies.get(name) ?? []) if (matches(pattern, path)) return true;
    }
    return false;
  }

  /** renew-self: extends the lease by `incrementMs` (default: the original TTL), never past the max TTL. */
  renew(token: Token, incrementMs: number | undefined): Token {
    if (!token.renewable || token.ttlMs === 0) throw new TransitError('lease is not renewable');
    const now = this.#now();
    let expiresAt = now + (incrementMs ?? token.ttlMs);
    if (token.maxTtlMs > 0) expiresAt = Math.min(expiresAt, token.createdAt + token.maxTtlMs);
    token.expiresAt = expiresAt;
    return token;
  }

  remainingSeconds(token: Token): number {
    return token.expiresAt === undefined ? 0 : Math.max(0, Math.floor((token.expiresAt - this.#now()) / 1000));
  }
}
