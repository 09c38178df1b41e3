// Property-based test of the confined path layer (root.ts, fs.ts): random
// trees, random calls on random paths, and an attacker racing them; nothing
// outside the folder root may ever be touched or read.
//
// Each run builds, in a fresh temporary directory `top`:
//   top/outside/  sentinels: what a device run as root must never touch (think
//                 /etc), owned by the test's user. Their names are the
//                 folder's (a, b, c; and d), so a call that escaped would hit
//                 them.
//   top/f/root/   the folder, built and edited by the attacker: nested
//                 directories, files (setuid ones too), symlinks to places
//                 inside and outside (absolute, relative with `..` chains, deep
//                 `../../..` ones), hard links to files inside and to the
//                 attacker's own files in limbo.
//   top/limbo/    the attacker's own place outside the folder (think /tmp).
// When this runs as root, the attacker is an unprivileged user (uid 65534,
// switched to with seteuid around each of its steps), so the kernel decides
// what it may do: it cannot write the sentinels, and with
// fs.protected_hardlinks it cannot hard-link one into the folder (tried;
// refused). Not as root, it is this test's own user and never tries to link
// a sentinel (it would own them). Either way its own steps never go through
// a link (it would be writing the sentinels itself).
//
// Then a random sequence of calls through confinedFs (wrapped in FaultyFs)
// and ConfinedRoot.withDir on random paths (in the folder, the root itself,
// and hostile: `..`, `.`, empty segments, absolute paths elsewhere, a sibling
// sharing the root's prefix), with attacker steps run right before a call (a
// FaultyFs `before` rule; for calls on a descriptor, before the open, the
// write, the fstat, the fchmod or the close) or while withDir's listing
// waits: a directory swapped for a symlink to outside (renamed away, inside
// or to limbo, then a link in its place), a directory moved out of the
// folder or back in, a file replaced by a symlink, a hard link made, a
// directory made. The synchronous calls of a sequence run in one synchronous
// run of the event loop, as a writer's do, so they share the directories the
// layer holds; sometimes a macrotask passes (the held directories close).
//
// The property, checked after every call:
//  1. the outside tree (and what lies beside the folder: top, top/f) is
//     exactly as before: names, types, sizes, modes, owners, link counts,
//     mtimes, ctimes, content hashes, link targets;
//  2. no call returns a sentinel's data: no sentinel inode from lstat, fstat
//     or withDir, no sentinel name from a listing (each sentinel directory
//     holds an `S-n` file), no sentinel link target from readlink;
//  3. a path not beneath the root (or with an empty, `.` or `..` segment) is
//     refused with PATH_INVALID;
//  4. when every directory on the way that the layer holds is still where a
//     fresh walk from the root finds it (ConfinedRoot.stillThere), the call
//     agrees exactly with a plain lstat walk of the same path in the real
//     tree: lstat, readlink and listings give what is there (or fail when the
//     walk meets a link or a file), and a change is found at that path; and
//     a held directory moves only when the attacker renamed something since
//     the last macrotask (what the layer renames or removes, it forgets);
//  5. every error is a LockstepError or a filesystem error (with a code);
//  6. no descriptor leaks: the count in /proc/self/fd is back to its start
//     after ConfinedRoot.flush and after a macrotask.
//
// The known window is INCLUDED: a directory the layer holds, moved out of
// the folder mid-run (a 'moveOut', or a swap that sends the directory to
// limbo), is where later calls of that run act; they then change or read the
// moved directory in limbo, never a sentinel (1 and 2 hold: the attacker
// cannot move anything into the outside tree). The documented behaviour is
// that callers detect it with stillThere (the writer through landedInside):
// property 4 asserts it, since a call whose result differs from a fresh walk
// must have a held directory that stillThere reports as moved. That
// landedInside then undoes a temp file made there is in confined.test.ts.
//
// CONFINED_RUNS sets the number of runs (150; the soak runs 5,000);
// SEED=n reproduces one (the seed is in the test's name and the failure).
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockstepError, errorCode } from '../base/errors.js';
import { FaultyFs } from '../folder/faulty-fs.js';
import { confinedFs, type FsOp } from './fs.js';
import { ConfinedRoot } from './root.js';

const RUNS = Number(process.env.CONFINED_RUNS ?? 150);
const SEED = process.env.SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.SEED);

/** The attacker's ids when this runs as root; undefined: the attacker is this user. */
const ATTACKER = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
/** Whether the kernel refuses the attacker a hard link to a file it does not own. */
const LINKS_PROTECTED =
  ATTACKER !== undefined && readFileSync('/proc/sys/fs/protected_hardlinks', 'utf8').trim() === '1';

// ---- what is generated --------------------------------------------------

const NAMES = ['a', 'b', 'c'] as const;

/** Where a symlink points: a place inside, outside or in limbo, spelled three ways; or a literal. */
type Target =
  | { to: 'root' | 'outside' | 'limbo'; sub: string; how: 'abs' | 'rel' | 'deep' }
  | { literal: string };

/** A hard link's source: a file in the folder, the attacker's own file, or a sentinel. */
type LinkFrom = { in: 'root'; rel: string } | { in: 'limbo' } | { in: 'outside'; sub: string };

/**
 * Where the attacker acts: a folder path, or the path of the call it races
 * with `up` components taken off (0: that path itself, 1: its parent, …),
 * so that it often hits a directory the layer holds.
 */
type Place = string | { up: number };

/** One step of the attacker (see {@link hostile}). */
type Hostile =
  | { h: 'swap'; p: Place; target: Target; away: string | undefined }
  | { h: 'moveOut'; p: Place }
  | { h: 'moveIn'; i: number; p: Place }
  | { h: 'fileToLink'; p: Place; target: Target }
  | { h: 'hardlink'; from: LinkFrom; p: Place }
  | { h: 'mkdir'; p: Place };

/** One entry of the initial tree, made by the attacker. */
type Build =
  | { b: 'dir'; p: string }
  | { b: 'file'; p: string; mode: number }
  | { b: 'symlink'; p: string; target: Target }
  | { b: 'hardlink'; p: string; from: LinkFrom };

/**
 * A path given to the layer: `''` the root, `/x…` appended to the root,
 * `@outside…`, `@top…` or `@sibling…` (the root's path with an `x` after it).
 */
type PathSpec = string;

type Op =
  | { op: 'lstat' | 'readlink' | 'readdir'; p: PathSpec; h?: Hostile }
  | { op: 'unlink' | 'rmdir'; p: PathSpec; h?: Hostile }
  | { op: 'mkdir'; p: PathSpec; recursive: boolean; h?: Hostile }
  | { op: 'symlink'; p: PathSpec; target: Target; h?: Hostile }
  | { op: 'rename'; p: PathSpec; q: PathSpec; h?: Hostile }
  | { op: 'chmod'; p: PathSpec; mode: number; h?: Hostile }
  | { op: 'create' | 'rewrite'; p: PathSpec; h?: Hostile; hAt: 'open' | 'write' | 'close' }
  | {
      op: 'readFchmod';
      p: PathSpec;
      mode: number;
      h?: Hostile;
      hAt: 'open' | 'fstat' | 'fchmod' | 'close';
    }
  | { op: 'withDir'; rel: string; h?: Hostile; race: boolean }
  | { op: 'tick' };

const relArb = fc
  .array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 3 })
  .map((s) => s.join('/'));

const targetArb: fc.Arbitrary<Target> = fc.oneof(
  fc.record({
    to: fc.constant('outside' as const),
    sub: fc.constantFrom('', 'a', 'a/b', 'b', 'c', 'd'),
    how: fc.constantFrom('abs' as const, 'rel' as const, 'deep' as const),
  }),
  fc.record({
    to: fc.constant('limbo' as const),
    sub: fc.constantFrom('', 'L0', 'm0'),
    how: fc.constantFrom('abs' as const, 'rel' as const),
  }),
  fc.record({
    to: fc.constant('root' as const),
    sub: fc.constantFrom('', 'a', 'a/b', 'b'),
    how: fc.constantFrom('abs' as const, 'rel' as const),
  }),
  fc.record({ literal: fc.constantFrom('nowhere', '..', '../..', '../../..', '/', '.') }),
);

const linkFromArb: fc.Arbitrary<LinkFrom> = fc.oneof(
  relArb.map((rel) => ({ in: 'root' as const, rel })),
  fc.constant({ in: 'limbo' as const }),
  fc.constantFrom('b', 'c', 'a/a').map((sub) => ({ in: 'outside' as const, sub })),
);

const placeArb: fc.Arbitrary<Place> = fc.oneof(
  { weight: 1, arbitrary: relArb },
  { weight: 2, arbitrary: fc.nat(2).map((up) => ({ up })) },
);

const hostileArb: fc.Arbitrary<Hostile> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      h: fc.constant('swap' as const),
      p: placeArb,
      target: targetArb,
      away: fc.option(relArb, { nil: undefined }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ h: fc.constant('moveOut' as const), p: placeArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ h: fc.constant('moveIn' as const), i: fc.nat(5), p: placeArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ h: fc.constant('fileToLink' as const), p: placeArb, target: targetArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ h: fc.constant('hardlink' as const), from: linkFromArb, p: placeArb }),
  },
  { weight: 1, arbitrary: fc.record({ h: fc.constant('mkdir' as const), p: placeArb }) },
);

const buildArb: fc.Arbitrary<Build[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ b: fc.constant('dir' as const), p: relArb }) },
    {
      weight: 3,
      arbitrary: fc.record({
        b: fc.constant('file' as const),
        p: relArb,
        mode: fc.constantFrom(0o644, 0o600, 0o755, 0o4755, 0o2755, 0o1644, 0o444),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ b: fc.constant('symlink' as const), p: relArb, target: targetArb }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ b: fc.constant('hardlink' as const), p: relArb, from: linkFromArb }),
    },
  ),
  { maxLength: 20 },
);

const pathArb: fc.Arbitrary<PathSpec> = fc.oneof(
  { weight: 14, arbitrary: relArb.map((r) => `/${r}`) },
  { weight: 1, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom('a', 'b', '..', '.', ''), { minLength: 1, maxLength: 5 })
      .map((s) => `/${s.join('/')}`),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '/..',
      '/../..',
      '/../../outside/a',
      '/../../outside/c',
      '/../../outside/a/b/c',
      '/a/../../../outside/b',
      '/../../outside/d/new',
      '/../new',
      '@outside/a/a',
      '@outside/c',
      '@outside/d/new',
      '@sibling',
      '@sibling/a',
      '@top/new',
    ),
  },
);

const withDirRelArb = fc.oneof(
  { weight: 6, arbitrary: relArb },
  {
    weight: 2,
    arbitrary: fc.constantFrom('', '..', '../..', 'a/..', '../../outside', '../../outside/a'),
  },
  { weight: 1, arbitrary: fc.constantFrom('.', 'a/', '/a', 'a//b', 'a/./b') },
);

const maybeHostile = fc.option(hostileArb, { nil: undefined, freq: 2 });
/**
 * Any mode, special bits included; not as root, always with the owner's rwx
 * (a directory this user cannot list would fail the reference walk, not the
 * layer).
 */
const modeArb = fc
  .integer({ min: 0, max: 0o7777 })
  .map((m) => (ATTACKER === undefined ? m | 0o700 : m));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constantFrom('lstat' as const, 'readlink' as const, 'readdir' as const),
      p: pathArb,
      h: maybeHostile,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constantFrom('unlink' as const, 'rmdir' as const),
      p: pathArb,
      h: maybeHostile,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('mkdir' as const),
      p: pathArb,
      recursive: fc.boolean(),
      h: maybeHostile,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('symlink' as const),
      p: pathArb,
      target: targetArb,
      h: maybeHostile,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('rename' as const),
      p: pathArb,
      q: pathArb,
      h: maybeHostile,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('chmod' as const),
      p: pathArb,
      mode: modeArb,
      h: maybeHostile,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom('create' as const, 'rewrite' as const),
      p: pathArb,
      h: maybeHostile,
      hAt: fc.constantFrom('open' as const, 'write' as const, 'close' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('readFchmod' as const),
      p: pathArb,
      mode: modeArb,
      h: maybeHostile,
      hAt: fc.constantFrom('open' as const, 'fstat' as const, 'fchmod' as const, 'close' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('withDir' as const),
      rel: withDirRelArb,
      h: maybeHostile,
      race: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ op: 'tick' as const }) },
);

// ---- the world ------------------------------------------------------------

interface World {
  readonly top: string;
  readonly root: string;
  readonly outside: string;
  readonly limbo: string;
  readonly cr: ConfinedRoot;
  readonly fsys: FaultyFs;
  /** The outside tree as it was built (see {@link snapshot}). */
  readonly before: Map<string, string>;
  /** `dev:ino` of everything outside the folder and limbo. */
  readonly sentinels: Set<string>;
  /** How many names (m0, m1, …) the attacker has used in limbo. */
  moved: number;
  /**
   * Whether the attacker renamed something since the last macrotask (when
   * the layer's held directories closed): only that moves a held directory.
   */
  attacked: boolean;
}

const key = (st: { dev: bigint | number; ino: bigint | number }): string => `${st.dev}:${st.ino}`;

/** Runs `fn` with the attacker's credentials; what it is refused, it does not do. */
function asAttacker(fn: () => void): void {
  const groups = process.getgroups?.() ?? [];
  if (ATTACKER !== undefined) {
    process.setgroups?.([ATTACKER.gid]);
    process.setegid?.(ATTACKER.gid);
    process.seteuid?.(ATTACKER.uid);
  }
  try {
    fn();
  } finally {
    if (ATTACKER !== undefined) {
      process.seteuid?.(0);
      process.setegid?.(0);
      process.setgroups?.(groups);
    }
  }
}

/** Tries one filesystem call of the attacker; a refusal is simply not done. */
function tryTo(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (errorCode(err) === undefined) throw err;
  }
}

/** The text of a symlink's target, for a link at folder path `linkRel`. */
function targetText(w: World, t: Target, linkRel: string): string {
  if ('literal' in t) return t.literal;
  const base = t.to === 'root' ? w.root : t.to === 'outside' ? w.outside : w.limbo;
  const abs = t.sub === '' ? base : `${base}/${t.sub}`;
  if (t.how === 'abs') return abs;
  if (t.how === 'deep') return `${'../'.repeat(12)}${abs.slice(1)}`;
  const up = '../'.repeat(linkRel.split('/').length - 1);
  const fromRoot = t.to === 'root' ? t.sub : `../../${t.to}${t.sub === '' ? '' : `/${t.sub}`}`;
  return `${up}${fromRoot}` === '' ? '.' : `${up}${fromRoot}`;
}

/** A hard link's source path; undefined when the attacker may not even try. */
function linkSource(w: World, from: LinkFrom): string | undefined {
  if (from.in === 'root') {
    return walkPlain(w, from.rel).kind === 'ok' ? `${w.root}/${from.rel}` : undefined;
  }
  if (from.in === 'limbo') return `${w.limbo}/L0`;
  return LINKS_PROTECTED ? `${w.outside}/${from.sub}` : undefined;
}

/**
 * One attacker step, with the attacker's credentials; each call it is
 * refused is skipped. `callRel` is the folder path of the call it races.
 */
function hostile(w: World, h: Hostile, callRel: string | undefined): void {
  // Never the root itself (its parent is not the attacker's to change).
  const place = (p: Place): string => {
    if (typeof p === 'string') return p;
    const parts = (callRel ?? '').split('/');
    return parts.slice(0, Math.max(parts.length - p.up, 0)).join('/') || 'a';
  };
  // The attacker's own paths go through real directories only (looked at
  // as this test's user, before it acts): through a link it would be
  // writing the sentinels itself (when it is this user).
  const at = (p: Place): string => {
    const rel = place(p);
    return walkPlain(w, rel).kind === 'ok' ? `${w.root}/${rel}` : `${w.limbo}/not-through-a-link`;
  };
  const nextInLimbo = (): string => `${w.limbo}/m${w.moved++}`;
  const steps: (() => void)[] = [];
  const move = (from: string, to: string) => () => {
    renameSync(from, to);
    w.attacked = true;
  };
  switch (h.h) {
    case 'swap': {
      const [here, away] = [at(h.p), h.away === undefined ? nextInLimbo() : at(h.away)];
      const target = targetText(w, h.target, place(h.p));
      steps.push(move(here, away), () => symlinkSync(target, here));
      break;
    }
    case 'moveOut': {
      const [here, away] = [at(h.p), nextInLimbo()];
      steps.push(move(here, away));
      break;
    }
    case 'moveIn': {
      const [from, here] = [`${w.limbo}/m${h.i % Math.max(w.moved, 1)}`, at(h.p)];
      steps.push(move(from, here));
      break;
    }
    case 'fileToLink': {
      const [here, target] = [at(h.p), targetText(w, h.target, place(h.p))];
      steps.push(
        () => unlinkSync(here),
        () => symlinkSync(target, here),
      );
      break;
    }
    case 'hardlink': {
      const [from, here] = [linkSource(w, h.from), at(h.p)];
      if (from !== undefined) steps.push(() => linkSync(from, here));
      break;
    }
    case 'mkdir': {
      const here = at(h.p);
      steps.push(() => mkdirSync(here));
      break;
    }
  }
  asAttacker(() => steps.forEach(tryTo));
}

/** The sentinels, owned by the test's user; every directory holds an `S-n` marker. */
function makeSentinels(outside: string): void {
  const file = (rel: string, mode: number) => {
    writeFileSync(`${outside}/${rel}`, `sentinel ${rel}\n`);
    chmodSync(`${outside}/${rel}`, mode);
  };
  mkdirSync(`${outside}/a/b`, { recursive: true });
  mkdirSync(`${outside}/d`);
  chmodSync(`${outside}/a/b`, 0o700);
  file('S-0', 0o644);
  file('b', 0o644);
  file('c', 0o4755); // a root "program" with its setuid bit
  file('a/a', 0o644);
  file('a/S-1', 0o600);
  file('a/b/c', 0o600);
  file('a/b/S-2', 0o644);
  file('d/S-3', 0o644);
  symlinkSync('S-target-0', `${outside}/l`);
  symlinkSync('S-target-1', `${outside}/a/l`);
}

/**
 * Everything in `top` except what is inside the folder and limbo (those
 * two are listed by inode only), with every detail a change would alter.
 */
function snapshot(w: Pick<World, 'top' | 'root' | 'limbo'>): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (abs: string): void => {
    const st = lstatSync(abs, { bigint: true });
    const name = abs.slice(w.top.length) || '/';
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
    if (abs === w.root || abs === w.limbo) {
      out.set(name, `${type} ${key(st)}`);
      return;
    }
    let desc = `${type} ${key(st)} mode ${st.mode.toString(8)} owner ${st.uid}:${st.gid} nlink ${st.nlink} size ${st.size} mtime ${st.mtimeNs} ctime ${st.ctimeNs}`;
    if (st.isFile())
      desc += ` sha256 ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`;
    if (st.isSymbolicLink()) desc += ` -> ${readlinkSync(abs)}`;
    out.set(name, desc);
    if (st.isDirectory()) for (const n of readdirSync(abs).sort()) walk(`${abs}/${n}`);
  };
  walk(w.top);
  return out;
}

/** Builds a world: sentinels, then the folder and limbo as the attacker makes them. */
function makeWorld(build: Build[]): World {
  const top = mkdtempSync(join(tmpdir(), 'lockstep-confined-prop-'));
  chmodSync(top, 0o755);
  const root = `${top}/f/root`;
  const outside = `${top}/outside`;
  const limbo = `${top}/limbo`;
  mkdirSync(root, { recursive: true });
  mkdirSync(limbo);
  mkdirSync(outside);
  makeSentinels(outside);
  if (ATTACKER !== undefined) {
    chownSync(root, ATTACKER.uid, ATTACKER.gid);
    chownSync(limbo, ATTACKER.uid, ATTACKER.gid);
  }
  const cr = new ConfinedRoot(root);
  const w: World = {
    top,
    root,
    outside,
    limbo,
    cr,
    fsys: new FaultyFs(confinedFs(cr)),
    before: new Map(),
    sentinels: new Set(),
    moved: 0,
    attacked: false,
  };
  asAttacker(() => {
    writeFileSync(`${limbo}/L0`, 'the attacker’s own file\n');
    for (const d of ['a', 'a/b', 'a/b/c', 'b', 'b/a']) mkdirSync(`${root}/${d}`);
    for (const f of ['a/c', 'a/b/a', 'c']) writeFileSync(`${root}/${f}`, `inside ${f}\n`);
    for (const e of build) {
      const at = `${root}/${e.p}`;
      if (walkPlain(w, e.p).kind !== 'ok') continue; // never through a link
      tryTo(() => {
        if (e.b === 'dir') mkdirSync(at);
        else if (e.b === 'symlink') symlinkSync(targetText(w, e.target, e.p), at);
        else if (e.b === 'hardlink') {
          const from = linkSource(w, e.from);
          if (from !== undefined) linkSync(from, at);
        } else {
          writeFileSync(at, `inside ${e.p}\n`, { flag: 'wx' });
          chmodSync(at, e.mode);
        }
      });
    }
  });
  const before = snapshot(w);
  const sentinels = new Set<string>();
  for (const [name, desc] of before) {
    if (name.startsWith('/f/root') || name.startsWith('/limbo')) continue;
    sentinels.add(desc.split(' ')[1] as string);
  }
  return { ...w, before, sentinels };
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// ---- the reference: a plain walk of the real tree -------------------------

/** What a plain walk of `rel` finds: a parent missing, a parent that is no directory, or the entry. */
type Walked =
  { kind: 'missing' } | { kind: 'invalid' } | { kind: 'ok'; st: BigIntStats | undefined };

function walkPlain(w: World, rel: string): Walked {
  if (rel === '') return { kind: 'ok', st: lstatSync(w.root, { bigint: true }) };
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const st = lstatSync(`${w.root}/${parts.slice(0, i).join('/')}`, {
      bigint: true,
      throwIfNoEntry: false,
    });
    if (st === undefined) return { kind: 'missing' };
    if (!st.isDirectory()) return { kind: 'invalid' };
  }
  return {
    kind: 'ok',
    st: lstatSync(`${w.root}/${rel}`, { bigint: true, throwIfNoEntry: false }),
  };
}

/** The entry a plain walk finds at `rel`, if every parent is a directory. */
function entryAt(w: World, rel: string): BigIntStats | undefined {
  const found = walkPlain(w, rel);
  return found.kind === 'ok' ? found.st : undefined;
}

/**
 * Whether the layer may be acting in a moved directory: some directory on
 * the way to `rel` (with `self`, `rel` too) that the layer holds is no
 * longer the one a fresh walk from the root reaches. Only the attacker can
 * make that so: what the layer renames or removes itself it forgets.
 */
function moved(w: World, rel: string, self = false): boolean {
  if (rel === '') return false;
  const parts = rel.split('/');
  const n = self ? parts.length : parts.length - 1;
  for (let i = 1; i <= n; i++) {
    const prefix = parts.slice(0, i).join('/');
    if (w.cr.stillThere(prefix)) continue;
    // stillThere is also false where no directory is reached at all (the
    // path is gone, or a link or file is in the way): a moved directory
    // only if the attacker moved anything.
    const plain = walkPlain(w, prefix);
    if (plain.kind !== 'ok' || plain.st?.isDirectory() !== true) return w.attacked;
    expect(
      w.attacked,
      `${rel}: a directory the layer holds has moved, yet only the layer renamed anything since it opened it (not forgotten?)`,
    ).toBe(true);
    return true;
  }
  return false;
}

/** The folder path an absolute path names, or undefined when it is not beneath the root. */
function folderPath(w: World, abs: string): string | undefined {
  if (abs === w.root) return '';
  if (!abs.startsWith(`${w.root}/`)) return undefined;
  const rest = abs.slice(w.root.length + 1);
  if (rest === '') return '';
  return rest.split('/').some((s) => s === '' || s === '.' || s === '..') ? undefined : rest;
}

function absOf(w: World, p: PathSpec): string {
  if (p.startsWith('@outside')) return `${w.outside}${p.slice('@outside'.length)}`;
  if (p.startsWith('@top')) return `${w.top}${p.slice('@top'.length)}`;
  if (p.startsWith('@sibling')) return `${w.root}x${p.slice('@sibling'.length)}`;
  return `${w.root}${p}`;
}

// ---- calls and their checks --------------------------------------------

type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

/** Runs a call of the layer; an error must be a LockstepError or a filesystem error (5). */
function call<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    expectFolderError(err);
    return { ok: false, err };
  }
}

async function callAsync<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    expectFolderError(err);
    return { ok: false, err };
  }
}

function expectFolderError(err: unknown): void {
  // A check that failed inside the call (in a `before` rule, in withDir's callback).
  if (err instanceof Error && err.name === 'AssertionError') throw err;
  const code = errorCode(err);
  if (err instanceof LockstepError || (code !== undefined && /^E[A-Z]+$/.test(code))) return;
  throw new Error(`the layer threw something else than a refusal: ${String(err)}`, {
    cause: err,
  });
}

/** 3: a path not beneath the root is refused. */
function expectRefused(o: Outcome<unknown>, what: string, anyError = false): void {
  expect(o.ok, `${what} was not refused`).toBe(false);
  if (!o.ok && !anyError)
    expect(errorCode(o.err), `${what}: ${String(o.err)}`).toBe('PATH_INVALID');
}

/** 2: what a call returned is not a sentinel's. */
function expectNotSentinel(w: World, st: { dev: bigint | number; ino: bigint | number }): void {
  expect(w.sentinels.has(key(st)), 'a sentinel was reached').toBe(false);
}

function expectNoSentinelNames(names: string[]): void {
  expect(names.filter((n) => n.startsWith('S-'))).toEqual([]);
}

/** 1: the outside tree is as it was. */
function expectOutsideUntouched(w: World, after: string): void {
  const now = snapshot(w);
  expect(Object.fromEntries(now), `outside the folder after ${after}`).toEqual(
    Object.fromEntries(w.before),
  );
}

/** Arms the attacker's step right before the next `at` call of the seam (racing a call on `p`). */
function arm(w: World, h: Hostile | undefined, at: FsOp, p: PathSpec): void {
  const rel = folderPath(w, absOf(w, p));
  if (h !== undefined) w.fsys.inject({ op: at, times: 1, before: () => hostile(w, h, rel) });
}

/** lstat, readlink, readdir: 2, 3, and 4 (the same answer as a plain walk). */
function readCall(w: World, op: 'lstat' | 'readlink' | 'readdir', abs: string): void {
  const rel = folderPath(w, abs);
  const o: Outcome<BigIntStats | string | string[] | undefined> = call(() =>
    op === 'lstat'
      ? w.fsys.lstat(abs)
      : op === 'readlink'
        ? w.fsys.readlink(abs)
        : w.fsys.readdir(abs),
  );
  if (rel === undefined) return expectRefused(o, `${op} ${abs}`);
  if (o.ok && op === 'lstat' && o.value !== undefined) expectNotSentinel(w, o.value as BigIntStats);
  if (o.ok && op === 'readdir') expectNoSentinelNames(o.value as string[]);
  if (o.ok && op === 'readlink') expect(String(o.value)).not.toMatch(/^S-target/);
  if (moved(w, rel, op === 'readdir')) return;
  const found = walkPlain(w, rel);
  const there = `${w.root}${rel === '' ? '' : `/${rel}`}`;
  const what = `${op} ${rel} (${found.kind}): ${o.ok ? JSON.stringify(String(o.value)) : String(o.err)}`;
  if (op === 'lstat') {
    if (found.kind === 'invalid') return expectRefused(o, what);
    expect(o.ok, what).toBe(true);
    const st = o.ok ? (o.value as BigIntStats | undefined) : undefined;
    const want = found.kind === 'ok' ? found.st : undefined;
    expect(st === undefined, what).toBe(want === undefined);
    if (st !== undefined && want !== undefined) {
      expect([key(st), st.mode, st.size], what).toEqual([key(want), want.mode, want.size]);
    }
  } else if (op === 'readlink') {
    const isLink = found.kind === 'ok' && found.st?.isSymbolicLink() === true;
    expect(o.ok, what).toBe(isLink);
    if (o.ok && isLink) expect(o.value, what).toBe(readlinkSync(there));
  } else {
    const isDir = found.kind === 'ok' && found.st?.isDirectory() === true;
    expect(o.ok, what).toBe(isDir);
    if (o.ok && isDir)
      expect([...(o.value as string[])].sort(), what).toEqual(readdirSync(there).sort());
  }
}

/**
 * 4 for a change: where nothing held was moved, the change is at its path.
 * `self`: the call acted on the directory `rel` itself as held (a recursive
 * mkdir finds it held and is done).
 */
function expectLanded(
  w: World,
  rel: string,
  check: (st: BigIntStats | undefined) => void,
  self = false,
): void {
  if (moved(w, rel, self)) return;
  check(entryAt(w, rel));
}

/** The calls that change one path: unlink, rmdir, mkdir, symlink, chmod. */
function changeCall(
  w: World,
  op: Extract<Op, { op: 'unlink' | 'rmdir' | 'mkdir' | 'symlink' | 'chmod' }>,
): void {
  const abs = absOf(w, op.p);
  const rel = folderPath(w, abs);
  let pre: BigIntStats | undefined;
  if (op.op === 'chmod' && rel !== undefined) {
    w.fsys.inject({ op: 'chmod', times: 1, before: () => (pre = entryAt(w, rel)) });
  }
  const target = op.op === 'symlink' && rel !== undefined ? targetText(w, op.target, rel) : 'x';
  const o = call(() => {
    if (op.op === 'unlink') w.fsys.unlink(abs);
    else if (op.op === 'rmdir') w.fsys.rmdir(abs);
    else if (op.op === 'mkdir') w.fsys.mkdir(abs, op.recursive);
    else if (op.op === 'symlink') w.fsys.symlink(target, abs);
    else if (op.op === 'chmod') w.fsys.chmod(abs, op.mode);
  });
  if (rel === undefined) return expectRefused(o, `${op.op} ${abs}`);
  if (!o.ok) return;
  const self = op.op === 'mkdir' && op.recursive;
  expectLanded(
    w,
    rel,
    (st) => {
      const what = `${op.op} ${rel}`;
      if (op.op === 'unlink' || op.op === 'rmdir') expect(st, what).toBeUndefined();
      else if (op.op === 'mkdir') expect(st?.isDirectory(), what).toBe(true);
      else if (op.op === 'symlink') expect(readlinkSync(`${w.root}/${rel}`), what).toBe(target);
      else if (op.op === 'chmod') {
        expect(st?.isSymbolicLink(), `${what}: a symlink's mode was changed`).toBe(false);
        const mode = Number(st?.mode ?? 0) & 0o7777;
        const had = Number(pre?.mode ?? 0) & 0o7000;
        expect(mode.toString(8), what).toBe(
          ((op.mode & 0o777) | (op.mode & had & 0o7000)).toString(8),
        );
      }
    },
    self,
  );
}

function renameCall(w: World, op: Extract<Op, { op: 'rename' }>): void {
  const from = absOf(w, op.p);
  const to = absOf(w, op.q);
  const a = folderPath(w, from);
  const b = folderPath(w, to);
  // Whether a held directory moved is asked right before the call (after the
  // attacker's step): a rename forgets what it renamed, `to`'s parents too
  // when `to` is above `from`.
  let window = true;
  if (a !== undefined && b !== undefined) {
    w.fsys.inject({ op: 'rename', times: 1, before: () => (window = moved(w, a) || moved(w, b)) });
  }
  const o = call(() => w.fsys.rename(from, to));
  // Refused; the other path may fail first (a missing parent, say).
  if (a === undefined || b === undefined) return expectRefused(o, `rename ${from} ${to}`, true);
  if (!o.ok || window) return;
  const there = entryAt(w, b);
  const left = entryAt(w, a);
  expect(there, `rename ${a} ${b}: nothing at ${b}`).toBeDefined();
  // Renaming a name onto another of the same file does nothing (POSIX).
  if (left !== undefined && there !== undefined) expect(key(left)).toBe(key(there));
}

/** create (O_CREAT|O_EXCL), rewrite (O_CREAT|O_TRUNC, so a dangling link there must not be followed): open, fstat, write, close. */
async function writeCall(w: World, op: Extract<Op, { op: 'create' | 'rewrite' }>): Promise<void> {
  const abs = absOf(w, op.p);
  const rel = folderPath(w, abs);
  const { O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NONBLOCK } = constants;
  const flags =
    op.op === 'create' ? O_WRONLY | O_CREAT | O_EXCL : O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK;
  arm(w, op.h, op.hAt, op.p);
  const opened = openChecked(w, abs, rel, flags);
  if (opened === undefined) return;
  try {
    await w.fsys.write(opened.fd, Buffer.from(`written at ${rel}\n`), 0);
  } finally {
    w.fsys.close(opened.fd);
  }
}

/**
 * Opens `abs` through the layer: refused when it is not beneath the root
 * (`rel` undefined); else, when it opened, checked at once (before any
 * other call, where the attacker may act): never a sentinel, and the entry
 * at its path. Undefined when there is nothing to go on with.
 */
function openChecked(
  w: World,
  abs: string,
  rel: string | undefined,
  flags: number,
): { fd: number; st: BigIntStats } | undefined {
  const o = call(() => w.fsys.open(abs, flags, 0o644));
  if (rel === undefined) {
    if (o.ok) w.fsys.close(o.value); // opened where it must not: close it, then fail
    expectRefused(o, `open ${abs}`);
    return undefined;
  }
  if (!o.ok) return undefined;
  const fd = o.value;
  try {
    const st = fstatSync(fd, { bigint: true });
    expectNotSentinel(w, st);
    expectLanded(w, rel, (here) => expect(here && key(here), `open ${rel}`).toBe(key(st)));
    return { fd, st };
  } catch (err) {
    w.fsys.close(fd);
    throw err;
  }
}

/** Opens for reading, fstat, fchmod: never a sentinel, no setuid/setgid/sticky bit added. */
function fchmodCall(w: World, op: Extract<Op, { op: 'readFchmod' }>): void {
  const abs = absOf(w, op.p);
  const rel = folderPath(w, abs);
  arm(w, op.h, op.hAt, op.p);
  const opened = openChecked(w, abs, rel, constants.O_RDONLY | constants.O_NONBLOCK);
  if (opened === undefined) return;
  const { fd, st } = opened;
  try {
    expectNotSentinel(w, w.fsys.fstat(fd));
    w.fsys.fchmod(fd, op.mode);
    const had = Number(st.mode) & 0o7000;
    const now = Number(w.fsys.fstat(fd).mode) & 0o7777;
    expect(now.toString(8)).toBe(((op.mode & 0o777) | (op.mode & had)).toString(8));
  } finally {
    w.fsys.close(fd);
  }
}

/** withDir and an async listing: the descriptor is the path's directory, or one moved (4). */
async function withDirCall(w: World, op: Extract<Op, { op: 'withDir' }>): Promise<void> {
  let held: string | undefined;
  let heldThere: [string, string] | undefined;
  const valid = op.rel === '' || folderPath(w, `${w.root}/${op.rel}`) !== undefined;
  const o = await callAsync(() =>
    w.cr.withDir(op.rel, async (at) => {
      held = key(statSync(at, { bigint: true })); // through the descriptor's own link
      if (!moved(w, op.rel, true))
        heldThere = [held, key(entryAt(w, op.rel) ?? { dev: 0, ino: 0 })];
      if (op.h === undefined) return fsp.readdir(at);
      if (!op.race) hostile(w, op.h, op.rel);
      const listing = fsp.readdir(at);
      if (op.race) hostile(w, op.h, op.rel);
      return listing;
    }),
  );
  if (!valid) return expectRefused(o, `withDir ${op.rel}`);
  if (held !== undefined) expect(w.sentinels.has(held), 'withDir held a sentinel').toBe(false);
  if (heldThere !== undefined)
    expect(heldThere[0], `withDir ${op.rel}: not its directory`).toBe(heldThere[1]);
  if (!o.ok) return;
  expectNoSentinelNames(o.value);
  if (op.race || held === undefined) return;
  // The listing is the held directory's, wherever it is now (in the folder or limbo).
  const dir = findDir(w, held);
  // Neither in the folder nor in limbo: removed (the attacker renamed a
  // directory onto it), and a removed directory lists nothing.
  if (dir === undefined) expect(o.value, `withDir ${op.rel}: a removed directory`).toEqual([]);
  if (dir !== undefined) expect([...o.value].sort()).toEqual(readdirSync(dir).sort());
}

/** The directory with identity `k` in the folder or limbo, found without following links. */
function findDir(w: World, k: string): string | undefined {
  const walk = (abs: string): string | undefined => {
    const st = lstatSync(abs, { bigint: true });
    if (!st.isDirectory()) return undefined;
    if (key(st) === k) return abs;
    for (const n of readdirSync(abs)) {
      const found = walk(`${abs}/${n}`);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(w.root) ?? walk(w.limbo);
}

/**
 * Runs one call; synchronous calls return nothing, so that a sequence of them
 * runs in one synchronous run of the event loop, sharing the directories the
 * layer holds (an await would let them close), as a writer's calls do.
 */
function runOp(w: World, op: Op): Promise<void> | undefined {
  switch (op.op) {
    case 'tick':
      return tick().then(() => {
        w.attacked = false;
      });
    case 'withDir':
      return withDirCall(w, op);
    case 'create':
    case 'rewrite':
      return writeCall(w, op);
    case 'readFchmod':
      fchmodCall(w, op);
      return undefined;
    case 'rename':
      arm(w, op.h, 'rename', op.p);
      renameCall(w, op);
      return undefined;
    case 'lstat':
    case 'readlink':
    case 'readdir':
      arm(w, op.h, op.op, op.p);
      readCall(w, op.op, absOf(w, op.p));
      return undefined;
    default:
      arm(w, op.h, op.op, op.p);
      changeCall(w, op);
      return undefined;
  }
}

describe('the confined path layer, against random trees and an attacker racing it', () => {
  it(
    `never touches or reads outside the root (${RUNS} runs, seed ${SEED})`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          buildArb,
          fc.array(opArb, { minLength: 4, maxLength: 24, size: 'max' }),
          async (build, ops) => {
            await tick();
            const start = fdCount();
            const w = makeWorld(build);
            try {
              for (const [i, op] of ops.entries()) {
                try {
                  const waits = runOp(w, op);
                  if (waits !== undefined) await waits;
                } finally {
                  w.fsys.heal();
                }
                expectOutsideUntouched(w, `call ${i}: ${JSON.stringify(op)}`);
              }
              w.cr.close();
              expect(fdCount(), 'descriptors left open after close').toBe(start);
              await tick();
              expect(fdCount(), 'descriptors left open after a macrotask').toBe(start);
            } finally {
              w.cr.close();
              try {
                rmSync(w.top, { recursive: true, force: true });
              } catch (err) {
                // Not as root, a mode may forbid it: the run's own failure matters more.
                console.error(`could not remove ${w.top}: ${String(err)}`);
              }
            }
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
    },
    Math.max(120_000, RUNS * 250),
  );
});
