/**
 * Domain errors. Callers catch {@link LockstepError} and switch on its stable
 * `code`; everything else is a programmer bug or an unexpected fault.
 */

/** Stable error codes shown to users and scripts. */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_MISSING'
  | 'HOME_EXISTS'
  | 'HOME_INVALID'
  | 'FOLDER_INVALID'
  | 'FOLDER_STOPPED'
  | 'PATH_INVALID'
  | 'IDENTITY_INVALID'
  | 'INDEX_INVALID'
  /** A peer sent something malformed, oversized or unsafe. */
  | 'PEER_INVALID'
  /** A peer could not be reached or refused us. */
  | 'PEER_UNREACHABLE'
  /** No such path in the global view, or no such lock. */
  | 'NOT_FOUND'
  /** A lock on a directory or a symlink. */
  | 'NOT_A_FILE'
  /** The file is locked by someone else (the message names the holder). */
  | 'LOCKED'
  /** Unlock by someone who is not the lock's owner (an administrator may force). */
  | 'NOT_LOCK_OWNER'
  /** The lock authority cannot be reached. */
  | 'AUTHORITY_UNREACHABLE'
  /** Devices disagree on which device is the lock authority. */
  | 'AUTHORITY_DISAGREE'
  /** A client without a valid token. */
  | 'UNAUTHORIZED'
  /** The caller may not do this (e.g. a web session asking for a sign-in code). */
  | 'FORBIDDEN'
  /** The caller has as many of something (sign-in codes, sessions) as allowed. */
  | 'TOO_MANY'
  /** A user of that name exists already. */
  | 'USER_EXISTS'
  /** A device refused or failed a client request for a reason not listed here. */
  | 'REQUEST_FAILED'
  /** The device a client command tried to reach did not answer. */
  | 'UNREACHABLE'
  | 'USAGE';

/** An error that users or callers are meant to catch and act upon. */
export class LockstepError extends Error {
  /** A stable, machine-readable code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LockstepError';
    this.code = code;
  }
}

/** Returns the message of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Returns the `code` property of a Node.js system error, if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
