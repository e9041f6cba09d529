/**
 * A study through the sweep queue of a PostgreSQL store: two workers share its configurations
 * (`study --worker`), then `study --from-store` reports the runs they finished, with the same
 * Pareto set a local run gives. And a seconds budget: runs stop at the step whose step time
 * reaches it, recorded as interrupted; workers refuse it.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { createDatabase, postgresSkipReason, testPostgresUrl } from "../support/postgres.ts"
import { timeoutFor } from "../support/timeouts.ts"

const server = testPostgresUrl()
const dir = tempDir("interleave-study-workers-")
writeJson(dir, "base.json", {
  name: "base",
  phases: [{ name: "joint", steps: 10, ratio: { visual: 4, text: 1 } }],
  batch: { visual: { size: 8 }, text: { size: 8 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
})
const study = (name: string, extra: Record<string, unknown>) =>
  writeJson(dir, `${name}.json`, {
    name,
    base: "base.json",
    target: { adapter: "sim", model: "trex2-tiny" },
    ratios: ["visual-only", "4:1", "1:1", "text-only"],
    evalEvery: 50,
    ...extra,
  })

const paretoOf = (out: string) =>
  JSON.parse(readFileSync(join(out, "results.json"), "utf8"))
    .settings.filter((s: { pareto: boolean }) => s.pareto)
    .map((s: { setting: string }) => s.setting)

describe.skipIf(server === undefined)("study workers on PostgreSQL", () => {
  let url = ""
  beforeAll(async () => {
    url = await createDatabase(server!, "study")
  })
  it(
    "two workers run the study; --from-store reports it as a local run would",
    async () => {
      const file = study("shared", { budget: { steps: 200 }, seeds: [1, 2] })
      const early = await runCli(["study", file, "--store", url, "--from-store", "--out", join(dir, "none")])
      expect(early.code).toBe(2)
      expect(early.stderr).toContain("holds no study")
      const [a, b] = await Promise.all([
        runCli(["study", file, "--store", url, "--worker"]),
        runCli(["study", file, "--store", url, "--worker"]),
      ])
      expect(a.code, a.stderr).toBe(0)
      expect(b.code, b.stderr).toBe(0)
      const out = join(dir, "from-store")
      const r = await runCli(["study", file, "--store", url, "--from-store", "--out", out])
      expect(r.code, r.stderr).toBe(0)
      const runs = JSON.parse(readFileSync(join(out, "results.json"), "utf8")).runs
      expect(runs).toHaveLength(8)
      const local = join(dir, "local")
      const l = await runCli(["study", file, "--store", join(dir, "local.db"), "--out", local])
      expect(l.code, l.stderr).toBe(0)
      expect(paretoOf(out)).toEqual(paretoOf(local))
      expect(paretoOf(out).length).toBeGreaterThan(0)
    },
    timeoutFor({ starts: 4, simSteps: 8 * 200 * 4, quietMs: 5000 }),
  )
})
if (server === undefined)
  describe(`study workers: SKIPPED (${postgresSkipReason()})`, () => {
    it.skip("needs a PostgreSQL server", () => {})
  })

describe("study with a seconds budget", () => {
  it(
    "stops each run at the step whose cumulative step time reaches the budget",
    async () => {
      const file = study("seconds", { budget: { seconds: 2, maxSteps: 5000 } })
      const out = join(dir, "seconds")
      const r = await runCli(["study", file, "--store", join(dir, "seconds.db"), "--out", out])
      expect(r.code, r.stderr).toBe(0)
      const runs = JSON.parse(readFileSync(join(out, "results.json"), "utf8")).runs as Array<{
        status: string
        stopped: string
        stepSeconds: number
        steps: number
        evals: Array<{ seconds: number }>
      }>
      for (const run of runs) {
        expect(run.status).toBe("interrupted")
        expect(run.stopped).toContain("study time budget reached: 2 s of step time")
        expect(run.stepSeconds).toBeGreaterThanOrEqual(2)
        // One step less would have stayed under the budget: each step is far shorter than 2 s.
        expect(run.steps).toBeLessThan(5000)
        expect(run.evals.length).toBeGreaterThan(0)
      }
      const w = await runCli(["study", file, "--store", join(dir, "w.db"), "--worker"])
      expect(w.code).toBe(2)
      expect(w.stderr).toContain("seconds budget runs only locally")
    },
    timeoutFor({ starts: 2, simSteps: 4 * 5000, quietMs: 3000 }),
  )
})
