/**
 * Limits on the peer port before authentication, as pure logic: how many
 * connections may wait for their TLS handshake (in all and per remote
 * address), and warnings that stay one line per interval however many
 * connections cause them. `handshake-guard.ts` applies them to the listener.
 */
import type { Clock, Timer } from '../base/clock.js';
import type { Logger } from '../base/log.js';

/** Time a connection has to finish its TLS handshake (Node's default is 120 s). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Connections waiting for their TLS handshake at once, from all addresses. */
export const MAX_HANDSHAKES = 256;
/** Connections waiting for their TLS handshake at once from one address (an IPv6 /64). */
export const MAX_HANDSHAKES_PER_ADDRESS = 16;
/**
 * Authenticated connections of one configured peer at once. A peer dials one
 * at a time; older ones are stale (the peer redialed before this side saw the
 * old one die) and the oldest is closed for a new one.
 */
export const MAX_SESSIONS_PER_PEER = 4;
/** A kind of peer-port warning is logged at most once per this many ms. */
export const WARN_EVERY_MS = 60_000;

/**
 * Admission of items (connections) under a cap in total and a cap per group
 * (remote address). A new item over a cap displaces the oldest one of its
 * group, else the oldest of all: a flood then churns through its own
 * connections, and a real peer, whose handshake takes a round trip, is
 * displaced only by a flood faster than that.
 */
export class Admission<T> {
  /** Every admitted item and its group, oldest first. */
  private readonly all = new Map<T, string>();
  /** Admitted items per group, oldest first. */
  private readonly groups = new Map<string, Set<T>>();

  constructor(
    readonly total: number,
    readonly perGroup: number,
  ) {
    if (!(total >= 1) || !(perGroup >= 1))
      throw new RangeError('Admission caps must be at least 1');
  }

  /** Items admitted and not released. */
  get size(): number {
    return this.all.size;
  }

  /** Items of `group` admitted and not released. */
  count(group: string): number {
    return this.groups.get(group)?.size ?? 0;
  }

  /** Whether `item` is admitted. */
  has(item: T): boolean {
    return this.all.has(item);
  }

  /**
   * Admits `item` under `group`. Returns the items it displaced (released
   * here, oldest first; at most one per cap), which the caller closes.
   */
  admit(group: string, item: T): T[] {
    if (this.all.has(item)) return [];
    const out: T[] = [];
    const mine = this.groups.get(group);
    if (mine !== undefined && mine.size >= this.perGroup) {
      out.push(this.evict(mine.values()));
    }
    if (this.all.size >= this.total) out.push(this.evict(this.all.keys()));
    this.all.set(item, group);
    let set = this.groups.get(group);
    if (set === undefined) this.groups.set(group, (set = new Set()));
    set.add(item);
    return out;
  }

  /** Releases `item` (its handshake ended); false if it was not admitted. */
  release(item: T): boolean {
    const group = this.all.get(item);
    if (group === undefined) return false;
    this.all.delete(item);
    const set = this.groups.get(group);
    set?.delete(item);
    if (set?.size === 0) this.groups.delete(group);
    return true;
  }

  /** Admitted items, oldest first. */
  items(): IterableIterator<T> {
    return this.all.keys();
  }

  private evict(oldestFirst: IterableIterator<T>): T {
    const oldest = oldestFirst.next().value as T;
    this.release(oldest);
    return oldest;
  }
}

/**
 * The group a remote address counts under: an IPv4 address itself (also
 * when mapped into IPv6), an IPv6 address by its /64 (one host usually holds
 * a whole /64), anything else as given.
 */
export function addressGroup(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const a = address.toLowerCase().replace(/%.*$/, '');
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (v4) return v4[1] as string;
  if (!a.includes(':')) return a;
  // A dotted IPv4 tail stands for two groups of 16 bits.
  const groupsOf = (s: string) =>
    s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const halves = a.split('::');
  let parts = groupsOf(halves[0] as string);
  if (halves.length === 2) {
    const tail = groupsOf(halves[1] as string);
    parts = [
      ...parts,
      ...Array<string>(Math.max(0, 8 - parts.length - tail.length)).fill('0'),
      ...tail,
    ];
  }
  const prefix = parts.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '') || '0');
  while (prefix.length < 4) prefix.push('0');
  return `${prefix.join(':')}::/64`;
}

/** A warning's summary: `n` more of the same in the last `seconds`. */
export type MoreWarnings = (n: number, seconds: number) => string;

/**
 * Warnings of one kind at most once per interval: the first is logged at
 * once, the ones after it in the interval only counted, and the count is
 * logged as one summary line when the interval ends (a steady flood gives
 * one line per interval).
 */
export class WarnLimiter {
  private readonly quiet = new Map<string, { more: number; summary: MoreWarnings; timer: Timer }>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    readonly everyMs = WARN_EVERY_MS,
  ) {}

  /** Logs `message` unless a warning of `kind` was logged in this interval (then it counts it). */
  warn(kind: string, fields: object, message: string, summary: MoreWarnings): void {
    const q = this.quiet.get(kind);
    if (q !== undefined) {
      q.more++;
      q.summary = summary;
      return;
    }
    this.log.warn(fields, message);
    this.hush(kind, summary);
  }

  /** Logs the pending summaries and stops the timers. */
  close(): void {
    for (const q of this.quiet.values()) {
      q.timer.cancel();
      this.flush(q);
    }
    this.quiet.clear();
  }

  private hush(kind: string, summary: MoreWarnings): void {
    const q = {
      more: 0,
      summary,
      timer: this.clock.after(this.everyMs, () => {
        this.quiet.delete(kind);
        // One summary line per interval while it goes on.
        if (this.flush(q)) this.hush(kind, q.summary);
      }),
    };
    this.quiet.set(kind, q);
  }

  private flush(q: { more: number; summary: MoreWarnings }): boolean {
    if (q.more === 0) return false;
    this.log.warn({ count: q.more }, q.summary(q.more, Math.round(this.everyMs / 1000)));
    return true;
  }
}
