/**
 * Signals end a run cleanly, through the real binary: SIGINT and SIGTERM stop a sim run part-way
 * (also under `timeout` and `npx`), the log ends at a step boundary with a RunInterrupted event,
 * the exit code says which signal, no interleave process is left, and `resume` completes the run.
 * How fast it stops is not checked here (a loaded machine is slow): that the run stopped before
 * its end, at a step boundary, is.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { BIN, ROOT, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"
import { countEvents } from "../support/store-file.ts"
import { timeoutFor, waitUntil } from "../support/timeouts.ts"

const dir = tempDir("interleave-signals-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// Under a second of sim steps on a quiet 2-core machine: long enough to interrupt after the
// first 1000 steps, short enough to resume.
const STEPS = 30_000
const scenario = writeJson(dir, "long.json", {
  name: "long",
  seed: 1,
  phases: [{ name: "joint", steps: STEPS, ratio: { visual: 8, text: 1 } }],
  batch: { visual: { size: 8 }, text: { size: 8 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "head" }] },
})
// Never ends by itself: for the wrapper test, which does not resume.
const endless = writeJson(dir, "endless.json", {
  name: "endless",
  seed: 1,
  phases: [{ name: "joint", steps: 1_000_000_000, ratio: { visual: 8, text: 1 } }],
  batch: { visual: { size: 8 }, text: { size: 8 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "head" }] },
})
const store = join(dir, "runs.db")
// The signalled runs are the real binary; what reads and resumes them afterwards runs in-process.
const cli = (args: ReadonlyArray<string>) => cliInProcess([...args, "--store", store])

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) => {
    let stderr = ""
    child.stderr?.on("data", (d) => {
      stderr += String(d)
    })
    child.on("exit", (code, signal) => done({ code, signal, stderr }))
  })

/**
 * Waits until the run has recorded over 1000 steps, reading the store file directly; fails once
 * `child` has exited without.
 */
const waitForSteps = (runId: string, child: ChildProcess) =>
  waitUntil(
    `run ${runId} never recorded 1000 steps`,
    () => {
      const n = countEvents(store, runId, "StepCompleted")
      return n > 1000 ? n : undefined
    },
    {
      stopped: () =>
        child.exitCode !== null || child.signalCode !== null
          ? `its process exited (${child.exitCode ?? child.signalCode})`
          : undefined,
    },
  )

/** The processes whose command line names the run (pgrep's exit 1 is "none"; anything else throws). */
const processesOf = (runId: string): string[] => {
  // "--" ends pgrep's options: the pattern itself starts with "--".
  const r = spawnSync("pgrep", ["-f", "--", `--run-id ${runId}`], { encoding: "utf8" })
  if (r.status === 1) return []
  if (r.status !== 0) throw new Error(`pgrep failed (${r.status}): ${r.stderr}`)
  return r.stdout.trim().split("\n").filter(Boolean)
}

const interruptedLog = async (runId: string) => {
  // Through a file: the log of a few seconds of sim steps is larger than a child's stdout buffer.
  const file = join(dir, `${runId}.jsonl`)
  const exported = await cli(["export", runId, "--out", file, "--force"])
  expect(exported.code, exported.stderr).toBe(0)
  const log = readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).data as { _tag: string; step?: number; lastStep?: number; reason?: string })
  return log
}

describe("signals stop a run cleanly", () => {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)
    it(
      `${signal}: stops part-way, exit ${code}, the log ends at a step boundary, resume completes`,
      async () => {
        const runId = `sig-${signal}`
        const child = spawn(process.execPath, [BIN, "run", scenario, "--run-id", runId, "--store", store], {
          cwd: ROOT,
          stdio: ["ignore", "ignore", "pipe"],
        })
        const done = exited(child)
        await waitForSteps(runId, child)
        // The check below sees a running interleave: it is not empty by construction.
        expect(processesOf(runId)).toHaveLength(1)
        child.kill(signal)
        const r = await done
        expect(r.code, r.stderr).toBe(code)
        expect(r.stderr).toContain(`resume it with \`interleave resume ${runId}\``)
        expect(processesOf(runId)).toEqual([])
        const log = await interruptedLog(runId)
        const last = log.at(-1)!
        expect(last._tag).toBe("RunInterrupted")
        expect(last.reason).toContain(signal)
        const steps = log.filter((e) => e._tag === "StepCompleted").map((e) => e.step!)
        expect(last.lastStep).toBe(steps.at(-1))
        expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i))
        // It stopped on the signal, part-way: not by running to the end first.
        expect(steps.length).toBeGreaterThan(1000)
        expect(steps.length).toBeLessThan(STEPS)
        const resumed = await cli(["resume", runId, "--json"])
        expect(resumed.code, resumed.stderr).toBe(0)
        expect(JSON.parse(resumed.stdout)).toMatchObject({ status: "completed", stepsCompleted: STEPS })
        expect((await cli(["verify", "--log", runId])).code).toBe(0)
        // One start of the binary; the run's steps, then in-process export, resume and verify.
      },
      timeoutFor({ starts: 1, simSteps: 4 * STEPS }),
    )

  it(
    "under `timeout` and `npx`, the run stops with the wrapper and no interleave process is left",
    async () => {
      const runId = "sig-timeout-npx"
      // npm 11's npx links the project's own bin through a cache folder (~/.npm/_npx) that it sets
      // up on first use; an npx killed while it does so leaves the folder broken for every later
      // npx. Set it up first, unhurried, so that `timeout` only ever kills a running interleave.
      expect(
        spawnSync("npx", ["--no-install", "interleave", "--version"], { cwd: ROOT, encoding: "utf8" }).status,
      ).toBe(0)
      // The wrapper's time is up when the run has recorded steps, however long npx and the binary
      // took to start: its duration is longer than the test may take, and SIGALRM, the signal
      // coreutils' timeout runs its expiry on, ends it early (it then exits 124, as on expiry).
      const child = spawn(
        "timeout",
        [
          "-s",
          "TERM",
          "600",
          "npx",
          "--no-install",
          "interleave",
          "run",
          endless,
          "--run-id",
          runId,
          "--store",
          store,
        ],
        { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
      )
      const done = exited(child)
      try {
        await waitForSteps(runId, child)
        // timeout, npx and interleave, found by the same check that must find none afterwards.
        expect(processesOf(runId).length).toBeGreaterThanOrEqual(2)
        child.kill("SIGALRM")
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGALRM")
      }
      const r = await done
      expect(r.code, r.stderr).toBe(124)
      // npx may exit before the interleave it signalled has: wait for that one to stop. A process
      // left behind for good fails the test at its timeout.
      await waitUntil("interleave processes left", () => (processesOf(runId).length === 0 ? true : undefined))
      expect(processesOf(runId)).toEqual([])
      // The run's state says how it ended (cheaper than exporting a few hundred thousand events).
      const show = await cli(["show", runId, "--json"])
      expect(show.code, show.stderr).toBe(0)
      const shown = JSON.parse(show.stdout)
      expect(shown.status).toBe("interrupted")
      // npm forwards the TERM to the shell between it and the binary, not to the binary, which
      // stops on it only where it reaches it; otherwise it stops as at SIGTERM once npx is gone.
      expect(shown.lastInterruption.reason).toMatch(
        /^(stopped by SIGTERM|stopped: the npx or npm that started it \(pid \d+\) is gone)$/,
      )
      // npx twice, the binary, the endless run's steps until the signal (a few thousand).
    },
    timeoutFor({ starts: 3, simSteps: 100_000 }),
  )
})
