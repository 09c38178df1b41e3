/**
 * Formatting for people: sizes in binary units.
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * Formats a byte count with binary units and one decimal.
 *
 * @example
 * formatBytes(46592) // '45.5 KiB'
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${UNITS[u]}`;
}
