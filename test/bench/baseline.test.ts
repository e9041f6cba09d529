/** Baseline comparison: deltas, directions, the strict threshold, missing configs and metrics. */
import { describe, expect, it } from "vitest"
import {
  abortedLines,
  classify,
  compareResults,
  comparisonRows,
  comparisonVerdict,
  deltaPct,
  formatDelta,
  METRICS,
  regressionSummary,
} from "../../core/bench/baseline.ts"
import {
  buildConfigResult,
  type ConfigResult,
  type MeasuredStep,
  type SweepResults,
} from "../../core/bench/results.ts"

const machine = { cpu: "CPU A", cores: 2, memBytes: 8e9, node: "v20.20.2", platform: "linux-x64" }

/** An 8:1 run of 18 steps: visual 10 ms / 900 B, text 5 ms / 400 B (peak 900, swing 500). */
const records: MeasuredStep[] = Array.from({ length: 18 }, (_, step) => {
  const visual = step % 9 < 8
  return {
    step,
    modality: visual ? "visual" : "text",
    durationMs: visual ? 10 : 5,
    memBytes: visual ? 900 : 400,
    loss: 1,
    samples: 4,
    phase: "bench",
    cycle: Math.floor(step / 9),
  }
})

const config = (id: string, recs: ReadonlyArray<MeasuredStep> = records): ConfigResult =>
  buildConfigResult(
    {
      id,
      label: id,
      ratio: { visual: 8, text: 1 },
      batch: { visual: 4, text: 4 },
      adapter: "sim",
      runId: `r-${id}`,
    },
    recs,
  )

const results = (configs: ReadonlyArray<ConfigResult>, m = machine): SweepResults => ({
  schemaVersion: 1,
  name: "t",
  machine: m,
  createdAt: "2025-01-01T00:00:00.000Z",
  configs,
})

/** A copy of `c` with throughput multiplied by `k` (higher is better). */
const withThroughput = (c: ConfigResult, k: number): ConfigResult => ({
  ...c,
  throughput: { stepsPerSec: c.throughput.stepsPerSec * k, samplesPerSec: c.throughput.samplesPerSec * k },
})

describe("delta and classification", () => {
  it("computes delta % against the baseline, with 0 and ±∞ for a zero baseline", () => {
    expect(deltaPct(100, 150)).toBe(50)
    expect(deltaPct(200, 100)).toBe(-50)
    expect(deltaPct(0, 0)).toBe(0)
    expect(deltaPct(0, 3)).toBe(Number.POSITIVE_INFINITY)
  })

  it("a regression is a move in the bad direction strictly beyond the threshold", () => {
    expect(classify("higher-is-better", -10, 10)).toBe("ok")
    expect(classify("higher-is-better", -10.01, 10)).toBe("regressed")
    expect(classify("higher-is-better", 10.01, 10)).toBe("improved")
    expect(classify("lower-is-better", 10, 10)).toBe("ok")
    expect(classify("lower-is-better", 10.01, 10)).toBe("regressed")
    expect(classify("lower-is-better", -50, 10)).toBe("improved")
    expect(classify("lower-is-better", Number.POSITIVE_INFINITY, 10)).toBe("regressed")
  })

  it("formats deltas with a sign", () => {
    expect(formatDelta(-52.34)).toBe("-52.3%")
    expect(formatDelta(4.06)).toBe("+4.1%")
    expect(formatDelta(0)).toBe("±0.0%")
    expect(formatDelta(Number.POSITIVE_INFINITY)).toBe("+∞%")
    expect(formatDelta(undefined)).toBe("—")
  })
})

describe("compareResults", () => {
  it("the same results pass: every metric present, every delta 0", () => {
    const r = results([config("a"), config("b")])
    const c = compareResults(r, r)
    expect(c.regressions).toEqual([])
    expect(c.deltas).toHaveLength(2 * METRICS.length)
    expect(c.deltas.every((d) => d.deltaPct === 0 && d.status === "ok")).toBe(true)
    expect(c.machineNote).toBeUndefined()
    expect(c.thresholdPct).toBe(15)
    expect(c.gated).toEqual([
      "throughput.stepsPerSec",
      "throughput.samplesPerSec",
      "latency.visual.mean",
      "latency.text.mean",
      "memory.peak",
      "memory.swing.max",
    ])
  })

  it("fails on a planted regression: a baseline twice as fast", () => {
    const current = results([config("a"), config("b")])
    const baseline = results([withThroughput(config("a"), 2), config("b")])
    const c = compareResults(baseline, current)
    expect(c.regressions.map((d) => [d.config, d.metric, d.deltaPct])).toEqual([
      ["a", "throughput.stepsPerSec", -50],
      ["a", "throughput.samplesPerSec", -50],
    ])
    expect(regressionSummary(c)).toBe(
      "2 metric(s) regressed beyond 15%: a throughput.stepsPerSec -50.0%, a throughput.samplesPerSec -50.0%",
    )
    // A whole sweep that regressed: the first few, then how many more.
    const many = compareResults(
      results(["a", "b", "c", "d"].map((id) => withThroughput(config(id), 2))),
      results(["a", "b", "c", "d"].map((id) => config(id))),
    )
    expect(regressionSummary(many)).toBe(
      "8 metric(s) regressed beyond 15%: a throughput.stepsPerSec -50.0%, a throughput.samplesPerSec -50.0%, b throughput.stepsPerSec -50.0%, b throughput.samplesPerSec -50.0%, c throughput.stepsPerSec -50.0%, c throughput.samplesPerSec -50.0% and 2 more (see the table)",
    )
    // The same change the other way is an improvement, not a failure.
    expect(compareResults(current, baseline).regressions).toEqual([])
    expect(compareResults(current, baseline).deltas.filter((d) => d.status === "improved")).toHaveLength(2)
  })

  it("latency and memory regress upwards; the threshold is configurable", () => {
    // Text steps 20% slower, visual peak and swing 15% larger.
    const slower = records.map((r) =>
      r.modality === "text" ? { ...r, durationMs: 6 } : { ...r, memBytes: 900 + 0.15 * 900 },
    )
    const c = compareResults(results([config("a")]), results([config("a", slower)]), { thresholdPct: 10 })
    const bad = Object.fromEntries(c.regressions.map((d) => [d.metric, Math.round(d.deltaPct! * 10) / 10]))
    // Every text step took exactly 6 ms instead of 5: no spread, so the mean's change is no noise.
    expect(bad).toEqual({
      "latency.text.mean": 20,
      "memory.peak": 15,
      "memory.swing.max": 27, // (1035 - 400) / (900 - 400) - 1
    })
    // Percentiles moved as much, but they only gate when asked for.
    const status = (m: string) => c.deltas.find((d) => d.metric === m)!.status
    expect(status("latency.text.p50")).toBe("changed")
    expect(status("latency.text.p99")).toBe("changed")
    const strict = compareResults(results([config("a")]), results([config("a", slower)]), {
      thresholdPct: 10,
      gate: ["latency.text.p99"],
    })
    expect(strict.regressions.map((d) => d.metric)).toEqual(["latency.text.p99"])
    // Throughput dropped too, but by less than 10%: 18 steps in 170 ms, then in 172 ms.
    expect(c.deltas.find((d) => d.metric === "throughput.stepsPerSec")!.status).toBe("ok")
    const loose = compareResults(results([config("a")]), results([config("a", slower)]), { thresholdPct: 30 })
    expect(loose.regressions).toEqual([])
  })

  it("a mean that moves beyond the threshold but within the margin of error is noise", () => {
    // Text steps alternate 2 and 8 ms (mean 5, wide spread), then 2 and 10 ms (mean 6, +20%).
    let k = 0
    const noisy = (hi: number) =>
      records.map((r) => (r.modality === "text" ? { ...r, durationMs: k++ % 2 === 0 ? 2 : hi } : r))
    const c = compareResults(results([config("a", noisy(8))]), results([config("a", noisy(10))]), {
      thresholdPct: 10,
    })
    const mean = c.deltas.find((d) => d.metric === "latency.text.mean")!
    expect(mean.deltaPct).toBeCloseTo(20)
    expect(mean.status).toBe("noise")
    expect(c.regressions.map((d) => d.metric)).not.toContain("latency.text.mean")
  })

  it("lists configs on one side only, and metrics one side lacks, without failing", () => {
    const visualOnly = records.filter((r) => r.modality === "visual")
    const baseline = results([config("a"), config("gone")])
    const current = results([config("a", visualOnly), config("new")])
    const c = compareResults(baseline, current)
    expect(c.missingInCurrent).toEqual(["gone"])
    expect(c.missingInBaseline).toEqual(["new"])
    expect(c.regressions).toEqual([])
    const missing = c.deltas.filter((d) => d.status === "missing").map((d) => d.metric)
    // No text steps now: no text latency, and no cycle has both modalities, so no swing.
    expect(missing).toEqual(["latency.text.mean", "latency.text.p50", "latency.text.p99", "memory.swing.max"])
  })

  it("notes a different machine", () => {
    const c = compareResults(results([config("a")]), results([config("a")], { ...machine, cpu: "CPU B" }))
    expect(c.machineNote).toContain("CPU A")
    expect(c.machineNote).toContain("CPU B")
  })
})

describe("comparison output (item 7)", () => {
  const OOM = "out-of-memory at step 0: needs 61.3 GiB but a100-40g has 40.0 GiB"
  /** A config that aborted before its first measured step: no steps, no statistics. */
  const aborted = (id: string): ConfigResult =>
    buildConfigResult(
      {
        id,
        label: id,
        ratio: { visual: 8, text: 1 },
        batch: { visual: 16, text: 8 },
        adapter: "sim",
        runId: `r-${id}`,
        aborted: OOM,
      },
      [],
    )

  it("values carry their units: samples/s, ms, human bytes", () => {
    const r = results([config("a")])
    const rows = comparisonRows(compareResults(r, r))
    const row = (metric: string) => rows.find((x) => x[1] === metric)!
    expect(row("throughput.samplesPerSec").slice(2)).toEqual([
      "424 samples/s",
      "424 samples/s",
      "±0.0%",
      "ok",
    ])
    expect(row("latency.visual.mean").slice(2, 4)).toEqual(["10 ms", "10 ms"])
    expect(row("memory.peak").slice(2, 4)).toEqual(["900 B", "900 B"])
    expect(row("memory.swing.max").slice(2, 4)).toEqual(["500 B", "500 B"])
  })

  it("a summary line when all is well", () => {
    const r = results([config("a"), config("b")])
    expect(comparisonVerdict(compareResults(r, r))).toBe(
      "all 12 gated metrics within 15% (2 configs compared)",
    )
    const faster = compareResults(results([config("a")]), results([withThroughput(config("a"), 2)]))
    expect(comparisonVerdict(faster)).toBe("all 6 gated metrics within 15% (1 config compared; 2 improved)")
    const slower = compareResults(results([withThroughput(config("a"), 2)]), results([config("a")]))
    expect(comparisonVerdict(slower)).toMatch(
      /^2 metric\(s\) regressed beyond 15%: .* \(2 of 6 gated metrics; 1 config compared\)$/,
    )
  })

  it("aborted configs read aborted on either side, never 0 0 ±0.0% ok; a new abort fails", () => {
    const baseline = results([config("a"), aborted("both"), aborted("fixed"), config("broke")])
    const current = results([config("a"), aborted("both"), config("fixed"), aborted("broke")])
    const c = compareResults(baseline, current)
    expect(c.aborted.map((a) => a.config)).toEqual(["both", "fixed", "broke"])
    expect(c.deltas.every((d) => d.config === "a")).toBe(true)
    expect(c.newlyAborted.map((a) => a.config)).toEqual(["broke"])
    expect(c.regressions).toEqual([])
    expect(c.failed).toBe(true)
    const rows = comparisonRows(c).filter((r) => r[0] !== "a")
    expect(rows).toEqual([
      ["both", "(all metrics)", "aborted", "aborted", "—", "aborted on both sides"],
      ["fixed", "(all metrics)", "aborted", "completed", "—", "completes now (aborted in the baseline)"],
      ["broke", "(all metrics)", "completed", "aborted", "—", "REGRESSED (aborts now)"],
    ])
    expect(abortedLines(c)).toEqual([
      `aborted in the baseline: both: ${OOM}`,
      `aborted now: both: ${OOM}`,
      `aborted in the baseline: fixed: ${OOM}`,
      `aborted now: broke: ${OOM}`,
    ])
    expect(regressionSummary(c)).toBe(
      `1 configuration(s) completed in the baseline but aborted now: broke (${OOM})`,
    )
    // Aborted on both sides alone is no failure.
    const same = compareResults(results([aborted("both")]), results([aborted("both")]))
    expect(same.failed).toBe(false)
    expect(comparisonVerdict(same)).toBe(
      "no gated metric to compare: no configuration completed on both sides (0 configs compared; 1 aborted config(s) not compared)",
    )
  })
})

describe("memory figures (item 2)", () => {
  it("memory metrics of configs whose figures differ are not compared, and a note says why", () => {
    const peak = {
      ...config("a"),
      memoryFigure: { source: "peakBytes", origin: "measured", sampledSteps: 18 },
    } as const
    const allocated = {
      ...config("a"),
      memory: { ...config("a").memory!, peak: 100 },
      memoryFigure: { source: "allocatedBytes", origin: "measured", sampledSteps: 18 },
    } as const
    const c = compareResults(results([allocated]), results([peak]))
    expect(c.deltas.some((d) => d.metric.startsWith("memory."))).toBe(false)
    expect(c.failed).toBe(false)
    expect(c.figureNotes).toEqual([
      "a: memory is in-step peak, every step now but allocated, every step in the baseline; its memory metrics are not compared",
    ])
    // Same figure (or a v1 file that recorded none): compared as before.
    expect(
      compareResults(results([peak]), results([peak])).deltas.some((d) => d.metric === "memory.peak"),
    ).toBe(true)
    expect(compareResults(results([config("a")]), results([peak])).figureNotes).toEqual([])
  })
})
