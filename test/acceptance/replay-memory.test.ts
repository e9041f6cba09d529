/**
 * Bounded memory, measured on the real binary: the process's resident set (sampled from /proc
 * while it runs) stays under 200 MB when `replay`, `verify --log` and `show` stream a 400,000-event
 * run, and when `verify` checks a 4 x 10^6-step schedule (a plan held whole would be several hundred MB).
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli, spawnCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { peakRssOf } from "../support/rss.ts"

const dir = tempDir()
const store = join(dir, "runs.db")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
// 200,000 steps (400,000 events): a reader that held them all would pass 200 MB; streaming
// readers stay near 120 MB.
const STEPS = 200_000
const LIMIT_MB = 200

/** Runs the CLI and samples its RSS every 20 ms; the exit code and the peak in MB. */
const peakRss = (args: string[]) => peakRssOf(spawnCli(args))

describe(`a ${STEPS}-step run`, () => {
  beforeAll(async () => {
    const spec = writeJson(dir, "million.json", {
      name: "million",
      seed: 9,
      phases: [{ name: "joint", steps: STEPS, ratio: { visual: 8, text: 1 } }],
      batch: { visual: { size: 8 }, text: { size: 8 } },
      optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
    })
    const r = await runCli(["run", spec, "--run-id", "m", "--store", store, "--json"])
    expect(r.stderr).toBe("")
    expect(JSON.parse(r.stdout).stepsCompleted).toBe(STEPS)
  }, 300_000)

  for (const args of [
    ["replay", "m"],
    ["verify", "--log", "m"],
    ["show", "m"],
  ]) {
    it(`${args.join(" ")} stays under ${LIMIT_MB} MB RSS`, async () => {
      const r = await peakRss([...args, "--store", store])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      expect(r.peakMb).toBeGreaterThan(0)
      expect(r.peakMb).toBeLessThan(LIMIT_MB)
      console.log(`${args.join(" ")}: peak RSS ${r.peakMb.toFixed(0)} MB`)
    }, 300_000)
  }
})

describe("verify on a 4 x 10^6-step scenario", () => {
  it("streams the plan through every rule in constant memory", async () => {
    const spec = writeJson(dir, "four-million.json", {
      name: "four-million",
      phases: [
        { name: "text-only", steps: 400_000, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 3_600_000, ratio: { visual: 8, text: 1 } },
      ],
      batch: { visual: { size: 8, accumulation: 3 }, text: { size: 8, accumulation: 2 } },
      optimizer: {
        kind: "adamw",
        lr: 1e-4,
        groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }],
      },
      lr: { warmup: { kind: "linear", steps: 5000 }, decay: { kind: "cosine", floor: 0.01 } },
    })
    const r = await peakRss(["verify", spec, "--json"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.peakMb).toBeLessThan(LIMIT_MB)
    console.log(`verify 4 x 10^6 steps: peak RSS ${r.peakMb.toFixed(0)} MB`)
  }, 300_000)
})
