// `lockstep service`: the systemd unit it prints runs this device confined
// (a dedicated user, a read-only system but for the home and the folder, no
// new privileges), and systemd itself reads it without a complaint.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockstepAsync } from './helpers.js';

describe('lockstep service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-service-'));
  const home = join(dir, 'home with space');
  const folder = join(dir, 'shared%files');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a unit with the hardening of docs/security.md that systemd-analyze verifies cleanly', async () => {
    const init = await lockstepAsync(['init', '--home', home, '--folder', folder, '--name', 'A']);
    expect(init.code, init.stderr).toBe(0);
    const r = await lockstepAsync(['service', '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    const unit = r.stdout;
    for (const line of [
      'User=lockstep',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'LimitNOFILE=65536',
      'UMask=0077',
      `ReadWritePaths="${home}" "${folder.replace('%', '%%')}"`,
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
    expect(unit).toMatch(/^ExecStart="[^"]+" "[^"]+\/bin\/lockstep\.js" serve --home "[^"]+"$/m);
    const file = join(dir, 'lockstep-A.service');
    writeFileSync(file, unit);
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(verify.error, 'systemd-analyze is needed (Debian package systemd)').toBeUndefined();
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });

  it('runs as root only when asked, saying so; refuses a bad user name and a missing home', async () => {
    const root = await lockstepAsync(['service', '--home', home, '--user', 'root']);
    expect(root.code).toBe(0);
    expect(root.stdout).toMatch(/^User=root$/m);
    expect(root.stdout).toMatch(/runs the device as root/);
    const bad = await lockstepAsync(['service', '--home', home, '--user', 'no body']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Invalid user name/);
    const missing = await lockstepAsync(['service', '--home', join(dir, 'nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/lockstep init/);
  });
});
