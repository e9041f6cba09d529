/**
 * The CLI around sweep workers, without a server: how `--store` is read, `bench report X` reaching
 * the subcommand while `bench sweep.json` reaches the sweep, flags that only apply to --worker,
 * passwords kept out of messages, and node-postgres left unloaded by SQLite-only commands.
 */
import { readFileSync, rmSync } from "node:fs"
import { dirname, join, normalize } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { storeLocation } from "../../cli/store.ts"
import { ROOT, runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-workers-cli-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sweep = () =>
  writeJson(dir, "sweep.json", {
    name: "cli-test",
    base: join(ROOT, "scenarios", "trex2-joint-8to1.json"),
    ratios: ["8:1"],
    targets: [{ adapter: "sim" }],
    warmupSteps: 0,
    measuredSteps: 10,
    microIterations: 0,
  })

describe("--store", () => {
  it("reads a postgres:// or postgresql:// URL (its ?schema= is ours, its password never shown), else a SQLite file", () => {
    expect(storeLocation("postgres://bench:s3cret@db.lan:5433/runs?schema=team_a&sslmode=require")).toEqual({
      kind: "postgres",
      url: "postgres://bench:s3cret@db.lan:5433/runs?sslmode=require",
      schema: "team_a",
      shown: "postgres://bench@db.lan:5433/runs?schema=team_a&sslmode=require",
    })
    expect(storeLocation("postgresql://u@h/d")).toMatchObject({ kind: "postgres", schema: undefined })
    expect(storeLocation("POSTGRES://u@h/d").kind).toBe("postgres")
    expect(storeLocation("runs/postgres.db")).toEqual({
      kind: "sqlite",
      file: "runs/postgres.db",
      shown: "runs/postgres.db",
    })
  })

  it("names a PostgreSQL server it cannot reach without the password", async () => {
    const r = await cliInProcess(["runs", "--store", "postgres://bench:hunter2@127.0.0.1:1/none"])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain("postgres://bench@127.0.0.1:1/none")
    expect(r.stderr).not.toContain("hunter2")
  })
})

describe("bench and bench report", () => {
  it("`bench report X` reaches the subcommand, `bench sweep.json` the sweep", async () => {
    const file = sweep()
    const report = await cliInProcess(["bench", "report", file, "--store", join(dir, "r.db")])
    expect(report.code).toBe(2)
    expect(report.stderr).toMatch(/sweep workers share a PostgreSQL store/)
    expect((await cliInProcess(["bench", "report"])).stderr).toMatch(/bench report: missing <sweep>/)
    const help = await cliInProcess(["bench", "report", "--help"])
    expect(help.stdout).toContain("Usage\n  interleave bench report <sweep> [options]")
    expect((await cliInProcess(["bench", "--help"])).stdout).toMatch(/Commands\n {2}report +One report/)
    // The sweep argument: a local sweep runs; flags of worker mode are refused without --worker.
    const local = await cliInProcess(["bench", file, "--store", join(dir, "l.db"), "--out", join(dir, "out")])
    expect(local.code, local.stderr).toBe(0)
    expect(local.stdout).toContain("sim-h100-sxm-8x1-b")
    expect((await cliInProcess(["bench", file, "--wait"])).stderr).toContain(
      "--wait: applies only to --worker",
    )
    expect((await cliInProcess(["bench", file, "--lease-seconds", "5"])).stderr).toContain(
      "--lease-seconds: applies only to --worker",
    )
  })

  it("refuses what a worker does not do, and a worker without a PostgreSQL store", async () => {
    const file = sweep()
    const sqlite = await cliInProcess(["bench", file, "--worker", "--store", join(dir, "w.db")])
    expect(sqlite.code).toBe(2)
    expect(sqlite.stderr).toContain("sweep workers share a PostgreSQL store")
    const out = await cliInProcess(["bench", file, "--worker", "--out", "x", "--store", "postgres://u@h/d"])
    expect(out.stderr).toContain("--out: does not apply to --worker")
    const lease = await cliInProcess([
      "bench",
      file,
      "--worker",
      "--lease-seconds",
      "0.1",
      "--store",
      "postgres://u@h/d",
    ])
    expect(lease.stderr).toContain("--lease-seconds: must be a number >= 1, got 0.1")
  })
})

describe("the bundle", () => {
  it("loads node-postgres only for a postgres:// store: no static import of pg from the entry", async () => {
    // Any run of the binary builds dist/ when it is stale.
    expect((await runCli(["--version"])).code).toBe(0)
    const external = new Set<string>()
    const seen = new Set<string>()
    const walk = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      const text = readFileSync(file, "utf8")
      for (const m of text.matchAll(/^import\s*(?:[^;]*?from\s*)?"([^"]+)"/gm)) {
        const target = m[1]!
        if (target.startsWith(".")) walk(normalize(join(dirname(file), target)))
        else external.add(target)
      }
    }
    walk(join(ROOT, "dist", "interleave.js"))
    expect(seen.size).toBeGreaterThan(1)
    expect([...external].filter((x) => !x.startsWith("node:"))).toEqual([])
  })
})
