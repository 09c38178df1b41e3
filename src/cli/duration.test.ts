import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { formatSpan, parseDuration } from './duration.js';

describe('parseDuration()', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['2H', 7_200_000],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['30', /give a unit/],
    ['', /expected/],
    ['abc', /expected/],
    ['2y', /expected/],
    ['-5m', /expected/],
    ['m5', /expected/],
    ['0s', /at least 1s/],
  ])('refuses %j with a usage error', (text, want) => {
    let err: unknown;
    try {
      parseDuration(text, '--ttl');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LockstepError);
    expect((err as LockstepError).code).toBe('USAGE');
    expect((err as LockstepError).message).toMatch(/--ttl/);
    expect((err as LockstepError).message).toMatch(want);
  });
});

describe('formatSpan()', () => {
  it.each([
    [0, '0s'],
    [45_000, '45s'],
    [60_000, '1m'],
    [12 * 60_000 + 5000, '12m 5s'],
    [3_600_000, '1h'],
    [3_600_000 - 50, '1h'],
    [4_800_000, '1h 20m'],
    [2 * 86_400_000 + 3 * 3_600_000 + 60_000, '2d 3h'],
    [-5000, '0s'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatSpan(ms)).toBe(text);
  });
});
