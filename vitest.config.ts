import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"

// The files that take longest, longest first. vitest orders by the durations it cached from the
// last run, and a clean clone has none (it then goes by file size): started late, one of these
// would run alone at the end while the other forks sit idle.
const SLOW_FIRST = [
  "test/cli/exec-cli.test.ts",
  "test/adapters/tfjs-adapter.test.ts",
  "test/bench/workers.test.ts",
  "test/ui/ui-browser.test.ts",
  "test/cli/cli-signals.test.ts",
  "test/cli/cli-store-access.test.ts",
  "test/store/store-postgres.test.ts",
  "test/adapters/python-sdk.test.ts",
  "test/cli/cli-log-files.test.ts",
  "test/cli/cli-bench.test.ts",
  "test/cli/cli-runs.test.ts",
  "test/run/engine-tfjs.test.ts",
  "test/store/store-sqlite.test.ts",
  "test/store/store-sqlite-access.test.ts",
  "test/cli/cli-report.test.ts",
  "test/queue/queue-postgres.test.ts",
]

class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = SLOW_FIRST.findIndex((s) => f.moduleId.endsWith(s))
      return i < 0 ? SLOW_FIRST.length : i
    }
    // Array sort is stable: the rest keep vitest's own order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Acceptance-sized runs have their own config (vitest.acceptance.config.ts).
    exclude: ["test/acceptance/**", "**/node_modules/**"],
    // One throwaway PostgreSQL server for the run, for the PostgreSQL store tests.
    globalSetup: ["test/support/pg-global-setup.ts"],
    // A timeout ends a hang; it does not judge speed. Most files start the binary, trainers or
    // PostgreSQL, which on a loaded 2-core machine (load averages of 15 to 27 measured) take 10
    // to 20 times as long as on a quiet one: 180 s is some 20 times what the slowest test without
    // a timeout of its own takes quietly. Tests that run many steps through a child process size
    // theirs from the work (test/support/timeouts.ts).
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // tfjs-core's gradient rules are ~400 ES modules: vitest would transform them one by one in
    // every test process (~4.5 s each time); Node loads them natively, through the module hook in
    // adapters/tfjs/gradients.ts, in ~0.4 s, as the CLI does.
    server: { deps: { external: [/@tensorflow\/tfjs-core\/dist\//] } },
    pool: "forks",
    // Most of the slow tests wait on a child process (the binary, a trainer, PostgreSQL) rather
    // than compute: three forks on two cores keep both busy (vitest's default would be one).
    // Each fork runs many files (isolate: false): a fresh process per file spent about 120 of the
    // suite's 310 CPU-seconds starting vitest and loading effect, tfjs and the CLI again. So test
    // files must leave process state (env, cwd, backends) as they found it. minForks = maxForks:
    // with fewer, tinypool ends "idle" forks that vitest still reuses, failing the run with
    // "Terminating worker thread" and leaving the fork spinning.
    isolate: false,
    sequence: { sequencer: SlowFirst },
    poolOptions: { forks: { maxForks: 3, minForks: 3 } },
  },
})
