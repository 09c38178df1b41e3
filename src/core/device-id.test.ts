import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { formatDeviceId, parseDeviceId, shortId } from './device-id.js';

/** Syncthing's own test vector (lib/protocol/deviceid_test.go). */
const SYNCTHING_HEX = '7f7c8723ecca5b4d22061c4981b34c34d865ec376be1eb74330873c9a6f9b205';
const SYNCTHING_ID = 'P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2';

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

function errorOf(fn: () => unknown): LockstepError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LockstepError);
    return err as LockstepError;
  }
  throw new Error('expected an error');
}

describe('formatDeviceId', () => {
  const cases: { name: string; digest: Uint8Array; want: string }[] = [
    { name: "Syncthing's vector", digest: hex(SYNCTHING_HEX), want: SYNCTHING_ID },
    {
      name: 'all zero bytes',
      digest: new Uint8Array(32),
      want: 'AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA',
    },
  ];
  it.each(cases)('$name', ({ digest, want }) => {
    expect(formatDeviceId(digest)).toBe(want);
  });

  it('makes 8 groups of 7 that parse back to themselves', () => {
    const digest = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 255);
    const id = formatDeviceId(digest);
    expect(id).toMatch(/^([A-Z2-7]{7}-){7}[A-Z2-7]{7}$/);
    expect(parseDeviceId(id)).toBe(id);
  });

  it('refuses a digest that is not 32 bytes', () => {
    expect(errorOf(() => formatDeviceId(new Uint8Array(20))).code).toBe('IDENTITY_INVALID');
  });
});

describe('parseDeviceId', () => {
  const good: { name: string; text: string }[] = [
    { name: 'canonical', text: SYNCTHING_ID },
    { name: 'lower case', text: SYNCTHING_ID.toLowerCase() },
    { name: 'no dashes', text: SYNCTHING_ID.replaceAll('-', '') },
    { name: 'spaces', text: SYNCTHING_ID.replaceAll('-', ' ') },
    { name: 'surrounding whitespace', text: `  ${SYNCTHING_ID}\n` },
    { name: 'odd grouping', text: 'P56IOI7MZJNU2Y-IQGDREYDM2MGTI-MGL3BXNPQ6W5BM-TBBZ4TJXZWICQ2' },
  ];
  it.each(good)('accepts $name', ({ text }) => {
    expect(parseDeviceId(text)).toBe(SYNCTHING_ID);
  });

  const bad: { name: string; text: string; message: RegExp }[] = [
    {
      name: 'a typo in the first group',
      text: 'P56IOI7-MZJNV2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2',
      message:
        /check character 1 \(character 14\) does not match; look for a typo in characters 1 to 14/,
    },
    {
      name: 'a typo in the last group',
      text: 'P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ3',
      message:
        /check character 4 \(character 56\) does not match; look for a typo in characters 43 to 56/,
    },
    {
      name: 'two swapped characters',
      text: 'P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWIQC2',
      message: /check character 4 .* does not match/,
    },
    { name: 'too short', text: 'P56IOI7-MZJNU2Y', message: /expected 56 characters .* got 14/ },
    {
      name: 'too long',
      text: `${SYNCTHING_ID}-AAAAAAA`,
      message: /expected 56 characters .* got 63/,
    },
    { name: 'empty', text: '', message: /expected 56 characters .* got 0/ },
    {
      name: 'no check characters',
      text: 'P56IOI7MZJNU2IQGDREYDM2MGTMGL3BXNPQ6W5BTBBZ4TJXZWICQ',
      message: /no check characters/,
    },
    {
      name: 'a digit outside the alphabet',
      text: 'P56I0I7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2',
      message: /character 5 "0" is not one of A-Z and 2-7 \(did you mean "O"\?\)/,
    },
    { name: 'punctuation', text: 'P56IOI7.MZJNU2Y', message: /character 8 "\." is not one of/ },
  ];
  it.each(bad)('refuses $name', ({ text, message }) => {
    const err = errorOf(() => parseDeviceId(text));
    expect(err.code).toBe('IDENTITY_INVALID');
    expect(err.message).toMatch(/is not a valid device ID: /);
    expect(err.message).toMatch(message);
  });

  it('detects every single-character substitution', () => {
    const plain = SYNCTHING_ID.replaceAll('-', '');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    for (let i = 0; i < plain.length; i++) {
      for (const c of alphabet) {
        if (c === plain[i]) continue;
        const typo = plain.slice(0, i) + c + plain.slice(i + 1);
        expect(() => parseDeviceId(typo)).toThrow(LockstepError);
      }
    }
  });
});

describe('shortId', () => {
  it('is the first 7 characters', () => {
    expect(shortId(SYNCTHING_ID)).toBe('P56IOI7');
  });
});
