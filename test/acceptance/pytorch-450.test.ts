/**
 * Issue 13's done-when at its stated size: `interleave run scenarios/trex2-joint-8to1.json
 * --adapter pytorch --steps 450` completes, `verify --log` passes, and both modalities' held-out
 * recall ends above chance. (npm test runs the same command for 100 steps, without the learning
 * bound, which needs the longer run.)
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli, scenario, tempDir } from "../support/cli-helpers.ts"
import { torchTestsRun } from "../support/exec-support.ts"

const dir = tempDir("interleave-pytorch-450-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const env = { INTERLEAVE_TRAINER_STDERR: "quiet", INTERLEAVE_PROGRESS: "0" }
const cli = (args: string[]) => runCli([...args, "--store", store], { env })

describe.runIf(torchTestsRun("the 450-step PyTorch acceptance run"))("--adapter pytorch --steps 450", () => {
  it("completes; verify --log passes; both modalities end above chance", async () => {
    const t0 = performance.now()
    const r = await cli([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--adapter",
      "pytorch",
      "--steps",
      "450",
      "--run-id",
      "p450",
      "--json",
    ])
    const wallMs = performance.now() - t0
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({ outcome: "completed", stepsCompleted: 450 })
    const ev = report.lastEval
    expect(ev).toMatchObject({ step: 449, metric: "recall@iou0.5" })
    expect(ev.values.visual).toBeGreaterThan(ev.chance)
    expect(ev.values.text).toBeGreaterThan(ev.chance)
    console.info(
      `pytorch 450 steps: wall ${(wallMs / 1000).toFixed(1)} s; eval visual ${ev.values.visual} text ${ev.values.text} (chance ${ev.chance})`,
    )
    const v = await cli(["verify", "--log", "p450", "--json"])
    expect(v.code).toBe(0)
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, steps: 450, visualSteps: 320, textSteps: 130 })
  })
})
