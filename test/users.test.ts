// One identity per person across the cluster: real devices, the real client API and CLI.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, converged, type TestDevice } from './cluster.js';
import { apiOf, call, type Api } from './api-client.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);
const as = (d: TestDevice, token: string): Api => ({ url: apiOf(d).url, token });
const whoami = async (api: Api) => (await call(api, 'GET', '/whoami')).status;

describe('users across devices', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('a user made on one device is known on every device, kept while the authority is away, and removed everywhere', async () => {
    cluster = await TestCluster.create(['A', 'B', 'C']);
    const devices = cluster.devices as TestDevice[];
    // The authority is the smallest ID (recorded at the first lock): call it C,
    // the others A and B, so that a lock taken on A can be unlocked through C.
    const [c, a, b] = [...devices].sort((x, y) => (x.id < y.id ? -1 : 1)) as [
      TestDevice,
      TestDevice,
      TestDevice,
    ];
    writeFileSync(join(a.folder, 'f.txt'), 'x\n');
    await cluster.startAll();
    await cluster.connected(devices);
    await converged(devices, 'f.txt everywhere', (t) => t['f.txt'] !== undefined);

    // alice is made on B, which is not the authority.
    const add = await cli(b, 'user', 'add', 'alice');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/known on every device/);
    const token = add.stdout.trim().split('\n').at(-1) as string;
    for (const d of [a, b, c]) {
      await waitUntil(`alice known on ${d.name}`, async () => (await whoami(as(d, token))) === 200);
    }
    expect((await call(as(a, token), 'GET', '/whoami')).body).toEqual({
      name: 'alice',
      admin: false,
    });
    // The name is the cluster's now: made again on another device, it is refused.
    const again = await cli(a, 'user', 'add', 'alice');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists in the cluster/);

    const list = await cli(c, 'user', 'list', '--json');
    const users = (JSON.parse(list.stdout) as { users: { name: string; admin: boolean }[] }).users;
    expect(users.find((u) => u.name === 'alice')).toMatchObject({ admin: false });
    // Each device's administrator is its own user, named after its short ID.
    for (const d of [a, b, c]) {
      expect(users.find((u) => u.name === `admin.${d.id.slice(0, 7)}`)).toMatchObject({
        admin: true,
      });
    }
    const table = await cli(c, 'user', 'list');
    expect(table.stdout).toMatch(/^NAME +ADMIN +CREATED$/m);
    expect(table.stdout).toMatch(/^alice +no +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/m);

    // One person: alice locks on A and unlocks through C.
    const locked = await call(as(a, token), 'POST', '/locks', { path: 'f.txt' });
    expect(locked.status).toBe(201);
    expect(locked.body.owner).toBe('alice');
    const unlocked = await call(as(c, token), 'DELETE', '/locks/f.txt');
    expect(unlocked.status, JSON.stringify(unlocked.body)).toBe(200);

    // A's administrator and C's are different owners: C's needs --force.
    expect((await cli(a, 'lock', 'f.txt')).code).toBe(0);
    const notYours = await cli(c, 'unlock', 'f.txt');
    expect(notYours.code).toBe(1);
    const [adminA, adminC] = [a, c].map((d) => `admin\\.${d.id.slice(0, 7)}`);
    expect(notYours.stderr).toMatch(new RegExp(`locked by ${adminA}, not ${adminC};`));
    const forced = await cli(c, 'unlock', 'f.txt', '--force');
    expect(forced.code, forced.stderr).toBe(0);

    // The authority stopped: A restarts and still knows alice from its copy;
    // adding a user fails, saying why.
    await c.stop();
    await a.stop();
    await a.start();
    expect(await whoami(as(a, token))).toBe(200);
    const unreachable = await cli(b, 'user', 'add', 'carol');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/keeps the cluster's users, cannot be reached/);

    // Removed on C: her token stops working on every device.
    await c.start();
    await cluster.connected(devices);
    const removed = await cli(c, 'user', 'remove', 'alice');
    expect(removed.code, removed.stderr).toBe(0);
    for (const d of [a, b, c]) {
      await waitUntil(`alice gone on ${d.name}`, async () => (await whoami(as(d, token))) === 401);
    }
    // A device's administrator stays while the device is in the cluster.
    const adminOfA = await cli(c, 'user', 'remove', `admin.${a.id.slice(0, 7)}`);
    expect(adminOfA.code).toBe(2);
    expect(adminOfA.stderr).toMatch(/administrator of a device of the cluster/);
    const gone = await cli(b, 'user', 'remove', 'alice', '--json');
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  }, 60_000);
});
