// Saves in place racing pulls of the same file, on two real devices: B saves
// c.bin, and moments later (0 to 120 ms, so some land while C is putting B's
// version in place) C appends to its own c.bin. At quiescence every save is
// there (as the file or a conflict copy) unless a later save read and
// replaced it, or it was written into a file a sync had already replaced
// since the save opened it (see saveInPlace in model.ts: such a write goes
// to a file no longer in the folder). The convergence test met that race
// rarely (seed 1194877575); here it comes up within a few hundred saves.
//
// RACING_SAVES (default 250) rounds.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { TestCluster, hashesIn, sha256, type TestDevice } from './cluster.js';
import { quiescent, saveInPlace } from './model.js';

const ROUNDS = Number(process.env.RACING_SAVES ?? 250);

it(`${ROUNDS} saves in place on each of two devices, racing the pulls of each other's saves, lose nothing`, async () => {
  const cluster = await TestCluster.create(['B', 'C']);
  const [b, c] = cluster.devices as [TestDevice, TestDevice];
  const written = new Map<string, string>();
  const replaced = new Set<string>();
  let overtaken = 0;
  const save = (folder: string, who: string, make: (prev: Buffer) => Buffer) => {
    const s = saveInPlace(join(folder, 'c.bin'), make);
    if (s === undefined) throw new Error(`${who}: c.bin could not be opened`);
    replaced.add(sha256(s.prev));
    if (s.overtaken) overtaken++;
    else written.set(sha256(s.next), who);
  };
  try {
    await cluster.startAll();
    await cluster.connected(cluster.devices);
    for (let i = 0; i < ROUNDS; i++) {
      // 1.5 MB, so that reading it (the window before the save writes) takes a while.
      const big = Buffer.alloc(1_500_000 + (i % 7) * 1000, i & 0xff);
      big.write(`B ${i}\n`);
      save(b.folder, `B save ${i}`, () => big);
      await new Promise((r) => setTimeout(r, (i * 13) % 120));
      save(c.folder, `C append ${i}`, (prev) => Buffer.concat([prev, Buffer.from(`C ${i}\n`)]));
      await new Promise((r) => setTimeout(r, 60));
    }
    const tree = await quiescent(cluster.devices, 'after the racing saves');
    const present = hashesIn(tree);
    const lost = [...written]
      .filter(([h]) => !replaced.has(h) && !present.has(h))
      .map(([, w]) => w);
    console.log(
      `racing saves: ${ROUNDS} rounds, ${overtaken} saves written into a file a sync had just replaced, ${Object.keys(tree).length} entries at quiescence`,
    );
    expect(lost, 'saves lost').toEqual([]);
  } catch (err) {
    const tails = cluster.devices
      .map((d) => `--- ${d.name} log tail ---\n${d.allOutput().split('\n').slice(-20).join('\n')}`)
      .join('\n');
    throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
  } finally {
    await cluster.close();
  }
}, 600_000);
