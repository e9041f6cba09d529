/**
 * Sweep workers for real: three `interleave bench SWEEP --worker` processes (the binary, spawned)
 * share one sweep through the throwaway PostgreSQL server; one is SIGKILLed in the middle of a
 * configuration. Every configuration must complete exactly once, the killed attempt must stay in
 * the store as an interrupted run (in `runs` and in the report's notes), and the report must
 * cover every configuration. Without a server this skips, loudly, unless INTERLEAVE_REQUIRE_PG=1.
 *
 * The leases are long next to a renewal (6 s, renewed every 2 s), so that on a quiet machine the
 * killed attempt is the only one lost. On a loaded one a live worker may still miss its renewal
 * and have its configuration taken over: that is the queue working, not a failure, so the checks
 * hold for any number of lost attempts (each one interrupted and kept, its configuration
 * completed once by a later attempt), with the killed attempt always among them.
 */
import type { ChildProcess } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli, scenario, spawnCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { createDatabase, postgresSkipReason, runSql, testPostgresUrl } from "../support/postgres.ts"

const server = testPostgresUrl()
let url = ""
const dir = tempDir("interleave-workers-")
const children: ChildProcess[] = []

beforeAll(async () => {
  if (server !== undefined) url = await createDatabase(server, "workers")
})
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  rmSync(dir, { recursive: true, force: true })
})

const rows = async <A>(sql: string): Promise<ReadonlyArray<A>> =>
  (await runSql(url, [sql]))[0] as ReadonlyArray<A>

const exited = (c: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) => {
    let stderr = ""
    c.stderr?.on("data", (d) => {
      stderr += String(d)
    })
    c.stdout?.resume()
    c.once("exit", (code, signal) => done({ code, signal, stderr }))
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(server === undefined)("sweep workers on one PostgreSQL store", () => {
  it("three workers, one SIGKILLed mid-configuration: every configuration completes exactly once, the killed attempt is kept as interrupted, the report is complete", async () => {
    // 4 sim configurations, long enough (8,000 steps, a second or two each) to be killed part-way.
    const sweep = writeJson(dir, "sweep.json", {
      name: "workers-test",
      base: scenario("trex2-joint-8to1.json"),
      ratios: ["8:1", "4:1"],
      batchSizes: [4, 8],
      targets: [{ adapter: "sim", hardware: "h100-sxm" }],
      warmupSteps: 10,
      measuredSteps: 8_000,
      microIterations: 0,
    })
    const args = ["bench", sweep, "--store", url, "--worker", "--lease-seconds", "6"]
    const workers = [0, 1, 2].map(() => spawnCli(args, { cwd: dir }))
    children.push(...workers)
    const ends = workers.map(exited)

    // Wait for an attempt well into its run, then kill its worker. No deadline of its own (the
    // test's timeout is one: starting three binaries on a loaded machine takes what it takes), but
    // workers that all ended before one got going fail it at once.
    let victim:
      | { config_id: string; attempt: number; run_id: string; pid: number; version: number }
      | undefined
    let ended = false
    void Promise.all(ends).then(() => {
      ended = true
    })
    while (victim === undefined && !ended) {
      await sleep(50)
      const running = await rows<{
        config_id: string
        attempt: number
        run_id: string
        worker: string
        version: string
      }>(
        "SELECT a.config_id, a.attempt, a.run_id, a.worker, s.version FROM interleave.queue_attempts a " +
          "JOIN interleave.streams s ON s.stream = a.run_id WHERE a.outcome = 'running' AND s.version > 1500 " +
          "ORDER BY a.claimed_at LIMIT 1",
      ).catch(() => [])
      const r = running[0]
      if (r) victim = { ...r, pid: (JSON.parse(r.worker) as { pid: number }).pid, version: Number(r.version) }
    }
    if (victim === undefined) {
      const why = (await Promise.all(ends)).map(
        (r) => `exit ${r.code ?? r.signal}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`,
      )
      expect.fail(`the workers ended before an attempt was 1,500 events into its run:\n${why.join("\n")}`)
    }
    const killed = workers.find((w) => w.pid === victim!.pid)
    expect(killed, `pid ${victim!.pid} is not one of the workers`).toBeDefined()
    killed!.kill("SIGKILL")

    const results = await Promise.all(ends)
    const outcomes = results.map((r, i) => (workers[i] === killed ? `killed(${r.signal})` : `exit ${r.code}`))
    expect(outcomes.sort()).toEqual(["exit 0", "exit 0", "killed(SIGKILL)"])
    const survivorsLog = results
      .filter((_, i) => workers[i] !== killed)
      .map((r) => r.stderr)
      .join("\n")
    const k = victim!.attempt
    expect(survivorsLog).toMatch(
      new RegExp(`${victim!.config_id}: attempt ${k + 1} takes over from attempt ${k}`),
    )

    // The queue: 4 configurations, each completed; one attempt per configuration completed it.
    const configs = await rows<{ config_id: string; state: string; attempts: number; run_id: string }>(
      "SELECT config_id, state, attempts, run_id FROM interleave.queue_configs ORDER BY position",
    )
    expect(configs).toHaveLength(4)
    expect(configs.every((c) => c.state === "completed")).toBe(true)
    const attempts = await rows<{
      config_id: string
      attempt: number
      run_id: string
      outcome: string
      note: string | null
    }>("SELECT config_id, attempt, run_id, outcome, note FROM interleave.queue_attempts ORDER BY claimed_at")
    // Per configuration: attempts 1..n, every one but the last lost, the last completed it (its run).
    for (const c of configs) {
      const mine = attempts.filter((a) => a.config_id === c.config_id).sort((a, b) => a.attempt - b.attempt)
      expect(mine.map((a) => a.attempt)).toEqual(Array.from({ length: c.attempts }, (_, i) => i + 1))
      expect(mine.map((a) => a.outcome)).toEqual([...Array(c.attempts - 1).fill("lost"), "completed"])
      expect(mine.at(-1)!.run_id).toBe(c.run_id)
    }
    const lost = attempts.filter((a) => a.outcome !== "completed")
    // The killed attempt is lost; others are lost only to a missed renewal on a loaded machine.
    expect(lost.map((a) => [a.config_id, a.attempt, a.run_id, a.outcome])).toContainEqual([
      victim!.config_id,
      k,
      victim!.run_id,
      "lost",
    ])
    expect(configs.find((c) => c.config_id === victim!.config_id)!.attempts).toBeGreaterThan(k)

    // The runs: exactly one completed run per configuration; the killed one kept, interrupted.
    const ends_ = await rows<{ stream: string; type: string; data: string }>(
      "SELECT DISTINCT ON (stream) stream, type, data FROM interleave.events ORDER BY stream, position DESC",
    )
    expect(ends_).toHaveLength(attempts.length)
    const completedRuns = ends_.filter((e) => e.type === "RunCompleted").map((e) => e.stream)
    expect(completedRuns.sort()).toEqual(configs.map((c) => c.run_id).sort())
    for (const a of lost) {
      const dead = ends_.find((e) => e.stream === a.run_id)!
      expect(dead.type, a.run_id).toBe("RunInterrupted")
      expect(JSON.parse(dead.data)).toMatchObject({ reason: "worker lost its lease" })
    }

    const listed = await runCli(["runs", "--store", url, "--json"], { cwd: dir })
    expect(listed.code).toBe(0)
    const runs = JSON.parse(listed.stdout) as ReadonlyArray<{
      runId: string
      status: string
      stepsDone: number
    }>
    expect(runs.map((r) => r.status).sort()).toEqual([
      ...Array(4).fill("completed"),
      ...Array(lost.length).fill("interrupted"),
    ])
    const deadRun = runs.find((r) => r.runId === victim!.run_id)!
    expect(deadRun.status).toBe("interrupted")
    expect(deadRun.stepsDone).toBeGreaterThan(0)
    expect(deadRun.stepsDone).toBeLessThan(8_010)

    const out = join(dir, "report")
    const report = await runCli(["bench", "report", sweep, "--store", url, "--out", out], { cwd: dir })
    expect(report.stderr).toBe("")
    expect(report.code).toBe(0)
    const written = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
      configs: ReadonlyArray<{ id: string; runId: string; worker?: { host: string; attempt: number } }>
    }
    expect(written.configs.map((c) => c.id).sort()).toEqual(configs.map((c) => c.config_id).sort())
    for (const c of configs)
      expect(written.configs.find((w) => w.id === c.config_id)?.worker?.attempt).toBe(c.attempts)
    const md = readFileSync(join(out, "report.md"), "utf8")
    for (const a of lost) expect(md).toContain(`Attempt ${a.attempt} of ${a.config_id} (run ${a.run_id})`)
    expect(md).toMatch(/interrupted after [\d,]+ of 8,010 steps: its worker lost its lease/)
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain(victim!.run_id)
    console.info(
      `workers test: ${configs.length} configurations, ${attempts.length} attempts; killed pid ${victim!.pid} on ${victim!.config_id} (run ${victim!.run_id}, ${victim!.version} events when killed, ${deadRun.stepsDone} steps recorded); ${lost.length} attempt(s) lost in all`,
    )
  })
})

if (server === undefined) {
  describe(`sweep workers: SKIPPED (${postgresSkipReason()})`, () => {
    it.skip("needs a PostgreSQL server", () => {})
  })
}
