/**
 * A pool of PKCS#11 sessions with one operation per session at a time.
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
