/**
 * Device IDs, as Syncthing writes them: the SHA-256 of a device's DER
 * certificate in base32 (RFC 4648 alphabet, no padding, 52 characters), a
 * Luhn mod-32 check character after each group of 13 (56 characters), shown
 * as 8 groups of 7 joined by dashes:
 * `P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2`.
 *
 * The check characters catch any single mistyped character, so an ID copied
 * by hand with a typo is refused instead of naming some other device.
 */
import { LockstepError } from '../base/errors.js';

/** The base32 alphabet of RFC 4648. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Bytes in a SHA-256 digest. */
const HASH_BYTES = 32;
/** Base32 characters of a 32-byte hash, without padding. */
const HASH_CHARS = 52;
/** Characters covered by one check character. */
const CHECK_GROUP = 13;
/** Characters of an ID with its check characters, without dashes. */
const DEVICE_ID_CHARS = 56;
/** Characters of the short form that names a device in listings. */
const SHORT_ID_CHARS = 7;

/** Characters people type for the letters they resemble, absent from base32. */
const CONFUSABLE: Readonly<Record<string, string>> = { '0': 'O', '1': 'I', '8': 'B' };

/** Returns the base32 value of a character, or -1 if it is not in the alphabet. */
function codepoint(c: string): number {
  return ALPHABET.indexOf(c);
}

/**
 * The Luhn mod-32 check character of `s`, computed as Syncthing does (the
 * factor starts at 1 from the left), so IDs are interchangeable with its.
 */
function luhn32(s: string): string {
  let factor = 1;
  let sum = 0;
  for (const c of s) {
    const addend = factor * codepoint(c);
    factor = factor === 2 ? 1 : 2;
    sum += Math.floor(addend / 32) + (addend % 32);
  }
  return ALPHABET[(32 - (sum % 32)) % 32] as string;
}

/** Encodes bytes as base32 without padding. */
function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = ((buffer << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** Splits `s` into groups of `n` characters. */
function groups(s: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

/** Adds the check characters to 52 base32 characters and adds the dashes. */
function present(hashChars: string): string {
  const checked = groups(hashChars, CHECK_GROUP)
    .map((g) => g + luhn32(g))
    .join('');
  return groups(checked, SHORT_ID_CHARS).join('-');
}

/**
 * Formats the SHA-256 of a DER certificate as a device ID, e.g.
 * `P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2`.
 *
 * @param sha256 - the 32-byte digest
 * @throws LockstepError `IDENTITY_INVALID` if the digest is not 32 bytes
 */
export function formatDeviceId(sha256: Uint8Array): string {
  if (sha256.length !== HASH_BYTES) {
    throw new LockstepError(
      'IDENTITY_INVALID',
      `A device ID is made from a ${HASH_BYTES}-byte SHA-256 digest, got ${sha256.length} bytes`,
    );
  }
  return present(base32(sha256));
}

/**
 * Reads a device ID typed or pasted by a person: upper or lower case, with
 * or without dashes or spaces. Verifies every check character.
 *
 * @returns the canonical form: upper case, 8 groups of 7 joined by dashes
 * @throws LockstepError `IDENTITY_INVALID` naming what is wrong: a character
 *   outside the alphabet, the wrong length, or a check character that does
 *   not match (most likely a typo in the group it covers)
 */
export function parseDeviceId(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  const bad = (why: string): LockstepError =>
    new LockstepError('IDENTITY_INVALID', `"${shown}" is not a valid device ID: ${why}`);
  const chars = text.trim().replace(/[-\s]/g, '').toUpperCase();
  for (const [i, c] of [...chars].entries()) {
    if (codepoint(c) < 0) {
      const like = CONFUSABLE[c];
      const hint = like === undefined ? '' : ` (did you mean "${like}"?)`;
      throw bad(`character ${i + 1} "${c}" is not one of A-Z and 2-7${hint}`);
    }
  }
  if (chars.length === HASH_CHARS) {
    throw bad(
      `it has ${HASH_CHARS} characters but no check characters; expected ${DEVICE_ID_CHARS}`,
    );
  }
  if (chars.length !== DEVICE_ID_CHARS) {
    throw bad(
      `expected ${DEVICE_ID_CHARS} characters (8 groups of 7, dashes optional), got ${chars.length}`,
    );
  }
  let hashChars = '';
  for (const [g, group] of groups(chars, CHECK_GROUP + 1).entries()) {
    const body = group.slice(0, CHECK_GROUP);
    const check = group.slice(CHECK_GROUP);
    if (luhn32(body) !== check) {
      const first = g * (CHECK_GROUP + 1) + 1;
      throw bad(
        `check character ${g + 1} (character ${first + CHECK_GROUP}) does not match; ` +
          `look for a typo in characters ${first} to ${first + CHECK_GROUP}`,
      );
    }
    hashChars += body;
  }
  // 52 characters carry 260 bits; the last 4 must be zero for a 256-bit hash.
  if ((codepoint(hashChars.slice(-1)) & 15) !== 0) {
    throw bad('it does not encode a 32-byte hash');
  }
  return present(hashChars);
}

/**
 * The short form of a device ID that names a device in listings and version
 * vectors: its first 7 characters.
 */
export function shortId(id: string): string {
  return id.slice(0, SHORT_ID_CHARS);
}
