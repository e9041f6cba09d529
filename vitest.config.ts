import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Acceptance-sized runs have their own config (vitest.acceptance.config.ts).
    exclude: ["test/acceptance/**", "**/node_modules/**"],
    // One throwaway PostgreSQL server for the run, for the PostgreSQL store tests.
    globalSetup: ["test/support/pg-global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Most of the slow tests wait on a child process (the binary, a trainer, PostgreSQL) rather
    // than compute: three forks on two cores keep both busy (vitest's default would be one).
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
  },
})
