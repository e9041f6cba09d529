/**
 * `interleave bench` on a small sim sweep: recorded runs, results and reports, baselines (pass on
 * the same run, fail on a planted regression), --sim-of, bad input. The sweeps run through the
 * real binary (their progress lines go to its stderr); comparisons of saved files, fits, replay
 * and bad input run in-process.
 */
import { existsSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseSweepResults, type SweepResults } from "../../core/bench/results.ts"
import { baseScenario, runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess, inSequence } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-bench-")
const store = join(dir, "runs.db")
writeJson(dir, "base.json", baseScenario())
const sweepJson = {
  name: "tiny-sim",
  base: "base.json",
  ratios: ["8:1", "1:1", "text-only"],
  batchSizes: [2, { visual: 4, text: 2 }],
  targets: [{ adapter: "sim" }],
  warmupSteps: 3,
  measuredSteps: 18,
  microIterations: 4,
}
const sweep = writeJson(dir, "sweep.json", sweepJson)
const out = join(dir, "out")
const baselineFile = join(dir, "baseline.json")
const IDS = [
  "sim-h100-sxm-8x1-b2x2",
  "sim-h100-sxm-1x1-b2x2",
  "sim-h100-sxm-0x1-b2x2",
  "sim-h100-sxm-8x1-b4x2",
  "sim-h100-sxm-1x1-b4x2",
  "sim-h100-sxm-0x1-b4x2",
]

const readResults = (file: string): SweepResults =>
  Either.getOrThrow(parseSweepResults(readFileSync(file, "utf8"), file))

let first: Awaited<ReturnType<typeof runCli>>
beforeAll(async () => {
  first = await runCli(["bench", sweep, "--out", out, "--store", store, "--save-baseline", baselineFile], {
    env: { INTERLEAVE_PROGRESS: "1" },
  })
}, 60_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("interleave bench <sweep>", () => {
  it("runs every configuration and writes results.json, report.md, report.html and micro.json", () => {
    expect(first.code, first.stderr).toBe(0)
    const results = readResults(join(out, "results.json"))
    expect(results.name).toBe("tiny-sim")
    expect(results.schemaVersion).toBe(2)
    expect(results.configs.map((c) => c.id)).toEqual(IDS)
    for (const c of results.configs) {
      // Warm-up steps are left out: 18 measured steps, the first at step 3.
      expect(c.steps).toBe(18)
      expect(c.series.step[0]).toBe(3)
      expect(c.runId).toMatch(new RegExp(`^bench-tiny-sim-${c.id}-\\d{8}-\\d{6}-[0-9a-f]{4}$`))
      expect(c.hardware).toBe("h100-sxm")
      // The sim's memory is named for what it is: its cost model's in-step footprint, on every step.
      expect(c.memoryFigure).toEqual({ source: "peakBytes", origin: "simulated", sampledSteps: 18 })
    }
    const c81 = results.configs[3]!
    expect(c81.batch).toEqual({ visual: 4, text: 2 })
    expect(c81.latency.visual?.samplesCount).toBe(16)
    expect(c81.latency.text?.samplesCount).toBe(2)
    // Heavier visual steps (batch 4 vs 2) swing further than batch 2 does.
    expect(c81.memory!.swing!.max).toBeGreaterThan(results.configs[0]!.memory!.swing!.max)
    expect(results.configs[2]!.latency.visual).toBeUndefined()

    const md = readFileSync(join(out, "report.md"), "utf8")
    expect(md).toContain("# Sweep: tiny-sim")
    expect(md).toContain("## How this bench measured")
    expect(md).toContain("Memory figure in-step peak, simulated (sim cost model): the sim cost model's")
    expect(md).not.toMatch(/tf\.memory\(\)/)
    const html = readFileSync(join(out, "report.html"), "utf8")
    for (const chart of ["throughput", "memory", "loss", "latency"])
      expect(html).toContain(`data-chart="${chart}"`)
    expect(html).toContain('data-notes="bench"')

    // tinybench: one Bench per target and batch size, a visual and a text task of 4 iterations.
    const micro = JSON.parse(readFileSync(join(out, "micro.json"), "utf8"))
    expect(micro.benches.map((b: { id: string }) => b.id)).toEqual(["sim-h100-sxm-b2x2", "sim-h100-sxm-b4x2"])
    const tasks = micro.benches[1].tasks
    expect(tasks.map((t: { name: string }) => t.name)).toEqual(["visual step", "text step"])
    expect(tasks[0].latency.samplesCount).toBe(4)
    // The sim's step time is deterministic, and tinybench records the adapter's own duration.
    expect(tasks[0].latency.mean).toBeCloseTo(c81.latency.visual!.mean, 9)

    expect(first.stdout).toContain(
      "tiny-sim: memory [in-step peak, simulated (sim cost model)] over the measured steps, 6 configs",
    )
    expect(first.stdout).toContain("mem peak (in-step peak, simulated)")
    // Mean ± rme and n per modality; the 2 text steps of an 8:1 config are flagged.
    expect(first.stdout).toMatch(
      /sim-h100-sxm-8x1-b2x2 +[\d.]+ +[\d.]+ +[\d.]+ ms ±[\d.]+% +16 +[\d.]+ ms ±[\d.]+%! +2 /,
    )
    expect(first.stdout).toContain("warning: sim-h100-sxm-8x1-b2x2 text step latency")
    // A line per finished configuration with the ETA, the last with the sweep's time.
    const progress = first.stderr.split("\n").filter((l) => l.startsWith("bench: ["))
    expect(progress).toHaveLength(6)
    expect(progress[0]).toMatch(
      /^bench: \[1\/6\] sim-h100-sxm-8x1-b2x2: completed, [\d.]+ steps\/s, [\d.]+ samples\/s \(simulated\); ETA \d/,
    )
    expect(progress[5]).toMatch(/; sweep took \d/)
    // The baseline is the results file.
    expect(readResults(baselineFile)).toEqual(readResults(join(out, "results.json")))
  })

  it("records real runs: replay re-executes one and matches its log", async () => {
    const runId = readResults(join(out, "results.json")).configs[3]!.runId
    const r = await cliInProcess(["replay", runId, "--store", store])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("replay matches the log")
  })

  it("--compare passes against a baseline of the same sweep, and fails on a planted regression", async () => {
    const baseline = JSON.parse(readFileSync(baselineFile, "utf8"))
    // Plant: the baseline's first config was twice as fast.
    baseline.configs[0].throughput.stepsPerSec *= 2
    baseline.configs[0].throughput.samplesPerSec *= 2
    const planted = writeJson(dir, "planted.json", baseline)
    const [same, worse, loose] = await Promise.all([
      runCli(["bench", sweep, "--out", join(dir, "o2"), "--store", store, "--compare", baselineFile]),
      runCli(["bench", sweep, "--out", join(dir, "o3"), "--store", store, "--compare", planted]),
      runCli([
        "bench",
        sweep,
        "--out",
        join(dir, "o4"),
        "--store",
        store,
        "--compare",
        planted,
        "--fail-over",
        "60",
        "--json",
      ]),
    ])
    expect(same.code, same.stderr).toBe(0)
    expect(same.stdout).toContain(
      `comparison of this sweep with ${baselineFile} (fail over 15% on throughput.stepsPerSec`,
    )
    expect(same.stdout).toMatch(
      /sim-h100-sxm-8x1-b2x2\s+throughput\.stepsPerSec\s+[\d.,]+ steps\/s\s+[\d.,]+ steps\/s\s+±0\.0%\s+ok/,
    )
    expect(same.stdout).toMatch(/all \d+ gated metrics within 15% \(6 configs compared\)/)
    expect(same.stdout).not.toContain("REGRESSED")

    expect(worse.code).toBe(1)
    // A line per finished configuration, then the verdict.
    expect(worse.stderr.trim().split("\n").at(-1)).toBe(
      "interleave: 2 metric(s) regressed beyond 15%: sim-h100-sxm-8x1-b2x2 throughput.stepsPerSec -50.0%, sim-h100-sxm-8x1-b2x2 throughput.samplesPerSec -50.0%",
    )
    expect(worse.stdout).toMatch(
      /sim-h100-sxm-8x1-b2x2\s+throughput\.stepsPerSec\s+[\d.,]+ steps\/s\s+[\d.,]+ steps\/s\s+-50\.0%\s+REGRESSED/,
    )

    // 50% slower is within --fail-over 60; with --json, stdout is the results and nothing else.
    expect(loose.code, loose.stderr).toBe(0)
    expect(Either.isRight(parseSweepResults(loose.stdout))).toBe(true)
    expect(loose.stderr).toContain("comparison of this sweep with")
  }, 60_000)

  it("--sim-of fits the sim to a results file and reports the held-out error", async () => {
    const results = join(out, "results.json")
    const fitDir = join(dir, "fit")
    const [loo, held, unknown] = await inSequence([
      () => cliInProcess(["bench", "--sim-of", results, "--out", fitDir]),
      () =>
        cliInProcess([
          "bench",
          "--sim-of",
          results,
          "--out",
          join(dir, "fit2"),
          "--hold-out",
          `${IDS[1]},${IDS[4]}`,
          "--json",
        ]),
      () => cliInProcess(["bench", "--sim-of", results, "--out", join(dir, "fit3"), "--hold-out", "nope"]),
    ])
    expect(loo.code, loo.stderr).toBe(0)
    expect(loo.stdout).toMatch(/held-out error, MAPE \(leave-one-group-out over batch sizes \(2 groups\)\)/)
    const fit = JSON.parse(readFileSync(join(fitDir, "sim-fit.json"), "utf8"))
    expect(fit.calibration.status).toBe("calibrated")
    expect(fit.calibration.heldOut.groups.length).toBe(2)
    // The written profile is a model profile `run` accepts.
    expect(existsSync(join(fitDir, "sim-profile.json"))).toBe(true)

    expect(held.code, held.stderr).toBe(0)
    const heldFit = JSON.parse(held.stdout)
    expect(JSON.stringify(heldFit)).toContain(IDS[1])

    expect(unknown.code).toBe(2)
    expect(unknown.stderr.trim()).toMatch(/--hold-out "nope": unknown config id nope \(give batch=N/)
  }, 60_000)
})

describe("interleave bench --compare BASELINE --against CURRENT (item 7)", () => {
  it("compares two saved results without running anything: units, a summary line, exit 1 on a regression", async () => {
    const current = join(out, "results.json")
    const baseline = JSON.parse(readFileSync(baselineFile, "utf8"))
    baseline.configs[0].throughput.stepsPerSec *= 2
    baseline.configs[0].throughput.samplesPerSec *= 2
    const planted = writeJson(dir, "planted-against.json", baseline)
    const [same, worse, asJson] = await inSequence([
      () => cliInProcess(["bench", "--compare", baselineFile, "--against", current]),
      () => cliInProcess(["bench", "--compare", planted, "--against", current]),
      () => cliInProcess(["bench", "--compare", baselineFile, "--against", current, "--json"]),
    ])
    expect(same.code, same.stderr).toBe(0)
    expect(same.stdout).toContain(`comparison of ${current} with ${baselineFile}`)
    expect(same.stdout).toMatch(
      /sim-h100-sxm-8x1-b4x2\s+latency\.visual\.mean\s+[\d.]+ ms\s+[\d.]+ ms\s+±0\.0%\s+ok/,
    )
    expect(same.stdout).toMatch(
      /sim-h100-sxm-8x1-b4x2\s+memory\.peak\s+[\d.]+ [KMG]iB\s+[\d.]+ [KMG]iB\s+±0\.0%\s+ok/,
    )
    expect(same.stdout.trim().split("\n").at(-1)).toMatch(
      /^all \d+ gated metrics within 15% \(6 configs compared\)$/,
    )
    // Nothing ran: no progress line, no new output directory.
    expect(same.stderr).toBe("")

    expect(worse.code).toBe(1)
    expect(worse.stderr.trim()).toBe(
      "interleave: 2 metric(s) regressed beyond 15%: sim-h100-sxm-8x1-b2x2 throughput.stepsPerSec -50.0%, sim-h100-sxm-8x1-b2x2 throughput.samplesPerSec -50.0%",
    )

    expect(asJson.code, asJson.stderr).toBe(0)
    const parsed = JSON.parse(asJson.stdout)
    expect(parsed.failed).toBe(false)
    expect(parsed.deltas.length).toBeGreaterThan(0)
  }, 60_000)
})

describe("interleave bench: aborted configurations (item 6)", () => {
  const oomSweep = writeJson(dir, "oom-sweep.json", {
    ...sweepJson,
    name: "oom-sim",
    ratios: ["8:1", "text-only"],
    batchSizes: [{ visual: 16, text: 8 }],
    targets: [{ adapter: "sim", hardware: "a100-40g", model: "trex2-swin-t" }],
    microIterations: 0,
  })
  const OOM_ID = "sim-a100-40g-trex2-swin-t-8x1-b16x8"

  it("says which aborted and why, shows it as aborted, and exits 1 unless --allow-aborts", async () => {
    const outA = join(dir, "oom-a")
    const [strict, allowed] = await Promise.all([
      runCli(["bench", oomSweep, "--out", join(dir, "oom-s"), "--store", store]),
      runCli(["bench", oomSweep, "--out", outA, "--store", store, "--allow-aborts"]),
    ])
    expect(strict.code).toBe(1)
    expect(strict.stderr.trim().split("\n").at(-1)).toBe(
      `interleave: 1 of 2 configurations aborted (${OOM_ID}; reasons above); pass --allow-aborts when a sweep probes memory limits`,
    )
    expect(allowed.code, allowed.stderr).toBe(0)
    for (const r of [strict, allowed]) {
      expect(r.stdout).toMatch(new RegExp(`^${OOM_ID} +aborted \\(OOM\\)`, "m"))
      expect(r.stdout).toMatch(
        new RegExp(`^aborted: ${OOM_ID}: out-of-memory at step 0: .*a100-40g has 40\\.00 GiB$`, "m"),
      )
      expect(r.stdout).not.toMatch(/(^|\s)0 samples\/s/)
      expect(r.stderr).toContain(`[1/2] ${OOM_ID}: aborted: out-of-memory at step 0`)
    }
    const md = readFileSync(join(outA, "report.md"), "utf8")
    expect(md).toContain(`- aborted: ${OOM_ID}: out-of-memory at step 0`)
    expect(readFileSync(join(outA, "report.html"), "utf8")).toContain(">OOM<")
    // Compared with itself, the aborted config is aborted on both sides, not "0 0 ±0.0% ok".
    const results = join(outA, "results.json")
    const cmp = await cliInProcess(["bench", "--compare", results, "--against", results])
    expect(cmp.code, cmp.stderr).toBe(0)
    expect(cmp.stdout).toMatch(
      new RegExp(`${OOM_ID}\\s+\\(all metrics\\)\\s+aborted\\s+aborted\\s+—\\s+aborted on both sides`),
    )
    expect(cmp.stdout).not.toMatch(new RegExp(`${OOM_ID}\\s+throughput`))
  }, 60_000)
})

describe("interleave bench: bad input is one line naming the file and field, exit 2", () => {
  it("covers sweep, base, baseline and results files and the argument combinations", async () => {
    const bad = (name: string, value: unknown) => writeJson(dir, name, value)
    const cases: Array<[string[], string]> = [
      [["bench", join(dir, "missing.json")], `${join(dir, "missing.json")}: no such sweep file`],
      [
        ["bench", bad("garbled.json", '{ "name": "x",\n  "base": ')],
        `${join(dir, "garbled.json")}: invalid JSON at line 2`,
      ],
      [
        ["bench", bad("adapter.json", { ...sweepJson, targets: [{ adapter: "jax" }] })],
        `${join(dir, "adapter.json")}: targets[0].adapter: unknown target adapter "jax"`,
      ],
      [
        ["bench", bad("ratio.json", { ...sweepJson, ratios: ["8:1", "eight"] })],
        `${join(dir, "ratio.json")}: ratios[1]: expected "V:T"`,
      ],
      [
        ["bench", bad("nobase.json", { ...sweepJson, base: "gone.json" })],
        `${join(dir, "nobase.json")}: base: ${join(dir, "gone.json")}: no such scenario file`,
      ],
      [
        ["bench", sweep, "--compare", bad("bl.json", { schemaVersion: 1, name: "x", configs: [] })],
        `${join(dir, "bl.json")}: machine: is required`,
      ],
      [["bench", "--sim-of", bad("res.json", "[1,")], `${join(dir, "res.json")}: invalid JSON`],
      [["bench"], "bench: give a sweep file, --compare BASELINE --against CURRENT, or --sim-of RESULTS"],
      [["bench", "--against", baselineFile], "--against: needs --compare BASELINE"],
      [
        ["bench", sweep, "--compare", baselineFile, "--against", baselineFile],
        "bench: give a sweep file or --against CURRENT, not both",
      ],
      [
        ["bench", "--compare", join(dir, "missing.json"), "--against", baselineFile],
        `${join(dir, "missing.json")}: no such baseline file`,
      ],
      [
        ["bench", "--compare", baselineFile, "--against", bad("v3.json", { schemaVersion: 3 })],
        `${join(dir, "v3.json")}: schemaVersion: unsupported results version 3 (this interleave reads versions 1 and 2)`,
      ],
      [["bench", sweep, "--sim-of", baselineFile], "bench: give a sweep file or --sim-of RESULTS, not both"],
      [["bench", sweep, "--fail-over", "-1"], "--fail-over: must be a number >= 0, got -1"],
    ]
    const runs = await inSequence(
      cases.map(
        ([args]) =>
          () =>
            cliInProcess([...args, "--store", store]),
      ),
    )
    for (const [i, r] of runs.entries()) {
      const [args, message] = cases[i]!
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2)
      const lines = r.stderr.trim().split("\n")
      expect(lines, args.join(" ")).toHaveLength(1)
      expect(lines[0], args.join(" ")).toContain(`interleave: ${message}`)
    }
    // Nothing was run for a bad baseline: its output directory was never written.
    expect(existsSync(join(process.cwd(), "out", "bench-tiny-sim"))).toBe(false)
  }, 60_000)
})
