/**
 * Real trainers through the real binary: the bundled PyTorch trainer for 100 steps of the shipped
 * scenario (verify passes; the 450-step run with its learning bound is in test/acceptance),
 * SIGKILL of interleave mid-run then resume (every step once, the same losses as an uninterrupted
 * run, which replays exactly), SIGKILL of the trainer child (a StepFailed, then resume completes),
 * trainers that cannot start (bad input, exit 2, one line), and a log written by a loop the
 * trainer owns (Recorder) that verifies, and fails at the step where one text step was moved.
 */
import { type ChildProcess, spawnSync } from "node:child_process"
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import Database from "better-sqlite3"
import { afterAll, describe, expect, it } from "vitest"
import { runCli, scenario, spawnCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"
import { alive, PYTHON, pythonTestsRun, ROOT, running, torchTestsRun } from "../support/exec-support.ts"
import { timeoutFor, waitUntil } from "../support/timeouts.ts"

const dir = tempDir("interleave-exec-cli-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const env = { INTERLEAVE_TRAINER_STDERR: "quiet", INTERLEAVE_PROGRESS: "0" }
const cli = (args: string[]) => runCli([...args, "--store", store], { env })

interface Exported {
  readonly type: string
  readonly data: Record<string, unknown> & { step?: number; kind?: string; message?: string }
}
const exported = async (run: string): Promise<Exported[]> => {
  const r = await cli(["export", run])
  expect(r.code).toBe(0)
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Exported)
}
const stepsOf = (log: Exported[]) =>
  log.filter((e) => e.type === "StepCompleted").map((e) => [e.data.step, e.data.losses] as const)

/**
 * Polls the store until `run` has `n` StepCompleted events; returns its RunStarted. No deadline of
 * its own (the test's timeout is one); fails once `child`, the run's process, has exited.
 */
const waitForSteps = (run: string, n: number, child: ChildProcess) =>
  waitUntil(
    `run ${run} never reached ${n} steps`,
    () => {
      try {
        const db = new Database(store, { readonly: true, fileMustExist: true })
        const rows = db
          .prepare("SELECT type, data FROM events WHERE stream = ? ORDER BY position")
          .all(run) as Array<{ type: string; data: string }>
        db.close()
        if (rows.filter((r) => r.type === "StepCompleted").length >= n)
          return JSON.parse(rows[0]!.data) as { adapter: { info: Record<string, string> } }
      } catch {
        // Not there yet.
      }
      return undefined
    },
    {
      stopped: () =>
        child.exitCode === null && child.signalCode === null ? undefined : "its process exited",
    },
  )

/**
 * Waits until an orphaned trainer (its interleave was killed) has stopped running: one that never
 * does fails the test at its timeout.
 */
const waitGone = async (pid: number) => {
  await waitUntil(`trainer ${pid} still running`, () => (running(pid) ? undefined : true))
  return !running(pid)
}

// Timeouts sized from the tests' work: starts of the binary, trainers, steps (support/timeouts.ts).
// The PyTorch tests get their largest: SIGKILL then resume, which starts run, resume and replay
// (each a trainer), verify and export, for 45 + 45 + 90 PyTorch steps.
const TORCH = timeoutFor({ starts: 5, trainers: 3, torchSteps: 180 })
// Ctrl-C: run and resume (small trainers without torch), two exports; 60 steps.
const SIGINT = timeoutFor({ starts: 4, pySteps: 100 })
// The recorder loop (Python, 120 steps), then five starts of the binary.
const RECORDER = timeoutFor({ starts: 5, trainers: 1, pySteps: 120 })

/** Small batches: steps of a few ms, so that the kill tests are quick. */
const small = () =>
  writeJson(dir, "small.json", {
    name: "small",
    seed: 7,
    phases: [
      { name: "text-only", steps: 9, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 81, ratio: { visual: 8, text: 1 } },
    ],
    batch: { visual: { size: 2 }, text: { size: 2 } },
    optimizer: {
      kind: "adamw",
      lr: 1e-4,
      groups: [{ name: "backbone", lr: 1e-5 }, { name: "text-encoder", lr: 1e-5 }, { name: "head" }],
    },
  })

const torch = torchTestsRun("exec CLI tests with the PyTorch reference trainer")

describe.runIf(torch)("--adapter pytorch", { timeout: TORCH }, () => {
  // The 450-step run of issue 13's done-when, with its learning bound, is in test/acceptance.
  it("runs trex2-joint-8to1 for 100 steps: verify --log passes; options, trainer and checkpoints recorded", async () => {
    const r = await cli([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--adapter",
      "pytorch",
      "--steps",
      "100",
      "--checkpoint-every",
      "40",
      "--run-id",
      "p100",
      "--json",
    ])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({ outcome: "completed", stepsCompleted: 100 })
    expect(report.lastEval).toMatchObject({ step: 99, metric: "recall@iou0.5" })
    const v = await cli(["verify", "--log", "p100", "--json"])
    expect(v.code).toBe(0)
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, steps: 100, visualSteps: 9, textSteps: 91 })
    const log = await exported("p100")
    const started = log[0]!.data as {
      adapter: { kind: string; options: object; info: Record<string, string> }
    }
    expect(started.adapter.kind).toBe("pytorch")
    expect(started.adapter.options).toMatchObject({
      python: PYTHON,
      device: "cpu",
      preset: "tiny",
      threads: 1,
    })
    expect(started.adapter.info).toMatchObject({ trainer: "interleave-reference-torch", device: "cpu" })
    expect(started.adapter.info.framework).toMatch(/^torch /)
    expect(log.filter((e) => e.type === "Checkpointed").map((e) => e.data.step)).toEqual([39, 79])
    expect(log.filter((e) => e.type === "EvalCompleted").map((e) => e.data.step)).toEqual([49, 99])
    expect(alive(Number(started.adapter.info.pid))).toBe(false)
  })

  it("SIGKILL of interleave mid-run, then resume: every step once, and it replays exactly (as an uninterrupted run)", async () => {
    const spec = small()
    const flags = ["--adapter", "pytorch", "--checkpoint-every", "20", "--eval-every", "30"]
    const child = spawnCli(["run", spec, ...flags, "--run-id", "killed", "--store", store])
    const exited = new Promise<void>((r) => child.on("exit", () => r()))
    const started = await waitForSteps("killed", 45, child)
    child.kill("SIGKILL")
    await exited
    // The trainer sees end of input on stdin and exits by itself.
    expect(await waitGone(Number(started.adapter.info.pid))).toBe(true)
    const resumed = await cli(["resume", "killed", "--json"])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ outcome: "completed", stepsCompleted: 90 })
    const v = await cli(["verify", "--log", "killed", "--json"])
    expect(v.code).toBe(0)
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, steps: 90 })
    const killed = stepsOf(await exported("killed"))
    expect(killed.map(([s]) => s)).toEqual([...Array(90).keys()])
    // Replay re-executes the run from step 0 in one go with a fresh trainer and compares every
    // event: the resumed log is exactly what an uninterrupted run records.
    const replay = await cli(["replay", "killed"])
    expect(replay.code, replay.stderr).toBe(0)
    expect(replay.stdout).toContain("replay matches the log")
    expect(replay.stdout).toContain("losses and evaluations compared exactly")
  })

  it("SIGKILL of the trainer child mid-run: a StepFailed adapter-error naming the signal; resume completes", async () => {
    const child = spawnCli([
      "run",
      small(),
      "--adapter",
      "pytorch",
      "--run-id",
      "child-killed",
      "--store",
      store,
    ])
    let stderr = ""
    child.stderr.on("data", (d) => {
      stderr += d
    })
    const code = new Promise<number | null>((r) => child.on("exit", (c) => r(c)))
    const started = await waitForSteps("child-killed", 20, child)
    const pid = Number(started.adapter.info.pid)
    process.kill(pid, "SIGKILL")
    expect(await code).toBe(1)
    expect(alive(pid)).toBe(false)
    const failed = (await exported("child-killed")).find((e) => e.type === "StepFailed")!
    expect(failed.data.kind).toBe("adapter-error")
    expect(failed.data.message).toMatch(/^the trainer was killed by signal SIGKILL \(step \d+\)/)
    expect(stderr).toContain("adapter-error at step")
    // The trainer broke, not the schedule: resume restores the last checkpoint in a fresh child.
    const resumed = await cli(["resume", "child-killed", "--json"])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ outcome: "completed", stepsCompleted: 90 })
    const v = await cli(["verify", "--log", "child-killed", "--json"])
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, steps: 90 })
  })
})

describe.runIf(pythonTestsRun("exec CLI tests with Python trainers"))(
  "Ctrl-C while the trainer is mid-step",
  { timeout: SIGINT },
  () => {
    it("exits 130, ends the trainer, and the run resumes to completion", async () => {
      const spec = writeJson(dir, "sigint.json", {
        name: "sigint",
        phases: [{ name: "joint", steps: 60, ratio: { visual: 2, text: 1 } }],
        batch: { visual: { size: 2 }, text: { size: 2 } },
        optimizer: { kind: "sgd", lr: 0.1, groups: [{ name: "all" }] },
      })
      const raw = join(ROOT, "python", "tests", "raw_trainer.py")
      const cmd = `${PYTHON} ${raw} --stateless --hang-at 40 --once ${join(dir, "hung-once")}`
      const args = ["run", spec, "--adapter", "exec", "--cmd", cmd, "--run-id", "sigint", "--store", store]
      // The trainer's stderr echoed (not quiet): it says when it hangs.
      const child = spawnCli(args, { env: { INTERLEAVE_TRAINER_STDERR: undefined } })
      let stderr = ""
      child.stderr.on("data", (d) => {
        stderr += d
      })
      const code = new Promise<number | null>((r) => child.on("exit", (c) => r(c)))
      // Steps 0-39 take microseconds; step 40 hangs. The engine appends what it did on the signal.
      const started = await waitForSteps("sigint", 0, child)
      // Mid-step: signalled once the trainer says it hangs in step 40, however long that took.
      await waitUntil("the trainer never reached step 40", () =>
        stderr.includes("hanging at step 40") ? true : undefined,
      )
      child.kill("SIGINT")
      expect(await code).toBe(130)
      expect(alive(Number(started.adapter.info.pid))).toBe(false)
      const steps = stepsOf(await exported("sigint"))
      expect(steps.map(([s]) => s)).toEqual([...Array(40).keys()])
      const resumed = await cli(["resume", "sigint", "--json"])
      expect(resumed.code, resumed.stderr).toBe(0)
      expect(JSON.parse(resumed.stdout)).toMatchObject({ outcome: "completed", stepsCompleted: 60 })
      expect(stepsOf(await exported("sigint")).map(([s]) => s)).toEqual([...Array(60).keys()])
    })
  },
)

describe.runIf(pythonTestsRun("exec CLI tests with Python trainers"))(
  "trainers that cannot start: exit 2, one line",
  () => {
    it("names what is wrong and what to do", async () => {
      // A Python that cannot see Debian's dist-packages (-S): the same interpreter, without torch.
      const noTorch = join(dir, "python-without-torch")
      writeFileSync(noTorch, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`)
      chmodSync(noTorch, 0o755)
      const sc = scenario("trex2-joint-8to1.json")
      const cases: Array<[string[], string]> = [
        [
          ["--adapter", "pytorch", "--python", noTorch],
          `pytorch: python at ${noTorch} has no torch: install Debian's python3-torch or pass --python PATH`,
        ],
        [
          ["--adapter", "pytorch", "--python", "/nonexistent/python3"],
          "pytorch: there is no python at /nonexistent/python3",
        ],
        [
          ["--adapter", "pytorch", "--device", "tpu"],
          "pytorch adapter: device (--device) must be cpu, cuda or cuda:N",
        ],
        [["--adapter", "exec"], "--adapter exec needs --cmd COMMAND"],
        [["--adapter", "exec", "--cmd", "python3 t.py > log"], 'exec adapter: cmd: ">" is shell syntax'],
        [
          ["--adapter", "exec", "--cmd", "x", "--hello-options", "[1]"],
          "--hello-options: must be a JSON object",
        ],
        [["--step-timeout", "5"], "--step-timeout is for --adapter pytorch or exec"],
      ]
      // Refused before any trainer starts: in-process, with the binary's exit codes.
      for (const [flags, message] of cases) {
        const r = await cliInProcess(["run", sc, "--steps", "5", ...flags, "--store", store])
        expect(r.code, r.stderr).toBe(2)
        expect(r.stdout).toBe("")
        expect(r.stderr.trim().split("\n")).toHaveLength(1)
        expect(r.stderr).toContain(message)
      }
    })
  },
)

describe.runIf(pythonTestsRun("Recorder log tests"))(
  "a log written by a loop the trainer owns (Recorder)",
  { timeout: RECORDER },
  () => {
    it("imports and verifies; with one text step moved it fails verify at that step", async () => {
      const log = join(dir, "recorded.jsonl")
      const r = spawnSync(
        PYTHON,
        [
          join(ROOT, "python", "examples", "recorder_loop.py"),
          scenario("trex2-joint-8to1.json"),
          log,
          "--steps",
          "120",
        ],
        { encoding: "utf8" },
      )
      expect(r.status, r.stderr).toBe(0)
      const ok = await cli(["verify", "--log", log, "--json"])
      expect(ok.code, ok.stdout).toBe(0)
      expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, steps: 120, visualSteps: 27, textSteps: 93 })
      const imported = await cli(["import", log, "--run-id", "recorded", "--json"])
      expect(imported.code, imported.stderr).toBe(0)
      expect((await cli(["verify", "--log", "recorded"])).code).toBe(0)

      // Move the joint phase's first text step (step 98) one earlier: steps 97 and 98 swap prompt types.
      const lines = readFileSync(log, "utf8").trim().split("\n")
      const at = (s: number) =>
        lines.findIndex((l) => JSON.parse(l).type === "StepCompleted" && JSON.parse(l).data.step === s)
      const swap = (i: number, modality: string) => {
        const e = JSON.parse(lines[i]!)
        e.data.modality = modality
        lines[i] = JSON.stringify(e)
      }
      expect(JSON.parse(lines[at(98)]!).data.modality).toBe("text")
      swap(at(97), "text")
      swap(at(98), "visual")
      const moved = join(dir, "moved.jsonl")
      writeFileSync(moved, `${lines.join("\n")}\n`)
      const bad = await cli(["verify", "--log", moved, "--json"])
      expect(bad.code).toBe(1)
      const report = JSON.parse(bad.stdout) as {
        ok: boolean
        violations: Array<{ step?: number; message: string }>
      }
      expect(report.ok).toBe(false)
      expect(report.violations[0]!.step).toBe(97)
    })
  },
)
