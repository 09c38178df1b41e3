/**
 * Helpers shared by the peer wire decoders: exact field sets, plain objects,
 * and quoting a peer's (untrusted, possibly huge) values in error messages.
 * Internal to src/peer.
 */
import type { LockstepError } from '../base/errors.js';

/** How much of a peer's string goes into an error message. */
export const QUOTE_CHARS = 200;
/** A chunk hash: SHA-256, 64 lowercase hex characters. */
export const HASH_RE = /^[0-9a-f]{64}$/;

/** Throws `bad(problem)` unless `value` has exactly the fields `names`. */
export function checkFields(
  value: Record<string, unknown>,
  names: readonly string[],
  bad: (problem: string) => LockstepError,
): void {
  const missing = names.filter((n) => !Object.hasOwn(value, n));
  if (missing.length > 0) throw bad(`missing field ${missing.join(', ')}`);
  const keys = Object.keys(value);
  if (keys.length === names.length) return;
  const extra = keys.filter((k) => !names.includes(k));
  const shown = extra.slice(0, 5).map(quote).join(', ');
  throw bad(`unknown field ${shown}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
}

/** Reports whether `v` is a plain object (not an array, a class instance or null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Reports whether `v` is a number that is a safe integer. */
export function isSafeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** `v` when it is a string, else undefined. */
export function stringOr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Quotes a peer's string for a message: escaped, cut to {@link QUOTE_CHARS}. */
export function quote(s: string): string {
  return s.length > QUOTE_CHARS ? `${JSON.stringify(s.slice(0, QUOTE_CHARS))}…` : JSON.stringify(s);
}

/** Describes a peer's value briefly for a message. */
export function show(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (v === undefined) return 'nothing';
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `a ${typeof v}`;
}
