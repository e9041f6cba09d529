/**
 * The trainer without the SDK that docs/step-protocol.md shows (docs/examples/minimal_trainer.py,
 * standard-library Python, issue 18 item 5), through the real binary: the page shows the file
 * verbatim; a run of the shipped scenario verifies; a run killed with SIGKILL part-way resumes from
 * its checkpoint to completion, every step once, verifies, and replays exactly.
 */
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli, scenario, spawnCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { PYTHON, pythonTestsRun, ROOT, running } from "../support/exec-support.ts"
import { countEvents } from "../support/store-file.ts"

const TRAINER = join(ROOT, "docs", "examples", "minimal_trainer.py")
const CMD = `${PYTHON} ${TRAINER}`
const dir = tempDir("interleave-minimal-trainer-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const env = { INTERLEAVE_TRAINER_STDERR: "quiet", INTERLEAVE_PROGRESS: "0" }
const cli = (args: string[]) => runCli([...args, "--store", store], { env })

interface Exported {
  readonly type: string
  readonly data: Record<string, unknown> & { step?: number }
}
const exported = async (run: string): Promise<Exported[]> => {
  const r = await cli(["export", run])
  expect(r.code, r.stderr).toBe(0)
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Exported)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("docs/step-protocol.md", () => {
  it("shows docs/examples/minimal_trainer.py verbatim", () => {
    const page = readFileSync(join(ROOT, "docs", "step-protocol.md"), "utf8")
    const marker = "<!-- docs/examples/minimal_trainer.py, verbatim"
    const at = page.indexOf(marker)
    expect(at, "the page marks where the file is shown").toBeGreaterThan(0)
    const open = page.indexOf("```python\n", at) + "```python\n".length
    const close = page.indexOf("\n```\n", open)
    expect(page.slice(open, close + 1)).toBe(readFileSync(TRAINER, "utf8"))
  })
})

describe.runIf(pythonTestsRun("the minimal trainer tests"))("the minimal trainer (no SDK)", () => {
  // Four starts of the binary, one of the trainer, 120 steps: at 15 s, 30 s and 0.1 s each.
  it("runs 120 steps of trex2-joint-8to1: verify --log passes; its options, groups and environment are recorded", async () => {
    const r = await cli([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--adapter",
      "exec",
      "--cmd",
      CMD,
      "--hello-options",
      '{"lrScale":2}',
      "--steps",
      "120",
      "--run-id",
      "m120",
      "--json",
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: "completed", stepsCompleted: 120 })
    const v = await cli(["verify", "--log", "m120", "--json"])
    expect(v.code, v.stdout).toBe(0)
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, steps: 120 })
    const log = await exported("m120")
    const started = log[0]!.data as {
      adapter: { options: Record<string, unknown>; info: Record<string, string>; environment: object }
    }
    expect(started.adapter.options).toMatchObject({ cmd: CMD, options: { lrScale: 2 } })
    expect(JSON.parse(started.adapter.info.groups!)).toEqual({ w: "backbone", b: "head" })
    expect(started.adapter.info).toMatchObject({
      trainer: "minimal",
      reproducible: expect.stringMatching(/^exact/),
    })
    expect(started.adapter.environment).toEqual({ python: expect.stringMatching(/^3\./) })
    // samples: the batch size of the step's modality (8 and 8 in this scenario).
    const steps = log.filter((e) => e.type === "StepCompleted")
    expect(steps).toHaveLength(120)
    expect(steps.every((e) => e.data.samples === 8)).toBe(true)
    expect(log.filter((e) => e.type === "Checkpointed").map((e) => e.data.step)).toEqual([99])
  }, 120_000)

  // Seven starts of the binary, three of the trainer, some 900 steps (400, the re-run ones, 400
  // replayed): at 15 s, 30 s and 0.1 s each.
  it("SIGKILLed part-way, then resume: completes from its checkpoint, every step once, verifies, replays exactly", async () => {
    // Large batches make a step take a few ms, so that the kill lands part-way.
    const spec = writeJson(dir, "minimal.json", {
      name: "minimal",
      seed: 11,
      phases: [
        { name: "text-only", steps: 20, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 380, ratio: { visual: 3, text: 1 } },
      ],
      batch: { visual: { size: 10000, accumulation: 2 }, text: { size: 8000 } },
      optimizer: {
        kind: "sgd",
        lr: 0.05,
        groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }],
      },
    })
    const args = ["run", spec, "--adapter", "exec", "--cmd", CMD, "--checkpoint-every", "50"]
    const child = spawnCli([...args, "--run-id", "killed", "--store", store])
    let exitedAt: number | null | undefined
    const exited = new Promise<void>((r) =>
      child.on("exit", (code) => {
        exitedAt = code
        r()
      }),
    )
    while (countEvents(store, "killed", "StepCompleted") < 100) {
      if (exitedAt !== undefined) throw new Error(`the run ended (exit ${exitedAt}) before 100 steps`)
      await sleep(20)
    }
    child.kill("SIGKILL")
    await exited
    const before = await exported("killed")
    const pid = Number((before[0]!.data as { adapter: { info: { pid: string } } }).adapter.info.pid)
    const done = before.filter((e) => e.type === "StepCompleted").length
    expect(done, "killed part-way").toBeLessThan(400)
    expect(before.some((e) => e.type === "RunCompleted")).toBe(false)
    const checkpoints = before.filter((e) => e.type === "Checkpointed").map((e) => e.data.step!)
    expect(checkpoints.length).toBeGreaterThan(0)
    // The trainer reads end of input on stdin and exits by itself.
    while (running(pid)) await sleep(20)

    const resumed = await cli(["resume", "killed", "--json"])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ outcome: "completed", stepsCompleted: 400 })
    const after = await exported("killed")
    const r = after.find((e) => e.type === "RunResumed")!
    expect(r.data).toMatchObject({ fromStep: done, checkpoint: { step: checkpoints.at(-1) } })
    expect(after.filter((e) => e.type === "StepCompleted").map((e) => e.data.step)).toEqual([
      ...Array(400).keys(),
    ])
    const v = await cli(["verify", "--log", "killed", "--json"])
    expect(v.code, v.stdout).toBe(0)
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, steps: 400 })
    // A fresh trainer runs all 400 steps in one go: the same losses, bit for bit, so restore
    // brought back exactly the state after the checkpointed step.
    const replay = await cli(["replay", "killed"])
    expect(replay.code, replay.stderr).toBe(0)
    expect(replay.stdout).toContain("replay matches the log")
    expect(replay.stdout).toContain("losses and evaluations compared exactly")
  }, 285_000)
})
