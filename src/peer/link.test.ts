// The link's redial backoff runs on its clock: a peer that cannot be reached
// is dialed again after 100 ms, then 200 ms, doubling, and never before.
import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../base/clock.js';
import { createIdentity } from '../identity/identity.js';
import { makeFixture, memoryLog, PEER, type Fixture } from '../testing/folder.js';
import { PeerLink } from './link.js';

/** A port on 127.0.0.1 where nothing listens (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function until(what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('PeerLink redial backoff', () => {
  let fx: Fixture;
  let link: PeerLink | undefined;
  beforeEach(() => {
    fx = makeFixture();
  });
  afterEach(() => {
    link?.close();
    fx.close();
  });

  it('dials an unreachable peer again after 100 ms, then 200 ms, on its clock and not before', async () => {
    const clock = new ManualClock(Date.now());
    const log = memoryLog();
    const address = `127.0.0.1:${await closedPort()}`;
    link = new PeerLink({ id: PEER, address }, await createIdentity(), fx.store, log, clock);
    const failures = () => log.lines.filter((l) => l.includes('lost')).length;
    link.start();
    await until(() => failures() === 1 && clock.pending === 1);
    expect(link.connected).toBe(false);
    expect(link.lastError).toMatch(/ECONNREFUSED/);
    clock.advance(99);
    await new Promise((r) => setTimeout(r, 50));
    expect(failures()).toBe(1);
    clock.advance(1);
    await until(() => failures() === 2 && clock.pending === 1);
    clock.advance(199);
    await new Promise((r) => setTimeout(r, 50));
    expect(failures()).toBe(2);
    clock.advance(1);
    await until(() => failures() === 3);
    link.close();
    expect(clock.pending).toBe(0);
  });
});
