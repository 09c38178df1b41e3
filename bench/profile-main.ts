/**
 * `npm run bench -- --profile`: Lockstep's S1 and S2 (or those BENCH_ONLY
 * names) once each with both devices under `node --cpu-prof`, then each
 * thread's profile summed over the timed phase only (from starting B until
 * B matched): the top places and functions by self time, as Markdown on
 * stdout. The profiles themselves are kept in BENCH_PROFILE_DIR when set
 * (open them in Chrome DevTools), else removed with the scratch space.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profileMarkdown, summarizeProfile, type CpuProfile } from './cpuprofile.js';
import { LockstepRunner } from './lockstep-runner.js';
import type { Side } from './runner.js';
import { attempt, planScenario, syncOptionsFromEnv } from './sync.js';

/** A Lockstep pair under the profiler that notes when B was started (the clock start of S1/S2). */
class ProfiledLockstep extends LockstepRunner {
  startedB: bigint | undefined;
  constructor(dirs: Record<Side, string>) {
    super({
      nodeFlags: {
        A: ['--cpu-prof', `--cpu-prof-dir=${dirs.A}`],
        B: ['--cpu-prof', `--cpu-prof-dir=${dirs.B}`],
      },
    });
  }
  override async start(side?: Side): Promise<void> {
    if (side === 'B') this.startedB = process.hrtime.bigint();
    await super.start(side);
  }
}

/** The thread of a profile file (`CPU.DATE.TIME.PID.TID.SEQ.cpuprofile`): main or worker N. */
export function threadOf(file: string): string {
  const tid = /\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(file)?.[1];
  return tid === undefined || tid === '0' ? 'main thread' : `worker thread ${tid}`;
}

export async function profileMain(): Promise<void> {
  const scratch = fs.mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'lockstep-prof-'));
  const keep = process.env.BENCH_PROFILE_DIR;
  const out = keep ?? join(scratch, 'profiles');
  try {
    const opts = syncOptionsFromEnv(
      scratch,
      () => new LockstepRunner(),
      (l) => console.error(l),
    );
    const ids = opts.scenarios.filter((s) => s === 'S1' || s === 'S2');
    const lines: string[] = [];
    for (const id of ids.length > 0 ? ids : (['S1', 'S2'] as const)) {
      const dirs = { A: join(out, `${id}-A`), B: join(out, `${id}-B`) };
      for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
      const plan = planScenario(opts, id);
      const made: ProfiledLockstep[] = [];
      const run = await attempt(() =>
        plan.once({
          ...opts,
          runner: () => {
            const r = new ProfiledLockstep(dirs);
            made.push(r);
            return r;
          },
        }),
      );
      console.error(`${id} under the profiler: ${run.error ?? plan.show(run)}`);
      const startedB = made[0]?.startedB;
      if (run.error !== undefined || startedB === undefined) continue;
      const from = Number(startedB / 1000n);
      const to = from + run.seconds * 1e6;
      lines.push(
        `### ${id} ${plan.base.title}, ${plan.base.data.description}: ${run.seconds.toFixed(2)} s under the profiler`,
        '',
      );
      for (const side of ['A', 'B'] as const) {
        for (const f of fs.readdirSync(dirs[side]).sort()) {
          const p = JSON.parse(fs.readFileSync(join(dirs[side], f), 'utf8')) as CpuProfile;
          const s = summarizeProfile(p, { from, to });
          if (s.totalMs < 1) continue;
          lines.push(...profileMarkdown(`${id}, device ${side}, ${threadOf(f)}`, s));
        }
      }
    }
    console.log(lines.join('\n'));
    if (keep !== undefined) console.error(`profiles kept in ${keep}`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
