/**
 * The checker of the Jepsen-style lock run (test/jepsen.test.ts): pure
 * functions over a recorded history, so each rule has table tests of tiny
 * hand-made histories (jepsen-checker.test.ts).
 *
 * What the history holds:
 * - attempts: each lock attempt's invocation and completion times (the test
 *   process's clock, ms), its answer (granted with the lock ID, refused with a
 *   code, or failed: no answer or 5xx, so it may or may not have taken
 *   effect), the first unlock's invocation, and the write made under it;
 * - the authority's own record (read from etcd's revision history after the
 *   run): each lock it granted, with its path, ID, token and the revisions at
 *   which it was created and ended;
 * - the final folder of every device.
 *
 * Definitions.
 * - A lock is held, as the authority saw it, from its grant until the
 *   authority ends it (unlock, force, or expiry). A client cannot see those
 *   instants, only bounds: a grant happened between its attempt's invocation
 *   and completion; it cannot end before the earliest of its first unlock's
 *   invocation and its invocation plus its TTL (both the grant's expiry and
 *   its etcd lease are counted from after the invocation). So a lock L is
 *   certainly held from its completion until `earliestEnd(L)`.
 * - Mutual exclusion (client view): for two grants L1, L2 of one path with
 *   token(L1) < token(L2) (the authority granted L1 first), L2's grant came
 *   after L1 ended; since L2's grant is at most L2's completion, a violation
 *   is `complete(L2) < earliestEnd(L1)`: L2 was granted while L1 was
 *   certainly held.
 * - Mutual exclusion (authority view): per path, the authority's locks
 *   ordered by create revision each end at or before the next one's create
 *   revision, and their tokens strictly increase in that order.
 * - Grants are real: every lock ID a client was granted is one the authority
 *   recorded, on that path.
 * - Tokens follow real time: if L1 completed before L2 was invoked (both of
 *   one path), token(L1) < token(L2).
 * - Fencing on every replica (after everything settled): every device holds
 *   the same content for each path; it is the write with the largest token
 *   among the path's writes, the last one made under it (or the initial
 *   content if none). A write W is
 *   certainly stale if a grant of its path with a larger token completed
 *   before W was made; a stale write is never a winner, and it is kept as a
 *   conflict copy of its path on every device, unless a later write at its
 *   own device under a larger token replaced it there before that device
 *   sent it (a local version replaced by the next local edit: no conflict).
 *   E.g. a grant asked of the paused device, answered when it resumed, and
 *   written at once; or a grant just after it resumed, written before the
 *   stale version went out.
 */

/** The answer to one lock attempt. */
export type Answer =
  | { readonly type: 'granted'; readonly id: string }
  | { readonly type: 'refused'; readonly status: number; readonly code: string }
  | { readonly type: 'failed'; readonly why: string };

/** One write of a file at the holder's device, under the lock `lockId`. */
export interface Write {
  readonly attempt: number;
  readonly device: string;
  readonly path: string;
  readonly content: string;
  readonly lockId: string;
  /** When the write started and ended (ms). */
  readonly startMs: number;
  readonly endMs: number;
}

/** One lock attempt and what followed it. */
export interface Attempt {
  readonly n: number;
  readonly device: string;
  readonly user: string;
  readonly path: string;
  /** TTL in seconds; null for none. */
  readonly ttlS: number | null;
  readonly invokeMs: number;
  readonly completeMs: number;
  readonly answer: Answer;
  /** The first unlock's invocation (ms), if one was made. */
  readonly unlockMs?: number | undefined;
  /** The writes made under its lock (a grant's, and one made while its device was paused). */
  readonly writes?: readonly Write[] | undefined;
}

/** One lock as the authority recorded it. */
export interface AuthorityLock {
  readonly id: string;
  readonly path: string;
  readonly token: number;
  readonly createRev: number;
  /** The revision that ended it; null if it still stands. */
  readonly endRev: number | null;
}

/** A device's folder at the end: path → content. */
export type Folder = ReadonlyMap<string, string>;

/** What the checker found: each violation said in words. */
export interface Verdict {
  readonly violations: string[];
  /** What is allowed but worth a look (a stale write replaced at its own device). */
  readonly notes: string[];
  readonly stats: {
    grants: number;
    refused: number;
    failed: number;
    writes: number;
    staleWrites: number;
    staleAsCopies: number;
    staleReplacedLocally: number;
  };
}

/** The earliest instant the authority may have ended the lock of `a` (ms). */
export function earliestEnd(a: Attempt): number {
  const ttlEnd = a.ttlS === null ? Infinity : a.invokeMs + a.ttlS * 1000;
  return Math.min(a.unlockMs ?? Infinity, ttlEnd);
}

/** A grant of the history with its token from the authority. */
interface Grant {
  readonly a: Attempt;
  readonly id: string;
  readonly token: number;
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

const show = (g: Grant) =>
  `attempt ${g.a.n} (${g.a.user}@${g.a.device}, lock ${g.id}, token ${g.token}, ` +
  `invoked ${g.a.invokeMs}, completed ${g.a.completeMs}, ttl ${g.a.ttlS ?? 'none'}, ` +
  `unlock invoked ${g.a.unlockMs ?? 'never'})`;

/** The authority's own record: per path, one lock at a time, tokens growing. */
export function checkAuthority(locks: readonly AuthorityLock[]): string[] {
  const out: string[] = [];
  const ids = new Set<string>();
  for (const l of locks) {
    if (ids.has(l.id)) out.push(`the authority recorded lock ID ${l.id} twice`);
    ids.add(l.id);
  }
  for (const [path, list] of groupBy(locks, (l) => l.path)) {
    const byRev = [...list].sort((x, y) => x.createRev - y.createRev);
    for (let i = 1; i < byRev.length; i++) {
      const [prev, next] = [byRev[i - 1] as AuthorityLock, byRev[i] as AuthorityLock];
      if (prev.endRev === null || prev.endRev > next.createRev) {
        out.push(
          `${path}: the authority granted lock ${next.id} at revision ${next.createRev} while lock ${prev.id} (from revision ${prev.createRev}) stood until ${prev.endRev ?? 'the end'}`,
        );
      }
      if (next.token <= prev.token) {
        out.push(
          `${path}: token ${next.token} of lock ${next.id} does not grow past ${prev.token} of the earlier lock ${prev.id}`,
        );
      }
    }
  }
  return out;
}

/** Mutual exclusion and token order as the clients saw them; also fills `grants`. */
export function checkGrants(
  attempts: readonly Attempt[],
  authority: readonly AuthorityLock[],
  grants: Grant[] = [],
): string[] {
  const out: string[] = [];
  const byId = new Map(authority.map((l) => [l.id, l]));
  for (const a of attempts) {
    if (a.answer.type !== 'granted') continue;
    const l = byId.get(a.answer.id);
    if (l === undefined || l.path !== a.path) {
      out.push(
        `attempt ${a.n} (${a.user}@${a.device}) was granted lock ${a.answer.id} on ${a.path}, which the authority never recorded${l ? ` on that path (it has it on ${l.path})` : ''}`,
      );
      continue;
    }
    grants.push({ a, id: a.answer.id, token: l.token });
  }
  for (const [path, list] of groupBy(grants, (g) => g.a.path)) {
    for (const g1 of list) {
      for (const g2 of list) {
        if (g1 === g2) continue;
        if (g1.token === g2.token) {
          if (g1.id !== g2.id && g1.a.n < g2.a.n) {
            out.push(`${path}: two grants share token ${g1.token}: ${show(g1)} and ${show(g2)}`);
          }
          continue;
        }
        if (g1.token < g2.token && g2.a.completeMs < earliestEnd(g1.a)) {
          out.push(
            `${path}: two holders at once: ${show(g2)} was granted while ${show(g1)} was still held`,
          );
        }
        if (g1.a.completeMs < g2.a.invokeMs && g1.token > g2.token) {
          out.push(
            `${path}: tokens go backwards in real time: ${show(g1)} completed before ${show(g2)} was invoked, with a larger token`,
          );
        }
      }
    }
  }
  return out;
}

/** The conflict copies of `path` in a folder (`a.txt` → `a.conflict-…txt`). */
export function conflictCopies(folder: Folder, path: string): string[] {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  const [stem, ext] = dot > slash ? [path.slice(0, dot), path.slice(dot)] : [path, ''];
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${esc(stem)}\\.conflict-\\d{8}-\\d{6}-[A-Z2-7]{7}${esc(ext)}$`);
  return [...folder.keys()].filter((p) => re.test(p));
}

/** Fencing on every replica, after everything settled. */
export function checkFolders(
  grants: readonly Grant[],
  folders: ReadonlyMap<string, Folder>,
  initial: ReadonlyMap<string, string>,
  stats: Verdict['stats'],
  notes: string[] = [],
): string[] {
  const out: string[] = [];
  const [first, ...rest] = [...folders.entries()];
  if (first === undefined) return ['no device folders to check'];
  for (const [name, f] of rest) {
    for (const p of new Set([...f.keys(), ...first[1].keys()])) {
      if (f.get(p) !== first[1].get(p)) {
        out.push(`${p} differs between ${first[0]} and ${name} after everything settled`);
      }
    }
  }
  const writes = grants.flatMap((g) => (g.a.writes ?? []).map((w) => ({ w, token: g.token })));
  stats.writes = writes.length;
  const tokenOf = new Map(writes.map((x) => [x.w.content, x.token]));
  for (const [path, init] of initial) {
    const mine = writes.filter((x) => x.w.path === path);
    const best = mine.reduce<(typeof mine)[number] | undefined>(
      // The largest token; under one token (a holder writing twice), the later write.
      (b, x) =>
        b === undefined || x.token > b.token || (x.token === b.token && x.w.startMs > b.w.startMs)
          ? x
          : b,
      undefined,
    );
    const want = best?.w.content ?? init;
    for (const [name, f] of folders) {
      const got = f.get(path);
      if (got !== want) {
        const t = got === undefined ? undefined : tokenOf.get(got);
        out.push(
          `${path} on ${name} holds ${JSON.stringify(got)}${t === undefined ? '' : ` (token ${t})`}, not the write under the largest token ${best?.token ?? '(none)'}: ${JSON.stringify(want)}`,
        );
      }
    }
    const pathGrants = grants.filter((g) => g.a.path === path);
    for (const x of mine) {
      const newer = pathGrants.find((g) => g.token > x.token && g.a.completeMs < x.w.startMs);
      if (newer === undefined) continue;
      stats.staleWrites++;
      const replaced = mine
        .filter((y) => y.w.device === x.w.device && y.w.startMs > x.w.endMs && y.token > x.token)
        .sort((p, q) => p.w.startMs - q.w.startMs)[0];
      let missing = 0;
      for (const f of folders.values()) {
        if (!conflictCopies(f, path).some((c) => f.get(c) === x.w.content)) missing++;
      }
      if (missing === 0) stats.staleAsCopies++;
      else if (replaced) {
        stats.staleReplacedLocally++;
        notes.push(
          `${path}: the stale write of attempt ${x.w.attempt} at ${x.w.device} (made at ${x.w.startMs}) is no conflict copy: attempt ${replaced.w.attempt}'s write replaced it there at ${replaced.w.startMs} (+${replaced.w.startMs - x.w.endMs} ms)`,
        );
      } else {
        out.push(
          `${path}: the stale write of attempt ${x.w.attempt} at ${x.w.device} (token ${x.token}, made at ${x.w.startMs} after attempt ${newer.a.n}'s grant with token ${newer.token} completed at ${newer.a.completeMs}) is not a conflict copy on ${missing} device(s)`,
        );
      }
    }
  }
  return out;
}

/** Checks a whole history. */
export function check(history: {
  attempts: readonly Attempt[];
  authority: readonly AuthorityLock[];
  folders: ReadonlyMap<string, Folder>;
  initial: ReadonlyMap<string, string>;
}): Verdict {
  const stats: Verdict['stats'] = {
    grants: 0,
    refused: 0,
    failed: 0,
    writes: 0,
    staleWrites: 0,
    staleAsCopies: 0,
    staleReplacedLocally: 0,
  };
  for (const a of history.attempts) {
    if (a.answer.type === 'granted') stats.grants++;
    else if (a.answer.type === 'refused') stats.refused++;
    else stats.failed++;
  }
  const grants: Grant[] = [];
  const notes: string[] = [];
  const violations = [
    ...checkAuthority(history.authority),
    ...checkGrants(history.attempts, history.authority, grants),
    ...checkFolders(grants, history.folders, history.initial, stats, notes),
  ];
  return { violations, notes, stats };
}
