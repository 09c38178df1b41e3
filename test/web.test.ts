// End to end: the web page of two real devices (A and B, peered on
// 127.0.0.1), driven in Debian's headless Chromium: sign-in, the merged
// listing, live changes, locking and unlocking, errors.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type TestDevice } from './cluster.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];
/** Generous: two other test suites may share this machine's two cores. */
const WAIT = { timeout: 20_000 };

// Without Chromium the suite is skipped on a developer's machine; under CI
// (which installs it) it runs and fails.
const runnable = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!runnable) console.warn(`web tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

/** The API URL of a device, from its configuration. */
const apiOf = (d: TestDevice): string => {
  const cfg = JSON.parse(readFileSync(join(d.home, 'config.json'), 'utf8')) as {
    apiListen: string;
  };
  return `http://${cfg.apiListen}`;
};
const tokenOf = (d: TestDevice) => readFileSync(join(d.home, 'token'), 'utf8').trim();

/** Shows the folder root on a page, without reloading it. */
async function atRoot(page: Page): Promise<void> {
  await page.evaluate(() => (location.hash = '#/'));
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByText('Folder').waitFor(WAIT);
}

/** The row of `path` in a page's listing. */
const row = (page: Page, path: string) => page.locator(`tr[data-path="${path}"]`);

describe.runIf(runnable)('the web page in a real browser', () => {
  let cluster: TestCluster;
  let a: TestDevice;
  let b: TestDevice;
  let profile: string;
  let browser: BrowserContext;
  let pageA: Page;
  let pageB: Page;
  let conflictCopy: string;
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    lockstepAsync(args, {
      XDG_CACHE_HOME: join(cluster.tmp, 'cache'),
      LOCKSTEP_API: '',
      LOCKSTEP_TOKEN: '',
      ...env,
    });
  const listing = async (d: TestDevice) => {
    const r = await fetch(`${apiOf(d)}/api/v1/files`, {
      headers: { authorization: `Bearer ${tokenOf(d)}` },
    });
    return (await r.json()) as { entries: { path: string; devices: unknown[] }[] };
  };

  beforeAll(async () => {
    cluster = await TestCluster.create(['A', 'B']);
    a = cluster.get('A');
    b = cluster.get('B');
    writeFileSync(join(a.folder, 'report.pdf'), Buffer.alloc(2_500_000, 1));
    writeFileSync(join(a.folder, 'notes-A.txt'), 'notes kept on A\n');
    mkdirSync(join(a.folder, 'docs'));
    writeFileSync(join(a.folder, 'docs', 'plan.md'), '# plan\n');
    writeFileSync(join(b.folder, 'from-b.bin'), Buffer.alloc(50_000, 7));
    // A conflict copy, as a device keeps the losing version of a conflict.
    conflictCopy = `report.conflict-20260115-101500-${b.short}.pdf`;
    writeFileSync(join(b.folder, conflictCopy), Buffer.alloc(2_400_000, 2));
    await cluster.startAll();
    await waitUntil(
      'both devices to hold all five entries',
      async () => {
        const [la, lb] = await Promise.all([listing(a), listing(b)]);
        return [la, lb].every(
          (l) => l.entries.length === 5 && l.entries.every((e) => e.devices.length === 2),
        );
      },
      30_000,
      100,
    );
    profile = await mkdtemp(join(tmpdir(), 'lockstep-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 800 },
      colorScheme: 'light',
    });
    pageA = await browser.newPage();
    pageB = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
    await cluster?.close();
  });

  it('without a token the page shows the sign-in and no data', async () => {
    const page = await browser.newPage();
    const dataReplies: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/api/') && r.status() < 400) dataReplies.push(r.url());
    });
    await page.goto(`${apiOf(a)}/`);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to Lockstep' }).waitFor(WAIT);
    await expect(page.getByLabel('Token').isVisible()).resolves.toBe(true);
    expect(await page.locator('table').count()).toBe(0);
    const text = await page.locator('body').innerText();
    expect(text).not.toMatch(/report|notes-A|from-b|plan\.md/);
    expect(dataReplies).toEqual([]);
    // A wrong token is refused, and still nothing is shown.
    await page.getByLabel('Token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor(WAIT);
    expect(await page.locator('table').count()).toBe(0);
    expect(dataReplies).toEqual([]);
    // The API says nothing without a token either; the page's files hold no data.
    const api = await fetch(`${apiOf(a)}/api/v1/files`);
    expect(api.status).toBe(401);
    const html = await (await fetch(`${apiOf(a)}/`)).text();
    expect(html).not.toMatch(/report|notes-A/);
    await page.close();
  });

  it('lockstep open prints a one-time link that signs the page in once', async () => {
    const r = await run(['open', '--home', a.home, '--print']);
    expect(r.code, r.stderr).toBe(0);
    const url = r.stdout.trim().split('\n').at(-1) as string;
    expect(url).toMatch(new RegExp(`^${apiOf(a).replaceAll('.', '\\.')}/#signin=[\\w-]{43}$`));
    const json = await run(['open', '--home', a.home, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      user: { name: `admin.${a.id.slice(0, 7)}`, admin: true },
    });

    await pageA.goto(url);
    await pageA.getByText('Signed in as').waitFor(WAIT);
    // The code left the address bar, and it does not work a second time.
    expect(new URL(pageA.url()).hash).toBe('#/');
    const code = url.split('#signin=')[1] as string;
    const again = await fetch(`${apiOf(a)}/api/v1/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    expect(again.status).toBe(401);
  });

  it('shows the merged listing of both devices: sizes, devices, conflict copies, directories', async () => {
    await row(pageA, 'from-b.bin').waitFor(WAIT);
    const names = await pageA
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')));
    expect(names).toEqual(['docs', 'from-b.bin', 'notes-A.txt', conflictCopy, 'report.pdf']);
    await expect(row(pageA, 'report.pdf').innerText()).resolves.toMatch(/2\.4 MiB/);
    await expect(row(pageA, 'from-b.bin').locator('td.on').innerText()).resolves.toBe('A B');
    await expect(row(pageA, 'from-b.bin').locator('td.state').innerText()).resolves.toBe('in sync');
    await expect(row(pageA, conflictCopy).innerText()).resolves.toMatch(/conflict copy/);
    await expect(row(pageA, 'report.pdf').innerText()).resolves.not.toMatch(/conflict copy/);
    // The modified time is local, as `lockstep ls` prints it.
    await expect(row(pageA, 'notes-A.txt').locator('td.modified').innerText()).resolves.toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
    );

    // Sorting by a column, both ways (directories stay first).
    await pageA.getByRole('button', { name: /^Size/ }).click();
    const bySize = () =>
      pageA
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')).slice(1));
    expect(await bySize()).toEqual(['notes-A.txt', 'from-b.bin', conflictCopy, 'report.pdf']);
    await pageA.getByRole('button', { name: /^Size/ }).click();
    expect(await bySize()).toEqual(['report.pdf', conflictCopy, 'from-b.bin', 'notes-A.txt']);
    expect(await pageA.locator('th[aria-sort="descending"]').textContent()).toMatch(/Size/);
    await pageA.getByRole('button', { name: /^Name/ }).click();

    // The filter box.
    await pageA.getByLabel('Filter').fill('NOTES');
    await expect(pageA.locator('tbody tr').count()).resolves.toBe(1);
    await pageA.getByLabel('Filter').fill('');

    // Into a directory and back with the breadcrumbs.
    await pageA.getByRole('link', { name: 'docs/' }).click();
    await row(pageA, 'docs/plan.md').waitFor(WAIT);
    const crumbs = pageA.getByRole('navigation', { name: 'Breadcrumb' });
    await expect(crumbs.getByRole('listitem').allInnerTexts()).resolves.toEqual(['Folder', 'docs']);
    await expect(crumbs.locator('[aria-current="page"]').innerText()).resolves.toBe('docs');
    await crumbs.getByRole('link', { name: 'Folder' }).click();
    await row(pageA, 'report.pdf').waitFor(WAIT);
  });

  it('a file created on B appears on A without a reload, highlighted, and in the activity feed', async () => {
    await atRoot(pageA);
    await row(pageA, 'report.pdf').waitFor(WAIT);
    await pageA.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const t0 = Date.now();
    writeFileSync(join(b.folder, 'new-on-b.txt'), 'made on B\n');
    await row(pageA, 'new-on-b.txt').waitFor(WAIT);
    const ms = Date.now() - t0;
    console.log(`new-on-b.txt on A's page ${ms} ms after it was written on B`);
    await expect(row(pageA, 'new-on-b.txt').getAttribute('class')).resolves.toMatch(/changed/);
    // The same page: nothing reloaded it.
    expect(await pageA.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    await pageA
      .getByRole('log')
      .getByText(/new-on-b\.txt to A/)
      .waitFor(WAIT);
  });

  it('locking from the page (by keyboard) shows in `lockstep locks` and on B; unlocking clears both', async () => {
    // B's page, signed in with B's token.
    await pageB.goto(`${apiOf(b)}/`);
    await pageB.getByLabel('Token').fill(tokenOf(b));
    await pageB.getByLabel('Token').press('Enter');
    await row(pageB, 'report.pdf').waitFor(WAIT);
    await atRoot(pageA);

    await pageA.getByRole('button', { name: 'Lock report.pdf', exact: true }).focus();
    await pageA.keyboard.press('Enter');
    const dialog = pageA.getByRole('dialog', { name: 'Lock report.pdf' });
    await dialog.waitFor(WAIT);
    await pageA.keyboard.type('final edits'); // the reason field has the focus
    await pageA.keyboard.press('Tab');
    await pageA.keyboard.type('2h');
    await pageA.keyboard.press('Enter');
    await pageA
      .getByRole('status')
      .getByText(/locked report\.pdf for admin\.[A-Z2-7]{7} \(expires in 2h/)
      .waitFor(WAIT);
    // The listing is read again after the notice shows.
    await row(pageA, 'report.pdf')
      .locator('td.lock')
      .getByText(/^admin\.[A-Z2-7]{7}@A$/)
      .waitFor(WAIT);
    await expect(row(pageA, 'report.pdf').locator('td.lock').innerText()).resolves.toMatch(
      /admin\.[A-Z2-7]{7}@A[\s\S]*final edits/,
    );

    const locks = await run(['locks', '--home', a.home, '--json']);
    expect(locks.code, locks.stderr).toBe(0);
    expect(JSON.parse(locks.stdout)).toMatchObject({
      locks: [
        { path: 'report.pdf', owner: expect.stringMatching(/^admin\./), reason: 'final edits' },
      ],
    });
    await row(pageB, 'report.pdf')
      .locator('td.lock')
      .getByText(/^admin\.[A-Z2-7]{7}@A$/)
      .waitFor(WAIT);
    await pageA.getByRole('button', { name: 'Unlock report.pdf', exact: true }).click();
    await pageA
      .getByRole('status')
      .getByText(/unlocked report\.pdf/)
      .waitFor(WAIT);
    const none = await run(['locks', '--home', a.home]);
    expect(none.stdout.trim()).toBe('No locks.');
    await pageB.getByRole('button', { name: 'Lock report.pdf', exact: true }).waitFor(WAIT);
    await expect(row(pageB, 'report.pdf').locator('td.lock').innerText()).resolves.toBe('');
  });

  it("locks a directory from its row: files below show the directory's lock, unlocked on its row", async () => {
    await atRoot(pageA);
    await pageA.getByRole('button', { name: 'Lock docs', exact: true }).click();
    const dialog = pageA.getByRole('dialog', { name: 'Lock docs' });
    await dialog.getByText(/change anything in it/).waitFor(WAIT);
    await dialog.getByRole('button', { name: 'Lock', exact: true }).click();
    await pageA
      .getByRole('status')
      .getByText(/locked docs\/ \(directory\) for admin/)
      .waitFor(WAIT);
    const locks = await run(['locks', '--home', a.home]);
    expect(locks.stdout).toMatch(/^docs\/ \(directory\) +admin\.[A-Z2-7]{7}@A/m);
    await pageA.getByRole('link', { name: 'docs/' }).click();
    const plan = row(pageA, 'docs/plan.md');
    await plan
      .locator('td.lock')
      .getByText(/^admin\.[A-Z2-7]{7}@A \(docs\/\)$/)
      .waitFor(WAIT);
    // Unlocked on the directory's row, not on a file below it.
    await expect(plan.getByRole('button').count()).resolves.toBe(0);
    await atRoot(pageA);
    await pageA.getByRole('button', { name: 'Unlock docs', exact: true }).click();
    await pageA
      .getByRole('status')
      .getByText(/unlocked docs\//)
      .waitFor(WAIT);
    expect((await run(['locks', '--home', a.home])).stdout.trim()).toBe('No locks.');
  });

  it('a pasted token is kept only as a web session, in the tab’s session storage', async () => {
    const kept = await pageB.evaluate(() => ({
      session: sessionStorage.getItem('lockstep.session'),
      local: Object.values(localStorage),
      all: Object.values(sessionStorage),
    }));
    expect(kept.session).toMatch(/^[\w-]{43}$/);
    expect(kept.session).not.toBe(tokenOf(b));
    expect(kept.local).toEqual([]);
    expect(kept.all).not.toContain(tokenOf(b));
    const who = await fetch(`${apiOf(b)}/api/v1/whoami`, {
      headers: { authorization: `Bearer ${kept.session}` },
    });
    expect(await who.json()).toEqual({ name: `admin.${b.id.slice(0, 7)}`, admin: true });
  });

  it('while the device does not answer the page keeps its session and retries; a reload keeps it', async () => {
    const page = await browser.newPage();
    await page.goto(`${apiOf(b)}/`);
    // A token kept by an earlier version of the page (no expiry) is dropped.
    await page.evaluate((t) => localStorage.setItem('lockstep.token', t), tokenOf(b));
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to Lockstep' }).waitFor(WAIT);
    expect(await page.evaluate(() => localStorage.getItem('lockstep.token'))).toBeNull();
    await page.getByLabel('Token').fill(tokenOf(b));
    await page.getByLabel('Token').press('Enter');
    await page.getByText('Signed in as').waitFor(WAIT);
    const session = await page.evaluate(() => sessionStorage.getItem('lockstep.session'));

    await page.route('**/api/v1/whoami', (r) => r.abort('connectionrefused'));
    await page.reload();
    await page.getByText('Cannot reach the device, retrying').waitFor(WAIT);
    expect(await page.evaluate(() => sessionStorage.getItem('lockstep.session'))).toBe(session);
    await page.unroute('**/api/v1/whoami');
    await page.getByText('Signed in as').waitFor(WAIT);
    expect(await page.evaluate(() => sessionStorage.getItem('lockstep.session'))).toBe(session);
    await page.close();
  });

  it('sign-out waits for the device and says when it failed; once done the session is gone', async () => {
    const page = await browser.newPage();
    await page.goto(`${apiOf(b)}/`);
    await page.getByLabel('Token').fill(tokenOf(b));
    await page.getByLabel('Token').press('Enter');
    await page.getByText('Signed in as').waitFor(WAIT);
    const session = (await page.evaluate(() => sessionStorage.getItem('lockstep.session'))) ?? '';
    const whoami = () =>
      fetch(`${apiOf(b)}/api/v1/whoami`, { headers: { authorization: `Bearer ${session}` } });

    await page.route('**/api/v1/signout', (r) => r.abort('connectionrefused'));
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'Could not sign out' }).waitFor(WAIT);
    await expect(page.getByText('Signed in as').isVisible()).resolves.toBe(true);
    expect((await whoami()).status).toBe(200);

    await page.unroute('**/api/v1/signout');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign in to Lockstep' }).waitFor(WAIT);
    expect(await page.evaluate(() => sessionStorage.getItem('lockstep.session'))).toBeNull();
    expect((await whoami()).status).toBe(401);
    await page.close();
  });

  it('locking a file someone else locked meanwhile shows an error naming the holder', async () => {
    const added = await run(['user', 'add', '--home', a.home, 'alice']);
    expect(added.code, added.stderr).toBe(0);
    const alice = added.stdout.trim().split('\n').at(-1) as string;
    await atRoot(pageA);

    await pageA.getByRole('button', { name: 'Lock from-b.bin', exact: true }).click();
    const dialog = pageA.getByRole('dialog', { name: 'Lock from-b.bin' });
    await dialog.waitFor(WAIT);
    // While the form is open, alice takes the lock.
    const taken = await run(['lock', 'from-b.bin', '--api', apiOf(a), '--token', alice]);
    expect(taken.code, taken.stderr).toBe(0);
    await dialog.getByRole('button', { name: 'Lock', exact: true }).click();
    const alert = pageA.getByRole('alert').filter({ hasText: 'Already locked' });
    await alert.waitFor(WAIT);
    await expect(alert.innerText()).resolves.toMatch(/from-b\.bin is already locked by alice@A/);
    await expect(row(pageA, 'from-b.bin').locator('td.lock').innerText()).resolves.toMatch(
      /alice@A/,
    );
    // Not the administrator's lock: only a forced unlock is offered.
    await pageA.getByRole('button', { name: 'Force unlock from-b.bin', exact: true }).waitFor(WAIT);
    expect(
      await pageA.getByRole('button', { name: 'Unlock from-b.bin', exact: true }).count(),
    ).toBe(0);
  });

  it('a screenshot of the page with a lock and a conflict copy', async () => {
    await pageA.getByRole('button', { name: 'Dismiss message', exact: true }).click();
    await pageA.getByRole('button', { name: 'Lock report.pdf', exact: true }).click();
    await pageA.getByLabel('Reason (optional)').fill('final edits');
    await pageA.getByRole('dialog').getByRole('button', { name: 'Lock', exact: true }).click();
    await row(pageA, 'report.pdf')
      .locator('td.lock')
      .getByText(/^admin\.[A-Z2-7]{7}@A$/)
      .waitFor(WAIT);
    await pageA.getByRole('button', { name: 'Dismiss message', exact: true }).click();
    // Let the row highlights fade.
    await new Promise((r) => setTimeout(r, 3000));
    const out = process.env.LOCKSTEP_SCREENSHOT ?? join(cluster.tmp, 'web.png');
    mkdirSync(dirname(out), { recursive: true });
    await pageA.screenshot({ path: out });
    expect(readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
    // The phone and dark variants render too (kept beside it only when asked).
    await pageA.setViewportSize({ width: 390, height: 800 });
    await pageA.emulateMedia({ colorScheme: 'dark' });
    const extra = process.env.LOCKSTEP_SCREENSHOT === undefined ? cluster.tmp : tmpdir();
    await pageA.screenshot({ path: join(extra, 'lockstep-web-phone-dark.png'), fullPage: true });
    await pageA.setViewportSize({ width: 1280, height: 800 });
    await pageA.emulateMedia({ colorScheme: 'light' });
  });

  it('with the lock authority stopped, locking says so and the devices panel shows it', async () => {
    // The authority is the device with the smaller ID; use the other one's page.
    const [authority, other, page] = a.id < b.id ? [a, b, pageB] : [b, a, pageA];
    await authority.stop();
    const panel = page.locator(`[data-device="${authority.name}"]`);
    await panel.getByText('not connected').waitFor(WAIT);
    await page.getByRole('button', { name: 'Lock notes-A.txt', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Lock', exact: true }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'Locks are unavailable' });
    await alert.waitFor(WAIT);
    await expect(alert.innerText()).resolves.toMatch(
      new RegExp(`lock authority ${authority.name} cannot be reached`),
    );
    expect(other.running).toBe(true);
  });
});
