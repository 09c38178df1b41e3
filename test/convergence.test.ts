// Model-based convergence: fast-check generates sequences of operations on
// three real devices (file writes of every kind, deletes, renames, mkdir and
// rmdir on random devices, with disconnects, stops, restarts, locks and
// unlocks); at quiescence every device must hold the same tree, every content
// that a device wrote and that no device knowingly replaced must still be
// there (as a file or a conflict copy), no temp file may be left, and each
// index must equal its disk. A write into a file that a sync had already
// replaced (renamed its new version over it, or deleted it) after the write
// opened it goes to a file no longer in the folder: no device can know of it,
// so it is not counted as written (see saveInPlace in model.ts; the run
// reports how many there were).
//
// CONVERGENCE_RUNS (default 2) sequences of CONVERGENCE_OPS (default 30)
// operations; SEED=n reproduces a run (the seed is printed); SHRINK=0 stops
// at the first failure instead of shrinking it.
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apiOf, call } from './api-client.js';
import { TestCluster, hashesIn, sha256, treeOf, type TestDevice } from './cluster.js';
import { meshThroughProxies } from './faults.js';
import { quiescent, saveInPlace } from './model.js';

const RUNS = Number(process.env.CONVERGENCE_RUNS ?? 2);
const OPS = Number(process.env.CONVERGENCE_OPS ?? 30);
const SEED = process.env.SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.SEED);
/** Whole-test budget: fast-check stops (and reports what it has) before vitest would. */
const BUDGET_MS = Number(process.env.CONVERGENCE_BUDGET_MS ?? 150_000 + RUNS * OPS * 2_000);

const DIRS = ['d', 'd/e', 'f'];
const FILES = ['a.txt', 'b.txt', 'c.bin', 'd/a.txt', 'd/c.bin', 'd/e/b.txt', 'f/a.txt'];

type WriteKind = 'create' | 'edit' | 'append' | 'truncate';
type Op =
  | { k: 'write'; dev: number; path: string; how: WriteKind; salt: number }
  | { k: 'delete'; dev: number; path: string }
  | { k: 'rename'; dev: number; from: string; to: string }
  | { k: 'mkdir' | 'rmdir'; dev: number; dir: string }
  | { k: 'disconnect' | 'reconnect' | 'restart' | 'stop' | 'start'; dev: number }
  | { k: 'lock' | 'unlock'; dev: number; path: string }
  | { k: 'pause'; ms: number };

const dev = fc.integer({ min: 0, max: 2 });
const file = fc.constantFrom(...FILES);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      dev,
      path: file,
      how: fc.constantFrom<WriteKind>('create', 'edit', 'append', 'truncate'),
      salt: fc.nat(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('delete' as const), dev, path: file }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('rename' as const), dev, from: file, to: file }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constantFrom('mkdir' as const, 'rmdir' as const),
      dev,
      dir: fc.constantFrom(...DIRS),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constantFrom(
        'disconnect' as const,
        'reconnect' as const,
        'restart' as const,
        'stop' as const,
        'start' as const,
      ),
      dev,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constantFrom('lock' as const, 'unlock' as const),
      dev,
      path: file,
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('pause' as const), ms: fc.nat(800) }) },
);

/** Deterministic bytes for a write: text for .txt, 100–400 KiB (several chunks) for .bin. */
function contentFor(path: string, run: number, i: number, salt: number): Buffer {
  const head = `run ${run} op ${i} salt ${salt}\n`;
  if (!path.endsWith('.bin')) return Buffer.from(head.repeat(1 + (salt % 5)));
  const size = 100 * 1024 + (salt % (300 * 1024));
  const out = Buffer.alloc(size);
  let x = (salt ^ (run * 7919) ^ (i * 104729)) >>> 0 || 1;
  for (let j = 0; j < size; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[j] = x & 0xff;
  }
  out.write(head, 0);
  return out;
}

/** The kind of entry at `abs`, without following a link. */
function kindAt(abs: string): 'file' | 'dir' | 'other' | undefined {
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (st === undefined) return undefined;
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
}

/** Makes the parents of `rel` in `folder`; false if something else is in the way. */
function parents(folder: string, rel: string): boolean {
  const parts = rel.split('/').slice(0, -1);
  let at = folder;
  for (const p of parts) {
    at = join(at, p);
    const k = kindAt(at);
    if (k === undefined) {
      try {
        mkdirSync(at);
      } catch {
        return false;
      }
    } else if (k !== 'dir') return false;
  }
  return true;
}

/** What the model tracks of one run. */
interface Ledger {
  /** Contents written, by hash, with who wrote them where (for messages). */
  written: Map<string, string>;
  /** Contents that an operation saw on disk and knowingly replaced or removed. */
  replaced: Set<string>;
  /** Operations that did something (not skipped). */
  applied: number;
  /** Writes that went to a file already replaced by a sync (see the write case). */
  overtaken: number;
}

let runNo = 0;
/** Totals over every run of this process, for the report. */
const totals = { runs: 0, ops: 0, applied: 0, files: 0, overtaken: 0 };

async function runSequence(ops: readonly Op[]): Promise<void> {
  const run = ++runNo;
  const cluster = await TestCluster.create(['A', 'B', 'C'], { mesh: false });
  const mesh = await meshThroughProxies(cluster);
  const all = cluster.devices as TestDevice[];
  const ledger: Ledger = { written: new Map(), replaced: new Set(), applied: 0, overtaken: 0 };
  const isolated = new Set<TestDevice>();
  try {
    await cluster.startAll();
    for (const [i, op] of ops.entries()) {
      if (await apply(op, i)) ledger.applied++;
      await new Promise((r) => setTimeout(r, 10 + (i % 4) * 15));
    }
    // Heal everything, start every device, release every lock; then quiescence.
    mesh.heal();
    await Promise.all(all.map((d) => (d.running ? undefined : d.start())));
    await cluster.connected(all);
    const locks = await call(apiOf(all[0] as TestDevice), 'GET', '/locks');
    for (const l of (locks.body.locks ?? []) as { path: string }[]) {
      await call(apiOf(all[0] as TestDevice), 'DELETE', `/locks/${l.path}?force=true`);
    }
    const tree = await quiescent(all, `run ${run}: every device holds the same tree`);
    const present = hashesIn(tree);
    const lost = [...ledger.written]
      .filter(([h]) => !ledger.replaced.has(h) && !present.has(h))
      .map(([h, who]) => `${who} (${h.slice(0, 12)})`);
    expect(lost, `contents lost in run ${run}`).toEqual([]);
    totals.runs++;
    totals.ops += ops.length;
    totals.applied += ledger.applied;
    totals.files += Object.keys(tree).length;
    totals.overtaken += ledger.overtaken;
  } catch (err) {
    // Everything needed to understand it, kept beside the temp dirs.
    const keep = join(tmpdir(), `lockstep-convergence-seed${SEED}-run${run}`);
    mkdirSync(keep, { recursive: true });
    for (const d of all) {
      writeFileSync(join(keep, `${d.name}.log`), d.allOutput());
      writeFileSync(
        join(keep, `${d.name}.tree.json`),
        JSON.stringify(await treeOf(d.folder), null, 1),
      );
    }
    writeFileSync(join(keep, 'ops.json'), JSON.stringify(ops, null, 1));
    writeFileSync(join(keep, 'written.json'), JSON.stringify([...ledger.written], null, 1));
    const logs =
      `logs, trees and operations kept in ${keep}\n` +
      all
        .map(
          (d) =>
            `--- ${d.name} (${d.short}) log tail ---\n${d.allOutput().split('\n').slice(-25).join('\n')}`,
        )
        .join('\n');
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
  } finally {
    await cluster.close();
    await mesh.close();
  }

  async function apply(op: Op, i: number): Promise<boolean> {
    if (op.k === 'pause') {
      await new Promise((r) => setTimeout(r, op.ms));
      return true;
    }
    const d = all[op.dev] as TestDevice;
    switch (op.k) {
      case 'write': {
        const abs = join(d.folder, op.path);
        const k = kindAt(abs);
        if (k !== undefined && k !== 'file') return false;
        if (!parents(d.folder, op.path)) return false;
        const saved = saveInPlace(abs, (prev) => {
          const fresh = contentFor(op.path, run, i, op.salt);
          return k === undefined
            ? fresh
            : op.how === 'append'
              ? Buffer.concat([prev, fresh.subarray(0, 64)])
              : op.how === 'truncate'
                ? prev.subarray(0, Math.floor(prev.length / 2))
                : fresh;
        });
        if (saved === undefined) return false;
        if (k === 'file') ledger.replaced.add(sha256(saved.prev));
        // Written into a file a sync had already replaced: not in the folder (see saveInPlace).
        if (saved.overtaken) ledger.overtaken++;
        else ledger.written.set(sha256(saved.next), `${d.name} op ${i} ${op.how} ${op.path}`);
        return true;
      }
      case 'delete': {
        const abs = join(d.folder, op.path);
        if (kindAt(abs) !== 'file') return false;
        try {
          ledger.replaced.add(sha256(readFileSync(abs)));
          unlinkSync(abs);
        } catch {
          return false;
        }
        return true;
      }
      case 'rename': {
        const from = join(d.folder, op.from);
        const to = join(d.folder, op.to);
        if (op.from === op.to || kindAt(from) !== 'file') return false;
        const k = kindAt(to);
        if (k !== undefined && k !== 'file') return false;
        if (!parents(d.folder, op.to)) return false;
        try {
          if (k === 'file') ledger.replaced.add(sha256(readFileSync(to)));
          renameSync(from, to);
        } catch {
          return false;
        }
        return true;
      }
      case 'mkdir': {
        const abs = join(d.folder, op.dir);
        if (kindAt(abs) !== undefined || kindAt(dirname(abs)) !== 'dir') return false;
        try {
          mkdirSync(abs);
        } catch {
          return false;
        }
        return true;
      }
      case 'rmdir':
        try {
          rmdirSync(join(d.folder, op.dir));
        } catch {
          return false; // not empty, or not there
        }
        return true;
      case 'disconnect':
        if (isolated.has(d)) return false;
        isolated.add(d);
        mesh.isolate(d, all, 'cut');
        return true;
      case 'reconnect':
        if (!isolated.delete(d)) return false;
        for (const o of all) if (o !== d && !isolated.has(o)) mesh.link(d, o, 'pass');
        return true;
      case 'stop':
        if (!d.running) return false;
        await d.stop();
        return true;
      case 'start':
        if (d.running) return false;
        await d.start();
        return true;
      case 'restart':
        if (d.running) await d.stop();
        await d.start();
        return true;
      case 'lock':
      case 'unlock': {
        if (!d.running) return false;
        const r =
          op.k === 'lock'
            ? await call(apiOf(d), 'POST', '/locks', { path: op.path })
            : await call(apiOf(d), 'DELETE', `/locks/${op.path}?force=true`);
        // Any clear answer will do (granted, refused, authority unreachable); never a 500.
        expect(r.status, JSON.stringify(r.body)).not.toBe(500);
        return r.status < 300;
      }
    }
  }
}

describe('model-based convergence of three devices', () => {
  it(
    `converges and loses nothing over ${RUNS} random sequences of ${OPS} operations (seed ${SEED})`,
    async () => {
      console.log(
        `convergence: seed ${SEED}, ${RUNS} runs of ${OPS} operations (reproduce: SEED=${SEED} CONVERGENCE_RUNS=${RUNS} CONVERGENCE_OPS=${OPS})`,
      );
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: OPS, maxLength: OPS }), runSequence),
        {
          seed: SEED,
          numRuns: RUNS,
          endOnFailure: process.env.SHRINK === '0',
          interruptAfterTimeLimit: BUDGET_MS,
          markInterruptAsFailure: false,
          verbose: 1,
        },
      );
      console.log(
        `convergence: ${totals.runs} runs, ${totals.ops} operations generated, ${totals.applied} applied (${totals.overtaken} writes into a file a sync had just replaced), ${totals.files} entries at quiescence in total, ${Math.round((Date.now() - started) / 1000)} s`,
      );
      expect(totals.runs).toBe(RUNS);
    },
    BUDGET_MS + 60_000,
  );
});
