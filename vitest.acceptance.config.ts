import { defineConfig } from "vitest/config"

// The acceptance runs: the issues' done-when commands at their stated sizes (a 450-step PyTorch
// run, the RSS bounds on an 18 MB log and a 200,000-step run). Minutes of CPU, so they are kept out
// of `npm test`'s edit loop; `npm run test:acceptance` and `.ci/run` run them.
export default defineConfig({
  test: {
    include: ["test/acceptance/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
})
