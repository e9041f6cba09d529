/**
 * What run, show and diff say about a run: per-step means with their unit, simulated or measured,
 * a named memory figure; long plans print without a stack overflow; `show --follow` tails a run in
 * progress until it stops. In-process, except the follower's writer (a real process to stop).
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { BIN, baseScenario, ROOT, scenario, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess as cli } from "../support/cli-inprocess.ts"
import { timeoutFor, waitUntil } from "../support/timeouts.ts"

const dir = tempDir("interleave-report-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")

describe("run, show and diff say what each number is", () => {
  it("the quick start's summary: per-step means per modality with units, total and wall time, the memory figure named", async () => {
    const r = await cli(["run", scenario("trex2-joint-8to1.json"), "--run-id", "quick", "--store", store])
    expect(r.code, r.stderr).toBe(0)
    const out = r.stdout
    expect(out).toMatch(/per step\s+steps\s+updates\s+mean\s+p50\s+p99\s+total\s+memory \(in-step peak\)/)
    expect(out).toMatch(/\nvisual\s+8,000\s+8,000\s+\d+(\.\d+)? ms\s+\d+(\.\d+)? ms\s+\d+(\.\d+)? ms/)
    expect(out).toMatch(/\ntext\s+1,090\s+1,090\s+\d+(\.\d+)? ms/)
    expect(out).toMatch(/step time is simulated .*over 9090 steps; wall time /)
    expect(out).toMatch(/\nmemory \(simulated\): peak bytes inside the step\n/)
    expect(out).not.toMatch(/step time\s+\n|\bmem peak\b/)
  })

  it("show and show --json report the same figures; diff compares means and names the figure", async () => {
    const show = await cli(["show", "quick", "--json", "--store", store])
    const report = JSON.parse(show.stdout)
    expect(report.stepTime.kind).toBe("simulated")
    expect(report.stepTime.visual.count).toBe(8000)
    expect(report.memory.measure).toBe("in-step peak")
    expect(report.curves.memory.source).toBe("peakBytes")
    const text = await cli(["show", "quick", "--store", store])
    expect(text.stdout).toMatch(/memory visual \(in-step peak\)/)
    const diff = await cli(["diff", "quick", "quick", "--store", store])
    expect(diff.code).toBe(0)
    expect(diff.stdout).toMatch(/mean V\s+mean T\s+total\s+mem V \(in-step peak\)/)
    expect(diff.stdout).toMatch(/ms\s+\d+(\.\d+)? ms\s+\d[^\n]* simulated/)
    const json = JSON.parse((await cli(["diff", "quick", "quick", "--json", "--store", store])).stdout)
    expect(json.a.stepTime.visual.meanMs).toBeGreaterThan(0)
    expect(json.a.memory.source).toBe("peakBytes")
  })

  it("plan prints 250,000 steps without overflowing the stack", async () => {
    const big = writeJson(dir, "big.json", {
      ...baseScenario(),
      phases: [{ name: "joint", steps: 300_000, ratio: { visual: 8, text: 1 } }],
    })
    const r = await cli(["plan", big, "--count", "250000"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("249999")
  })
})

describe("show --follow", () => {
  it(
    "tails a run in progress, a line at a time, until the run stops",
    async () => {
      const long = writeJson(dir, "long.json", {
        ...baseScenario(),
        phases: [{ name: "joint", steps: 5_000_000, ratio: { visual: 8, text: 1 } }],
      })
      const writer = spawn(process.execPath, [BIN, "run", long, "--run-id", "followed", "--store", store], {
        cwd: ROOT,
        stdio: "ignore",
      })
      const writerExited = new Promise((res) => writer.on("exit", res))
      // Wait until the run has steps, follow it, stop the writer once the follower has printed a
      // line: the follower ends on its RunInterrupted. Nothing here is timed.
      await waitUntil(
        "run followed never recorded a step",
        async () => {
          const r = await cli(["show", "followed", "--json", "--store", store])
          return r.code === 0 && JSON.parse(r.stdout).stepsCompleted > 0 ? true : undefined
        },
        {
          stopped: () =>
            writer.exitCode === null && writer.signalCode === null ? undefined : "its writer exited",
        },
      )
      // A run still being written cannot be deleted by mistake.
      const live = await cli(["delete", "followed", "--store", store])
      expect(live.code).toBe(2)
      expect(live.stderr).toMatch(
        /run "followed" is still being written by process \d+ on .*; stop it first, or pass --force/,
      )
      let signalled = false
      const f = await cli(["show", "followed", "--follow", "--store", store], {
        onStdout: (line) => {
          if (!signalled && line.startsWith("followed: ")) {
            signalled = true
            writer.kill("SIGINT")
          }
        },
      })
      expect(f.code).toBe(0)
      const lines = f.stdout.split("\n").filter((l) => l.startsWith("followed: "))
      expect(lines.length).toBeGreaterThanOrEqual(2)
      expect(lines.at(-1)).toMatch(/followed: interrupted · step \d+\/5000000/)
      await writerExited
      // Once it has stopped, it goes with its checkpoints folder.
      mkdirSync(join(`${store}.checkpoints`, "followed"), { recursive: true })
      const del = await cli(["delete", "followed", "--store", store])
      expect(del.code, del.stderr).toBe(0)
      expect(existsSync(join(`${store}.checkpoints`, "followed"))).toBe(false)
      const runs = JSON.parse((await cli(["runs", "--json", "--store", store])).stdout) as Array<{
        runId: string
      }>
      expect(runs.map((r) => r.runId)).not.toContain("followed")
      // One start of the binary; the in-process shows, follow, delete and runs: ~5 s quiet.
    },
    timeoutFor({ starts: 1, quietMs: 5_000 }),
  )
})
