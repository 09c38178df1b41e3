// A seeded, Jepsen-style run of locks on etcd: three real `lockstep serve`
// devices whose lock authority is a real three-member etcd; each device
// reaches every member through its own TCP proxy (test/faults.ts), so one
// device can be cut from etcd. Workers make contended lock attempts on a few
// paths through the devices' client API, as a few users with short TTLs (or
// none); each grant is followed by a write of the file at the holder's device
// (content unique to the attempt) and, mostly, an unlock. A nemesis kills and
// restarts etcd members (one at a time), pauses a device with SIGSTOP past a
// lock's TTL, and cuts a device from etcd. The history (every attempt's
// times and answer, every write) goes to the checker (jepsen-checker.ts) with
// the authority's own record, read from etcd's revision history, and every
// device's folder once everything settled.
//
// JEPSEN_ATTEMPTS (default 1000) attempts, paced for JEPSEN_SECONDS (default
// 20 s per 1,000; faults and hung requests make the run 2-3 times that), and
// stopped after four times that (then the test fails: too few attempts).
// SEED=n reproduces the schedule (the interleaving is the machine's); the
// seed is printed. On a violation the history and every device's log are kept
// in a temp dir whose path the failure names (JEPSEN_KEEP=1: always).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3, type IWatchResponse } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, saveConfig } from '../src/config/config.js';
import type { LocalEtcd } from '../src/cli/local-etcd.js';
import { apiOf, type Api } from './api-client.js';
import { TestCluster, converged, treeOf, type TestDevice } from './cluster.js';
import { etcdCleanup, startEtcd } from './etcd.js';
import { FaultProxy } from './faults.js';
import { lockstepAsync, waitUntil } from './helpers.js';
import {
  check,
  type Answer,
  type Attempt,
  type AuthorityLock,
  type Folder,
  type Write,
} from './jepsen-checker.js';

const ATTEMPTS = Number(process.env.JEPSEN_ATTEMPTS ?? 1000);
const SECONDS = Number(process.env.JEPSEN_SECONDS ?? (ATTEMPTS * 20) / 1000);
const SEED = process.env.SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.SEED);
/** The run stops making attempts after this long (the test then fails: too few attempts). */
const DEADLINE_S = SECONDS * 4 + 30;
/** Workers per device. */
const WORKERS = 5;
const PATHS = ['a.txt', 'b.txt', 'c.txt', 'd/e.txt'];
const USERS = ['alice', 'bob', 'carol'];
const PREFIX = '/lockstep/jepsen/';
/** How long a request may hang (a paused device answers when it resumes). */
const REQUEST_MS = 15_000;

/** mulberry32: a small seeded PRNG, so a seed gives the same schedule. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One planned attempt (drawn from the seed before the run). */
interface Plan {
  n: number;
  device: number;
  user: string;
  path: string;
  ttlS: number | null;
  /** Leave the end to the TTL (only with one). */
  noUnlock: boolean;
  holdMs: number;
  /** Write at the end of the hold rather than at once (a holder that takes its time). */
  writeLate: boolean;
  thinkMs: number;
}

function plans(random: () => number): Plan[] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  const think = (3 * WORKERS * SECONDS * 1000) / ATTEMPTS;
  return Array.from({ length: ATTEMPTS }, (_, n) => {
    const ttlS = pick([1, 2, 3, null]);
    return {
      n,
      device: Math.floor(random() * 3),
      user: pick(USERS),
      path: pick(PATHS),
      ttlS,
      noUnlock: ttlS !== null && random() < 0.2,
      // Mostly brief; some long enough to be caught by a pause.
      holdMs: Math.floor(random() < 0.85 ? random() * 150 : 300 + random() * 1200),
      writeLate: random() < 0.3,
      thinkMs: Math.floor(random() * 2 * think),
    };
  });
}

/** One JSON request with a deadline; a network failure or timeout is `undefined`. */
async function request(
  api: Api,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(`${api.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${api.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_MS),
    });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
    } catch {
      return { status: res.status, body: { text } };
    }
  } catch {
    return undefined;
  }
}

const codeOf = (b: Record<string, unknown>) =>
  String((b.error as { code?: string } | undefined)?.code ?? b.text ?? '?');

/** The run's world: devices, their users' tokens, the proxies to etcd. */
interface World {
  etcd: LocalEtcd;
  devices: TestDevice[];
  /** device index → user → API with that user's token. */
  apis: Map<string, Api>[];
  /** device index → its proxy to each member. */
  proxies: FaultProxy[][];
  /** Attempts granted whose holder has not let go yet (unlock not answered, TTL not over). */
  holding: Map<number, { p: Plan; id: string; writes: Write[] }>;
  /** The last grant of each path: attempt and completion time. */
  lastGrant: Map<string, { n: number; completeMs: number }>;
  t0: number;
}

/** Writes `content` to `path` at device `d` for the lock `lockId` of attempt `n`. */
function writeAt(
  w: World,
  d: TestDevice,
  n: number,
  path: string,
  lockId: string,
  content: string,
): Write {
  const startMs = now(w);
  writeFileSync(join(d.folder, path), content);
  return { attempt: n, device: d.name, path, content, lockId, startMs, endMs: now(w) };
}

const now = (w: World) => Date.now() - w.t0;

/** Ends the lock `p.user` holds on `p.path`: through its device, then any, until it is gone. */
async function unlock(w: World, p: Plan): Promise<number> {
  const first = now(w);
  for (let i = 0; i < 40; i++) {
    const d = (p.device + Math.floor(i / 4)) % 3;
    const api = w.apis[d]?.get(p.user) as Api;
    const r = await request(api, 'DELETE', `/locks/${p.path}`);
    // Gone (expired meanwhile) or someone else's by now: nothing of ours left.
    if (r && (r.status === 200 || r.status === 404 || r.status === 409 || r.status === 403)) break;
    await sleep(250);
  }
  return first;
}

async function attempt(w: World, p: Plan): Promise<Attempt> {
  const device = w.devices[p.device] as TestDevice;
  const api = w.apis[p.device]?.get(p.user) as Api;
  const invokeMs = now(w);
  const r = await request(api, 'POST', '/locks', {
    path: p.path,
    ...(p.ttlS === null ? {} : { ttl: p.ttlS }),
  });
  const completeMs = now(w);
  let answer: Answer;
  if (r === undefined) answer = { type: 'failed', why: 'no answer' };
  else if (r.status === 201) answer = { type: 'granted', id: String(r.body.id) };
  else if (r.status >= 500) answer = { type: 'failed', why: `${r.status} ${codeOf(r.body)}` };
  else answer = { type: 'refused', status: r.status, code: codeOf(r.body) };
  const base = { n: p.n, device: device.name, user: p.user, path: p.path, ttlS: p.ttlS };
  if (answer.type !== 'granted') return { ...base, invokeMs, completeMs, answer };
  w.lastGrant.set(p.path, { n: p.n, completeMs });
  const content = `attempt ${p.n} by ${p.user} at ${device.name} under lock ${answer.id}\n`;
  const writes: Write[] = [];
  w.holding.set(p.n, { p, id: answer.id, writes });
  try {
    if (!p.writeLate) writes.push(writeAt(w, device, p.n, p.path, answer.id, content));
    // A late write still comes well within the TTL: a holder that writes
    // after its lock ran out, on a device that knows it, makes an ordinary
    // edit of a file nobody holds (no token to fence), not a stale write.
    const ttlLeft = p.ttlS === null ? Infinity : invokeMs + p.ttlS * 1000 - 400 - now(w);
    await sleep(p.writeLate ? Math.max(0, Math.min(p.holdMs, ttlLeft)) : p.holdMs);
    if (p.writeLate) writes.push(writeAt(w, device, p.n, p.path, answer.id, content));
    const unlockMs = p.noUnlock ? undefined : await unlock(w, p);
    return { ...base, invokeMs, completeMs, answer, writes, unlockMs };
  } finally {
    // Left to its TTL: held (as the holder sees it) until the TTL is over.
    const left = p.noUnlock ? invokeMs + (p.ttlS ?? 0) * 1000 - now(w) : 0;
    if (left > 0) setTimeout(() => w.holding.delete(p.n), left);
    else w.holding.delete(p.n);
  }
}

/**
 * Runs every plan: WORKERS workers per device, each taking the next plan of
 * its device (so a paused device holds up only its own); one attempt at a
 * time per user and path.
 */
async function runAttempts(w: World, all: Plan[]): Promise<Attempt[]> {
  const out: Attempt[] = [];
  const busy = new Map<string, Promise<void>>();
  const queues = [0, 1, 2].map((d) => all.filter((p) => p.device === d));
  const deadline = Date.now() + DEADLINE_S * 1000;
  const worker = async (queue: Plan[]) => {
    for (let p = queue.shift(); p !== undefined && Date.now() < deadline; p = queue.shift()) {
      await sleep(p.thinkMs);
      const slot = `${p.user} ${p.path}`;
      while (busy.has(slot)) await busy.get(slot);
      let done = () => undefined as void;
      busy.set(slot, new Promise<void>((r) => (done = r)));
      try {
        out.push(await attempt(w, p));
      } finally {
        busy.delete(slot);
        done();
      }
    }
  };
  await Promise.all(queues.flatMap((q) => Array.from({ length: WORKERS }, () => worker(q))));
  return out.sort((x, y) => x.n - y.n);
}

/** Set once the test is over (also on a timeout): the nemesis starts and stops nothing more. */
let torn = false;

/** The nemesis: one fault at a time, each healed before the next, until `stop()`. */
async function nemesis(
  w: World,
  random: () => number,
  stopped: () => boolean,
  log: string[],
  paused: Set<number>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = { kill: 0, pause: 0, cut: 0 };
  const say = (s: string) => log.push(`${(now(w) / 1000).toFixed(1)} s: ${s}`);
  // Each kind in turn (in a seeded order, pauses twice as often), so a
  // short run has every kind.
  const order = (['kill', 'pause', 'cut', 'pause'] as const)
    .map((k) => ({ k, r: random() }))
    .sort((x, y) => x.r - y.r)
    .map((x) => x.k);
  for (let i = 0; !stopped(); i++) {
    await sleep(1000 + random() * 2000);
    if (stopped()) break;
    const kind = order[i % order.length] as 'kill' | 'pause' | 'cut';
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (kind === 'kill') {
      const m = Math.floor(random() * 3);
      say(`etcd member ${m} killed`);
      await w.etcd.stopMember(m);
      await sleep(1500 + random() * 2000);
      if (torn) break; // the test is over: nothing to start again
      w.etcd.startMember(m);
      await w.etcd.healthy([0, 1, 2], 30_000);
      say(`etcd member ${m} back`);
    } else if (kind === 'pause') {
      // A device with holders of TTL locks: the one with the most, waiting
      // up to 3 s for one (a seeded pick among equals).
      let i = Math.floor(random() * 3);
      for (let t = 0, best = 0; t < 3000 && best === 0; t += 50) {
        const ttlHolders = [0, 1, 2].map(
          (x) =>
            [...w.holding.values()].filter((h) => h.p.device === x && h.p.ttlS !== null).length,
        );
        best = Math.max(...ttlHolders);
        if (best > 0) i = ttlHolders.indexOf(best);
        else await sleep(50);
      }
      const d = w.devices[i] as TestDevice;
      const pid = d.served?.pid as number;
      if (torn) break;
      say(`device ${d.name} paused (SIGSTOP)`);
      paused.add(pid);
      process.kill(pid, 'SIGSTOP');
      // Every holder at d writes again, on d's disk, once another device was
      // granted its path (its lock ran out meanwhile), or at the latest 4.5 s
      // in (past the longest TTL): d records the write when it resumes,
      // under the token it had then.
      const pausedAt = now(w);
      const holders = [...w.holding].filter(([, h]) => h.p.device === i);
      const n0 = holders.length;
      const desc = holders.map(([n, h]) => `#${n} ${h.p.path} ttl ${h.p.ttlS ?? '-'}`).join(', ');
      let early = 0;
      for (let t = 0; holders.length > 0; t += 100) {
        const last = t >= 4500;
        for (const [n, h] of [...holders]) {
          const g = w.lastGrant.get(h.p.path);
          const taken = g !== undefined && g.n !== n && g.completeMs > pausedAt;
          if (!taken && !last) continue;
          if (taken) early++;
          const content = `attempt ${n} by ${h.p.user} at ${d.name} under lock ${h.id}, while ${d.name} was paused\n`;
          h.writes.push(writeAt(w, d, n, h.p.path, h.id, content));
          holders.splice(
            holders.findIndex(([m]) => m === n),
            1,
          );
        }
        if (last) break;
        await sleep(100);
      }
      say(
        `${n0} holder(s) at ${d.name} wrote while it was paused (${desc}), ${early} after another grant of their path`,
      );
      // Resumed soon after a write made after another grant (its stale
      // version then often reaches the new holder's device before the new
      // holder writes), else a while after the longest TTL.
      const soon = early > 0 && random() < 0.7;
      await sleep(soon ? random() * 300 : Math.max(0, pausedAt + 4500 - now(w)) + random() * 1500);
      process.kill(pid, 'SIGCONT');
      paused.delete(pid);
      say(`device ${d.name} resumed (SIGCONT)`);
    } else {
      const i = Math.floor(random() * 3);
      say(`device ${w.devices[i]?.name} cut from etcd`);
      for (const p of w.proxies[i] ?? []) p.set('cut');
      await sleep(2000 + random() * 2000);
      for (const p of w.proxies[i] ?? []) p.set('pass');
      say(`device ${w.devices[i]?.name} back on etcd`);
    }
  }
  return counts;
}

/**
 * The authority's record, from etcd's revision history: every lock ever
 * created under the prefix, with its token and the revisions it stood.
 */
async function authorityHistory(endpoints: string[]): Promise<AuthorityLock[]> {
  const client = new Etcd3({ hosts: endpoints });
  try {
    const sentinel = `${PREFIX}jepsen-end`;
    await client.put(sentinel).value(String(Date.now()));
    const locks: (AuthorityLock & { key: string })[] = [];
    const standing = new Map<string, AuthorityLock & { key: string }>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('reading etcd history timed out')), 30_000);
      void client
        .watch()
        .prefix(PREFIX)
        .startRevision('1')
        .create()
        .then((watcher) => {
          watcher.on('error', reject);
          watcher.on('data', (res: IWatchResponse) => {
            for (const e of res.events) {
              const key = e.kv.key.toString();
              if (key === sentinel) {
                clearTimeout(timer);
                void watcher.cancel();
                resolve();
                return;
              }
              if (!key.startsWith(`${PREFIX}locks/`)) continue;
              const rev = Number(e.kv.mod_revision);
              const before = standing.get(key);
              if (e.type === 'Delete') {
                if (before) (before as { endRev: number | null }).endRev = rev;
                standing.delete(key);
                continue;
              }
              const v = JSON.parse(e.kv.value.toString()) as {
                id: string;
                path: string;
                tokenBase?: number;
                token?: number;
              };
              if (before?.id === v.id) continue; // a refresh
              if (before) (before as { endRev: number | null }).endRev = rev;
              const createRev = Number(e.kv.create_revision);
              const l = {
                key,
                id: v.id,
                path: v.path,
                token: v.token ?? (Number(v.tokenBase) || 0) + createRev,
                createRev,
                endRev: null,
              };
              locks.push(l);
              standing.set(key, l);
            }
          });
        }, reject);
    });
    return locks.map(({ key, ...l }) => (void key, l));
  } finally {
    client.close();
  }
}

/** Every file of a device's folder with its content. */
async function folderOf(d: TestDevice): Promise<Folder> {
  const tree = await treeOf(d.folder);
  const out = new Map<string, string>();
  for (const [p, e] of Object.entries(tree)) {
    if (e.type === 'file') out.set(p, readFileSync(join(d.folder, p), 'utf8'));
  }
  return out;
}

etcdCleanup('each');

describe('a Jepsen-style run of locks on etcd', () => {
  let cluster: TestCluster | undefined;
  let proxies: FaultProxy[] = [];
  const paused = new Set<number>();
  afterEach(async () => {
    torn = true;
    for (const pid of paused) process.kill(pid, 'SIGCONT');
    paused.clear();
    await cluster?.close();
    await Promise.all(proxies.map((p) => p.close()));
    cluster = undefined;
    proxies = [];
  });

  it(
    `${ATTEMPTS} contended lock attempts from three devices with etcd members killed, a device paused past its TTL and a device cut from etcd: no two holders, no stale write wins (seed ${SEED})`,
    async () => {
      console.log(
        `jepsen: seed ${SEED}, ${ATTEMPTS} attempts over about ${SECONDS} s (reproduce: SEED=${SEED} JEPSEN_ATTEMPTS=${ATTEMPTS})`,
      );
      torn = false;
      const random = rng(SEED);
      const schedule = plans(random);
      const etcd = await startEtcd();
      cluster = await TestCluster.create(['A', 'B', 'C']);
      const devices = cluster.devices as TestDevice[];
      const perDevice: FaultProxy[][] = [];
      for (const d of devices) {
        const mine: FaultProxy[] = [];
        for (const m of etcd.members) {
          const p = new FaultProxy(m.clientPort);
          await p.listen();
          mine.push(p);
        }
        perDevice.push(mine);
        proxies.push(...mine);
        saveConfig(d.home, {
          ...loadConfig(d.home),
          lockAuthority: {
            kind: 'etcd',
            endpoints: mine.map((p) => `http://127.0.0.1:${p.port}`),
            prefix: PREFIX,
          },
        });
      }
      const initial = new Map(PATHS.map((p) => [p, `the initial ${p}\n`]));
      const a = devices[0] as TestDevice;
      for (const [p, c] of initial) {
        const abs = join(a.folder, p);
        mkdirSync(join(abs, '..'), { recursive: true });
        writeFileSync(abs, c);
      }
      await cluster.startAll();
      await converged(devices, 'the initial files everywhere', (t) =>
        PATHS.every((p) => t[p] !== undefined),
      );
      // Each user, made on every device (one name, one owner of locks).
      const apis: Map<string, Api>[] = [];
      for (const d of devices) {
        const m = new Map<string, Api>();
        for (const u of USERS) {
          const add = await lockstepAsync(['user', 'add', u, '--home', d.home]);
          expect(add.code, add.stderr).toBe(0);
          m.set(u, { url: apiOf(d).url, token: add.stdout.trim().split('\n').at(-1) as string });
        }
        apis.push(m);
      }
      const w: World = {
        etcd,
        devices,
        apis,
        proxies: perDevice,
        holding: new Map(),
        lastGrant: new Map(),
        t0: Date.now(),
      };

      let done = false;
      const log: string[] = [];
      // The nemesis's failure (a member that does not come back) is the run's.
      const faults = nemesis(w, rng(SEED ^ 0x5eed), () => done || torn, log, paused).then(
        (c) => ({ c, err: undefined }),
        (err: unknown) => ({ c: undefined, err }),
      );
      const attempts = await runAttempts(w, schedule).finally(() => (done = true));
      const f = await faults;
      if (f.err !== undefined) throw f.err;
      const counts = f.c as Record<string, number>;
      const runMs = now(w);

      // Everything healed: every lock ends (TTLs run out), every folder settles.
      await waitUntil(
        'every lock ended on every device',
        async () => {
          for (const d of devices) {
            const r = await request(apiOf(d), 'GET', '/locks');
            if (!r || ((r.body.locks ?? []) as unknown[]).length > 0) return false;
          }
          return true;
        },
        30_000,
      );
      await converged(devices, 'every device the same after the run', () => true, 60_000);
      const folders = new Map<string, Folder>();
      for (const d of devices) folders.set(d.name, await folderOf(d));
      const authority = await authorityHistory(etcd.endpoints);
      const verdict = check({ attempts, authority, folders, initial });

      const s = verdict.stats;
      console.log(
        `jepsen: seed ${SEED}: ${attempts.length} attempts in ${(runMs / 1000).toFixed(1)} s: ${s.grants} granted, ${s.refused} refused, ${s.failed} failed; ${s.writes} writes, ${s.staleWrites} certainly stale (${s.staleAsCopies} kept as conflict copies everywhere, ${s.staleReplacedLocally} replaced at their device); ${authority.length} locks in etcd's history; nemesis: ${counts.kill} etcd kills, ${counts.pause} pauses, ${counts.cut} cuts from etcd\n${[...log, ...verdict.notes].join('\n')}`,
      );
      // The evidence (history, and every device's log) on a violation, or when asked.
      let keep = '';
      if (verdict.violations.length > 0 || process.env.JEPSEN_KEEP === '1') {
        keep = mkdtempSync(join(tmpdir(), `lockstep-jepsen-seed${SEED}-`));
        const folderJson = Object.fromEntries(
          [...folders].map(([k, v]) => [k, Object.fromEntries(v)]),
        );
        const history = {
          seed: SEED,
          attempts,
          authority,
          folders: folderJson,
          nemesis: log,
          notes: verdict.notes,
          violations: verdict.violations,
        };
        writeFileSync(join(keep, 'history.json'), JSON.stringify(history, null, 1));
        for (const d of devices) writeFileSync(join(keep, `${d.name}.log`), d.allOutput());
        console.log(`jepsen: history and device logs kept in ${keep}`);
      }
      if (verdict.violations.length > 0) {
        throw new Error(
          `jepsen: seed ${SEED}: ${verdict.violations.length} violation(s) (history kept in ${keep}):\n${verdict.violations.slice(0, 20).join('\n')}`,
        );
      }
      expect(
        attempts.length,
        `only ${attempts.length} of ${ATTEMPTS} attempts were made in ${DEADLINE_S} s`,
      ).toBeGreaterThanOrEqual(ATTEMPTS);
      expect(s.grants).toBeGreaterThan(0);
      expect(counts.kill + counts.pause + counts.cut).toBeGreaterThanOrEqual(3);
    },
    DEADLINE_S * 1000 + 150_000,
  );
});
