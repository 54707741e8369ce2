/**
 * A pool of PKCS#11 sessions with one operation per session at a time, and the runner that takes a session from it
 * for one operation and recovers from a session or KEK handle the token invalidated under us.
 *
 * Why: a session runs one cryptographic operation at a time (a second C_EncryptInit on a busy session fails with
 * CKR_OPERATION_ACTIVE), and calls on different sessions may run in parallel on libuv's threads. So every operation
 * takes a session from the pool for its whole Init + call sequence and gives it back after; callers beyond the pool
 * size wait in FIFO order. Sessions are opened lazily, up to the size.
 *
 * A session that failed in a way that may have broken it is discarded instead of returned. `drain()` waits for the
 * operations in flight, so the library is never finalised under a running call.
 * @module
 */
import { ProviderError } from '@keyfold/envelope-core';
import { pkcs11Failure } from './ckr.js';
import type { Session } from './graphene-adapter.js';

/** Pool counters, for `Pkcs11Provider.stats()`. */
export interface SessionPoolStats {
  /** Pool size (most sessions open at once). */
  readonly size: number;
  /** Sessions open now (idle + busy). */
  readonly open: number;
  readonly idle: number;
  readonly busy: number;
  /** Callers waiting for a session now. */
  readonly waiting: number;
  /** Sessions opened since the pool was made (reopening after an invalidation counts). */
  readonly opened: number;
  /** Sessions dropped because a call on them failed in a way that may have broken them. */
  readonly discarded: number;
  /** Highest number of sessions busy at the same time. */
  readonly peakBusy: number;
  /** Highest number of callers waiting at the same time. */
  readonly peakWaiting: number;
}

export interface SessionPoolOptions {
  readonly size: number;
  /** Opens (and, if needed, logs in) one new session. May throw a mapped KeyfoldError. */
  readonly open: () => Session;
  /** Name for PROVIDER_CLOSED messages. */
  readonly name: string;
}

interface Waiter {
  resolve: (s: Session) => void;
  reject: (e: Error) => void;
}

export class SessionPool {
  readonly #size: number;
  readonly #open: () => Session;
  readonly #name: string;
  readonly #idle: Session[] = [];
  readonly #busy = new Set<Session>();
  readonly #waiters: Waiter[] = [];
  #closed = false;
  #drained: Array<() => void> = [];
  #opened = 0;
  #discarded = 0;
  #peakBusy = 0;
  #peakWaiting = 0;

  constructor(options: SessionPoolOptions) {
    this.#size = options.size;
    this.#open = options.open;
    this.#name = options.name;
  }

  /** Adds an already open session (the one the provider logged in with) to the idle list. */
  adopt(session: Session): void {
    this.#opened++;
    this.#idle.push(session);
  }

  #closedError(): ProviderError {
    return new ProviderError('PROVIDER_CLOSED', `the ${this.#name} is closed`);
  }

  #markBusy(s: Session): Session {
    this.#busy.add(s);
    if (this.#busy.size > this.#peakBusy) this.#peakBusy = this.#busy.size;
    return s;
  }

  /** An idle session right away, or `undefined` (then use {@link acquire}). Saves a promise on the fast path. */
  tryAcquire(): Session | undefined {
    if (this.#closed || this.#waiters.length > 0) return undefined;
    const idle = this.#idle.pop();
    return idle ? this.#markBusy(idle) : undefined;
  }

  /** Takes a session: an idle one, a new one while below the size, else waits for one. */
  acquire(): Promise<Session> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(this.#markBusy(idle));
    if (this.#busy.size < this.#size) {
      try {
        const s = this.#open();
        this.#opened++;
        return Promise.resolve(this.#markBusy(s));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return new Promise<Session>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      if (this.#waiters.length > this.#peakWaiting) this.#peakWaiting = this.#waiters.length;
    });
  }

  /** Gives a healthy session back: to the next waiter, else to the idle list. */
  release(session: Session): void {
    this.#busy.delete(session);
    if (this.#closed) {
      closeQuietly(session);
      this.#checkDrained();
      return;
    }
    const next = this.#waiters.shift();
    if (next) {
      next.resolve(this.#markBusy(session));
      return;
    }
    this.#idle.push(session);
  }

  /** Drops a session that may be broken, and lets the next waiter open a fresh one. */
  discard(session: Session): void {
    this.#busy.delete(session);
    this.#discarded++;
    closeQuietly(session);
    if (this.#closed) {
      this.#checkDrained();
      return;
    }
    const next = this.#waiters.shift();
    if (next) {
      try {
        const s = this.#open();
        this.#opened++;
        next.resolve(this.#markBusy(s));
      } catch (err) {
        next.reject(err as Error);
      }
    }
  }

  /**
   * Closes every idle session: after one session was invalidated (C_CloseAllSessions, token removed, library
   * re-initialised) the others usually are too, and reopening is cheaper than failing once per stale session.
   */
  purgeIdle(): void {
    for (const s of this.#idle.splice(0)) {
      this.#discarded++;
      closeQuietly(s);
    }
  }

  /** An idle session, for a call outside `acquire` (logout at close). */
  anyIdle(): Session | undefined {
    return this.#idle[this.#idle.length - 1];
  }

  /** Refuses new callers (waiters get PROVIDER_CLOSED) and resolves when no operation is in flight. */
  drain(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(this.#closedError());
    if (this.#busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #checkDrained(): void {
    if (this.#busy.size > 0) return;
    for (const done of this.#drained.splice(0)) done();
  }

  /** Closes every idle session (call after `drain()`). */
  closeAll(): void {
    for (const s of this.#idle.splice(0)) closeQuietly(s);
  }

  stats(): SessionPoolStats {
    return {
      size: this.#size,
      open: this.#idle.length + this.#busy.size,
      idle: this.#idle.length,
      busy: this.#busy.size,
      waiting: this.#waiters.length,
      opened: this.#opened,
      discarded: this.#discarded,
      peakBusy: this.#peakBusy,
      peakWaiting: this.#peakWaiting,
    };
  }
}

function closeQuietly(session: Session): void {
  try {
    session.close();
  } catch {
    // already invalid: nothing to close
  }
}

/**
 * Recoveries per operation: a lost session, then a stale KEK handle after logging in again, can follow each other.
 */
const MAX_RECOVERIES = 2;

/** Failures after which a session is not trusted again: it is closed, and the operation tried again. */
const SESSION_LOST = new Set<string>([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_OPERATION_ACTIVE',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

/** Failures that mean a cached KEK handle is stale: it is looked up again and the operation tried again. */
const HANDLE_STALE = new Set<string>([
  'CKR_KEY_HANDLE_INVALID',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_WRAPPING_KEY_HANDLE_INVALID',
  'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
]);

/** What the runner needs from its provider: the login state, the KEK handle cache and the error mapping. */
export interface SessionRunnerHooks<Op extends string> {
  /** True while the application is logged in to the token. */
  readonly loggedIn: () => boolean;
  /** Records that the token may have logged the application out (log in again before the next use). */
  readonly markLoggedOut: () => void;
  /** Logs in through `session` (at most one C_Login; a refused PIN is never tried again). */
  readonly login: (session: Session) => void;
  /** Drops the cached KEK handle of `version`, so the next use looks it up again. */
  readonly forgetKek: (version: string) => void;
  /** True once the provider is closed: nothing is tried again then. */
  readonly closed: () => boolean;
  /** Maps a failure of `operation` on KEK `version` to the error the caller sees (coded, or a caller's TypeError). */
  readonly mapError: (err: unknown, operation: Op, version: string) => Error;
}

/**
 * Runs operations on pooled sessions, recovering from an invalidated session (reopen, log in again) and a stale KEK
 * handle (look it up again), at most {@link MAX_RECOVERIES} times per operation.
 */
export class SessionRunner<Op extends string> {
  readonly #pool: SessionPool;
  readonly #hooks: SessionRunnerHooks<Op>;
  #recoveries = 0;

  constructor(pool: SessionPool, hooks: SessionRunnerHooks<Op>) {
    this.#pool = pool;
    this.#hooks = hooks;
  }

  /** Operations tried again after their session was invalidated or their KEK handle went stale. */
  get recoveries(): number {
    return this.#recoveries;
  }

  /**
   * Runs `fn` on a pooled session and maps PKCS#11 failures to Keyfold errors. Written without `async` so that with
   * execution `sync` and an idle session the whole call runs synchronously and settles one promise.
   */
  run<T>(operation: Op, version: string, fn: (session: Session) => T | Promise<T>, attempt = 0): Promise<T> {
    const session = this.#pool.tryAcquire();
    if (session) return this.#runOn(session, operation, version, fn, attempt);
    return this.#pool.acquire().then(
      (s) => this.#runOn(s, operation, version, fn, attempt),
      (err: unknown) => Promise.reject(this.#hooks.mapError(err, operation, version)),
    );
  }

  #runOn<T>(session: Session, operation: Op, version: string, fn: (session: Session) => T | Promise<T>, attempt: number): Promise<T> {
    let result: T | Promise<T>;
    try {
      // After a lost login (all sessions closed behind us), log in again before using any session, new or idle.
      if (!this.#hooks.loggedIn()) this.#hooks.login(session);
      result = fn(session);
    } catch (err) {
      return this.#failed(session, err, operation, version, fn, attempt);
    }
    if (result instanceof Promise) {
      return result.then(
        (value) => {
          this.#pool.release(session);
          return value;
        },
        (err: unknown) => this.#failed(session, err, operation, version, fn, attempt),
      );
    }
    this.#pool.release(session);
    return Promise.resolve(result);
  }

  #failed<T>(session: Session, err: unknown, operation: Op, version: string, fn: (session: Session) => T | Promise<T>, attempt: number): Promise<T> {
    const failure = pkcs11Failure(err);
    if (failure && SESSION_LOST.has(failure.name)) {
      // The token may have logged the application out with its last session: log in again before the next use.
      // (Set first: discarding hands a freshly opened session to a waiting call, which must see it.)
      this.#hooks.markLoggedOut();
      this.#pool.discard(session);
      this.#pool.purgeIdle();
      if (attempt < MAX_RECOVERIES && !this.#hooks.closed()) {
        this.#recoveries++;
        return this.run(operation, version, fn, attempt + 1);
      }
    } else {
      this.#pool.release(session);
      if (failure && HANDLE_STALE.has(failure.name)) {
        // A private object is invisible to a session that is not logged in: the login may be what was lost.
        this.#hooks.markLoggedOut();
        this.#hooks.forgetKek(version);
        if (attempt < MAX_RECOVERIES && !this.#hooks.closed()) {
          this.#recoveries++;
          return this.run(operation, version, fn, attempt + 1);
        }
      }
    }
    return Promise.reject(this.#hooks.mapError(err, operation, version));
  }
}
