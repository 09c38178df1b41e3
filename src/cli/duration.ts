/**
 * Durations as people type them (`30m`, `2h`, `1d`, `1h30m`) and as the CLI
 * shows the time a lock has left (`1h 20m left`).
 */
import { LockstepError } from '../base/errors.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a duration: one or more `NUMBER UNIT` pairs with units s, m, h, d, w
 * (seconds, minutes, hours, days, weeks), e.g. `30m`, `2h`, `1d`, `1h30m`.
 *
 * @param what - what the duration is, for the message (e.g. `--ttl`)
 * @returns milliseconds, at least one second
 * @throws LockstepError `USAGE` naming what is wrong
 * @example
 * parseDuration('1h30m') // 5_400_000
 */
export function parseDuration(s: string, what = 'duration'): number {
  const text = s.trim().toLowerCase();
  const hint = 'e.g. 90s, 30m, 2h, 1d or 1h30m';
  if (/^\d+$/.test(text)) {
    throw new LockstepError(
      'USAGE',
      `Invalid ${what} ${JSON.stringify(s)}: give a unit (s, m, h, d or w), ${hint}`,
    );
  }
  if (!/^(\d+(\.\d+)?\s*[smhdw]\s*)+$/.test(text)) {
    throw new LockstepError('USAGE', `Invalid ${what} ${JSON.stringify(s)}: expected ${hint}`);
  }
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)\s*([smhdw])/g)) {
    ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  ms = Math.round(ms);
  if (ms < 1000) {
    throw new LockstepError('USAGE', `Invalid ${what} ${JSON.stringify(s)}: at least 1s`);
  }
  return ms;
}

/**
 * Formats a time span briefly, in its two largest units: `45s`, `12m`,
 * `1h`, `1h 20m`, `2d 3h`.
 */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'd'],
    [Math.floor((s % 86_400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  const [n1, u1] = parts[first] as [number, string];
  const next = parts[first + 1];
  return next !== undefined && next[0] > 0 ? `${n1}${u1} ${next[0]}${next[1]}` : `${n1}${u1}`;
}
