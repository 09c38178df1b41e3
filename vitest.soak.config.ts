// The soak run (`npm run soak`): the fault and fuzz tests of the CI run made
// long. Each count can be set from the environment (see docs/reliability.md);
// SEED=n reproduces a run. Files run one after another, so that the crash and
// convergence runs do not compete for the machine.
import { defineConfig } from 'vitest/config';

const env = (name: string, soak: string) => process.env[name] ?? soak;

export default defineConfig({
  test: {
    include: [
      'test/crash.test.ts',
      'test/convergence.test.ts',
      'test/jepsen.test.ts',
      'src/peer/wire.fuzz.test.ts',
      'src/api/server.fuzz.test.ts',
      'src/confined/confined.property.test.ts',
    ],
    env: {
      CRASH_CYCLES: env('CRASH_CYCLES', '60'),
      CONVERGENCE_RUNS: env('CONVERGENCE_RUNS', '12'),
      CONVERGENCE_OPS: env('CONVERGENCE_OPS', '80'),
      FUZZ_RUNS: env('FUZZ_RUNS', '50000'),
      CONFINED_RUNS: env('CONFINED_RUNS', '5000'),
      JEPSEN_ATTEMPTS: env('JEPSEN_ATTEMPTS', '10000'),
    },
    testTimeout: 6 * 3600_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
