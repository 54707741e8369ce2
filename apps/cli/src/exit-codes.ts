/**
 * The one place that decides how a failure ends the process (the changesets `ExitError` idea): every command
 * throws, and `cli.ts` asks {@link exitCodeFor} / {@link errorCodeFor} what to print and which status to return.
 *
 * This module must stay free of runtime imports of `@keyfold/*` so that `keyfold --help` and usage errors load
 * nothing but the CLI itself: Keyfold errors are recognised by their `code` (checked against the exhaustive
 * table below, which the compiler keeps in step with the core's `KeyfoldErrorCode` union).
 * @module
 */
import { constants } from 'node:os';
import type { KeyfoldErrorCode } from '@keyfold/envelope-core';

/** Stable exit statuses. Scripts may rely on them; changing one is a breaking change. */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** The operation failed (backend, configuration, I/O, policy, unhealthy probe, ...). */
  FAILURE: 1,
  /** The command line was wrong: unknown command or flag, missing value, missing passphrase source. */
  USAGE: 2,
  /**
   * Integrity or authentication failure: tampered or foreign data, wrong context, wrong passphrase, credentials the
   * key service or HSM refuses (wrong token or PIN, ACCESS_DENIED), a provider other than the installation's
   * (PROVIDER_MISMATCH), a damaged store or audit log (INTEGRITY_FAILED), a shredded key (KEY_DESTROYED).
   */
  INTEGRITY: 3,
  /** Interrupted by the user (Ctrl-C at a prompt), the shell convention 128 + SIGINT. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Codes the CLI itself raises, in addition to the core's {@link KeyfoldErrorCode}s. */
export type CliErrorCode =
  | 'USAGE'
  | 'IO_ERROR'
  | 'PROBE_FAILED'
  | 'NOT_INITIALIZED'
  | 'INTERRUPTED'
  | 'UNSUPPORTED'
  | 'NO_STORE'
  | 'KEY_DESTROYED'
  | 'EDIT_FAILED'
  | 'THRESHOLD_NOT_MET'
  | 'NOT_READY';

/** Every code the CLI may print in `[CODE]` / `{"error":{"code"}}`. */
export type ErrorCode = KeyfoldErrorCode | CliErrorCode;

/**
 * Exit status of every core error code. A `Record` over the union, so a code added to the core without a
 * decision here fails the type check.
 */
const KEYFOLD_EXIT: Readonly<Record<KeyfoldErrorCode, ExitCode>> = {
  DECRYPT_FAILED: ExitCode.INTEGRITY,
  UNWRAP_FAILED: ExitCode.INTEGRITY,
  CONTEXT_MISMATCH: ExitCode.INTEGRITY,
  WRONG_PASSPHRASE: ExitCode.INTEGRITY,
  INTEGRITY_FAILED: ExitCode.INTEGRITY,
  FORMAT_INVALID: ExitCode.INTEGRITY,
  FORMAT_UNSUPPORTED: ExitCode.FAILURE,
  LIMIT_EXCEEDED: ExitCode.FAILURE,
  KEY_NOT_FOUND: ExitCode.FAILURE,
  KEY_DISABLED: ExitCode.FAILURE,
  KEY_VERSION_RETIRED: ExitCode.FAILURE,
  // Refused credentials (a wrong Vault token or HSM PIN, an access key KMS denies): an authentication failure.
  ACCESS_DENIED: ExitCode.INTEGRITY,
  ATTESTATION_REFUSED: ExitCode.INTEGRITY, // KMS refused the enclave's attestation document: an authentication failure.
  THROTTLED: ExitCode.FAILURE,
  UNAVAILABLE: ExitCode.FAILURE,
  TIMEOUT: ExitCode.FAILURE,
  PROVIDER_CLOSED: ExitCode.FAILURE,
  // The key store or configuration names another KEK provider than the one opened: data integrity is at stake.
  PROVIDER_MISMATCH: ExitCode.INTEGRITY,
  NO_PROVIDER: ExitCode.FAILURE,
  CONFIG_INVALID: ExitCode.FAILURE,
  INSECURE_PERMISSIONS: ExitCode.FAILURE,
  POLICY_VIOLATION: ExitCode.FAILURE,
  ALREADY_EXISTS: ExitCode.FAILURE,
  INTERNAL: ExitCode.FAILURE,
};

const CLI_EXIT: Readonly<Record<CliErrorCode, ExitCode>> = {
  USAGE: ExitCode.USAGE,
  IO_ERROR: ExitCode.FAILURE,
  PROBE_FAILED: ExitCode.FAILURE,
  NOT_INITIALIZED: ExitCode.FAILURE,
  INTERRUPTED: ExitCode.INTERRUPTED,
  // The installation's provider cannot do this (e.g. `kek add` where the service rotates keys itself).
  UNSUPPORTED: ExitCode.FAILURE,
  // The installation has no key store (initialised before stores existed): re-run init in a new directory.
  NO_STORE: ExitCode.FAILURE,
  // The data's key was shredded (tenant shred, or its key version: tenant shred --key-version): it can never be opened again.
  KEY_DESTROYED: ExitCode.INTEGRITY,
  // `secrets edit`: the editor failed or the edited file does not parse; the encrypted file was left as it was.
  EDIT_FAILED: ExitCode.FAILURE,
  // `secrets`: a key-group file whose available providers cover fewer groups than its threshold: like a wrong key,
  // the file cannot be opened here (decided from its public metadata, never from a cryptographic check).
  THRESHOLD_NOT_MET: ExitCode.INTEGRITY,
  // `kek verify --target` / `kek rotate`: the target KEK version does not work here, or a live registered process
  // has not loaded it yet (listed); roll it out and try again, or `kek rotate --force`.
  NOT_READY: ExitCode.FAILURE,
};

/** An error raised by the CLI itself, with its own code (and so its own exit status). */
export class CliError extends Error {
  readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
  }
}

/** The command line is wrong; exit 2. The message says what to type instead. */
export class UsageError extends CliError {
  /** The command whose usage to point at, when known (`encrypt`, `provider probe`). */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super('USAGE', message);
    this.name = 'UsageError';
    this.command = command;
  }
}

function isKeyfoldCode(code: unknown): code is KeyfoldErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(KEYFOLD_EXIT, code);
}

function isCliCode(code: unknown): code is CliErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(CLI_EXIT, code);
}

/**
 * The code to report for `err`: a CLI code, a Keyfold code (read from the error's `code`, the same way whether or
 * not the error class came from this copy of the core), or `INTERNAL` for anything else.
 */
export function errorCodeFor(err: unknown): ErrorCode {
  if (err instanceof CliError) return err.code;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (isKeyfoldCode(code)) return code;
  }
  return 'INTERNAL';
}

/**
 * The exit status of a run that left some keys undone, from their error codes, by the same tables as every other
 * failure: INTEGRITY (3) when any code is an integrity code (or one not known here, conservatively), else FAILURE,
 * so running again is the fix. `LOCKED` (rotation: another transaction held the key) is FAILURE.
 */
export function exitCodeForFailedKeys(codes: readonly string[]): ExitCode {
  const exitOf = (code: string): ExitCode =>
    code === 'LOCKED' ? ExitCode.FAILURE : isKeyfoldCode(code) ? KEYFOLD_EXIT[code] : isCliCode(code) ? CLI_EXIT[code] : ExitCode.INTEGRITY;
  return codes.some((code) => exitOf(code) === ExitCode.INTEGRITY) ? ExitCode.INTEGRITY : ExitCode.FAILURE;
}

/** Every error code the CLI may print, core and CLI codes (for the exit-code table's test and docs). */
export function knownErrorCodes(): readonly ErrorCode[] {
  return [...Object.keys(KEYFOLD_EXIT), ...Object.keys(CLI_EXIT)] as ErrorCode[];
}

/**
 * The exit status of a run ended by `signal` while it wrote output (`decrypt --out`, data on stdout): the shell
 * convention 128 + the signal number (SIGHUP 129, SIGINT 130 = {@link ExitCode.INTERRUPTED}, SIGTERM 143).
 * @throws RangeError for a signal this platform does not know.
 */
export function exitCodeForSignal(signal: NodeJS.Signals): number {
  const number = (constants.signals as Partial<Record<NodeJS.Signals, number>>)[signal];
  if (number === undefined) throw new RangeError(`unknown signal ${signal}`);
  return 128 + number;
}

/** The exit status for `err` (see {@link ExitCode}). */
export function exitCodeFor(err: unknown): ExitCode {
  const code = errorCodeFor(err);
  return isCliCode(code) ? CLI_EXIT[code] : KEYFOLD_EXIT[code];
}
