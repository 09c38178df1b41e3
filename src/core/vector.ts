/**
 * Version vectors: one counter per device (keyed by the device's short ID).
 * A vector is a plain, immutable object; every operation returns a new one.
 */

/** A version vector. Counters are positive integers; absent means zero. */
export type Vector = Readonly<Record<string, number>>;

/** How two vectors relate. */
export type Ordering = 'equal' | 'greater' | 'lesser' | 'concurrent';

/**
 * Returns `v` with `device`'s counter incremented by one.
 *
 * @example
 * update({ AAAAAAA: 1 }, 'BBBBBBB') // { AAAAAAA: 1, BBBBBBB: 1 }
 */
export function update(v: Vector, device: string): Vector {
  return sorted({ ...v, [device]: (v[device] ?? 0) + 1 });
}

/** Returns the element-wise maximum of `a` and `b`. */
export function merge(a: Vector, b: Vector): Vector {
  const out: Record<string, number> = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, n);
  return sorted(out);
}

/**
 * Compares `a` with `b`: `greater` when `a` dominates (has seen everything `b`
 * has, and more), `lesser` when `b` dominates, `equal`, or `concurrent` when
 * each has seen something the other has not.
 */
export function compare(a: Vector, b: Vector): Ordering {
  let aAhead = false;
  let bAhead = false;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k] ?? 0;
    const y = b[k] ?? 0;
    if (x > y) aAhead = true;
    else if (y > x) bAhead = true;
  }
  if (aAhead && bAhead) return 'concurrent';
  if (aAhead) return 'greater';
  if (bAhead) return 'lesser';
  return 'equal';
}

/** Reports whether `a` has seen everything that `b` has (`greater` or `equal`). */
export function dominates(a: Vector, b: Vector): boolean {
  const o = compare(a, b);
  return o === 'greater' || o === 'equal';
}

/**
 * Checks that a value decoded from storage or the wire is a valid vector:
 * an object of short device IDs to positive safe integers.
 *
 * @throws {TypeError} naming the first offending key or value.
 */
export function checkVector(value: unknown): Vector {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Version vector must be an object, got ${JSON.stringify(value)}`);
  }
  for (const [k, n] of Object.entries(value)) {
    if (!/^[A-Z2-7]{7}$/.test(k))
      throw new TypeError(`Version vector has an invalid device key "${k}"`);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
      throw new TypeError(
        `Version vector counter for ${k} must be a positive integer, got ${String(n)}`,
      );
    }
  }
  return sorted(value as Record<string, number>);
}

function sorted(v: Record<string, number>): Vector {
  const out: Record<string, number> = {};
  for (const k of Object.keys(v).sort()) out[k] = v[k] as number;
  return out;
}
