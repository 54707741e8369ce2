/**
 * Where the provider's Vault token comes from: a fixed token, or an AppRole login whose token is renewed
 * (`auth/token/renew-self`) once two thirds of its lease have passed, and replaced by a new login when it cannot be
 * renewed any more (max TTL reached) or Vault no longer accepts it. Logins and renewals are single-flight: concurrent
 * calls share one. Tokens are kept in memory only and never appear in errors or logs.
 * @module
 */
import type { VaultHttp } from './vault-http.js';

/**
 * AppRole credentials.
 * @example
 * ```ts
 * const appRole: VaultAppRole = { roleId: process.env.VAULT_ROLE_ID!, secretId: () => readFile('/run/secrets/secret-id', 'utf8') };
 * ```
 */
export interface VaultAppRole {
  readonly roleId: string;
  /** The secret id, or a function that reads it when a login is needed (from a file, a wrapped token, ...). */
  readonly secretId: string | (() => string | Promise<string>);
  /** Mount path of the AppRole auth method. Default `approle`. */
  readonly mount?: string;
}

/** Supplies the token for each request. */
export interface TokenSource {
  /** The token to send now (logging in or renewing first when due). */
  token(http: VaultHttp, signal: AbortSignal): Promise<string>;
  /** Vault refused `token` (403): forget it, so the next call logs in again. Returns true if a retry may help. */
  rejected(token: string): boolean;
  /** Details for describe(): the auth method, never the token. */
  readonly method: 'token' | 'approle';
}

export class StaticToken implements TokenSource {
  readonly method = 'token' as const;
  readonly #token: string;
  constructor(token: string) {
    this.#token = token;
  }
  token(): Promise<string> {
    return Promise.resolve(this.#token);
  }
  rejected(): boolean {
    return false;
  }
}

interface Lease {
  readonly token: string;
  readonly renewable: boolean;
  /** When the lease was granted or last renewed (provider clock, ms). */
  readonly at: number;
  /** Lease length, ms (0 = no expiry). */
  readonly ms: number;
}

function leaseOf(auth: Record<string, unknown> | undefined, now: number): Lease {
  const token = auth?.client_token;
  if (typeof token !== 'string' || token === '') throw new Error('Vault returned no client_token');
  const seconds = typeof auth?.lease_duration === 'number' ? auth.lease_duration : 0;
  return { token, renewable: auth?.renewable === true, at: now, ms: seconds * 1000 };
}

export class AppRoleAuth implements TokenSource {
  readonly method = 'approle' as const;
  readonly #role: VaultAppRole;
  readonly #now: () => number;
  #lease: Lease | undefined;
  #pending: Promise<Lease> | undefined;

  constructor(role: VaultAppRole, now: () => number) {
    this.#role = role;
    this.#now = now;
  }

  async #login(http: VaultHttp, signal: AbortSignal): Promise<Lease> {
    const secret = typeof this.#role.secretId === 'function' ? await this.#role.secretId() : this.#role.secretId;
    const mount = this.#role.mount ?? 'approle';
    const answer = await http.request({ method: 'POST', path: `auth/${mount}/login`, body: { role_id: this.#role.roleId, secret_id: secret }, signal });
    return leaseOf(answer.auth, this.#now());
  }

  async #renewOrLogin(http: VaultHttp, signal: AbortSignal, current: Lease): Promise<Lease> {
    try {
      const answer = await http.request({ method: 'POST', path: 'auth/token/renew-self', token: current.token, body: {}, signal });
      const renewed = leaseOf({ ...answer.auth, client_token: current.token }, this.#now());
      // A renewal capped by the max TTL gives a shorter lease: once it no longer extends the token, log in anew.
      if (renewed.ms > 0 && renewed.ms >= current.ms / 3) return renewed;
    } catch (err) {
      if (signal.aborted) throw err;
    }
    return this.#login(http, signal);
  }

  #due(l: Lease): 'fresh' | 'renew' | 'expired' {
    if (l.ms === 0) return 'fresh';
    const age = this.#now() - l.at;
    if (age >= l.ms) return 'expired';
    return age >= (l.ms * 2) / 3 ? 'renew' : 'fresh';
  }

  async token(http: VaultHttp, signal: AbortSignal): Promise<string> {
    const lease = this.#lease;
    const due = lease ? this.#due(lease) : 'expired';
    if (lease && due === 'fresh') return lease.token;
    if (!this.#pending) {
      const next =
        lease && due === 'renew' && lease.renewable ? this.#renewOrLogin(http, signal, lease) : this.#login(http, signal);
      this.#pending = next.then(
        (l) => {
          this.#lease = l;
          this.#pending = undefined;
          return l;
        },
        (err: unknown) => {
          this.#pending = undefined;
          throw err;
        },
      );
    }
    return (await this.#pending).token;
  }

  rejected(token: string): boolean {
    if (this.#lease?.token !== token) return true; // already replaced by a concurrent login
    this.#lease = undefined;
    return true;
  }
}
